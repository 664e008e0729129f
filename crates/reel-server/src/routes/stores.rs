//! `/healthz`, the list of stores and a store's status.

use super::{AppState, blocking};
use crate::auth::{Caller, acl::Flags};
use crate::error::{ApiError, ApiResult};
use crate::stores::Want;
use axum::Json;
use axum::extract::{Path, State};

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /v1/stores`: `{"stores":[{"name":..,"kind":..}]}`.
/// Only the stores the caller has a grant for are listed.
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    blocking(move || {
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

/// `GET /v1/stores/NAME`: what `reel status --json` prints.
pub(crate) async fn status(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &[], Flags::READ)?;
    blocking(move || {
        let store = st.stores.get(&name, Want::Existing)?;
        let status = store.spool().status()?;
        Ok(Json(
            serde_json::to_value(&status).map_err(|e| ApiError::internal(e.to_string()))?,
        ))
    })
    .await
}

/// `POST /v1/auth/token` with HTTP Basic credentials: `{"token": .., "expires_in": SECS}`;
/// send it as `Authorization: Bearer TOKEN`.
pub(crate) async fn token(
    State(st): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    let Some(user) = caller.name() else {
        return Err(ApiError::bad_request(
            "no users are defined: this server needs no token",
        ));
    };
    let token = st.guard.issue_token(user);
    Ok(Json(
        serde_json::json!({"token": token, "expires_in": st.guard.token_ttl.as_secs()}),
    ))
}

/// `GET /metrics`: Prometheus text (any authenticated user once users exist).
pub(crate) async fn metrics(State(st): State<AppState>, _caller: Caller) -> ApiResult<String> {
    let stores = st.stores.clone();
    let extra = blocking(move || {
        use std::fmt::Write as _;
        let mut out = String::from(
            "# HELP reel_next_seq The seq the next append gets, per open store.\n# TYPE reel_next_seq gauge\n",
        );
        let mut lag = String::from(
            "# HELP reel_reader_unread Records a named reader has not read yet.\n# TYPE reel_reader_unread gauge\n",
        );
        for s in stores.open_stores() {
            let spool = s.spool();
            let _ = writeln!(out, "reel_next_seq{{store=\"{}\"}} {}", s.name(), spool.next_seq());
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
        Ok(out + &lag)
    })
    .await?;
    Ok(st.metrics.render(&extra))
}
