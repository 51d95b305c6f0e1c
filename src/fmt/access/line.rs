//! The access line's values ([`AccessLine`]), its event ([`emit`]), and
//! the hand-off slot that holds the values while the event is dispatched
//! ([`dispatch`], [`with_pending`]).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::net::IpAddr;

use http::{HeaderValue, Method, Uri};
use tracing::Level;

use crate::context::ACCESS_TARGET;

/// The route the access line names: axum's matched path, or a pattern
/// another framework's integration hands over.
#[derive(Clone)]
pub(crate) enum Route {
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
    Text(Box<str>),
}

impl Route {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            #[cfg(feature = "axum")]
            Route::Matched(route) => route.as_str(),
            Route::Text(route) => route,
        }
    }
}

/// The names of the access event's fields, in the order it records them
/// (the message comes last).
pub(crate) const FIELDS: [&str; 15] = [
    "method",
    "path",
    "route",
    "status",
    "latency_ms",
    "bytes_out",
    "client_ip",
    "user_agent",
    "parent_span_id",
    "grpc_status",
    "grpc_status_name",
    "messages_out",
    "reason",
    "buffer_discarded",
    "buffer_evicted",
];

/// The access event's message.
pub(crate) const MESSAGE: &str = "request finished";

/// One access line's values: what the access event records, field for
/// field.
#[derive(Clone)]
pub(crate) struct AccessLine {
    pub(crate) level: Level,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    /// Whether `path` shows the query.
    pub(crate) with_query: bool,
    pub(crate) route: Option<Route>,
    /// A gRPC call: its route is the RPC's path when no route is known.
    pub(crate) is_grpc: bool,
    pub(crate) status: Option<u16>,
    pub(crate) latency_ms: f64,
    pub(crate) bytes_out: u64,
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) parent_span_id: Option<[u8; 16]>,
    pub(crate) grpc_status: Option<u16>,
    pub(crate) grpc_status_name: Option<&'static str>,
    pub(crate) messages_out: Option<u64>,
    pub(crate) reason: Option<&'static str>,
    pub(crate) buffer_discarded: Option<u64>,
    pub(crate) buffer_evicted: Option<u64>,
}

impl AccessLine {
    /// The `path` field: the path, with `?query` when the access log shows
    /// queries.
    pub(crate) fn path(&self) -> Cow<'_, str> {
        let path = self.uri.path();
        match (self.with_query, self.uri.path_and_query()) {
            (true, Some(pq)) => match pq.query() {
                // Already laid out as `path?query`.
                Some(_) if pq.as_str().starts_with('/') => Cow::Borrowed(pq.as_str()),
                Some(query) => Cow::Owned(format!("{path}?{query}")),
                None => Cow::Borrowed(path),
            },
            _ => Cow::Borrowed(path),
        }
    }

    /// The `route` field: the matched route, or a gRPC call's method path.
    pub(crate) fn route(&self) -> Option<&str> {
        match &self.route {
            Some(route) => Some(route.as_str()),
            None if self.is_grpc => Some(self.uri.path()),
            None => None,
        }
    }

    /// The `user_agent` field, its invalid UTF-8 replaced.
    pub(crate) fn user_agent(&self) -> Option<Cow<'_, str>> {
        self.user_agent
            .as_ref()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
    }

    /// The `parent_span_id` field.
    pub(crate) fn parent_span_id(&self) -> Option<&str> {
        self.parent_span_id
            .as_ref()
            .and_then(|hex| std::str::from_utf8(hex).ok())
    }
}

#[cfg(test)]
impl AccessLine {
    /// A GET of `path` that ended 200, for tests.
    pub(crate) fn sample(path: &str) -> AccessLine {
        AccessLine {
            level: Level::INFO,
            method: Method::GET,
            uri: path.parse().unwrap(),
            with_query: false,
            route: None,
            is_grpc: false,
            status: Some(200),
            latency_ms: 1.0,
            bytes_out: 0,
            client_ip: None,
            user_agent: None,
            parent_span_id: None,
            grpc_status: None,
            grpc_status_name: None,
            messages_out: None,
            reason: None,
            buffer_discarded: None,
            buffer_evicted: None,
        }
    }
}

thread_local! {
    static PENDING: RefCell<Option<AccessLine>> = const { RefCell::new(None) };
    /// Set while an access event goes out through the general path (it is
    /// dispatched while another one is): the pending line, if any, is not
    /// that event's.
    static SHADOWED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `emit`, which dispatches the access event of the line `build`
/// makes, with that line pending for the line layers to read. The line is
/// made in place, in the thread's slot: it is a few hundred bytes, and is
/// not moved.
pub(crate) fn dispatch(build: impl FnOnce() -> AccessLine, emit: impl FnOnce(&AccessLine)) {
    let mut build = Some(build);
    let mut emit = Some(emit);
    let _ = PENDING.try_with(|slot| {
        // Another access line is being dispatched (a layer logged one while
        // handling it): this one goes through the general path, below.
        let Ok(mut pending) = slot.try_borrow_mut() else {
            return;
        };
        if let Some(build) = build.take() {
            *pending = Some(build());
        }
        drop(pending);
        // Emptied however `emit` ends, a panic in some layer included.
        let _clear = ClearOnDrop(slot);
        if let Ok(pending) = slot.try_borrow() {
            if let (Some(line), Some(emit)) = (pending.as_ref(), emit.take()) {
                emit(line);
            }
        }
    });
    // No hand-off (nested, or the thread is shutting down): the event
    // still goes out, through the general path.
    if let (Some(build), Some(emit)) = (build, emit) {
        let line = build();
        let was = SHADOWED.try_with(|s| s.replace(true)).unwrap_or(true);
        emit(&line);
        let _ = SHADOWED.try_with(|s| s.set(was));
    }
}

/// Empties the hand-off slot when dropped.
struct ClearOnDrop<'a>(&'a RefCell<Option<AccessLine>>);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.0.try_borrow_mut() {
            *pending = None;
        }
    }
}

/// Calls `f` with the access line whose event is being dispatched; `None`
/// (and `f` not called) when there is none.
pub(crate) fn with_pending<R>(f: impl FnOnce(&AccessLine) -> R) -> Option<R> {
    if SHADOWED.try_with(Cell::get).unwrap_or(true) {
        return None;
    }
    PENDING
        .try_with(|slot| {
            let pending = slot.try_borrow().ok()?;
            pending.as_ref().map(f)
        })
        .ok()
        .flatten()
}

/// A `tracing` event on the access target at a level chosen at run time.
macro_rules! at_level {
    ($level:expr, $($args:tt)*) => {
        match $level {
            Level::ERROR => tracing::error!(target: ACCESS_TARGET, $($args)*),
            Level::WARN => tracing::warn!(target: ACCESS_TARGET, $($args)*),
            Level::INFO => tracing::info!(target: ACCESS_TARGET, $($args)*),
            Level::DEBUG => tracing::debug!(target: ACCESS_TARGET, $($args)*),
            Level::TRACE => tracing::trace!(target: ACCESS_TARGET, $($args)*),
        }
    };
}

/// Dispatches the access event for `line`.
pub(crate) fn emit(line: &AccessLine) {
    at_level!(
        line.level,
        method = line.method.as_str(),
        path = &*line.path(),
        route = line.route(),
        status = line.status,
        latency_ms = line.latency_ms,
        bytes_out = line.bytes_out,
        client_ip = line.client_ip.map(tracing::field::display),
        user_agent = line.user_agent().as_deref(),
        parent_span_id = line.parent_span_id(),
        grpc_status = line.grpc_status,
        grpc_status_name = line.grpc_status_name,
        messages_out = line.messages_out,
        reason = line.reason,
        buffer_discarded = line.buffer_discarded,
        buffer_evicted = line.buffer_evicted,
        "request finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(path: &str) -> AccessLine {
        AccessLine::sample(path)
    }

    fn pending_path() -> Option<String> {
        with_pending(|line| line.path().into_owned())
    }

    #[test]
    fn the_pending_line_is_the_one_being_dispatched_and_only_then() {
        assert_eq!(pending_path(), None);
        let mut ran = 0;
        dispatch(
            || line("/outer"),
            |l| {
                ran += 1;
                assert_eq!(l.path(), "/outer");
                assert_eq!(pending_path().as_deref(), Some("/outer"));
                // Dispatched while another is being dispatched (a layer logs an
                // access line): the inner one takes the general path, and no
                // layer takes the outer line for it.
                dispatch(
                    || line("/inner"),
                    |l| {
                        ran += 1;
                        assert_eq!(l.path(), "/inner");
                        assert_eq!(pending_path(), None);
                    },
                );
                assert_eq!(pending_path().as_deref(), Some("/outer"));
                with_pending(|_| {
                    dispatch(
                        || line("/nested"),
                        |l| {
                            ran += 1;
                            assert_eq!(l.path(), "/nested");
                            assert_eq!(pending_path(), None);
                        },
                    );
                });
                assert_eq!(pending_path().as_deref(), Some("/outer"));
            },
        );
        assert_eq!(ran, 3);
        assert_eq!(pending_path(), None);
    }

    #[test]
    fn a_panic_while_dispatching_leaves_nothing_pending() {
        let caught = std::panic::catch_unwind(|| {
            dispatch(|| line("/panics"), |_| panic!("a layer panicked"));
        });
        assert!(caught.is_err());
        assert_eq!(pending_path(), None);
        // The next line is handed off as usual.
        dispatch(
            || line("/next"),
            |_| {
                assert_eq!(pending_path().as_deref(), Some("/next"));
            },
        );
    }

    #[test]
    fn path_shows_the_query_only_when_asked() {
        let mut l = line("/a/b?x=1");
        assert_eq!(l.path(), "/a/b");
        l.with_query = true;
        assert!(matches!(l.path(), Cow::Borrowed("/a/b?x=1")));
        l.uri = "http://h.example?x=1".parse().unwrap();
        assert_eq!(l.path(), "/?x=1");
        l.uri = "/plain".parse().unwrap();
        assert_eq!(l.path(), "/plain");
    }

    #[test]
    fn user_agent_and_parent_span_read_as_the_event_records_them() {
        let mut l = line("/");
        assert_eq!(l.user_agent(), None);
        assert_eq!(l.parent_span_id(), None);
        l.user_agent = Some(HeaderValue::from_bytes(b"curl/8 \xff").unwrap());
        l.parent_span_id = Some(*b"00f067aa0ba902b7");
        assert_eq!(l.user_agent().as_deref(), Some("curl/8 \u{fffd}"));
        assert_eq!(l.parent_span_id(), Some("00f067aa0ba902b7"));
    }

    #[test]
    fn route_falls_back_to_the_rpc_path_for_grpc() {
        let mut l = line("/pkg.Svc/Get");
        assert_eq!(l.route(), None);
        l.is_grpc = true;
        assert_eq!(l.route(), Some("/pkg.Svc/Get"));
        l.route = Some(Route::Text("/r".into()));
        assert_eq!(l.route(), Some("/r"));
    }
}
