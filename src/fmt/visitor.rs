//! The `tracing` field visitor: writes an event's or a span's fields as
//! key/value pairs in the line's style, applying the redaction policy.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

use super::escape::{escape_bounded, write_debug, write_display, EscapingWriter};
use super::json::{write_bool, write_f64, write_i64, write_u64};
use super::line::{write_mask, Style};
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
    /// Writes the key; returns how to write the value, or `None` to skip.
    fn key(&mut self, field: &Field) -> Option<Verdict> {
        if self.skip_log_fields && field.name().starts_with("log.") {
            return None;
        }
        self.keys.push(field.name());
        self.style.key(self.fields, field.name());
        let verdict = cached_verdict(self.policy, field.name());
        if verdict == Verdict::Secret {
            write_mask(self.fields);
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
