//! The corrlog demo service on actix-web: the same routes, flags and
//! output as the axum demo (`cargo run --release --example demo` in the
//! corrlog repository), so the two are interchangeable from outside.
//!
//! ```text
//! cargo run --release -p corrlog-actix --example actix_demo -- --addr 127.0.0.1:3000
//! cargo run --release -p corrlog-actix --example actix_demo -- --addr 127.0.0.1:3001 --downstream http://127.0.0.1:3000
//! curl -i localhost:3000/orders/42
//! curl -i -H 'x-request-id: my-trace-1' localhost:3000/
//! curl -i localhost:3000/stream/3
//! curl -i localhost:3000/boom
//! ```
//!
//! Every line on stdout is one JSON object; all lines of a request share
//! its `request_id`. `RUST_LOG` filters as usual (default `info`);
//! `CORRLOG_FORMAT=pretty` prints human-readable lines instead.

mod app;
#[path = "../../../examples/demo/args.rs"]
mod args;

use std::time::Duration;

use actix_web::{App, HttpServer};
use corrlog::fmt::Service;
use corrlog::http::AccessLog;
use corrlog::{Format, RequestLayer};
use corrlog_actix::RequestMiddleware;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match args::parse("actix_demo") {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };

    // JSON lines on stdout through the writer pipeline, configured as the
    // axum demo's.
    let access = AccessLog::default().trusted_proxies(args.trusted_proxies);
    let logging = corrlog::builder()
        .format(Format::Json)
        .service(Service::new("corrlog-actix-demo").version(env!("CARGO_PKG_VERSION")))
        .request_layer(RequestLayer::new().access_log(access))
        .init();
    let logging = match logging {
        Ok(logging) => logging,
        Err(err) => {
            eprintln!("actix_demo: cannot set up logging: {err}");
            std::process::exit(1);
        }
    };

    let listener = std::net::TcpListener::bind(args.addr)?;
    tracing::info!(
        target: "demo",
        addr = %listener.local_addr()?,
        downstream = args.downstream.as_deref(),
        "listening"
    );
    let downstream = args.downstream.as_deref().map(app::Downstream::new);
    let config = app::AppConfig {
        jitter_ms: args.jitter_ms,
    };
    let layer = logging.request_layer();
    // actix calls this once per worker thread.
    let server = HttpServer::new(move || {
        App::new()
            .configure(app::routes(config, downstream.clone()))
            .wrap(RequestMiddleware::from(layer.clone()))
    })
    .disable_signals()
    .shutdown_timeout(30)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        corrlog::shutdown_signal().await;
        tracing::info!(target: "demo", "shutdown signal received; finishing in-flight requests");
        handle.stop(true).await;
    });
    server.await?;
    tracing::info!(target: "demo", "shut down cleanly");

    // Write out every queued line before the process exits.
    let report = logging.shutdown(Duration::from_secs(5));
    eprintln!(
        "logging: {} lines written, {} dropped, {} failed",
        report.stats.written, report.stats.dropped, report.stats.failed
    );
    Ok(())
}
