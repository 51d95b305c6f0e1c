//! An idle writer thread uses no CPU: once the queue is empty it sleeps on
//! a condition variable, with no timer and no polling.
//!
//! This test has a binary of its own: it counts the wake-ups of the thread
//! named `corrlog-writer`, and in a shared test binary the writer threads of
//! other tests running at the same time would be counted too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::time::Duration;

use corrlog::pipeline::Pipeline;
use corrlog::writer::Sink;

/// How many times the thread named `corrlog-writer` has gone to sleep so far
/// (its voluntary context switches): an exact count of its wake-ups, where
/// CPU ticks are sampled and can charge a whole tick to a thread that ran
/// for a microsecond.
#[cfg(target_os = "linux")]
fn writer_wakeups() -> u64 {
    let mut total = 0;
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "corrlog-writer" {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap();
            let count = status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .expect("voluntary_ctxt_switches in /proc status");
            total += count.trim().parse::<u64>().unwrap();
            found = true;
        }
    }
    assert!(found, "writer thread not found");
    total
}

#[cfg(target_os = "linux")]
#[test]
fn an_idle_writer_uses_no_cpu() {
    let (pipeline, guard) = Pipeline::builder(io::sink()).flush_on_panic(false).start();
    for _ in 0..100 {
        pipeline.write_line(b"{}\n");
    }
    assert!(pipeline.flush(Duration::from_secs(5)));
    // `flush` returns as soon as the batch is out; the writer still has a
    // few instructions to run before it parks. Wait until it has.
    let mut before = writer_wakeups();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = writer_wakeups();
        if now == before {
            break;
        }
        before = now;
    }
    std::thread::sleep(Duration::from_millis(1500));
    let after = writer_wakeups();
    assert_eq!(after - before, 0, "the writer thread woke up while idle");
    drop(guard);
}
