//! Named readers over HTTP: `next` hands out records after the reader's position
//! without moving it; `ack` moves it. A client that dies before acknowledging gets the
//! same records again (at-least-once, as `reel read` is locally).

use super::{AppState, NoQuery, inline, ndjson};
use crate::auth::{Caller, LiveCaller, acl::Flags};
use crate::error::{ApiError, ApiResult};
use crate::stores::{Store, Want};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NextQuery {
    max: Option<usize>,
    wait: Option<f64>,
    /// Only records after this seq: a client that holds records it has not acknowledged
    /// yet asks for the ones after them without moving the position.
    after: Option<u64>,
}

/// The longest a `next` request waits for a record.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// `POST .../readers/READER/next?max=M&wait=SECS[&after=SEQ]`: NDJSON of the next
/// records.
pub(crate) async fn next(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, reader)): Path<(String, String)>,
    Query(q): Query<NextQuery>,
) -> ApiResult<Response> {
    caller.require(&name, &[], Flags::READ)?;
    let max = super::max_records(q.max)?;
    let wait = match q.wait {
        None => Duration::ZERO,
        // Capped before the conversion, which panics on seconds beyond a Duration.
        Some(w) if w.is_finite() && w >= 0.0 => {
            Duration::from_secs_f64(w.min(MAX_WAIT.as_secs_f64()))
        }
        Some(w) => return Err(ApiError::bad_request(format!("bad wait `{w}`"))),
    };
    let stores = st.stores.clone();
    // A long wait is checked again before it answers (see `LiveCaller`).
    let mut live = LiveCaller::new(st.guard.clone(), caller, &name, &[], Flags::READ);
    let store = inline(move || stores.get(&name, Want::Existing)).await?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut waited = false;
    loop {
        if waited {
            live.check().await?;
        }
        waited = true;
        let (s, r) = (store.clone(), reader.clone());
        let after = q.after;
        let (lines, position) = inline(move || read_unacknowledged(&s, &r, max, after)).await?;
        if !lines.is_empty() {
            st.metrics.sent.fetch_add(
                lines.iter().filter(|&&b| b == b'\n').count() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        if !lines.is_empty() || wait.is_zero() || st.is_stopping() {
            return Ok(ndjson(Body::from(lines)));
        }
        tokio::select! {
            _ = store.appended_past(position) => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(ndjson(Body::empty())),
            _ = st.stopping() => return Ok(ndjson(Body::empty())),
        }
    }
}

/// Up to `max` records after the reader's position (and after `after`), as NDJSON,
/// leaving the position where it was; also the seq the records start from.
fn read_unacknowledged(
    store: &Arc<Store>,
    name: &str,
    max: usize,
    after: Option<u64>,
) -> ApiResult<(Vec<u8>, u64)> {
    let spool = store.spool();
    let mut reader = spool.reader(name)?;
    let start = reader.position();
    let from = after.map_or(start, |a| a.saturating_add(1).max(start));
    if from != start {
        reader.seek(from);
    }
    let records = reader.next_batch(max, None)?;
    // Dropping the reader commits its position: put it back, only `ack` moves it.
    reader.seek(start);
    let mut buf = Vec::new();
    for r in &records {
        let line = r.to_json_meta()?;
        serde_json::to_writer(&mut buf, &line).map_err(|e| ApiError::internal(e.to_string()))?;
        buf.push(b'\n');
    }
    Ok((buf, from))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ack {
    seq: u64,
}

/// `POST .../readers/READER/ack` with `{"seq": N}`: records up to N are consumed (an
/// ack below the reader's position changes nothing).
pub(crate) async fn ack(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, reader)): Path<(String, String)>,
    _: NoQuery,
    Json(a): Json<Ack>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &[], Flags::READ)?;
    inline(move || {
        let store = st.stores.get(&name, Want::Existing)?;
        let spool = store.spool();
        if a.seq >= spool.next_seq() {
            return Err(ApiError::bad_request(format!(
                "cannot acknowledge seq {}: the next seq is {}",
                a.seq,
                spool.next_seq()
            )));
        }
        let mut r = spool.reader(&reader)?;
        // An ack only moves the reader forward: a late or repeated one (a retry, a slow
        // client) must not make it deliver again what it already acknowledged; moving
        // back is `rewind`, which needs `a`.
        if a.seq + 1 > r.position() {
            r.seek(a.seq + 1);
            r.commit()?;
        }
        Ok(Json(serde_json::json!({"position": r.position()})))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rewind {
    to_seq: Option<u64>,
    /// Microseconds since the epoch.
    to_time: Option<i64>,
}

/// `POST .../readers/READER/rewind` with `{}` (to the oldest record), `{"to_seq": N}` or
/// `{"to_time": MICROS}`: what `reel rewind` does; `{"position": P, "unread": U}`. Needs
/// `a` (admin): it makes the reader replay or skip records.
pub(crate) async fn rewind(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, reader)): Path<(String, String)>,
    _: NoQuery,
    Json(to): Json<Rewind>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &[], Flags::ADMIN)?;
    if to.to_seq.is_some() && to.to_time.is_some() {
        // As `reel rewind`, which refuses --to-seq with --to-time.
        return Err(ApiError::bad_request(
            "give `to_seq` or `to_time`, not both",
        ));
    }
    inline(move || {
        let spool = st.stores.get(&name, Want::Existing)?.spool();
        let mut r = spool.reader(&reader)?;
        r.move_to(reel::MoveTo::from_options(to.to_seq, to.to_time))?;
        let position = r.position();
        let unread = spool.records_from(position)?;
        Ok(Json(
            serde_json::json!({"position": position, "unread": unread}),
        ))
    })
    .await
}
