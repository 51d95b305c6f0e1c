//! The redaction policy: which fields, URL parts and headers are masked,
//! and the cap on a value's size. Documented with the line schema in
//! [`crate::fmt`].

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::HeaderName;

/// What a masked value is written as.
pub const MASK: &str = "[REDACTED]";

/// The default cap on one string value, in bytes.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 * 1024;

const DEFAULT_FIELD_MARKERS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "session_id",
    "sessionid",
    "credential",
    "private_key",
];

const DEFAULT_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "key",
    "code",
    "session_id",
];

const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
];

const URL_KEYS: &[&str] = &[
    "url", "uri", "path", "href", "referer", "referrer", "location", "endpoint",
];

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The redaction policy a [`LogLayer`](crate::LogLayer) applies to every
/// field it writes. See [`crate::fmt`] for the rules.
///
/// ```
/// use corrlog::fmt::Redaction;
///
/// let policy = Redaction::default()
///     .mask_fields_containing(["ssn"])
///     .mask_query_params(["invite"])
///     .mask_headers([http::HeaderName::from_static("x-vault-token")])
///     .max_value_bytes(4096);
/// assert!(policy.is_secret_field("customer_ssn"));
/// ```
#[derive(Clone)]
pub struct Redaction {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    /// Distinguishes policies in per-thread verdict caches.
    id: u64,
    field_markers: Vec<String>,
    query_params: Vec<String>,
    extra_headers: Vec<HeaderName>,
    max_value_bytes: usize,
}

impl fmt::Debug for Redaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redaction")
            .field("field_markers", &self.inner.field_markers)
            .field("query_params", &self.inner.query_params)
            .field("extra_headers", &self.inner.extra_headers)
            .field("max_value_bytes", &self.inner.max_value_bytes)
            .finish()
    }
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                field_markers: DEFAULT_FIELD_MARKERS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                query_params: DEFAULT_QUERY_PARAMS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                extra_headers: Vec::new(),
                max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            }),
        }
    }
}

fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

impl Redaction {
    fn inner_mut(&mut self) -> &mut Inner {
        let inner = Arc::make_mut(&mut self.inner);
        inner.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        inner
    }

    /// Adds name markers: a field whose name contains one is masked.
    #[must_use]
    pub fn mask_fields_containing(
        mut self,
        markers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Self {
        let inner = self.inner_mut();
        inner
            .field_markers
            .extend(markers.into_iter().map(|m| normalize(m.as_ref())));
        self
    }

    /// Replaces the list of name markers (see the module docs for the
    /// default list).
    #[must_use]
    pub fn field_markers(mut self, markers: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.inner_mut().field_markers =
            markers.into_iter().map(|m| normalize(m.as_ref())).collect();
        self
    }

    /// Adds query parameters to mask in URLs.
    #[must_use]
    pub fn mask_query_params(mut self, params: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.inner_mut()
            .query_params
            .extend(params.into_iter().map(|p| p.as_ref().to_ascii_lowercase()));
        self
    }

    /// Adds headers to always mask in the access log.
    #[must_use]
    pub fn mask_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.inner_mut().extra_headers.extend(headers);
        self
    }

    /// The cap on one string value, in bytes. Defaults to
    /// [`DEFAULT_MAX_VALUE_BYTES`] (16 KiB).
    #[must_use]
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.inner_mut().max_value_bytes = bytes.max(16);
        self
    }

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.inner.max_value_bytes
    }

    /// Whether a field with this name is masked.
    pub fn is_secret_field(&self, name: &str) -> bool {
        self.inner
            .field_markers
            .iter()
            .any(|m| contains_normalized(name.as_bytes(), m.as_bytes()))
    }

    /// Whether a field with this name holds a URL to clean.
    pub fn is_url_field(&self, name: &str) -> bool {
        let n = name.as_bytes();
        URL_KEYS
            .iter()
            .any(|k| n.len() == k.len() && contains_normalized(n, k.as_bytes()))
            || ends_with_normalized(n, b"_url")
            || ends_with_normalized(n, b"_uri")
    }

    /// How a field with this name is written.
    pub(crate) fn verdict(&self, name: &str) -> Verdict {
        if self.is_secret_field(name) {
            Verdict::Secret
        } else if self.is_url_field(name) {
            Verdict::Url
        } else {
            Verdict::Plain
        }
    }

    /// Whether a header's value is always masked.
    pub fn is_secret_header(&self, name: &HeaderName) -> bool {
        SENSITIVE_HEADERS.contains(&name.as_str()) || self.inner.extra_headers.contains(name)
    }

    fn is_secret_param(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.inner.query_params.contains(&name)
    }
}

/// How a field is written, decided by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Plain,
    Secret,
    Url,
}

fn fold(b: u8) -> u8 {
    if b == b'-' {
        b'_'
    } else {
        b.to_ascii_lowercase()
    }
}

/// `haystack` contains `needle` (already normalized), ignoring ASCII case
/// and treating `-` as `_`. Allocates nothing.
fn contains_normalized(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.iter().zip(needle).all(|(a, b)| fold(*a) == *b))
}

fn ends_with_normalized(haystack: &[u8], suffix: &[u8]) -> bool {
    haystack.len() >= suffix.len()
        && haystack[haystack.len() - suffix.len()..]
            .iter()
            .zip(suffix)
            .all(|(a, b)| fold(*a) == *b)
}

/// Masks credentials and sensitive query parameters in a URL or a path
/// with a query. Returns the input unchanged (borrowed) when there is
/// nothing to mask.
pub fn redact_url<'a>(policy: &Redaction, url: &'a str) -> Cow<'a, str> {
    let (before_fragment, fragment) = match url.find('#') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let (base, query) = match before_fragment.find('?') {
        Some(i) => (&before_fragment[..i], Some(&before_fragment[i + 1..])),
        None => (before_fragment, None),
    };
    // Nothing to mask without a query or an `@`: the common case of a
    // plain path, with no copy.
    if query.is_none() && !base.contains('@') {
        return Cow::Borrowed(url);
    }
    let mut changed = false;
    let mut out = String::with_capacity(url.len());

    // user:pass@ in the authority.
    match base.find("://") {
        Some(scheme_end) => {
            let authority_start = scheme_end + 3;
            let rest = &base[authority_start..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            match authority.rfind('@') {
                Some(at) => {
                    out.push_str(&base[..authority_start]);
                    out.push_str(MASK);
                    out.push_str(&authority[at..]);
                    out.push_str(&rest[authority_end..]);
                    changed = true;
                }
                None => out.push_str(base),
            }
        }
        None => out.push_str(base),
    }

    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (name, value) = match pair.find('=') {
                Some(eq) => (&pair[..eq], Some(&pair[eq + 1..])),
                None => (pair, None),
            };
            if value.is_some() && policy.is_secret_param(&percent_decode_lossy(name)) {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
                changed = true;
            } else {
                out.push_str(pair);
            }
        }
    }
    out.push_str(fragment);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(url)
    }
}

/// Decodes a form-encoded parameter name (`%XX`, `+` for a space) for
/// comparing it (never for output).
fn percent_decode_lossy(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_field_names_in_any_case() {
        let p = Redaction::default();
        for name in [
            "password",
            "user_password",
            "PASSWORD",
            "Api-Key",
            "access_token",
            "Session_ID",
            "cookie",
            "client_secret",
        ] {
            assert!(p.is_secret_field(name), "{name}");
        }
        for name in ["order_id", "user", "path", "status"] {
            assert!(!p.is_secret_field(name), "{name}");
        }
        let custom = Redaction::default().mask_fields_containing(["ssn"]);
        assert!(custom.is_secret_field("customer_ssn"));
    }

    #[test]
    fn urls_lose_credentials_and_secret_params() {
        let p = Redaction::default();
        assert_eq!(redact_url(&p, "/orders/42?page=2"), "/orders/42?page=2");
        assert!(matches!(
            redact_url(&p, "/orders/42?page=2"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            redact_url(&p, "/cb?code=xyz&state=ok&Token=t&sig=s#frag"),
            "/cb?code=[REDACTED]&state=ok&Token=[REDACTED]&sig=[REDACTED]#frag"
        );
        assert_eq!(
            redact_url(&p, "postgres://app:s3cr3t@db:5432/main"),
            "postgres://[REDACTED]@db:5432/main"
        );
        assert_eq!(redact_url(&p, "/a?%74oken=x"), "/a?%74oken=[REDACTED]");
        assert_eq!(redact_url(&p, "/a?token"), "/a?token");
    }

    #[test]
    fn sensitive_headers_are_recognised() {
        let p = Redaction::default();
        assert!(p.is_secret_header(&HeaderName::from_static("authorization")));
        assert!(p.is_secret_header(&HeaderName::from_static("set-cookie")));
        assert!(!p.is_secret_header(&HeaderName::from_static("accept")));
    }
}
