//! Caller-side cost of one log event inside a request context.
//!
//! Run with `cargo bench --bench encode`. Each stack writes to
//! `io::sink()`, so this times formatting alone:
//! - corrlog `LogLayer` (flat JSON, request id and bound fields at top
//!   level);
//! - `tracing_subscriber::fmt().json()` with the request id in a span (the
//!   usual way to get it onto lines with the stock formatter).
#![allow(missing_docs)]

use std::io;

use corrlog::writer::WriterSink;
use corrlog::{LogLayer, RequestContext, RequestId};
use criterion::{criterion_group, criterion_main, Criterion};
use tracing_subscriber::layer::SubscriberExt;

fn event() {
    tracing::info!(order_id = 42, user = "alice", "processing order");
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("event");

    let corrlog = tracing_subscriber::registry().with(LogLayer::json(WriterSink::new(io::sink())));
    tracing::subscriber::with_default(corrlog, || {
        let ctx = RequestContext::new(RequestId::generate());
        ctx.bind("tenant", "acme");
        ctx.run(|| {
            g.bench_function("corrlog LogLayer", |b| b.iter(event));
        });
    });

    let fmt_json = tracing_subscriber::fmt()
        .json()
        .with_writer(io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(fmt_json, || {
        let span =
            tracing::info_span!("request", request_id = %RequestId::generate(), tenant = "acme");
        let _e = span.enter();
        g.bench_function("fmt().json()", |b| b.iter(event));
    });
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
