//! The HTTP routes (docs/HTTP.md): one module per kind of resource, sharing the state
//! and the helpers here.

pub(crate) mod groups;
mod kv;
mod lists;
mod readers;
mod records;
pub(crate) mod stores;

use crate::error::{ApiError, ApiResult};
use crate::stores::Stores;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use std::sync::Arc;
use tokio::sync::watch;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) stores: Arc<Stores>,
    pub(crate) guard: Arc<crate::auth::Guard>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
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

/// A route's query parameters, checked with [`only`].
pub(crate) type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

/// Refuses a query parameter the route does not take: a misspelled `recursiv=true` or a
/// guessed `?if_rev=3` would otherwise be ignored, and the request do something else
/// than asked (a one-path answer to a subtree question, an unconditional write).
pub(crate) fn only(q: &std::collections::HashMap<String, String>, known: &[&str]) -> ApiResult<()> {
    let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) else {
        return Ok(());
    };
    Err(ApiError::bad_request(if known.is_empty() {
        format!("unknown query parameter `{k}` (this route takes none)")
    } else {
        format!(
            "unknown query parameter `{k}` (this route takes: {})",
            known.join(", ")
        )
    }))
}

/// The query of a route that takes no parameters: any is refused (see [`only`]).
#[derive(Debug)]
pub(crate) struct NoQuery;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let axum::extract::Query(q) = Params::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
        only(&q, &[])?;
        Ok(NoQuery)
    }
}

/// Runs engine work that takes microseconds (reads of cached pages, appends that do not
/// wait for a sync) right on this worker thread: handing it to another thread and back
/// would cost two thread wake-ups per request, many times the work itself. A rare slow
/// call (a page fault to disk, a view catching up after a bulk load) holds up only the
/// tasks of this worker, and the runtime has others.
pub async fn inline<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    f()
}

/// Runs work that waits by design (an fsync for durability `always`, password hashing)
/// on tokio's blocking pool, so that it never holds up a worker thread.
pub async fn blocking_slow<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Runs `f` as [`blocking_slow`] when `slow`, else as [`blocking`].
pub async fn engine<T: Send + 'static>(
    slow: bool,
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    if slow {
        blocking_slow(f).await
    } else {
        inline(f).await
    }
}

/// The router of every route.
pub fn router(state: AppState, max_body: usize) -> Router {
    Router::new()
        .route("/healthz", get(stores::healthz))
        .route("/metrics", get(stores::metrics))
        .route("/v1/auth/token", post(stores::token))
        .route("/v1/stores", get(stores::list))
        .route("/v1/stores/{name}", get(stores::status))
        .route("/v1/stores/{name}/views", get(stores::views))
        .route("/v1/stores/{name}/verify", get(stores::verify))
        .route(
            "/v1/stores/{name}/records",
            get(records::read).post(records::append),
        )
        .route("/v1/stores/{name}/frames", get(records::frames))
        .route("/v1/stores/{name}/groups/{group}/next", post(groups::next))
        .route("/v1/stores/{name}/groups/{group}/ack", post(groups::ack))
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
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Times every request (to its response head) for `/metrics`.
async fn track(
    State(st): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    // Query values are decoded lossily further on: `%FF` and `%FE` would both become
    // U+FFFD, and two different keys one.
    let resp = if req.uri().query().is_some_and(|q| !query_is_utf8(q)) {
        axum::response::IntoResponse::into_response(ApiError::bad_request(
            "the query string is not UTF-8 once percent-decoded",
        ))
    } else {
        relative_paths(json_error(next.run(req).await).await, st.stores.root()).await
    };
    st.metrics
        .observe(resp.status().as_u16(), started.elapsed());
    resp
}

/// Every error is JSON `{"error": ...}` (docs/HTTP.md): axum's own refusals of a
/// request (a query, a body or a content type it cannot take, a body over the limit)
/// come as plain text, and a method a route does not take as an empty 405; both are
/// rewritten.
async fn json_error(resp: axum::response::Response) -> axum::response::Response {
    let plain = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(resp.status().is_client_error() || resp.status().is_server_error()) || !plain {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // axum refuses a JSON body of the wrong shape (an unknown field, a wrong type) with
    // 422; every malformed request is 400 here (docs/HTTP.md, "Errors").
    if parts.status == axum::http::StatusCode::UNPROCESSABLE_ENTITY {
        parts.status = axum::http::StatusCode::BAD_REQUEST;
    }
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_string();
    if message.is_empty() {
        let reason = parts.status.canonical_reason().unwrap_or("refused");
        message = format!("{} (see docs/HTTP.md)", reason.to_lowercase());
    }
    let body = serde_json::json!({ "error": message }).to_string();
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

/// True when `query` percent-decodes to UTF-8 (`+` is a space; a `%` not followed by two
/// hex digits stands for itself, as the query decoder takes it).
fn query_is_utf8(query: &str) -> bool {
    let b = query.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&out).is_ok()
}

/// Error messages name paths relative to the server's root, as answers do for users
/// that are not admins (docs/HTTP.md, "Stores"): an engine error names the file it
/// concerns by its absolute path, which would show every caller where the server keeps
/// its data.
async fn relative_paths(
    resp: axum::response::Response,
    root: &std::path::Path,
) -> axum::response::Response {
    let json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(resp.status().is_client_error() || resp.status().is_server_error()) || !json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).replace(&format!("{}/", root.display()), "");
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, axum::body::Body::from(text))
}

/// The `max` of a `next` request: 1000 by default, at most 100,000; 0 is refused.
pub(crate) fn max_records(max: Option<usize>) -> ApiResult<usize> {
    match max {
        Some(0) => Err(ApiError::bad_request("max must be at least 1")),
        m => Ok(m.unwrap_or(1000).min(100_000)),
    }
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

/// The client asked for Server-Sent Events.
pub(crate) fn wants_sse(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// The `Last-Event-ID` a reconnecting EventSource sends.
pub(crate) fn last_event_id(headers: &axum::http::HeaderMap) -> ApiResult<Option<u64>> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a number")),
    }
}

/// The same stream as Server-Sent Events: each NDJSON line becomes an event whose `id`
/// is the line's `id_field` (a record's seq, an event's rev), so that a reconnecting
/// EventSource resumes with `Last-Event-ID`.
pub(crate) fn sse_stream(chunks: impl Chunks, id_field: &'static str) -> axum::response::Response {
    struct Sse<C> {
        inner: C,
        id_field: &'static str,
    }
    impl<C: Chunks> Chunks for Sse<C> {
        async fn step(&mut self) -> ApiResult<Option<Bytes>> {
            let Some(lines) = self.inner.step().await? else {
                return Ok(None);
            };
            let mut out = Vec::with_capacity(lines.len() + 64);
            for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let id = serde_json::from_slice::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get(self.id_field).and_then(serde_json::Value::as_u64));
                if let Some(id) = id {
                    out.extend_from_slice(format!("id: {id}\n").as_bytes());
                }
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(line);
                out.extend_from_slice(b"\n\n");
            }
            Ok(Some(Bytes::from(out)))
        }
    }
    sse_body(Sse {
        inner: chunks,
        id_field,
    })
}

/// `resp`, a stream of server-sent events, with the headers that say so.
fn sse_headers(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    resp
}

/// An NDJSON response streaming `chunks`. An error after the headers went out ends the
/// body with a last line `{"error": ...}`, so the client sees why it stopped.
pub(crate) fn ndjson_stream(chunks: impl Chunks) -> axum::response::Response {
    stream_body(chunks, false)
}

/// [`ndjson_stream`] of chunks that are server-sent events already: the last line
/// reporting an error is an event too (`data: {"error": ...}`), or an EventSource would
/// drop it.
pub(crate) fn sse_body(chunks: impl Chunks) -> axum::response::Response {
    sse_headers(stream_body(chunks, true))
}

fn stream_body(chunks: impl Chunks, sse: bool) -> axum::response::Response {
    let stream = futures_util::stream::unfold((chunks, false), move |(mut c, failed)| async move {
        if failed {
            return None;
        }
        match c.step().await {
            Ok(Some(bytes)) => Some((Ok::<Bytes, std::io::Error>(bytes), (c, false))),
            Ok(None) => None,
            Err(e) => {
                let json = serde_json::json!({"error": e.message}).to_string();
                let line = if sse {
                    format!("data: {json}\n\n")
                } else {
                    json + "\n"
                };
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

#[cfg(test)]
mod tests {
    /// `%FF` and `%FE` in `?key=` were both stored as U+FFFD: one key for two.
    #[test]
    fn a_query_that_is_not_utf8_once_decoded_is_told_apart() {
        assert!(super::query_is_utf8("key=a%20b&x=%C3%A9+c"));
        assert!(super::query_is_utf8("key=100%"));
        assert!(!super::query_is_utf8("key=%FF"));
        assert!(!super::query_is_utf8("key=%C3"));
    }
}
