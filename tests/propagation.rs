//! Reading the id from any depth of a real request: handler, sync code,
//! corrlog::spawn, spawn_blocking, std threads, futures handed elsewhere,
//! and tracing's in_current_span. Without the helpers the id is absent,
//! never wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::routing::get;
use axum::{Json, Router};
use common::{client_runtime, str_field, TestServer};
use corrlog::context::FutureExt;
use serde_json::{json, Value};
use tracing::Instrument;

fn id() -> Value {
    corrlog::request_id().map_or(Value::Null, |id| Value::String(id.to_string()))
}

async fn everywhere() -> Json<Value> {
    let sync = id();
    let spawned = corrlog::spawn(async { id() }).await.unwrap();
    let blocking = corrlog::spawn_blocking(id).await.unwrap();
    let thread = std::thread::spawn(corrlog::context::capture(id))
        .join()
        .unwrap();
    let handed = tokio::spawn(async { id() }.in_current_request())
        .await
        .unwrap();

    // Bare spawns: no id, never a wrong one.
    let bare_spawn = tokio::spawn(async {
        tracing::info!("from a bare spawn");
        id()
    })
    .await
    .unwrap();
    let bare_blocking = tokio::task::spawn_blocking(id).await.unwrap();
    let bare_thread = std::thread::spawn(id).join().unwrap();

    // tracing's own propagation: with the request span on, the line still
    // gets the id via the span, though request_id() cannot see it.
    let via_span = tokio::spawn(
        async {
            tracing::info!("from an in_current_span future");
            id()
        }
        .in_current_span(),
    )
    .await
    .unwrap();

    Json(json!({
        "sync": sync, "spawn": spawned, "spawn_blocking": blocking, "thread": thread,
        "in_current_request": handed, "bare_spawn": bare_spawn,
        "bare_spawn_blocking": bare_blocking, "bare_thread": bare_thread, "via_span": via_span,
    }))
}

#[test]
fn the_id_reaches_every_depth_through_the_helpers_and_nothing_else() {
    every_depth(true);
}

#[test]
fn without_the_request_span_in_current_span_carries_no_id() {
    every_depth(false);
}

/// Serves 50 requests; `request_span` says whether the layer makes its
/// `request` span, which `.in_current_span()` futures carry.
fn every_depth(request_span: bool) {
    let app = Router::new()
        .route("/", get(everywhere))
        .layer(corrlog::RequestLayer::new().request_span(request_span));
    let server = TestServer::start(4, app);
    let rt = client_runtime();
    for i in 0..50 {
        let sent = format!("depth-{i}");
        let body: Value = rt.block_on(async {
            reqwest::Client::new()
                .get(server.url("/"))
                .header("x-request-id", &sent)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        for key in [
            "sync",
            "spawn",
            "spawn_blocking",
            "thread",
            "in_current_request",
        ] {
            assert_eq!(body[key], sent.as_str(), "{key}");
        }
        for key in [
            "bare_spawn",
            "bare_spawn_blocking",
            "bare_thread",
            "via_span",
        ] {
            assert_eq!(body[key], Value::Null, "{key}");
        }
    }
    let lines = server.lines();
    let bare: Vec<_> = lines
        .iter()
        .filter(|l| str_field(l, "message") == Some("from a bare spawn"))
        .collect();
    assert_eq!(bare.len(), 50);
    assert!(bare.iter().all(|l| l.get("request_id").is_none()));
    let spanned: Vec<_> = lines
        .iter()
        .filter(|l| str_field(l, "message") == Some("from an in_current_span future"))
        .collect();
    assert_eq!(spanned.len(), 50);
    if !request_span {
        // No span to carry it: no id, never a wrong one.
        assert!(spanned.iter().all(|l| l.get("request_id").is_none()));
        return;
    }
    for i in 0..50 {
        let sent = format!("depth-{i}");
        assert!(spanned
            .iter()
            .any(|l| str_field(l, "request_id") == Some(sent.as_str())));
    }
}
