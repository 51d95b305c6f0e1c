//! [`PropagateHeaders`]: a `reqwest-middleware` middleware (feature
//! `reqwest`).

use std::future::Future;
use std::pin::Pin;

use http::Extensions;
use reqwest_middleware::{Middleware, Next, Result};

use super::inject_from;
use crate::context::RequestContext;

/// A `reqwest_middleware` middleware that adds the current request's
/// id and `traceparent` to every outgoing request (feature `reqwest`).
///
/// ```
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(corrlog::propagate::PropagateHeaders)
///     .build();
/// # drop(client);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateHeaders;

impl Middleware for PropagateHeaders {
    fn handle<'a, 'b, 'c, 'd>(
        &'a self,
        mut req: reqwest::Request,
        extensions: &'b mut Extensions,
        next: Next<'c>,
    ) -> Pin<Box<dyn Future<Output = Result<reqwest::Response>> + Send + 'd>>
    where
        'a: 'd,
        'b: 'd,
        'c: 'd,
        Self: 'd,
    {
        // Read the context now, on the caller's task.
        if let Some(ctx) = RequestContext::current() {
            inject_from(&ctx, req.headers_mut());
        }
        Box::pin(next.run(req, extensions))
    }
}
