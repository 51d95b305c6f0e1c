//! Request ids: the validated [`RequestId`] type, the policy that decides
//! whether an incoming header value can be trusted ([`IdPolicy`]), and the
//! generators used when it cannot ([`MakeRequestId`]).
//!
//! # Acceptance rule
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
//!
//! ```
//! use corrlog::{IdPolicy, RequestId};
//!
//! let policy = IdPolicy::default();
//! assert!(policy.accepts(b"550e8400-e29b-41d4-a716-446655440000"));
//! assert!(policy.accepts(b"Root=1-67891233-abcdef012345678912345678"));
//! assert!(!policy.accepts(b"abc\r\nInjected: yes"));
//! assert!(!policy.accepts(b""));
//!
//! let id = RequestId::generate();
//! assert_eq!(id.as_str().len(), 36);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest id accepted by the default policy, in bytes.
pub const DEFAULT_MAX_LEN: usize = 128;

/// A validated request id: cheap to clone (a reference count), always
/// printable ASCII without quotes, backslashes or spaces under the default
/// policy.
///
/// Obtain one with [`RequestId::generate`], [`IdPolicy::parse`], or inside a
/// request with [`crate::request_id`].
///
/// ```
/// use corrlog::RequestId;
///
/// let a = RequestId::generate();
/// let b = a.clone(); // no allocation
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), a.as_str());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Generates a new UUID v4 id in the canonical lowercase dashed form.
    ///
    /// Random bits come from a per-thread generator seeded once, so no
    /// system call is made per id.
    pub fn generate() -> Self {
        UuidV4.make_request_id()
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a value that was already validated. Crate-internal: outside
    /// the crate ids come from a policy or a generator.
    pub(crate) fn from_validated(s: &str) -> Self {
        RequestId(Arc::from(s))
    }

    /// Builds an id from a string the caller vouches for, checked with the
    /// default policy.
    ///
    /// # Errors
    ///
    /// Returns [`InvalidRequestId`] when the value does not pass
    /// [`IdPolicy::default`].
    ///
    /// ```
    /// use corrlog::RequestId;
    ///
    /// assert!(RequestId::new("order-42").is_ok());
    /// assert!(RequestId::new("has space").is_err());
    /// ```
    pub fn new(value: &str) -> Result<Self, InvalidRequestId> {
        IdPolicy::default()
            .parse(value.as_bytes())
            .ok_or(InvalidRequestId { _priv: () })
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&&*self.0).finish()
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The error returned by [`RequestId::new`] for a value the default policy
/// rejects. It deliberately does not carry the rejected value, so it can be
/// logged safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequestId {
    _priv: (),
}

impl fmt::Display for InvalidRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "invalid request id: use 1-128 bytes of [A-Za-z0-9._:/+=@-], \
             or generate one with RequestId::generate()",
        )
    }
}

impl std::error::Error for InvalidRequestId {}

/// A custom acceptance rule over the raw header bytes.
type IdRule = dyn Fn(&[u8]) -> bool + Send + Sync;

/// Decides which incoming values are trusted as request ids.
///
/// The default accepts 1 to [`DEFAULT_MAX_LEN`] bytes of
/// `[A-Za-z0-9._:/+=@-]`. A custom rule can be plugged in with
/// [`IdPolicy::custom`]; whatever it accepts must still be visible ASCII
/// without `"` or `\`, so that an id can never break a header or a log line.
///
/// ```
/// use corrlog::IdPolicy;
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

/// Bytes the default policy admits.
fn is_default_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'+' | b'=' | b'@' | b'-')
}

/// The floor every accepted id must meet, whatever the custom rule says:
/// visible ASCII without quote or backslash.
fn is_safe_id_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b'\\'
}

impl IdPolicy {
    /// Sets the longest accepted id, in bytes. Defaults to
    /// [`DEFAULT_MAX_LEN`] (128).
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
        if value.is_empty() || value.len() > self.max_len {
            return false;
        }
        match &self.custom {
            None => value.iter().all(|&b| is_default_id_byte(b)),
            Some(rule) => value.iter().all(|&b| is_safe_id_byte(b)) && rule(value),
        }
    }

    /// Returns the value as a [`RequestId`] if it is accepted.
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

/// Makes new request ids when an incoming one is missing or rejected.
///
/// Implemented by [`UuidV4`] (the default), [`UuidV7`], and any
/// `Fn() -> RequestId` closure.
///
/// ```
/// use corrlog::{MakeRequestId, RequestId, UuidV7};
///
/// let id = UuidV7.make_request_id();
/// assert_eq!(&id.as_str()[14..15], "7");
///
/// let fixed = || RequestId::new("test-id").unwrap();
/// assert_eq!(fixed.make_request_id().as_str(), "test-id");
/// ```
pub trait MakeRequestId: Send + Sync + 'static {
    /// Returns a new id.
    fn make_request_id(&self) -> RequestId;
}

impl<F> MakeRequestId for F
where
    F: Fn() -> RequestId + Send + Sync + 'static,
{
    fn make_request_id(&self) -> RequestId {
        self()
    }
}

/// Random UUID v4 ids, `550e8400-e29b-41d4-a716-446655440000`.
///
/// Uses a fast per-thread generator seeded once (not the OS RNG): ids need
/// to be unique, not secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV4;

/// Time-ordered UUID v7 ids (48-bit millisecond Unix time, then random
/// bits), which sort by creation time in log stores.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fastrand::fill(&mut out);
    out
}

fn uuid_to_id(uuid: uuid::Uuid) -> RequestId {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    RequestId::from_validated(uuid.hyphenated().encode_lower(&mut buf))
}

impl MakeRequestId for UuidV4 {
    fn make_request_id(&self) -> RequestId {
        uuid_to_id(uuid::Builder::from_random_bytes(random_bytes()).into_uuid())
    }
}

impl MakeRequestId for UuidV7 {
    fn make_request_id(&self) -> RequestId {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        uuid_to_id(uuid::Builder::from_unix_timestamp_millis(millis, &random_bytes()).into_uuid())
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
    fn generated_ids_are_canonical() {
        let v4 = RequestId::generate();
        let s = v4.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(s
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(IdPolicy::default().accepts(s.as_bytes()));
        let v7 = UuidV7.make_request_id();
        assert_eq!(&v7.as_str()[14..15], "7");
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
