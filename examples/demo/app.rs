//! The demo service's routes. The integration tests include this file, so
//! they drive the very code the demo runs; nothing here is there for them
//! alone.
//!
//! `GET /orders/{order_id}` walks every layer a real service has: the
//! handler, an async service layer (logger "orders"), a plain sync function
//! on the blocking pool (logger "db"), and a background task (logger
//! "audit"), with awaits in between. Each layer logs (a DEBUG line and an
//! INFO line), and the response reports the request id each layer saw. An
//! order id starting with `fail` gets a 503 once every layer has logged.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use corrlog::RequestId;
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
            .with(corrlog::http::PropagateHeaders)
            .build();
        Downstream {
            base_url: Arc::from(base_url.trim_end_matches('/')),
            client,
        }
    }
}

#[derive(Clone)]
struct AppState {
    config: AppConfig,
    downstream: Option<Downstream>,
}

impl FromRef<AppState> for AppConfig {
    fn from_ref(state: &AppState) -> AppConfig {
        state.config
    }
}

impl FromRef<AppState> for Option<Downstream> {
    fn from_ref(state: &AppState) -> Option<Downstream> {
        state.downstream.clone()
    }
}

/// The demo routes; `GET /orders/{id}` also calls `downstream` when given.
pub(crate) fn routes(config: AppConfig, downstream: Option<Downstream>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/orders/{order_id}", get(order))
        .route("/stream/{chunks}", get(stream))
        .route("/boom", get(boom))
        .with_state(AppState { config, downstream })
}

async fn index() -> Json<serde_json::Value> {
    tracing::info!("request_id is automatically included");
    Json(serde_json::json!({ "status": "ok" }))
}

/// What each layer saw as the current request id.
#[derive(Serialize, Debug, Default)]
pub(crate) struct Seen {
    pub(crate) handler: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) sync: Option<String>,
    pub(crate) background: Option<String>,
}

#[derive(Serialize)]
struct OrderResponse {
    order_id: String,
    request_id: String,
    trace_id: Option<String>,
    seen: Seen,
    #[serde(skip_serializing_if = "Option::is_none")]
    downstream: Option<serde_json::Value>,
}

async fn order(
    State(config): State<AppConfig>,
    State(downstream): State<Option<Downstream>>,
    Path(order_id): Path<String>,
    request_id: RequestId,
) -> Response {
    // Every later line of this request carries order_id.
    corrlog::bind("order_id", order_id.as_str());
    tracing::debug!(order_len = order_id.len(), "order request parsed");
    tracing::info!("fetching order");
    let handler = corrlog::request_id().map(|id| id.to_string());
    pause(config).await;
    let mut seen = orders::get_order(config, order_id.clone()).await;
    seen.handler = handler;
    let downstream = match downstream {
        Some(d) => Some(call_downstream(&d, &order_id).await),
        None => None,
    };
    // An order id starting with "fail" stands for a dependency that is
    // down: every layer has logged, and the answer is a 503 (no ERROR line,
    // no panic). With CORRLOG_BUFFER=debug its DEBUG lines are written.
    if order_id.starts_with("fail") {
        tracing::warn!("order service unavailable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "order service unavailable\n",
        )
            .into_response();
    }
    let trace_id =
        corrlog::RequestContext::current().and_then(|ctx| ctx.trace().map(|t| t.trace_id_hex()));
    Json(OrderResponse {
        order_id,
        request_id: request_id.to_string(),
        trace_id,
        seen,
        downstream,
    })
    .into_response()
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
mod orders {
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

/// A streaming body that logs as each chunk is produced, after the handler
/// has returned: those lines carry the request id too.
async fn stream(State(config): State<AppConfig>, Path(chunks): Path<u32>) -> Body {
    tracing::info!(chunks, "starting stream");
    Body::new(Ticks {
        left: chunks.min(100),
        sleep: None,
        jitter_ms: config.jitter_ms,
    })
}

struct Ticks {
    left: u32,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    jitter_ms: u64,
}

impl http_body::Body for Ticks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
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
        tracing::info!(left = self.left, "streaming chunk");
        let id = corrlog::request_id()
            .map(|id| id.to_string())
            .unwrap_or_default();
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(format!(
            "{id}\n"
        ))))))
    }
}

async fn boom() -> &'static str {
    tracing::debug!("boom handler entered");
    tracing::info!("about to panic");
    panic!("boom: the handler failed");
}
