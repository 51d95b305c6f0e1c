//! Where lines go: the [writer pipeline](Pipeline) that moves I/O off the
//! request path, rolling log files, and a simple sink that writes on the
//! calling thread. Lines in memory, for tests: [`TestLogs`](crate::testing::TestLogs).
//!
//! | type | what it is |
//! |---|---|
//! | [`Pipeline`] | a [`Sink`](crate::fmt::Sink) that queues lines for a writer thread; bounded by bytes, with a stated [`Backpressure`] policy and a shutdown report |
//! | [`RollingFile`] | an `io::Write` log file rotating by size and time, for a pipeline's output |
//! | [`Destination`] | where the [builder](crate::Builder) writes: stdout, stderr, a rolling file, any `io::Write` |
//! | [`WriterSink`] | a sink that writes on the logging thread |
//! | `otlp::OtlpWriter` | (feature `otlp`) a pipeline output exporting OTLP log records to a collector |
//!
//! # When the output is slower than the application
//!
//! The pipeline's queue fills up, and the [`Backpressure`] policy decides:
//!
//! | policy | what a logging call does when the queue is full |
//! |---|---|
//! | [`Backpressure::Block`] (default, 50 ms) | waits for room, at most `max_wait`; if none comes, drops the line, and later lines are dropped at once until the writer has emptied the queue |
//! | [`Backpressure::Drop`] | drops the line at once |
//!
//! Every dropped line is counted and reported in band. See [`Pipeline`].

mod destination;
#[cfg(feature = "otlp")]
pub mod otlp;
mod pipeline;
mod rolling;
mod sinks;

pub use self::destination::Destination;
pub use self::pipeline::{
    Backpressure, Pipeline, PipelineBuilder, PipelineGuard, ShutdownReport, Stats,
    DEFAULT_BATCH_DELAY, DEFAULT_QUEUE_BYTES,
};
pub use self::rolling::{
    Period, RollingFile, RollingFileBuilder, DEFAULT_DIR_MODE, DEFAULT_FILE_MODE,
    DEFAULT_MAX_FILES, DEFAULT_MAX_FILE_BYTES,
};
pub use self::sinks::WriterSink;
