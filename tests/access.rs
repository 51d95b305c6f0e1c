//! The access log over a real server: its fields, levels, skip lists,
//! sampling, query and header redaction, trusted proxies, and exactly one
//! line with a reason for every way a request can end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::suites::{self, access_for, access_lines, send};
use common::{client_runtime, str_field, TestServer};
use corrlog::http::{AccessLog, ClientIpHeader};
use corrlog::RequestLayer;
use serde_json::Value;

fn routes() -> Router {
    Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/health/deep",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route(
            "/boom",
            get(|| async { panic!("access boom") as &'static str }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "late"
            }),
        )
        .route("/forever", get(|| async { Body::new(Forever) }))
        .route(
            "/sized",
            get(|| async {
                // Two chunks, then a body that never says it has ended;
                // the declared length tells the server when it is done.
                (
                    [(axum::http::header::CONTENT_LENGTH, "8")],
                    Body::new(NeverEnds { chunks: 2 }),
                )
            }),
        )
        .route(
            "/broken",
            get(|| async { Body::new(Broken { sent: false }) }),
        )
        .route(
            "/body-panic",
            get(|| async { Body::new(Panics { sent: false }) }),
        )
}

/// A body that panics after one chunk.
struct Panics {
    sent: bool,
}
impl http_body::Body for Panics {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        assert!(!self.sent, "body boom");
        self.sent = true;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
            b"part",
        )))))
    }
}

/// An endless body.
struct Forever;
impl http_body::Body for Forever {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            b'x';
            64 * 1024
        ])))))
    }
}

/// `chunks` chunks of four bytes, then pending for ever.
struct NeverEnds {
    chunks: u32,
}
impl http_body::Body for NeverEnds {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if self.chunks == 0 {
            return Poll::Pending;
        }
        self.chunks -= 1;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
            b"abcd",
        )))))
    }
}

/// A body that fails after one chunk.
struct Broken {
    sent: bool,
}
impl http_body::Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if self.sent {
            return Poll::Ready(Some(Err(std::io::Error::other("disk read failed"))));
        }
        self.sent = true;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
            b"part",
        )))))
    }
}

fn server(access: AccessLog) -> TestServer {
    TestServer::start_with_connect_info(2, routes().layer(RequestLayer::new().access_log(access)))
}

#[test]
fn one_line_per_request_with_the_fields() {
    let server = server(AccessLog::default());
    let res = send(
        &server,
        "/orders/42?token=secret&page=2",
        &[b"x-request-id: acc-1", b"user-agent: curl/8.5.0"],
    );
    assert_eq!(res.status, 200);
    let lines = access_lines(&server);
    let mine = access_for(&lines, "acc-1");
    assert_eq!(mine.len(), 1);
    let line = mine[0];
    assert_eq!(line["message"], "request finished");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/orders/42", "no query string by default");
    assert_eq!(line["route"], "/orders/{id}");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes_out"], 5);
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(line["user_agent"], "curl/8.5.0");
    assert!(line["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(line.get("reason").is_none());
}

#[test]
fn levels_follow_the_status() {
    let server = server(AccessLog::default());
    send(&server, "/orders/1", &[b"x-request-id: lvl-200"]);
    send(&server, "/nope", &[b"x-request-id: lvl-404"]);
    send(&server, "/health/deep", &[b"x-request-id: lvl-503"]);
    let lines = access_lines(&server);
    assert_eq!(access_for(&lines, "lvl-200")[0]["level"], "INFO");
    assert_eq!(access_for(&lines, "lvl-404")[0]["level"], "WARN");
    let line = access_for(&lines, "lvl-503")[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["status"], 503);
}

#[test]
fn skipped_paths_echo_the_id_and_still_log_failures() {
    let server = server(
        AccessLog::default()
            .skip_path("/health")
            .skip_prefix("/health/"),
    );
    let ok = send(&server, "/health", &[b"x-request-id: skip-ok"]);
    assert_eq!(ok.header("x-request-id").as_deref(), Some("skip-ok"));
    let failing = send(&server, "/health/deep", &[b"x-request-id: skip-fail"]);
    assert_eq!(failing.header("x-request-id").as_deref(), Some("skip-fail"));
    send(&server, "/orders/1", &[b"x-request-id: not-skipped"]);
    let lines = access_lines(&server);
    assert!(access_for(&lines, "skip-ok").is_empty());
    assert_eq!(access_for(&lines, "skip-fail").len(), 1);
    assert_eq!(access_for(&lines, "not-skipped").len(), 1);
}

#[test]
fn sampling_drops_only_successes_and_start_lines_are_optional() {
    let server = server(AccessLog::default().sample_success(0.0).log_start(true));
    for i in 0..20 {
        send(
            &server,
            "/orders/1",
            &[format!("x-request-id: ok-{i}").as_bytes()],
        );
    }
    send(&server, "/nope", &[b"x-request-id: sampled-404"]);
    let lines = access_lines(&server);
    let finished: Vec<_> = lines
        .iter()
        .filter(|l| str_field(l, "message") == Some("request finished"))
        .collect();
    assert_eq!(finished.len(), 1, "only the 404 is logged");
    assert_eq!(finished[0]["request_id"], "sampled-404");
    let started = lines
        .iter()
        .filter(|l| str_field(l, "message") == Some("request started"))
        .count();
    assert_eq!(started, 21);
}

#[test]
fn query_strings_and_headers_are_redacted() {
    let access = AccessLog::default().include_query(true).log_headers([
        axum::http::header::ACCEPT,
        axum::http::header::AUTHORIZATION,
        axum::http::header::COOKIE,
    ]);
    let server = server(access);
    send(
        &server,
        "/orders/7?access_token=tok123&page=2",
        &[
            b"x-request-id: red-1",
            b"Accept: text/plain",
            b"AUTHORIZATION: Bearer abc.def",
            b"authorization: Basic Ym9iOnB3",
            b"Cookie: session=s3cr3t",
        ],
    );
    let lines = access_lines(&server);
    let line = access_for(&lines, "red-1")[0];
    assert_eq!(line["path"], "/orders/7?access_token=[REDACTED]&page=2");
    let headers = line["headers"].as_str().unwrap();
    assert_eq!(
        headers,
        "accept: text/plain, authorization: [REDACTED], authorization: [REDACTED], cookie: [REDACTED]"
    );
    let raw = String::from_utf8_lossy(&server.capture.bytes()).into_owned();
    for secret in ["tok123", "abc.def", "Ym9iOnB3", "s3cr3t"] {
        assert!(!raw.contains(secret), "{secret} leaked");
    }
}

fn client_ip_of(server: &TestServer, id: &str) -> Value {
    access_for(&access_lines(server), id)[0]["client_ip"].clone()
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let untrusted = server(AccessLog::default());
    send(
        &untrusted,
        "/orders/1",
        &[b"x-request-id: xff-1", b"x-forwarded-for: 203.0.113.9"],
    );
    assert_eq!(client_ip_of(&untrusted, "xff-1"), "127.0.0.1");

    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let trusted =
        server(AccessLog::default().trusted_proxies([loopback, "10.0.0.2".parse().unwrap()]));
    send(
        &trusted,
        "/orders/1",
        &[
            b"x-request-id: xff-2",
            b"x-forwarded-for: 198.51.100.1, 203.0.113.9, 10.0.0.2",
        ],
    );
    // Hops with ports, as some proxies write them.
    send(
        &trusted,
        "/orders/1",
        &[
            b"x-request-id: xff-port",
            b"x-forwarded-for: 6.6.6.6, 203.0.113.7:51234",
        ],
    );
    // A hop that cannot be read stops the walk: what lies left of it was
    // written by the client, so the peer is all we can vouch for.
    send(
        &trusted,
        "/orders/1",
        &[
            b"x-request-id: xff-junk",
            b"x-forwarded-for: 6.6.6.6, not-an-ip",
        ],
    );
    assert_eq!(client_ip_of(&trusted, "xff-2"), "203.0.113.9");
    assert_eq!(client_ip_of(&trusted, "xff-port"), "203.0.113.7");
    assert_eq!(client_ip_of(&trusted, "xff-junk"), "127.0.0.1");

    let forwarded = server(
        AccessLog::default()
            .trusted_proxies([loopback])
            .client_ip_header(ClientIpHeader::Forwarded),
    );
    send(
        &forwarded,
        "/orders/1",
        &[
            b"x-request-id: fwd-1",
            b"forwarded: for=\"[2001:db8::7]:443\";proto=https",
        ],
    );
    send(
        &forwarded,
        "/orders/1",
        &[
            b"x-request-id: fwd-hidden",
            b"forwarded: for=6.6.6.6, for=_hidden",
        ],
    );
    assert_eq!(client_ip_of(&forwarded, "fwd-1"), "2001:db8::7");
    assert_eq!(client_ip_of(&forwarded, "fwd-hidden"), "127.0.0.1");

    let ranges = server(AccessLog::default().trusted_proxies(
        ["127.0.0.0/8", "10.0.0.0/8"].map(|n| n.parse::<ipnet::IpNet>().unwrap()),
    ));
    send(
        &ranges,
        "/orders/1",
        &[
            b"x-request-id: xff-net",
            b"x-forwarded-for: 198.51.100.1, 203.0.113.9, 10.20.30.40",
        ],
    );
    assert_eq!(client_ip_of(&ranges, "xff-net"), "203.0.113.9");
}

/// Proxies append to one header family and pass the other through as the
/// client sent it: only the configured family may be read.
#[test]
fn only_the_configured_header_family_names_the_client() {
    let both: [&[u8]; 2] = [b"forwarded: for=6.6.6.6", b"x-forwarded-for: 203.0.113.9"];
    let with_id = |id: &'static [u8]| {
        let mut headers = vec![id];
        headers.extend_from_slice(&both);
        headers
    };
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let xff = server(AccessLog::default().trusted_proxies([loopback]));
    send(&xff, "/orders/1", &with_id(b"x-request-id: fam-xff"));
    send(
        &xff,
        "/orders/1",
        &[
            b"x-request-id: fam-unknown",
            b"forwarded: for=unknown",
            b"x-forwarded-for: 198.51.100.4",
        ],
    );
    assert_eq!(client_ip_of(&xff, "fam-xff"), "203.0.113.9");
    assert_eq!(client_ip_of(&xff, "fam-unknown"), "198.51.100.4");

    let fwd = server(
        AccessLog::default()
            .trusted_proxies([loopback])
            .client_ip_header(ClientIpHeader::Forwarded),
    );
    send(&fwd, "/orders/1", &with_id(b"x-request-id: fam-fwd"));
    assert_eq!(client_ip_of(&fwd, "fam-fwd"), "6.6.6.6");

    // Through an untrusted peer neither family counts.
    let untrusted = server(AccessLog::default());
    send(&untrusted, "/orders/1", &with_id(b"x-request-id: fam-none"));
    assert_eq!(client_ip_of(&untrusted, "fam-none"), "127.0.0.1");
}

#[test]
fn every_way_a_request_ends_gives_exactly_one_line_with_a_reason() {
    suites::every_way_a_request_ends(
        &server(AccessLog::default()),
        suites::OnDisconnect::DropsTheHandler,
    );
}

#[test]
fn a_timeout_inside_the_layer_is_a_response_with_the_id() {
    let timeout = Router::new()
        .route(
            "/timeout",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "never"
            }),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(100),
        ));
    let server = TestServer::start(2, timeout.layer(RequestLayer::new()));
    let res = send(&server, "/timeout", &[b"x-request-id: end-timeout"]);
    assert_eq!(res.status, 408);
    assert_eq!(res.header("x-request-id").as_deref(), Some("end-timeout"));
    let lines = access_lines(&server);
    let mine = access_for(&lines, "end-timeout");
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert_eq!(str_field(mine[0], "reason"), None);
    assert_eq!(mine[0]["level"], "WARN");
    assert_eq!(mine[0]["status"], 408);
}

#[test]
fn bodies_the_server_never_reads_to_the_end_are_not_disconnects() {
    // HEAD gets no body (the server drops it unread), and a body whose
    // declared length has been sent is dropped without being polled to
    // its end: both are normal ends, at INFO, and skip lists apply.
    let server = server(AccessLog::default().skip_path("/health"));
    let rt = client_runtime();
    rt.block_on(async {
        let client = reqwest::Client::new();
        for (method, path, id) in [
            (reqwest::Method::HEAD, "/orders/1", "head-order"),
            (reqwest::Method::HEAD, "/health", "head-health"),
            (reqwest::Method::GET, "/sized", "sized-body"),
        ] {
            let res = client
                .request(method, server.url(path))
                .header("x-request-id", id)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["x-request-id"], id);
            let body = res.bytes().await.unwrap();
            if id == "sized-body" {
                assert_eq!(&body[..], b"abcdabcd");
            }
        }
    });
    let lines = access_lines(&server);
    for id in ["head-order", "sized-body"] {
        let mine = access_for(&lines, id);
        assert_eq!(mine.len(), 1, "{id}: {mine:#?}");
        assert_eq!(str_field(mine[0], "reason"), None, "{id}: {}", mine[0]);
        assert_eq!(mine[0]["level"], "INFO", "{id}");
    }
    assert_eq!(access_for(&lines, "sized-body")[0]["bytes_out"], 8);
    assert!(access_for(&lines, "head-health").is_empty(), "{lines:#?}");
}

#[test]
fn the_access_log_can_be_turned_off() {
    let server = TestServer::start(
        2,
        routes().layer(
            RequestLayer::new().access_log(corrlog::http::AccessLog::default().enabled(false)),
        ),
    );
    let res = send(&server, "/orders/1", &[b"x-request-id: off-1"]);
    assert_eq!(res.header("x-request-id").as_deref(), Some("off-1"));
    assert!(access_lines(&server).is_empty());
}
