//! The corrlog gRPC demo: a tonic server with the standard health service
//! and a demo orders service, behind the same `RequestLayer` as the HTTP
//! demo.
//!
//! ```text
//! cargo run --release --example grpc_demo -- --addr 127.0.0.1:50051
//! grpcurl -plaintext -H 'x-request-id: my-call-1' \
//!     -import-path examples/grpc -proto demo.proto \
//!     -d '{"order_id": "42"}' 127.0.0.1:50051 corrlog.demo.v1.Orders/GetOrder
//! grpcurl -plaintext -import-path examples/grpc -proto demo.proto \
//!     127.0.0.1:50051 corrlog.demo.v1.Orders/Boom     # INTERNAL, with the id
//! ```
//!
//! (`grpc.health.v1.Health/Check` and `Watch` need the health proto, or a
//! client such as `grpc-health-probe -addr 127.0.0.1:50051`.)
//!
//! Every line on stdout is one JSON object; the lines of a call share its
//! `request_id`, and its access line names the RPC as `route` with
//! `grpc_status` and `grpc_status_name`. `RUST_LOG` filters as usual
//! (default `info`).

#[path = "grpc/service.rs"]
mod service;

use std::net::SocketAddr;
use std::time::Duration;

use corrlog::fmt::Service;
use corrlog::Format;

const USAGE: &str = "usage: grpc_demo [--addr HOST:PORT]
  --addr  where to listen (default 127.0.0.1:50051)";

fn parse_args() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:50051".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                addr = args
                    .next()
                    .ok_or_else(|| format!("--addr needs a value\n{USAGE}"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    addr.parse().map_err(|e| {
        format!("invalid --addr {addr:?}: {e}; expected HOST:PORT like 127.0.0.1:50051")
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = match parse_args() {
        Ok(addr) => addr,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let logging = corrlog::builder()
        .format(Format::Json)
        .service(Service::new("corrlog-grpc-demo").version(env!("CARGO_PKG_VERSION")))
        .init();
    let logging = match logging {
        Ok(logging) => logging,
        Err(err) => {
            eprintln!("grpc_demo: cannot set up logging: {err}");
            std::process::exit(1);
        }
    };

    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(target: "grpc_demo", addr = %listener.local_addr()?, "listening");
    let (health, orders) = service::services().await;
    tonic::transport::Server::builder()
        .layer(logging.request_layer().grpc(true))
        .add_service(health)
        .add_service(orders)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                corrlog::shutdown_signal().await;
                tracing::info!(target: "grpc_demo", "shutdown signal received; finishing in-flight calls");
            },
        )
        .await?;
    tracing::info!(target: "grpc_demo", "shut down cleanly");

    let report = logging.shutdown(Duration::from_secs(5));
    eprintln!(
        "logging: {} lines written, {} dropped, {} failed",
        report.stats.written, report.stats.dropped, report.stats.failed
    );
    Ok(())
}
