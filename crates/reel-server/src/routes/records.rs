//! `/v1/stores/NAME/records`: append NDJSON, read by seq, follow live.

use super::{
    AppState, Chunks, engine, flag, inline, last_event_id, ndjson_stream, sse_stream, wants_sse,
};
use crate::auth::{Caller, LiveCaller, acl::Flags};
use crate::error::{ApiError, ApiResult};
use crate::metrics::StreamGauge;
use crate::stores::{Store, Want};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use reel::{Durability, NewRecord, StreamOptions, Value, meta_json, value_json};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppendQuery {
    key: Option<String>,
    durability: Option<String>,
}

/// `POST /v1/stores/NAME/records`: the body's NDJSON lines as one batch, all or nothing.
pub(crate) async fn append(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<AppendQuery>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &[], Flags::WRITE)?;
    if st.is_stopping() {
        return Err(ApiError::shutting_down());
    }
    let durability: Option<Durability> = q
        .durability
        .as_deref()
        .map(|d| {
            d.parse()
                .map_err(|e: reel::LogError| ApiError::bad_request(e.to_string()))
        })
        .transpose()?;
    let records = parse_ndjson(&body, q.key.as_deref())?;
    st.metrics
        .bytes_in
        .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let metrics = st.metrics.clone();
    let slow = match durability {
        Some(d) => d == Durability::Always,
        None => st.stores.syncs_every_append(),
    };
    engine(slow, move || {
        let store = st.stores.get_for_writing(&name, Want::Existing)?;
        let spool = store.spool();
        if records.is_empty() {
            let next = spool.next_seq();
            return Ok(Json(serde_json::json!({"first_seq": next, "count": 0})));
        }
        let seqs = match durability {
            Some(d) => spool.append_batch_with(&records, d)?,
            None => spool.append_batch(&records)?,
        };
        metrics
            .appended
            .fetch_add(seqs.end - seqs.start, std::sync::atomic::Ordering::Relaxed);
        store.appended();
        Ok(Json(
            serde_json::json!({"first_seq": seqs.start, "count": seqs.end - seqs.start}),
        ))
    })
    .await
}

/// Parses an NDJSON body; a bad line refuses the whole request.
fn parse_ndjson(body: &[u8], key: Option<&str>) -> ApiResult<Vec<NewRecord>> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = reel::parse_json(line.as_bytes()).map_err(|e| {
            ApiError::bad_request(format!(
                "line {}: invalid JSON: {e}; nothing was stored",
                i + 1
            ))
        })?;
        let mut rec = NewRecord::new(Value::json(&v));
        rec.key = key.map(str::to_string);
        records.push(rec);
    }
    Ok(records)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadQuery {
    /// Same as `gte`.
    from_seq: Option<u64>,
    gt: Option<u64>,
    gte: Option<u64>,
    lt: Option<u64>,
    lte: Option<u64>,
    reverse: Option<String>,
    limit: Option<u64>,
    follow: Option<String>,
}

/// Records read per engine step of a response.
const CHUNK: u64 = 1000;

/// `GET /v1/stores/NAME/records?from_seq=N&limit=M&follow=true`: NDJSON of
/// `{"seq","ts","key","value"}`; with `follow`, new records stream as they arrive.
pub(crate) async fn read(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ReadQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    caller.require(&name, &[], Flags::READ)?;
    let follow = flag(q.follow.as_deref(), "follow")?;
    let sse = wants_sse(&headers);
    // A reconnecting EventSource continues after the last event it got.
    let resume = if sse { last_event_id(&headers)? } else { None };
    let opts = StreamOptions {
        gt: match (q.gt, resume) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
        gte: match (q.gte, q.from_seq) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
        lt: q.lt,
        lte: q.lte,
        reverse: flag(q.reverse.as_deref(), "reverse")?,
        limit: q.limit,
        live: follow,
    };
    if opts.reverse && follow {
        return Err(ApiError::bad_request("a followed read cannot be reversed"));
    }
    let stores = st.stores.clone();
    let store_name = name.clone();
    let store = inline(move || stores.get(&store_name, Want::Existing)).await?;
    if opts.reverse {
        let stream = store.spool().stream(&opts)?;
        return Ok(ndjson_stream(Backwards {
            stream: Some(stream),
            failed: None,
        }));
    }
    let (start, end) = opts.range();
    let tail = Tail {
        live: LiveCaller::new(st.guard.clone(), caller, &name, &[], Flags::READ),
        store,
        next: start,
        end,
        left: q.limit.unwrap_or(u64::MAX),
        follow,
        _gauge: follow.then(|| StreamGauge::new(&st.metrics)),
        reader: None,
        state: st,
    };
    Ok(if sse {
        sse_stream(tail, "seq")
    } else {
        ndjson_stream(tail)
    })
}

/// A read newest first (never followed).
struct Backwards {
    stream: Option<reel::Stream>,
    /// An error met after records of the same step: sent once those are.
    failed: Option<ApiError>,
}

impl Chunks for Backwards {
    async fn step(&mut self) -> ApiResult<Option<Bytes>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(mut stream) = self.stream.take() else {
            return Ok(None);
        };
        let (stream, buf, failed) = inline(move || {
            let mut buf = Vec::new();
            let mut failed = None;
            for r in stream.by_ref().take(CHUNK as usize) {
                // A backwards read returns the records after damaged bytes before the
                // error: they go out first.
                let line = match r.and_then(|r| r.to_json_meta()) {
                    Ok(line) => line,
                    Err(e) => {
                        failed = Some(ApiError::from(e));
                        break;
                    }
                };
                serde_json::to_writer(&mut buf, &line)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                buf.push(b'\n');
            }
            Ok((stream, buf, failed))
        })
        .await?;
        if let Some(e) = failed {
            if buf.is_empty() {
                return Err(e);
            }
            self.failed = Some(e);
            return Ok(Some(Bytes::from(buf)));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        self.stream = Some(stream);
        Ok(Some(Bytes::from(buf)))
    }
}

/// A read in progress.
struct Tail {
    /// Checked before each chunk: a revoked or deleted user stops receiving.
    live: LiveCaller,
    store: Arc<Store>,
    next: u64,
    /// First seq not to send (an upper bound of the read).
    end: Option<u64>,
    left: u64,
    follow: bool,
    state: AppState,
    _gauge: Option<StreamGauge>,
    /// Positioned at `next` once the first chunk was read: a follower keeps its place in
    /// the segment instead of seeking for every new record.
    reader: Option<reel::LogReader>,
}

impl Chunks for Tail {
    /// The next chunk of lines, waiting for new records when following; `None` at the end.
    async fn step(&mut self) -> ApiResult<Option<Bytes>> {
        loop {
            let before_end = self.end.map_or(u64::MAX, |e| e.saturating_sub(self.next));
            if self.left == 0 || before_end == 0 {
                return Ok(None);
            }
            let max = self.left.min(CHUNK).min(before_end);
            let (store, next, end) = (self.store.clone(), self.next, self.end.unwrap_or(u64::MAX));
            let reader = self.reader.take();
            let (reader, buf, count, resume) = inline(move || {
                let spool = store.spool();
                // Records dropped by retention are skipped: start at the oldest retained.
                let mut reader =
                    reader.unwrap_or_else(|| spool.log().reader(next.max(spool.oldest_seq())));
                let (buf, count) = read_chunk(&mut reader, end, max)?;
                let resume = reader.position();
                Ok((reader, buf, count, resume))
            })
            .await?;
            self.reader = Some(reader);
            if count > 0 {
                self.live.check().await?;
                let m = &self.state.metrics;
                m.sent
                    .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                m.bytes_out
                    .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
                self.left -= count;
                self.next = resume;
                return Ok(Some(Bytes::from(buf)));
            }
            self.next = resume;
            if !self.follow || self.state.is_stopping() {
                return Ok(None);
            }
            tokio::select! {
                _ = self.store.appended_past(self.next) => {}
                _ = self.state.stopping() => return Ok(None),
            }
        }
    }
}

/// Up to `max` records from where `reader` is (before `end`) as NDJSON lines, and how
/// many.
fn read_chunk(reader: &mut reel::LogReader, end: u64, max: u64) -> ApiResult<(Vec<u8>, u64)> {
    let mut buf = Vec::new();
    let mut count = 0u64;
    let mut failure = None;
    let batch = reader.read_batch(max as usize)?;
    batch.for_each(|r| {
        if failure.is_some() || r.seq >= end {
            return;
        }
        match value_json(&r).and_then(|v| meta_json(r.seq, r.ts, r.key, r.nonce, r.encoding, &v)) {
            Ok(line) => match serde_json::to_writer(&mut buf, &line) {
                Ok(()) => {
                    buf.push(b'\n');
                    count += 1;
                }
                Err(e) => failure = Some(reel::Error::Encode(e.to_string())),
            },
            Err(e) => failure = Some(e),
        }
    });
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok((buf, count))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FramesQuery {
    from_seq: Option<u64>,
    limit: Option<u64>,
    follow: Option<String>,
}

/// `GET /v1/stores/NAME/frames?from_seq=N&limit=M&follow=true`: the records as stored
/// (checksummed frames, one after another, `application/octet-stream`), for `reel
/// replicate`: a follower verifies and appends them as they are, never re-encoding.
pub(crate) async fn frames(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<FramesQuery>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<crate::tls::Peer>>>,
) -> ApiResult<Response> {
    caller.require(&name, &[], Flags::READ)?;
    let follow = flag(q.follow.as_deref(), "follow")?;
    let stores = st.stores.clone();
    let store_name = name.clone();
    let store = inline(move || stores.get(&store_name, Want::Existing)).await?;
    let next = q.from_seq.unwrap_or(0);
    let position = follow.then(|| {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let at = Arc::new(std::sync::atomic::AtomicU64::new(next));
        let who = peer.map_or_else(|| "local".to_string(), |p| p.0.0.0.to_string());
        store
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (who, at.clone()));
        FollowerSlot {
            store: store.clone(),
            id,
            at,
        }
    });
    let chunks = RawTail {
        live: LiveCaller::new(st.guard.clone(), caller, &name, &[], Flags::READ),
        store,
        _position: position,
        next,
        left: q.limit.unwrap_or(u64::MAX),
        follow,
        _gauge: follow.then(|| StreamGauge::new(&st.metrics)),
        reader: None,
        state: st,
    };
    let mut resp = ndjson_stream(chunks);
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}

/// A follower's entry in its store's list, removed when its stream ends.
struct FollowerSlot {
    store: Arc<Store>,
    id: u64,
    at: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for FollowerSlot {
    fn drop(&mut self) {
        self.store
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// A frames read in progress.
struct RawTail {
    live: LiveCaller,
    store: Arc<Store>,
    _position: Option<FollowerSlot>,
    next: u64,
    left: u64,
    follow: bool,
    state: AppState,
    _gauge: Option<StreamGauge>,
    reader: Option<reel::LogReader>,
}

impl Chunks for RawTail {
    async fn step(&mut self) -> ApiResult<Option<Bytes>> {
        loop {
            if self.left == 0 {
                return Ok(None);
            }
            let (store, next, max) = (self.store.clone(), self.next, self.left.min(CHUNK));
            let reader = self.reader.take();
            let (reader, buf, count) = inline(move || {
                let spool = store.spool();
                // A follower asks from its own next seq: records the source no longer
                // retains are not skipped here, the follower sees the jump and says so.
                let mut reader = reader.unwrap_or_else(|| spool.log().reader(next));
                let mut buf = Vec::new();
                let mut count = 0u64;
                let batch = reader.read_batch(max as usize)?;
                batch.for_each_frame(|_, bytes| {
                    buf.extend_from_slice(bytes);
                    count += 1;
                });
                Ok((reader, buf, count))
            })
            .await?;
            let resume = reader.position();
            self.reader = Some(reader);
            if count > 0 {
                self.live.check().await?;
            }
            self.next = resume;
            if let Some(p) = &self._position {
                p.at.store(resume, std::sync::atomic::Ordering::Relaxed);
            }
            if count > 0 {
                self.left -= count;
                let m = &self.state.metrics;
                m.sent
                    .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                m.bytes_out
                    .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
                return Ok(Some(Bytes::from(buf)));
            }
            if !self.follow || self.state.is_stopping() {
                return Ok(None);
            }
            tokio::select! {
                _ = self.store.appended_past(self.next) => {}
                _ = self.state.stopping() => return Ok(None),
            }
        }
    }
}
