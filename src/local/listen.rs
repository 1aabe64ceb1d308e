//! The connection loop of the ingest and admin listeners: a cap on open connections, a
//! deadline for the TLS handshake, for each request head and for idle keep-alive time
//! (hyper's header read timeout runs whenever a connection waits for a request), a bounded
//! request head, and a graceful stop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::MAX_HEAD_BYTES;

/// One listener's settings.
pub struct Listener {
    pub name: &'static str,
    pub listener: TcpListener,
    pub app: Router,
    pub tls: Option<TlsAcceptor>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Connections closed at once because the cap was reached.
    pub refused: Arc<AtomicU64>,
}

async fn serve_connection<I>(io: I, app: Router, header_timeout: Duration, stop: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection closed");
            }
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Accepts connections until `stop`, then lets open connections finish their request for up
/// to `grace`.
pub async fn run(l: Listener, stop: CancellationToken, grace: Duration) {
    let permits = Arc::new(Semaphore::new(l.max_connections));
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            a = l.listener.accept() => a,
            _ = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or similar: back off a little rather than spin.
                tracing::warn!(listener = l.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            l.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(listener = l.name, %peer, max = l.max_connections, "connection limit reached; connection closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = l.app.clone();
        let tls = l.tls.clone();
        let timeout = l.header_timeout;
        let stop = stop.clone();
        tracker.spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, app, timeout, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            serve_connection(tls_stream, app, timeout, stop).await
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            listener = l.name,
            "connections still open after the grace period"
        );
    }
}
