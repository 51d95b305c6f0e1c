//! Per-request cost of the middleware without the network: a request
//! through `RequestLayer` around a trivial service, its body collected,
//! on one thread. Prints ns per request for each configuration, alternating
//! rounds, medians, and the difference against the bare service.
//!
//! Run with `cargo bench --bench middleware`. `ONLY=N` runs only the
//! N-th configuration (0 = bare ... 3 = default, 4 = tower-http's id
//! layers alone, 5 = the hand-written lower bound of `support/lower_bound.rs`), and `REQUESTS=N` / `ROUNDS=N` shorten a run, for a
//! profiler. `SUBSCRIBER=builder` logs through what `corrlog::builder()`
//! installs (its `EnvFilter` included) instead of a bare `LogLayer`.
//!
//! Each request and response is shaped as a server hands them over: the
//! request's URI is shared rather than copied (hyper slices it from its
//! read buffer), it carries a `host` header (every HTTP/1.1 request does),
//! and the response carries a `content-type` (axum sets one for a text
//! body). `SHAPE=empty` runs the earlier shape instead: a URI copied per
//! request and empty header maps on both sides, so that a layer's first
//! header allocates the map.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "support/lower_bound.rs"]
mod lower_bound;
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
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing_subscriber::layer::SubscriberExt;

const REQUESTS: u64 = 100_000;
const ROUNDS: u64 = 9;

/// Whether requests and responses start with empty header maps
/// (`SHAPE=empty`).
fn empty_shape() -> bool {
    std::env::var("SHAPE").is_ok_and(|v| v == "empty")
}

/// The handler: `hello`, with the `content-type` axum gives it unless
/// `empty`.
async fn hello(
    _req: Request<Full<Bytes>>,
    empty: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::from("hello"));
    if !empty {
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    Ok(res)
}

/// A request for `/orders/42`, in the shape `empty` says.
fn request(empty: bool) -> Request<Full<Bytes>> {
    if empty {
        return Request::builder()
            .uri("/orders/42")
            .body(Full::default())
            .unwrap();
    }
    Request::builder()
        .uri(http::Uri::from_static("/orders/42"))
        .header(http::header::HOST, "127.0.0.1:8080")
        .body(Full::default())
        .unwrap()
}

async fn drive<S, B>(svc: &mut S, requests: u64, empty: bool) -> f64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..requests {
        let req = request(empty);
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
                .output(corrlog::output::Destination::Writer(Box::new(
                    std::io::sink(),
                )))
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
            let (pipeline, guard) = Pipeline::builder(std::io::sink()).start();
            let subscriber = tracing_subscriber::registry().with(LogLayer::new(pipeline));
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
        "tower-http request id only, no logging",
        "lower bound (hand-written), access line",
    ];
    let requests = env_num("REQUESTS", REQUESTS).max(1);
    let empty = empty_shape();
    let rounds = env_num("ROUNDS", ROUNDS).max(1);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    tracing::dispatcher::with_default(&subscriber, || {
        rt.block_on(async {
            let handler = move |req| hello(req, empty);
            let mut bare = service_fn(handler);
            let mut core = RequestLayer::new()
                .access_log(corrlog::http::AccessLog::default().enabled(false))
                .trace_context(false)
                .layer(service_fn(handler));
            let mut traced = RequestLayer::new()
                .access_log(corrlog::http::AccessLog::default().enabled(false))
                .layer(service_fn(handler));
            let mut full = RequestLayer::new().layer(service_fn(handler));
            let mut tower_http = tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .service(service_fn(handler));
            let dev_null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .unwrap();
            let mut bound =
                lower_bound::Layer(lower_bound::Out::start(dev_null)).layer(service_fn(handler));
            let only = env_num("ONLY", u64::MAX);
            for round in 0..=rounds {
                let mut ns = [0.0; 6];
                for (i, slot) in ns.iter_mut().enumerate() {
                    if only != u64::MAX && only != i as u64 {
                        continue;
                    }
                    *slot = match i {
                        0 => drive(&mut bare, requests, empty).await,
                        1 => drive(&mut core, requests, empty).await,
                        2 => drive(&mut traced, requests, empty).await,
                        3 => drive(&mut full, requests, empty).await,
                        4 => drive(&mut tower_http, requests, empty).await,
                        _ => drive(&mut bound, requests, empty).await,
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
    let shape = if empty {
        "empty header maps, URI copied"
    } else {
        "as a server hands them over"
    };
    println!("ns per request, median of {rounds} alternating rounds of {requests} ({shape})");
    let base = median(&mut samples[0].clone());
    for (name, s) in names.iter().zip(samples.iter_mut()) {
        let m = median(s);
        println!("{name:<44} {m:>8.0} ns   +{:>6.0} ns", m - base);
    }
    println!("lines written: {}", shutdown());
}
