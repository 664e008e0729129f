//! The HTTP routes of `reel serve` (`reel_server::app`) on arbitrary requests: method,
//! path (store names, kv paths, list keys, query strings, percent-escapes), headers
//! (credentials, conditions, Last-Event-ID) and bodies (NDJSON, JSON items, values).
//!
//! Input: a method byte, then NUL-separated fields: the path and query, an Authorization
//! value, an If-Match value, then the body (the rest). Nothing may panic, and no request
//! may get a 500: bad input is the client's error (4xx) and must say so. Also the
//! password and pattern parsers on the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tower::ServiceExt;

struct Env {
    _root: tempfile::TempDir,
    app: axum::Router,
    rt: tokio::runtime::Runtime,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let app = reel_server::app(root.path(), reel::Durability::None);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Env { _root: root, app, rt }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else { return };
    let method = ["GET", "POST", "PUT", "DELETE"][usize::from(m % 4)];
    let mut parts = rest.splitn(4, |&b| b == 0);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).to_string();
    let auth = parts.next().unwrap_or_default();
    let if_match = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default().to_vec();
    if let Ok(text) = std::str::from_utf8(auth) {
        let _ = reel_server::auth::acl::Pattern::parse(text);
        let _ = reel_server::auth::acl::Flags::parse(text);
        let _ = reel_server::auth::password::verify(text, text);
    }
    // Streams that follow forever are not what this target is about.
    if path.contains("follow") || path.contains("/watch") || path.contains("wait=") {
        return;
    }
    let uri = format!("/{}", path.trim_start_matches('/'));
    let mut req = axum::http::Request::builder().method(method).uri(&uri);
    if !auth.is_empty() {
        req = req.header("authorization", auth);
    }
    if !if_match.is_empty() {
        req = req.header("if-match", if_match);
    }
    let Ok(req) = req.body(axum::body::Body::from(body)) else { return };
    let env = env();
    let status = env.rt.block_on(async {
        let resp = env.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        // Read the whole body, as a client would.
        let _ = axum::body::to_bytes(resp.into_body(), 1 << 20).await;
        status
    });
    assert!(!status.is_server_error(), "{method} {uri}: {status}");
});
