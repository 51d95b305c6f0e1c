//! The corrlog demo service.
//!
//! ```text
//! cargo run --release --example demo -- --addr 127.0.0.1:3000
//! cargo run --release --example demo -- --addr 127.0.0.1:3001 --downstream http://127.0.0.1:3000
//! curl -i localhost:3000/orders/42
//! curl -i -H 'x-request-id: my-trace-1' localhost:3000/
//! curl -i localhost:3000/stream/3
//! curl -i localhost:3000/boom
//! cargo run --release --example demo -- --trusted-proxy 127.0.0.1 --trusted-proxy 10.0.0.0/8
//! curl -H 'x-forwarded-for: 203.0.113.9' localhost:3000/   # client_ip 203.0.113.9
//! ```
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318` and
//! `--features otlp,opentelemetry`, its logs and spans also go to that
//! OpenTelemetry Collector (see the README).
//!
//! Every line on stdout is one JSON object; all lines of a request share
//! its `request_id`. `RUST_LOG` filters as usual (default `info`);
//! `CORRLOG_FORMAT=pretty` prints human-readable lines instead.

mod app;
mod args;
#[cfg(all(feature = "otlp", feature = "opentelemetry"))]
mod otel;

use std::net::SocketAddr;
use std::time::Duration;

use corrlog::fmt::Service;
use corrlog::http::AccessLog;
use corrlog::{Format, RequestLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match args::parse("demo") {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };

    // JSON lines on stdout through the writer pipeline. CORRLOG_FORMAT=pretty
    // for console output, or ecs, gcp, datadog for a vendor's fields; see
    // the builder docs for every override.
    let access = AccessLog::default().trusted_proxies(args.trusted_proxies);
    let builder = corrlog::builder()
        .format(Format::Json)
        // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override these.
        .service(Service::new("corrlog-demo").version(env!("CARGO_PKG_VERSION")))
        .request_layer(RequestLayer::new().access_log(access));
    // With OTEL_EXPORTER_OTLP_ENDPOINT: spans through tracing-opentelemetry,
    // logs through corrlog's OTLP output (the builder reads the variable).
    #[cfg(all(feature = "otlp", feature = "opentelemetry"))]
    let (logging, spans) = match otel::spans() {
        Ok(Some((layer, provider))) => {
            use tracing_subscriber::layer::SubscriberExt;
            // The built subscriber with the span layer on top, installed
            // here (the demo routes no `log` records).
            let installed = builder.build().map(|(subscriber, logging)| {
                if tracing::subscriber::set_global_default(subscriber.with(layer)).is_err() {
                    eprintln!("demo: a global subscriber was already set");
                    std::process::exit(1);
                }
                logging
            });
            (installed, Some(provider))
        }
        Ok(None) => (builder.init(), None),
        Err(msg) => {
            eprintln!("demo: {msg}");
            std::process::exit(1);
        }
    };
    #[cfg(not(all(feature = "otlp", feature = "opentelemetry")))]
    let logging = {
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            eprintln!(
                "demo: OTEL_EXPORTER_OTLP_ENDPOINT is ignored: this build has no OTLP export; \
                 run it with --features otlp,opentelemetry"
            );
        }
        builder.init()
    };
    let logging = match logging {
        Ok(logging) => logging,
        Err(err) => {
            eprintln!("demo: cannot set up logging: {err}");
            std::process::exit(1);
        }
    };

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
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
    let app = app::routes(config, downstream).layer(logging.request_layer());
    // With the peer's address, so the access line has `client_ip`.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!(target: "demo", "shut down cleanly");

    // Write out every queued line (and span) before the process exits.
    #[cfg(all(feature = "otlp", feature = "opentelemetry"))]
    if let Some(provider) = spans {
        if let Err(err) = provider.shutdown() {
            eprintln!("demo: sending the last spans failed: {err}");
        }
    }
    let report = logging.shutdown(Duration::from_secs(5));
    eprintln!(
        "logging: {} lines written, {} dropped, {} failed",
        report.stats.written, report.stats.dropped, report.stats.failed
    );
    if let Some(otlp) = report.otlp {
        eprintln!(
            "otlp: {} records delivered, {} dropped, {} failed",
            otlp.written, otlp.dropped, otlp.failed
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    corrlog::shutdown_signal().await;
    tracing::info!(target: "demo", "shutdown signal received; finishing in-flight requests");
}
