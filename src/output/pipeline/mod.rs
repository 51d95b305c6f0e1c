//! The writer pipeline: the public types here, the caller side in
//! `caller.rs`, the writer thread in `writer.rs`, the state they share in
//! `state.rs`, the panic hook in `panic_hook.rs`.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

mod caller;
mod panic_hook;
mod state;
mod writer;

use self::state::{wait_for, Deadline, Intake, Shared, State};
use self::writer::Writer;
use crate::fmt::line::Style;
use crate::fmt::time::TimestampCache;
use crate::fmt::Redaction;

/// The default queue size: 8 MiB of encoded lines.
pub const DEFAULT_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// What a logging call does when the queue is full. See the
/// [`Pipeline`] docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backpressure {
    /// Wait for room up to `max_wait`, then drop (and count) the line; drop
    /// at once after that until the writer has emptied the queue.
    Block {
        /// The longest one logging call waits.
        max_wait: Duration,
    },
    /// Drop (and count) the line at once.
    Drop,
}

impl Default for Backpressure {
    fn default() -> Self {
        Backpressure::Block {
            max_wait: Duration::from_millis(50),
        }
    }
}

/// Counters of a pipeline, from its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Lines handed to the pipeline.
    pub submitted: u64,
    /// Lines written to the output (or to the stderr fallback).
    pub written: u64,
    /// Lines dropped because the queue was full, the line was larger than
    /// the whole queue, or the pipeline was shut down.
    pub dropped: u64,
    /// Lines lost because the output failed (and no fallback took them).
    pub failed: u64,
    /// Failed write calls.
    pub write_errors: u64,
    /// The most bytes ever queued at once.
    pub high_water_bytes: u64,
}

/// What [`PipelineGuard::shutdown`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// The final counters.
    pub stats: Stats,
    /// Whether the deadline passed before everything was written. The
    /// lines not written by then (queued, being written, or from callers
    /// still waiting for room) are counted in `stats.dropped` here; the
    /// writer may still finish some of them, which [`Pipeline::stats`]
    /// shows later.
    pub timed_out: bool,
}

/// The writer pipeline: log I/O off the request path.
///
/// The caller side (`caller.rs`) and the writer thread (`writer.rs`) share
/// one queue and two small state machines (`state.rs`); one process-wide
/// panic hook (`panic_hook.rs`) flushes every pipeline.
///
/// Each encoded line is copied into one shared in-memory queue, bounded by
/// **bytes**, and a dedicated writer thread (a plain OS thread, so it works
/// without a tokio runtime and after it has shut down) writes everything
/// queued in one `write` call per batch. The calling thread never touches
/// the output.
///
/// - **Order**: lines enter the queue under one lock, so lines from one
///   thread keep their order, and an ERROR never overtakes an earlier INFO.
/// - **Idle**: the writer thread sleeps on a condition variable; an idle
///   process spends no CPU on logging.
/// - **No allocation per line**: the queue is two buffers allocated once and
///   swapped between the callers and the writer.
///
/// # When the output is slower than the application
///
/// The queue fills up, and the [`Backpressure`] policy decides:
///
/// | policy | what a logging call does when the queue is full |
/// |---|---|
/// | [`Backpressure::Block`] (default, 50 ms) | waits for room, at most `max_wait`; if none comes, drops the line, and later lines are dropped at once until the writer has emptied the queue |
/// | [`Backpressure::Drop`] | drops the line at once |
///
/// The default blocks because losing lines is the worse surprise: a burst
/// up to the queue size (8 MiB by default) plus `max_wait` of output time is
/// absorbed with no loss, while a sink that stays too slow costs each
/// overload episode at most one `max_wait`, never a wait per line. Choose
/// `Drop` when request latency matters more than completeness.
///
/// Every dropped line is counted. When the writer catches up it writes, in
/// band, one line `{"level":"WARN","message":"dropped log lines","logger":"corrlog","dropped":N}`
/// with the exact count, so a gap in the logs is always visible where it
/// happened. [`Pipeline::stats`] gives the counters to code.
///
/// # Failing outputs
///
/// A write error (disk full, closed pipe, permission denied) never reaches
/// the logging call and never panics: the batch is counted as failed, the
/// error is reported on stderr at most once per 10 seconds, and, if
/// [`PipelineBuilder::fallback_to_stderr`] is on, the batch is written to
/// stderr instead.
///
/// # Shutdown
///
/// [`Pipeline::builder`] returns a [`PipelineGuard`] with the pipeline.
/// [`PipelineGuard::shutdown`] (also run on drop, with a 5 s deadline)
/// writes out everything queued, flushes the output and reports what
/// happened. With `Block`, a clean shutdown loses nothing.
///
/// ```
/// use std::time::Duration;
/// use corrlog::fmt::Sink;
/// use corrlog::output::{Backpressure, Capture, Pipeline};
///
/// let capture = Capture::new();
/// let (pipeline, guard) = Pipeline::builder(capture.clone())
///     .queue_bytes(1 << 20)
///     .backpressure(Backpressure::Block { max_wait: Duration::from_millis(100) })
///     .start();
/// pipeline.write_line(b"{\"message\":\"hello\"}\n");
/// let report = guard.shutdown(Duration::from_secs(1));
/// assert_eq!(report.stats.written, 1);
/// assert_eq!(report.stats.dropped, 0);
/// assert_eq!(capture.lines(), vec!["{\"message\":\"hello\"}"]);
/// ```
///
/// The handle is the calling side: a [`Sink`](crate::fmt::Sink) that queues lines for the
/// writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    shared: Arc<Shared>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Configures and starts a [`Pipeline`].
#[must_use]
pub struct PipelineBuilder {
    output: Box<dyn Write + Send>,
    capacity: usize,
    policy: Backpressure,
    fallback_to_stderr: bool,
    flush_on_panic: bool,
    linger: Duration,
    style: Style,
}

/// The default [`PipelineBuilder::batch_delay`].
pub const DEFAULT_BATCH_DELAY: Duration = Duration::from_millis(1);

impl fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .field("fallback_to_stderr", &self.fallback_to_stderr)
            .field("flush_on_panic", &self.flush_on_panic)
            .field("batch_delay", &self.linger)
            .finish_non_exhaustive()
    }
}

impl PipelineBuilder {
    /// The queue size in bytes. Defaults to [`DEFAULT_QUEUE_BYTES`]
    /// (8 MiB). Two buffers of this size are allocated at start.
    ///
    /// ```
    /// let builder = corrlog::output::Pipeline::builder(std::io::sink()).queue_bytes(1 << 20);
    /// # drop(builder);
    /// ```
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.capacity = bytes.max(1);
        self
    }

    /// What to do when the queue is full. Defaults to
    /// `Backpressure::Block { max_wait: 50ms }`.
    pub fn backpressure(mut self, policy: Backpressure) -> Self {
        self.policy = policy;
        self
    }

    /// Write batches to stderr when the output fails. Off by default.
    pub fn fallback_to_stderr(mut self, on: bool) -> Self {
        self.fallback_to_stderr = on;
        self
    }

    /// How long the writer thread, once woken by a line, lets more lines
    /// gather before it writes. Defaults to [`DEFAULT_BATCH_DELAY`] (1 ms).
    ///
    /// Waking the writer costs the logging thread a system call; with a
    /// delay, one wake-up covers every line of the next millisecond. Lines
    /// reach the output at most this much later. Zero writes at once. The
    /// writer cuts the delay short once 1 MiB (or a quarter of the queue)
    /// has gathered, or a flush or shutdown is waiting.
    pub fn batch_delay(mut self, delay: Duration) -> Self {
        self.linger = delay;
        self
    }

    /// Install a panic hook that writes out what is queued (waiting at
    /// most 500 ms) before the panic message is printed and the process,
    /// perhaps, dies. On by default; the previous hook still runs
    /// afterwards. For a panic that corrlog itself catches (a handler's,
    /// turned into a 500) it waits at most 20 ms: the process lives on,
    /// and a panicking endpoint must not stall a worker thread behind a
    /// slow output.
    ///
    /// One hook serves every pipeline of the process; it is installed when
    /// the first pipeline with this option starts. A panic hook set after
    /// that (e.g. by an error-reporting crate) replaces it unless that
    /// hook calls the one it found: set such hooks before starting
    /// logging.
    pub fn flush_on_panic(mut self, on: bool) -> Self {
        self.flush_on_panic = on;
        self
    }

    /// Lays out the in-band report of dropped lines like the pipeline's
    /// other lines (pretty on a console).
    pub(crate) fn report_style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }

    /// Starts the writer thread.
    ///
    /// # Panics
    ///
    /// Panics if the OS cannot start a thread, like `std::thread::spawn`.
    pub fn start(self) -> (Pipeline, PipelineGuard) {
        let shared = Arc::new(Shared::new(State::new(self.capacity, self.policy)));
        let writer = Writer {
            shared: shared.clone(),
            output: self.output,
            spare: Vec::with_capacity(self.capacity),
            fallback_to_stderr: self.fallback_to_stderr,
            linger: self.linger,
            style: self.style,
            report_policy: Redaction::default(),
            last_error_report: None,
            errors_since_report: 0,
            clock: TimestampCache::default(),
        };
        let handle = thread::Builder::new()
            .name("corrlog-writer".into())
            .spawn(move || writer.run())
            .expect("failed to spawn the corrlog writer thread");
        shared.set_writer_thread(handle.thread().id());
        if self.flush_on_panic {
            panic_hook::install(Arc::downgrade(&shared));
        }
        let pipeline = Pipeline {
            shared: shared.clone(),
        };
        let guard = PipelineGuard {
            shared,
            handle: Some(handle),
        };
        (pipeline, guard)
    }
}

impl Pipeline {
    /// A builder for a pipeline writing to `output` (stdout, stderr, a
    /// file, a [`RollingFile`](super::RollingFile), a
    /// [`Capture`](super::Capture), any `io::Write`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use corrlog::output::Pipeline;
    ///
    /// let (pipeline, guard) = Pipeline::builder(std::io::stderr()).start();
    /// let layer = corrlog::LogLayer::json(pipeline);
    /// # drop(layer);
    /// guard.shutdown(Duration::from_secs(1));
    /// ```
    pub fn builder(output: impl Write + Send + 'static) -> PipelineBuilder {
        PipelineBuilder {
            output: Box::new(output),
            capacity: DEFAULT_QUEUE_BYTES,
            policy: Backpressure::default(),
            fallback_to_stderr: false,
            flush_on_panic: true,
            linger: DEFAULT_BATCH_DELAY,
            style: Style::Json,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// Writes out and flushes everything queued so far, waiting at most
    /// `timeout`. Returns `false` if that was not enough.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.shared.flush(Deadline::after(timeout))
    }
}

/// Owns the pipeline's writer thread. Shut it down with
/// [`PipelineGuard::shutdown`] to get a report; dropping it shuts down with
/// a 5 second deadline.
#[must_use = "dropping the guard shuts the pipeline down"]
pub struct PipelineGuard {
    shared: Arc<Shared>,
    handle: Option<thread::JoinHandle<()>>,
}

impl fmt::Debug for PipelineGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineGuard").finish_non_exhaustive()
    }
}

impl PipelineGuard {
    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// A handle to log through, like the one [`PipelineBuilder::start`]
    /// returned.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline {
            shared: self.shared.clone(),
        }
    }

    /// Stops taking lines, writes out everything queued, flushes the
    /// output and stops the writer thread, waiting at most `timeout`.
    ///
    /// Lines logged after this are dropped and counted.
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        let report = self.shutdown_inner(timeout);
        // Past the deadline the writer thread is left to finish on its own;
        // dropping the guard must not wait for it again.
        self.handle = None;
        report
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> ShutdownReport {
        let deadline = Deadline::after(timeout);
        let shared = &*self.shared;
        let mut st = shared.lock();
        if !st.closed() {
            st.intake = Intake::Closed { warned: false };
        }
        shared.work.notify_one();
        shared.room.notify_all();
        while !st.writer_done() {
            let Some(left) = deadline.remaining() else {
                // What is queued or being written now did not make it in
                // time: report it as dropped. The writer may still finish
                // it later; the live counters then say so.
                let mut stats = st.stats;
                stats.dropped += st.queued_lines + st.in_flight + st.blocked;
                return ShutdownReport {
                    stats,
                    timed_out: true,
                };
            };
            st = wait_for(&shared.progress, st, left);
        }
        let stats = st.stats;
        drop(st);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        ShutdownReport {
            stats,
            timed_out: false,
        }
    }
}

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.shutdown_inner(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::Sink;
    use crate::output::Capture;
    use crate::panic::catch_panic;
    use panic_hook::{CAUGHT_PANIC_FLUSH_WAIT, HOOK_WAIT, PANIC_FLUSH_WAIT};
    use std::io;
    use std::sync::{Condvar, Mutex};
    use std::time::Instant;

    #[test]
    fn lines_are_written_in_order_and_counted() {
        let capture = Capture::new();
        let (p, guard) = Pipeline::builder(capture.clone())
            .flush_on_panic(false)
            .start();
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
        let (p, guard) = Pipeline::builder(capture.clone())
            .flush_on_panic(false)
            .start();
        let report = guard.shutdown(Duration::from_secs(5));
        assert_eq!(report.stats.written, 0);
        p.write_line(b"{}\n");
        assert_eq!(p.stats().dropped, 1);
    }

    #[test]
    fn a_line_larger_than_the_queue_is_dropped() {
        let capture = Capture::new();
        let (p, guard) = Pipeline::builder(capture.clone())
            .queue_bytes(16)
            .flush_on_panic(false)
            .start();
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
        let (p, _guard) = Pipeline::builder(capture.clone())
            .flush_on_panic(false)
            .start();
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
            .flush_on_panic(false)
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
            .flush_on_panic(false)
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
                .flush_on_panic(false)
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
            .flush_on_panic(false)
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
}
