//! Waiting for the process to be asked to stop.

use std::future::Future;
use std::task::Poll;

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM on Unix
/// (what container orchestrators send). Pass it to axum's
/// `with_graceful_shutdown`, then call [`Logging::shutdown`](crate::Logging::shutdown), so in-flight
/// requests finish and every queued line is written before the process
/// exits. Without it, SIGTERM ends the process at once and whatever is
/// still queued is lost.
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let logging = corrlog::builder().init()?;
/// let app: axum::Router = axum::Router::new().layer(logging.request_layer());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app)
///     .with_graceful_shutdown(corrlog::shutdown_signal())
///     .await?;
/// logging.shutdown(std::time::Duration::from_secs(5));
/// # Ok(())
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = async {
        // Without a signal handler there is nothing to wait for.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    first_of(ctrl_c, terminate).await;
}

/// Resolves when either future does (what `tokio::select!` would do here,
/// without the `macros` feature of tokio and its proc-macro crates).
async fn first_of(a: impl Future<Output = ()>, b: impl Future<Output = ()>) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::first_of;

    #[tokio::test]
    async fn either_future_ends_the_wait() {
        first_of(async {}, std::future::pending()).await;
        first_of(std::future::pending(), async {}).await;
    }
}
