//! W3C Trace Context on the way in: [`TraceParent`] parsing and bounded
//! `tracestate` pass-through.

use std::fmt;

use http::{HeaderMap, HeaderName};

use super::{hex_string, random_span_id, write_hex, TraceContext};

/// The W3C `traceparent` header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The W3C `tracestate` header.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The longest `tracestate` passed on, in bytes.
pub const MAX_TRACESTATE_BYTES: usize = 512;

/// A parsed `traceparent`.
///
/// When a request brings a valid `traceparent`, the request continues that
/// trace: same `trace_id`, and a new `span_id` for this hop. Otherwise a new
/// trace starts. Every line of the request carries `trace_id` and `span_id`
/// as top-level fields, and outgoing calls (see [`inject`](crate::propagate::inject)) carry
/// `traceparent: 00-<trace_id>-<this hop's span_id>-<flags>`.
///
/// Parsing follows the specification:
/// - surrounding spaces and tabs are allowed;
/// - version `00`: exactly `00-<32 hex>-<16 hex>-<2 hex>`, lowercase hex;
/// - an all-zero trace id or parent id is invalid; version `ff` is invalid;
/// - a later version is read by the version-00 rules on its first 55
///   characters, and anything after must start with `-`;
/// - two `traceparent` headers are invalid.
///
/// `tracestate` is passed on only with a valid `traceparent`, and only its
/// valid list members: a key of `[a-z0-9]` then up to 255 of
/// `[a-z0-9_*/@-]`, `=`, a value of 1 to 256 visible ASCII characters (and
/// spaces) without `,` or `=`, not ending in a space; no key twice (the
/// first wins); at most 32 members ([`MAX_TRACESTATE_MEMBERS`]) and 512
/// bytes ([`MAX_TRACESTATE_BYTES`]) in all. Several headers are joined with
/// `,`; other members are dropped.
///
/// With the `opentelemetry` feature and `tracing-opentelemetry` installed,
/// the lines carry the ids of the request span it exports instead: the
/// span continues a valid `traceparent` (its remote parent is the caller's
/// span), starts a new trace in edge mode, and is the child of an enclosing
/// span that already continues the caller's trace (an OpenTelemetry
/// middleware outside this layer). Outgoing calls then name that span.
/// Without `tracing-opentelemetry`, an OpenTelemetry span context active as
/// the request arrives supplies the trace id and span id.
///
/// ```
/// use corrlog::context::TraceParent;
///
/// let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(tp.sampled());
/// assert!(TraceParent::parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none());
/// assert!(TraceParent::parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn parse_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = hex_val(pair[0])? << 4 | hex_val(pair[1])?;
    }
    Some(out)
}

impl TraceParent {
    /// Parses one header value; `None` if it is not valid.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let v = value.trim_matches([' ', '\t']).as_bytes();
        if v.len() < 55 {
            return None;
        }
        let version = parse_hex::<1>(&v[0..2])?[0];
        if version == 0xff || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        if version == 0 && v.len() != 55 {
            return None;
        }
        // A later version: what follows the version-00 fields starts with `-`.
        if v.len() > 55 && v[55] != b'-' {
            return None;
        }
        let trace_id = parse_hex::<16>(&v[3..35])?;
        let parent_id = parse_hex::<8>(&v[36..52])?;
        let flags = parse_hex::<1>(&v[53..55])?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The `traceparent` of a request's headers: `None` when absent,
    /// invalid, or sent more than once.
    pub fn from_headers(headers: &HeaderMap) -> Option<TraceParent> {
        // A value that is not visible ASCII still counts, as one nothing
        // parses.
        TraceParent::sole(
            headers
                .get_all(TRACEPARENT)
                .iter()
                .map(|value| value.to_str().unwrap_or("")),
        )
    }

    /// The parent in a carrier's `traceparent` values, as every carrier
    /// reads it, HTTP headers included: exactly one value, valid.
    pub(crate) fn sole<'a>(mut values: impl Iterator<Item = &'a str>) -> Option<TraceParent> {
        match (values.next(), values.next()) {
            (Some(only), None) => TraceParent::parse(only),
            _ => None,
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex_string(&self.trace_id)
    }

    /// The parent (caller's span) id as 16 lowercase hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex_string(&self.parent_id)
    }

    /// Whether the caller sampled this trace (flag `01`).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The header value, version 00.
    pub fn to_header(&self) -> String {
        let mut out = Vec::with_capacity(55);
        out.extend_from_slice(b"00-");
        write_hex(&mut out, &self.trace_id);
        out.push(b'-');
        write_hex(&mut out, &self.parent_id);
        out.push(b'-');
        write_hex(&mut out, &[self.flags]);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Continues the trace in `headers` when its `traceparent` is valid,
/// otherwise starts a new one; either way with a new span id.
pub(crate) fn continue_or_start(headers: &HeaderMap) -> TraceContext {
    continue_or_start_from(TraceParent::from_headers(headers), || {
        tracestate_of(
            headers
                .get_all(TRACESTATE)
                .iter()
                // A header that is not visible ASCII has no valid member.
                .filter_map(|value| value.to_str().ok()),
        )
    })
}

/// Continues the trace of `parent` with the `tracestate` it came with,
/// or starts a new one; either way with a new span id.
pub(crate) fn continue_or_start_from(
    parent: Option<TraceParent>,
    tracestate: impl FnOnce() -> Option<Box<str>>,
) -> TraceContext {
    match parent {
        Some(parent) => TraceContext::from_parts(
            parent.trace_id,
            random_span_id(),
            parent.flags & 1,
            tracestate(),
        )
        .with_parent(parent.parent_id),
        None => TraceContext::new_root(),
    }
}

/// The ids of the active OpenTelemetry span, if its context is valid
/// (feature `opentelemetry`): that span is this hop.
#[cfg(feature = "opentelemetry")]
pub(crate) fn from_opentelemetry() -> Option<TraceContext> {
    use opentelemetry::trace::TraceContextExt;
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        let state = sc.trace_state().header();
        let tracestate = (!state.is_empty() && state.len() <= MAX_TRACESTATE_BYTES)
            .then(|| state.into_boxed_str());
        TraceContext::from_parts(
            sc.trace_id().to_bytes(),
            sc.span_id().to_bytes(),
            sc.trace_flags().to_u8() & 1,
            tracestate,
        )
    })
}

/// The ids of the request span as `tracing-opentelemetry` exports it
/// (feature `opentelemetry`), so every line of the request can be found
/// from its trace: `ours` is the trace the request would have without it.
///
/// The span is first given its parent: none (a new trace) in edge mode;
/// the caller's span when the request continued a valid `traceparent`,
/// unless an enclosing span already continues that trace; otherwise
/// whatever `tracing-opentelemetry` picks (an enclosing span, or a new
/// trace). Reading its context then starts it, with the ids it will
/// be exported with. Without `tracing-opentelemetry` installed (or with
/// the span filtered out) that context is empty and `ours` is kept.
#[cfg(feature = "opentelemetry")]
pub(crate) fn exported_span_ids(
    span: &tracing::Span,
    ours: TraceContext,
    edge: bool,
) -> TraceContext {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let parent = ours
        .parent_span_hex()
        .and_then(|hex| SpanId::from_hex(hex).ok());
    // An enclosing span (an OpenTelemetry middleware outside this layer)
    // that already continues the caller's trace stays the parent.
    let continued_outside = || {
        let enclosing = tracing::Span::current().context();
        let enclosing = enclosing.span();
        let sc = enclosing.span_context();
        sc.is_valid() && sc.trace_id().to_bytes() == ours.trace_id_bytes()
    };
    if edge {
        let _ = span.set_parent(opentelemetry::Context::new());
    } else if let Some(parent) = parent.filter(|_| !continued_outside()) {
        let state = ours
            .tracestate()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let remote = SpanContext::new(
            TraceId::from_bytes(ours.trace_id_bytes()),
            parent,
            TraceFlags::new(ours.flags()),
            true,
            state,
        );
        // An error means no tracing-opentelemetry layer (or a filtered
        // span): nothing to line up with.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    if !sc.is_valid() {
        return ours;
    }
    let exported = TraceContext::from_parts(
        sc.trace_id().to_bytes(),
        sc.span_id().to_bytes(),
        sc.trace_flags().to_u8() & 1,
        ours.tracestate().map(Box::from),
    );
    // The caller's span stays this hop's parent when the trace is the
    // caller's.
    match parent {
        Some(parent) if sc.trace_id().to_bytes() == ours.trace_id_bytes() => {
            exported.with_parent(parent.to_bytes())
        }
        _ => exported,
    }
}

/// The most list members a `tracestate` may have.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// `key = ( lcalpha / DIGIT ) 0*255 ( lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@" )`
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    matches!(b.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && b.len() <= 256
        && b.iter()
            .all(|&c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@'))
}

/// `value = 0*255( chr ) nblk-chr`, where `nblk-chr` is visible ASCII but
/// `,` and `=`, and `chr` adds the space.
fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    let nblk = |c: u8| matches!(c, 0x21..=0x7e) && c != b',' && c != b'=';
    matches!(b.last(), Some(&c) if nblk(c))
        && b.len() <= 256
        && b.iter().all(|&c| c == b' ' || nblk(c))
}

/// The valid list members of `tracestate` values, joined with `,`:
/// members that break the W3C grammar, repeat an earlier key, come after
/// the 32nd, or would take the whole past [`MAX_TRACESTATE_BYTES`] are
/// dropped; `None` when no member is left.
pub(crate) fn tracestate_of<'a>(values: impl Iterator<Item = &'a str>) -> Option<Box<str>> {
    let mut joined = String::new();
    let mut keys: Vec<&str> = Vec::new();
    let members = values
        .flat_map(|text| text.split(','))
        .map(|member| member.trim_matches([' ', '\t']))
        .filter(|member| !member.is_empty());
    for member in members {
        if keys.len() == MAX_TRACESTATE_MEMBERS {
            break;
        }
        let Some((key, value)) = member.split_once('=') else {
            continue;
        };
        let fits =
            joined.len() + usize::from(!joined.is_empty()) + member.len() <= MAX_TRACESTATE_BYTES;
        if !valid_key(key) || !valid_value(value) || keys.contains(&key) || !fits {
            continue;
        }
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(member);
        keys.push(key);
    }
    (!joined.is_empty()).then(|| joined.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_and_invalid_traceparents() {
        assert!(TraceParent::parse(VALID).is_some());
        assert!(TraceParent::parse(&format!("  {VALID}\t")).is_some());
        for bad in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            // One separator wrong at a time.
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "junk",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn future_versions_use_the_version_00_prefix() {
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_some()
        );
        assert!(TraceParent::parse(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds"
        )
        .is_some());
        assert!(
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01xyz")
                .is_none()
        );
    }

    #[test]
    fn continues_or_starts_a_trace() {
        let mut h = HeaderMap::new();
        h.insert("traceparent", VALID.parse().unwrap());
        h.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
        let ctx = continue_or_start(&h);
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ctx.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(ctx.tracestate(), Some("congo=t61rcWkgMzE"));
        let out = ctx.traceparent();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(out.ends_with("-01"));
        assert_eq!(
            TraceParent::parse(&out).unwrap().parent_id_hex(),
            ctx.span_id_hex()
        );

        h.append("traceparent", VALID.parse().unwrap());
        let fresh = continue_or_start(&h);
        assert_ne!(
            fresh.trace_id_hex(),
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "duplicates are invalid"
        );
        assert!(fresh.tracestate().is_none());
    }

    fn state_of(values: &[&str]) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert("traceparent", VALID.parse().unwrap());
        for v in values {
            h.append("tracestate", v.parse().unwrap());
        }
        continue_or_start(&h).tracestate().map(str::to_owned)
    }

    #[test]
    fn tracestate_members_follow_the_w3c_grammar() {
        // Valid members pass, in order, with optional whitespace dropped.
        assert_eq!(
            state_of(&[
                "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7",
                "\tfw529a3039@dt=x y z"
            ])
            .as_deref(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,fw529a3039@dt=x y z")
        );
        assert_eq!(state_of(&["0vendor=1"]).as_deref(), Some("0vendor=1"));
        // Empty members and a list of nothing but commas.
        assert_eq!(state_of(&[",,,,"]), None);
        assert_eq!(state_of(&["a=1,,b=2, ,"]).as_deref(), Some("a=1,b=2"));
        // Invalid members are dropped, valid neighbours kept.
        for bad in [
            "Upper=1",   // uppercase key
            "_a=1",      // key must start with a letter or digit
            "a b=1",     // space in key
            "a=",        // empty value
            "a=b=c",     // '=' in value
            "a",         // no '='
            "=b",        // no key
            "a = b",     // spaces around '='
            "k\u{7f}=v", // DEL
        ] {
            let header = format!("x=1,{bad},y=2");
            if let Ok(value) = http::HeaderValue::from_str(&header) {
                let mut h = HeaderMap::new();
                h.insert("traceparent", VALID.parse().unwrap());
                h.insert("tracestate", value);
                assert_eq!(
                    continue_or_start(&h).tracestate(),
                    Some("x=1,y=2"),
                    "{bad:?}"
                );
            }
        }
        let long_key = format!("{}=v", "k".repeat(257));
        assert_eq!(state_of(&[&long_key, "ok=1"]).as_deref(), Some("ok=1"));
        let long_value = format!("k={}", "v".repeat(257));
        assert_eq!(state_of(&[&long_value, "ok=1"]).as_deref(), Some("ok=1"));
        // A repeated key keeps its first (most recent) member.
        assert_eq!(state_of(&["a=1,b=2,a=3"]).as_deref(), Some("a=1,b=2"));
        // A header that is not visible ASCII contributes nothing.
        let mut h = HeaderMap::new();
        h.insert("traceparent", VALID.parse().unwrap());
        h.append(
            "tracestate",
            http::HeaderValue::from_bytes(b"a=\xff").unwrap(),
        );
        h.append("tracestate", "b=2".parse().unwrap());
        assert_eq!(continue_or_start(&h).tracestate(), Some("b=2"));
    }

    #[test]
    fn only_the_sampled_flag_is_carried_on() {
        for (flags, expected) in [("00", "00"), ("01", "01"), ("02", "00"), ("ff", "01")] {
            let mut h = HeaderMap::new();
            let value = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
            h.insert("traceparent", value.parse().unwrap());
            let ctx = continue_or_start(&h);
            assert!(
                ctx.traceparent().ends_with(&format!("-{expected}")),
                "{flags}"
            );
        }
    }

    #[test]
    fn at_most_32_members_are_passed_on() {
        let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
        let state = state_of(&[&many.join(",")]).unwrap();
        let kept: Vec<&str> = state.split(',').collect();
        assert_eq!(kept.len(), MAX_TRACESTATE_MEMBERS);
        assert_eq!(kept[0], "k0=v");
        assert_eq!(kept[31], "k31=v");
        // Invalid members do not count towards the cap.
        let mixed: Vec<String> = (0..40).map(|i| format!("K{i}=bad,k{i}=v")).collect();
        assert_eq!(
            state_of(&[&mixed.join(",")]).unwrap().split(',').count(),
            32
        );
    }

    #[test]
    fn oversized_tracestate_is_dropped() {
        let mut h = HeaderMap::new();
        h.insert("traceparent", VALID.parse().unwrap());
        h.insert("tracestate", "a=".repeat(300).parse().unwrap());
        assert!(continue_or_start(&h).tracestate().is_none());
    }

    #[test]
    fn the_512_byte_cap_counts_every_byte() {
        let member = |key: char, len: usize| format!("{key}={}", "v".repeat(len - 2));
        // One member of exactly 512 bytes (a 256-byte key is allowed).
        let exact = format!("{}={}", "k".repeat(256), "v".repeat(255));
        assert_eq!(exact.len(), 512);
        assert_eq!(state_of(&[&exact]).as_deref(), Some(exact.as_str()));
        let over = format!("{}={}", "k".repeat(256), "v".repeat(256));
        assert_eq!(state_of(&[&over, "ok=1"]).as_deref(), Some("ok=1"));
        // 256 + ',' + 255 fits exactly; 256 + ',' + 256 is one byte over.
        let (a, b) = (member('a', 256), member('b', 255));
        assert_eq!(state_of(&[&a, &b]).unwrap().len(), 512);
        let c = member('c', 256);
        assert_eq!(state_of(&[&a, &c]).as_deref(), Some(a.as_str()));
    }
}
