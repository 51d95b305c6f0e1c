//! Where a [`LogLayer`](crate::LogLayer) hands its lines.

use std::sync::Arc;

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
/// let layer = corrlog::LogLayer::json(Counter::default());
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
