//! The environment variables that override the builder (see the table in
//! the [`Builder`](crate::Builder) docs).

use std::env;

use super::Builder;
use crate::error::{Error, ErrorKind};
use crate::fmt::Format;
use crate::fmt::{Buffering, Service};
use crate::output::Backpressure;
use crate::output::{Destination, RollingFile};
use tracing::Level;

impl Builder {
    pub(super) fn apply_env(&mut self) -> Result<(), Error> {
        if let Some(v) = env_var("CORRLOG_FORMAT") {
            self.format = match v.to_ascii_lowercase().as_str() {
                "json" => Format::Json,
                "pretty" => Format::Pretty,
                "auto" => Format::Auto,
                "ecs" => Format::Ecs,
                "gcp" => Format::Gcp,
                "datadog" => Format::Datadog,
                _ => {
                    return Err(invalid_env(
                        "CORRLOG_FORMAT",
                        v,
                        "json, pretty, auto, ecs, gcp or datadog",
                    ))
                }
            };
        }
        for var in ["CORRLOG_LEVEL", "RUST_LOG"] {
            if let Some(v) = env_var(var) {
                self.level = v;
                self.level_var = Some(var);
                break;
            }
        }
        if let Some(path) = env_var("CORRLOG_FILE") {
            self.output = Destination::File(RollingFile::builder(path));
        }
        if let Some(v) = env_var("CORRLOG_BACKPRESSURE") {
            self.backpressure = match v.to_ascii_lowercase().as_str() {
                "block" => Backpressure::default(),
                "drop" => Backpressure::Drop,
                _ => return Err(invalid_env("CORRLOG_BACKPRESSURE", v, "block or drop")),
            };
        }
        if let Some(v) = env_var("CORRLOG_QUEUE_BYTES") {
            self.queue_bytes = v
                .trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| invalid_env("CORRLOG_QUEUE_BYTES", v, "a positive byte count"))?;
        }
        if let Some(v) = env_var("CORRLOG_BUFFER") {
            let level = match v.trim().to_ascii_lowercase().as_str() {
                "off" => None,
                "trace" => Some(Level::TRACE),
                "debug" => Some(Level::DEBUG),
                "info" => Some(Level::INFO),
                "warn" => Some(Level::WARN),
                _ => {
                    return Err(invalid_env(
                        "CORRLOG_BUFFER",
                        v,
                        "trace, debug, info or warn (the most verbose level to buffer), or off",
                    ))
                }
            };
            self.buffer = level.map(|level| match self.buffer {
                Some(b) => b.with_level(level),
                None => Buffering::up_to(level),
            });
        }
        self.service.merge(service_from_env()?);
        if let Some(project) = env_var("GOOGLE_CLOUD_PROJECT") {
            self.gcp_project = Some(project.trim().to_owned());
        }
        #[cfg(feature = "otlp")]
        {
            self.otlp = otlp_from_env(self.otlp.take())?;
        }
        Ok(())
    }
}

/// The OTLP output as the `OTEL_EXPORTER_OTLP_*` variables change
/// `configured` (the builder's): an endpoint variable sets or replaces the
/// endpoint; headers add to the configured ones; the timeout replaces it.
#[cfg(feature = "otlp")]
fn otlp_from_env(
    configured: Option<crate::output::otlp::Otlp>,
) -> Result<Option<crate::output::otlp::Otlp>, Error> {
    use crate::output::otlp::Otlp;

    if env_var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    for var in [
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(v) = env_var(var) {
            if v.trim() != "http/protobuf" {
                return Err(invalid_env(
                    var,
                    v,
                    "http/protobuf (corrlog exports OTLP over HTTP with protobuf; point it at the collector's HTTP port, 4318)",
                ));
            }
        }
    }
    // Both are checked, though the logs one wins: a typo in either is
    // reported rather than hidden by the other.
    let mut endpoints = Vec::with_capacity(2);
    for (var, full) in [
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", true),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", false),
    ] {
        if let Some(url) = env_var(var) {
            let url = url.trim().to_owned();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid_env(
                    var,
                    url,
                    "an http:// or https:// URL, like http://127.0.0.1:4318",
                ));
            }
            endpoints.push((url, full));
        }
    }
    let mut otlp = match (endpoints.into_iter().next(), configured) {
        (Some((url, full)), configured) => {
            let fresh = if full {
                Otlp::new(url)
            } else {
                Otlp::base(&url)
            };
            match configured {
                Some(configured) => configured.with_endpoint_of(fresh),
                None => fresh,
            }
        }
        (None, Some(configured)) => configured,
        (None, None) => return Ok(None),
    };
    for var in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    ] {
        if let Some(v) = env_var(var) {
            let headers = parse_resource_attributes(&v).map_err(|_| {
                invalid_env(
                    var,
                    v.clone(),
                    "comma-separated key=value pairs, values percent-encoded (api-key=secret,tenant=a)",
                )
            })?;
            for (name, value) in headers {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || http::HeaderValue::from_str(&value).is_err()
                {
                    return Err(invalid_env(
                        var,
                        v.clone(),
                        "header names and values HTTP allows (a name of letters, digits and -; a value without control characters)",
                    ));
                }
                otlp = otlp.replace_header(name, value);
            }
        }
    }
    for var in [
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    ] {
        if let Some(v) = env_var(var) {
            let ms: u64 = v.trim().parse().ok().filter(|&ms| ms > 0).ok_or_else(|| {
                invalid_env(
                    var,
                    v.clone(),
                    "a positive number of milliseconds, like 10000",
                )
            })?;
            otlp = otlp.timeout(std::time::Duration::from_millis(ms));
        }
    }
    Ok(Some(otlp))
}

/// The service fields `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
/// set, as the OpenTelemetry SDKs read them: the first wins over a
/// `service.name` in the second.
fn service_from_env() -> Result<Service, Error> {
    let mut service = Service::default();
    if let Some(v) = env_var(RESOURCE_VAR) {
        let attributes = parse_resource_attributes(&v)
            .map_err(|expected| invalid_env(RESOURCE_VAR, v.clone(), expected))?;
        for (key, value) in attributes {
            let field = match key.as_str() {
                "service.name" => &mut service.name,
                "service.version" => &mut service.version,
                "service.instance.id" => &mut service.instance_id,
                "deployment.environment.name" => &mut service.environment,
                _ => continue,
            };
            *field = Some(value);
        }
    }
    if let Some(name) = env_var("OTEL_SERVICE_NAME") {
        service.name = Some(name.trim().to_owned());
    }
    Ok(service)
}

const RESOURCE_VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";

/// What a malformed `OTEL_RESOURCE_ATTRIBUTES` should have been.
const RESOURCE_FORMAT: &str =
    "comma-separated key=value pairs, values percent-encoded (service.name=orders,service.version=1.4.2)";

/// Parses `key=value,key=value` (the OpenTelemetry resource format, values
/// percent-encoded like W3C baggage). Spaces around keys and values are
/// dropped; an empty member (`a=1,,b=2`) is skipped.
pub(super) fn parse_resource_attributes(text: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut out = Vec::new();
    for member in text.split(',') {
        if member.trim().is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=').ok_or(RESOURCE_FORMAT)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(RESOURCE_FORMAT);
        }
        let value = percent_decode(value.trim()).ok_or(RESOURCE_FORMAT)?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// Decodes `%XX` escapes; `None` for a broken escape or text that is not
/// UTF-8 once decoded.
fn percent_decode(text: &str) -> Option<String> {
    // The decoder passes a broken escape through as text; the variable's
    // format has none, so check first that every `%` starts one.
    let bytes = text.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// A variable's value, unless unset or blank.
pub(super) fn env_var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub(super) fn invalid_env(var: &'static str, value: String, expected: &'static str) -> Error {
    Error::new(ErrorKind::InvalidEnv {
        var,
        value,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Result<Vec<(String, String)>, &'static str> {
        parse_resource_attributes(text)
    }

    #[test]
    fn resource_attributes_are_parsed_and_percent_decoded() {
        assert_eq!(
            pairs(" service.name = orders , deployment.environment.name=prod%20eu%2C%3Dx,,k=a=b")
                .unwrap(),
            [
                ("service.name".to_owned(), "orders".to_owned()),
                (
                    "deployment.environment.name".to_owned(),
                    "prod eu,=x".to_owned()
                ),
                ("k".to_owned(), "a=b".to_owned()),
            ]
        );
        assert_eq!(pairs("k=%C3%A9").unwrap()[0].1, "é");
        assert_eq!(pairs("k=").unwrap()[0].1, "");
        assert!(pairs("").unwrap().is_empty());
    }

    #[test]
    fn malformed_resource_attributes_are_refused() {
        for bad in [
            "k", "=v", " =v", "k=%", "k=%4", "k=%zz", "k=%+1", "k=%FF", "a=1,b",
        ] {
            assert_eq!(pairs(bad), Err(RESOURCE_FORMAT), "{bad}");
        }
    }
}
