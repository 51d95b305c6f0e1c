//! The order service behind both demos' handlers: the axum demo
//! (`examples/demo/app.rs`) and the actix-web demo
//! (`corrlog-actix/examples/actix_demo/app.rs`) call the same code, so the
//! two answer and log alike. Nothing here names a web framework: the
//! request id, bound fields and trace ids come from corrlog's context,
//! whichever middleware set it up.
//!
//! `GET /orders/{order_id}` walks every layer a real service has: the
//! handler (logger "api"), an async service layer (logger "orders"), a
//! plain sync function on the blocking pool (logger "db"), and a
//! background task (logger "audit"), with awaits in between. Each layer
//! logs (a DEBUG line and an INFO line), and the response reports the
//! request id each layer saw. An order id starting with `fail` gets a 503
//! once every layer has logged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use reqwest_middleware::ClientWithMiddleware;
use serde::Serialize;

/// Settings for the demo routes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AppConfig {
    /// Upper bound of a random sleep between layers, in milliseconds
    /// (`--jitter-ms`); 0 only yields. Raise it to see concurrent requests
    /// interleave on the worker threads without mixing their ids.
    pub(crate) jitter_ms: u64,
}

/// The service `GET /orders/{id}` calls next, through a client that
/// propagates the request id and `traceparent`.
#[derive(Clone)]
pub(crate) struct Downstream {
    base_url: Arc<str>,
    client: ClientWithMiddleware,
}

impl Downstream {
    pub(crate) fn new(base_url: &str) -> Self {
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(corrlog::propagate::PropagateHeaders)
            .build();
        Downstream {
            base_url: Arc::from(base_url.trim_end_matches('/')),
            client,
        }
    }
}

/// What each layer saw as the current request id.
#[derive(Serialize, Debug, Default)]
pub(crate) struct Seen {
    pub(crate) handler: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) sync: Option<String>,
    pub(crate) background: Option<String>,
}

/// The body of a found order.
#[derive(Serialize)]
pub(crate) struct Order {
    order_id: String,
    request_id: String,
    trace_id: Option<String>,
    seen: Seen,
    #[serde(skip_serializing_if = "Option::is_none")]
    downstream: Option<serde_json::Value>,
}

/// What the handler answers.
pub(crate) enum Outcome {
    Found(Order),
    /// 503, with this text.
    Unavailable(&'static str),
}

/// `GET /orders/{order_id}`, from inside the handler. `request_id` is what
/// the handler's extractor gave it.
pub(crate) async fn get_order(
    config: AppConfig,
    downstream: Option<&Downstream>,
    order_id: String,
    request_id: String,
) -> Outcome {
    // Every later line of this request carries order_id.
    corrlog::bind("order_id", order_id.as_str());
    tracing::debug!(target: "api", order_len = order_id.len(), "order request parsed");
    tracing::info!(target: "api", "fetching order");
    let handler = corrlog::request_id().map(|id| id.to_string());
    pause(config).await;
    let mut seen = service::get_order(config, order_id.clone()).await;
    seen.handler = handler;
    let downstream = match downstream {
        Some(d) => Some(call_downstream(d, &order_id).await),
        None => None,
    };
    // An order id starting with "fail" stands for a dependency that is
    // down: every layer has logged, and the answer is a 503 (no ERROR line,
    // no panic). With CORRLOG_BUFFER=debug its DEBUG lines are written.
    if order_id.starts_with("fail") {
        tracing::warn!(target: "api", "order service unavailable");
        return Outcome::Unavailable("order service unavailable\n");
    }
    let trace_id =
        corrlog::RequestContext::current().and_then(|ctx| ctx.trace().map(|t| t.trace_id_hex()));
    Outcome::Found(Order {
        order_id,
        request_id,
        trace_id,
        seen,
        downstream,
    })
}

/// `GET {downstream}/orders/{id}`; the client adds `x-request-id` and
/// `traceparent` from the current request.
async fn call_downstream(downstream: &Downstream, order_id: &str) -> serde_json::Value {
    let url = format!("{}/orders/{order_id}", downstream.base_url);
    tracing::info!(target: "orders", %url, "calling downstream");
    let result = match downstream.client.get(&url).send().await {
        Ok(res) => res
            .json::<serde_json::Value>()
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(target: "orders", %url, %error, "downstream call failed");
            serde_json::json!({ "error": error })
        }
    }
}

/// The async service layer. Its lines use the logger name "orders".
mod service {
    use super::{db, pause, AppConfig, Seen};

    pub(super) async fn get_order(config: AppConfig, order_id: String) -> Seen {
        tracing::info!(target: "orders", "loading order");
        tracing::debug!(target: "orders", "order cache miss");
        let service = corrlog::request_id().map(|id| id.to_string());
        pause(config).await;

        // A blocking "database call" on tokio's blocking pool.
        let sync = corrlog::spawn_blocking(move || db::fetch_order(&order_id))
            .await
            .unwrap_or(None);
        pause(config).await;

        // A background task, e.g. an audit record.
        let background = corrlog::spawn(async move {
            pause(config).await;
            tracing::debug!(target: "audit", "audit record prepared");
            tracing::info!(target: "audit", "order viewed");
            corrlog::request_id().map(|id| id.to_string())
        })
        .await
        .unwrap_or(None);

        tracing::info!(target: "orders", "order loaded");
        Seen {
            handler: None,
            service,
            sync,
            background,
        }
    }
}

/// Plain synchronous code: no async, no parameters for the id.
mod db {
    pub(super) fn fetch_order(order_id: &str) -> Option<String> {
        tracing::debug!(target: "db", "query plan: index scan on orders_pkey");
        tracing::info!(target: "db", order_len = order_id.len(), "SELECT * FROM orders WHERE id = $1");
        corrlog::request_id().map(|id| id.to_string())
    }
}

async fn pause(config: AppConfig) {
    tokio::task::yield_now().await;
    if config.jitter_ms > 0 {
        let micros = fastrand::u64(0..=config.jitter_ms * 1000);
        tokio::time::sleep(Duration::from_micros(micros)).await;
    }
}

/// `GET /`.
pub(crate) fn index() -> serde_json::Value {
    tracing::info!(target: "api", "request_id is automatically included");
    serde_json::json!({ "status": "ok" })
}

/// `GET /boom`: a handler bug.
pub(crate) fn boom() -> &'static str {
    tracing::debug!(target: "api", "boom handler entered");
    tracing::info!(target: "api", "about to panic");
    panic!("boom: the handler failed");
}

/// The body of `GET /stream/{chunks}`: logs as each chunk is produced,
/// after the handler has returned; those lines carry the request id too.
/// Each chunk is the request id the body saw, and a newline.
pub(crate) struct Ticks {
    left: u32,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    jitter_ms: u64,
}

impl Ticks {
    /// Up to 100 chunks.
    pub(crate) fn new(config: AppConfig, chunks: u32) -> Self {
        tracing::info!(target: "api", chunks, "starting stream");
        Ticks {
            left: chunks.min(100),
            sleep: None,
            jitter_ms: config.jitter_ms,
        }
    }

    /// The next chunk, after a random pause; `None` at the end.
    pub(crate) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let jitter = self.jitter_ms * 1000;
        let sleep = self.sleep.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep(Duration::from_micros(fastrand::u64(
                0..=jitter,
            ))))
        });
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.sleep = None;
        self.left -= 1;
        tracing::info!(target: "api", left = self.left, "streaming chunk");
        let id = corrlog::request_id()
            .map(|id| id.to_string())
            .unwrap_or_default();
        Poll::Ready(Some(Bytes::from(format!("{id}\n"))))
    }
}
