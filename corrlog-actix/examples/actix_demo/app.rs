//! The actix-web demo's routes: the same paths, answers and lines as the
//! axum demo's (`examples/demo/app.rs` in the corrlog repository), over the
//! same order service (`orders.rs`, shared by both). The tests include this
//! file, so they drive the very code the demo runs.

#[path = "../../../examples/demo/orders.rs"]
mod orders;

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use corrlog_actix::RequestId;

pub(crate) use self::orders::{AppConfig, Downstream};
use self::orders::{Outcome, Ticks};

/// The demo routes; `GET /orders/{id}` also calls `downstream` when given.
/// Add them with `App::new().configure(app::routes(config, downstream))`.
pub(crate) fn routes(
    config: AppConfig,
    downstream: Option<Downstream>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(config))
            .app_data(web::Data::new(downstream))
            .route("/", web::get().to(index))
            .route("/orders/{order_id}", web::get().to(order))
            .route("/stream/{chunks}", web::get().to(stream))
            .route("/boom", web::get().to(boom));
    }
}

async fn index() -> HttpResponse {
    HttpResponse::Ok().json(orders::index())
}

async fn order(
    config: web::Data<AppConfig>,
    downstream: web::Data<Option<Downstream>>,
    order_id: web::Path<String>,
    request_id: RequestId,
) -> HttpResponse {
    let outcome = orders::get_order(
        **config,
        downstream.as_ref().as_ref(),
        order_id.into_inner(),
        request_id.to_string(),
    )
    .await;
    match outcome {
        Outcome::Found(order) => HttpResponse::Ok().json(order),
        Outcome::Unavailable(text) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(text),
    }
}

async fn stream(config: web::Data<AppConfig>, chunks: web::Path<u32>) -> HttpResponse {
    HttpResponse::Ok().streaming(TickStream(Ticks::new(**config, chunks.into_inner())))
}

/// [`Ticks`] as a stream of body chunks.
struct TickStream(Ticks);

impl futures_util::Stream for TickStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_chunk(cx).map(|chunk| chunk.map(Ok))
    }
}

async fn boom() -> &'static str {
    orders::boom()
}
