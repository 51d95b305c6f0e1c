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
use crate::fmt::line::{Constant, Style};
use crate::fmt::time::TimestampCache;
use crate::fmt::Redaction;

/// The default queue size: 8 MiB of encoded lines.
pub const DEFAULT_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// What a logging call does when the queue is full. See the
/// [`Pipeline`] docs.
///
/// ```
/// use std::time::Duration;
/// use corrlog::output::{Backpressure, Pipeline};
///
/// let lossless = Pipeline::builder(std::io::stdout())
///     .backpressure(Backpressure::Block { max_wait: Duration::from_millis(200) });
/// let fast = Pipeline::builder(std::io::stdout()).backpressure(Backpressure::Drop);
/// # drop((lossless, fast));
/// ```
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
///
/// ```
/// use std::time::Duration;
/// use corrlog::fmt::Sink;
/// use corrlog::output::Pipeline;
///
/// let (pipeline, guard) = Pipeline::builder(std::io::sink()).start();
/// pipeline.write_line(b"{}\n");
/// let stats = guard.shutdown(Duration::from_secs(1)).stats;
/// assert_eq!((stats.submitted, stats.written, stats.dropped), (1, 1, 0));
/// ```
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
    /// The OTLP output's final counters, when [`Logging`](crate::Logging)
    /// had one (feature `otlp`): `written` records were delivered, `failed`
    /// ones refused or not sent within the retry window.
    pub otlp: Option<Stats>,
}

/// The writer pipeline: log I/O off the request path.
///
/// The caller side (`caller.rs`) and the writer thread (`writer.rs`) share
/// one queue and two small state machines (`state.rs`); one process-wide
/// panic hook (`panic_hook.rs`) flushes every pipeline.
///
/// # Panics
///
/// When a thread panics, corrlog's panic hook (installed when the first
/// pipeline starts) writes out what every pipeline has queued, waiting at
/// most 500 ms, before the previous hook runs and the process, perhaps,
/// dies. For a panic that corrlog itself catches (a handler's, turned into
/// a 500) it waits at most 20 ms: the process lives on, and a panicking
/// endpoint must not stall a worker thread behind a slow output. A panic
/// hook set later (e.g. by an error-reporting crate) replaces it unless
/// that hook calls the one it found: set such hooks before logging starts.
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
/// use corrlog::output::{Backpressure, Pipeline};
/// use corrlog::testing::TestLogs;
///
/// let capture = TestLogs::new();
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
    linger: Duration,
    style: Style,
    constant: Constant,
}

/// The default [`PipelineBuilder::batch_delay`].
pub const DEFAULT_BATCH_DELAY: Duration = Duration::from_millis(1);

impl fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("queue_bytes", &self.capacity)
            .field("policy", &self.policy)
            .field("fallback_to_stderr", &self.fallback_to_stderr)
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
    ///
    /// ```
    /// use corrlog::output::{Backpressure, Pipeline};
    ///
    /// let builder = Pipeline::builder(std::io::stdout()).backpressure(Backpressure::Drop);
    /// # drop(builder);
    /// ```
    pub fn backpressure(mut self, policy: Backpressure) -> Self {
        self.policy = policy;
        self
    }

    /// Write batches to stderr when the output fails. Off by default.
    ///
    /// ```
    /// let builder = corrlog::output::Pipeline::builder(std::io::sink()).fallback_to_stderr(true);
    /// # drop(builder);
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let builder = corrlog::output::Pipeline::builder(std::io::sink()).batch_delay(Duration::ZERO);
    /// # drop(builder);
    /// ```
    pub fn batch_delay(mut self, delay: Duration) -> Self {
        self.linger = delay;
        self
    }

    /// Lays out the in-band report of dropped lines like the pipeline's
    /// other lines (pretty on a console).
    pub(crate) fn report_style(mut self, style: Style, constant: Constant) -> Self {
        self.style = style;
        self.constant = constant;
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
            constant: self.constant,
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
        panic_hook::install(Arc::downgrade(&shared));
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
    /// [`TestLogs`](crate::testing::TestLogs), any `io::Write`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use corrlog::output::Pipeline;
    ///
    /// let (pipeline, guard) = Pipeline::builder(std::io::stderr()).start();
    /// let layer = corrlog::LogLayer::new(pipeline);
    /// # drop(layer);
    /// guard.shutdown(Duration::from_secs(1));
    /// ```
    pub fn builder(output: impl Write + Send + 'static) -> PipelineBuilder {
        PipelineBuilder {
            output: Box::new(output),
            capacity: DEFAULT_QUEUE_BYTES,
            policy: Backpressure::default(),
            fallback_to_stderr: false,
            linger: DEFAULT_BATCH_DELAY,
            style: Style::Json,
            constant: Constant::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// Writes out and flushes everything queued so far, waiting at most
    /// `timeout`. Returns `false` if that was not enough.
    ///
    /// ```
    /// use std::time::Duration;
    /// use corrlog::fmt::Sink;
    /// use corrlog::output::Pipeline;
    /// use corrlog::testing::TestLogs;
    ///
    /// let capture = TestLogs::new();
    /// let (pipeline, _guard) = Pipeline::builder(capture.clone()).start();
    /// pipeline.write_line(b"{\"a\":1}\n");
    /// assert!(pipeline.flush(Duration::from_secs(5)));
    /// assert_eq!(capture.lines().len(), 1);
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (_pipeline, guard) = corrlog::output::Pipeline::builder(std::io::sink()).start();
    /// let report = guard.shutdown(Duration::from_secs(5));
    /// assert!(!report.timed_out);
    /// ```
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
                    otlp: None,
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
            otlp: None,
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
mod tests;
