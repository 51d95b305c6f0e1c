//! What the caller side and the writer thread share: the queue and the
//! state of both sides, under one lock.
//!
//! Two small state machines:
//!
//! ```text
//! Intake:  Open ──(a Block wait timed out)──▶ Shedding ──(writer swapped the queue)──▶ Open
//!            └──────────────(shutdown)──────────────▶ Closed { warned }   (from either)
//!
//! Writer:  Writing ──(queue empty)──▶ Idle ──(line, flush or shutdown)──▶ Writing
//!          Writing ──(small batch)──▶ Lingering ──(batch delay, or queue filling)──▶ Writing
//!          Writing ──(closed, queue empty, nobody blocked)──▶ Done   (also if the output panics)
//! ```

use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::{Backpressure, Stats};

/// Whether the pipeline takes lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Intake {
    /// Lines are queued; a caller finding the queue full follows the
    /// backpressure policy.
    Open,
    /// A `Block` wait timed out: callers finding the queue full drop their
    /// line at once, until the writer has taken the queue.
    Shedding,
    /// Shut down: every new line is dropped. `warned` once the first such
    /// line has been reported on stderr.
    Closed { warned: bool },
}

/// What the writer thread is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriterState {
    /// Awake: taking the queue or writing a batch. Callers need not wake it.
    Writing,
    /// Asleep until a line, a flush or shutdown wakes it.
    Idle,
    /// Letting a batch gather for the batch delay; woken early when the
    /// queue fills past a batch, or by a flush or shutdown.
    Lingering,
    /// Stopped, for good: after shutdown, or because the output panicked.
    Done,
}

pub(super) struct State {
    /// Lines waiting for the writer, whole and newline-terminated.
    pub(super) queue: Vec<u8>,
    pub(super) queued_lines: u64,
    pub(super) capacity: usize,
    pub(super) policy: Backpressure,
    pub(super) intake: Intake,
    pub(super) writer: WriterState,
    /// Dropped lines not yet reported in band.
    pub(super) unreported_drops: u64,
    /// Lines of the batch the writer is writing now.
    pub(super) in_flight: u64,
    /// Callers waiting for room (`Block`), one line each.
    pub(super) blocked: u64,
    pub(super) flush_requested: u64,
    pub(super) flush_done: u64,
    pub(super) stats: Stats,
}

impl State {
    pub(super) fn new(capacity: usize, policy: Backpressure) -> Self {
        State {
            queue: Vec::with_capacity(capacity),
            queued_lines: 0,
            capacity,
            policy,
            intake: Intake::Open,
            writer: WriterState::Writing,
            unreported_drops: 0,
            in_flight: 0,
            blocked: 0,
            flush_requested: 0,
            flush_done: 0,
            stats: Stats::default(),
        }
    }

    pub(super) fn closed(&self) -> bool {
        matches!(self.intake, Intake::Closed { .. })
    }

    pub(super) fn writer_done(&self) -> bool {
        self.writer == WriterState::Done
    }

    pub(super) fn flush_pending(&self) -> bool {
        self.flush_done != self.flush_requested
    }

    /// Counts a dropped line, to be reported in band.
    pub(super) fn drop_line(&mut self) {
        self.stats.dropped += 1;
        self.unreported_drops += 1;
    }
}

/// A batch this large is written without waiting out the batch delay:
/// small batches stay in cache, and the queue never fills while the writer
/// lingers.
pub(super) fn batch_bytes(capacity: usize) -> usize {
    (capacity / 4).clamp(1, 1024 * 1024)
}

pub(super) struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: lines queued, flush or shutdown requested.
    pub(super) work: Condvar,
    /// Wakes blocked callers: the queue was drained.
    pub(super) room: Condvar,
    /// Wakes flush and shutdown waiters.
    pub(super) progress: Condvar,
    writer_thread: Mutex<Option<thread::ThreadId>>,
}

/// `Condvar::wait_timeout`, keeping the guard through poisoning.
pub(super) fn wait_for<'a>(
    cvar: &Condvar,
    guard: MutexGuard<'a, State>,
    timeout: Duration,
) -> MutexGuard<'a, State> {
    match cvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

impl Shared {
    pub(super) fn new(state: State) -> Self {
        Shared {
            state: Mutex::new(state),
            work: Condvar::new(),
            room: Condvar::new(),
            progress: Condvar::new(),
            writer_thread: Mutex::new(None),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding this lock; if one ever did, the
        // queue is still a valid byte buffer of whole lines.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn set_writer_thread(&self, id: thread::ThreadId) {
        *self
            .writer_thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(id);
    }

    pub(super) fn is_writer_thread(&self) -> bool {
        let id = self
            .writer_thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *id == Some(thread::current().id())
    }

    /// Asks the writer to write and flush everything queued so far; waits
    /// until it has, or until `deadline`. Returns whether it finished.
    pub(super) fn flush(&self, deadline: Deadline) -> bool {
        if self.is_writer_thread() {
            return false;
        }
        let st = self.lock();
        self.flush_locked(st, deadline)
    }

    /// `flush` for the panic hook: the panicking thread might hold the
    /// lock already (it never should), so never block on it; give up at
    /// the deadline instead.
    pub(super) fn flush_from_panic(&self, deadline: Deadline) -> bool {
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
        if st.writer_done() {
            return st.queue.is_empty();
        }
        st.flush_requested += 1;
        let target = st.flush_requested;
        self.work.notify_one();
        while st.flush_done < target && !st.writer_done() {
            let Some(left) = deadline.remaining() else {
                return false;
            };
            st = wait_for(&self.progress, st, left);
        }
        true
    }
}

/// A point in time to wait until. A timeout too large to add to the clock
/// (`Duration::MAX`, say) means no limit.
#[derive(Clone, Copy)]
pub(super) struct Deadline(Option<Instant>);

impl Deadline {
    pub(super) fn after(timeout: Duration) -> Self {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// The time left, or `None` once the deadline has passed. Without a
    /// limit, an hour at a time.
    pub(super) fn remaining(self) -> Option<Duration> {
        match self.0 {
            None => Some(Duration::from_secs(3600)),
            Some(at) => at
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero()),
        }
    }
}
