//! The buffering caps bound what is allocated, read from the process's
//! allocator, not from corrlog's own counter: many requests in flight,
//! each buffering far more DEBUG lines than its cap holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A global allocator is unsafe to implement; the library itself forbids unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use corrlog::fmt::{Buffering, BufferingFilter};
use corrlog::{LogLayer, RequestContext, RequestId};
use tracing_subscriber::layer::SubscriberExt;

/// Tracks the bytes the process has allocated and not freed.
struct Live;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only adds up sizes.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

const REQUEST_CAP: usize = 16 * 1024;
const TOTAL_CAP: usize = 4 * 1024 * 1024;

/// The bytes `requests` contexts hold once each has buffered `lines`
/// DEBUG lines of about 800 bytes, all of them still in flight.
fn held(requests: usize, lines: usize) -> isize {
    let buffering = Buffering::up_to(tracing::Level::DEBUG)
        .request_bytes(REQUEST_CAP)
        .total_bytes(TOTAL_CAP);
    let subscriber = tracing_subscriber::registry()
        .with(BufferingFilter::new(
            tracing_subscriber::filter::LevelFilter::INFO,
            &buffering,
        ))
        .with(
            LogLayer::new(std::sync::Arc::new(corrlog::output::WriterSink::new(
                std::io::sink(),
            )))
            .buffering(buffering),
        );
    let note = "x".repeat(700);
    tracing::subscriber::with_default(subscriber, || {
        // Warm up: the thread's caches, the callsite, the pool.
        for _ in 0..4 {
            let ctx = RequestContext::new(RequestId::generate());
            ctx.run(|| tracing::debug!(note = note.as_str(), "warm"));
        }
        let before = LIVE.load(Ordering::Relaxed);
        let mut contexts = Vec::with_capacity(requests);
        for _ in 0..requests {
            let ctx = RequestContext::new(RequestId::generate());
            ctx.clone().run(|| {
                for n in 0..lines {
                    tracing::debug!(n, note = note.as_str(), "buffered");
                }
            });
            contexts.push(ctx);
        }
        let grown = LIVE.load(Ordering::Relaxed) - before;
        drop(contexts);
        grown
    })
}

#[test]
fn buffered_lines_allocate_within_the_caps() {
    // What a request in flight costs without buffered lines beyond one:
    // its context, its first ring, its bookkeeping.
    let base = held(200, 1) / 200;
    eprintln!("per request, one line: {base} bytes");

    // 200 requests, each offered 100 lines (about 80 KB) against a 16 KiB
    // cap: each holds at most its cap beyond the base.
    let per_request = held(200, 100) / 200;
    eprintln!("per request, 100 lines: {per_request} bytes (cap {REQUEST_CAP})");
    assert!(
        per_request <= base + REQUEST_CAP as isize + 1024,
        "{per_request} bytes a request, base {base}"
    );

    // 1,000 such requests would hold 16 MB under their own caps: the
    // process-wide cap of 4 MiB bounds them all.
    let all = held(1_000, 100);
    eprintln!("1,000 requests, 100 lines each: {all} bytes (cap {TOTAL_CAP})");
    assert!(
        all <= TOTAL_CAP as isize + 1_000 * (base + 1024),
        "{all} bytes in all, base {base} a request"
    );
}
