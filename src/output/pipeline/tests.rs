//! The pipeline's unit tests: state transitions that need the internals.

use super::*;
use crate::fmt::Capture;
use crate::fmt::Sink;
use crate::panic::catch_panic;
use panic_hook::{CAUGHT_PANIC_FLUSH_WAIT, HOOK_WAIT, PANIC_FLUSH_WAIT};
use std::io;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

#[test]
fn lines_are_written_in_order_and_counted() {
    let capture = Capture::new();
    let (p, guard) = Pipeline::builder(capture.clone()).start();
    for i in 0..1000 {
        p.write_line(format!("{{\"i\":{i}}}\n").as_bytes());
    }
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(!report.timed_out);
    assert_eq!(report.stats.submitted, 1000);
    assert_eq!(report.stats.written, 1000);
    let lines = capture.lines();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("{{\"i\":{i}}}"));
    }
}

#[test]
fn lines_after_shutdown_are_dropped_and_counted() {
    let capture = Capture::new();
    let (p, guard) = Pipeline::builder(capture.clone()).start();
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.stats.written, 0);
    p.write_line(b"{}\n");
    assert_eq!(p.stats().dropped, 1);
}

#[test]
fn a_line_larger_than_the_queue_is_dropped() {
    let capture = Capture::new();
    let (p, guard) = Pipeline::builder(capture.clone()).queue_bytes(16).start();
    p.write_line(&[b'x'; 17]);
    p.write_line(b"{}\n");
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.stats.dropped, 1);
    assert_eq!(report.stats.written, 2, "the line and the drop report");
    let lines = capture.lines();
    assert_eq!(lines[0], "{}");
    assert!(lines[1].contains("\"dropped\":1"));
}

#[test]
fn flush_waits_for_the_output() {
    let capture = Capture::new();
    let (p, _guard) = Pipeline::builder(capture.clone()).start();
    p.write_line(b"{\"a\":1}\n");
    assert!(p.flush(Duration::from_secs(5)));
    assert_eq!(capture.lines().len(), 1);
}

/// An output that takes `delay` per write call.
struct SlowOutput {
    inner: Capture,
    delay: Duration,
}

impl Write for SlowOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        thread::sleep(self.delay);
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn slow(capture: &Capture, millis: u64) -> SlowOutput {
    SlowOutput {
        inner: capture.clone(),
        delay: Duration::from_millis(millis),
    }
}

#[test]
fn unbounded_waits_are_accepted() {
    // `Duration::MAX` means "never give up": no overflow, no panic.
    let capture = Capture::new();
    let (p, guard) = Pipeline::builder(slow(&capture, 20))
        .queue_bytes(64)
        .backpressure(Backpressure::Block {
            max_wait: Duration::MAX,
        })
        .start();
    for i in 0..40 {
        p.write_line(format!("{{\"i\":{i:02}}}\n").as_bytes());
    }
    assert!(p.flush(Duration::MAX));
    let report = guard.shutdown(Duration::MAX);
    assert!(!report.timed_out);
    assert_eq!(report.stats.dropped, 0);
    assert_eq!(report.stats.written, 40);
    assert_eq!(capture.lines().len(), 40);
}

#[test]
fn callers_blocked_when_shutdown_starts_still_get_their_lines_written() {
    let line = |n: u32| format!("{{\"n\":{n:02}}}\n");
    let capture = Capture::new();
    let (p, guard) = Pipeline::builder(slow(&capture, 200))
        .queue_bytes(4 * line(0).len())
        .batch_delay(Duration::ZERO)
        .backpressure(Backpressure::Block {
            max_wait: Duration::from_secs(30),
        })
        .start();
    // One line being written (200 ms), four filling the queue...
    p.write_line(line(0).as_bytes());
    thread::sleep(Duration::from_millis(50));
    for n in 1..5 {
        p.write_line(line(n).as_bytes());
    }
    // ...and four callers blocked for room when shutdown starts.
    let blocked: Vec<_> = (5..9)
        .map(|n| {
            let p = p.clone();
            thread::spawn(move || p.write_line(line(n).as_bytes()))
        })
        .collect();
    // All four are inside `write_line` (counted, then waiting).
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.stats().submitted < 9 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    let report = guard.shutdown(Duration::from_secs(30));
    for t in blocked {
        t.join().unwrap();
    }
    assert!(!report.timed_out);
    assert_eq!(report.stats.dropped, 0, "{report:?}");
    assert_eq!(report.stats.written, 9, "{report:?}");
    let mut lines = capture.lines();
    lines.sort();
    assert_eq!(
        lines,
        (0..9)
            .map(|n| line(n).trim().to_owned())
            .collect::<Vec<_>>()
    );
}

/// An output that holds every write until opened, then is as fast as
/// memory.
#[derive(Clone, Default)]
struct Gate {
    open: Arc<(Mutex<bool>, Condvar)>,
    inner: Capture,
}

impl Gate {
    fn open(&self) {
        let (lock, cvar) = &*self.open;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (lock, cvar) = &*self.open;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cvar.wait(open).unwrap();
        }
        drop(open);
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_fast_writer_does_not_stop_before_blocked_callers_get_in() {
    // With a fast output, the writer drains the queue and could stop
    // before the callers it just woke take the lock. It must wait for
    // them: their lines arrived before shutdown.
    let line = b"{\"blocked\":1}\n";
    for round in 0..20 {
        let gate = Gate::default();
        let (p, guard) = Pipeline::builder(gate.clone())
            .queue_bytes(4 * line.len())
            .batch_delay(Duration::ZERO)
            .backpressure(Backpressure::Block {
                max_wait: Duration::from_secs(30),
            })
            .start();
        // One line held in the gate, four filling the queue, eight
        // callers blocked.
        p.write_line(line);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.shared.lock().queue.is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..4 {
            p.write_line(line);
        }
        let blocked: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                thread::spawn(move || p.write_line(line))
            })
            .collect();
        while p.shared.lock().blocked < 8 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        let shutdown = thread::spawn(move || guard.shutdown(Duration::from_secs(30)));
        while !p.shared.lock().closed() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        gate.open();
        let report = shutdown.join().unwrap();
        for t in blocked {
            t.join().unwrap();
        }
        assert!(!report.timed_out, "round {round}");
        assert_eq!(report.stats.dropped, 0, "round {round}: {report:?}");
        assert_eq!(report.stats.written, 13, "round {round}: {report:?}");
        assert_eq!(gate.inner.lines().len(), 13, "round {round}");
    }
}

#[test]
fn a_shutdown_that_times_out_reports_what_was_not_written() {
    let capture = Capture::new();
    let (p, guard) = Pipeline::builder(slow(&capture, 1000))
        .batch_delay(Duration::ZERO)
        .start();
    p.write_line(b"{\"a\":1}\n");
    // The writer is now inside its 200 ms write of the first line.
    thread::sleep(Duration::from_millis(50));
    p.write_line(b"{\"a\":2}\n");
    let report = guard.shutdown(Duration::from_millis(10));
    assert!(report.timed_out);
    assert_eq!(report.stats.written, 0);
    assert_eq!(report.stats.dropped, 2, "in flight and queued: {report:?}");
    // The writer finishes on its own; the live counters say so, with
    // nothing counted twice.
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.stats().written < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let stats = p.stats();
    assert_eq!((stats.written, stats.dropped), (2, 0));
}

#[test]
fn the_panic_hook_waits_only_briefly_for_panics_corrlog_catches() {
    let gate = Gate::default();
    let (p, guard) = Pipeline::builder(gate.clone())
        .batch_delay(Duration::ZERO)
        .start();
    // A line held in the output: a flush would have to wait.
    p.write_line(b"{\"held\":1}\n");
    p.write_line(b"{\"queued\":1}\n");
    let wait = || HOOK_WAIT.with(std::cell::Cell::get);

    let caught = catch_panic(|| panic!("a handler panic corrlog catches"));
    assert!(caught.is_err());
    assert_eq!(wait(), Some(CAUGHT_PANIC_FLUSH_WAIT), "a short wait");

    let elsewhere = std::panic::catch_unwind(|| panic!("a panic caught elsewhere"));
    assert!(elsewhere.is_err());
    assert_eq!(wait(), Some(PANIC_FLUSH_WAIT), "other panics wait longer");

    gate.open();
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.stats.written, 2);
}

/// An output that takes at most `limit` bytes in all (part of a line at the
/// boundary), then fails every write, as a disk does when it fills up.
struct Fills {
    gate: Gate,
    limit: usize,
    taken: usize,
}

impl Write for Fills {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit - self.taken;
        if room == 0 {
            return Err(io::Error::other("no space left"));
        }
        let n = self.gate.write(&buf[..buf.len().min(room)])?;
        self.taken += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_partial_batch_counts_the_whole_lines_that_went_out() {
    let line = |n: u32| format!("{{\"n\":{n:04}}}\n"); // 11 bytes
    let gate = Gate::default();
    let (p, guard) = Pipeline::builder(Fills {
        gate: gate.clone(),
        limit: 100,
        taken: 0,
    })
    .batch_delay(Duration::ZERO)
    .start();
    // The first line holds the writer in the gate; the other 19 gather
    // into one batch, which the output takes only part of.
    p.write_line(line(0).as_bytes());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.shared.lock().queue.is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    for n in 1..20 {
        p.write_line(line(n).as_bytes());
    }
    gate.open();
    let report = guard.shutdown(Duration::from_secs(5));
    // 100 bytes: 9 whole lines and 1 byte of the tenth.
    assert_eq!(report.stats.written, 9, "{report:?}");
    assert_eq!(report.stats.failed, 11, "{report:?}");
    assert_eq!(gate.inner.lines().len(), 10, "nine lines and a fragment");
}
