//! Request ids: the validated [`RequestId`] type and the generators
//! ([`MakeRequestId`]) used when an incoming id cannot be trusted (the
//! rule for that is [`IdPolicy`](crate::http::IdPolicy)).

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest id accepted by the default policy, in bytes.
pub const DEFAULT_MAX_LEN: usize = 128;

/// A validated request id: cheap to clone (a reference count), always
/// printable ASCII without quotes, backslashes or spaces under the default
/// policy.
///
/// Obtain one with [`RequestId::generate`], [`IdPolicy::parse`](crate::http::IdPolicy::parse), or inside a
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

    /// The id as a header value sharing the id's memory: one allocation,
    /// and clones of it (the request's header, the response's) are
    /// reference counts, not copies.
    pub(crate) fn header_value(&self) -> Option<http::HeaderValue> {
        http::HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(IdBytes(self.0.clone()))).ok()
    }

    /// Builds an id from a string the caller vouches for, checked with the
    /// default policy.
    ///
    /// # Errors
    ///
    /// Returns [`InvalidRequestId`] when the value does not pass
    /// the default [`IdPolicy`](crate::http::IdPolicy).
    ///
    /// ```
    /// use corrlog::RequestId;
    ///
    /// assert!(RequestId::new("order-42").is_ok());
    /// assert!(RequestId::new("has space").is_err());
    /// ```
    pub fn new(value: &str) -> Result<Self, InvalidRequestId> {
        if is_default_id(value.as_bytes(), DEFAULT_MAX_LEN) {
            Ok(RequestId::from_validated(value))
        } else {
            Err(InvalidRequestId { _priv: () })
        }
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

/// Whether `value` passes the default acceptance rule: 1 to
/// [`DEFAULT_MAX_LEN`] bytes of `[A-Za-z0-9._:/+=@-]`.
pub(crate) fn is_default_id(value: &[u8], max_len: usize) -> bool {
    !value.is_empty()
        && value.len() <= max_len
        && value.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b':' | b'/' | b'+' | b'=' | b'@' | b'-')
        })
}

/// Makes new request ids when an incoming one is missing or rejected.
///
/// Implemented by [`UuidV4`] (the default), [`UuidV7`], and any
/// `Fn() -> RequestId` closure.
///
/// ```
/// use corrlog::context::{MakeRequestId, UuidV7};
/// use corrlog::RequestId;
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

/// An id's text as bytes, for [`RequestId::header_value`].
struct IdBytes(Arc<str>);

impl AsRef<[u8]> for IdBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_canonical() {
        let v4 = RequestId::generate();
        let s = v4.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(s
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(is_default_id(s.as_bytes(), DEFAULT_MAX_LEN));
        let v7 = UuidV7.make_request_id();
        assert_eq!(&v7.as_str()[14..15], "7");
        assert_ne!(RequestId::generate(), RequestId::generate());
    }

    #[test]
    fn ids_show_as_their_text() {
        let id = RequestId::new("req-1").unwrap();
        assert_eq!(format!("{id:?}"), r#"RequestId("req-1")"#);
        assert_eq!(id.as_ref(), "req-1");
        assert_eq!(id.to_string(), "req-1");
    }

    #[test]
    fn new_checks_the_default_rule() {
        assert_eq!(RequestId::new("order-42").unwrap().as_str(), "order-42");
        assert!(RequestId::new("").is_err());
        assert!(RequestId::new("a b").is_err());
        assert!(RequestId::new(&"a".repeat(128)).is_ok());
        assert!(RequestId::new(&"a".repeat(129)).is_err());
        let err = RequestId::new("x\r\n").unwrap_err();
        assert!(err.to_string().contains("RequestId::generate"), "{err}");
    }
}
