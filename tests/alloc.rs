//! No heap allocation per log event in steady state: an event inside a
//! request context, with a bound field and an entered span, formatted and
//! queued on the pipeline, allocates nothing on the logging thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A global allocator is unsafe to implement; the library itself forbids unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use corrlog::context::TraceContext;
use corrlog::fmt::{Buffering, BufferingFilter, Service};
use corrlog::http::X_REQUEST_ID;
use corrlog::output::Pipeline;
use corrlog::{LogLayer, RequestContext, RequestId};
use tracing_subscriber::layer::SubscriberExt;

/// Counts allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn service() -> Service {
    Service::new("orders").version("1.4.2").environment("prod")
}

type MakeLayer = fn(Pipeline) -> LogLayer<Pipeline>;

/// Every format, with and without a service.
fn layers() -> [(&'static str, MakeLayer); 5] {
    [
        ("json", LogLayer::new),
        ("json with a service", |p| {
            LogLayer::new(p).service(service())
        }),
        ("ecs", |p| {
            LogLayer::new(p)
                .format(corrlog::Format::Ecs)
                .service(service())
        }),
        ("gcp", |p| {
            LogLayer::new(p)
                .format(corrlog::Format::Gcp)
                .gcp_project("proj")
                .service(service())
        }),
        ("datadog", |p| {
            LogLayer::new(p)
                .format(corrlog::Format::Datadog)
                .service(service())
        }),
    ]
}

#[test]
fn an_event_in_steady_state_allocates_nothing() {
    for (name, make) in layers() {
        let (pipeline, guard) = Pipeline::builder(std::io::sink()).start();
        let subscriber = tracing_subscriber::registry().with(make(pipeline));
        tracing::subscriber::with_default(subscriber, || {
            let ctx = RequestContext::with_trace(
                RequestId::generate(),
                Some(TraceContext::new_root()),
                X_REQUEST_ID,
            );
            ctx.run(|| {
                corrlog::bind("user_id", "u-123");
                let span = tracing::info_span!("handler", route = "/orders/{id}");
                let _entered = span.enter();
                let event = || {
                    tracing::info!(order_id = 42, user = "alice", "processing order");
                    // An access line: renamed, converted and (Cloud
                    // Logging) nested fields.
                    tracing::info!(
                        target: "corrlog::access",
                        method = "GET",
                        path = "/orders/42",
                        status = 200_u64,
                        latency_ms = 12.345,
                        bytes_out = 512_u64,
                        "request finished"
                    );
                };
                // Warm up: per-thread buffers and the timestamp cache.
                for _ in 0..500 {
                    event();
                }
                let before = allocations();
                for _ in 0..5_000 {
                    event();
                }
                let counted = allocations() - before;
                // Printing allocates (the test harness captures output): count first.
                eprintln!("{name}: allocations in 10,000 events: {counted}");
                assert_eq!(counted, 0, "{name}");
            });
        });
        let report = guard.shutdown(Duration::from_secs(5));
        assert_eq!(report.stats.written, 11_000, "{name}");
    }
}

#[test]
fn a_buffered_line_in_steady_state_allocates_nothing() {
    let (pipeline, guard) = Pipeline::builder(std::io::sink()).start();
    let buffering = Buffering::up_to(tracing::Level::DEBUG);
    let subscriber = tracing_subscriber::registry()
        .with(BufferingFilter::new(
            tracing_subscriber::filter::LevelFilter::INFO,
            &buffering,
        ))
        .with(LogLayer::new(pipeline).buffering(buffering));
    tracing::subscriber::with_default(subscriber, || {
        let ctx = RequestContext::new(RequestId::generate());
        ctx.clone().run(|| {
            corrlog::bind("user_id", "u-123");
            let event = || tracing::debug!(order_id = 42, user = "alice", "cache lookup");
            // Warm up: the buffer reaches its cap and evicts from then on.
            for _ in 0..2_000 {
                event();
            }
            let before = allocations();
            for _ in 0..10_000 {
                event();
            }
            let counted = allocations() - before;
            eprintln!("allocations in 10,000 buffered lines: {counted}");
            assert_eq!(counted, 0);
        });
        // The newest lines are still buffered, written on a flush.
        assert!(ctx.run(corrlog::flush_buffer));
    });
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(report.stats.written > 0);
}

/// Allocations of `requests` requests, each logging `lines` DEBUG lines in
/// its own context and ending well, after a warm-up.
fn allocations_per_request(subscriber: impl tracing::Subscriber + Send + Sync, lines: u32) -> u64 {
    const REQUESTS: u64 = 1_000;
    tracing::subscriber::with_default(subscriber, || {
        let request = || {
            let ctx = RequestContext::new(RequestId::new("r-1").unwrap());
            ctx.clone().run(|| {
                for i in 0..lines {
                    tracing::debug!(i, pad = "0123456789abcdef0123456789abcdef", "step");
                }
            });
            // Dropped unflushed, as a request that ended well.
        };
        for _ in 0..100 {
            request();
        }
        let before = allocations();
        for _ in 0..REQUESTS {
            request();
        }
        (allocations() - before) / REQUESTS
    })
}

#[test]
fn buffering_adds_no_allocation_per_request_in_steady_state() {
    let (pipeline, guard) = Pipeline::builder(std::io::sink()).start();
    let buffering = Buffering::up_to(tracing::Level::DEBUG);
    let filter = || tracing_subscriber::filter::LevelFilter::INFO;
    let bare = allocations_per_request(
        tracing_subscriber::registry()
            .with(filter())
            .with(LogLayer::new(pipeline.clone())),
        20,
    );
    let buffered = allocations_per_request(
        tracing_subscriber::registry()
            .with(BufferingFilter::new(filter(), &buffering))
            .with(LogLayer::new(pipeline).buffering(buffering)),
        20,
    );
    eprintln!("allocations per request: {bare} without buffering, {buffered} buffering 20 lines");
    // The request's buffers come from the thread's pool and go back to it.
    assert_eq!(buffered, bare);
    guard.shutdown(Duration::from_secs(5));
}

const LAYERED_REQUESTS: u64 = 1_000;

/// Allocations of [`LAYERED_REQUESTS`] requests through `layer` around a
/// trivial service, on one thread, after a warm-up: the requests, their
/// responses and bodies, and everything the layer does, access line
/// included.
fn allocations_of_layered_requests(layer: corrlog::RequestLayer) -> u64 {
    use http_body_util::BodyExt;
    use tower::{Layer, Service, ServiceExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut svc = layer.layer(tower::service_fn(|_req: http::Request<String>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
        }));
        let mut one = async || {
            // Static parts, as hyper's are slices of its read buffer: the
            // record's clones of them are reference counts, not copies.
            let req = http::Request::builder()
                .uri(http::Uri::from_static("/orders/42?page=2"))
                .header(
                    http::header::USER_AGENT,
                    http::HeaderValue::from_static("curl/8.5.0"),
                )
                .body(String::new())
                .unwrap();
            let res = svc.ready().await.unwrap().call(req).await.unwrap();
            res.into_body().collect().await.unwrap();
        };
        for _ in 0..200 {
            one().await;
        }
        let before = allocations();
        for _ in 0..LAYERED_REQUESTS {
            one().await;
        }
        allocations() - before
    })
}

#[test]
fn the_access_line_allocates_nothing() {
    use corrlog::http::AccessLog;
    use corrlog::RequestLayer;

    // Once any filter buffers (another test here makes one), a request gets
    // its record even with the access log off, to end its buffering: make
    // one now, so both runs below have the record and differ by the line.
    let _buffering = BufferingFilter::new(
        tracing_subscriber::filter::LevelFilter::INFO,
        &Buffering::up_to(tracing::Level::DEBUG),
    );
    for (name, make) in layers() {
        let (pipeline, guard) = Pipeline::builder(std::io::sink()).start();
        let subscriber = tracing_subscriber::registry().with(make(pipeline));
        let (without, with) = tracing::subscriber::with_default(subscriber, || {
            let without = allocations_of_layered_requests(
                RequestLayer::new().access_log(AccessLog::default().enabled(false)),
            );
            let with = allocations_of_layered_requests(
                RequestLayer::new().access_log(AccessLog::default().include_query(true)),
            );
            (without, with)
        });
        eprintln!(
            "{name}: allocations in {LAYERED_REQUESTS} requests: {without} without the access line, {with} with it"
        );
        assert_eq!(with, without, "{name}");
        let report = guard.shutdown(Duration::from_secs(5));
        assert_eq!(report.stats.written, 1_200, "{name}");
    }
}

/// Writing the id and trace into a `HeaderMap` allocates only the values
/// (the three header values and the `traceparent` text): corrlog's own
/// header names are constants, never parsed into new names per call.
#[test]
fn injecting_into_a_header_map_allocates_only_the_values() {
    let ctx = corrlog::propagate::extract(&vec![
        (
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        ),
        ("tracestate".to_owned(), "congo=t61".to_owned()),
    ]);
    let mut headers = http::HeaderMap::with_capacity(8);
    corrlog::propagate::inject_from(&ctx, &mut headers);
    let before = allocations();
    for _ in 0..100 {
        corrlog::propagate::inject_from(&ctx, &mut headers);
    }
    let per_call = (allocations() - before) / 100;
    eprintln!("allocations per inject into a HeaderMap: {per_call}");
    assert_eq!(headers.len(), 3);
    assert!(per_call <= 4, "{per_call} allocations a call");
}
