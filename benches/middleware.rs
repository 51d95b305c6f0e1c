//! Per-request cost of the middleware without the network: a request
//! through `RequestLayer` around a trivial service, its body collected,
//! on one thread. Prints ns per request for each configuration, alternating
//! rounds, medians, and the difference against the bare service.
//!
//! Run with `cargo bench --bench middleware`. `ONLY=N` runs only the
//! N-th configuration (0 = bare ... 3 = default), and `REQUESTS=N` /
//! `ROUNDS=N` shorten a run, for a profiler. `SUBSCRIBER=builder` logs
//! through what `corrlog::builder()` installs (its `EnvFilter` included)
//! instead of a bare `LogLayer`.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use support::{env_num, listing_only, median};

use std::convert::Infallible;
use std::time::Instant;

use bytes::Bytes;
use corrlog::output::Pipeline;
use corrlog::{LogLayer, RequestLayer};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};
use tracing_subscriber::layer::SubscriberExt;

const REQUESTS: u64 = 100_000;
const ROUNDS: u64 = 9;

async fn hello(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::from("hello")))
}

async fn drive<S, B>(svc: &mut S, requests: u64) -> f64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..requests {
        let req = Request::builder()
            .uri("/orders/42")
            .body(Full::default())
            .unwrap();
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        let _ = res.into_body().collect().await.unwrap();
    }
    start.elapsed().as_nanos() as f64 / requests as f64
}

fn main() {
    if listing_only() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // `SUBSCRIBER=builder`: what `corrlog::builder()` installs (its
    // `EnvFilter`, level info), instead of the bare line layer.
    let (subscriber, shutdown): (tracing::Dispatch, Box<dyn FnOnce() -> u64>) =
        if std::env::var("SUBSCRIBER").is_ok_and(|v| v == "builder") {
            let (subscriber, logging) = corrlog::builder()
                .format(corrlog::Format::Json)
                .level("info")
                .output(corrlog::Output::Writer(Box::new(std::io::sink())))
                .flush_on_panic(false)
                .use_env(false)
                .build()
                .unwrap();
            let shutdown = move || {
                logging
                    .shutdown(std::time::Duration::from_secs(5))
                    .stats
                    .written
            };
            (tracing::Dispatch::new(subscriber), Box::new(shutdown))
        } else {
            let (pipeline, guard) = Pipeline::builder(std::io::sink())
                .flush_on_panic(false)
                .start();
            let subscriber = tracing_subscriber::registry().with(LogLayer::json(pipeline));
            let shutdown = move || {
                guard
                    .shutdown(std::time::Duration::from_secs(5))
                    .stats
                    .written
            };
            (tracing::Dispatch::new(subscriber), Box::new(shutdown))
        };
    let names = [
        "bare service",
        "corrlog, no access log, no trace context",
        "corrlog, no access log",
        "corrlog (default)",
    ];
    let requests = env_num("REQUESTS", REQUESTS).max(1);
    let rounds = env_num("ROUNDS", ROUNDS).max(1);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    tracing::dispatcher::with_default(&subscriber, || {
        rt.block_on(async {
            let mut bare = service_fn(hello);
            let mut core = RequestLayer::new()
                .access_log(corrlog::http::AccessLog::default().enabled(false))
                .trace_context(false)
                .layer(service_fn(hello));
            let mut traced = RequestLayer::new()
                .access_log(corrlog::http::AccessLog::default().enabled(false))
                .layer(service_fn(hello));
            let mut full = RequestLayer::new().layer(service_fn(hello));
            let only = env_num("ONLY", u64::MAX);
            for round in 0..=rounds {
                let mut ns = [0.0; 4];
                for (i, slot) in ns.iter_mut().enumerate() {
                    if only != u64::MAX && only != i as u64 {
                        continue;
                    }
                    *slot = match i {
                        0 => drive(&mut bare, requests).await,
                        1 => drive(&mut core, requests).await,
                        2 => drive(&mut traced, requests).await,
                        _ => drive(&mut full, requests).await,
                    };
                }
                if round > 0 {
                    for (s, v) in samples.iter_mut().zip(ns) {
                        s.push(v);
                    }
                }
            }
        });
    });
    println!("ns per request, median of {rounds} alternating rounds of {requests}");
    let base = median(&mut samples[0].clone());
    for (name, s) in names.iter().zip(samples.iter_mut()) {
        let m = median(s);
        println!("{name:<44} {m:>8.0} ns   +{:>6.0} ns", m - base);
    }
    println!("lines written: {}", shutdown());
}
