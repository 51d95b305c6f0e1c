//! The two demos are interchangeable from outside: the actix-web demo
//! (`actix_demo`) and the axum demo (`demo`), each in a process of its own,
//! get the same requests and must give the same statuses, id headers,
//! bodies (up to the ids), and the same lines per request (logger, message,
//! level, fields), and both shut down cleanly on SIGTERM with every line
//! written. The command line is the same too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;

use common::demo::{example_binary, get, start_example, stop};
use serde_json::Value;

/// The requests both demos get: (label, path, extra headers).
const REQUESTS: [(&str, &str, &str); 7] = [
    ("index", "/", "x-request-id: same-index\r\n"),
    ("order", "/orders/42", "x-request-id: same-order\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"),
    ("unavailable", "/orders/fail-1", "x-request-id: same-fail\r\n"),
    ("stream", "/stream/3", "x-request-id: same-stream\r\n"),
    ("boom", "/boom", "x-request-id: same-boom\r\n"),
    ("missing", "/nowhere", "x-request-id: same-missing\r\n"),
    ("hostile", "/orders/7", "x-request-id: bad \"id\"\r\n"),
];

struct Answer {
    status: String,
    id: Option<String>,
    body: String,
}

fn ask(addr: SocketAddr, path: &str, headers: &str) -> Answer {
    let raw = get(addr, path, headers);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_owned();
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .map(str::to_owned);
    Answer {
        status,
        id,
        body: body.to_owned(),
    }
}

/// A body with the per-run values (ids, trace ids) masked, and chunked
/// framing undone.
fn shape(answer: &Answer) -> String {
    let mut body = answer.body.clone();
    if let Some(id) = &answer.id {
        body = body.replace(id.as_str(), "<id>");
    }
    if let Ok(mut json) = serde_json::from_str::<Value>(&body) {
        if json.get("trace_id").is_some() {
            json["trace_id"] = Value::from("<trace>");
        }
        return json.to_string();
    }
    // Chunked: keep the chunk payloads only.
    body.lines()
        .filter(|l| !l.chars().all(|c| c.is_ascii_hexdigit()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a line says, without its per-run values: level, logger, message
/// and the names of its fields (a panic line's `panic.*` fields name the
/// thread and the source file, which differ).
fn line_shape(line: &Value) -> String {
    let fields: BTreeSet<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with("service.") && !k.starts_with("panic."))
        .collect();
    format!(
        "{} {} {:?} {fields:?}",
        line["level"], line["logger"], line["message"]
    )
}

/// Runs the requests against the example `name`; returns the answers and,
/// per label, the shapes of the request's lines.
fn run(name: &str) -> (Vec<Answer>, BTreeMap<&'static str, Vec<String>>) {
    let (demo, stdout, addr) = start_example(name, &[("RUST_LOG", "debug")]);
    let answers: Vec<Answer> = REQUESTS
        .iter()
        .map(|(_, path, headers)| ask(addr, path, headers))
        .collect();
    let (out, err) = stop(demo, stdout);
    assert!(
        out.contains("\"message\":\"shut down cleanly\""),
        "{name}: {out}"
    );
    assert!(err.contains(" dropped, 0 failed"), "{name}: {err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect();
    let mut shapes = BTreeMap::new();
    for ((label, _, _), answer) in REQUESTS.iter().zip(&answers) {
        let id = answer.id.as_deref().unwrap();
        let mine: Vec<String> = lines
            .iter()
            .filter(|l| l["request_id"] == id)
            .map(line_shape)
            .collect();
        assert!(!mine.is_empty(), "{name} {label}: no lines");
        shapes.insert(*label, mine);
    }
    (answers, shapes)
}

#[test]
fn the_actix_and_axum_demos_answer_and_log_alike() {
    let (axum, axum_lines) = run("demo");
    let (actix, actix_lines) = run("actix_demo");
    for (((label, _, _), a), b) in REQUESTS.iter().zip(&axum).zip(&actix) {
        assert_eq!(a.status, b.status, "{label}: status");
        match *label {
            "hostile" => {
                assert!(common::is_uuid_v4(a.id.as_deref().unwrap()));
                assert!(common::is_uuid_v4(b.id.as_deref().unwrap()));
            }
            _ => assert_eq!(a.id, b.id, "{label}: id header"),
        }
        if *label != "missing" {
            assert_eq!(shape(a), shape(b), "{label}: body");
        }
        let (mut la, mut lb) = (axum_lines[label].clone(), actix_lines[label].clone());
        // The same lines; their order across tasks may differ.
        la.sort();
        lb.sort();
        assert_eq!(la, lb, "{label}: lines");
    }
}

#[test]
fn the_command_line_is_the_same() {
    for args in [
        &["--help"][..],
        &["--jitter-ms", "soon"],
        &["--downstream", "ftp://x"],
    ] {
        let outputs: Vec<(Option<i32>, String)> = ["demo", "actix_demo"]
            .iter()
            .map(|name| {
                let out = Command::new(example_binary(name))
                    .args(args)
                    .output()
                    .unwrap();
                let text = String::from_utf8(out.stderr)
                    .unwrap()
                    .replace("actix_demo", "demo");
                (out.status.code(), text)
            })
            .collect();
        assert_eq!(outputs[0], outputs[1], "{args:?}");
        assert_eq!(outputs[0].0, Some(2), "{args:?}");
    }
}
