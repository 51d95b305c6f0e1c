//! The middleware's cost under load on actix-web: bare actix against actix
//! with `RequestMiddleware` (validated id, context, trace context, access
//! line through the pipeline to a file), and without its access line, each loaded by `wrk` on loopback
//! in alternating runs; prints requests/s and p99 with ratios against bare
//! actix.
//!
//! Needs `wrk` (`apt-get install wrk`). Run with `cargo bench -p
//! corrlog-actix --bench http`; `ROUNDS` (default 5) and `SECONDS` (default
//! 5) per run, `CONNECTIONS` (default 64), `WORKERS` (actix workers per
//! server, default 1, so a server's cost per request is its CPU on one
//! core), `ONLY` (keep bare actix and the stacks whose names contain it,
//! e.g. for a profiler).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../benches/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use corrlog::http::AccessLog;
use corrlog::output::{Pipeline, RollingFile};
use corrlog::{LogLayer, RequestLayer};
use corrlog_actix::RequestMiddleware;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::{env_num, listing_only, median, wrk_figures};

async fn hello() -> &'static str {
    "hello"
}

/// Serves `GET /` on its own actix system, wrapped in `corrlog` when given.
fn serve(workers: usize, corrlog: Option<RequestLayer>) -> (SocketAddr, ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = if let Some(layer) = corrlog {
                HttpServer::new(move || {
                    App::new()
                        .route("/", web::get().to(hello))
                        .wrap(RequestMiddleware::from(layer.clone()))
                })
                .workers(workers)
                .listen(listener)
                .unwrap()
                .run()
            } else {
                HttpServer::new(|| App::new().route("/", web::get().to(hello)))
                    .workers(workers)
                    .listen(listener)
                    .unwrap()
                    .run()
            };
            tx.send(server.handle()).unwrap();
            server.await
        })
    });
    (addr, rx.recv().unwrap())
}

/// Runs wrk; returns (requests/s, p99 in ms).
fn wrk(addr: SocketAddr, seconds: u64, connections: u64) -> (f64, f64) {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            &format!("http://{addr}/"),
        ])
        .output()
        .expect("run wrk");
    wrk_figures(&out.stdout)
}

fn main() {
    if listing_only() {
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: apt-get install wrk, then run this again");
        return;
    }
    let rounds = env_num("ROUNDS", 5);
    let seconds = env_num("SECONDS", 5);
    let connections = env_num("CONNECTIONS", 64);
    let workers = env_num("WORKERS", 1) as usize;
    let dir = std::env::temp_dir().join(format!("corrlog-actix-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // actix workers are threads of their own: the subscriber is global.
    // INFO and above, as a service runs: actix's own DEBUG and TRACE
    // events would otherwise load both servers.
    let file = RollingFile::builder(dir.join("corrlog.log"))
        .max_bytes(None)
        .open()
        .unwrap();
    let (pipeline, guard) = Pipeline::builder(file).start();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(LogLayer::new(pipeline))
            .with(LevelFilter::INFO),
    )
    .unwrap();

    let quiet = RequestLayer::new().access_log(AccessLog::default().enabled(false));
    let mut stacks = vec![
        (
            "bare actix-web",
            serve(workers, None),
            Vec::new(),
            Vec::new(),
        ),
        (
            "corrlog, no access line",
            serve(workers, Some(quiet)),
            Vec::new(),
            Vec::new(),
        ),
        (
            "actix-web + corrlog",
            serve(workers, Some(RequestLayer::new())),
            Vec::new(),
            Vec::new(),
        ),
    ];
    // ONLY=name keeps bare actix and the stacks whose names contain it
    // (e.g. to profile one).
    if let Ok(only) = std::env::var("ONLY") {
        stacks.retain(|s| s.0 == "bare actix-web" || s.0.contains(only.as_str()));
    }
    for (_, (addr, _), _, _) in &stacks {
        wrk(*addr, 1, connections);
    }
    for round in 0..rounds {
        for (name, (addr, _), rps, p99) in stacks.iter_mut() {
            let (r, p) = wrk(*addr, seconds, connections);
            rps.push(r);
            p99.push(p);
            eprintln!("round {round}: {name:<24} {r:>10.0} req/s  p99 {p:.2} ms");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let bare_rps = median(&mut stacks[0].2.clone());
    let bare_p99 = median(&mut stacks[0].3.clone());
    println!(
        "wrk -t1 -c{connections} -d{seconds}s, median of {rounds} alternating runs, {workers} actix worker(s) per server"
    );
    println!(
        "{:<24} {:>10} {:>9} {:>10} {:>9}",
        "stack", "req/s", "x bare", "p99 ms", "x bare"
    );
    for (name, (_, handle), rps, p99) in stacks.iter_mut() {
        let rps = median(rps);
        let p99 = median(p99);
        println!(
            "{name:<24} {rps:>10.0} {:>9.3} {p99:>10.2} {:>9.2}",
            rps / bare_rps,
            p99 / bare_p99
        );
        actix_web::rt::System::new().block_on(handle.stop(true));
    }
    let report = guard.shutdown(Duration::from_secs(10));
    println!(
        "corrlog pipeline: {} lines written, {} dropped",
        report.stats.written, report.stats.dropped
    );
    std::fs::remove_dir_all(dir).ok();
}
