//! One request's access line, from arrival to the end of its body.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderName, HeaderValue, Method, Request, Uri};
use tracing::Span;

use super::client_ip::{client_ip, peer_addr};
use crate::context::{RequestContext, TraceContext, ACCESS_TARGET};
use crate::fmt::access::{self, AccessLine, Route};
use crate::http::grpc::{self, Messages};
use crate::http::Config;

#[cfg(feature = "axum")]
fn matched_path<B>(req: &Request<B>) -> Option<Route> {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned()
        .map(Route::Matched)
}

#[cfg(not(feature = "axum"))]
fn matched_path<B>(_req: &Request<B>) -> Option<Route> {
    None
}

/// One request's access line in the making.
pub(crate) struct Record {
    start: Instant,
    method: Method,
    uri: Uri,
    route: Option<Route>,
    user_agent: Option<HeaderValue>,
    client_ip: Option<IpAddr>,
    /// The request headers the line shows, raw: handed to the request
    /// context when the line is written, for each line layer to mask with
    /// its own redaction policy.
    headers: Option<Box<[(HeaderName, HeaderValue)]>>,
    pub(crate) status: Option<u16>,
    pub(crate) bytes_out: u64,
    /// The body's exact length, when it said so up front.
    pub(crate) expected_bytes: Option<u64>,
    skipped: bool,
    config: Arc<Config>,
    done: bool,
    /// Why the request ended abnormally, when known before the body ends.
    reason: Option<&'static str>,
    /// For a gRPC call: its status, once the response headers or trailers
    /// carried one, and the messages its response body held.
    pub(crate) grpc: Option<Rpc>,
}

/// What the access line of a gRPC call adds.
#[derive(Debug, Default)]
pub(crate) struct Rpc {
    pub(crate) status: Option<u16>,
    pub(crate) messages: Messages,
}

impl Record {
    /// What the access line needs from the request, taken when it arrives.
    /// Cheap: reference-counted clones of the method, URI, matched route,
    /// user agent and logged headers; text is only made when the line is
    /// written.
    pub(crate) fn start<B>(
        config: &Arc<Config>,
        req: &Request<B>,
        is_grpc: bool,
    ) -> Option<Box<Record>> {
        let access = &config.access;
        // With the access log off, a record still ends the request's
        // buffering, when a line layer buffers.
        if !access.enabled && !crate::context::buffer::in_use() {
            return None;
        }
        let uri = req.uri().clone();
        let skipped = access.skipped(uri.path());
        let headers = req.headers();
        let shown = (!access.headers.is_empty()).then(|| {
            access
                .headers
                .iter()
                .flat_map(|name| {
                    headers
                        .get_all(name)
                        .iter()
                        .map(|v| (name.clone(), v.clone()))
                })
                .collect()
        });
        let record = Record {
            start: Instant::now(),
            method: req.method().clone(),
            uri,
            route: matched_path(req),
            user_agent: headers.get(http::header::USER_AGENT).cloned(),
            client_ip: peer_addr(req).map(|peer| {
                client_ip(
                    peer,
                    headers,
                    &access.trusted_proxies,
                    access.client_ip_header,
                )
            }),
            headers: shown,
            status: None,
            bytes_out: 0,
            expected_bytes: None,
            skipped,
            config: config.clone(),
            done: false,
            reason: None,
            grpc: is_grpc.then(Rpc::default),
        };
        if access.enabled && access.log_start {
            tracing::info!(
                target: ACCESS_TARGET,
                method = record.method.as_str(),
                path = record.uri.path(),
                "request started"
            );
        }
        Some(Box::new(record))
    }

    /// Whether a response body dropped before its end had still been sent
    /// in full, so the drop is no disconnect: HTTP sends no body for HEAD,
    /// 204 and 304 (the server drops it unread), and a server stops
    /// polling once the declared `content-length` has gone out.
    pub(crate) fn complete_when_dropped(&self) -> bool {
        self.method == Method::HEAD
            || matches!(self.status, Some(100..=199 | 204 | 304))
            || self.expected_bytes.is_some_and(|n| self.bytes_out >= n)
    }

    /// [`Record::finish`] inside the request's context and span, for code
    /// that runs outside them (drops, the body's constructor).
    pub(crate) fn finish_in(
        &mut self,
        ctx: &RequestContext,
        span: &Span,
        reason: Option<&'static str>,
    ) {
        ctx.clone().run(|| span.in_scope(|| self.finish(reason)));
    }

    /// The route, when the framework knows it only once routing is done.
    pub(crate) fn set_route(&mut self, route: &str) {
        self.route = Some(Route::Text(route.into()));
    }

    /// Whether the response has begun (a status is known).
    pub(crate) fn responded(&self) -> bool {
        self.status.is_some()
    }

    /// Records why the request ended abnormally (e.g. a caught panic whose
    /// 500 is still to be sent).
    pub(crate) fn set_reason(&mut self, reason: &'static str) {
        self.reason = Some(reason);
    }

    /// Writes the access line, once. `reason` is `None` for a normal end.
    /// Must run inside the request context so the line carries the id.
    pub(crate) fn finish(&mut self, reason: Option<&'static str>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let reason = self.reason.or(reason);
        // A gRPC answer (HTTP 200) that ended normally without a status is
        // an error to its client, which reads it as UNKNOWN.
        let grpc_status = self.grpc.as_ref().and_then(|rpc| {
            rpc.status
                .or((reason.is_none() && self.status == Some(200)).then_some(grpc::UNKNOWN))
        });
        // A gRPC call answers 200 whatever happened: its status decides, as
        // the HTTP status it corresponds to.
        let status = grpc_status.map(grpc::http_equivalent).or(self.status);
        // Buffered lines: written for a server-side failure (a 5xx, no
        // response, or a body that ended abnormally), dropped otherwise;
        // either way the request's buffering ends here. No line layer
        // buffers until one is made with buffering.
        let buffer = crate::context::buffer::in_use()
            .then(|| {
                RequestContext::with_current(|ctx| {
                    ctx.map(|ctx| {
                        if reason.is_some() || status.is_none_or(|s| s >= 500) {
                            ctx.flush_buffer();
                        }
                        ctx.buffer().end()
                    })
                })
            })
            .flatten();
        let buffer_discarded = buffer.map(|b| b.lines).filter(|&n| n > 0);
        let buffer_evicted = buffer.map(|b| b.evicted).filter(|&n| n > 0);
        if !self.config.access.enabled {
            return;
        }
        let failed = reason.is_some() || status.is_none_or(|s| s >= 400);
        if !failed {
            if self.skipped {
                return;
            }
            let rate = self.config.access.sample_rate();
            if rate < 1.0 && fastrand::f64() >= rate {
                return;
            }
        }
        let level = self.config.access.level_for(reason, status);
        let latency_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let latency_ms = (latency_ms * 1000.0).round() / 1000.0;
        // The caller's span, so the hops of one user action can be rebuilt
        // from access lines alone.
        let parent_span_id = RequestContext::with_current(|ctx| {
            let ctx = ctx?;
            if let Some(headers) = self.headers.take() {
                ctx.set_access_headers(headers);
            }
            ctx.trace()
                .and_then(TraceContext::parent_span_hex)
                .and_then(|hex| hex.as_bytes().try_into().ok())
        });
        // The record is done: its parts move into the line.
        let build = || AccessLine {
            level,
            method: self.method.clone(),
            uri: std::mem::take(&mut self.uri),
            with_query: self.config.access.query_included(),
            route: self.route.take(),
            is_grpc: self.grpc.is_some(),
            status: self.status,
            latency_ms,
            bytes_out: self.bytes_out,
            client_ip: self.client_ip,
            user_agent: self.user_agent.take(),
            parent_span_id,
            grpc_status,
            grpc_status_name: grpc_status.map(grpc::status_name),
            messages_out: self.grpc.as_ref().map(|rpc| rpc.messages.count()),
            reason,
            buffer_discarded,
            buffer_evicted,
        };
        // corrlog's line layers read the line itself; every other layer
        // sees the event's fields.
        access::dispatch(build, access::emit);
    }
}
