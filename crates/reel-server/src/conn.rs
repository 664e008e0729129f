//! The connections: an accept loop serving HTTP/1.1 with hyper, with the two bounds
//! `axum::serve` has no setting for. A request head must arrive within
//! [`HEADER_READ`] (an idle keep-alive connection is closed after as long), so that
//! half-sent heads cannot hold the server's file descriptors forever. And a shutdown
//! waits at most [`SHUTDOWN_GRACE`] for the connections still open: one stalled client
//! (a half-sent body, a response it stopped reading) must not keep the server from
//! syncing its stores and exiting.

use crate::tls::Peer;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest a client may take to send a request head, counted from the end of the
/// previous response on its connection (or from its connection).
pub const HEADER_READ: Duration = Duration::from_secs(10);
/// Longest a shutdown waits for in-flight requests before it drops their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on the connections of `listener` until `stopping` resolves; then stops
/// accepting, lets every connection finish the request it is in (live streams end on
/// their own: see `AppState::stopping`) and returns once all are closed or
/// [`SHUTDOWN_GRACE`] passed, whichever comes first.
pub(crate) async fn serve<L>(
    mut listener: L,
    app: Router,
    stopping: impl std::future::Future<Output = ()>,
) where
    L: Listener<Addr = SocketAddr>,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut stopping = pin!(stopping);
    loop {
        tokio::select! {
            (io, peer) = listener.accept() => {
                conns.spawn(connection(io, peer, app.clone(), closing_rx.clone()));
            }
            // Finished connections are reaped as they end, so that the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = &mut stopping => break,
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drained = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "reel serve: connections still busy {} s after the shutdown began: closing them",
            SHUTDOWN_GRACE.as_secs()
        );
        conns.shutdown().await;
    }
}

/// One connection, until its client closes it, it breaks, or the shutdown ends it after
/// the request in flight.
async fn connection<I>(io: I, peer: SocketAddr, app: Router, mut closing: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = Service {
        app,
        peer: ConnectInfo(Peer(peer)),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            return;
        }
        _ = closing.wait_for(|&c| c) => {}
    }
    // Ends the connection after the response in flight; an idle one at once.
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// The router for one connection: each request carries the peer's address (the
/// `ConnectInfo` that loopback rules and rate limits read).
#[derive(Debug, Clone)]
struct Service {
    app: Router,
    peer: ConnectInfo<Peer>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Service {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        // A router is always ready: no `poll_ready` needed.
        tower_service::Service::call(&mut self.app.clone(), req.map(axum::body::Body::new))
    }
}
