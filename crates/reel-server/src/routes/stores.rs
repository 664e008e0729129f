//! `/healthz`, the list of stores and a store's status.

use super::{AppState, NoQuery, inline};
use crate::auth::{Caller, acl::Flags};
use crate::error::{ApiError, ApiResult};
use crate::stores::Want;
use axum::Json;
use axum::extract::{Path, State};

pub(crate) async fn healthz(_: NoQuery) -> &'static str {
    "ok\n"
}

/// `GET /v1/stores`: `{"stores":[{"name":..,"kind":..}]}`.
/// Only the stores the caller has a grant for are listed.
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    _: NoQuery,
) -> ApiResult<Json<serde_json::Value>> {
    inline(move || {
        let mut out = Vec::new();
        for name in st.stores.names()? {
            if !caller.sees(&name) {
                continue;
            }
            let kind = match st.stores.get(&name, Want::Existing) {
                Ok(s) => s.spool().log().kind().as_str().to_string(),
                Err(e) => format!("unreadable: {e}"),
            };
            out.push(serde_json::json!({"name": name, "kind": kind}));
        }
        Ok(Json(serde_json::json!({ "stores": out })))
    })
    .await
}

/// Runs `f` on store `name` as a spool for a caller who may read it; answers its JSON.
async fn spool_json<T: serde::Serialize>(
    st: AppState,
    caller: Caller,
    name: String,
    slow: bool,
    f: impl FnOnce(&reel::Spool) -> ApiResult<T> + Send + 'static,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &[], Flags::READ)?;
    let admin = matches!(caller, Caller::Open | Caller::Admin { .. });
    crate::routes::engine(slow, move || {
        let spool = st.stores.get(&name, Want::Existing)?.spool();
        let mut v = json(f(&spool)?)?;
        if !admin {
            // Where the server keeps its files is the operator's business: a user sees
            // paths below the server's root (`ev`, `ev/segments/...`), not the root.
            relative_to(&mut v.0, st.stores.root());
        }
        Ok(v)
    })
    .await
}

/// Rewrites every string of `v` that is a path below `root` as relative to it.
fn relative_to(v: &mut serde_json::Value, root: &std::path::Path) {
    match v {
        serde_json::Value::String(s) => {
            if let Ok(rel) = std::path::Path::new(s.as_str()).strip_prefix(root) {
                *s = rel.display().to_string();
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| relative_to(i, root)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|i| relative_to(i, root)),
        _ => {}
    }
}

/// `v` as a JSON answer.
pub(crate) fn json(v: impl serde::Serialize) -> ApiResult<Json<serde_json::Value>> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /v1/stores/NAME`: what `reel status --json` prints.
pub(crate) async fn status(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<serde_json::Value>> {
    spool_json(st, caller, name, false, |s| Ok(s.status()?)).await
}

/// `GET /v1/stores/NAME/views`: what `reel view list --json` prints.
pub(crate) async fn views(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<serde_json::Value>> {
    spool_json(st, caller, name, false, |s| Ok(reel::view::all_views(s)?)).await
}

/// `GET /v1/stores/NAME/verify`: what `reel verify --json` prints (it reads every byte:
/// run on the blocking pool).
pub(crate) async fn verify(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<serde_json::Value>> {
    spool_json(st, caller, name, true, |s| Ok(verify_json(&s.verify()?))).await
}

/// `POST /v1/auth/token` with HTTP Basic credentials: `{"token": .., "expires_in": SECS}`;
/// send it as `Authorization: Bearer TOKEN`.
pub(crate) async fn token(
    State(st): State<AppState>,
    caller: Caller,
    _: NoQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let Some(user) = caller.name() else {
        return Err(ApiError::bad_request(
            "no users are defined: this server needs no token",
        ));
    };
    let token = st.guard.issue_token(user)?;
    Ok(Json(
        serde_json::json!({"token": token, "expires_in": st.guard.token_ttl.as_secs()}),
    ))
}

/// `GET /metrics`: Prometheus text (any authenticated user once users exist). The series
/// of a store (its name, its readers' and followers' names) are shown only to a caller
/// with a grant on it, the stores `GET /v1/stores` lists.
pub(crate) async fn metrics(
    State(st): State<AppState>,
    caller: Caller,
    _: NoQuery,
) -> ApiResult<String> {
    let stores = st.stores.clone();
    let extra = inline(move || {
        use std::fmt::Write as _;
        let mut out = String::from(
            "# HELP reel_next_seq The seq the next append gets, per open store.\n# TYPE reel_next_seq gauge\n",
        );
        let mut lag = String::from(
            "# HELP reel_reader_unread Records a named reader has not read yet.\n# TYPE reel_reader_unread gauge\n",
        );
        let mut followers = String::from(
            "# HELP reel_follower_next_seq The next seq each follower reading frames will get.\n# TYPE reel_follower_next_seq gauge\n",
        );
        for s in stores.open_stores() {
            if !caller.sees(s.name()) {
                continue;
            }
            let spool = s.spool();
            let _ = writeln!(out, "reel_next_seq{{store=\"{}\"}} {}", s.name(), spool.next_seq());
            for (who, at) in s.followers.lock().unwrap_or_else(|e| e.into_inner()).values() {
                let _ = writeln!(
                    followers,
                    "reel_follower_next_seq{{store=\"{}\",follower=\"{who}\"}} {}",
                    s.name(),
                    at.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
            if let Ok(status) = spool.status() {
                for r in status.readers {
                    let _ = writeln!(
                        lag,
                        "reel_reader_unread{{store=\"{}\",reader=\"{}\"}} {}",
                        s.name(),
                        r.name,
                        r.unread
                    );
                }
            }
        }
        Ok(out + &lag + &followers)
    })
    .await?;
    Ok(st.metrics.render(&extra))
}

/// The object `reel verify --json` prints.
pub fn verify_json(rep: &reel::VerifyReport) -> serde_json::Value {
    let damage: Vec<serde_json::Value> = rep
        .damage
        .iter()
        .map(|d| serde_json::json!({"file": d.path, "offset": d.offset, "problem": d.what, "resume_seq": d.resume_seq}))
        .collect();
    serde_json::json!({"ok": rep.is_ok(), "segments": rep.segments, "records": rep.records, "bytes": rep.bytes, "damage": damage})
}
