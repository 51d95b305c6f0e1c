//! The JSON line encoder: string escaping, numbers, timestamps and the
//! `tracing` field visitor, all writing into a reused byte buffer.
//!
//! Every function here appends to a `Vec<u8>` and never fails: whatever the
//! input, the bytes written form valid JSON. Strings are escaped per
//! RFC 8259, and additionally every character that could fool a terminal or
//! a log viewer is written as a `\uXXXX` escape: C0 and C1 controls, DEL,
//! the line and paragraph separators U+2028/U+2029, the bidirectional
//! overrides U+202A..U+202E and U+2066..U+2069, and the byte order mark.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};

use crate::redact::{redact_url, Redaction, Verdict};

/// Keys corrlog writes itself. A user field with one of these names is
/// written as `fields.<name>` instead, so it can never overwrite them.
pub(crate) const RESERVED_KEYS: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "logger",
    "request_id",
    "trace_id",
    "span_id",
];

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes that may start something to escape. Lead bytes 0xC2 (C1
/// controls), 0xE2 (separators, bidi controls) and 0xEF (BOM) are checked
/// further; all other bytes above 0x7F are copied as they are.
const fn escape_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t[0xc2] = true;
    t[0xe2] = true;
    t[0xef] = true;
    t
}
static NEEDS_CHECK: [bool; 256] = escape_table();

fn push_u_escape(out: &mut Vec<u8>, cp: u32) {
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((cp >> shift) & 0xf) as usize]);
    }
}

/// Whether any of the 8 bytes in `w` may need escaping: below 0x20, `"`,
/// `\\`, DEL, or non-ASCII. May say yes wrongly (the byte loop then
/// decides), never no wrongly.
#[inline]
fn chunk_needs_check(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = has_zero(w ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(w ^ (ONES * u64::from(b'\\')));
    let del = has_zero(w ^ (ONES * 0x7f));
    (control | quote | backslash | del | (w & HIGH)) != 0
}

/// Appends the escaped contents of `s`, without the surrounding quotes.
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip plain ASCII eight bytes at a time.
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !chunk_needs_check(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if !NEEDS_CHECK[b as usize] {
            i += 1;
            continue;
        }
        // How many bytes the escaped sequence covers, and what replaces it.
        let (len, cp): (usize, Option<u32>) = match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => (1, None),
            0x00..=0x1f | 0x7f => (1, Some(u32::from(b))),
            0xc2 => match bytes.get(i + 1) {
                Some(&c @ 0x80..=0x9f) => (2, Some(u32::from(c))),
                _ => (0, None),
            },
            0xe2 => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0x80), Some(&c @ 0xa8..=0xae)) => (3, Some(0x2000 + u32::from(c - 0x80))),
                (Some(0x81), Some(&c @ 0xa6..=0xa9)) => (3, Some(0x2040 + u32::from(c - 0x80))),
                _ => (0, None),
            },
            0xef => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0xbb), Some(0xbf)) => (3, Some(0xfeff)),
                _ => (0, None),
            },
            _ => (0, None),
        };
        if len == 0 {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match cp {
            Some(cp) => push_u_escape(out, cp),
            None => out.extend_from_slice(match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                _ => b"\\t",
            }),
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends the escaped contents of at most `max` bytes of `s` (cut on a
/// character boundary), then a truncation note if anything was cut.
pub(crate) fn escape_bounded(out: &mut Vec<u8>, s: &str, max: usize) {
    if s.len() <= max {
        escape_into(out, s);
        return;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    escape_into(out, &s[..cut]);
    truncation_note(out, s.len());
}

fn truncation_note(out: &mut Vec<u8>, total: usize) {
    out.extend_from_slice("…[truncated, ".as_bytes());
    out.extend_from_slice(itoa::Buffer::new().format(total).as_bytes());
    out.extend_from_slice(b" bytes in all]");
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Appends `s` as a quoted JSON string of at most `max` bytes of input.
pub(crate) fn write_str_bounded(out: &mut Vec<u8>, s: &str, max: usize) {
    out.push(b'"');
    escape_bounded(out, s, max);
    out.push(b'"');
}

/// Appends an integer.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends an unsigned integer.
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a float; NaN and the infinities, which JSON lacks, as strings.
pub(crate) fn write_f64(out: &mut Vec<u8>, n: f64) {
    if n.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(n).as_bytes());
    } else if n.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if n > 0.0 {
        out.extend_from_slice(b"\"inf\"");
    } else {
        out.extend_from_slice(b"\"-inf\"");
    }
}

/// Appends `true` or `false`.
pub(crate) fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// Appends `,"key":` for a user field, renaming reserved keys to
/// `fields.<key>`.
pub(crate) fn write_key(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(b",\"");
    if RESERVED_KEYS.contains(&key) {
        out.extend_from_slice(b"fields.");
    }
    escape_into(out, key);
    out.extend_from_slice(b"\":");
}

/// How a line is laid out: one JSON object, or a human-readable console
/// line (`key=value` pairs with JSON values, optionally coloured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Json,
    Pretty { color: bool },
}

pub(crate) const DIM: &[u8] = b"\x1b[2m";
pub(crate) const RESET: &[u8] = b"\x1b[0m";

impl Style {
    /// Starts a user field: `,"key":` or ` key=`.
    pub(crate) fn key(self, out: &mut Vec<u8>, key: &str) {
        match self {
            Style::Json => write_key(out, key),
            Style::Pretty { color } => {
                out.push(b' ');
                if color {
                    out.extend_from_slice(DIM);
                }
                if RESERVED_KEYS.contains(&key) {
                    out.extend_from_slice(b"fields.");
                }
                escape_into(out, key);
                out.push(b'=');
                if color {
                    out.extend_from_slice(RESET);
                }
            }
        }
    }
}

/// A `fmt::Write` that escapes what it is given into a JSON string body,
/// keeping at most `budget` bytes of input and counting the rest.
pub(crate) struct EscapingWriter<'a> {
    out: &'a mut Vec<u8>,
    budget: usize,
    seen: usize,
}

impl<'a> EscapingWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, budget: usize) -> Self {
        EscapingWriter {
            out,
            budget,
            seen: 0,
        }
    }

    /// Adds the truncation note if input was cut.
    pub(crate) fn finish(self) {
        if self.seen > self.budget {
            truncation_note(self.out, self.seen);
        }
    }
}

impl fmt::Write for EscapingWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.budget.saturating_sub(self.seen);
        self.seen += s.len();
        if room >= s.len() {
            escape_into(self.out, s);
        } else if room > 0 {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            escape_into(self.out, &s[..cut]);
        }
        Ok(())
    }
}

/// Appends `value`'s `Debug` output as a quoted JSON string of at most
/// `max` bytes of input. A `Debug` impl that returns an error leaves what
/// it wrote so far: the string stays well formed.
pub(crate) fn write_debug(out: &mut Vec<u8>, value: &dyn fmt::Debug, max: usize) {
    out.push(b'"');
    let mut w = EscapingWriter::new(out, max);
    let _ = write!(w, "{value:?}");
    w.finish();
    out.push(b'"');
}

/// Appends `value`'s `Display` output as a quoted JSON string of at most
/// `max` bytes of input.
pub(crate) fn write_display(out: &mut Vec<u8>, value: &dyn fmt::Display, max: usize) {
    out.push(b'"');
    let mut w = EscapingWriter::new(out, max);
    let _ = write!(w, "{value}");
    w.finish();
    out.push(b'"');
}

/// Writes the fields of one event or span as `,"key":value` pairs into
/// `fields`, and the event's `message` (escaped, unquoted) into `message`,
/// applying the redaction policy.
pub(crate) struct FieldVisitor<'a> {
    /// Where `,"key":value` pairs go.
    pub(crate) fields: &'a mut Vec<u8>,
    /// Where the message goes; `None` for spans, whose `message` field is
    /// an ordinary (renamed) field.
    pub(crate) message: Option<&'a mut Vec<u8>>,
    /// The keys written, for de-duplication against enclosing spans.
    pub(crate) keys: &'a mut Vec<&'static str>,
    /// How keys are written.
    pub(crate) style: Style,
    /// Skip fields named `log.*`: the `log` bridge's metadata, already
    /// used for the logger name.
    pub(crate) skip_log_fields: bool,
    /// Secret fields, URL fields, value size.
    pub(crate) policy: &'a Redaction,
}

/// Field names are `&'static str`: remember each one's verdict per thread
/// (keyed by address and policy), so names are matched once, not per event.
fn cached_verdict(policy: &Redaction, name: &'static str) -> Verdict {
    const SLOTS: usize = 256;
    thread_local! {
        static CACHE: RefCell<[(usize, u64, Verdict); SLOTS]> =
            const { RefCell::new([(0, 0, Verdict::Plain); SLOTS]) };
    }
    let addr = name.as_ptr() as usize;
    let slot = (addr ^ (addr >> 9) ^ name.len()) % SLOTS;
    CACHE
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return policy.verdict(name);
            };
            let (a, id, v) = cache[slot];
            if a == addr && id == policy.id() {
                return v;
            }
            let v = policy.verdict(name);
            cache[slot] = (addr, policy.id(), v);
            v
        })
        .unwrap_or_else(|_| policy.verdict(name))
}

const MASKED: &[u8] = b"\"[REDACTED]\"";

impl FieldVisitor<'_> {
    /// Writes the key; returns how to write the value, or `None` to skip.
    fn key(&mut self, field: &Field) -> Option<Verdict> {
        if self.skip_log_fields && field.name().starts_with("log.") {
            return None;
        }
        self.keys.push(field.name());
        self.style.key(self.fields, field.name());
        let verdict = cached_verdict(self.policy, field.name());
        if verdict == Verdict::Secret {
            self.fields.extend_from_slice(MASKED);
            return None;
        }
        Some(verdict)
    }

    fn text(&mut self, verdict: Verdict, value: &str) {
        let max = self.policy.max_bytes();
        self.fields.push(b'"');
        if verdict == Verdict::Url {
            escape_bounded(self.fields, &redact_url(self.policy, value), max);
        } else {
            escape_bounded(self.fields, value, max);
        }
        self.fields.push(b'"');
    }

    fn message(&mut self, field: &Field, value: &dyn fmt::Debug) -> bool {
        if field.name() != "message" {
            return false;
        }
        let max = self.policy.max_bytes();
        match self.message.as_deref_mut() {
            Some(msg) => {
                let mut w = EscapingWriter::new(msg, max);
                let _ = write!(w, "{value:?}");
                w.finish();
                true
            }
            None => false,
        }
    }
}

macro_rules! scalar {
    ($self:ident, $field:ident, $write:expr) => {
        if $self.key($field).is_some() {
            $write;
        }
    };
}

impl Visit for FieldVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        scalar!(self, field, write_f64(self.fields, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        scalar!(self, field, write_i64(self.fields, value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        scalar!(self, field, write_u64(self.fields, value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        scalar!(
            self,
            field,
            self.fields
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        );
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        scalar!(
            self,
            field,
            self.fields
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        );
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        scalar!(self, field, write_bool(self.fields, value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if let Some(msg) = self.message.as_deref_mut() {
                escape_bounded(msg, value, self.policy.max_bytes());
                return;
            }
        }
        if let Some(verdict) = self.key(field) {
            self.text(verdict, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match self.key(field) {
            Some(Verdict::Url) => self.text(Verdict::Url, &value.to_string()),
            Some(_) => write_display(self.fields, value, self.policy.max_bytes()),
            None => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.message(field, value) {
            return;
        }
        match self.key(field) {
            // A URL must be seen whole to be cleaned: format it first.
            Some(Verdict::Url) => self.text(Verdict::Url, &format!("{value:?}")),
            Some(_) => write_debug(self.fields, value, self.policy.max_bytes()),
            None => {}
        }
    }
}

/// RFC 3339 UTC timestamps with milliseconds, `2026-01-21T10:30:00.123Z`.
/// The date and time up to the second are cached per thread, so most
/// events only format the milliseconds.
#[derive(Debug, Default)]
pub(crate) struct TimestampCache {
    secs: u64,
    prefix: [u8; 19],
    valid: bool,
}

impl TimestampCache {
    /// Appends `now` as a quoted timestamp.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        out.push(b'"');
        self.write_raw(out, now);
        out.push(b'"');
    }

    /// Appends `now` without quotes.
    pub(crate) fn write_raw(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        if !self.valid || secs != self.secs {
            self.prefix = format_secs(secs);
            self.secs = secs;
            self.valid = true;
        }
        let ms = since.subsec_millis();
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&[
            b'.',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
            b'Z',
        ]);
    }
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch (UTC), for file
/// names.
pub(crate) fn compact_utc(secs: u64) -> String {
    let full = format_secs(secs);
    let mut out = String::with_capacity(16);
    for &b in &full {
        if b.is_ascii_digit() || b == b'T' {
            out.push(b as char);
        }
    }
    out.push('Z');
    out
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the Unix epoch (UTC).
fn format_secs(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    let mut b = [0u8; 19];
    let y = y.clamp(0, 9999) as u64;
    let digits = |b: &mut [u8], v: u64| {
        let n = b.len();
        let mut v = v;
        for i in (0..n).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut b[0..4], y);
    b[4] = b'-';
    digits(&mut b[5..7], u64::from(m));
    b[7] = b'-';
    digits(&mut b[8..10], u64::from(d));
    b[10] = b'T';
    digits(&mut b[11..13], hh);
    b[13] = b':';
    digits(&mut b[14..16], mm);
    b[16] = b':';
    digits(&mut b[17..19], ss);
    b
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), by
/// the era-based method: 400-year eras of 146,097 days.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn esc(s: &str) -> String {
        let mut v = Vec::new();
        write_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_json_specials() {
        assert_eq!(esc("a\"b\\c\nd\re\tf"), r#""a\"b\\c\nd\re\tf""#);
        assert_eq!(esc("\u{0}\u{1b}[31m\u{7f}"), r#""\u0000\u001b[31m\u007f""#);
        assert_eq!(esc("é✓"), "\"é✓\"");
    }

    #[test]
    fn specials_are_found_at_every_offset_of_the_fast_path() {
        for special in [
            '"', '\\', '\n', '\u{1}', '\u{7f}', '\u{85}', '\u{2028}', 'é',
        ] {
            for offset in 0..20 {
                let mut s = "a".repeat(offset);
                s.push(special);
                s.push_str("bcdefghijklmnop");
                let json = esc(&s);
                let back: String = serde_json::from_str(&json).unwrap();
                assert_eq!(back, s, "{special:?} at {offset}");
                // Escaped forms of `"` and `\` contain the character itself.
                if !matches!(special, '"' | '\\') {
                    let raw_kept = special == 'é';
                    assert_eq!(
                        json.contains(special),
                        raw_kept,
                        "{special:?} at {offset}: {json}"
                    );
                }
            }
        }
    }

    #[test]
    fn escapes_deceptive_unicode() {
        assert_eq!(esc("\u{85}"), r#""\u0085""#);
        assert_eq!(esc("a\u{2028}b\u{2029}"), r#""a\u2028b\u2029""#);
        assert_eq!(esc("\u{202e}\u{2066}\u{2069}"), r#""\u202e\u2066\u2069""#);
        assert_eq!(esc("\u{feff}x"), r#""\ufeffx""#);
        // Neighbours of the escaped ranges pass through.
        assert_eq!(esc("\u{2027}\u{2030}\u{a0}"), "\"\u{2027}\u{2030}\u{a0}\"");
    }

    #[test]
    fn timestamps_are_rfc3339_millis() {
        let mut c = TimestampCache::default();
        let mut out = Vec::new();
        let t = UNIX_EPOCH + Duration::from_millis(1_768_991_400_123);
        c.write(&mut out, t);
        assert_eq!(out, b"\"2026-01-21T10:30:00.123Z\"");
        out.clear();
        c.write(
            &mut out,
            UNIX_EPOCH + Duration::from_millis(951_782_400_007),
        );
        assert_eq!(out, b"\"2000-02-29T00:00:00.007Z\"");
        out.clear();
        c.write(&mut out, UNIX_EPOCH);
        assert_eq!(out, b"\"1970-01-01T00:00:00.000Z\"");
    }

    #[test]
    fn floats_stay_valid_json() {
        let mut v = Vec::new();
        for f in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            v.clear();
            write_f64(&mut v, f);
            assert!(serde_json::from_slice::<serde_json::Value>(&v).is_ok());
        }
    }

    #[test]
    fn reserved_keys_are_renamed() {
        let mut v = Vec::new();
        write_key(&mut v, "level");
        write_key(&mut v, "user");
        assert_eq!(v, b",\"fields.level\":,\"user\":");
    }
}
