//! corrlog for actix-web: every request gets one id, every line logged
//! while serving it carries that id (handler, spawned tasks, blocking
//! code, the response body), the id goes back as `x-request-id` on every
//! response, and one access line is written per request. The same
//! guarantees, configuration and output as [`corrlog::RequestLayer`] gives
//! axum and tower services: this crate is the glue between actix-web's
//! middleware and corrlog's framework-neutral
//! [`Exchange`](corrlog::http::Exchange).
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use corrlog_actix::{RequestId, RequestMiddleware};
//!
//! async fn handler(id: RequestId) -> String {
//!     tracing::info!("handling"); // {"message":"handling","request_id":"...",...}
//!     format!("your request id is {id}")
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let logging = corrlog::builder().init().expect("logging");
//!     let layer = logging.request_layer();
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(RequestMiddleware::from(layer.clone()))
//!             .route("/", web::get().to(handler))
//!     })
//!     .bind("127.0.0.1:3000")?
//!     .run()
//!     .await?;
//!     logging.shutdown(std::time::Duration::from_secs(5));
//!     Ok(())
//! }
//! ```
//!
//! # What it does
//!
//! See [`RequestMiddleware`]. In short: the id policy, edge mode and W3C
//! trace context of the layer it is made from; the context current on
//! every poll of the handler and of the response body (actix runs each
//! request on one worker thread, but a worker interleaves many requests,
//! so a thread-local id would still mix them); panics caught and answered
//! 500 with the id, with an ERROR line, instead of a dropped connection;
//! the access line with the same fields and reasons as for tower, `route`
//! being actix's match pattern (`/orders/{order_id}`).
//!
//! Calls a handler makes carry the id and `traceparent` with corrlog's
//! helpers as in any service: [`corrlog::propagate::inject`] on any header map,
//! or `corrlog::propagate::PropagateHeaders` on a `reqwest_middleware` client.
//! Inside a request, [`corrlog::request_id`], [`corrlog::bind`],
//! [`corrlog::spawn`] and [`corrlog::spawn_blocking`] work as documented
//! in corrlog.
//!
//! # Order of middleware
//!
//! `wrap` it last, so it is the outermost: then everything inside it,
//! other middleware included, runs in the request's context, and every
//! response passes through it.

mod body;
mod extract;
mod head;
mod middleware;

pub use crate::body::ResponseBody;
pub use crate::extract::{MissingRequestId, RequestId};
pub use crate::middleware::{RequestMiddleware, RequestService, ResponseFuture};
