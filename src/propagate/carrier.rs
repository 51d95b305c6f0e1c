//! The carriers corrlog reads and writes: the [`Injector`] and
//! [`Extractor`] traits and their implementations for the usual header
//! types.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::context::{TRACEPARENT, TRACESTATE, X_REQUEST_ID};

/// A carrier corrlog can write keys into: a message's headers.
///
/// Implemented for `HashMap<String, String>`, `BTreeMap<String, String>`,
/// `Vec<(String, String)>` and `http::HeaderMap`; implement it for your
/// client's header type.
///
/// ```
/// struct KafkaHeaders(Vec<(String, Vec<u8>)>);
///
/// impl corrlog::propagate::Injector for KafkaHeaders {
///     fn set(&mut self, key: &str, value: &str) {
///         self.remove(key);
///         self.0.push((key.to_owned(), value.as_bytes().to_vec()));
///     }
///     fn remove(&mut self, key: &str) {
///         self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
///     }
/// }
/// ```
pub trait Injector {
    /// Sets `key` (lowercase) to `value`, replacing any value it had under
    /// that key in any case.
    fn set(&mut self, key: &str, value: &str);

    /// Removes `key`, in any case: a value it had would be stale (a
    /// `tracestate` from another trace).
    fn remove(&mut self, key: &str);
}

/// A carrier corrlog can read keys from: a message's headers.
///
/// Implemented for `HashMap<String, String>`, `BTreeMap<String, String>`,
/// `[(String, String)]`, `Vec<(String, String)>` and `http::HeaderMap`;
/// implement it for your client's header type.
///
/// ```
/// struct KafkaHeaders(Vec<(String, Vec<u8>)>);
///
/// impl corrlog::propagate::Extractor for KafkaHeaders {
///     fn get_all(&self, key: &str) -> Vec<&str> {
///         self.0
///             .iter()
///             .filter(|(k, _)| k.eq_ignore_ascii_case(key))
///             // A value that is not UTF-8 still counts, as one nothing accepts.
///             .map(|(_, v)| std::str::from_utf8(v).unwrap_or("\u{fffd}"))
///             .collect()
///     }
/// }
/// ```
pub trait Extractor {
    /// Every value of `key` (lowercase), stored in any case, in the
    /// carrier's order (a hash map has none of its own). All of them, so
    /// that a duplicated id or `traceparent` is refused and every
    /// `tracestate` joined, as over HTTP.
    ///
    /// ```
    /// use corrlog::propagate::Extractor;
    ///
    /// let pairs = vec![
    ///     ("x-request-id".to_owned(), "a".to_owned()),
    ///     ("X-Request-Id".to_owned(), "b".to_owned()),
    /// ];
    /// assert_eq!(pairs.get_all("x-request-id"), ["a", "b"]);
    /// ```
    fn get_all(&self, key: &str) -> Vec<&str>;
}

impl<S: BuildHasher> Injector for HashMap<String, String, S> {
    fn set(&mut self, key: &str, value: &str) {
        Injector::remove(self, key);
        self.insert(key.to_owned(), value.to_owned());
    }

    fn remove(&mut self, key: &str) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(key));
    }
}

impl<S: BuildHasher> Extractor for HashMap<String, String, S> {
    fn get_all(&self, key: &str) -> Vec<&str> {
        all_ignoring_case(self.iter(), key)
    }
}

impl Injector for BTreeMap<String, String> {
    fn set(&mut self, key: &str, value: &str) {
        Injector::remove(self, key);
        self.insert(key.to_owned(), value.to_owned());
    }

    fn remove(&mut self, key: &str) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(key));
    }
}

impl Extractor for BTreeMap<String, String> {
    fn get_all(&self, key: &str) -> Vec<&str> {
        all_ignoring_case(self.iter(), key)
    }
}

impl Injector for Vec<(String, String)> {
    fn set(&mut self, key: &str, value: &str) {
        Injector::remove(self, key);
        self.push((key.to_owned(), value.to_owned()));
    }

    fn remove(&mut self, key: &str) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }
}

impl Extractor for [(String, String)] {
    fn get_all(&self, key: &str) -> Vec<&str> {
        all_ignoring_case(self.iter().map(|(k, v)| (k, v)), key)
    }
}

impl Extractor for Vec<(String, String)> {
    fn get_all(&self, key: &str) -> Vec<&str> {
        Extractor::get_all(self.as_slice(), key)
    }
}

/// Header names are case-insensitive already; a key or value that is not
/// a valid header is skipped (corrlog's never are).
impl Injector for HeaderMap {
    fn set(&mut self, key: &str, value: &str) {
        if let (Some(name), Ok(value)) = (header_name(key), HeaderValue::from_str(value)) {
            self.insert(name, value);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(name) = header_name(key) {
            HeaderMap::remove(self, name);
        }
    }
}

/// The header named `key`: corrlog's own names without parsing or
/// allocating.
fn header_name(key: &str) -> Option<HeaderName> {
    match key {
        "x-request-id" => Some(X_REQUEST_ID),
        "traceparent" => Some(TRACEPARENT),
        "tracestate" => Some(TRACESTATE),
        _ => HeaderName::from_bytes(key.as_bytes()).ok(),
    }
}

impl Extractor for HeaderMap {
    /// A value that is not visible ASCII still counts, as a value nothing
    /// accepts.
    fn get_all(&self, key: &str) -> Vec<&str> {
        HeaderMap::get_all(self, key)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
            .collect()
    }
}

fn all_ignoring_case<'a>(
    entries: impl Iterator<Item = (&'a String, &'a String)>,
    key: &str,
) -> Vec<&'a str> {
    entries
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
        .collect()
}
