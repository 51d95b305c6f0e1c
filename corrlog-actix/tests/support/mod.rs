//! actix-web servers for the shared suites (`tests/common` of the corrlog
//! repository): a real `HttpServer` on 127.0.0.1:0 with its own workers,
//! wrapped in [`RequestMiddleware`], logging into a capture.
//!
//! actix starts its worker threads, and their blocking pools, itself, with
//! no hook to give each a subscriber, so these servers log through one
//! process-wide subscriber whose output goes to the capture of the server
//! running now. Servers in one test binary therefore run one at a time.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Mutex, MutexGuard, Once, PoisonError};

use actix_web::web::ServiceConfig;
use actix_web::{App, HttpServer};
use corrlog::fmt::Sink;
use corrlog::testing::TestLogs;
use corrlog::RequestLayer;
use corrlog_actix::RequestMiddleware;
use tracing_subscriber::layer::SubscriberExt;

use crate::common::TestServer;

/// Where the process-wide subscriber's lines go: the running server's
/// capture.
static CURRENT: Mutex<Option<TestLogs>> = Mutex::new(None);
/// One actix server at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct ToCurrent;

impl Sink for ToCurrent {
    fn write_line(&self, line: &[u8]) {
        if let Some(capture) = lock(&CURRENT).as_ref() {
            capture.write_line(line);
        }
    }
}

fn install_subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(corrlog::LogLayer::new(ToCurrent));
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// Starts `workers` actix workers serving `routes()` (called once per
/// worker) behind `RequestMiddleware::from(layer)`.
pub fn start<F, R>(workers: usize, layer: RequestLayer, routes: F) -> TestServer
where
    F: Fn() -> R + Send + Clone + 'static,
    R: FnOnce(&mut ServiceConfig),
{
    install_subscriber();
    let serial = lock(&SERIAL);
    let capture = TestLogs::new();
    *lock(&CURRENT) = Some(capture.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            // Bound by actix, with a backlog for the suites' 1,250
            // simultaneous connections (a listener made by std::net gets
            // 128), and timeouts for a loaded machine: with actix's 5 s, a
            // connection waiting its turn was answered 408, or closed as
            // idle just as the client reused it.
            let server = HttpServer::new(move || {
                App::new()
                    .configure(routes())
                    .wrap(RequestMiddleware::from(layer.clone()))
            })
            .workers(workers)
            .backlog(4096)
            .keep_alive(std::time::Duration::from_secs(120))
            .client_request_timeout(std::time::Duration::from_secs(60))
            .disable_signals()
            .shutdown_timeout(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((server.handle(), addr)).unwrap();
            server.await
        })
    });
    let (handle, addr) = rx.recv().unwrap();
    TestServer::from_parts(addr, capture, move || {
        actix_web::rt::System::new().block_on(handle.stop(true));
        let _ = thread.join();
        *lock(&CURRENT) = None;
        drop(serial);
    })
}
