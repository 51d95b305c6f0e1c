//! An idle writer thread uses no CPU: once the queue is empty it sleeps on
//! a condition variable, with no timer and no polling.
//!
//! This test has a binary of its own: it counts the wake-ups of the thread
//! named `corrlog-writer`, and in a shared test binary the writer threads of
//! other tests running at the same time would be counted too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::time::Duration;

use corrlog::fmt::Sink;
use corrlog::output::Pipeline;

/// The writer thread's wake-ups so far (voluntary context switches: an
/// exact count, where CPU ticks are sampled and can charge a whole tick to
/// a thread that ran for a microsecond) and whether it is asleep now.
#[cfg(target_os = "linux")]
fn writer_state() -> (u64, bool) {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "corrlog-writer" {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .unwrap_or_else(|| panic!("{name} in /proc status"))
                    .to_owned()
            };
            let switches = field("voluntary_ctxt_switches:").parse().unwrap();
            let sleeping = field("State:").starts_with('S');
            return (switches, sleeping);
        }
    }
    panic!("writer thread not found");
}

#[cfg(target_os = "linux")]
#[test]
fn an_idle_writer_uses_no_cpu() {
    let (pipeline, guard) = Pipeline::builder(io::sink()).start();
    for _ in 0..100 {
        pipeline.write_line(b"{}\n");
    }
    assert!(pipeline.flush(Duration::from_secs(5)));
    // `flush` returns as soon as the batch is out; the writer still has a
    // few instructions to run before it parks. Wait until it is asleep and
    // has stayed so across two samples.
    let mut before = writer_state().0;
    let mut stable = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let (now, sleeping) = writer_state();
        if now == before && sleeping {
            stable += 1;
            if stable == 2 {
                break;
            }
        } else {
            stable = 0;
        }
        before = now;
    }
    assert_eq!(stable, 2, "the writer never settled");
    std::thread::sleep(Duration::from_millis(1500));
    let (after, _) = writer_state();
    assert_eq!(after - before, 0, "the writer thread woke up while idle");
    drop(guard);
}
