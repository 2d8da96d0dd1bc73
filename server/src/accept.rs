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
//! - A lingering close: a request refused before its body was read (413, 429, 401) would
//!   otherwise be closed with unread bytes, and the kernel's reset would destroy the answer
//!   before the client reads it. The socket is shut for writing and drained for up to
//!   [`LINGER`] first, still holding its connection permit.
//!
//! It must never wait on a client while holding anything other clients need: every connection
//! is its own task, and the loop only accepts.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Config, Metrics};

/// How long a closed connection is drained of what its client still sends.
const LINGER: Duration = Duration::from_secs(2);

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
        let io = TokioIo::new(Lingering { stream: Some(stream), permit: Some(permit) });
        let connection = graceful.watch(http.serve_connection(io, TowerToHyperService::new(app.clone())));
        // A client that went away or timed out ends its connection; nothing to report.
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A connection's socket and permit; dropped, it lingers (see the module's header).
struct Lingering {
    stream: Option<TcpStream>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Lingering {
    fn stream(self: Pin<&mut Self>) -> Pin<&mut TcpStream> {
        Pin::new(self.get_mut().stream.as_mut().expect("the stream is there until drop"))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let (Some(mut stream), permit) = (self.stream.take(), self.permit.take()) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let _ = stream.shutdown().await;
            let mut sink = [0u8; 8192];
            let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
            let _ = tokio::time::timeout(LINGER, drain).await;
            drop(permit);
        });
    }
}

impl AsyncRead for Lingering {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}
