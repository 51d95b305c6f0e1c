//! Where a [`LogLayer`](crate::LogLayer) hands its lines.

#[cfg(any(test, feature = "testing"))]
use std::fmt;
#[cfg(any(test, feature = "testing"))]
use std::io::{self, Write};
use std::sync::Arc;
#[cfg(any(test, feature = "testing"))]
use std::sync::{Mutex, MutexGuard};

/// Receives complete, newline-terminated lines from a
/// [`LogLayer`](crate::LogLayer), one call per line.
///
/// Implementations must be cheap to call from many threads at once and
/// must not panic; I/O errors are theirs to handle (count, report, drop):
/// logging must not fail a request. The sinks in [`crate::output`]
/// implement it: a [`Pipeline`](crate::output::Pipeline) moves I/O off the
/// request path; the others write on the calling thread.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use corrlog::fmt::Sink;
///
/// /// Counts lines, writes nothing.
/// #[derive(Default)]
/// struct Counter(AtomicUsize);
///
/// impl Sink for Counter {
///     fn write_line(&self, _line: &[u8]) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let layer = corrlog::LogLayer::new(Counter::default());
/// # drop(layer);
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Takes one line, including its trailing `\n`.
    fn write_line(&self, line: &[u8]);
}

impl<S: Sink + ?Sized> Sink for Arc<S> {
    fn write_line(&self, line: &[u8]) {
        (**self).write_line(line);
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write_line(&self, line: &[u8]) {
        (**self).write_line(line);
    }
}

#[cfg(any(test, feature = "testing"))]
/// Keeps every line in memory: the lines of [`TestLogs`](crate::testing::TestLogs),
/// and of the crate's own unit tests. Clones share the same lines.
#[derive(Clone, Default)]
pub(crate) struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
}

#[cfg(any(test, feature = "testing"))]
impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("bytes", &self.lock().len())
            .finish()
    }
}

#[cfg(any(test, feature = "testing"))]
impl Capture {
    /// An empty capture.
    pub(crate) fn new() -> Self {
        Capture::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything written so far, as raw bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// The lines written so far, without their newlines. Invalid UTF-8 is
    /// replaced, so a test can still see it.
    pub(crate) fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.lock())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Forgets everything written so far.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(any(test, feature = "testing"))]
impl Sink for Capture {
    fn write_line(&self, line: &[u8]) {
        self.lock().extend_from_slice(line);
    }
}

/// A capture is also an `io::Write`, so it can be a pipeline's output.
#[cfg(any(test, feature = "testing"))]
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
