//! The request id as an actix-web extractor.

use std::fmt;
use std::future::{ready, Ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError};

/// The current request's id, as a handler argument. Needs
/// [`RequestMiddleware`](crate::RequestMiddleware) on the app; without it
/// the request fails with [`MissingRequestId`] (a 500 naming the fix).
/// Derefs to [`corrlog::RequestId`]; [`corrlog::request_id`] gives the same
/// anywhere in the request's code.
///
/// ```
/// use actix_web::{web, App};
/// use corrlog_actix::{RequestId, RequestMiddleware};
///
/// async fn handler(id: RequestId) -> String {
///     format!("your request id is {id}")
/// }
///
/// let app = App::new()
///     .wrap(RequestMiddleware::new())
///     .route("/", web::get().to(handler));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub corrlog::RequestId);

impl RequestId {
    /// The id itself.
    pub fn into_inner(self) -> corrlog::RequestId {
        self.0
    }
}

impl Deref for RequestId {
    type Target = corrlog::RequestId;

    fn deref(&self) -> &corrlog::RequestId {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The [`RequestId`] extractor was used on a request that did not pass
/// through [`RequestMiddleware`](crate::RequestMiddleware). Answers 500.
#[derive(Debug)]
#[non_exhaustive]
pub struct MissingRequestId;

impl fmt::Display for MissingRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no request id: wrap the app in corrlog_actix::RequestMiddleware \
             (App::new().wrap(RequestMiddleware::new())) before extracting RequestId",
        )
    }
}

impl std::error::Error for MissingRequestId {}

impl ResponseError for MissingRequestId {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl FromRequest for RequestId {
    type Error = MissingRequestId;
    type Future = Ready<Result<RequestId, MissingRequestId>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<corrlog::RequestId>()
                .cloned()
                .map(RequestId)
                .ok_or(MissingRequestId),
        )
    }
}
