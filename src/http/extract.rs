//! `RequestId` as an axum extractor (feature `axum`).
//!
//! ```
//! use axum::{routing::get, Router};
//! use corrlog::RequestId;
//!
//! async fn required(id: RequestId) -> String {
//!     id.to_string()
//! }
//!
//! async fn optional(id: Option<RequestId>) -> String {
//!     id.map(|id| id.to_string()).unwrap_or_default()
//! }
//!
//! let app: Router = Router::new()
//!     .route("/a", get(required))
//!     .route("/b", get(optional))
//!     .layer(corrlog::RequestLayer::new());
//! ```

use std::convert::Infallible;
use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::context::RequestId;

/// Rejection for the [`RequestId`] extractor when no
/// [`RequestLayer`](crate::RequestLayer) ran before the handler. Responds
/// with `500 Internal Server Error`: it is a server set-up mistake.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MissingRequestId;

impl fmt::Display for MissingRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no request id in the request extensions: add corrlog::RequestLayer \
             to the router with .layer(), outside the routes that extract RequestId",
        )
    }
}

impl std::error::Error for MissingRequestId {}

impl IntoResponse for MissingRequestId {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = MissingRequestId;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .ok_or(MissingRequestId)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<RequestId>().cloned())
    }
}
