//! actix-web's request and header types (on `http` 0.2) to and from the
//! `http` 1 types corrlog's core works with.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, HeaderValue};

/// The request head corrlog reads: method, path and query, headers, and
/// the peer's address (for `client_ip`). The body stays with actix.
pub(crate) fn request_head(req: &ServiceRequest) -> http::Request<()> {
    let mut head = http::Request::new(());
    if let Ok(method) = http::Method::from_bytes(req.method().as_str().as_bytes()) {
        *head.method_mut() = method;
    }
    // actix parsed the target already; a path it accepted is one `http`
    // accepts too. Only an absolute-form target carries more than the path
    // and query, which is all the access line shows.
    if let Some(uri) = req
        .uri()
        .path_and_query()
        .and_then(|pq| http::Uri::try_from(pq.as_str()).ok())
    {
        *head.uri_mut() = uri;
    }
    let headers = head.headers_mut();
    headers.reserve(req.headers().len());
    for (name, value) in req.headers() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    if let Some(peer) = req.peer_addr() {
        head.extensions_mut().insert(peer);
    }
    head
}

/// A header name as actix spells it. corrlog's names are valid `http`
/// names, so they are valid here; `None` never happens in practice.
pub(crate) fn name(name: &http::HeaderName) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_str().as_bytes()).ok()
}

/// A header value as actix spells it.
pub(crate) fn value(value: &http::HeaderValue) -> Option<HeaderValue> {
    HeaderValue::from_bytes(value.as_bytes()).ok()
}
