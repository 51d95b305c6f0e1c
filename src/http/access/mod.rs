//! The access log: one line per request, written when the response body
//! has finished, failed, or been abandoned.

mod client_ip;
mod record;

use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use ipnet::IpNet;
use tracing::Level;

use self::client_ip::normalize_net;
pub use self::client_ip::ClientIpHeader;
pub(crate) use self::record::{Record, Rpc};

/// Access log settings for [`RequestLayer::access_log`](crate::RequestLayer::access_log).
///
/// One line per request, logged when the response body has been sent (or
/// failed, or the client went away), with `method`, `path` (without the
/// query string by default), `route` (axum's matched path, or a gRPC
/// call's `/package.Service/Method`), `status`, `latency_ms` (to the end of
/// the body), `bytes_out`, `client_ip`, `user_agent`, the request id,
/// `parent_span_id` (the caller's span, when the request continued a valid
/// `traceparent`), for gRPC calls `grpc_status`, `grpc_status_name` and
/// `messages_out` (see [gRPC](crate::http#grpc)), and `reason` when the
/// request did not end normally:
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
/// A gRPC call's level follows its `grpc_status` (`NOT_FOUND` at WARN,
/// `INTERNAL` at ERROR; the table is in the [gRPC](crate::http#grpc) docs).
///
/// ```
/// use corrlog::http::AccessLog;
/// use ipnet::IpNet;
///
/// let layer = corrlog::RequestLayer::new().access_log(
///     AccessLog::default()
///         .skip_path("/health")
///         .skip_prefix("/metrics")
///         .sample_success(0.1)
///         .trusted_proxies(["10.0.0.0/8".parse::<IpNet>().unwrap()])
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
    pub(crate) trusted_proxies: Arc<[IpNet]>,
    pub(crate) client_ip_header: ClientIpHeader,
    pub(crate) headers: Vec<HeaderName>,
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
            .field("client_ip_header", &self.client_ip_header)
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
            client_ip_header: ClientIpHeader::default(),
            headers: Vec::new(),
        }
    }
}

impl AccessLog {
    /// Whether access lines are written at all. On by default.
    ///
    /// ```
    /// let quiet = corrlog::http::AccessLog::default().enabled(false);
    /// ```
    #[must_use]
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Do not log successful requests to exactly this path. Failures (4xx,
    /// 5xx, abnormal ends) are still logged, and the id still echoed.
    ///
    /// ```
    /// let access = corrlog::http::AccessLog::default().skip_path("/health");
    /// ```
    #[must_use]
    pub fn skip_path(mut self, path: impl Into<String>) -> Self {
        self.skip_exact.push(path.into());
        self
    }

    /// Do not log successful requests to paths starting with `prefix`.
    ///
    /// ```
    /// let access = corrlog::http::AccessLog::default().skip_prefix("/metrics");
    /// ```
    #[must_use]
    pub fn skip_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.skip_prefix.push(prefix.into());
        self
    }

    /// Log only this fraction (0.0 to 1.0) of successful requests; errors
    /// are always logged. Defaults to 1.0.
    ///
    /// ```
    /// let access = corrlog::http::AccessLog::default().sample_success(0.05);
    /// ```
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
    ///
    /// ```
    /// let access = corrlog::http::AccessLog::default().log_start(true);
    /// ```
    #[must_use]
    pub fn log_start(mut self, on: bool) -> Self {
        self.log_start = on;
        self
    }

    /// The levels for 2xx/3xx, 4xx and 5xx responses. Defaults to INFO,
    /// WARN, ERROR.
    ///
    /// ```
    /// use tracing::Level;
    ///
    /// // Successes at DEBUG, so an INFO filter keeps only the failures.
    /// let access = corrlog::http::AccessLog::default().levels(Level::DEBUG, Level::WARN, Level::ERROR);
    /// ```
    #[must_use]
    pub fn levels(mut self, success: Level, client_error: Level, server_error: Level) -> Self {
        self.levels = [success, client_error, server_error];
        self
    }

    /// Log the query string with the path (sensitive parameters masked by
    /// the line layer's redaction policy). Off by default.
    ///
    /// ```
    /// let access = corrlog::http::AccessLog::default().include_query(true);
    /// ```
    #[must_use]
    pub fn include_query(mut self, on: bool) -> Self {
        self.include_query = on;
        self
    }

    /// Proxies whose forwarding header is believed: single addresses
    /// (`IpAddr`) or networks (`ipnet::IpNet`, parsed from `"10.0.0.0/8"`).
    /// The client ip is the peer address unless the peer is one of these;
    /// then it is the nearest untrusted address in the header family chosen
    /// with [`AccessLog::client_ip_header`] (`X-Forwarded-For` by default),
    /// read from the right, stopping at a hop that cannot be parsed. Empty
    /// by default: forwarding headers are ignored. Adds to the list.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use corrlog::http::AccessLog;
    /// use ipnet::IpNet;
    ///
    /// let access = AccessLog::default()
    ///     .trusted_proxies(["10.0.0.0/8".parse::<IpNet>().unwrap(), "fd00::/8".parse().unwrap()])
    ///     .trusted_proxies(["192.0.2.1".parse::<IpAddr>().unwrap()]);
    /// ```
    #[must_use]
    pub fn trusted_proxies<N: Into<IpNet>>(mut self, proxies: impl IntoIterator<Item = N>) -> Self {
        let mut all = self.trusted_proxies.to_vec();
        all.extend(proxies.into_iter().map(|n| normalize_net(n.into())));
        self.trusted_proxies = all.into();
        self
    }

    /// The header family trusted proxies record the client in; the other
    /// family is ignored. Defaults to [`ClientIpHeader::XForwardedFor`],
    /// what nginx, HAProxy, Envoy and cloud load balancers append to. See
    /// [`ClientIpHeader`] for a table of proxy set-ups.
    #[must_use]
    pub fn client_ip_header(mut self, family: ClientIpHeader) -> Self {
        self.client_ip_header = family;
        self
    }

    /// Request headers to include, as one `headers` field of the access
    /// line (`"accept: text/plain, authorization: [REDACTED]"`), after its
    /// other fields. Off by default. Each [`LogLayer`](crate::LogLayer)
    /// masks secret headers (`authorization`, `cookie`, `x-api-key`, ...)
    /// by its own redaction policy, however they are spelled or repeated.
    /// The values never pass through a `tracing` field, so other layers
    /// (tracing-subscriber's `fmt`, OpenTelemetry) do not see them at all.
    ///
    /// ```
    /// let access = corrlog::http::AccessLog::default()
    ///     .log_headers([http::header::ACCEPT, http::header::AUTHORIZATION]);
    /// ```
    #[must_use]
    pub fn log_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.headers = headers.into_iter().collect();
        self
    }

    pub(crate) fn skipped(&self, path: &str) -> bool {
        self.skip_exact.iter().any(|p| p == path)
            || self
                .skip_prefix
                .iter()
                .any(|p| path.starts_with(p.as_str()))
    }

    pub(crate) fn sample_rate(&self) -> f64 {
        self.sample_success
    }

    pub(crate) fn level_for(&self, reason: Option<&str>, status: Option<u16>) -> Level {
        let [ok, client, server] = self.levels;
        match (reason, status) {
            (Some("client_disconnect" | "cancelled"), _) => Level::WARN,
            (Some(_), _) => Level::ERROR,
            (None, Some(s)) if s >= 500 => server,
            (None, Some(s)) if s >= 400 => client,
            _ => ok,
        }
    }

    pub(crate) fn query_included(&self) -> bool {
        self.include_query
    }
}
