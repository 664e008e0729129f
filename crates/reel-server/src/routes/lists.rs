//! `/v1/stores/NAME/lists[/KEY[/info]]`: keyed lists, with exactly-once appends through
//! nonces and pages with continuation tokens, as `reel list` has them.

use super::{AppState, NoQuery, engine, inline};
use crate::auth::{Caller, acl::Flags};
use crate::error::{ApiError, ApiResult};
use crate::stores::Want;
use axum::Json;
use axum::extract::{Path, Query, State};
use reel::kv::Element;
use reel::list::{NewItem, PageRequest, Start};
use serde::Deserialize;

/// `GET .../lists`: `{"keys": [...]}`.
/// A list key as the one-element path grants are matched against.
fn key_path(key: &str) -> [Element; 1] {
    [Element::Str(key.to_string())]
}

pub(crate) async fn keys(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &[], Flags::ENTER)?;
    inline(move || {
        let lists = st.stores.get(&name, Want::Existing)?.lists()?;
        Ok(Json(serde_json::json!({"keys": lists.keys()?})))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct AppendBody {
    items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    value: serde_json::Value,
    #[serde(default)]
    nonce: Option<NonceText>,
    #[serde(default)]
    ts: Option<i64>,
}

/// A nonce as a JSON number, or as a decimal string when above 2^64 (as reel prints it).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NonceText {
    Number(u64),
    Text(String),
}

impl NonceText {
    fn value(&self) -> ApiResult<u128> {
        match self {
            NonceText::Number(n) => Ok(u128::from(*n)),
            NonceText::Text(t) => t
                .parse()
                .map_err(|_| ApiError::bad_request(format!("bad nonce `{t}`"))),
        }
    }
}

/// `POST .../lists/KEY` with `{"items":[{"value":..,"nonce":..,"ts":..}]}`: what
/// `reel list append` prints (`appended`, `duplicates`, `next_offset`).
pub(crate) async fn append(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
    _: NoQuery,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let path = key_path(&key);
    let flags = caller.flags(&name, &path);
    if !flags.allows(Flags::WRITE) && !flags.allows(Flags::CREATE) {
        caller.require(&name, &path, Flags::WRITE)?;
    }
    if st.is_stopping() {
        return Err(ApiError::shutting_down());
    }
    let bad = |e: String| ApiError::bad_request(format!("bad body: {e}; nothing was stored"));
    let text = body;
    let body: AppendBody = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    reel::check_parsed(&text, body.items.iter().map(|i| &i.value)).map_err(bad)?;
    let mut items = Vec::with_capacity(body.items.len());
    for i in body.items {
        items.push(NewItem {
            value: i.value,
            nonce: i.nonce.as_ref().map(NonceText::value).transpose()?,
            ts: i.ts,
        });
    }
    engine(st.stores.syncs_every_append(), move || {
        let store = st.stores.get_for_writing(&name, Want::CreateLists)?;
        let lists = store.lists()?;
        // Appending to an existing list needs `w`; starting a new one needs `c`.
        let exists = lists.info(&key)?.is_some();
        caller.require(
            &name,
            &path,
            if exists { Flags::WRITE } else { Flags::CREATE },
        )?;
        let r = lists.append(&key, &items)?;
        st.metrics
            .appended
            .fetch_add(r.appended, std::sync::atomic::Ordering::Relaxed);
        store.appended();
        super::stores::json(r)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadQuery {
    limit: Option<usize>,
    reverse: Option<String>,
    from_offset: Option<u64>,
    from_time: Option<i64>,
    from_nonce: Option<String>,
    #[serde(rename = "continue")]
    continuation: Option<String>,
}

/// `GET .../lists/KEY?limit&reverse&from_offset|from_time|from_nonce&continue`: the page
/// `reel list read` prints.
pub(crate) async fn read(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &key_path(&key), Flags::READ)?;
    if q.limit == Some(0) {
        return Err(ApiError::bad_request("limit must be at least 1"));
    }
    let starts = [
        q.from_offset.is_some(),
        q.from_time.is_some(),
        q.from_nonce.is_some(),
    ];
    if starts.iter().filter(|&&given| given).count() > 1 {
        // As `reel list read`, which takes one place to start (`continue` goes on from
        // its token whatever the start, as in the library).
        return Err(ApiError::bad_request(
            "give one of from_offset, from_time and from_nonce",
        ));
    }
    let start = match (q.from_offset, q.from_time, &q.from_nonce) {
        (Some(o), _, _) => Start::Offset(o),
        (_, Some(t), _) => Start::Time(t),
        (_, _, Some(n)) => Start::Nonce(
            n.parse()
                .map_err(|_| ApiError::bad_request(format!("bad from_nonce `{n}`")))?,
        ),
        _ => Start::End,
    };
    let req = PageRequest {
        reverse: super::flag(q.reverse.as_deref(), "reverse")?,
        limit: q.limit,
        start,
        continuation: q.continuation,
    };
    inline(move || {
        let lists = st.stores.get(&name, Want::Existing)?.lists()?;
        let page = lists.read(&key, &req)?;
        super::stores::json(page)
    })
    .await
}

/// `GET .../lists/KEY/info`: what `reel list info --json` prints.
pub(crate) async fn info(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
    _: NoQuery,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &key_path(&key), Flags::READ)?;
    inline(move || {
        let lists = st.stores.get(&name, Want::Existing)?.lists()?;
        let info = lists
            .info(&key)?
            .ok_or_else(|| reel::Error::NotFound(format!("list {key}")))?;
        super::stores::json(info)
    })
    .await
}
