//! End-to-end throughput: lines per second from logging threads into a
//! file through the pipeline in `Block` mode, with the loss checked (the
//! file's line count against what was submitted).
//!
//! Run with `cargo bench --bench throughput`. Set `LINES` (default
//! 4,000,000) and `THREADS` (default 2) to change the load.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use support::{env_num, listing_only};

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use corrlog::output::RollingFile;
use corrlog::output::{Backpressure, Pipeline};
use corrlog::{LogLayer, RequestContext, RequestId};
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    if listing_only() {
        return;
    }
    let lines = env_num("LINES", 4_000_000);
    let threads = env_num("THREADS", 2).max(1);
    let dir = std::env::temp_dir().join(format!("corrlog-throughput-{}", std::process::id()));
    let path = dir.join("bench.log");
    let file = RollingFile::builder(&path).max_bytes(None).open().unwrap();
    let (pipeline, guard) = Pipeline::builder(file)
        .backpressure(Backpressure::Block {
            max_wait: Duration::from_secs(60),
        })
        .start();
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(LogLayer::new(pipeline)));

    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let dispatch = dispatch.clone();
            let per_thread = lines / threads;
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let ctx = RequestContext::new(RequestId::generate());
                    ctx.clone().run(|| corrlog::bind("tenant", "acme"));
                    ctx.run(|| {
                        for i in 0..per_thread {
                            tracing::info!(thread = t, i, user = "alice", "processing order");
                        }
                    });
                });
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let logged = start.elapsed();
    let report = guard.shutdown(Duration::from_secs(120));
    let total = start.elapsed();

    let on_disk = BufReader::new(std::fs::File::open(&path).unwrap())
        .lines()
        .count() as u64;
    let submitted = report.stats.submitted;
    println!(
        "{submitted} lines from {threads} threads: logged in {:.3} s, on disk in {:.3} s",
        logged.as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "throughput: {:.2} M lines/s to the file (end to end)",
        submitted as f64 / total.as_secs_f64() / 1e6
    );
    println!(
        "written {} dropped {} failed {} queue high water {} KiB; lines in file {on_disk}; lost {}",
        report.stats.written,
        report.stats.dropped,
        report.stats.failed,
        report.stats.high_water_bytes / 1024,
        submitted - on_disk
    );
    std::fs::remove_dir_all(dir).ok();
    assert_eq!(on_disk, submitted, "Block mode must lose nothing");
}
