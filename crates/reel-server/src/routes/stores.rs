//! `/healthz`, the list of stores and a store's status.

use super::{AppState, blocking};
use crate::error::ApiResult;
use crate::stores::Want;
use axum::Json;
use axum::extract::{Path, State};

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /v1/stores`: `{"stores":[{"name":..,"kind":..}]}`.
pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    blocking(move || {
        let mut out = Vec::new();
        for name in st.stores.names()? {
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
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    blocking(move || {
        let store = st.stores.get(&name, Want::Existing)?;
        let status = store.spool().status()?;
        Ok(Json(serde_json::to_value(&status).map_err(|e| {
            crate::error::ApiError::internal(e.to_string())
        })?))
    })
    .await
}
