use axum::{routing::get, Router};
use corrlog::Format;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // JSON lines on stdout, I/O on a writer thread, RUST_LOG honoured.
    let logging = corrlog::builder().format(Format::Json).init()?;

    let app = Router::new()
        .route("/", get(|| async {
            tracing::info!("request_id is automatically included");
            "ok"
        }))
        .layer(logging.request_layer());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(corrlog::shutdown_signal()) // Ctrl-C or SIGTERM
        .await?;
    logging.shutdown(std::time::Duration::from_secs(5)); // nothing queued is lost
    Ok(())
}
