//! The pipeline's writer thread logs into no subscriber: an output that
//! logs while it writes (an HTTP client exporting the lines, such as the
//! OTLP output's) must not feed its own queue. Its own test binary, since
//! it installs the process-wide subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Write};
use std::time::Duration;

use corrlog::output::Pipeline;
use corrlog::testing::TestLogs;
use corrlog::LogLayer;
use tracing_subscriber::layer::SubscriberExt;

/// An output that logs, through `tracing` and `log`, on every write.
struct Chatty(TestLogs);

impl Write for Chatty {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        tracing::warn!(target: "chatty_client", bytes = buf.len(), "sending");
        log::warn!(target: "chatty_log", "sending {} bytes", buf.len());
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[test]
fn an_output_that_logs_never_feeds_its_own_pipeline() {
    let capture = TestLogs::new();
    let (pipeline, guard) = Pipeline::builder(Chatty(capture.clone())).start();
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(pipeline));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    tracing_log::LogTracer::init().unwrap();
    for n in 0..5 {
        tracing::info!(target: "app", n, "work");
        // Separate batches, so the output runs more than once.
        std::thread::sleep(Duration::from_millis(20));
    }
    // The bridge works on other threads: this one is written.
    std::thread::spawn(|| log::info!(target: "app", "from log"))
        .join()
        .unwrap();
    let report = guard.shutdown(Duration::from_secs(5));
    let lines = capture.lines();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.contains(r#""logger":"app""#)),
        "{lines:#?}"
    );
    assert_eq!(report.stats.written, 6);
}
