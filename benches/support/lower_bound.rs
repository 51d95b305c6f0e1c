//! The hand-written lower bound for a request-correlation stack: what the
//! least a correct implementation does per request, with nothing general.
//!
//! - a fast id (128 random bits from a thread-local generator, written as a
//!   UUID), or the caller's `x-request-id` when it is short and plain;
//! - the id in a tokio task-local for the request's future;
//! - the id echoed on the response;
//! - the handler's lines (through `tracing`, by a layer that reads the
//!   task-local) and one access line per request (method, path, status,
//!   latency), each one JSON object with an RFC 3339 timestamp, appended to
//!   a shared buffer that a writer thread drains to a file every
//!   millisecond.
//!
//! It escapes nothing, redacts nothing, keeps no trace context and no
//! per-request span, and writes its access line when the response head is
//! ready: a floor to measure a real stack against, not one to ship.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, Request, Response};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};

tokio::task_local! {
    static ID: [u8; 36];
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The lines waiting for the writer thread.
pub(crate) struct Out {
    pending: Mutex<Vec<u8>>,
}

impl Out {
    /// Starts the writer thread, which appends to `file`.
    pub(crate) fn start(mut file: std::fs::File) -> Arc<Out> {
        let out = Arc::new(Out {
            pending: Mutex::new(Vec::with_capacity(1 << 20)),
        });
        let shared = Arc::clone(&out);
        std::thread::spawn(move || {
            let mut batch = Vec::with_capacity(1 << 20);
            loop {
                std::thread::sleep(Duration::from_millis(1));
                std::mem::swap(&mut batch, &mut *shared.pending.lock().unwrap());
                if !batch.is_empty() {
                    let _ = file.write_all(&batch);
                    batch.clear();
                }
            }
        });
        out
    }

    fn push(&self, line: &[u8]) {
        self.pending.lock().unwrap().extend_from_slice(line);
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1,
    );
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// splitmix64 over a thread-local state.
fn next_u64() -> u64 {
    RNG.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

fn fresh_id() -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = (u128::from(next_u64()) << 64 | u128::from(next_u64())) & !(0xf << 76) | (0x4 << 76);
    let mut out = [b'-'; 36];
    let mut nibble = 0;
    for (i, slot) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        *slot = HEX[((bits >> (124 - 4 * nibble)) & 0xf) as usize];
        nibble += 1;
    }
    out
}

/// The caller's id when it is exactly 36 plain bytes, else a fresh one.
fn request_id<B>(req: &Request<B>) -> [u8; 36] {
    let mut headers = req.headers().get_all(X_REQUEST_ID).iter();
    if let (Some(value), None) = (headers.next(), headers.next()) {
        let bytes = value.as_bytes();
        if bytes.len() == 36
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        {
            let mut id = [0; 36];
            id.copy_from_slice(bytes);
            return id;
        }
    }
    fresh_id()
}

/// Appends `n` as `width` decimal digits.
fn digits(buf: &mut String, n: u64, width: u32) {
    for i in (0..width).rev() {
        buf.push(char::from(b'0' + (n / 10u64.pow(i) % 10) as u8));
    }
}

/// `2026-01-21T10:30:00.123Z`.
fn timestamp(buf: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    digits(buf, year as u64, 4);
    buf.push('-');
    digits(buf, month as u64, 2);
    buf.push('-');
    digits(buf, day as u64, 2);
    buf.push('T');
    digits(buf, rem / 3600, 2);
    buf.push(':');
    digits(buf, rem / 60 % 60, 2);
    buf.push(':');
    digits(buf, rem % 60, 2);
    buf.push('.');
    digits(buf, u64::from(since.subsec_millis()), 3);
    buf.push('Z');
}

fn line(out: &Out, fill: impl FnOnce(&mut String)) {
    LINE.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.clear();
        buf.push_str("{\"timestamp\":\"");
        timestamp(&mut buf, SystemTime::now());
        fill(&mut buf);
        buf.push_str("}\n");
        out.push(buf.as_bytes());
    });
}

/// The handler's lines: level, target, message and fields, and the
/// request id from the task-local.
pub(crate) struct Lines(pub(crate) Arc<Out>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, f: &Field, v: &str) {
        let _ = write!(self.0, ",\"{}\":\"{v}\"", f.name());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        let _ = write!(self.0, ",\"{}\":\"{v:?}\"", f.name());
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        line(&self.0, |buf| {
            buf.push_str("\",\"level\":\"");
            buf.push_str(meta.level().as_str());
            buf.push_str("\",\"logger\":\"");
            buf.push_str(meta.target());
            buf.push('"');
            event.record(&mut Fields(buf));
            let _ = ID.try_with(|id| {
                buf.push_str(",\"request_id\":\"");
                buf.push_str(std::str::from_utf8(id).unwrap_or_default());
                buf.push('"');
            });
        });
    }
}

/// The layer: id, task-local, echo, access line.
#[derive(Clone)]
pub(crate) struct Layer(pub(crate) Arc<Out>);

impl<S> tower::Layer<S> for Layer {
    type Service = Service<S>;
    fn layer(&self, inner: S) -> Service<S> {
        Service {
            inner,
            out: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Service<S> {
    inner: S,
    out: Arc<Out>,
}

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, R> tower::Service<Request<B>> for Service<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Boxed<Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let id = request_id(&req);
        let method = req.method().clone();
        let uri = req.uri().clone();
        let out = Arc::clone(&self.out);
        let response = ID.scope(id, self.inner.call(req));
        Box::pin(async move {
            let mut res = response.await?;
            if let Ok(value) = HeaderValue::from_bytes(&id) {
                res.headers_mut().insert(X_REQUEST_ID, value);
            }
            let status = res.status();
            let micros = start.elapsed().as_micros() as u64;
            line(&out, |buf| {
                buf.push_str(
                    "\",\"level\":\"INFO\",\"logger\":\"access\",\
                     \"message\":\"request completed\",\"request_id\":\"",
                );
                buf.push_str(std::str::from_utf8(&id).unwrap_or_default());
                buf.push_str("\",\"method\":\"");
                buf.push_str(method.as_str());
                buf.push_str("\",\"path\":\"");
                buf.push_str(uri.path());
                buf.push_str("\",\"status\":");
                buf.push_str(status.as_str());
                buf.push_str(",\"latency_ms\":");
                buf.push_str(itoa::Buffer::new().format(micros / 1000));
                buf.push('.');
                digits(buf, micros % 1000, 3);
            });
            Ok(res)
        })
    }
}
