//! Middleware overhead under load, loaded by `wrk` on loopback in
//! alternating runs; prints requests/s and p99 with ratios against bare
//! axum. The stacks: bare axum; axum with tower-http's `SetRequestId` and
//! `PropagateRequestId` alone, logging nothing; axum with tower-http's
//! request-id layers, `TraceLayer` and `fmt().json()` to a file; axum with
//! corrlog (validated id, context, access line through the pipeline to a
//! file); and the demo's `GET /` three ways: bare, behind the hand-written
//! lower bound (`support/lower_bound.rs`), and behind corrlog (the
//! handler's line and the access line). It prints each stack's CPU per
//! request added to bare axum's (for the demo's route, to the route served
//! bare), and corrlog's over the lower bound's.
//!
//! The pinned layout (the default where `taskset` and two cores exist):
//! the servers, one tokio worker each, and the pipeline's writer thread run
//! on core 0, and `wrk -t1` on core 1, so requests/s measure the server's
//! CPU per request. Elsewhere, or with `LAYOUT=shared`: servers with two
//! workers and `wrk -t2` share every core, as before.
//!
//! Besides requests/s, each run reports this process's CPU time per
//! request served (read from `/proc/self/stat` around each wrk run): on a
//! machine shared with other work it leaves out the time the servers were
//! not running, which requests/s cannot.
//!
//! Needs `wrk` (`apt-get install wrk`). Run with `cargo bench --bench
//! http`; `ROUNDS` (default 5) and `SECONDS` (default 5) per run,
//! `CONNECTIONS` (default 64), `ONLY` (keep bare axum and the stacks whose
//! names contain it).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;
#[path = "support/lower_bound.rs"]
mod lower_bound;
mod support;

use support::{env_num, listing_only, median, process_cpu_seconds, wrk_figures, wrk_requests};

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use corrlog::output::Pipeline;
use corrlog::output::RollingFile;
use corrlog::{LogLayer, RequestLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

struct Stack {
    name: &'static str,
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    rps: Vec<f64>,
    p99_ms: Vec<f64>,
    /// This process's CPU time per request served, in microseconds.
    cpu_us: Vec<f64>,
}

/// Where the servers and wrk run.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// Servers (one worker each) on core 0, wrk on core 1.
    Pinned,
    /// Everything on every core.
    Shared,
}

impl Layout {
    fn workers(self) -> usize {
        match self {
            Layout::Pinned => 1,
            Layout::Shared => 2,
        }
    }
}

/// Settles the layout. For the pinned one, runs this benchmark again under
/// `taskset -c 0` (every thread it starts inherits the core) and exits with
/// its status; returns in that child, or when the layout is shared.
fn layout() -> Layout {
    const CHILD: &str = "CORRLOG_BENCH_PINNED";
    if std::env::var_os(CHILD).is_some() {
        return Layout::Pinned;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = Command::new("taskset").arg("--version").output().is_ok();
    let wanted = std::env::var("LAYOUT").map_or(true, |v| v != "shared");
    if !wanted {
        eprintln!("LAYOUT=shared: servers and wrk share every core");
        return Layout::Shared;
    }
    if cores < 2 || !taskset {
        eprintln!(
            "the pinned layout needs taskset and two cores ({cores} core(s), taskset {}): \
             servers and wrk share every core instead",
            if taskset { "found" } else { "missing" }
        );
        return Layout::Shared;
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("taskset")
        .args(["-c", "0"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD, "1")
        .status()
        .expect("run the benchmark under taskset");
    std::process::exit(status.code().unwrap_or(1));
}

fn serve(name: &'static str, dispatch: tracing::Dispatch, app: Router, layout: Layout) -> Stack {
    let runtime = corrlog::testing::runtime_with(dispatch, layout.workers());
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    Stack {
        name,
        addr,
        _runtime: runtime,
        rps: Vec::new(),
        p99_ms: Vec::new(),
        cpu_us: Vec::new(),
    }
}

/// Runs wrk (on core 1 in the pinned layout); returns requests/s, the p99
/// in ms, and the microseconds of this process's CPU (the servers and the
/// log writers; wrk is another process) per request served.
fn wrk(layout: Layout, addr: SocketAddr, seconds: u64, connections: u64) -> (f64, f64, f64) {
    let mut command = match layout {
        Layout::Pinned => {
            let mut c = Command::new("taskset");
            c.args(["-c", "1", "wrk", "-t1"]);
            c
        }
        Layout::Shared => {
            let mut c = Command::new("wrk");
            c.arg("-t2");
            c
        }
    };
    let cpu_before = process_cpu_seconds();
    let out = command
        .args([
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            &format!("http://{addr}/"),
        ])
        .output()
        .expect("run wrk");
    let cpu = process_cpu_seconds() - cpu_before;
    let (rps, p99) = wrk_figures(&out.stdout);
    (rps, p99, cpu * 1e6 / wrk_requests(&out.stdout))
}

fn main() {
    if listing_only() {
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: apt-get install wrk, then run this again");
        return;
    }
    let layout = layout();
    let rounds = env_num("ROUNDS", 5);
    let seconds = env_num("SECONDS", 5);
    let connections = env_num("CONNECTIONS", 64);
    let dir = std::env::temp_dir().join(format!("corrlog-http-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let bare = serve("bare axum", tracing::Dispatch::none(), hello(), layout);
    let ids_only = serve(
        "tower-http request-id only",
        tracing::Dispatch::none(),
        hello()
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid)),
        layout,
    );

    let file = std::fs::File::create(dir.join("tower-http.log")).unwrap();
    let (writer, _nb_guard) = tracing_appender::non_blocking(file);
    let fmt_dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .json()
            .with_max_level(Level::INFO)
            .with_writer(writer)
            .finish(),
    );
    let tower_app = hello()
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    let tower = serve(
        "tower-http id+trace+fmt.json",
        fmt_dispatch,
        tower_app,
        layout,
    );

    let file = RollingFile::builder(dir.join("corrlog.log"))
        .max_bytes(None)
        .open()
        .unwrap();
    let (pipeline, guard) = Pipeline::builder(file).start();
    let corrlog_dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(LogLayer::new(pipeline)));
    let corrlog = serve(
        "corrlog",
        corrlog_dispatch.clone(),
        hello().layer(RequestLayer::new()),
        layout,
    );
    let demo = serve(
        "corrlog, the demo's GET /",
        corrlog_dispatch,
        app::routes(app::AppConfig::default(), None).layer(RequestLayer::new()),
        layout,
    );

    // The demo's `GET /` with nothing around it (its line goes nowhere),
    // and behind the hand-written lower bound: the added cost of each
    // stack is its CPU per request less this one's.
    let bare_demo = serve(
        "bare axum, the demo's GET /",
        tracing::Dispatch::none(),
        app::routes(app::AppConfig::default(), None),
        layout,
    );
    let bound_out = lower_bound::Out::start(std::fs::File::create(dir.join("bound.log")).unwrap());
    let bound = serve(
        "lower bound, the demo's GET /",
        tracing::Dispatch::new(
            tracing_subscriber::registry().with(lower_bound::Lines(bound_out.clone())),
        ),
        app::routes(app::AppConfig::default(), None).layer(lower_bound::Layer(bound_out)),
        layout,
    );

    let mut stacks = vec![bare, ids_only, tower, corrlog, bare_demo, bound, demo];
    // ONLY=name keeps bare axum and the stacks whose names contain it
    // (e.g. to profile one).
    if let Ok(only) = std::env::var("ONLY") {
        stacks.retain(|s| s.name == "bare axum" || s.name.contains(only.as_str()));
    }
    // Warm-up.
    for s in &stacks {
        wrk(layout, s.addr, 1, connections);
    }
    for round in 0..rounds {
        for s in stacks.iter_mut() {
            let (rps, p99, cpu_us) = wrk(layout, s.addr, seconds, connections);
            s.rps.push(rps);
            s.p99_ms.push(p99);
            s.cpu_us.push(cpu_us);
            eprintln!(
                "round {round}: {:<30} {rps:>10.0} req/s  p99 {p99:.2} ms  {cpu_us:.2} us CPU/req",
                s.name
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let bare_rps = median(&mut stacks[0].rps.clone());
    let bare_p99 = median(&mut stacks[0].p99_ms.clone());
    match layout {
        Layout::Pinned => println!(
            "pinned: servers (1 worker each) and the writer on core 0, wrk -t1 -c{connections} -d{seconds}s on core 1; median of {rounds} alternating runs"
        ),
        Layout::Shared => println!(
            "shared: wrk -t2 -c{connections} -d{seconds}s, 2 server workers, every core; median of {rounds} alternating runs"
        ),
    }
    let bare_cpu = median(&mut stacks[0].cpu_us.clone());
    let bare_demo_cpu = stacks
        .iter()
        .find(|s| s.name.starts_with("bare axum, the demo"))
        .map(|s| median(&mut s.cpu_us.clone()));
    // CPU added per request: against bare axum, or for the demo's route
    // against the same route served bare.
    let added = |name: &str, cpu: f64| match bare_demo_cpu {
        Some(base) if name.contains("the demo's GET /") => cpu - base,
        _ => cpu - bare_cpu,
    };
    println!(
        "{:<34} {:>10} {:>9} {:>10} {:>9} {:>12} {:>9} {:>10}",
        "stack", "req/s", "x bare", "p99 ms", "x bare", "us CPU/req", "bare/x", "added us"
    );
    let mut added_by_name = Vec::new();
    for s in stacks.iter_mut() {
        let rps = median(&mut s.rps);
        let p99 = median(&mut s.p99_ms);
        let cpu = median(&mut s.cpu_us);
        added_by_name.push((s.name, added(s.name, cpu)));
        println!(
            "{:<34} {rps:>10.0} {:>9.3} {p99:>10.2} {:>9.2} {cpu:>12.2} {:>9.3} {:>10.2}",
            s.name,
            rps / bare_rps,
            p99 / bare_p99,
            bare_cpu / cpu,
            added(s.name, cpu)
        );
    }
    let find = |name: &str| added_by_name.iter().find(|(n, _)| *n == name).map(|a| a.1);
    if let (Some(corrlog), Some(bound)) = (
        find("corrlog, the demo's GET /"),
        find("lower bound, the demo's GET /"),
    ) {
        println!(
            "the demo's GET /: corrlog adds {corrlog:.2} us of CPU per request, the lower bound \
             {bound:.2} us: {:.2}x",
            corrlog / bound
        );
    }
    println!(
        "us CPU/req: this process's CPU time (servers, log writers) per request served; \
         bare/x, bare axum's over the stack's: the share of bare axum's throughput the stack \
         would reach on a core of its own, time the machine ran something else left out"
    );
    let report = guard.shutdown(Duration::from_secs(10));
    println!(
        "corrlog pipeline: {} lines written, {} dropped",
        report.stats.written, report.stats.dropped
    );
    std::fs::remove_dir_all(dir).ok();
}
