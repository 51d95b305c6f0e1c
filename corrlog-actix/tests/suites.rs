//! The shared suites (`tests/common/suites.rs` of the corrlog repository,
//! the same functions the axum tests call) against actix-web servers
//! wrapped in `RequestMiddleware`: isolation under load through every layer
//! of the actix demo, streaming bodies, hostile input over raw sockets,
//! keep-alive and pipelining with panics mixed in, and every way a request
//! ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/actix_demo/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "../../tests/common/mod.rs"]
mod common;
mod support;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use common::suites;
use common::TestServer;
use corrlog::RequestLayer;

fn demo(workers: usize, jitter_ms: u64) -> TestServer {
    support::start(workers, RequestLayer::new(), move || {
        app::routes(app::AppConfig { jitter_ms }, None)
    })
}

#[test]
fn ten_thousand_overlapping_requests_through_every_layer_never_mix_ids() {
    suites::every_layer_keeps_its_request_id(&demo(4, 20));
}

#[test]
fn lines_logged_while_streaming_a_body_carry_the_id() {
    suites::streamed_lines_keep_their_request_id(&demo(4, 5));
}

#[test]
fn hostile_request_ids_are_replaced_and_never_echoed_or_logged() {
    suites::hostile_request_ids_are_replaced(&demo(2, 0));
}

#[test]
fn hostile_paths_and_user_agents_stay_inside_their_strings() {
    suites::hostile_paths_and_agents_stay_inside_their_strings(&demo(2, 0));
}

#[test]
fn keep_alive_and_pipelined_sequences_mixing_good_bad_ids_and_panics() {
    suites::good_and_bad_ids_and_panics_on_one_connection(&demo(4, 1));
}

#[test]
fn sequential_requests_on_one_keep_alive_connection_do_not_leak() {
    suites::keep_alive_requests_do_not_leak(&demo(4, 1));
}

#[test]
fn pipelined_requests_do_not_leak() {
    suites::pipelined_requests_do_not_leak(&demo(4, 1));
}

#[test]
fn many_keep_alive_connections_in_parallel() {
    suites::many_keep_alive_connections_in_parallel(&demo(4, 2));
}

/// `chunks` of `part`, then `end`.
struct Chunks<F> {
    sent: bool,
    end: F,
}

impl<F, E> futures_util::Stream for Chunks<F>
where
    F: FnMut() -> Option<Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.sent {
            self.sent = true;
            return Poll::Ready(Some(Ok(Bytes::from_static(b"part"))));
        }
        Poll::Ready((self.end)())
    }
}

/// The routes of [`suites::ENDS_ROUTES`].
fn ends(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/boom",
        web::get().to(|| async { panic!("{}", suites::ENDS_PANIC) as &'static str }),
    )
    .route(
        "/broken",
        web::get().to(|| async {
            HttpResponse::Ok().streaming(Chunks {
                sent: false,
                end: || Some(Err(std::io::Error::other("disk read failed"))),
            })
        }),
    )
    .route(
        "/body-panic",
        web::get().to(|| async {
            HttpResponse::Ok().streaming(Chunks::<_> {
                sent: false,
                end: || -> Option<Result<Bytes, std::io::Error>> {
                    panic!("{}", suites::ENDS_BODY_PANIC)
                },
            })
        }),
    )
    .route(
        "/forever",
        web::get().to(|| async {
            HttpResponse::Ok().streaming(futures_util::stream::repeat_with(|| {
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))
            }))
        }),
    )
    .route(
        "/slow",
        web::get().to(|| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            "late"
        }),
    );
}

#[test]
fn every_way_a_request_ends_gives_exactly_one_line_with_a_reason() {
    let server = support::start(2, RequestLayer::new(), || ends);
    // actix-web runs a handler to its end even when its client has gone.
    suites::every_way_a_request_ends(&server, suites::OnDisconnect::RunsTheHandler);
}
