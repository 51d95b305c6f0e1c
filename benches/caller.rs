//! Caller-side cost of one log event inside a request context, for each
//! stack, measured in the same run with alternating rounds; prints the
//! medians and the ratios.
//!
//! Run with `cargo bench --bench caller`. The event is
//! `info!(order_id = 42, user = "alice", "processing order")` with the
//! request id (and a bound `tenant`) reaching the line:
//!
//! - `floor`: a minimal hand-written tracing layer that formats the same
//!   line into a reused buffer and writes it to `io::sink()`;
//! - `corrlog`: `LogLayer` into the pipeline (the production set-up),
//!   whose writer thread writes to `io::sink()`;
//! - `corrlog sync`: `LogLayer` writing to `io::sink()` on the caller;
//! - `corrlog sync + service`, `... ecs/gcp/datadog + service`: the same,
//!   with a service identity (name, version, instance, environment), in
//!   each format;
//! - `fmt().json()`: tracing-subscriber's JSON formatter to `io::sink()`,
//!   the request id in a span;
//! - `fmt().json() + non_blocking`: the same through tracing-appender.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use support::{env_num, listing_only, median};

use std::cell::RefCell;
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{self, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use corrlog::fmt::Service;
use corrlog::output::Pipeline;
use corrlog::output::WriterSink;
use corrlog::{LogLayer, RequestContext, RequestId};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Events per round and rounds, unless `EVENTS` and `ROUNDS` say (fewer,
/// for a profiler).
fn events_per_round() -> u32 {
    u32::try_from(env_num("EVENTS", 200_000))
        .unwrap_or(u32::MAX)
        .max(1)
}
fn rounds() -> usize {
    env_num("ROUNDS", 15).max(1) as usize
}

fn event() {
    tracing::info!(order_id = 42, user = "alice", "processing order");
}

/// The floor: format into a reused buffer, write to io::sink(). It skips
/// what corrlog does on top (context lookup, escaping, the queue): the
/// request id is a constant.
struct Floor;

const FLOOR_ID: &str = "550e8400-e29b-41d4-a716-446655440000";

thread_local! {
    static FLOOR_BUF: RefCell<String> = const { RefCell::new(String::new()) };
}

struct FloorVisitor<'a>(&'a mut String);

impl Visit for FloorVisitor<'_> {
    fn record_u64(&mut self, f: &Field, v: u64) {
        let _ = write!(self.0, ",\"{}\":{}", f.name(), v);
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        let _ = write!(self.0, ",\"{}\":{}", f.name(), v);
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        let _ = write!(self.0, ",\"{}\":\"{}\"", f.name(), v);
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        let _ = write!(self.0, ",\"{}\":\"{:?}\"", f.name(), v);
    }
}

/// A span's fields as the floor writes them, made once when the span is.
struct FloorSpanFields(String);

impl<S> tracing_subscriber::Layer<S> for Floor
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.values().is_empty() {
            return;
        }
        let mut fields = String::new();
        attrs.record(&mut FloorVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(FloorSpanFields(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        FLOOR_BUF.with(|b| {
            let mut buf = b.borrow_mut();
            buf.clear();
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let _ = write!(
                buf,
                "{{\"timestamp\":{}.{:03},\"level\":\"{}\",\"logger\":\"{}\",\"request_id\":\"{}\"",
                now.as_secs(),
                now.subsec_millis(),
                event.metadata().level(),
                event.metadata().target(),
                FLOOR_ID
            );
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope {
                    if let Some(fields) = span.extensions().get::<FloorSpanFields>() {
                        buf.push_str(&fields.0);
                    }
                }
            }
            event.record(&mut FloorVisitor(&mut buf));
            buf.push_str("}\n");
            let _ = io::sink().write_all(buf.as_bytes());
        });
    }
}

struct Stack {
    name: &'static str,
    dispatch: Dispatch,
    /// Whether the id comes from a span rather than corrlog's context.
    span_id: bool,
    /// Whether the event is logged inside an entered span with fields, as
    /// in an `#[instrument]`ed function (inside the request context too).
    in_span: bool,
    samples: Vec<f64>,
}

/// `stack`, its events logged inside an entered span with fields.
fn in_span(name: &'static str, dispatch: Dispatch) -> Stack {
    Stack {
        name,
        dispatch,
        span_id: false,
        in_span: true,
        samples: vec![],
    }
}

fn run_round(stack: &mut Stack, ctx: &RequestContext) {
    tracing::dispatcher::with_default(&stack.dispatch, || {
        let body = || {
            let start = Instant::now();
            for i in 0..events_per_round() {
                event();
                black_box(i);
            }
            start.elapsed().as_nanos() as f64 / f64::from(events_per_round())
        };
        let ns = if stack.span_id {
            let span = tracing::info_span!(
                "request",
                request_id = %ctx.id(),
                tenant = "acme"
            );
            let _g = span.enter();
            body()
        } else if stack.in_span {
            ctx.clone().run(|| {
                let span = tracing::info_span!("checkout", cart = 3, region = "eu");
                let _g = span.enter();
                body()
            })
        } else {
            ctx.clone().run(body)
        };
        stack.samples.push(ns);
    });
}

/// The identity of a fleet's service, for the stacks that write one.
fn service() -> Service {
    Service::new("orders")
        .version("1.4.2")
        .instance_id("orders-7d9f-x2")
        .environment("production")
}

/// A `LogLayer` made by `make`, writing to `io::sink()` on the caller.
fn sync_stack(
    name: &'static str,
    make: fn(WriterSink<io::Sink>) -> LogLayer<WriterSink<io::Sink>>,
) -> Stack {
    Stack {
        name,
        dispatch: Dispatch::new(
            tracing_subscriber::registry().with(make(WriterSink::new(io::sink()))),
        ),
        span_id: false,
        in_span: false,
        samples: vec![],
    }
}

fn main() {
    if listing_only() {
        return;
    }
    let (pipeline, guard) = Pipeline::builder(io::sink()).start();
    // What the builder adds for OTLP export: a second JSON layer into a
    // pipeline of its own (its writer thread exports; the caller's share
    // does not depend on the output, so `io::sink()` here).
    let (otlp_pipeline, otlp_guard) = Pipeline::builder(io::sink()).start();
    let (non_blocking, nb_guard) = tracing_appender::non_blocking(io::sink());
    let fmt_json = |w| {
        Dispatch::new(
            tracing_subscriber::fmt()
                .json()
                .with_max_level(tracing::Level::INFO)
                .with_writer(w)
                .finish(),
        )
    };
    let mut stacks = vec![
        Stack {
            name: "floor",
            dispatch: Dispatch::new(tracing_subscriber::registry().with(Floor)),
            span_id: false,
            in_span: false,
            samples: vec![],
        },
        Stack {
            name: "corrlog (pipeline)",
            dispatch: Dispatch::new(
                tracing_subscriber::registry().with(LogLayer::new(pipeline.clone())),
            ),
            span_id: false,
            in_span: false,
            samples: vec![],
        },
        in_span(
            "floor, in a span with fields",
            Dispatch::new(tracing_subscriber::registry().with(Floor)),
        ),
        in_span(
            "corrlog (pipeline), in a span with fields",
            Dispatch::new(tracing_subscriber::registry().with(LogLayer::new(pipeline.clone()))),
        ),
        in_span(
            "corrlog sync, in a span with fields",
            Dispatch::new(
                tracing_subscriber::registry().with(LogLayer::new(WriterSink::new(io::sink()))),
            ),
        ),
        Stack {
            name: "corrlog (pipeline) + OTLP output's layer",
            dispatch: Dispatch::new(
                tracing_subscriber::registry()
                    .with(LogLayer::new(pipeline.clone()))
                    .with(LogLayer::new(otlp_pipeline)),
            ),
            span_id: false,
            in_span: false,
            samples: vec![],
        },
        Stack {
            name: "corrlog sync x2",
            dispatch: Dispatch::new(
                tracing_subscriber::registry()
                    .with(LogLayer::new(WriterSink::new(io::sink())))
                    .with(LogLayer::new(WriterSink::new(io::sink()))),
            ),
            span_id: false,
            in_span: false,
            samples: vec![],
        },
        Stack {
            name: "corrlog sync",
            dispatch: Dispatch::new(
                tracing_subscriber::registry().with(LogLayer::new(WriterSink::new(io::sink()))),
            ),
            span_id: false,
            in_span: false,
            samples: vec![],
        },
        sync_stack("corrlog sync + service", |w| {
            LogLayer::new(w).service(service())
        }),
        sync_stack("corrlog sync ecs + service", |w| {
            LogLayer::new(w)
                .format(corrlog::Format::Ecs)
                .service(service())
        }),
        sync_stack("corrlog sync gcp + service", |w| {
            LogLayer::new(w)
                .format(corrlog::Format::Gcp)
                .gcp_project("proj")
                .service(service())
        }),
        sync_stack("corrlog sync datadog + service", |w| {
            LogLayer::new(w)
                .format(corrlog::Format::Datadog)
                .service(service())
        }),
        Stack {
            name: "fmt().json()",
            dispatch: fmt_json(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
                io::sink,
            )),
            span_id: true,
            in_span: false,
            samples: vec![],
        },
        Stack {
            name: "fmt().json() + non_blocking",
            dispatch: fmt_json(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
                non_blocking,
            )),
            span_id: true,
            in_span: false,
            samples: vec![],
        },
    ];
    // ONLY=name,name keeps the stacks whose names contain one of them (the
    // floors are kept too); ONLY==name keeps exactly that one stack, e.g.
    // to count its instructions.
    if let Ok(only) = std::env::var("ONLY") {
        match only.strip_prefix('=') {
            Some(exact) => stacks.retain(|s| s.name == exact),
            None => {
                let keep: Vec<&str> = only.split(',').collect();
                stacks.retain(|s| {
                    s.name.starts_with("floor") || keep.iter().any(|k| s.name.contains(k))
                });
            }
        }
    }
    let ctx = RequestContext::new(RequestId::generate());
    ctx.clone().run(|| corrlog::bind("tenant", "acme"));
    // Warm-up round, discarded.
    for s in &mut stacks {
        run_round(s, &ctx);
        s.samples.clear();
    }
    for _ in 0..rounds() {
        for s in &mut stacks {
            run_round(s, &ctx);
        }
    }
    let medians: Vec<(&str, f64)> = stacks
        .iter_mut()
        .map(|s| (s.name, median(&mut s.samples)))
        .collect();
    let floor = medians[0].1;
    let corrlog = medians
        .iter()
        .find(|(name, _)| name.starts_with("corrlog (pipeline)"))
        .map_or(floor, |m| m.1);
    println!(
        "caller-side ns/event, median of {} alternating rounds of {} events",
        rounds(),
        events_per_round()
    );
    println!(
        "{:<42} {:>10} {:>10} {:>12}",
        "stack", "ns/event", "x floor", "x corrlog"
    );
    // Rows in a span with fields compare with the floor in the same span.
    let span_floor = medians
        .iter()
        .find(|(name, _)| *name == "floor, in a span with fields")
        .map_or(floor, |m| m.1);
    for (name, ns) in &medians {
        let floor = if name.contains("in a span") {
            span_floor
        } else {
            floor
        };
        println!(
            "{name:<42} {ns:>10.1} {:>10.2} {:>12.2}",
            ns / floor,
            ns / corrlog
        );
    }
    let report = guard.shutdown(std::time::Duration::from_secs(10));
    println!(
        "corrlog pipeline: {} written, {} dropped",
        report.stats.written, report.stats.dropped
    );
    drop(otlp_guard);
    drop(nb_guard);
}
