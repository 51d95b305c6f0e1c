//! The rule for trusting an incoming request id.
//!
//! By default an incoming id is accepted when it is 1 to 128 bytes of
//! `[A-Za-z0-9._:/+=@-]`. That admits every id format real gateways send:
//! nginx `$request_id` (32 hex), UUIDs of any version and case, ULIDs,
//! Cloudflare `cf-ray` (`<16hex>-<IATA>`), AWS ALB `Root=1-<8hex>-<24hex>`,
//! Heroku's base64-like ids and HAProxy-style ids with `_`.
//!
//! Anything else (empty, too long, spaces, quotes, control bytes,
//! non-ASCII, invalid UTF-8) is **replaced** by a freshly generated id. It is
//! never truncated or "cleaned", and the rejected raw value is never logged
//! or echoed.

use std::fmt;
use std::sync::Arc;

use crate::context::id::{is_default_id, DEFAULT_MAX_LEN};
use crate::context::RequestId;

/// A custom acceptance rule over the raw header bytes.
type IdRule = dyn Fn(&[u8]) -> bool + Send + Sync;

/// Decides which incoming values are trusted as request ids. See the
/// [module docs](crate::http) for where it applies.
///
/// By default an incoming id is accepted when it is 1 to
/// [`DEFAULT_MAX_LEN`] bytes of `[A-Za-z0-9._:/+=@-]`: nginx ids, UUIDs of
/// any version and case, ULIDs, `cf-ray`, AWS ALB `Root=1-...`, Heroku and
/// HAProxy ids all pass unchanged. Anything else is **replaced** by a new
/// id, never truncated or cleaned, and the rejected value is never logged
/// or echoed.
///
/// ```
/// use corrlog::http::IdPolicy;
///
/// let policy = IdPolicy::default();
/// assert!(policy.accepts(b"550e8400-e29b-41d4-a716-446655440000"));
/// assert!(policy.accepts(b"Root=1-67891233-abcdef012345678912345678"));
/// assert!(!policy.accepts(b"abc\r\nInjected: yes"));
/// assert!(!policy.accepts(b""));
/// ```
///
/// The default accepts 1 to [`DEFAULT_MAX_LEN`] bytes of
/// `[A-Za-z0-9._:/+=@-]`. A custom rule can be plugged in with
/// [`IdPolicy::custom`]; whatever it accepts must still be visible ASCII
/// without `"` or `\`, so that an id can never break a header or a log line.
///
/// ```
/// use corrlog::http::IdPolicy;
///
/// // Only accept UUIDs.
/// let uuid_only = IdPolicy::custom(|v| v.len() == 36 && v.iter().filter(|&&b| b == b'-').count() == 4);
/// assert!(uuid_only.accepts(b"550e8400-e29b-41d4-a716-446655440000"));
/// assert!(!uuid_only.accepts(b"0123456789abcdef0123456789abcdef"));
///
/// let short = IdPolicy::default().max_len(32);
/// assert!(!short.accepts(&[b'a'; 33]));
/// ```
#[derive(Clone)]
pub struct IdPolicy {
    max_len: usize,
    custom: Option<Arc<IdRule>>,
}

impl Default for IdPolicy {
    fn default() -> Self {
        IdPolicy {
            max_len: DEFAULT_MAX_LEN,
            custom: None,
        }
    }
}

impl fmt::Debug for IdPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdPolicy")
            .field("max_len", &self.max_len)
            .field("custom", &self.custom.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

/// The floor every accepted id must meet, whatever the custom rule says:
/// visible ASCII without quote or backslash.
fn is_safe_id_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b'\\'
}

impl IdPolicy {
    /// Sets the longest accepted id, in bytes. Defaults to
    /// [`DEFAULT_MAX_LEN`] (128).
    ///
    /// ```
    /// let policy = corrlog::http::IdPolicy::default().max_len(64);
    /// assert!(!policy.accepts(&[b'a'; 65]));
    /// ```
    #[must_use]
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// A policy with a rule of your own. The rule sees the raw header bytes.
    ///
    /// The length bound ([`IdPolicy::max_len`]) and the safety floor
    /// (visible ASCII, no `"` or `\`) still apply on top of the rule.
    pub fn custom<F>(rule: F) -> Self
    where
        F: Fn(&[u8]) -> bool + Send + Sync + 'static,
    {
        IdPolicy {
            max_len: DEFAULT_MAX_LEN,
            custom: Some(Arc::new(rule)),
        }
    }

    /// Whether `value` would be accepted as a request id.
    pub fn accepts(&self, value: &[u8]) -> bool {
        match &self.custom {
            None => is_default_id(value, self.max_len),
            Some(rule) => {
                !value.is_empty()
                    && value.len() <= self.max_len
                    && value.iter().all(|&b| is_safe_id_byte(b))
                    && rule(value)
            }
        }
    }

    /// Returns the value as a [`RequestId`] if it is accepted.
    ///
    /// ```
    /// let policy = corrlog::http::IdPolicy::default();
    /// assert_eq!(policy.parse(b"req-1").unwrap().as_str(), "req-1");
    /// assert!(policy.parse(b"bad id").is_none());
    /// ```
    pub fn parse(&self, value: &[u8]) -> Option<RequestId> {
        if !self.accepts(value) {
            return None;
        }
        // Accepted values are ASCII, so this cannot fail; stay total anyway.
        std::str::from_utf8(value)
            .ok()
            .map(RequestId::from_validated)
    }
}

/// Why an incoming id was not taken from a key that came.
pub(crate) const SENT_TWICE: &str = "sent more than once";
/// Why an incoming id was not taken from a key that came.
pub(crate) const NOT_VALID: &str = "not a valid request id";

impl IdPolicy {
    /// The id in one key's values, as every carrier reads it, HTTP
    /// headers included: exactly one value, which the policy accepts.
    /// `Err(None)` when the key did not come; `Err(Some(reason))` when it
    /// came and was refused.
    pub(crate) fn sole<T: AsRef<[u8]>>(
        &self,
        mut values: impl Iterator<Item = T>,
    ) -> Result<(RequestId, T), Option<&'static str>> {
        let first = values.next().ok_or(None)?;
        if values.next().is_some() {
            return Err(Some(SENT_TWICE));
        }
        match self.parse(first.as_ref()) {
            Some(id) => Ok((id, first)),
            None => Err(Some(NOT_VALID)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_formats_are_accepted() {
        let p = IdPolicy::default();
        for ok in [
            "0123456789abcdef0123456789abcdef",
            "550e8400-e29b-41d4-a716-446655440000",
            "550E8400-E29B-41D4-A716-446655440000",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "8f3c2b1a0d9e8f7a-CDG",
            "Root=1-67891233-abcdef012345678912345678",
            "aGVsbG8gd29ybGQ+/=-abc",
            "haproxy_0A1B_2C3D",
            "a",
        ] {
            assert!(p.accepts(ok.as_bytes()), "{ok}");
        }
    }

    #[test]
    fn hostile_values_are_rejected() {
        let p = IdPolicy::default();
        let long = "a".repeat(129);
        for bad in [
            "",
            " ",
            "a b",
            "a\"b",
            "a\\b",
            "a\r\nb",
            "a\0",
            "é",
            long.as_str(),
        ] {
            assert!(!p.accepts(bad.as_bytes()), "{bad:?}");
        }
        assert!(!p.accepts(&[0xff, 0xfe]));
    }

    #[test]
    fn custom_rule_keeps_safety_floor() {
        let anything = IdPolicy::custom(|_| true);
        assert!(anything.accepts(b"a!b"));
        assert!(!anything.accepts(b"a b"));
        assert!(!anything.accepts(b"a\"b"));
        assert!(!anything.accepts(&[b'x'; 129]));
    }

    #[test]
    fn max_len_bounds_the_id_and_shows_in_debug() {
        let short = IdPolicy::default().max_len(8);
        assert!(short.accepts(b"12345678"));
        assert!(!short.accepts(b"123456789"));
        let custom = IdPolicy::custom(|_| true).max_len(4);
        assert!(!custom.accepts(b"12345"));
        let text = format!("{short:?}");
        assert!(text.contains("max_len: 8"), "{text}");
        assert!(format!("{custom:?}").contains("<fn>"));
    }
}
