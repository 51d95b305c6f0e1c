//! A sink that writes on the calling thread: any `io::Write`.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use crate::fmt::Sink;

/// Writes lines to any [`io::Write`](std::io::Write) behind a mutex: a file, a socket,
/// [`io::sink()`](std::io::sink). Errors are ignored.
///
/// ```
/// use corrlog::fmt::Sink;
/// use corrlog::output::WriterSink;
///
/// let sink = WriterSink::new(Vec::new());
/// sink.write_line(b"{}\n");
/// assert_eq!(sink.into_inner(), b"{}\n");
/// ```
pub struct WriterSink<W> {
    writer: Mutex<W>,
}

impl<W> fmt::Debug for WriterSink<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterSink").finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> WriterSink<W> {
    /// Wraps a writer.
    pub fn new(writer: W) -> Self {
        WriterSink {
            writer: Mutex::new(writer),
        }
    }

    /// Returns the writer.
    pub fn into_inner(self) -> W {
        self.writer
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<W: Write + Send + 'static> Sink for WriterSink<W> {
    fn write_line(&self, line: &[u8]) {
        let mut w = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = w.write_all(line);
    }
}
