//! reel over HTTP (DESIGN.md §9, docs/HTTP.md): one process serves every store under a
//! root directory (a store named NAME is the directory `ROOT/NAME`), on tokio + axum.
//!
//! The engine is blocking (file I/O, fsync): handlers run it on tokio's blocking pool.
//! Live reads (followed record streams, kv watches, readers waiting for records) do not
//! hold a thread while they wait: a notifier thread per open store waits on the engine's
//! cross-process wake-up and publishes the log's end on a `tokio::sync::watch` channel.
//! Stores stay usable by local processes at the same time, as the engine allows.

pub mod auth;
mod conn;
mod error;
mod metrics;
mod routes;
mod stores;
mod tls;

pub use conn::{HEADER_READ, SHUTDOWN_GRACE};
pub use error::{ApiError, ApiResult};
pub use routes::stores::verify_json;
pub use routes::{AppState, router};
pub use stores::{Stores, validate_name};

use reel::Durability;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// Default address: loopback only, port 7370.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7370";
/// Default largest request body.
pub const DEFAULT_MAX_BODY: usize = 64 << 20;

/// What `reel serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The directory whose subdirectories are the stores.
    pub root: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body in bytes (413 above).
    pub max_body: usize,
    /// Durability of appends that do not ask for one.
    pub durability: Durability,
    /// How long a token from `POST /v1/auth/token` is valid.
    pub token_ttl: std::time::Duration,
    /// Serve clients on other machines even when no user is defined (no authentication).
    pub insecure_open: bool,
    /// HTTPS: a PEM certificate chain and its PEM private key.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The root is not a directory.
    #[error("{0} is not a directory: create it first (mkdir -p)")]
    NoRoot(PathBuf),
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// Binding the address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound, not yet running server: bind first (so that a caller knows the address, port
/// 0 included), then run until `shutdown` resolves.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    config: ServerConfig,
}

impl Server {
    /// Binds the listening socket.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServeError> {
        if !config.root.is_dir() {
            return Err(ServeError::NoRoot(config.root.clone()));
        }
        let tls = match &config.tls {
            Some((cert, key)) => Some(tls::config(cert, key).map_err(ServeError::Tls)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(Server {
            listener,
            tls,
            config,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves; then refuses new writes (503), ends live
    /// streams, lets in-flight requests finish (appends complete and are acknowledged)
    /// for up to [`SHUTDOWN_GRACE`], drops the connections still open, syncs every
    /// store and returns.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let guard = Arc::new(auth::Guard::new(
            &self.config.root,
            self.config.token_ttl,
            self.config.insecure_open,
        ));
        let state = AppState {
            stores: Arc::new(Stores::new(&self.config.root, self.config.durability)),
            guard,
            metrics: Default::default(),
            shutdown: stop_rx,
        };
        let stores = state.stores.clone();
        let app = router(state, self.config.max_body);
        let addr = self.local_addr()?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!(%addr, scheme, root = %self.config.root.display(), "reel serve: listening");
        let stopping = async move {
            shutdown.await;
            tracing::info!("reel serve: shutting down");
            let _ = stop_tx.send(true);
        };
        match self.tls {
            Some(config) => {
                let listener = tls::TlsListener::new(self.listener, config)?;
                conn::serve(listener, app, stopping).await;
            }
            None => conn::serve(tls::PlainListener(self.listener), app, stopping).await,
        }
        // Appends acknowledged with durability `batch` are synced before exiting.
        tokio::task::spawn_blocking(move || stores.sync_all())
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
        tracing::info!("reel serve: stopped");
        Ok(())
    }
}

/// The routes over the stores under `root`, without a listener: what a test or a fuzzer
/// drives in process. No user means every request is allowed (loopback rules).
pub fn app(root: &std::path::Path, durability: Durability) -> axum::Router {
    let (_stop_tx, stop_rx) = watch::channel(false);
    let state = AppState {
        stores: Arc::new(Stores::new(root, durability)),
        guard: Arc::new(auth::Guard::new(
            root,
            std::time::Duration::from_secs(3600),
            false,
        )),
        metrics: Default::default(),
        shutdown: stop_rx,
    };
    router(state, DEFAULT_MAX_BODY)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
