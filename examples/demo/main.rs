//! The corrlog demo service.
//!
//! ```text
//! cargo run --release --example demo -- --addr 127.0.0.1:3000
//! curl -i localhost:3000/orders/42
//! curl -i -H 'x-request-id: my-trace-1' localhost:3000/
//! curl -i localhost:3000/stream/3
//! curl -i localhost:3000/boom
//! ```
//!
//! Every line on stdout is one JSON object; all lines of a request share
//! its `request_id`. `RUST_LOG` filters as usual (default `info`).

mod app;

use std::net::SocketAddr;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: demo [--addr HOST:PORT]   (default 127.0.0.1:3000)";

fn parse_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:3000".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                addr = args
                    .next()
                    .ok_or_else(|| format!("--addr needs a value\n{USAGE}"))?
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    addr.parse().map_err(|e| {
        format!("invalid --addr {addr:?}: {e}; expected HOST:PORT like 127.0.0.1:3000")
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = match parse_addr() {
        Ok(addr) => addr,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };

    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(corrlog::JsonLayer::stdout())
        .init();

    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(target: "demo", addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app::router(app::AppConfig::default()))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!(target: "demo", "shut down cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!(target: "demo", "shutdown signal received; finishing in-flight requests");
}
