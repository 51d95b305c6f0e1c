//! The writer thread: takes the whole queue at once, writes it in one call,
//! reports drops in band and errors on stderr.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::Level;

use super::state::{batch_bytes, wait_for, Intake, Shared, WriterState};
use crate::fmt::json;
use crate::fmt::line::{Constant, Line, Style};
use crate::fmt::time::TimestampCache;
use crate::fmt::Redaction;

/// How long to wait between two error reports on stderr.
const ERROR_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// The writer thread's side.
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) output: Box<dyn Write + Send>,
    /// The buffer swapped with the queue at each batch.
    pub(super) spare: Vec<u8>,
    pub(super) fallback_to_stderr: bool,
    pub(super) linger: Duration,
    /// How the in-band drop report is laid out.
    pub(super) style: Style,
    /// What the layer writes on every line (the service fields).
    pub(super) constant: Constant,
    /// Unused by the report (it has no user fields), which every line needs.
    pub(super) report_policy: Redaction,
    pub(super) last_error_report: Option<Instant>,
    pub(super) errors_since_report: u64,
    pub(super) clock: TimestampCache,
}

impl Writer {
    pub(super) fn run(mut self) {
        /// If the output panics, the thread ends here: still mark the
        /// writer done, so no caller or shutdown waits for it.
        struct Done(Arc<Shared>);
        impl Drop for Done {
            fn drop(&mut self) {
                let mut st = self.0.lock();
                st.writer = WriterState::Done;
                self.0.room.notify_all();
                self.0.progress.notify_all();
            }
        }
        let _done = Done(self.shared.clone());
        // What the output does logs into no subscriber: an output that logs
        // (an HTTP client's own records) would feed its own queue. Scoped to
        // the writing only: a scoped dispatcher held for the thread's life
        // would take every thread of the process off tracing's fast path
        // to the global one.
        let quiet = tracing::Dispatch::none();
        let shared = self.shared.clone();
        loop {
            let mut st = shared.lock();
            // Closing, the writer still waits for callers blocked for room:
            // their lines arrived before shutdown.
            while st.queue.is_empty() && (!st.closed() || st.blocked > 0) && !st.flush_pending() {
                st.writer = WriterState::Idle;
                st = match shared.work.wait(st) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
            st.writer = WriterState::Writing;
            // Let a batch gather before writing, unless the queue is filling
            // up or someone waits: one wake-up then covers many lines, where
            // waking per line would cost callers a system call each.
            if !self.linger.is_zero()
                && !st.closed()
                && !st.flush_pending()
                && st.queue.len() < batch_bytes(st.capacity)
            {
                st.writer = WriterState::Lingering;
                st = wait_for(&shared.work, st, self.linger);
                st.writer = WriterState::Writing;
            }
            let closing = st.closed();
            let flush_target = st.flush_requested;
            std::mem::swap(&mut st.queue, &mut self.spare);
            let lines = std::mem::take(&mut st.queued_lines);
            st.in_flight = lines;
            let drops = std::mem::take(&mut st.unreported_drops);
            if st.intake == Intake::Shedding {
                st.intake = Intake::Open;
            }
            shared.room.notify_all();
            drop(st);

            let (written, drop_report) = tracing::dispatcher::with_default(&quiet, || {
                let written = self.write_batch(lines);
                let drop_report = if drops > 0 {
                    self.report_drops(drops)
                } else {
                    0
                };
                // Outputs may buffer (stdout does): make each batch visible.
                if let Err(err) = self.output.flush() {
                    self.on_error(&err);
                }
                (written, drop_report)
            });
            self.spare.clear();

            let mut st = shared.lock();
            st.stats.written += written + drop_report;
            st.stats.failed += lines - written;
            st.in_flight = 0;
            st.flush_done = flush_target;
            if closing && st.queue.is_empty() && st.blocked == 0 {
                st.writer = WriterState::Done;
                shared.progress.notify_all();
                // Callers still waiting for room now drop their lines.
                shared.room.notify_all();
                return;
            }
            shared.progress.notify_all();
        }
    }

    /// Writes the swapped-out batch; returns how many lines made it. After
    /// a failure part way, the whole lines that reached the output count as
    /// written, and only the rest goes to the stderr fallback.
    fn write_batch(&mut self, lines: u64) -> u64 {
        let mut done = 0;
        while done < self.spare.len() {
            match self.output.write(&self.spare[done..]) {
                Ok(0) => {
                    self.on_error(&io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.on_error(&err);
                    break;
                }
            }
        }
        if done == self.spare.len() {
            return lines;
        }
        // Up to the end of the last whole line written.
        let whole = self.spare[..done]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let written = self.spare[..whole].iter().filter(|&&b| b == b'\n').count() as u64;
        if self.fallback_to_stderr && io::stderr().lock().write_all(&self.spare[whole..]).is_ok() {
            lines
        } else {
            written
        }
    }

    /// Writes the in-band WARN line for `drops` lost lines; returns 1 if it
    /// was written.
    fn report_drops(&mut self, drops: u64) -> u64 {
        let mut count = Vec::with_capacity(32);
        self.style.key(&mut count, "dropped");
        json::write_u64(&mut count, drops);
        let mut line = Vec::with_capacity(160);
        let parts = Line {
            now: SystemTime::now(),
            level: Level::WARN,
            message: b"dropped log lines",
            logger: "corrlog",
            request: None,
            fields: &[&count],
            nested: &[],
            keys: &[],
            policy: &self.report_policy,
            constant: &self.constant,
        };
        self.style.write_line(&mut line, &mut self.clock, &parts);
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
