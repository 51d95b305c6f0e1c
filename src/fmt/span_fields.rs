//! A span's fields, encoded once when the span is created or recorded and
//! copied as bytes into each line of an event inside it: each field's key
//! as the line's format writes it and its value, one slice to copy.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing_subscriber::registry::ExtensionsMut;

use super::line::Style;
use super::redact::Redaction;
use super::visitor::{FieldVisitor, Target};

/// A span's fields, encoded once as `(key, encoded key and json value)`
/// pairs.
///
/// Kept per redaction policy and format: several `LogLayer`s may share one
/// registry (JSON to a file and pretty lines on the console, say), each
/// with its own policy and format, and the span's extensions are shared
/// between them.
#[derive(Default)]
pub(crate) struct SpanFields {
    by_layer: Vec<(u64, Style, SpanEntries)>,
    _live: Live,
}

/// How many [`SpanFields`] exist, process-wide: one per span with fields
/// recorded, until the registry clears the span's extensions when it
/// closes. While there are none, a line inside a request context has no
/// span field to look for, and the line layer skips walking its spans.
///
/// Relaxed is enough: a span is made (and its count taken) before any
/// thread can enter it, and whatever hands a span to another thread orders
/// the two.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// One count in [`LIVE`], given back when dropped.
struct Live;

impl Default for Live {
    fn default() -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether any span, anywhere in the process, has fields recorded now.
pub(crate) fn any_live() -> bool {
    LIVE.load(Ordering::Relaxed) != 0
}

type SpanEntries = Vec<(&'static str, Box<[u8]>)>;

impl SpanFields {
    /// Records `values` as `policy` and `style` write them. Recording a key
    /// again replaces its value, so two layers with the same policy and
    /// format agree.
    fn record(&mut self, values: &Record<'_>, policy: &Redaction, style: Style) {
        let index = match self
            .by_layer
            .iter()
            .position(|(id, s, _)| *id == policy.id() && *s == style)
        {
            Some(index) => index,
            None => {
                self.by_layer.push((policy.id(), style, Vec::new()));
                self.by_layer.len() - 1
            }
        };
        values.record(&mut SpanVisitor {
            entries: &mut self.by_layer[index].2,
            buf: Vec::new(),
            keys: Vec::new(),
            policy,
            style,
        });
    }

    /// Each field's key, and the bytes a line in `style` under `policy`
    /// copies for it: the key as the format writes it, then the value.
    pub(crate) fn entries(&self, policy: &Redaction, style: Style) -> &[(&'static str, Box<[u8]>)] {
        self.by_layer
            .iter()
            .find(|(id, s, _)| *id == policy.id() && *s == style)
            .map_or(&[], |(_, _, entries)| entries.as_slice())
    }
}

/// Records span field values into the span's [`SpanFields`], creating it
/// on first use.
pub(crate) fn record_span(
    ext: &mut ExtensionsMut<'_>,
    values: &Record<'_>,
    policy: &Redaction,
    style: Style,
) {
    match ext.get_mut::<SpanFields>() {
        Some(fields) => fields.record(values, policy, style),
        None => {
            let mut fields = SpanFields::default();
            fields.record(values, policy, style);
            ext.insert(fields);
        }
    }
}

/// Encodes span fields one at a time with the event encoder, keeping each
/// field's key (in the line's format) and JSON value under its name. A key
/// recorded again replaces its value.
struct SpanVisitor<'a> {
    entries: &'a mut Vec<(&'static str, Box<[u8]>)>,
    buf: Vec<u8>,
    keys: Vec<&'static str>,
    policy: &'a Redaction,
    style: Style,
}

impl SpanVisitor<'_> {
    fn put(&mut self, field: &Field, record: impl FnOnce(&mut FieldVisitor<'_>)) {
        self.buf.clear();
        record(&mut FieldVisitor {
            fields: &mut self.buf,
            message: None,
            keys: &mut self.keys,
            // The visitor writes the key in the line's format and the
            // value as JSON: the bytes a line copies.
            style: self.style,
            skip_log_fields: false,
            policy: self.policy,
            special: false,
            nested: None,
            target: Target::default(),
        });
        let value: Box<[u8]> = self.buf.as_slice().into();
        match self.entries.iter_mut().find(|(k, _)| *k == field.name()) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((field.name(), value)),
        }
    }
}

macro_rules! delegate_visit {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(&mut self, field: &Field, value: $ty) {
            self.put(field, |v| v.$method(field, value));
        }
    )*};
}

impl Visit for SpanVisitor<'_> {
    delegate_visit!(
        record_f64: f64,
        record_i64: i64,
        record_u64: u64,
        record_i128: i128,
        record_u128: u128,
        record_bool: bool,
        record_str: &str,
        record_error: &(dyn std::error::Error + 'static),
        record_debug: &dyn fmt::Debug
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_fields_are_counted_while_they_live() {
        // Other tests may hold a few at the same time: count in thousands.
        const N: usize = 10_000;
        let held: Vec<SpanFields> = (0..N).map(|_| SpanFields::default()).collect();
        assert!(any_live());
        assert!(LIVE.load(Ordering::Relaxed) >= N);
        drop(held);
        assert!(LIVE.load(Ordering::Relaxed) < N);
    }
}
