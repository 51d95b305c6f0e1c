//! Hostile input against the real server over raw sockets (no client
//! library to refuse bad bytes). For every class of bad `x-request-id`,
//! path and user agent: the response id is always a valid id, the raw value
//! never appears in a response header or a log line, every line parses as
//! JSON, and the server keeps serving. A request the HTTP parser itself
//! refuses (hyper answers 400/431 before any middleware runs) reaches
//! neither the service nor the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use common::{
    client_runtime, contains, get_request, hostile_ids, str_field, RawConn, RawResponse, TestServer,
};
use corrlog::http::IdPolicy;

/// What must never be echoed or logged: the raw value, or a tell-tale part.
fn needle(value: &[u8]) -> Vec<u8> {
    if value.len() > 64 {
        value[..64].to_vec()
    } else {
        value.to_vec()
    }
}

fn one(server: &TestServer, request: &[u8]) -> RawResponse {
    client_runtime().block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(request).await;
        conn.read_response().await
    })
}

fn assert_output_clean(server: &TestServer, values: &[(&str, Vec<u8>)]) {
    let raw = server.capture.bytes();
    common::parse_lines(&raw);
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

#[test]
fn hostile_request_ids_are_replaced_and_never_echoed_or_logged() {
    let server = TestServer::start(
        2,
        app::routes(app::AppConfig::default(), None).layer(corrlog::RequestLayer::new()),
    );
    let mut issued = Vec::new();
    let mut refused = Vec::new();
    for (name, value) in hostile_ids() {
        let mut header = b"x-request-id: ".to_vec();
        header.extend_from_slice(&value);
        let res = one(&server, &get_request("/orders/1", &[&header]));
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
            common::is_uuid_v4(&id),
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
    assert_output_clean(&server, &hostile_ids());
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
    assert_eq!(one(&server, &get_request("/", &[])).status, 200);
}

#[test]
fn hostile_paths_and_user_agents_stay_inside_their_strings() {
    let server = TestServer::start(
        2,
        app::routes(app::AppConfig::default(), None).layer(corrlog::RequestLayer::new()),
    );
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
            common::INVISIBLE.iter().collect::<String>().into_bytes(),
        ),
    ];
    for (name, path) in &paths {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(path);
        req.extend_from_slice(b" HTTP/1.1\r\nhost: t\r\n\r\n");
        let res = one(&server, &req);
        assert!(res.status < 500, "{name}: {}", res.status);
    }
    for (name, agent) in &agents {
        let mut header = b"user-agent: ".to_vec();
        header.extend_from_slice(agent);
        let res = one(&server, &get_request("/", &[&header]));
        assert!(
            res.status == 200 || res.status == 400 || res.status == 431,
            "{name}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let raw = server.capture.bytes();
    let lines = common::parse_lines(&raw);
    assert!(
        lines.iter().all(|l| l["level"] != "ERROR"),
        "no injected ERROR level"
    );
    assert!(
        lines.iter().all(|l| l.to_string().len() < 64 * 1024),
        "values are bounded"
    );
    assert!(!raw.iter().any(|&b| b < 0x20 && b != b'\n'));
    let text = String::from_utf8(raw).unwrap();
    for c in common::INVISIBLE {
        assert!(!text.contains(*c), "{c:?} written raw");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["user_agent"] == common::INVISIBLE.iter().collect::<String>()),
        "the access line keeps the agent, escaped"
    );
    assert_eq!(one(&server, &get_request("/", &[])).status, 200);
}

#[test]
fn keep_alive_and_pipelined_sequences_mixing_good_bad_ids_and_panics() {
    let server = TestServer::start(
        4,
        app::routes(app::AppConfig { jitter_ms: 1 }, None).layer(corrlog::RequestLayer::new()),
    );
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
                None => assert!(common::is_uuid_v4(&id), "{i}: {id}"),
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
    common::parse_lines(&raw);
    for b in &bad {
        assert!(!contains(&raw, b), "bad id logged raw");
    }
    assert!(!contains(&raw, b"dup-a-") && !contains(&raw, b"dup-b-"));
}
