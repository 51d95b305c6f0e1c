//! The axum demo's routes. The integration tests include this file, so
//! they drive the very code the demo runs; nothing here is there for them
//! alone. The handlers are thin: the order service behind them is
//! `orders.rs`, shared with the actix-web demo.

#[path = "orders.rs"]
mod orders;

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use corrlog::RequestId;

pub(crate) use self::orders::{AppConfig, Downstream};
use self::orders::{Outcome, Ticks};

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
    Json(orders::index())
}

async fn order(
    State(config): State<AppConfig>,
    State(downstream): State<Option<Downstream>>,
    Path(order_id): Path<String>,
    request_id: RequestId,
) -> Response {
    let outcome = orders::get_order(
        config,
        downstream.as_ref(),
        order_id,
        request_id.to_string(),
    )
    .await;
    match outcome {
        Outcome::Found(order) => Json(order).into_response(),
        Outcome::Unavailable(text) => (StatusCode::SERVICE_UNAVAILABLE, text).into_response(),
    }
}

async fn stream(State(config): State<AppConfig>, Path(chunks): Path<u32>) -> Body {
    Body::new(TickBody(Ticks::new(config, chunks)))
}

/// [`Ticks`] as an HTTP body.
struct TickBody(Ticks);

impl http_body::Body for TickBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_chunk(cx)
            .map(|chunk| chunk.map(|data| Ok(http_body::Frame::data(data))))
    }
}

async fn boom() -> &'static str {
    orders::boom()
}
