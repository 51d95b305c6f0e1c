//! The access log: one line per request, written when the response body
//! has finished, failed, or been abandoned.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use tracing::{Level, Span};

use crate::context::RequestContext;
use crate::redact::{Redaction, MASK};

/// The target (logger name) of access lines: filter them with
/// `corrlog::access=warn` and the like.
pub const ACCESS_TARGET: &str = "corrlog::access";

/// Access log settings for [`CorrlogLayer::access_log`](super::CorrlogLayer::access_log).
///
/// One line per request, logged when the response body has been sent (or
/// failed, or the client went away), with `method`, `path` (without the
/// query string by default), `route` (axum's matched path), `status`,
/// `latency_ms` (to the end of the body), `bytes_out`, `client_ip`,
/// `user_agent`, the request id, and `reason` when the request did not end
/// normally:
///
/// | reason | what happened |
/// |---|---|
/// | `panic` | the handler panicked; a 500 was sent |
/// | `body_error` | the response body returned an error |
/// | `body_panic` | producing the response body panicked |
/// | `client_disconnect` | the client went away before the body was sent |
/// | `cancelled` | the request was dropped before a response (client gone, or an outer timeout) |
/// | `service_error` | the inner service returned an error, no response |
///
/// Levels: 2xx/3xx at INFO, 4xx at WARN, 5xx and abnormal ends at ERROR
/// (`client_disconnect` and `cancelled` at WARN); see [`AccessLog::levels`].
///
/// ```
/// use std::net::IpAddr;
/// use corrlog::{middleware::AccessLog, CorrlogLayer};
///
/// let layer = CorrlogLayer::new().access_log(
///     AccessLog::default()
///         .skip_path("/health")
///         .skip_prefix("/metrics")
///         .sample_success(0.1)
///         .trusted_proxies(["10.0.0.1".parse::<IpAddr>().unwrap()])
///         .log_headers([http::header::ACCEPT, http::header::AUTHORIZATION]),
/// );
/// ```
#[derive(Clone)]
pub struct AccessLog {
    pub(crate) enabled: bool,
    skip_exact: Vec<String>,
    skip_prefix: Vec<String>,
    sample_success: f64,
    pub(crate) log_start: bool,
    levels: [Level; 3],
    include_query: bool,
    trusted_proxies: Arc<[Network]>,
    headers: Vec<HeaderName>,
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog")
            .field("enabled", &self.enabled)
            .field("skip_exact", &self.skip_exact)
            .field("skip_prefix", &self.skip_prefix)
            .field("sample_success", &self.sample_success)
            .field("log_start", &self.log_start)
            .field("levels", &self.levels)
            .field("include_query", &self.include_query)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            enabled: true,
            skip_exact: Vec::new(),
            skip_prefix: Vec::new(),
            sample_success: 1.0,
            log_start: false,
            levels: [Level::INFO, Level::WARN, Level::ERROR],
            include_query: false,
            trusted_proxies: Arc::from(Vec::new()),
            headers: Vec::new(),
        }
    }
}

impl AccessLog {
    /// No access lines at all.
    pub fn disabled() -> Self {
        AccessLog {
            enabled: false,
            ..AccessLog::default()
        }
    }

    /// Do not log successful requests to exactly this path. Failures (4xx,
    /// 5xx, abnormal ends) are still logged, and the id still echoed.
    #[must_use]
    pub fn skip_path(mut self, path: impl Into<String>) -> Self {
        self.skip_exact.push(path.into());
        self
    }

    /// Do not log successful requests to paths starting with `prefix`.
    #[must_use]
    pub fn skip_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.skip_prefix.push(prefix.into());
        self
    }

    /// Log only this fraction (0.0 to 1.0) of successful requests; errors
    /// are always logged. Defaults to 1.0.
    #[must_use]
    pub fn sample_success(mut self, rate: f64) -> Self {
        self.sample_success = if rate.is_nan() {
            1.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self
    }

    /// Also log a `request started` line when a request arrives. Off by
    /// default.
    #[must_use]
    pub fn log_start(mut self, on: bool) -> Self {
        self.log_start = on;
        self
    }

    /// The levels for 2xx/3xx, 4xx and 5xx responses. Defaults to INFO,
    /// WARN, ERROR.
    #[must_use]
    pub fn levels(mut self, success: Level, client_error: Level, server_error: Level) -> Self {
        self.levels = [success, client_error, server_error];
        self
    }

    /// Log the query string with the path (sensitive parameters masked).
    /// Off by default.
    #[must_use]
    pub fn include_query(mut self, on: bool) -> Self {
        self.include_query = on;
        self
    }

    /// Proxies whose `X-Forwarded-For` and `Forwarded` headers are
    /// believed. The client ip is the peer address unless the peer is one
    /// of these; then it is the nearest untrusted address those headers
    /// name (reading from the right, and stopping at a hop that cannot be
    /// parsed). Empty by default: the headers are ignored. Adds to the
    /// list; see also [`AccessLog::trusted_network`].
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut all = self.trusted_proxies.to_vec();
        all.extend(proxies.into_iter().map(Network::host));
        self.trusted_proxies = all.into();
        self
    }

    /// Trusts every proxy in a network, given as an address and a prefix
    /// length (`10.0.0.0`, 8 for `10.0.0.0/8`; a pod network, say). Adds
    /// to [`AccessLog::trusted_proxies`]. A prefix longer than the address
    /// is taken as the whole address.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr};
    /// use corrlog::middleware::AccessLog;
    ///
    /// let access = AccessLog::default()
    ///     .trusted_network(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8)
    ///     .trusted_network("fd00::".parse().unwrap(), 8);
    /// ```
    #[must_use]
    pub fn trusted_network(mut self, addr: IpAddr, prefix_len: u8) -> Self {
        let mut all = self.trusted_proxies.to_vec();
        all.push(Network::new(addr, prefix_len));
        self.trusted_proxies = all.into();
        self
    }

    /// Request headers to include, as one `headers` field. Off by default;
    /// credentials (`authorization`, `cookie`, `x-api-key`, ...) are always
    /// masked, however they are spelled or repeated.
    #[must_use]
    pub fn log_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.headers = headers.into_iter().collect();
        self
    }

    fn skipped(&self, path: &str) -> bool {
        self.skip_exact.iter().any(|p| p == path)
            || self
                .skip_prefix
                .iter()
                .any(|p| path.starts_with(p.as_str()))
    }

    /// What the access line needs from the request, taken when it arrives.
    /// Cheap: reference-counted clones of the method, URI, matched route
    /// and user agent; text is only made when the line is written.
    pub(crate) fn start<B>(config: &Arc<super::Config>, req: &Request<B>) -> Option<Box<Record>> {
        let access = &config.access;
        if !access.enabled {
            return None;
        }
        let uri = req.uri().clone();
        let skipped = access.skipped(uri.path());
        let headers = req.headers();
        let record = Record {
            start: Instant::now(),
            method: req.method().clone(),
            uri,
            route: matched_path(req),
            user_agent: headers.get(http::header::USER_AGENT).cloned(),
            client_ip: client_ip(req, &access.trusted_proxies),
            headers: access.header_text(headers, &config.redaction),
            status: None,
            bytes_out: 0,
            expected_bytes: None,
            skipped,
            config: config.clone(),
            done: false,
            reason: None,
        };
        if access.log_start {
            tracing::info!(
                target: ACCESS_TARGET,
                method = record.method.as_str(),
                path = record.uri.path(),
                "request started"
            );
        }
        Some(Box::new(record))
    }

    fn header_text(&self, headers: &HeaderMap, redaction: &Redaction) -> Option<String> {
        if self.headers.is_empty() {
            return None;
        }
        let mut text = String::new();
        for name in &self.headers {
            for value in headers.get_all(name) {
                if !text.is_empty() {
                    text.push_str(", ");
                }
                text.push_str(name.as_str());
                text.push_str(": ");
                if redaction.is_secret_header(name) {
                    text.push_str(MASK);
                } else {
                    text.push_str(&String::from_utf8_lossy(value.as_bytes()));
                }
            }
        }
        Some(text)
    }
}

#[cfg(feature = "axum")]
type Route = axum::extract::MatchedPath;
#[cfg(not(feature = "axum"))]
type Route = std::convert::Infallible;

#[cfg(feature = "axum")]
fn matched_path<B>(req: &Request<B>) -> Option<Route> {
    req.extensions().get::<Route>().cloned()
}

#[cfg(not(feature = "axum"))]
fn matched_path<B>(_req: &Request<B>) -> Option<Route> {
    None
}

#[cfg(feature = "axum")]
fn route_str(route: &Route) -> &str {
    route.as_str()
}

#[cfg(not(feature = "axum"))]
fn route_str(route: &Route) -> &str {
    match *route {}
}

fn peer_addr<B>(req: &Request<B>) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0.ip());
    }
    req.extensions().get::<SocketAddr>().map(SocketAddr::ip)
}

/// The peer address, or, behind trusted proxies, the nearest untrusted
/// address in `Forwarded` / `X-Forwarded-For` (read right to left).
fn client_ip<B>(req: &Request<B>, trusted: &[Network]) -> Option<IpAddr> {
    let peer = peer_addr(req)?;
    let trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    // Each hop as the proxy to its right recorded it; `None` for one that
    // cannot be read (`for=unknown`, `for=_hidden`, junk).
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    for value in req.headers().get_all(http::header::FORWARDED) {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in text.split(',') {
            for pair in element.split(';') {
                let pair = pair.trim();
                if pair.len() > 4 && pair[..4].eq_ignore_ascii_case("for=") {
                    hops.push(parse_forwarded_ip(&pair[4..]));
                }
            }
        }
    }
    if hops.is_empty() {
        for value in req.headers().get_all("x-forwarded-for") {
            match value.to_str() {
                Ok(text) => hops.extend(text.split(',').map(parse_forwarded_ip)),
                Err(_) => hops.push(None),
            }
        }
    }
    // From the right: skip our own proxies; the first other hop is the
    // client. Stop at a hop that cannot be read: anything left of it was
    // written by someone we cannot vouch for, so fall back to the peer.
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if trusted(ip) => continue,
            Some(ip) => return Some(*ip),
            None => return Some(peer),
        }
    }
    Some(peer)
}

/// An address range: the bits of `addr` under a prefix of `len` bits.
#[derive(Debug, Clone, Copy)]
struct Network {
    addr: IpAddr,
    len: u8,
}

impl Network {
    fn new(addr: IpAddr, len: u8) -> Self {
        // Addresses are compared as IPv4 when they are IPv4-mapped
        // (`::ffff:a.b.c.d`), so store such a network that way too.
        if let IpAddr::V6(v6) = addr {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), len >= 96) {
                return Network {
                    addr: IpAddr::V4(v4),
                    len: (len - 96).min(32),
                };
            }
        }
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Network {
            addr,
            len: len.min(max),
        }
    }

    fn host(addr: IpAddr) -> Self {
        Network::new(addr, 128)
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
            IpAddr::V4(_) => *ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.len,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.len)
            }
            _ => false,
        }
    }
}

/// Whether the top `len` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, len: u8) -> bool {
    match len {
        0 => true,
        len => (a ^ b) >> (128 - u32::from(len)) == 0,
    }
}

fn parse_forwarded_ip(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    // ipv4:port (an IPv6 address with a port is always bracketed)
    let (ip, port) = v.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// One request's access line in the making.
pub(crate) struct Record {
    start: Instant,
    method: Method,
    uri: Uri,
    route: Option<Route>,
    user_agent: Option<HeaderValue>,
    client_ip: Option<IpAddr>,
    headers: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) bytes_out: u64,
    /// The body's exact length, when it said so up front.
    pub(crate) expected_bytes: Option<u64>,
    skipped: bool,
    config: Arc<super::Config>,
    done: bool,
    /// Why the request ended abnormally, when known before the body ends.
    reason: Option<&'static str>,
}

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

impl Record {
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
        let status = self.status;
        let failed = reason.is_some() || status.is_none_or(|s| s >= 400);
        if !failed {
            if self.skipped {
                return;
            }
            let rate = self.config.access.sample_success;
            if rate < 1.0 && fastrand::f64() >= rate {
                return;
            }
        }
        let [ok, client, server] = self.config.access.levels;
        let level = match (reason, status) {
            (Some("client_disconnect" | "cancelled"), _) => Level::WARN,
            (Some(_), _) => Level::ERROR,
            (None, Some(s)) if s >= 500 => server,
            (None, Some(s)) if s >= 400 => client,
            _ => ok,
        };
        let latency_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let latency_ms = (latency_ms * 1000.0).round() / 1000.0;
        let with_query;
        let path = match (self.config.access.include_query, self.uri.query()) {
            (true, Some(query)) => {
                with_query = format!("{}?{query}", self.uri.path());
                with_query.as_str()
            }
            _ => self.uri.path(),
        };
        let user_agent = self
            .user_agent
            .as_ref()
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        at_level!(
            level,
            method = self.method.as_str(),
            path,
            route = self.route.as_ref().map(route_str),
            status,
            latency_ms,
            bytes_out = self.bytes_out,
            client_ip = self.client_ip.map(tracing::field::display),
            user_agent = user_agent.as_deref(),
            headers = self.headers.as_deref(),
            reason,
            "request finished"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_match_by_prefix() {
        let pods = Network::new(ip("10.0.0.0"), 8);
        assert!(pods.contains(&ip("10.255.3.4")));
        assert!(pods.contains(&ip("::ffff:10.1.2.3")));
        assert!(!pods.contains(&ip("11.0.0.1")));
        assert!(!pods.contains(&ip("fd00::1")));
        let v6 = Network::new(ip("fd00::"), 8);
        assert!(v6.contains(&ip("fd12:3456::1")));
        assert!(!v6.contains(&ip("fe80::1")));
        let host = Network::host(ip("192.0.2.1"));
        assert!(host.contains(&ip("192.0.2.1")));
        assert!(!host.contains(&ip("192.0.2.2")));
        assert!(Network::new(ip("0.0.0.0"), 0).contains(&ip("203.0.113.9")));
        // IPv4-mapped, on either side.
        let mapped_host = Network::host(ip("::ffff:127.0.0.1"));
        assert!(mapped_host.contains(&ip("127.0.0.1")));
        assert!(mapped_host.contains(&ip("::ffff:127.0.0.1")));
        assert!(!mapped_host.contains(&ip("127.0.0.2")));
        let mapped_net = Network::new(ip("::ffff:10.0.0.0"), 104);
        assert!(mapped_net.contains(&ip("10.9.8.7")));
        assert!(!mapped_net.contains(&ip("11.0.0.1")));
    }

    #[test]
    fn forwarded_hops_parse_with_and_without_ports() {
        assert_eq!(
            parse_forwarded_ip(" 203.0.113.7:51234"),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            parse_forwarded_ip("\"[2001:db8::7]:443\""),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(parse_forwarded_ip("2001:db8::7"), Some(ip("2001:db8::7")));
        assert_eq!(parse_forwarded_ip("_hidden"), None);
        assert_eq!(parse_forwarded_ip("unknown"), None);
        assert_eq!(parse_forwarded_ip("1.2.3.4:"), None);
        assert_eq!(parse_forwarded_ip("1.2.3.4:x"), None);
    }
}
