//! The server's accept loop: hyper's HTTP/1 connections serving the axum router, with what
//! `axum::serve` cannot do.
//!
//! - A header-read timeout: a client that does not send a whole request head in time (a slow or
//!   idle connection, also between keep-alive requests) is disconnected, so it cannot hold a
//!   connection open for free.
//! - A cap on open connections: beyond it a new connection is closed as soon as it is accepted,
//!   so file descriptors never run out and `/healthz` and honest syncs get in again as soon as
//!   the timeout has cut the idle ones.
//! - Graceful shutdown: stop accepting, let the requests in flight finish, then return.
//!
//! It must never wait on a client while holding anything other clients need: every connection
//! is its own task, and the loop only accepts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::{Config, Metrics};

/// Serves `app` on `listener` until `shutdown` completes, then waits for the connections that
/// are still answering a request.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    config: &Config,
    metrics: &Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(config.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(config.header_read_timeout_secs));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment instead of spinning, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics.connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone())));
        tokio::spawn(async move {
            // A client that went away or timed out ends its connection; nothing to report.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
