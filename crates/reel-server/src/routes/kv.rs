//! `/v1/stores/NAME/kv/PATH`, `/keys/PATH` and `/watch/PATH`: the kv store, with
//! compare-and-set through `If-Match` / `If-None-Match` and watches as NDJSON streams.
//! PATH is DistKV's text form, percent-encoded; the routes without PATH are the root.

use super::{
    AppState, Chunks, Params, engine, flag, inline, last_event_id, ndjson_stream, only, sse_body,
    wants_sse,
};
use crate::auth::{Caller, LiveCaller, acl::Flags};
use crate::error::{ApiError, ApiResult};
use crate::metrics::StreamGauge;
use crate::stores::Want;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use reel::kv::{Condition, Path as KvPath, Watch, WatchEvent, WatchOptions};
use std::time::Duration;

fn parse_path(text: &str) -> ApiResult<KvPath> {
    text.parse::<KvPath>()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `GET .../kv/PATH`: `{"value","rev","ts"}`; `?recursive=true`: the subtree as JSON.
pub(crate) async fn get(
    st: State<AppState>,
    caller: Caller,
    Path((name, path)): Path<(String, String)>,
    q: Params,
) -> ApiResult<Json<serde_json::Value>> {
    get_at(st, caller, name, path, q).await
}

pub(crate) async fn get_root(
    st: State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Params,
) -> ApiResult<Json<serde_json::Value>> {
    get_at(st, caller, name, ":".to_string(), q).await
}

async fn get_at(
    State(st): State<AppState>,
    caller: Caller,
    name: String,
    path: String,
    Query(q): Params,
) -> ApiResult<Json<serde_json::Value>> {
    only(&q, &["recursive"])?;
    let recursive = flag(q.get("recursive").map(String::as_str), "recursive")?;
    let p = parse_path(&path)?;
    // A recursive get enters the path (`x`); each value in it, the path's own too, is
    // shown only where the caller may read it (`r`).
    let needed = if recursive { Flags::ENTER } else { Flags::READ };
    caller.require(&name, p.elements(), needed)?;
    inline(move || {
        let kv = st.stores.get(&name, Want::Existing)?.kv()?;
        if recursive {
            // Values below the path that a narrower rule keeps from the caller are left
            // out, as if absent.
            let tree = kv
                .tree_json_where(&p, |q| {
                    caller.flags(&name, q.elements()).allows(Flags::READ)
                })?
                .ok_or_else(|| reel::Error::NotFound(p.to_string()))?;
            return Ok(Json(tree));
        }
        let e = kv
            .get(&p)?
            .ok_or_else(|| reel::Error::NotFound(p.to_string()))?;
        Ok(Json(
            serde_json::json!({"value": e.json()?, "rev": e.rev, "ts": e.ts}),
        ))
    })
    .await
}

/// The compare-and-set condition of a request's headers.
fn condition(headers: &HeaderMap) -> ApiResult<Option<Condition>> {
    if headers.contains_key(axum::http::header::IF_NONE_MATCH)
        && headers.contains_key(axum::http::header::IF_MATCH)
    {
        // As `reel kv set`, which takes one condition.
        return Err(ApiError::bad_request(
            "give If-Match or If-None-Match, not both",
        ));
    }
    if let Some(v) = headers.get(axum::http::header::IF_NONE_MATCH) {
        return match v.to_str() {
            Ok("*") => Ok(Some(Condition::Absent)),
            _ => Err(ApiError::bad_request("If-None-Match takes only `*`")),
        };
    }
    match headers.get(axum::http::header::IF_MATCH) {
        None => Ok(None),
        Some(v) => {
            let text = v.to_str().unwrap_or("").trim().trim_matches('"');
            text.parse::<u64>()
                .map(|r| Some(Condition::Rev(r)))
                .map_err(|_| {
                    ApiError::bad_request(format!("If-Match takes a revision number, not `{text}`"))
                })
        }
    }
}

/// `PUT .../kv/PATH` with a JSON body: stores it; `{"rev": N}`.
pub(crate) async fn put(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, path)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    // The condition is a header: a query parameter (`?if_rev=3`) would otherwise be
    // ignored and the write made unconditionally.
    only(&q, &[])?;
    if st.is_stopping() {
        return Err(ApiError::shutting_down());
    }
    let p = parse_path(&path)?;
    // Refused before the store is opened, so that a refused write creates no store.
    p.check_depth()?;
    let cond = condition(&headers)?;
    let flags = caller.flags(&name, p.elements());
    let (may_write, may_create) = (flags.allows(Flags::WRITE), flags.allows(Flags::CREATE));
    if !may_write && !may_create {
        caller.require(&name, p.elements(), Flags::WRITE)?;
    }
    let value: serde_json::Value = reel::parse_json(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let metrics = st.metrics.clone();
    engine(st.stores.syncs_every_append(), move || {
        let kv = st.stores.get_for_writing(&name, Want::CreateKv)?.kv()?;
        // A caller allowed only to create, or only to overwrite, gets that enforced by
        // the store's own compare-and-set, so that no race lets it do the other.
        let (cond, imposed) = match (cond, may_write, may_create) {
            (c, true, true) => (c, false),
            (None | Some(Condition::Absent), false, true) => (Some(Condition::Absent), true),
            (Some(Condition::Rev(_)), false, true) => {
                return Err(missing(&caller, &name, &p, Flags::WRITE));
            }
            (Some(Condition::Absent), true, false) => {
                return Err(missing(&caller, &name, &p, Flags::CREATE));
            }
            (Some(c), _, _) => (Some(c), false),
            (None, _, _) => match kv.get(&p)? {
                Some(e) => (Some(Condition::Rev(e.rev)), true),
                None => return Err(missing(&caller, &name, &p, Flags::CREATE)),
            },
        };
        let rev = match cond {
            Some(c) => match kv.compare_and_set(&p, value, c) {
                Err(reel::Error::Conflict { .. }) if imposed => {
                    let lacking = if may_create {
                        Flags::WRITE
                    } else {
                        Flags::CREATE
                    };
                    return Err(missing(&caller, &name, &p, lacking));
                }
                other => other?,
            },
            None => kv.set(&p, value)?,
        };
        metrics
            .appended
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Json(serde_json::json!({ "rev": rev })))
    })
    .await
}

/// 403 for a caller that lacks `flag` on the path.
fn missing(caller: &Caller, store: &str, p: &KvPath, flag: Flags) -> ApiError {
    match caller.require(store, p.elements(), flag) {
        Err(e) => e,
        Ok(()) => ApiError::internal("permission check disagrees with itself"),
    }
}

/// `DELETE .../kv/PATH` (`If-Match: REV` makes it conditional): `{"rev": N}`;
/// `?recursive=true` deletes the subtree: `{"deleted": COUNT}`.
pub(crate) async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, path)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    if st.is_stopping() {
        return Err(ApiError::shutting_down());
    }
    only(&q, &["recursive"])?;
    let recursive = flag(q.get("recursive").map(String::as_str), "recursive")?;
    let p = parse_path(&path)?;
    let needed = if recursive {
        Flags::DELETE.and(Flags::ENTER)
    } else {
        Flags::DELETE
    };
    caller.require(&name, p.elements(), needed)?;
    let cond = condition(&headers)?;
    engine(st.stores.syncs_every_append(), move || {
        let kv = st.stores.get_for_writing(&name, Want::Existing)?.kv()?;
        if recursive {
            // Every value of the subtree must be deletable by the caller, or none is
            // deleted.
            let may = |q: &KvPath| caller.flags(&name, q.elements()).allows(Flags::DELETE);
            return match kv.delete_tree_checked(&p, may)? {
                Ok(n) => Ok(Json(serde_json::json!({ "deleted": n }))),
                Err(q) => Err(caller
                    .require(&name, q.elements(), Flags::DELETE)
                    .err()
                    .unwrap_or_else(|| ApiError::internal("a refused path is allowed"))),
            };
        }
        let rev = match cond {
            Some(Condition::Rev(r)) => kv.delete_if(&p, r)?,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "a delete takes If-Match: REV, not If-None-Match",
                ));
            }
            None => kv.delete(&p)?,
        };
        Ok(Json(serde_json::json!({ "rev": rev })))
    })
    .await
}

/// `GET .../keys/PATH` (`?recursive=true`: every descendant): the paths, one per line.
pub(crate) async fn keys(
    st: State<AppState>,
    caller: Caller,
    Path((name, path)): Path<(String, String)>,
    q: Params,
) -> ApiResult<Response> {
    keys_at(st, caller, name, path, q).await
}

pub(crate) async fn keys_root(
    st: State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    keys_at(st, caller, name, ":".to_string(), q).await
}

async fn keys_at(
    State(st): State<AppState>,
    caller: Caller,
    name: String,
    path: String,
    Query(q): Params,
) -> ApiResult<Response> {
    only(&q, &["recursive", "format"])?;
    let recursive = flag(q.get("recursive").map(String::as_str), "recursive")?;
    let json = match q.get("format").map(String::as_str) {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`format` must be text or json, not `{other}`"
            )));
        }
    };
    let p = parse_path(&path)?;
    caller.require(&name, p.elements(), Flags::ENTER)?;
    let text = inline(move || {
        let kv = st.stores.get(&name, Want::Existing)?.kv()?;
        let keys = if recursive {
            kv.descendants(&p)?
        } else {
            kv.children(&p)?
        };
        if json {
            // One array: a path holding a line break stays one path.
            let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
            return Ok(serde_json::json!({ "keys": texts }).to_string());
        }
        let mut out = String::new();
        for k in keys {
            out.push_str(&k.to_string());
            out.push('\n');
        }
        Ok(out)
    })
    .await?;
    Ok(Response::builder()
        .header(
            axum::http::header::CONTENT_TYPE,
            if json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            },
        )
        .body(Body::from(text))
        .unwrap_or_else(|e| ApiError::internal(e.to_string()).into_response_()))
}

/// `GET .../watch/PATH?fetch=true&from_rev=R`: the events of `reel kv watch`, as NDJSON,
/// until the client goes away or the server stops.
pub(crate) async fn watch(
    st: State<AppState>,
    caller: Caller,
    Path((name, path)): Path<(String, String)>,
    q: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    watch_at(st, caller, name, path, q, headers).await
}

pub(crate) async fn watch_root(
    st: State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    watch_at(st, caller, name, ":".to_string(), q, headers).await
}

async fn watch_at(
    State(st): State<AppState>,
    caller: Caller,
    name: String,
    path: String,
    Query(q): Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    only(&q, &["fetch", "from_rev"])?;
    let mut fetch = flag(q.get("fetch").map(String::as_str), "fetch")?;
    let mut from_rev = match q.get("from_rev") {
        None => None,
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("bad from_rev `{r}`")))?,
        ),
    };
    let sse = wants_sse(&headers);
    // A reconnecting EventSource continues after the last revision it got.
    if sse && let Some(rev) = last_event_id(&headers)? {
        (fetch, from_rev) = (false, Some(rev));
    }
    let p = parse_path(&path)?;
    // A watch enters the path and reveals which paths below it change (`x`); each
    // event's value is sent only where the caller may read it (`r`).
    let needed = Flags::ENTER;
    caller.require(&name, p.elements(), needed)?;
    let watched = p.elements().to_vec();
    let stores = st.stores.clone();
    let store_name = name.clone();
    let (store, w) = inline(move || {
        let store = stores.get(&store_name, Want::Existing)?;
        let mut w = store.kv()?.watch(&p, WatchOptions { fetch, from_rev })?;
        // A resume from a revision compaction removed is answered 410 before any header.
        w.check_start()?;
        Ok((store, w))
    })
    .await?;
    let changes = store.changes();
    let state = WatchState {
        watch: Some(w),
        changes,
        _gauge: StreamGauge::new(&st.metrics),
        live: LiveCaller::new(st.guard.clone(), caller, &name, &watched, needed),
        app: st,
        store: name,
        sse,
        in_snapshot: fetch,
    };
    Ok(if sse {
        sse_body(state)
    } else {
        ndjson_stream(state)
    })
}

struct WatchState {
    watch: Option<Watch>,
    changes: tokio::sync::watch::Receiver<u64>,
    app: AppState,
    _gauge: StreamGauge,
    /// Events of paths the caller may not read are left out.
    live: LiveCaller,
    store: String,
    /// Server-sent events, whose ids say where a reconnecting client resumes: a live
    /// event's revision; none on the snapshot's values (they come in path order, not
    /// revision order, so an id there would skip the rest on a reconnect); the
    /// snapshot's revision on `{"synced":true}`.
    sse: bool,
    in_snapshot: bool,
}

impl WatchState {
    /// `e` as a line of the response (none when the caller may not read its path).
    fn event_line(&mut self, e: &WatchEvent, w: &Watch, out: &mut Vec<u8>) -> ApiResult<()> {
        let (path, rev) = match e {
            WatchEvent::Put { path, rev, .. } | WatchEvent::Deleted { path, rev } => {
                (Some(path), Some(*rev))
            }
            WatchEvent::Synced => (None, None),
        };
        if let Some(path) = path
            && !matches!(self.live.caller(), Caller::Open | Caller::Admin { .. })
        {
            let readable = path.parse::<KvPath>().is_ok_and(|p| {
                self.live
                    .caller()
                    .flags(&self.store, p.elements())
                    .allows(Flags::READ)
            });
            if !readable {
                return Ok(());
            }
        }
        let json = e.to_json()?;
        if self.sse {
            let id = match e {
                WatchEvent::Synced => {
                    self.in_snapshot = false;
                    w.snapshot_rev()
                }
                _ if self.in_snapshot => None,
                _ => rev,
            };
            if let Some(id) = id {
                out.extend_from_slice(format!("id: {id}\n").as_bytes());
            }
            out.extend_from_slice(b"data: ");
        }
        serde_json::to_writer(&mut *out, &json).map_err(|e| ApiError::internal(e.to_string()))?;
        out.extend_from_slice(if self.sse { b"\n\n" } else { b"\n" });
        Ok(())
    }
}

/// Events handed out per engine step.
const EVENTS_PER_STEP: usize = 1000;

impl Chunks for WatchState {
    /// The next events as NDJSON lines, waiting for new ones; `None` when stopping.
    async fn step(&mut self) -> ApiResult<Option<Bytes>> {
        loop {
            // Seen before polling: an append after the poll still marks a change.
            self.changes.borrow_and_update();
            let Some(mut w) = self.watch.take() else {
                return Ok(None);
            };
            let (w, events) = inline(move || {
                let mut events = Vec::new();
                while events.len() < EVENTS_PER_STEP
                    && let Some(e) = w.next(Some(Duration::ZERO))?
                {
                    events.push(e);
                }
                Ok((w, events))
            })
            .await?;
            if !events.is_empty()
                && let Err(e) = self.live.check().await
            {
                self.watch = Some(w);
                return Err(e);
            }
            let mut lines = Vec::new();
            for e in &events {
                self.event_line(e, &w, &mut lines)?;
            }
            self.watch = Some(w);
            if !lines.is_empty() {
                return Ok(Some(Bytes::from(lines)));
            }
            if self.app.is_stopping() {
                return Ok(None);
            }
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        return Ok(None);
                    }
                }
                _ = self.app.stopping() => return Ok(None),
            }
        }
    }
}
