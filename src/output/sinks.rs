//! Sinks that write on the calling thread: any `io::Write`, and an
//! in-memory capture for tests.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::fmt::Sink;

/// Writes lines to any [`io::Write`] behind a mutex: a file, a socket,
/// [`io::sink()`]. Errors are ignored.
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

/// Keeps every line in memory, for tests. Clones share the same lines.
///
/// ```
/// use corrlog::fmt::Sink;
/// use corrlog::output::Capture;
///
/// let capture = Capture::new();
/// let writer = capture.clone();
/// writer.write_line(b"{\"a\":1}\n");
/// assert_eq!(capture.lines().len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("bytes", &self.lock().len())
            .finish()
    }
}

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Capture::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything written so far, as raw bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// The lines written so far, without their newlines. Invalid UTF-8 is
    /// replaced, so a test can still see it.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.lock())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Forgets everything written so far.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl Sink for Capture {
    fn write_line(&self, line: &[u8]) {
        self.lock().extend_from_slice(line);
    }
}

/// A capture is also an `io::Write`, so it can be a pipeline's output.
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
