//! A request's place in a W3C trace: the trace it belongs to and this
//! hop's span id ([`TraceContext`], what every line of the request and
//! every outgoing call reads), and the W3C Trace Context headers it is
//! read from and written as (`w3c.rs`: [`TraceParent`], `tracestate`).

use std::fmt;

mod w3c;

pub(crate) use self::w3c::{continue_or_start, continue_or_start_from, tracestate_of};
#[cfg(feature = "opentelemetry")]
pub(crate) use self::w3c::{exported_span_ids, from_opentelemetry};
pub use self::w3c::{
    TraceParent, MAX_TRACESTATE_BYTES, MAX_TRACESTATE_MEMBERS, TRACEPARENT, TRACESTATE,
};

/// A byte's two lowercase hex digits.
#[inline]
fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]
}

/// Fills `out` with the hex digits of `bytes`, two per byte, without
/// allocating.
fn hex_fill(out: &mut [u8], bytes: &[u8]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&hex_pair(b));
    }
}

/// Appends `bytes` as lowercase hex digits, two per byte.
pub(crate) fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.extend_from_slice(&hex_pair(b));
    }
}

/// `bytes` as lowercase hex digits.
pub(crate) fn hex_string(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    write_hex(&mut out, bytes);
    // Hex digits are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// A random span id, not all zero (W3C forbids all-zero ids).
pub(crate) fn random_span_id() -> [u8; 8] {
    nonzero(|| fastrand::u64(..)).to_be_bytes()
}

/// A random trace id, not all zero.
fn random_trace_id() -> [u8; 16] {
    nonzero(|| fastrand::u128(..)).to_be_bytes()
}

/// The first value `draw` gives that is not zero.
fn nonzero<T: PartialEq + Default>(mut draw: impl FnMut() -> T) -> T {
    loop {
        let value = draw();
        if value != T::default() {
            return value;
        }
    }
}

/// A request's place in a trace: the trace it belongs to and this hop's
/// span id.
///
/// ```
/// use corrlog::context::TraceContext;
///
/// let root = TraceContext::new_root();
/// assert_eq!(root.trace_id_hex().len(), 32);
/// assert_eq!(root.span_id_hex().len(), 16);
/// // The traceparent of a call made from this hop names this hop's span.
/// assert_eq!(
///     root.traceparent(),
///     format!("00-{}-{}-01", root.trace_id_hex(), root.span_id_hex())
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    /// The caller's span as hex digits, when the request continued a valid
    /// `traceparent`.
    parent_hex: Option<[u8; 16]>,
    tracestate: Option<Box<str>>,
    /// Both ids and the flags as lowercase hex, made once: every line of
    /// the request copies them.
    hex: [u8; 50],
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &self.trace_id_hex())
            .field("span_id", &self.span_id_hex())
            .field("flags", &self.flags)
            .field("parent_span_id", &self.parent_span_id_hex())
            .field("tracestate", &self.tracestate)
            .finish()
    }
}

impl TraceContext {
    /// A context from its parts; `tracestate` already validated.
    pub(crate) fn from_parts(
        trace_id: [u8; 16],
        span_id: [u8; 8],
        flags: u8,
        tracestate: Option<Box<str>>,
    ) -> Self {
        let mut hex = [0u8; 50];
        let (trace_hex, rest) = hex.split_at_mut(32);
        let (span_hex, flags_hex) = rest.split_at_mut(16);
        hex_fill(trace_hex, &trace_id);
        hex_fill(span_hex, &span_id);
        flags_hex.copy_from_slice(&hex_pair(flags));
        TraceContext {
            trace_id,
            span_id,
            flags,
            parent_hex: None,
            tracestate,
            hex,
        }
    }

    /// The same context, as continued from the caller's span `parent`.
    pub(crate) fn with_parent(mut self, parent: [u8; 8]) -> Self {
        let mut hex = [0u8; 16];
        hex_fill(&mut hex, &parent);
        self.parent_hex = Some(hex);
        self
    }

    /// The caller's span id as hex digits, if any: for the access line,
    /// without an allocation.
    pub(crate) fn parent_span_hex(&self) -> Option<&str> {
        self.parent_hex
            .as_ref()
            .and_then(|hex| std::str::from_utf8(hex).ok())
    }

    /// The trace id's bytes.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The low 64 bits of the trace id, as a number (Datadog's trace id).
    pub(crate) fn trace_id_low_u64(&self) -> u64 {
        let mut low = [0u8; 8];
        low.copy_from_slice(&self.trace_id[8..]);
        u64::from_be_bytes(low)
    }

    /// The span id as a number (Datadog's span id).
    pub(crate) fn span_id_u64(&self) -> u64 {
        u64::from_be_bytes(self.span_id)
    }

    /// Whether the caller asked for this trace to be recorded.
    pub(crate) fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// A new trace, sampled, with a new span id.
    pub fn new_root() -> TraceContext {
        TraceContext::from_parts(random_trace_id(), random_span_id(), 1, None)
    }

    /// The trace id's hex digits.
    pub(crate) fn trace_hex(&self) -> &[u8] {
        &self.hex[..32]
    }

    /// This hop's span id's hex digits.
    pub(crate) fn span_hex(&self) -> &[u8] {
        &self.hex[32..48]
    }

    /// The trace flags' two hex digits.
    pub(crate) fn flags_hex(&self) -> &[u8] {
        &self.hex[48..]
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        String::from_utf8_lossy(self.trace_hex()).into_owned()
    }

    /// This hop's span id, 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        String::from_utf8_lossy(self.span_hex()).into_owned()
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The caller's span id, 16 lowercase hex digits, when the request
    /// continued a valid incoming `traceparent`.
    ///
    /// ```
    /// assert!(corrlog::context::TraceContext::new_root().parent_span_id_hex().is_none());
    /// ```
    pub fn parent_span_id_hex(&self) -> Option<String> {
        self.parent_span_hex().map(str::to_owned)
    }

    /// The `traceparent` for a call made from this hop:
    /// `00-<trace id>-<this hop's span id>-<flags>`.
    pub fn traceparent(&self) -> String {
        let mut out = Vec::with_capacity(55);
        out.extend_from_slice(b"00-");
        out.extend_from_slice(self.trace_hex());
        out.push(b'-');
        out.extend_from_slice(self.span_hex());
        out.push(b'-');
        out.extend_from_slice(self.flags_hex());
        String::from_utf8(out).unwrap_or_default()
    }

    /// The `tracestate` to pass on, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex_string(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        let ctx = TraceContext::from_parts([0xab; 16], [0x01; 8], 0, None);
        assert_eq!(ctx.trace_id_hex(), "ab".repeat(16));
        assert_eq!(ctx.span_id_hex(), "01".repeat(8));
        assert_eq!(
            ctx.traceparent(),
            format!("00-{}-{}-00", "ab".repeat(16), "01".repeat(8))
        );
        assert_eq!(ctx.flags(), 0);
        let shown = format!("{ctx:?}");
        assert!(
            shown.contains(&"ab".repeat(16)) && shown.contains(&"01".repeat(8)),
            "{shown}"
        );
    }

    #[test]
    fn new_roots_are_random_sampled_and_never_zero() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        assert_ne!(a.trace_id_hex(), b.trace_id_hex());
        assert_ne!(a.span_id_hex(), b.span_id_hex());
        assert_eq!(a.flags(), 1);
        assert!(a.traceparent().ends_with("-01"));
        let mut draws = [0u8, 0, 7, 9].into_iter();
        assert_eq!(nonzero(|| draws.next().unwrap_or(1)), 7);
    }
}
