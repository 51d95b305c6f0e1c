//! Capturing the lines of a test, across worker threads, without a global
//! subscriber (feature `testing`, for `[dev-dependencies]`).
//!
//! [`TestLogs`] is the one in-memory destination: a [`Sink`] for a
//! [`LogLayer`] of your own, an `io::Write` for the
//! [builder](crate::Builder)'s [`Destination::Writer`](crate::output::Destination::Writer),
//! and a subscriber of its own (JSON lines, every level) for
//! [`TestLogs::scope`] and [`TestLogs::runtime`].
//!
//! Tests in one binary run in parallel, so a global subscriber mixes their
//! lines, and `tracing::subscriber::set_default` covers only the current
//! thread, not a multi-thread runtime's workers. [`TestLogs::runtime`]
//! builds a runtime whose every thread (workers and blocking pool) logs
//! into this capture and nowhere else.
//!
//! ```
//! use corrlog::testing::TestLogs;
//! use corrlog::{RequestContext, RequestId};
//!
//! let logs = TestLogs::new();
//! let rt = logs.runtime(2);
//! rt.block_on(async {
//!     let ctx = RequestContext::new(RequestId::new("test-req-1").unwrap());
//!     ctx.scope(async {
//!         corrlog::spawn(async { tracing::info!("from another task") }).await.unwrap();
//!     })
//!     .await;
//! });
//! let lines = logs.lines_for("test-req-1");
//! assert_eq!(lines.len(), 1);
//! assert!(lines[0].contains("from another task"));
//! ```

use std::fmt;
use std::io::{self, Write};

use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

use crate::fmt::layer::LogLayer;
use crate::fmt::{Capture, Sink};

/// An in-memory log destination for one test. Clones share the same
/// lines. See the [module docs](crate::testing).
///
/// ```
/// use corrlog::testing::TestLogs;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// // As the sink of a layer of your own:
/// let logs = TestLogs::new();
/// let subscriber = tracing_subscriber::registry().with(corrlog::LogLayer::new(logs.clone()));
/// tracing::subscriber::with_default(subscriber, || tracing::info!("one"));
/// // Or through its own subscriber:
/// logs.scope(|| tracing::info!("two"));
/// assert_eq!(logs.lines().len(), 2);
/// logs.clear();
/// assert!(logs.bytes().is_empty());
/// ```
#[derive(Clone)]
pub struct TestLogs {
    capture: Capture,
    dispatch: Dispatch,
}

impl fmt::Debug for TestLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestLogs")
            .field("capture", &self.capture)
            .finish_non_exhaustive()
    }
}

impl Default for TestLogs {
    fn default() -> Self {
        TestLogs::new()
    }
}

impl TestLogs {
    /// A new capture with a JSON layer and no filter (every level).
    pub fn new() -> Self {
        let capture = Capture::new();
        let dispatch =
            Dispatch::new(tracing_subscriber::registry().with(LogLayer::new(capture.clone())));
        TestLogs { capture, dispatch }
    }

    /// A multi-thread runtime with `workers` workers whose every thread
    /// logs here.
    ///
    /// The future given to `block_on` itself runs on the calling thread,
    /// which is not one of the runtime's: to capture what it logs directly
    /// (not in spawned tasks), call it inside [`TestLogs::scope`], e.g.
    /// `logs.scope(|| rt.block_on(fut))`.
    ///
    /// # Panics
    ///
    /// If the runtime cannot be built (no threads available).
    pub fn runtime(&self, workers: usize) -> tokio::runtime::Runtime {
        runtime_with(self.dispatch.clone(), workers)
    }

    /// Runs `f` on this thread with this capture as the subscriber.
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.capture.lines()
    }

    /// The lines whose `request_id` is `id`.
    pub fn lines_for(&self, id: &str) -> Vec<String> {
        let mut needle = Vec::with_capacity(id.len() + 16);
        needle.extend_from_slice(b"\"request_id\":");
        crate::fmt::escape::write_str(&mut needle, id);
        let needle = String::from_utf8_lossy(&needle).into_owned();
        self.lines()
            .into_iter()
            .filter(|l| l.contains(&needle))
            .collect()
    }

    /// Everything written so far, as raw bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.capture.bytes()
    }

    /// Forgets everything written so far.
    pub fn clear(&self) {
        self.capture.clear();
    }
}

impl Sink for TestLogs {
    fn write_line(&self, line: &[u8]) {
        self.capture.write_line(line);
    }
}

/// Also an `io::Write`, so it can be a pipeline's output (the builder's
/// [`Destination::Writer`](crate::output::Destination::Writer)).
impl Write for TestLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.capture.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A multi-thread runtime with `workers` workers whose every thread
/// (workers and blocking pool) uses `dispatch` as its subscriber, e.g. one
/// from [`Builder::build`](crate::Builder::build).
///
/// # Panics
///
/// If the runtime cannot be built (no threads available).
///
/// ```
/// use corrlog::testing::TestLogs;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let capture = TestLogs::new();
/// let dispatch = tracing::Dispatch::new(
///     tracing_subscriber::registry().with(corrlog::LogLayer::new(capture.clone())),
/// );
/// let rt = corrlog::testing::runtime_with(dispatch, 2);
/// rt.block_on(async { tokio::spawn(async { tracing::info!("on a worker") }).await.unwrap() });
/// assert_eq!(capture.lines().len(), 1);
/// ```
pub fn runtime_with(dispatch: Dispatch, workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .on_thread_start(move || {
            // The thread's default for its whole life.
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .build()
        .expect("failed to build the test runtime")
}
