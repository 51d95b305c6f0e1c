//! The suites every integration must pass, written against a running
//! server and its captured lines, whatever framework serves it: the axum
//! tests in `tests/` and the actix-web tests in `corrlog-actix/tests/` call
//! the same functions. Most expect the demo's routes (`/`,
//! `/orders/{order_id}`, `/stream/{chunks}`, `/boom`); the request-end
//! suite expects the routes [`ENDS_ROUTES`] names.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use corrlog::http::IdPolicy;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::{
    client_runtime, contains, get_request, hostile_ids, is_uuid_v4, str_field, RawConn,
    RawResponse, TestServer,
};

pub const REQUESTS: usize = 10_000;
pub const IN_FLIGHT: usize = 1_250;

pub struct Outcome {
    pub sent_id: Option<String>,
    /// The response's `x-request-id` (a naive design sends none).
    pub header_id: String,
    pub body: String,
}

/// Sends `REQUESTS` GETs, `IN_FLIGHT` at a time, request `i` to
/// `path(i)` with `x-request-id: id(i)` when that returns one.
pub fn hammer(
    server: &TestServer,
    path: impl Fn(usize) -> String,
    id: impl Fn(usize) -> Option<String>,
) -> Vec<Outcome> {
    let rt = client_runtime();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    rt.block_on(async {
        let mut handles = Vec::with_capacity(REQUESTS);
        for i in 0..REQUESTS {
            let client = client.clone();
            let permits = permits.clone();
            let url = server.url(&path(i));
            let sent_id = id(i);
            handles.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                let mut req = client.get(&url);
                if let Some(id) = &sent_id {
                    req = req.header("x-request-id", id);
                }
                let res = req.send().await.unwrap();
                assert!(res.status().is_success(), "{url}: {}", res.status());
                let header_id = res
                    .headers()
                    .get("x-request-id")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let body = res.text().await.unwrap();
                Outcome {
                    sent_id,
                    header_id,
                    body,
                }
            }));
        }
        let mut out = Vec::with_capacity(REQUESTS);
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    })
}

/// Thousands of overlapping requests through every layer of the demo
/// (handler, async service, `spawn_blocking`, `spawn`): every line carries
/// its own request's id. The server runs the demo routes with
/// `jitter_ms: 20` on a multi-thread server.
pub fn every_layer_keeps_its_request_id(server: &TestServer) {
    // Half the requests bring their own id, half get a generated one.
    let outcomes = hammer(
        server,
        |i| format!("/orders/{i}"),
        |i| (i % 2 == 0).then(|| format!("client-{i}")),
    );

    let mut expected: HashMap<String, String> = HashMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        match &o.sent_id {
            Some(sent) => assert_eq!(&o.header_id, sent),
            None => assert!(is_uuid_v4(&o.header_id), "{}", o.header_id),
        }
        let body: Value = serde_json::from_str(&o.body).unwrap();
        assert_eq!(body["order_id"], i.to_string());
        assert_eq!(body["request_id"], o.header_id);
        for layer in ["handler", "service", "sync", "background"] {
            assert_eq!(
                body["seen"][layer], o.header_id,
                "layer {layer} of request {i}"
            );
        }
        expected.insert(i.to_string(), o.header_id.clone());
    }
    assert_eq!(
        expected
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        REQUESTS
    );

    let lines = server.lines();
    let mut per_order: HashMap<&str, usize> = HashMap::new();
    let mut loggers: HashMap<&str, usize> = HashMap::new();
    for line in &lines {
        let Some(order) = str_field(line, "order_id") else {
            continue;
        };
        let id = str_field(line, "request_id").expect("order line without request_id");
        assert_eq!(
            id, expected[order],
            "line {line} carries another request's id"
        );
        *per_order.entry(order).or_default() += 1;
        *loggers
            .entry(str_field(line, "logger").unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_order.len(), REQUESTS);
    // Five INFO and four DEBUG lines from the demo's layers (no level
    // filter here), and one access line.
    assert!(
        per_order.values().all(|&n| n == 10),
        "each request logs 10 lines"
    );
    for logger in ["orders", "db", "audit", "corrlog::access"] {
        assert!(loggers[logger] >= REQUESTS, "{logger}: {loggers:?}");
    }
    let peak = peak_overlap(&lines);
    eprintln!("peak requests in flight in the server: {peak}");
    assert!(peak >= 1_000, "only {peak} requests overlapped");
}

/// The most requests in the server at once, from the access lines: each
/// spans `latency_ms` up to its timestamp.
fn peak_overlap(lines: &[Value]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for line in lines {
        if str_field(line, "logger") != Some("corrlog::access") {
            continue;
        }
        let ts = str_field(line, "timestamp").unwrap();
        let end = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
            .unwrap();
        let end_ms = (end.unix_timestamp_nanos() / 1_000) as f64 / 1000.0;
        let latency = line["latency_ms"].as_f64().unwrap();
        edges.push((end_ms - latency, 1));
        edges.push((end_ms, -1));
    }
    edges.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        peak = peak.max(now);
    }
    peak as usize
}

/// Lines logged while a streaming body is produced, after the handler has
/// returned, carry the request's id. Demo routes, `jitter_ms: 5`.
pub fn streamed_lines_keep_their_request_id(server: &TestServer) {
    let outcomes = hammer(server, |_| "/stream/5".to_owned(), |_| None);

    for o in &outcomes {
        // The body reports the id current while each chunk was produced.
        let chunks: Vec<&str> = o.body.lines().collect();
        assert_eq!(chunks, vec![o.header_id.as_str(); 5]);
    }
    let lines = server.lines();
    let groups = super::by_request_id(&lines);
    assert_eq!(groups.len(), REQUESTS);
    for o in &outcomes {
        let group = &groups[&o.header_id];
        let chunks = group
            .iter()
            .filter(|l| str_field(l, "message") == Some("streaming chunk"))
            .count();
        assert_eq!(chunks, 5, "request {}", o.header_id);
        // "starting stream", five chunks, and the access line written when
        // the body ended.
        assert_eq!(group.len(), 7);
        let access = group.last().unwrap();
        assert_eq!(str_field(access, "logger"), Some("corrlog::access"));
        assert_eq!(access["bytes_out"], 5 * 37);
    }
    assert!(lines
        .iter()
        .filter(|l| str_field(l, "message") == Some("streaming chunk"))
        .all(|l| l.get("request_id").is_some()));
}

/// What must never be echoed or logged: the raw value, or a tell-tale part.
fn needle(value: &[u8]) -> Vec<u8> {
    if value.len() > 64 {
        value[..64].to_vec()
    } else {
        value.to_vec()
    }
}

/// Sends one raw request on a new connection; returns its response.
pub fn one(server: &TestServer, request: &[u8]) -> RawResponse {
    client_runtime().block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(request).await;
        conn.read_response().await
    })
}

fn assert_output_clean(server: &TestServer, values: &[(&str, Vec<u8>)]) {
    let raw = server.capture.bytes();
    super::parse_lines(&raw);
    for (name, value) in values {
        let n = needle(value);
        // An alphanumeric value up to 128 bytes is a valid id, echoed and
        // logged by design; anything else must never appear.
        if n.iter().any(|b| !b.is_ascii_alphanumeric()) || value.len() > 128 {
            assert!(!contains(&raw, &n), "{name}: raw value in the log");
        }
    }
    // No raw control characters, whatever came in.
    assert!(
        !raw.iter().any(|&b| b < 0x20 && b != b'\n'),
        "a raw control byte reached the log"
    );
}

/// Every class of hostile `x-request-id` over raw sockets: replaced by a
/// generated id, never echoed or logged raw; the server keeps serving.
/// Demo routes.
pub fn hostile_request_ids_are_replaced(server: &TestServer) {
    let mut issued = Vec::new();
    let mut refused = Vec::new();
    for (name, value) in hostile_ids() {
        let mut header = b"x-request-id: ".to_vec();
        header.extend_from_slice(&value);
        let res = one(server, &get_request("/orders/1", &[&header]));
        if (res.status == 400 || res.status == 431) && res.header("x-request-id").is_none() {
            // hyper refuses some header values before any middleware runs:
            // nothing reaches the service or the log.
            refused.push(name);
            continue;
        }
        assert_eq!(res.status, 200, "{name}");
        assert_eq!(res.header_count("x-request-id"), 1, "{name}");
        let id = res.header("x-request-id").unwrap();
        assert!(
            super::is_uuid_v4(&id),
            "{name}: replaced by a generated id, got {id:?}"
        );
        let body = res.json();
        assert_eq!(body["request_id"], id.as_str(), "{name}");
        assert_eq!(
            body["seen"]["handler"],
            id.as_str(),
            "{name}: the handler sees only the new id"
        );
        for (_, v) in &res.headers {
            assert!(
                !contains(v, &needle(&value)) || value.len() < 3,
                "{name}: echoed"
            );
        }
        issued.push((name, id));
    }
    eprintln!("refused by the HTTP parser before the service: {refused:?}");
    assert!(
        issued.len() >= 15,
        "most classes reach the middleware: {issued:?}"
    );
    assert_output_clean(server, &hostile_ids());
    let lines = server.lines();
    for (name, id) in &issued {
        assert!(
            lines
                .iter()
                .any(|l| str_field(l, "request_id") == Some(id) && l["message"] == "fetching order"),
            "{name}: the handler's line carries the new id"
        );
    }
    // Still serving.
    assert_eq!(one(server, &get_request("/", &[])).status, 200);
}

/// Hostile paths and user agents never break a line or inject a field.
/// Demo routes.
pub fn hostile_paths_and_agents_stay_inside_their_strings(server: &TestServer) {
    let paths: Vec<(&str, Vec<u8>)> = vec![
        (
            "percent crlf path",
            b"/orders/%0d%0aInjected:%20yes".to_vec(),
        ),
        (
            "json breaker path",
            br#"/orders/%22,%22level%22:%22ERROR"#.to_vec(),
        ),
        (
            "long path",
            [b"/orders/".to_vec(), vec![b'p'; 20_000]].concat(),
        ),
        ("utf8 path", "/orders/\u{202e}x".as_bytes().to_vec()),
    ];
    let agents: Vec<(&str, Vec<u8>)> = vec![
        ("ansi agent", b"curl\x1b[31m/evil".to_vec()),
        ("json agent", br#"ua","level":"ERROR"#.to_vec()),
        ("invalid utf8 agent", b"ua\xff\xfe".to_vec()),
        ("huge agent", vec![b'u'; 60_000]),
        (
            "invisible agent",
            super::INVISIBLE.iter().collect::<String>().into_bytes(),
        ),
    ];
    for (name, path) in &paths {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(path);
        req.extend_from_slice(b" HTTP/1.1\r\nhost: t\r\n\r\n");
        let res = one(server, &req);
        assert!(res.status < 500, "{name}: {}", res.status);
    }
    for (name, agent) in &agents {
        let mut header = b"user-agent: ".to_vec();
        header.extend_from_slice(agent);
        let res = one(server, &get_request("/", &[&header]));
        assert!(
            res.status == 200 || res.status == 400 || res.status == 431,
            "{name}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let raw = server.capture.bytes();
    let lines = super::parse_lines(&raw);
    // The requests' own lines: a server may log its parser's refusals (at
    // ERROR, for actix-web), which carry no request id.
    let errors: Vec<_> = lines
        .iter()
        .filter(|l| l.get("request_id").is_some() && l["level"] == "ERROR")
        .collect();
    assert!(errors.is_empty(), "no injected ERROR level: {errors:#?}");
    assert!(
        lines.iter().all(|l| l.to_string().len() < 64 * 1024),
        "values are bounded"
    );
    assert!(!raw.iter().any(|&b| b < 0x20 && b != b'\n'));
    let text = String::from_utf8(raw).unwrap();
    for c in super::INVISIBLE {
        assert!(!text.contains(*c), "{c:?} written raw");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["user_agent"] == super::INVISIBLE.iter().collect::<String>()),
        "the access line keeps the agent, escaped"
    );
    assert_eq!(one(server, &get_request("/", &[])).status, 200);
}

/// Good, bad and duplicate ids and panics on one keep-alive connection,
/// then pipelined. Demo routes, `jitter_ms: 1`.
pub fn good_and_bad_ids_and_panics_on_one_connection(server: &TestServer) {
    // Values the HTTP parser lets through, so one connection carries them all.
    let bad: Vec<Vec<u8>> = vec![
        b"has space".to_vec(),
        b"x\"y".to_vec(),
        "bidi\u{202e}x".as_bytes().to_vec(),
        b"bad\xffutf8".to_vec(),
        vec![b'z'; 200],
    ];
    let mut requests = Vec::new();
    let mut expected: Vec<Option<String>> = Vec::new();
    for i in 0..120 {
        let path = if i % 7 == 3 {
            "/boom".to_owned()
        } else {
            format!("/orders/{i}")
        };
        match i % 3 {
            0 => {
                let id = format!("good-{i}");
                requests.push(get_request(
                    &path,
                    &[format!("x-request-id: {id}").as_bytes()],
                ));
                expected.push(Some(id));
            }
            1 => {
                let mut h = b"X-Request-Id: ".to_vec();
                h.extend_from_slice(&bad[i % bad.len()]);
                requests.push(get_request(&path, &[&h]));
                expected.push(None);
            }
            _ => {
                // Duplicate headers, different name cases.
                let a = format!("x-request-id: dup-a-{i}");
                let b = format!("X-REQUEST-ID: dup-b-{i}");
                requests.push(get_request(&path, &[a.as_bytes(), b.as_bytes()]));
                expected.push(None);
            }
        }
    }
    let check = |responses: Vec<RawResponse>| {
        let mut seen = std::collections::HashSet::new();
        for (i, res) in responses.iter().enumerate() {
            let id = res.header("x-request-id").unwrap();
            assert!(IdPolicy::default().accepts(id.as_bytes()));
            assert!(seen.insert(id.clone()), "id reused: {id}");
            match &expected[i] {
                Some(good) => assert_eq!(&id, good),
                None => assert!(super::is_uuid_v4(&id), "{i}: {id}"),
            }
            if res.status == 200 {
                assert_eq!(res.json()["seen"]["background"], id.as_str());
            } else {
                assert_eq!(res.status, 500);
            }
        }
    };
    let rt = client_runtime();
    // Keep-alive, one after another.
    let sequential = rt.block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        let mut out = Vec::new();
        for req in &requests {
            conn.send(req).await;
            out.push(conn.read_response().await);
        }
        out
    });
    check(sequential);
    // Pipelined: all at once.
    let pipelined = rt.block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(&requests.concat()).await;
        let mut out = Vec::new();
        for _ in &requests {
            out.push(conn.read_response().await);
        }
        out
    });
    check(pipelined);
    let raw = server.capture.bytes();
    super::parse_lines(&raw);
    for b in &bad {
        assert!(!contains(&raw, b), "bad id logged raw");
    }
    assert!(!contains(&raw, b"dup-a-") && !contains(&raw, b"dup-b-"));
}

/// What request `i` sends as its id: a valid one, none, or a bad one.
fn connection_id_header(i: usize) -> Option<Vec<u8>> {
    match i % 4 {
        0 => Some(format!("x-request-id: conn-{i}").into_bytes()),
        1 => None,
        2 => Some(b"x-request-id: bad id \"with quotes\"".to_vec()),
        _ => Some(format!("x-request-id: conn-{i}-b").into_bytes()),
    }
}

fn connection_request(i: usize) -> Vec<u8> {
    let path = if i % 10 == 9 {
        "/boom".to_owned()
    } else {
        format!("/orders/{i}")
    };
    match connection_id_header(i) {
        Some(h) => get_request(&path, &[&h]),
        None => get_request(&path, &[]),
    }
}

fn check_connection(server: &TestServer, responses: Vec<super::RawResponse>) {
    let mut ids = HashSet::new();
    let mut order_of: HashMap<String, String> = HashMap::new();
    for (i, res) in responses.iter().enumerate() {
        let id = res.header("x-request-id").unwrap();
        match i % 4 {
            0 => assert_eq!(id, format!("conn-{i}")),
            3 => assert_eq!(id, format!("conn-{i}-b")),
            _ => assert!(is_uuid_v4(&id), "{id}"),
        }
        assert!(ids.insert(id.clone()), "id {id} issued twice");
        if i % 10 == 9 {
            assert_eq!(res.status, 500);
        } else {
            assert_eq!(res.status, 200);
            let body = res.json();
            assert_eq!(body["request_id"], id);
            assert_eq!(body["seen"]["sync"], id);
            assert_eq!(body["seen"]["background"], id);
            order_of.insert(i.to_string(), id);
        }
    }
    let lines = server.lines();
    let mut seen_orders = HashSet::new();
    for line in &lines {
        if let Some(order) = str_field(line, "order_id") {
            assert_eq!(
                str_field(line, "request_id"),
                Some(order_of[order].as_str()),
                "{line}"
            );
            seen_orders.insert(order.to_owned());
        }
    }
    assert_eq!(seen_orders.len(), order_of.len());
    assert!(!String::from_utf8_lossy(&server.capture.bytes()).contains("with quotes"));
}

/// 300 requests with different ids, bad ones and panics on one keep-alive
/// connection. Demo routes, `jitter_ms: 1`.
pub fn keep_alive_requests_do_not_leak(server: &TestServer) {
    let responses = client_runtime().block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        let mut out = Vec::new();
        for i in 0..300 {
            conn.send(&connection_request(i)).await;
            out.push(conn.read_response().await);
        }
        out
    });
    check_connection(server, responses);
}

/// 200 requests pipelined in one write. Demo routes, `jitter_ms: 1`.
pub fn pipelined_requests_do_not_leak(server: &TestServer) {
    let responses = client_runtime().block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        // All requests in one write, before reading any response.
        let all: Vec<u8> = (0..200).flat_map(connection_request).collect();
        conn.send(&all).await;
        let mut out = Vec::new();
        for _ in 0..200 {
            out.push(conn.read_response().await);
        }
        out
    });
    check_connection(server, responses);
}

/// 50 keep-alive connections at once, 40 requests each. Demo routes,
/// `jitter_ms: 2`.
pub fn many_keep_alive_connections_in_parallel(server: &TestServer) {
    let addr = server.addr;
    let per_conn: Vec<Vec<super::RawResponse>> = client_runtime().block_on(async move {
        let mut tasks = Vec::new();
        for c in 0..50 {
            tasks.push(tokio::spawn(async move {
                let mut conn = RawConn::connect(addr).await;
                let mut out = Vec::new();
                for i in 0..40 {
                    let id = format!("x-request-id: c{c}-r{i}");
                    conn.send(&get_request(
                        &format!("/orders/c{c}-r{i}"),
                        &[id.as_bytes()],
                    ))
                    .await;
                    out.push(conn.read_response().await);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.unwrap());
        }
        all
    });
    for (c, responses) in per_conn.iter().enumerate() {
        for (i, res) in responses.iter().enumerate() {
            let expected = format!("c{c}-r{i}");
            assert_eq!(res.header("x-request-id").unwrap(), expected);
            assert_eq!(res.json()["seen"]["background"], expected);
        }
    }
    for line in server.lines() {
        if let Some(order) = str_field(&line, "order_id") {
            assert_eq!(str_field(&line, "request_id"), Some(order));
        }
    }
}

/// The routes [`every_way_a_request_ends`] calls, which each integration's
/// test serves:
///
/// - `GET /boom`: the handler panics with [`ENDS_PANIC`];
/// - `GET /broken`: a body that sends `part`, then fails;
/// - `GET /body-panic`: a body that sends `part`, then panics;
/// - `GET /forever`: an endless body of 64 KiB chunks;
/// - `GET /slow`: answers `late` after 2 s.
pub const ENDS_ROUTES: [&str; 5] = ["/boom", "/broken", "/body-panic", "/forever", "/slow"];

/// The panic message of `GET /boom` in [`ENDS_ROUTES`].
pub const ENDS_PANIC: &str = "access boom";

/// The panic message of `GET /body-panic`'s body in [`ENDS_ROUTES`].
pub const ENDS_BODY_PANIC: &str = "body boom";

/// A GET of `path` with `headers` on a new connection.
pub fn send(server: &TestServer, path: &str, headers: &[&[u8]]) -> RawResponse {
    one(server, &get_request(path, headers))
}

/// The access lines so far, once no new one has come for a while (they are
/// written when the body ends, which may be just after the client has its
/// response); at most 5 s.
pub fn access_lines(server: &TestServer) -> Vec<Value> {
    let read = || -> Vec<Value> {
        server
            .lines()
            .into_iter()
            .filter(|l| str_field(l, "logger") == Some("corrlog::access"))
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    std::thread::sleep(Duration::from_millis(50));
    let mut lines = read();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let again = read();
        if again.len() == lines.len() || std::time::Instant::now() > deadline {
            return again;
        }
        lines = again;
    }
}

/// The access lines of request `id`.
pub fn access_for<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| str_field(l, "request_id") == Some(id))
        .collect()
}

/// What a server does with a handler whose client went away before the
/// response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDisconnect {
    /// Drops it (hyper): the access line says `cancelled`.
    DropsTheHandler,
    /// Lets it run to its response (actix-web): the line is that of the
    /// response, status 200, written to a connection that is gone.
    RunsTheHandler,
}

/// Every way a request can end gives exactly one access line, with the
/// reason, level and status it should have; a panic is a 500 with the id,
/// on a connection that stays open, and an ERROR line with the panic's
/// message. The server serves [`ENDS_ROUTES`].
pub fn every_way_a_request_ends(server: &TestServer, on_disconnect: OnDisconnect) {
    let rt = client_runtime();

    // A panic: a 500 with the id, and the connection goes on serving.
    rt.block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(&get_request("/boom", &[b"x-request-id: end-panic"]))
            .await;
        let res = conn.read_response().await;
        assert_eq!(res.status, 500);
        assert_eq!(res.header("x-request-id").as_deref(), Some("end-panic"));
        assert_eq!(res.body, b"internal server error\n");
        conn.send(&get_request("/slow", &[b"x-request-id: end-after-panic"]))
            .await;
        let res = conn.read_response().await;
        assert_eq!(res.status, 200, "the connection survives the panic");
        assert_eq!(res.body, b"late");
    });
    // Bodies that fail or panic midway.
    for (path, id) in [
        ("/broken", "end-body-error"),
        ("/body-panic", "end-body-panic"),
    ] {
        rt.block_on(async {
            let mut conn = RawConn::connect(server.addr).await;
            let header = format!("x-request-id: {id}");
            conn.send(&get_request(path, &[header.as_bytes()])).await;
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::io::AsyncReadExt::read(&mut conn.stream, &mut buf),
            )
            .await;
        });
    }
    // The client goes away while the body streams.
    rt.block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(&get_request("/forever", &[b"x-request-id: end-disconnect"]))
            .await;
        let mut buf = vec![0u8; 256 * 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut conn.stream, &mut buf).await;
        drop(conn);
    });
    // The client goes away before the response.
    rt.block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(&get_request("/slow", &[b"x-request-id: end-cancelled"]))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(conn);
    });

    std::thread::sleep(Duration::from_millis(2500));
    let lines = access_lines(server);
    let expect = [
        ("end-panic", Some("panic"), "ERROR", Some(500u64)),
        ("end-after-panic", None, "INFO", Some(200)),
        ("end-body-error", Some("body_error"), "ERROR", Some(200)),
        ("end-body-panic", Some("body_panic"), "ERROR", Some(200)),
        (
            "end-disconnect",
            Some("client_disconnect"),
            "WARN",
            Some(200),
        ),
    ];
    let cancelled = access_for(&lines, "end-cancelled");
    assert_eq!(cancelled.len(), 1, "{cancelled:#?}");
    match on_disconnect {
        OnDisconnect::DropsTheHandler => {
            assert_eq!(str_field(cancelled[0], "reason"), Some("cancelled"));
            assert_eq!(cancelled[0]["level"], "WARN");
            assert!(cancelled[0]["status"].is_null());
        }
        OnDisconnect::RunsTheHandler => {
            // The body may or may not reach the closed socket's buffer.
            let reason = str_field(cancelled[0], "reason");
            assert!(
                matches!(reason, None | Some("client_disconnect")),
                "{reason:?}"
            );
            assert_eq!(cancelled[0]["status"], 200);
        }
    }
    for (id, reason, level, status) in expect {
        let mine = access_for(&lines, id);
        assert_eq!(mine.len(), 1, "{id}: {mine:#?}");
        assert_eq!(str_field(mine[0], "reason"), reason, "{id}: {}", mine[0]);
        assert_eq!(mine[0]["level"], level, "{id}");
        assert_eq!(mine[0]["status"].as_u64(), status, "{id}");
    }
    let all = server.lines();
    let error_line = |id: &str, message: &str| {
        all.iter()
            .find(|l| {
                str_field(l, "request_id") == Some(id) && str_field(l, "message") == Some(message)
            })
            .cloned()
            .unwrap_or_else(|| panic!("{id}: no {message:?} line"))
    };
    // One panic, one ERROR line (the hook's), besides the access line.
    for (id, message) in [
        ("end-panic", ENDS_PANIC),
        ("end-body-panic", ENDS_BODY_PANIC),
    ] {
        let panic_line = error_line(id, message);
        assert_eq!(panic_line["level"], "ERROR", "{id}");
        assert_eq!(panic_line["logger"], "corrlog::panic", "{id}");
        let errors = all
            .iter()
            .filter(|l| str_field(l, "request_id") == Some(id) && l["level"] == "ERROR");
        assert_eq!(errors.count(), 2, "{id}");
    }
}

/// GET `url` with `headers`; returns the response's id and JSON body.
pub fn get_json(url: &str, headers: &[(&str, &str)]) -> (String, Value) {
    client_runtime().block_on(async {
        let mut req = reqwest::Client::new().get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        (id, res.json().await.unwrap())
    })
}

/// The lines of `server` that belong to request `id`, checked to share one
/// trace id and one span id; returns (trace_id, span_id, count).
pub fn hop(server: &TestServer, id: &str) -> (String, String, usize) {
    let lines: Vec<Value> = server
        .lines()
        .into_iter()
        .filter(|l| str_field(l, "request_id") == Some(id))
        .collect();
    assert!(!lines.is_empty(), "no lines for {id}");
    let trace: HashSet<_> = lines.iter().map(|l| l["trace_id"].clone()).collect();
    let span: HashSet<_> = lines.iter().map(|l| l["span_id"].clone()).collect();
    assert_eq!(trace.len(), 1, "one trace id per hop: {trace:?}");
    assert_eq!(span.len(), 1, "one span id per hop: {span:?}");
    let t = trace
        .into_iter()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let s = span
        .into_iter()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.len(), 32);
    assert_eq!(s.len(), 16);
    (t, s, lines.len())
}

/// Three services chained `a -> b -> c` (each serving the demo routes,
/// `GET /orders/{id}` calling the next): one request id and one trace id
/// across all three, a span id per hop, the caller's trace continued.
pub fn three_hops_share_one_request_id_and_trace_id(
    a: &TestServer,
    b: &TestServer,
    c: &TestServer,
) {
    // With an incoming id and trace, and without either.
    let incoming_trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("x-request-id", "chain-1"), ("traceparent", incoming_trace)],
        vec![],
    ];
    for headers in cases {
        let (id, body) = get_json(&a.url("/orders/9"), &headers);
        // The JSON response nests each hop's answer.
        assert_eq!(body["request_id"], id.as_str());
        assert_eq!(body["downstream"]["request_id"], id.as_str());
        assert_eq!(body["downstream"]["downstream"]["request_id"], id.as_str());
        assert_eq!(
            body["downstream"]["downstream"]["seen"]["background"],
            id.as_str()
        );

        let (ta, sa, na) = hop(a, &id);
        let (tb, sb, nb) = hop(b, &id);
        let (tc, sc, nc) = hop(c, &id);
        assert_eq!(ta, tb);
        assert_eq!(tb, tc);
        assert_eq!(body["trace_id"], ta.as_str());
        if !headers.is_empty() {
            assert_eq!(
                ta, "0af7651916cd43dd8448eb211c80319c",
                "the caller's trace continues"
            );
        }
        let spans: HashSet<_> = [&sa, &sb, &sc].into_iter().collect();
        assert_eq!(spans.len(), 3, "each hop has its own span id");
        assert!(na >= 7 && nb >= 7 && nc >= 6, "{na} {nb} {nc}");
    }
}
