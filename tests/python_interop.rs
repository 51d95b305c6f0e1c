//! Interop with Python services: a FastAPI service using
//! `asgi-correlation-id` chained with the corrlog demo, in both directions;
//! the same id must appear on both sides.
//!
//! The virtualenv is made by `tests/python/setup.sh` (run by `.ci/run`, or
//! by this test when missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client_runtime, str_field, TestServer};
use corrlog::RequestLayer;
use serde_json::Value;

struct Python {
    child: Child,
    url: String,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("CORRLOG_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/python-venv"));
    let status = Command::new("bash")
        .arg(root.join("tests/python/setup.sh"))
        .arg(&venv)
        .status()
        .expect("run tests/python/setup.sh (needs bash and python3)");
    assert!(
        status.success(),
        "tests/python/setup.sh failed: see its output above"
    );
    venv.join("bin/python")
}

fn start_python() -> Python {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(venv_python())
        .args([
            "-m",
            "uvicorn",
            "app:app",
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
        ])
        .arg("--port")
        .arg(port.to_string())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start uvicorn");
    let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = lines.clone();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap().push(v);
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let rt = client_runtime();
    loop {
        let up = rt.block_on(async {
            reqwest::Client::new()
                .get(format!("{url}/orders/ping"))
                .send()
                .await
                .is_ok()
        });
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "uvicorn did not start in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Python { child, url, lines }
}

fn get(url: &str, id: Option<&str>) -> (String, Value) {
    client_runtime().block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{url}: {}", res.status());
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        (id, res.json().await.unwrap())
    })
}

fn python_saw(python: &Python, id: &str) -> bool {
    std::thread::sleep(Duration::from_millis(200));
    python
        .lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| str_field(l, "request_id") == Some(id))
}

#[test]
fn corrlog_and_asgi_correlation_id_share_the_id_both_ways() {
    let python = start_python();

    // corrlog -> python: the demo calls the Python service downstream.
    let rust = TestServer::start(
        2,
        app::routes(
            app::AppConfig::default(),
            Some(app::Downstream::new(&python.url)),
        )
        .layer(RequestLayer::new()),
    );
    for sent in [None, Some("6f9619ff-8b86-4d11-b42d-00c04fc964ff")] {
        let (id, body) = get(&rust.url("/orders/77"), sent);
        if let Some(sent) = sent {
            assert_eq!(id, sent);
        }
        assert_eq!(body["downstream"]["service"], "python");
        assert_eq!(
            body["downstream"]["request_id"],
            id.as_str(),
            "python saw our id"
        );
        assert!(python_saw(&python, &id), "python logged {id}");
        assert!(rust
            .lines()
            .iter()
            .any(|l| str_field(l, "request_id") == Some(id.as_str())));
    }

    // python -> corrlog: the Python service calls the demo.
    let target = format!("{}/orders/78", rust.url(""));
    for sent in [None, Some("2c1d7e0a-3f5b-4b8e-9a6c-1d2e3f4a5b6c")] {
        let (id, body) = get(&format!("{}/call?url={target}", python.url), sent);
        if let Some(sent) = sent {
            assert_eq!(id, sent);
        }
        assert_eq!(body["request_id"], id.as_str());
        assert_eq!(
            body["downstream_header"],
            id.as_str(),
            "corrlog echoed python's id"
        );
        assert_eq!(body["downstream"]["request_id"], id.as_str());
        assert_eq!(body["downstream"]["seen"]["sync"], id.as_str());
        assert!(python_saw(&python, &id));
        let rust_lines: Vec<_> = rust
            .lines()
            .into_iter()
            .filter(|l| str_field(l, "request_id") == Some(id.as_str()))
            .collect();
        assert!(
            rust_lines.len() >= 6,
            "corrlog lines for {id}: {}",
            rust_lines.len()
        );
    }
}
