//! The demo service in a process of its own: started on a free port with
//! chosen environment variables, driven over raw HTTP, stopped with
//! SIGTERM so it writes every line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The demo binary `cargo test` builds beside this test.
pub fn demo_binary() -> PathBuf {
    example_binary("demo")
}

/// An example binary `cargo test` builds beside this test.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let demo = dir.join("examples").join(name);
    assert!(
        demo.exists(),
        "{} not found: `cargo test` builds the examples; run it rather than a single --test",
        demo.display()
    );
    demo
}

/// Kills the child if the test fails before it exits.
pub struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the demo on a free port with `env`; returns it and its address.
pub fn start_demo(env: &[(&str, &str)]) -> (Reaper, BufReader<ChildStdout>, SocketAddr) {
    start_example("demo", env)
}

/// Starts an example server (one taking `--addr` and logging its address
/// first) on a free port with `env`; returns it and its address.
pub fn start_example(
    name: &str,
    env: &[(&str, &str)],
) -> (Reaper, BufReader<ChildStdout>, SocketAddr) {
    start_binary(&example_binary(name), env)
}

/// Starts the server binary at `path` like [`start_example`].
pub fn start_binary(
    path: &std::path::Path,
    env: &[(&str, &str)],
) -> (Reaper, BufReader<ChildStdout>, SocketAddr) {
    let mut command = Command::new(path);
    command
        .args(["--addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("CORRLOG_FORMAT")
        .env_remove("CORRLOG_BUFFER")
        .env_remove("CORRLOG_FILE")
        .env_remove("CORRLOG_LEVEL")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("GOOGLE_CLOUD_PROJECT")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
        .env_remove("OTEL_SDK_DISABLED")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .map(|port| format!("127.0.0.1:{port}").parse().unwrap())
        .unwrap_or_else(|| panic!("no address in the first line: {line:?}"));
    (Reaper(child), stdout, addr)
}

/// A raw HTTP/1.1 GET; returns the whole response.
pub fn get(addr: SocketAddr, path: &str, headers: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: t\r\n{headers}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Stops the demo (SIGTERM: it shuts down cleanly, writing every line);
/// returns its stdout and stderr.
pub fn stop(mut demo: Reaper, mut stdout: BufReader<ChildStdout>) -> (String, String) {
    let killed = Command::new("kill")
        .args(["-TERM", &demo.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    demo.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(demo.0.wait().unwrap().success(), "{err}");
    (out, err)
}
