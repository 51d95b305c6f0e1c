//! The `tracing` field visitor: writes an event's or a span's fields as
//! key/value pairs in the line's style, applying the redaction policy.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

use super::escape::{escape_bounded, write_debug, write_display, EscapingWriter};
use super::json::{write_bool, write_f64, write_i64, write_u64};
use super::line::{write_mask, Style, Unit};
use super::redact::{redact_url, Redaction, Verdict};

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
    /// Whether the format's own names apply (access and panic lines).
    pub(crate) special: bool,
    /// Where fields the format nests go (Cloud Logging's `httpRequest`).
    pub(crate) nested: Option<&'a mut Vec<u8>>,
    /// Where the current field goes, and how its value is converted.
    pub(crate) target: Target,
}

/// Where the field being written goes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Target {
    nested: bool,
    unit: Option<Unit>,
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

impl FieldVisitor<'_> {
    /// Where the current field's bytes go.
    fn out(&mut self) -> &mut Vec<u8> {
        match &mut self.nested {
            Some(nested) if self.target.nested => nested,
            _ => self.fields,
        }
    }

    /// Writes the key; returns how to write the value, or `None` to skip.
    fn key(&mut self, field: &Field) -> Option<Verdict> {
        if self.skip_log_fields && field.name().starts_with("log.") {
            return None;
        }
        self.keys.push(field.name());
        let special = if self.special {
            self.style.access_field(field.name())
        } else {
            None
        };
        self.target = Target {
            nested: special.is_some_and(|s| s.nested) && self.nested.is_some(),
            unit: special.map(|s| s.unit),
        };
        let style = self.style;
        match special {
            Some(special) => style.raw_key(self.out(), special.key),
            None => style.key(self.out(), field.name()),
        }
        let verdict = cached_verdict(self.policy, field.name());
        if verdict == Verdict::Secret {
            write_mask(self.out());
            return None;
        }
        Some(verdict)
    }

    fn text(&mut self, verdict: Verdict, value: &str) {
        let policy = self.policy;
        write_text(self.out(), policy, verdict, value);
    }

    /// Writes a number, converted as the format asks.
    fn number(&mut self, value: Number) {
        let unit = self.target.unit;
        write_number(self.out(), unit, value);
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

/// A number as `tracing` recorded it.
#[derive(Clone, Copy)]
pub(crate) enum Number {
    F64(f64),
    I64(i64),
    U64(u64),
}

/// Writes a string field's value: quoted, escaped, cut at the policy's
/// size cap, and cleaned first when it is a URL.
pub(crate) fn write_text(out: &mut Vec<u8>, policy: &Redaction, verdict: Verdict, value: &str) {
    let max = policy.max_bytes();
    let url = (verdict == Verdict::Url).then(|| redact_url(policy, value));
    out.push(b'"');
    escape_bounded(out, url.as_deref().unwrap_or(value), max);
    out.push(b'"');
}

/// Writes a number, converted as the format asks (`unit`, for an access
/// line's field).
pub(crate) fn write_number(out: &mut Vec<u8>, unit: Option<Unit>, value: Number) {
    match (unit, value) {
        (Some(Unit::MsToNanos), Number::F64(ms)) if ms.is_finite() && ms >= 0.0 => {
            write_u64(out, (ms * 1e6).round() as u64);
        }
        (Some(Unit::MsToSeconds), Number::F64(ms)) if ms.is_finite() && ms >= 0.0 => {
            let micros = (ms * 1e3).round() as u64;
            out.push(b'"');
            write_u64(out, micros / 1_000_000);
            let frac = micros % 1_000_000;
            out.push(b'.');
            let digits = itoa::Buffer::new().format(frac).len();
            out.extend(std::iter::repeat_n(b'0', 6 - digits));
            write_u64(out, frac);
            out.extend_from_slice(b"s\"");
        }
        (Some(Unit::Quoted), Number::U64(n)) => {
            out.push(b'"');
            write_u64(out, n);
            out.push(b'"');
        }
        (Some(Unit::Quoted), Number::I64(n)) => {
            out.push(b'"');
            write_i64(out, n);
            out.push(b'"');
        }
        (_, Number::F64(n)) => write_f64(out, n),
        (_, Number::I64(n)) => write_i64(out, n),
        (_, Number::U64(n)) => write_u64(out, n),
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
        scalar!(self, field, self.number(Number::F64(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        scalar!(self, field, self.number(Number::I64(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        scalar!(self, field, self.number(Number::U64(value)));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        scalar!(
            self,
            field,
            self.out()
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        );
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        scalar!(
            self,
            field,
            self.out()
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        );
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        scalar!(self, field, write_bool(self.out(), value));
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
            Some(_) => {
                let max = self.policy.max_bytes();
                write_display(self.out(), value, max);
            }
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
            Some(_) => {
                let max = self.policy.max_bytes();
                write_debug(self.out(), value, max);
            }
            None => {}
        }
    }
}
