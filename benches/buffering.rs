//! What per-request buffering costs, against writing the same DEBUG lines
//! and against filtering them out, measured in the same run with
//! alternating rounds; medians.
//!
//! Run with `cargo bench --bench buffering`. Two parts:
//!
//! - caller ns per DEBUG event in a request context, for a service at
//!   `info` (filtered out), at `debug` (written to the pipeline), and at
//!   `info` buffering DEBUG (kept in the request; the buffer full, so each
//!   line also evicts the oldest);
//! - per request through `RequestLayer` (access line on) for a handler
//!   that logs 20 DEBUG lines and one INFO line, the same three ways, plus
//!   a failing request (503) whose buffer is written out: the caller's
//!   wall time, and the process's CPU time (every thread, the pipeline's
//!   writer and its file writes included, read from
//!   `/proc/self/task/*/schedstat`), the pipeline writing to a file in the
//!   temp folder.
//!
//! Part 1 writes through the pipeline to `io::sink()`.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use support::{listing_only, median};

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corrlog::fmt::{Buffering, BufferingFilter};
use corrlog::output::Pipeline;
use corrlog::{LogLayer, RequestContext, RequestId, RequestLayer};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};
use tracing::level_filters::LevelFilter;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

const EVENTS: u32 = 200_000;
const REQUESTS: u32 = 20_000;
const ROUNDS: usize = 9;

fn stacks(pipeline: &Pipeline) -> Vec<(&'static str, Dispatch)> {
    let buffering = Buffering::up_to(tracing::Level::DEBUG);
    vec![
        (
            "filtered out (level info)",
            Dispatch::new(
                tracing_subscriber::registry()
                    .with(LevelFilter::INFO)
                    .with(LogLayer::new(pipeline.clone())),
            ),
        ),
        (
            "written (level debug)",
            Dispatch::new(
                tracing_subscriber::registry()
                    .with(LevelFilter::DEBUG)
                    .with(LogLayer::new(pipeline.clone())),
            ),
        ),
        (
            "buffered (level info, buffer debug)",
            Dispatch::new(
                tracing_subscriber::registry()
                    .with(BufferingFilter::new(LevelFilter::INFO, &buffering))
                    .with(LogLayer::new(pipeline.clone()).buffering(buffering)),
            ),
        ),
    ]
}

fn events_round(dispatch: &Dispatch, ctx: &RequestContext) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        ctx.clone().run(|| {
            let start = Instant::now();
            for i in 0..EVENTS {
                tracing::debug!(order_id = 42, user = "alice", "cache lookup");
                black_box(i);
            }
            start.elapsed().as_nanos() as f64 / f64::from(EVENTS)
        })
    })
}

async fn handler(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    for step in 0..20 {
        tracing::debug!(step, "working");
    }
    tracing::info!("done");
    let mut res = Response::new(Full::from("hello"));
    if req.uri().path().starts_with("/fail") {
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    Ok(res)
}

/// Nanoseconds on a CPU so far, summed over every thread of the process.
fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Runs the requests; returns (caller ns, process CPU ns) per request,
/// the CPU time including writing out what the round queued.
async fn requests_round<S, B>(svc: &mut S, path: &str, pipeline: &Pipeline) -> (f64, f64)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let cpu = process_cpu_ns();
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let req = Request::builder().uri(path).body(Full::default()).unwrap();
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        let _ = res.into_body().collect().await.unwrap();
    }
    let wall = start.elapsed().as_nanos() as f64 / f64::from(REQUESTS);
    pipeline.flush(Duration::from_secs(30));
    let cpu = (process_cpu_ns() - cpu) as f64 / f64::from(REQUESTS);
    (wall, cpu)
}

fn print(title: &str, names: &[&str], samples: &mut [Vec<f64>]) {
    println!("{title}");
    let base = median(&mut samples[0].clone());
    for (name, s) in names.iter().zip(samples.iter_mut()) {
        let m = median(s);
        println!("{name:<44} {m:>9.1} ns   x{:>5.2}", m / base);
    }
}

fn main() {
    if listing_only() {
        return;
    }
    let (pipeline, guard) = Pipeline::builder(std::io::sink()).start();
    let mut caller_stacks = stacks(&pipeline);
    // ONLY=name keeps the caller_stacks whose names contain it, for a profiler;
    // the per-request part then runs the kept caller_stacks alone.
    if let Ok(only) = std::env::var("ONLY") {
        caller_stacks.retain(|(name, _)| name.contains(only.as_str()));
    }

    // Part 1: one DEBUG event, on the caller.
    let ctx = RequestContext::new(RequestId::generate());
    ctx.clone().run(|| corrlog::bind("tenant", "acme"));
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); caller_stacks.len()];
    for round in 0..=ROUNDS {
        for ((_, dispatch), s) in caller_stacks.iter().zip(&mut samples) {
            let ns = events_round(dispatch, &ctx);
            if round > 0 {
                s.push(ns);
            }
        }
    }
    let names: Vec<&str> = caller_stacks.iter().map(|(n, _)| *n).collect();
    print(
        &format!("caller ns per DEBUG event in a request, median of {ROUNDS} rounds of {EVENTS}"),
        &names,
        &mut samples,
    );

    // Part 2: whole requests, 20 DEBUG lines and one INFO line each, the
    // pipeline writing to a file.
    let path = std::env::temp_dir().join(format!(
        "corrlog-bench-buffering-{}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&path).unwrap();
    let (pipeline, file_guard) = Pipeline::builder(file).start();
    let stacks = stacks(&pipeline)
        .into_iter()
        .filter(|(name, _)| names.contains(name))
        .collect::<Vec<_>>();
    drop(caller_stacks);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runs: Vec<(String, usize, &str)> = stacks
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (format!("{name}, 200"), i, "/orders/42"))
        .collect();
    if stacks.len() == 3 {
        runs.push((
            "buffered, failing (503: written out)".to_owned(),
            2,
            "/fail/42",
        ));
    }
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    rt.block_on(async {
        let mut svc = RequestLayer::new().layer(service_fn(handler));
        for round in 0..=ROUNDS {
            for (i, (_, stack, path)) in runs.iter().enumerate() {
                let dispatch = &stacks[*stack].1;
                let _default = tracing::dispatcher::set_default(dispatch);
                let (w, c) = requests_round(&mut svc, path, &pipeline).await;
                if round > 0 {
                    wall[i].push(w);
                    cpu[i].push(c);
                }
            }
        }
    });
    let names: Vec<&str> = runs.iter().map(|(n, _, _)| n.as_str()).collect();
    let title = format!("per request (20 DEBUG + 1 INFO + access line, to a file), median of {ROUNDS} rounds of {REQUESTS}");
    print(&format!("{title}: caller ns"), &names, &mut wall);
    print(
        &format!("{title}: process CPU ns, all threads"),
        &names,
        &mut cpu,
    );
    file_guard.shutdown(Duration::from_secs(30));
    let _ = std::fs::remove_file(&path);
    let report = guard.shutdown(Duration::from_secs(10));
    println!(
        "lines written: {}, dropped: {}",
        report.stats.written, report.stats.dropped
    );
}
