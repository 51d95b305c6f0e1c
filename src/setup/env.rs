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
                // Masked as every printed endpoint is: it may hold
                // credentials.
                return Err(invalid_env(
                    var,
                    crate::output::otlp::shown_endpoint(&url),
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
        let secret = |at: String| {
            Error::new(ErrorKind::InvalidSecretEnv {
                var,
                at,
                expected: HEADERS_FORMAT,
            })
        };
        let v = env_utf8(var).map_err(|_| secret("its bytes (not UTF-8)".into()))?;
        if let Some(v) = v {
            let headers = parse_headers(&v).map_err(secret)?;
            for (name, value) in headers {
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
    if let Some(v) = env_text(RESOURCE_VAR)? {
        let attributes = parse_resource_attributes(&v)
            .map_err(|expected| invalid_env(RESOURCE_VAR, shown(&v), expected))?;
        for (key, value) in attributes {
            let field = match key.as_str() {
                "service.name" => &mut service.name,
                "service.version" => &mut service.version,
                "service.instance.id" => &mut service.instance_id,
                "deployment.environment.name" => &mut service.environment,
                _ => continue,
            };
            *field = Some(checked_service_field(RESOURCE_VAR, value)?);
        }
    }
    if let Some(name) = env_text("OTEL_SERVICE_NAME")? {
        service.name = Some(checked_service_field(
            "OTEL_SERVICE_NAME",
            name.trim().to_owned(),
        )?);
    }
    Ok(service)
}

/// The most a service field from the environment may hold. It is on every
/// line, so a runaway value (a file's contents, say) would multiply each
/// line's size; the start is refused instead.
const MAX_SERVICE_FIELD_BYTES: usize = 255;

fn checked_service_field(var: &'static str, value: String) -> Result<String, Error> {
    if value.len() > MAX_SERVICE_FIELD_BYTES {
        return Err(invalid_env(
            var,
            shown(&value),
            "service fields of at most 255 bytes (they are written on every line)",
        ));
    }
    Ok(value)
}

/// A variable's value for an error message: its first 64 characters.
fn shown(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

/// A variable's value, unless unset or blank; an error when it is not
/// UTF-8, rather than ignoring it.
fn env_text(name: &'static str) -> Result<Option<String>, Error> {
    env_utf8(name).map_err(|raw| invalid_env(name, shown(&raw.to_string_lossy()), "UTF-8 text"))
}

/// A variable's value, unless unset or blank; its raw bytes when they are
/// not UTF-8, for the caller's error.
fn env_utf8(name: &str) -> Result<Option<String>, std::ffi::OsString> {
    match env::var(name) {
        Ok(v) => Ok(Some(v).filter(|v| !v.trim().is_empty())),
        Err(env::VarError::NotPresent) => Ok(None),
        Err(env::VarError::NotUnicode(raw)) => Err(raw),
    }
}

const RESOURCE_VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";

/// What a malformed `OTEL_EXPORTER_OTLP_HEADERS` should have been.
#[cfg(feature = "otlp")]
const HEADERS_FORMAT: &str = "comma-separated key=value pairs of header names HTTP allows \
     (letters, digits and -) and percent-encoded values without control characters \
     (api-key=secret,tenant=a)";

/// Parses the OTLP headers variable (`name=value,...`, values
/// percent-encoded) into header names and values HTTP allows. An error
/// says where, never what: a member's position (1-based, counting the
/// commas), or the name of a header whose value is wrong.
#[cfg(feature = "otlp")]
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, member) in text.split(',').enumerate() {
        let at = || format!("member {}", i + 1);
        if member.trim().is_empty() {
            continue;
        }
        let (name, value) = member.split_once('=').ok_or_else(at)?;
        let name = name.trim();
        if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("{} (not a header name)", at()));
        }
        let value = percent_decode(value.trim())
            .filter(|value| http::HeaderValue::from_str(value).is_ok())
            .ok_or_else(|| format!("the value of header {name:?}"))?;
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

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

/// A variable's value, unless unset, blank or not UTF-8.
pub(super) fn env_var(name: &str) -> Option<String> {
    env_utf8(name).ok().flatten()
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
