//! Queue messages carry the request: a producer serving a request injects
//! its id and trace into message headers, sent over a real channel; the
//! consumer extracts a context from each message and logs in it. Hostile
//! header values are replaced, never echoed or logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use corrlog::context::TraceContext;
use corrlog::http::X_REQUEST_ID;
use corrlog::propagate as carrier;
use corrlog::testing::TestLogs;
use corrlog::{RequestContext, RequestId};
use serde_json::Value;

struct Message {
    headers: HashMap<String, String>,
    body: u32,
}

/// Runs a consumer loop over `messages` on a multi-thread runtime;
/// returns every line.
fn consume(messages: Vec<Message>) -> Vec<Value> {
    let logs = TestLogs::new();
    let rt = logs.runtime(2);
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(64);
        let consumer = tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                let ctx = carrier::extract(&message.headers);
                ctx.scope(async {
                    tokio::task::yield_now().await;
                    tracing::info!(target: "worker", body = message.body, "message handled");
                })
                .await;
            }
        });
        for message in messages {
            tx.send(message).await.unwrap();
        }
        drop(tx);
        consumer.await.unwrap();
    });
    drop(rt);
    common::parse_lines(logs.bytes().as_slice())
}

#[test]
fn a_message_continues_the_request_that_sent_it() {
    let logs = TestLogs::new();
    let rt = logs.runtime(2);
    // Producers: 200 requests, each with its own id and trace, each
    // sending one message from inside its context.
    let (messages, sent) = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let ctx = RequestContext::with_trace(
                RequestId::new(&format!("req-{i}")).unwrap(),
                Some(TraceContext::new_root()),
                X_REQUEST_ID,
            );
            tasks.push(tokio::spawn(ctx.clone().scope(async move {
                tokio::task::yield_now().await;
                let mut headers = HashMap::new();
                assert!(carrier::inject(&mut headers));
                let trace = corrlog::RequestContext::current()
                    .unwrap()
                    .trace()
                    .unwrap()
                    .clone();
                (Message { headers, body: i }, trace)
            })));
        }
        let mut messages = Vec::new();
        let mut sent = Vec::new();
        for task in tasks {
            let (message, trace) = task.await.unwrap();
            messages.push(message);
            sent.push(trace);
        }
        (messages, sent)
    });
    drop(rt);
    let lines = consume(messages);
    assert_eq!(lines.len(), 200);
    for line in &lines {
        let i = line["body"].as_u64().unwrap() as usize;
        assert_eq!(line["request_id"], format!("req-{i}"));
        // The same trace, a new span for the consumer's hop.
        assert_eq!(line["trace_id"], sent[i].trace_id_hex());
        assert_ne!(line["span_id"], sent[i].span_id_hex());
        assert_eq!(line["trace_flags"], "01");
    }
}

#[test]
fn hostile_header_values_are_replaced_and_never_logged() {
    let mut messages = Vec::new();
    let mut raw = Vec::new();
    for (i, (_, id)) in common::hostile_ids().into_iter().enumerate() {
        let id = String::from_utf8_lossy(&id).into_owned();
        let traceparent = format!("00-{id}-00f067aa0ba902b7-01");
        let headers = HashMap::from([
            ("x-request-id".to_owned(), id.clone()),
            ("traceparent".to_owned(), traceparent),
            ("tracestate".to_owned(), format!("k={id}")),
        ]);
        raw.push(id);
        messages.push(Message {
            headers,
            body: i as u32,
        });
    }
    // Uppercase keys are found too; a valid id is kept.
    messages.push(Message {
        headers: HashMap::from([
            ("X-Request-ID".to_owned(), "fine-1".to_owned()),
            (
                "TraceParent".to_owned(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ),
            ("tracestate".to_owned(), "congo=t61,bad key=1".to_owned()),
        ]),
        body: 999,
    });
    let lines = consume(messages);
    let text = lines
        .iter()
        .map(|l| serde_json::to_string(l).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    for line in &lines {
        if line["body"] == 999 {
            assert_eq!(line["request_id"], "fine-1");
            assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
            continue;
        }
        assert!(
            common::is_uuid_v4(line["request_id"].as_str().unwrap()),
            "{line}"
        );
        assert_ne!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    }
    for id in &raw {
        if id.len() > 3 && !id.trim().is_empty() {
            assert!(!text.contains(id.as_str()), "{id:?} was logged");
        }
    }
    // The valid member of a tracestate goes on; the broken one does not.
    let ctx = carrier::extract(&HashMap::from([
        (
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        ),
        ("tracestate".to_owned(), "congo=t61,bad key=1".to_owned()),
    ]));
    assert_eq!(ctx.trace().unwrap().tracestate(), Some("congo=t61"));
}

#[test]
fn every_carrier_type_round_trips() {
    let ctx = RequestContext::with_trace(
        RequestId::new("rt-1").unwrap(),
        Some(TraceContext::new_root()),
        X_REQUEST_ID,
    );
    let check = |extracted: RequestContext| {
        assert_eq!(extracted.id().as_str(), "rt-1");
        assert_eq!(
            extracted.trace().unwrap().trace_id_hex(),
            ctx.trace().unwrap().trace_id_hex()
        );
        assert_eq!(
            extracted.trace().unwrap().parent_span_id_hex(),
            Some(ctx.trace().unwrap().span_id_hex())
        );
    };
    let mut map: HashMap<String, String> = HashMap::from([("X-REQUEST-ID".into(), "old".into())]);
    carrier::inject_from(&ctx, &mut map);
    assert_eq!(map.len(), 2, "the old id replaced, whatever its case");
    check(carrier::extract(&map));
    let mut tree = std::collections::BTreeMap::new();
    carrier::inject_from(&ctx, &mut tree);
    check(carrier::extract(&tree));
    let mut list: Vec<(String, String)> = vec![("x-request-id".into(), "old".into())];
    carrier::inject_from(&ctx, &mut list);
    assert_eq!(list.len(), 2);
    check(carrier::extract(&list));
    check(carrier::extract(list.as_slice()));
    let mut headers = http::HeaderMap::new();
    carrier::inject_from(&ctx, &mut headers);
    check(carrier::extract(&headers));
    // Outside a request nothing is written.
    let mut empty: HashMap<String, String> = HashMap::new();
    assert!(!carrier::inject(&mut empty));
    assert!(empty.is_empty());
}

/// Every carrier goes through one `inject_from`: keys of another case are
/// replaced, and a `tracestate` of another trace does not stay beside the
/// new `traceparent`.
#[test]
fn stale_keys_are_replaced_in_every_carrier() {
    let ctx = RequestContext::with_trace(
        RequestId::new("fresh-1").unwrap(),
        Some(TraceContext::new_root()),
        X_REQUEST_ID,
    );
    let stale = [
        ("X-Request-Id", "old-id"),
        (
            "TRACEPARENT",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("TraceState", "old=1"),
    ];
    let expect = |pairs: Vec<(String, String)>| {
        let mut keys: Vec<String> = pairs.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
        keys.sort();
        assert_eq!(keys, ["traceparent", "x-request-id"], "{pairs:?}");
        assert!(
            pairs
                .iter()
                .all(|(_, v)| !v.contains("old") && !v.contains("0af76519")),
            "{pairs:?}"
        );
    };
    let owned = || {
        stale
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    };
    let mut list: Vec<(String, String)> = owned().collect();
    carrier::inject_from(&ctx, &mut list);
    expect(list);
    let mut map: HashMap<String, String> = owned().collect();
    carrier::inject_from(&ctx, &mut map);
    expect(map.into_iter().collect());
    let mut tree: std::collections::BTreeMap<String, String> = owned().collect();
    carrier::inject_from(&ctx, &mut tree);
    expect(tree.into_iter().collect());
    let mut headers = http::HeaderMap::new();
    for (k, v) in stale {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    carrier::inject_from(&ctx, &mut headers);
    expect(
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect(),
    );
}

/// The outcome the HTTP layer and every carrier must agree on: the id
/// (kept, or a new one), the trace id (continued, or a new one) and the
/// `tracestate` passed on.
fn outcome(id: &str, trace_id: &str, tracestate: Option<&str>) -> (String, String, String) {
    let id = if common::is_uuid_v4(id) { "new" } else { id };
    let trace = if trace_id == TRACE_ID {
        "continued"
    } else {
        "new"
    };
    (
        id.to_owned(),
        trace.to_owned(),
        tracestate.unwrap_or("-").to_owned(),
    )
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Carriers validate as the HTTP layer does, one rule for all: a value
/// with Unicode whitespace is replaced (not trimmed into a valid id), the
/// spaces and tabs an HTTP parser strips are stripped, a key sent twice
/// in any case replaces the id or starts a new trace, and every
/// `tracestate` is joined. Each case goes once over a real HTTP server as
/// raw bytes and once through each carrier type.
#[test]
fn every_carrier_validates_as_the_http_layer_does() {
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let padded = format!(" {TRACEPARENT}\t");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("x-request-id", "id\u{2028}")],
        vec![("x-request-id", "id\u{a0}")],
        vec![("x-request-id", " \tid-2\t ")],
        vec![("x-request-id", "a-1"), ("X-Request-Id", "b-1")],
        vec![("x-request-id", "a-1"), ("x-request-id", "a-1")],
        vec![
            ("x-request-id", "c-1"),
            ("traceparent", TRACEPARENT),
            ("TRACEPARENT", other),
        ],
        vec![
            ("x-request-id", "d-1"),
            ("traceparent", TRACEPARENT),
            ("tracestate", "a=1"),
            ("Tracestate", "b=2,a=3"),
        ],
        vec![("x-request-id", "e-1"), ("traceparent", &padded)],
    ];

    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async {
                let ctx = RequestContext::current().unwrap();
                let trace = ctx.trace().unwrap();
                format!(
                    "{}|{}|{}",
                    ctx.id(),
                    trace.trace_id_hex(),
                    trace.tracestate().unwrap_or("-")
                )
            }),
        )
        .layer(corrlog::RequestLayer::new());
    let server = common::TestServer::start(2, app);

    for case in &cases {
        let headers: String = case.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let response = common::demo::get(server.addr, "/", &headers);
        let body = response.rsplit("\r\n\r\n").next().unwrap();
        let parts: Vec<&str> = body.trim().split('|').collect();
        let [id, trace_id, state] = parts[..] else {
            panic!("{case:?}: {response}");
        };
        let state = (state != "-").then_some(state);
        let over_http = outcome(id, trace_id, state);

        let pairs: Vec<(String, String)> = case
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut header_map = http::HeaderMap::new();
        for (k, v) in case {
            header_map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v)
                    .unwrap_or_else(|_| http::HeaderValue::from_bytes(v.as_bytes()).unwrap()),
            );
        }
        let map: HashMap<String, String> = pairs.iter().cloned().collect();
        let mut contexts = vec![
            ("pairs", carrier::extract(&pairs)),
            ("HeaderMap", carrier::extract(&header_map)),
        ];
        // A map keeps one value per exact key, and a hash map has no
        // order to join several `tracestate` values in.
        let tracestates = case
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("tracestate"))
            .count();
        if map.len() == pairs.len() && tracestates < 2 {
            contexts.push(("HashMap", carrier::extract(&map)));
        }
        for (name, ctx) in contexts {
            let trace = ctx.trace().unwrap();
            let got = outcome(ctx.id().as_str(), &trace.trace_id_hex(), trace.tracestate());
            assert_eq!(got, over_http, "{name}, {case:?}");
        }
    }
    // What HTTP decided, spelled out for the cases that changed.
    let expect = |case: usize| -> (String, String, String) {
        let headers: String = cases[case]
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let response = common::demo::get(server.addr, "/", &headers);
        let body = response
            .rsplit("\r\n\r\n")
            .next()
            .unwrap()
            .trim()
            .to_owned();
        let parts: Vec<&str> = body.split('|').collect();
        outcome(parts[0], parts[1], (parts[2] != "-").then_some(parts[2]))
    };
    assert_eq!(expect(0).0, "new", "Unicode whitespace is not trimmed away");
    assert_eq!(expect(2).0, "id-2", "spaces and tabs are");
    assert_eq!(expect(3).0, "new", "a key twice, in another case");
    assert_eq!(expect(5).1, "new", "two traceparents start a new trace");
    assert_eq!(expect(6).2, "a=1,b=2", "every tracestate is joined");
    assert_eq!(expect(7).1, "continued");
}
