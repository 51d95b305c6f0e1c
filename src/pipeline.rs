//! The writer pipeline: log I/O off the request path.
//!
//! Each encoded line is copied into one shared in-memory queue, bounded by
//! **bytes**, and a dedicated writer thread (a plain OS thread, so it works
//! without a tokio runtime and after it has shut down) writes everything
//! queued in one `write` call per batch. The calling thread never touches
//! the output.
//!
//! - **Order**: lines enter the queue under one lock, so lines from one
//!   thread keep their order, and an ERROR never overtakes an earlier INFO.
//! - **Idle**: the writer thread sleeps on a condition variable; an idle
//!   process spends no CPU on logging.
//! - **No allocation per line**: the queue is two buffers allocated once and
//!   swapped between the callers and the writer.
//!
//! # When the output is slower than the application
//!
//! The queue fills up, and the [`Backpressure`] policy decides:
//!
//! | policy | what a logging call does when the queue is full |
//! |---|---|
//! | [`Backpressure::Block`] (default, 50 ms) | waits for room, at most `max_wait`; if none comes, drops the line, and later lines are dropped at once until the writer has emptied the queue |
//! | [`Backpressure::Drop`] | drops the line at once |
//!
//! The default blocks because losing lines is the worse surprise: a burst
//! up to the queue size (8 MiB by default) plus `max_wait` of output time is
//! absorbed with no loss, while a sink that stays too slow costs each
//! overload episode at most one `max_wait`, never a wait per line. Choose
//! `Drop` when request latency matters more than completeness.
//!
//! Every dropped line is counted. When the writer catches up it writes, in
//! band, one line `{"level":"WARN","message":"dropped log lines","logger":"corrlog","dropped":N}`
//! with the exact count, so a gap in the logs is always visible where it
//! happened. [`Pipeline::stats`] gives the counters to code.
//!
//! # Failing outputs
//!
//! A write error (disk full, closed pipe, permission denied) never reaches
//! the logging call and never panics: the batch is counted as failed, the
//! error is reported on stderr at most once per 10 seconds, and, if
//! [`PipelineBuilder::fallback_to_stderr`] is on, the batch is written to
//! stderr instead.
//!
//! # Shutdown
//!
//! [`Pipeline::builder`] returns a [`PipelineGuard`] with the pipeline.
//! [`PipelineGuard::shutdown`] (also run on drop, with a 5 s deadline)
//! writes out everything queued, flushes the output and reports what
//! happened. With `Block`, a clean shutdown loses nothing.
//!
//! ```
//! use std::time::Duration;
//! use corrlog::pipeline::{Backpressure, Pipeline};
//! use corrlog::writer::{Capture, Sink};
//!
//! let capture = Capture::new();
//! let (pipeline, guard) = Pipeline::builder(capture.clone())
//!     .capacity_bytes(1 << 20)
//!     .backpressure(Backpressure::Block { max_wait: Duration::from_millis(100) })
//!     .start();
//! pipeline.write_line(b"{\"message\":\"hello\"}\n");
//! let report = guard.shutdown(Duration::from_secs(1));
//! assert_eq!(report.stats.written, 1);
//! assert_eq!(report.stats.dropped, 0);
//! assert_eq!(capture.lines(), vec!["{\"message\":\"hello\"}"]);
//! ```

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, Weak};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::encoder::{self, TimestampCache};
use crate::writer::Sink;

/// The default queue size: 8 MiB of encoded lines.
pub const DEFAULT_CAPACITY_BYTES: usize = 8 * 1024 * 1024;

/// How long to wait between two error reports on stderr.
const ERROR_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What a logging call does when the queue is full. See the
/// [module docs](crate::pipeline).
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

struct State {
    /// Lines waiting for the writer.
    queue: Vec<u8>,
    queued_lines: u64,
    capacity: usize,
    policy: Backpressure,
    writer_idle: bool,
    /// The writer is letting a batch gather (see `batch_delay`).
    writer_lingering: bool,
    /// Set after a `Block` wait timed out: drop at once until drained.
    shedding: bool,
    closed: bool,
    writer_done: bool,
    /// Dropped lines not yet reported in band.
    unreported_drops: u64,
    /// Lines of the batch the writer is writing now.
    in_flight: u64,
    /// Whether a line logged after shutdown has been reported on stderr.
    warned_closed: bool,
    /// Callers waiting for room (`Block`), one line each.
    blocked: u64,
    flush_requested: u64,
    flush_done: u64,
    stats: Stats,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: lines queued, flush or shutdown requested.
    work: Condvar,
    /// Wakes blocked callers: the queue was drained.
    room: Condvar,
    /// Wakes flush and shutdown waiters.
    progress: Condvar,
    writer_thread: Mutex<Option<thread::ThreadId>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding this lock; if one ever did, the
        // queue is still a valid byte buffer of whole lines.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_writer_thread(&self) -> bool {
        let id = self
            .writer_thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *id == Some(thread::current().id())
    }

    /// Asks the writer to write and flush everything queued so far; waits
    /// until it has, or until `deadline`. Returns whether it finished.
    fn flush(&self, deadline: Deadline) -> bool {
        if self.is_writer_thread() {
            return false;
        }
        let st = self.lock();
        self.flush_locked(st, deadline)
    }

    /// `flush` for the panic hook: the panicking thread might hold the
    /// lock already (it never should), so never block on it; give up at
    /// the deadline instead.
    fn flush_from_panic(&self, deadline: Deadline) -> bool {
        if self.is_writer_thread() {
            return false;
        }
        loop {
            match self.state.try_lock() {
                Ok(st) => return self.flush_locked(st, deadline),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                    return self.flush_locked(poisoned.into_inner(), deadline)
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    if deadline.remaining().is_none() {
                        return false;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    fn flush_locked(&self, mut st: MutexGuard<'_, State>, deadline: Deadline) -> bool {
        if st.writer_done {
            return st.queue.is_empty();
        }
        st.flush_requested += 1;
        let target = st.flush_requested;
        self.work.notify_one();
        while st.flush_done < target && !st.writer_done {
            let Some(left) = deadline.remaining() else {
                return false;
            };
            st = match self.progress.wait_timeout(st, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

/// A point in time to wait until. A timeout too large to add to the clock
/// (`Duration::MAX`, say) means no limit.
#[derive(Clone, Copy)]
struct Deadline(Option<Instant>);

impl Deadline {
    fn after(timeout: Duration) -> Self {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// The time left, or `None` once the deadline has passed. Without a
    /// limit, an hour at a time.
    fn remaining(self) -> Option<Duration> {
        match self.0 {
            None => Some(Duration::from_secs(3600)),
            Some(at) => at
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero()),
        }
    }
}

/// The calling side of a pipeline: a [`Sink`] that queues lines for the
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
    /// The queue size in bytes. Defaults to [`DEFAULT_CAPACITY_BYTES`]
    /// (8 MiB). Two buffers of this size are allocated at start.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
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

    /// Starts the writer thread.
    ///
    /// # Panics
    ///
    /// Panics if the OS cannot start a thread, like `std::thread::spawn`.
    pub fn start(self) -> (Pipeline, PipelineGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Vec::with_capacity(self.capacity),
                queued_lines: 0,
                capacity: self.capacity,
                policy: self.policy,
                writer_idle: false,
                writer_lingering: false,
                shedding: false,
                closed: false,
                writer_done: false,
                unreported_drops: 0,
                in_flight: 0,
                warned_closed: false,
                blocked: 0,
                flush_requested: 0,
                flush_done: 0,
                stats: Stats::default(),
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            progress: Condvar::new(),
            writer_thread: Mutex::new(None),
        });
        let writer = Writer {
            shared: shared.clone(),
            output: self.output,
            spare: Vec::with_capacity(self.capacity),
            fallback_to_stderr: self.fallback_to_stderr,
            linger: self.linger,
            last_error_report: None,
            errors_since_report: 0,
            clock: TimestampCache::default(),
        };
        let handle = thread::Builder::new()
            .name("corrlog-writer".into())
            .spawn(move || writer.run())
            .expect("failed to spawn the corrlog writer thread");
        *shared
            .writer_thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(handle.thread().id());
        if self.flush_on_panic {
            install_panic_hook(Arc::downgrade(&shared));
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

thread_local! {
    /// How many [`catch_panic`] calls this thread is inside.
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// `catch_unwind` for corrlog's own panic boundaries (the middleware's
/// handler, response future and body, the layer's formatting). The panic
/// hook sees that a panic here will be caught and the process lives on:
/// it waits only briefly for the flush, so a panicking endpoint cannot
/// stall a worker thread behind a slow output.
pub(crate) fn catch_panic<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = CATCHING.try_with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    let _ = CATCHING.try_with(|c| c.set(c.get() + 1));
    let _leave = Leave;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
}

/// Whether the panic being raised now will be caught by [`catch_panic`].
/// Never when panics abort: then nothing is caught.
fn panic_is_caught() -> bool {
    cfg!(panic = "unwind") && CATCHING.try_with(|c| c.get() > 0).unwrap_or(false)
}

#[cfg(test)]
thread_local! {
    /// The wait the panic hook last chose on this thread.
    static HOOK_WAIT: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// The pipelines the panic hook flushes.
static PANIC_FLUSHED: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// How long the panic hook waits for queued lines to be written.
const PANIC_FLUSH_WAIT: Duration = Duration::from_millis(500);

/// The same, for a panic corrlog will catch: the process lives on (unless
/// another panic hook ends it), so only a short wait.
const CAUGHT_PANIC_FLUSH_WAIT: Duration = Duration::from_millis(20);

/// Registers a pipeline with the panic hook, installing the hook the first
/// time (one hook for all pipelines, chained to the one found then).
fn install_panic_hook(shared: Weak<Shared>) {
    static INSTALL: Once = Once::new();
    {
        let mut list = PANIC_FLUSHED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        list.retain(|p| p.strong_count() > 0);
        list.push(shared);
    }
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let wait = if panic_is_caught() {
                CAUGHT_PANIC_FLUSH_WAIT
            } else {
                PANIC_FLUSH_WAIT
            };
            #[cfg(test)]
            let _ = HOOK_WAIT.try_with(|w| w.set(Some(wait)));
            let deadline = Deadline::after(wait);
            let live: Vec<Arc<Shared>> = match PANIC_FLUSHED.try_lock() {
                Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned
                    .into_inner()
                    .iter()
                    .filter_map(Weak::upgrade)
                    .collect(),
                Err(std::sync::TryLockError::WouldBlock) => Vec::new(),
            };
            for shared in live {
                shared.flush_from_panic(deadline);
            }
            previous(info);
        }));
    });
}

impl Pipeline {
    /// A builder for a pipeline writing to `output` (stdout, stderr, a
    /// file, a [`RollingFile`](crate::rolling::RollingFile), a
    /// [`Capture`](crate::writer::Capture), any `io::Write`).
    pub fn builder(output: impl Write + Send + 'static) -> PipelineBuilder {
        PipelineBuilder {
            output: Box::new(output),
            capacity: DEFAULT_CAPACITY_BYTES,
            policy: Backpressure::default(),
            fallback_to_stderr: false,
            flush_on_panic: true,
            linger: DEFAULT_BATCH_DELAY,
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

/// A batch this large is written without waiting out the batch delay:
/// small batches stay in cache, and the queue never fills while the writer
/// lingers.
fn batch_bytes(capacity: usize) -> usize {
    (capacity / 4).clamp(1, 1024 * 1024)
}

fn drop_line(st: &mut State) {
    st.stats.dropped += 1;
    st.unreported_drops += 1;
}

impl Sink for Pipeline {
    fn write_line(&self, line: &[u8]) {
        let shared = &*self.shared;
        let mut st = shared.lock();
        st.stats.submitted += 1;
        if st.closed {
            drop_line(&mut st);
            let first = !std::mem::replace(&mut st.warned_closed, true);
            drop(st);
            if first {
                let _ = writeln!(
                    io::stderr().lock(),
                    "corrlog: a line was logged after the log pipeline shut down and was \
                     dropped (so are any later ones); keep the guard (or corrlog::Logging) \
                     alive until the program ends, e.g. not `let _ = ...init()`"
                );
            }
            return;
        }
        if line.len() > st.capacity {
            drop_line(&mut st);
            return;
        }
        if st.queue.len() + line.len() > st.capacity {
            match st.policy {
                Backpressure::Drop => {
                    drop_line(&mut st);
                    return;
                }
                Backpressure::Block { max_wait } => {
                    if st.shedding || shared.is_writer_thread() {
                        drop_line(&mut st);
                        return;
                    }
                    // A line that arrived before shutdown keeps waiting
                    // through it: the writer does not stop while a caller
                    // is blocked here, so a clean shutdown loses nothing.
                    let deadline = Deadline::after(max_wait);
                    st.blocked += 1;
                    let mut gave_up = false;
                    while st.queue.len() + line.len() > st.capacity && !st.writer_done {
                        match deadline.remaining() {
                            // Shedding is for overload; once shutdown has
                            // begun, a line that arrived before it waits
                            // out its own deadline.
                            Some(left) if !st.shedding || st.closed => {
                                st = match shared.room.wait_timeout(st, left) {
                                    Ok((guard, _)) => guard,
                                    Err(poisoned) => poisoned.into_inner().0,
                                };
                            }
                            _ => {
                                st.shedding = true;
                                gave_up = true;
                                break;
                            }
                        }
                    }
                    st.blocked -= 1;
                    if gave_up || st.writer_done {
                        drop_line(&mut st);
                        // A closing writer may be waiting for the last
                        // blocked caller.
                        if st.closed {
                            shared.work.notify_one();
                        }
                        return;
                    }
                }
            }
        }
        st.queue.extend_from_slice(line);
        st.queued_lines += 1;
        let queued = st.queue.len() as u64;
        if queued > st.stats.high_water_bytes {
            st.stats.high_water_bytes = queued;
        }
        if st.writer_idle || (st.writer_lingering && st.queue.len() >= batch_bytes(st.capacity)) {
            st.writer_idle = false;
            st.writer_lingering = false;
            shared.work.notify_one();
        }
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
        st.closed = true;
        shared.work.notify_one();
        shared.room.notify_all();
        while !st.writer_done {
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
            st = match shared.progress.wait_timeout(st, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
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

/// The writer thread's side.
struct Writer {
    shared: Arc<Shared>,
    output: Box<dyn Write + Send>,
    /// The buffer swapped with the queue at each batch.
    spare: Vec<u8>,
    fallback_to_stderr: bool,
    linger: Duration,
    last_error_report: Option<Instant>,
    errors_since_report: u64,
    clock: TimestampCache,
}

impl Writer {
    fn run(mut self) {
        /// If the output panics, the thread ends here: still mark the
        /// writer done, so no caller or shutdown waits for it.
        struct Done(Arc<Shared>);
        impl Drop for Done {
            fn drop(&mut self) {
                let mut st = self.0.lock();
                st.writer_done = true;
                self.0.room.notify_all();
                self.0.progress.notify_all();
            }
        }
        let _done = Done(self.shared.clone());
        loop {
            let shared = self.shared.clone();
            let mut st = shared.lock();
            // Closing, the writer still waits for callers blocked for room:
            // their lines arrived before shutdown.
            while st.queue.is_empty()
                && (!st.closed || st.blocked > 0)
                && st.flush_done == st.flush_requested
            {
                st.writer_idle = true;
                st = match shared.work.wait(st) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
            st.writer_idle = false;
            // Let a batch gather before writing, unless the queue is filling
            // up or someone waits: one wake-up then covers many lines, where
            // waking per line would cost callers a system call each.
            if !self.linger.is_zero()
                && !st.closed
                && st.flush_done == st.flush_requested
                && st.queue.len() < batch_bytes(st.capacity)
            {
                st.writer_lingering = true;
                st = match shared.work.wait_timeout(st, self.linger) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
                st.writer_lingering = false;
            }
            let closing = st.closed;
            let flush_target = st.flush_requested;
            std::mem::swap(&mut st.queue, &mut self.spare);
            let lines = std::mem::take(&mut st.queued_lines);
            st.in_flight = lines;
            let drops = std::mem::take(&mut st.unreported_drops);
            st.shedding = false;
            shared.room.notify_all();
            drop(st);

            let written = self.write_batch(lines);
            let drop_report = if drops > 0 {
                self.report_drops(drops)
            } else {
                0
            };
            self.spare.clear();
            // Outputs may buffer (stdout does): make each batch visible.
            if let Err(err) = self.output.flush() {
                self.on_error(&err);
            }

            let mut st = shared.lock();
            st.stats.written += written + drop_report;
            st.stats.failed += lines - written;
            st.in_flight = 0;
            st.flush_done = flush_target;
            if closing && st.queue.is_empty() && st.blocked == 0 {
                st.writer_done = true;
                shared.progress.notify_all();
                // Callers still waiting for room now drop their lines.
                shared.room.notify_all();
                return;
            }
            shared.progress.notify_all();
        }
    }

    /// Writes the swapped-out batch; returns how many lines made it.
    fn write_batch(&mut self, lines: u64) -> u64 {
        if self.spare.is_empty() {
            return 0;
        }
        match self.output.write_all(&self.spare) {
            Ok(()) => lines,
            Err(err) => {
                self.on_error(&err);
                if self.fallback_to_stderr && io::stderr().lock().write_all(&self.spare).is_ok() {
                    lines
                } else {
                    0
                }
            }
        }
    }

    /// Writes the in-band WARN line for `drops` lost lines; returns 1 if it
    /// was written.
    fn report_drops(&mut self, drops: u64) -> u64 {
        let mut line = Vec::with_capacity(160);
        line.extend_from_slice(b"{\"timestamp\":");
        self.clock.write(&mut line, SystemTime::now());
        line.extend_from_slice(
            b",\"level\":\"WARN\",\"message\":\"dropped log lines\",\"logger\":\"corrlog\",\"dropped\":",
        );
        encoder::write_u64(&mut line, drops);
        line.extend_from_slice(b"}\n");
        match self.output.write_all(&line) {
            Ok(()) => 1,
            Err(err) => {
                self.on_error(&err);
                0
            }
        }
    }

    fn on_error(&mut self, err: &io::Error) {
        let errors = {
            let mut st = self.shared.lock();
            st.stats.write_errors += 1;
            st.stats.write_errors
        };
        self.errors_since_report += 1;
        let due = self
            .last_error_report
            .is_none_or(|at| at.elapsed() >= ERROR_REPORT_INTERVAL);
        if due {
            let _ = writeln!(
                io::stderr().lock(),
                "corrlog: writing log lines failed: {err} ({} failed writes since the last report, {errors} in all); \
                 the service keeps running; check the log destination",
                self.errors_since_report
            );
            self.last_error_report = Some(Instant::now());
            self.errors_since_report = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::Capture;

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
            .capacity_bytes(16)
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
            .capacity_bytes(64)
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
            .capacity_bytes(4 * line(0).len())
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
                .capacity_bytes(4 * line.len())
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
            while !p.shared.lock().closed && Instant::now() < deadline {
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
