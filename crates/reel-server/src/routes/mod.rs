//! The HTTP routes (docs/HTTP.md): one module per kind of resource, sharing the state
//! and the helpers here.

mod kv;
mod lists;
mod readers;
mod records;
mod stores;

use crate::error::{ApiError, ApiResult};
use crate::stores::Stores;
use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use std::sync::Arc;
use tokio::sync::watch;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) stores: Arc<Stores>,
    pub(crate) guard: Arc<crate::auth::Guard>,
    /// Becomes true when the server starts shutting down: live streams end.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// Resolves when the server starts shutting down.
    pub(crate) async fn stopping(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|&s| s).await;
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Runs blocking engine work (file I/O, fsync) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// The router of every route.
pub fn router(state: AppState, max_body: usize) -> Router {
    Router::new()
        .route("/healthz", get(stores::healthz))
        .route("/v1/auth/token", post(stores::token))
        .route("/v1/stores", get(stores::list))
        .route("/v1/stores/{name}", get(stores::status))
        .route(
            "/v1/stores/{name}/records",
            get(records::read).post(records::append),
        )
        .route(
            "/v1/stores/{name}/readers/{reader}/next",
            post(readers::next),
        )
        .route("/v1/stores/{name}/readers/{reader}/ack", post(readers::ack))
        .route(
            "/v1/stores/{name}/readers/{reader}/rewind",
            post(readers::rewind),
        )
        .route(
            "/v1/stores/{name}/kv/{*path}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route("/v1/stores/{name}/kv", get(kv::get_root))
        .route("/v1/stores/{name}/keys/{*path}", get(kv::keys))
        .route("/v1/stores/{name}/keys", get(kv::keys_root))
        .route("/v1/stores/{name}/watch/{*path}", get(kv::watch))
        .route("/v1/stores/{name}/watch", get(kv::watch_root))
        .route("/v1/stores/{name}/lists", get(lists::keys))
        .route(
            "/v1/stores/{name}/lists/{key}",
            get(lists::read).post(lists::append),
        )
        .route("/v1/stores/{name}/lists/{key}/info", get(lists::info))
        .fallback(|| async { ApiError::not_found("no such route (see docs/HTTP.md)") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// A query flag given as `true`/`false` (or `1`/`0`).
pub(crate) fn flag(v: Option<&str>, name: &str) -> ApiResult<bool> {
    match v {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "`{name}` must be true or false, not `{other}`"
        ))),
    }
}

/// A live response body, produced chunk by chunk (only as fast as the client reads).
pub(crate) trait Chunks: Send + 'static {
    /// The next chunk of NDJSON lines; `None` ends the body.
    fn step(&mut self) -> impl Future<Output = ApiResult<Option<Bytes>>> + Send;
}

/// An NDJSON response streaming `chunks`. An error after the headers went out ends the
/// body with a last line `{"error": ...}`, so the client sees why it stopped.
pub(crate) fn ndjson_stream(chunks: impl Chunks) -> axum::response::Response {
    let stream = futures_util::stream::unfold((chunks, false), |(mut c, failed)| async move {
        if failed {
            return None;
        }
        match c.step().await {
            Ok(Some(bytes)) => Some((Ok::<Bytes, std::io::Error>(bytes), (c, false))),
            Ok(None) => None,
            Err(e) => {
                let line = serde_json::json!({"error": e.message}).to_string() + "\n";
                Some((Ok(Bytes::from(line)), (c, true)))
            }
        }
    });
    ndjson(axum::body::Body::from_stream(stream))
}

/// An NDJSON response.
pub(crate) fn ndjson(body: axum::body::Body) -> axum::response::Response {
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .unwrap_or_else(|e| ApiError::internal(e.to_string()).into_response_())
}

impl ApiError {
    pub(crate) fn into_response_(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}
