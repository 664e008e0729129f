//! Users, passwords, tokens and grants, from outside: `reel user`/`reel acl` change them
//! while the server runs, and every refusal says whether the login failed (401) or the
//! permission is missing (403).

use crate::Server;
use crate::client::{Response, request};
use crate::common::{fails, ok, reel_stdin};

fn add_user(root: &str, name: &str, password: &str, admin: bool) {
    let mut args = vec!["user", "add", "--password-stdin"];
    if admin {
        args.push("--admin");
    }
    args.extend([root, name]);
    let out = reel_stdin(&args, &format!("{password}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn basic(user: &str, password: &str) -> String {
    use base64ct::Encoding;
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{user}:{password}").as_bytes())
    )
}

fn as_user(s: &Server, auth: &str, method: &str, path: &str, body: &str) -> Response {
    request(
        s.addr,
        method,
        path,
        &[("Authorization", auth)],
        body.as_bytes(),
    )
}

#[test]
fn once_a_user_exists_every_request_needs_credentials() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    // No users: loopback clients need nothing.
    assert_eq!(
        request(s.addr, "PUT", "/v1/stores/cfg/kv/a", &[], b"1").status,
        200
    );
    add_user(&root, "ops", "s3cret", true);
    let r = request(s.addr, "GET", "/v1/stores/cfg/kv/a", &[], b"");
    assert_eq!(r.status, 401, "{}", r.body);
    let r = as_user(&s, &basic("ops", "wrong"), "GET", "/v1/stores/cfg/kv/a", "");
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("login failed"));
    // Malformed credentials are a failed login too (a client asks for them again).
    for bad in ["Basic !!!", "Basic b3Bz"] {
        let r = as_user(&s, bad, "GET", "/v1/stores/cfg/kv/a", "");
        assert_eq!(r.status, 401, "{bad}: {}", r.body);
    }
    let r = as_user(
        &s,
        &basic("nobody", "s3cret"),
        "GET",
        "/v1/stores/cfg/kv/a",
        "",
    );
    assert_eq!(r.status, 401);
    let r = as_user(
        &s,
        &basic("ops", "s3cret"),
        "GET",
        "/v1/stores/cfg/kv/a",
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Tokens.
    let r = as_user(&s, &basic("ops", "s3cret"), "POST", "/v1/auth/token", "");
    let token = r.json()["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        as_user(&s, &bearer, "GET", "/v1/stores/cfg/kv/a", "").status,
        200
    );
    let r = as_user(&s, "Bearer 0000", "GET", "/v1/stores/cfg/kv/a", "");
    assert_eq!(r.status, 401);
    // A password change takes effect at once; a deleted user is refused.
    let out = reel_stdin(
        &["user", "passwd", "--password-stdin", &root, "ops"],
        "n3w\n",
    );
    assert!(out.status.success());
    assert_eq!(
        as_user(
            &s,
            &basic("ops", "s3cret"),
            "GET",
            "/v1/stores/cfg/kv/a",
            ""
        )
        .status,
        401
    );
    assert_eq!(
        as_user(&s, &basic("ops", "n3w"), "GET", "/v1/stores/cfg/kv/a", "").status,
        200
    );
    add_user(&root, "other", "x", false);
    ok(&["user", "del", &root, "ops"]);
    assert_eq!(
        as_user(&s, &bearer, "GET", "/v1/stores/cfg/kv/a", "").status,
        401
    );
    assert_eq!(ok(&["user", "list", &root]), "other\n");
    // The auth store is not reachable as a store.
    let r = as_user(&s, &basic("other", "x"), "GET", "/v1/stores/.reel-auth", "");
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn distkv_write_only_example_and_default_deny() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    add_user(&root, "admin", "a", true);
    add_user(&root, "w", "pw", false);
    ok(&["acl", "grant", &root, "w", "xc", "cfg", "wom.#"]);
    assert_eq!(ok(&["acl", "list", &root, "w"]), "w xc cfg wom.#\n");
    let w = basic("w", "pw");
    let r = as_user(&s, &w, "PUT", "/v1/stores/cfg/kv/wom.foo.bar", "1");
    assert_eq!(r.status, 200, "create once: {}", r.body);
    let r = as_user(&s, &w, "PUT", "/v1/stores/cfg/kv/wom.foo.bar", "2");
    assert_eq!(r.status, 403, "no overwrite: {}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("permission missing")
    );
    let r = as_user(&s, &w, "GET", "/v1/stores/cfg/kv/wom.foo.bar", "");
    assert_eq!(r.status, 403, "no read back: {}", r.body);
    let r = as_user(&s, &w, "PUT", "/v1/stores/cfg/kv/elsewhere", "1");
    assert_eq!(r.status, 403, "no matching rule, no access: {}", r.body);
    let r = as_user(&s, &w, "DELETE", "/v1/stores/cfg/kv/wom.foo.bar", "");
    assert_eq!(r.status, 403);
    // The value is the first one, as the admin sees.
    let r = as_user(
        &s,
        &basic("admin", "a"),
        "GET",
        "/v1/stores/cfg/kv/wom.foo.bar",
        "",
    );
    assert_eq!(r.json()["value"], 1);
    // Store listing shows only stores the user has grants on.
    ok(&["init", &s.dir("secret")]);
    let r = as_user(&s, &w, "GET", "/v1/stores", "");
    assert_eq!(
        r.json()["stores"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    let r = as_user(&s, &w, "GET", "/v1/stores/secret/records", "");
    assert_eq!(r.status, 403);
    // Revoking takes effect at once.
    ok(&["acl", "revoke", &root, "w", "cfg", "wom.#"]);
    let r = as_user(&s, &w, "PUT", "/v1/stores/cfg/kv/wom.new", "1");
    assert_eq!(r.status, 403);
    assert!(fails(&["acl", "revoke", &root, "w", "cfg", "wom.#"]).contains("no grant"));
    assert!(fails(&["acl", "grant", &root, "w", "rq", "cfg"]).contains("`q`"));
    assert!(fails(&["acl", "grant", &root, "nobody", "r", "cfg"]).contains("no user"));
}

#[test]
fn record_and_list_permissions() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    ok(&["init", &s.dir("ev")]);
    add_user(&root, "feed", "f", false);
    add_user(&root, "reader", "r", false);
    ok(&["acl", "grant", &root, "feed", "w", "ev"]);
    ok(&["acl", "grant", &root, "feed", "c", "orders"]);
    ok(&["acl", "grant", &root, "reader", "r", "*"]);
    let (feed, reader) = (basic("feed", "f"), basic("reader", "r"));
    assert_eq!(
        as_user(&s, &feed, "POST", "/v1/stores/ev/records", "{\"a\":1}").status,
        200
    );
    assert_eq!(
        as_user(&s, &feed, "GET", "/v1/stores/ev/records", "").status,
        403
    );
    assert_eq!(
        as_user(&s, &reader, "GET", "/v1/stores/ev/records", "")
            .lines()
            .len(),
        1
    );
    assert_eq!(
        as_user(&s, &reader, "POST", "/v1/stores/ev/records", "{}").status,
        403
    );
    // `c` starts a list; appending to an existing one needs `w`.
    let item = r#"{"items":[{"value":1}]}"#;
    assert_eq!(
        as_user(&s, &feed, "POST", "/v1/stores/orders/lists/k1", item).status,
        200
    );
    let r = as_user(&s, &feed, "POST", "/v1/stores/orders/lists/k1", item);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        as_user(&s, &reader, "GET", "/v1/stores/orders/lists/k1", "").status,
        200
    );
    assert_eq!(
        as_user(&s, &reader, "GET", "/v1/stores/orders/lists", "").status,
        403
    );
}

#[test]
fn failed_logins_are_rate_limited_per_address() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    add_user(&root, "u", "right", false);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(as_user(&s, &basic("u", "wrong"), "GET", "/v1/stores", "").status);
    }
    assert!(statuses[..10].iter().all(|&c| c == 401), "{statuses:?}");
    assert_eq!(statuses[11], 429, "{statuses:?}");
    // Even the right password waits out the window.
    assert_eq!(
        as_user(&s, &basic("u", "right"), "GET", "/v1/stores", "").status,
        429
    );
}

#[test]
fn the_remote_cli_exits_4_when_refused_and_uses_the_environments_credentials() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    add_user(&root, "u", "pw", false);
    ok(&["acl", "grant", &root, "u", "r", "cfg"]);
    ok(&["kv", "set", &s.dir("cfg"), "a", "1"]);
    let url = format!("http://{}/cfg", s.addr);
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let out = std::process::Command::new(crate::common::bin())
            .args(args)
            .env_remove("REEL_USER")
            .env_remove("REEL_PASSWORD")
            .env_remove("REEL_TOKEN")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, _, err) = run(&[], &["kv", "get", &url, "a"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("login failed"), "{err}");
    let (code, _, err) = run(
        &[("REEL_USER", "u"), ("REEL_PASSWORD", "no")],
        &["kv", "get", &url, "a"],
    );
    assert_eq!(code, Some(4));
    assert!(err.contains("login failed"), "{err}");
    let good = [("REEL_USER", "u"), ("REEL_PASSWORD", "pw")];
    assert_eq!(run(&good, &["kv", "get", &url, "a"]).1, "\"1\"\n");
    let (code, _, err) = run(&good, &["kv", "set", &url, "a", "2"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("permission missing"), "{err}");
    // A token in REEL_TOKEN.
    let r = as_user(&s, &basic("u", "pw"), "POST", "/v1/auth/token", "");
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        run(&[("REEL_TOKEN", &token)], &["kv", "get", &url, "a"]).1,
        "\"1\"\n"
    );
}

#[test]
fn an_expired_token_is_refused_as_a_failed_login() {
    let s = Server::start(&["--token-ttl", "1"]);
    let root = s.root.display().to_string();
    add_user(&root, "u", "pw", true);
    let r = as_user(&s, &basic("u", "pw"), "POST", "/v1/auth/token", "");
    assert_eq!(r.json()["expires_in"], 1);
    let bearer = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    assert_eq!(as_user(&s, &bearer, "GET", "/v1/stores", "").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let r = as_user(&s, &bearer, "GET", "/v1/stores", "");
    assert_eq!(r.status, 401);
    assert!(
        r.json()["error"].as_str().unwrap().contains("expired"),
        "{}",
        r.body
    );
}

/// Requests over a subtree apply the rule of every path in it: a narrower rule that
/// withholds `r` keeps a value out of recursive gets and watches, and one that withholds
/// `d` makes a recursive delete refuse, deleting nothing.
#[test]
fn subtree_requests_apply_the_rules_of_every_path_under_them() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    let cfg = s.dir("cfg");
    for (path, value) in [
        ("app.port", "1"),
        ("app.hidden.key", "TOPSECRET"),
        ("app.locked.k1", "keep"),
    ] {
        ok(&["kv", "set", &cfg, path, value]);
    }
    add_user(&root, "admin", "a", true);
    add_user(&root, "carol", "c", false);
    add_user(&root, "dave", "d", false);
    ok(&["acl", "grant", &root, "carol", "rx", "cfg", "app.#"]);
    ok(&["acl", "grant", &root, "carol", "x", "cfg", "app.hidden.#"]);
    ok(&["acl", "grant", &root, "dave", "rxwcd", "cfg", "app.#"]);
    ok(&["acl", "grant", &root, "dave", "rx", "cfg", "app.locked.#"]);
    let (carol, dave) = (basic("carol", "c"), basic("dave", "d"));
    let r = as_user(
        &s,
        &carol,
        "GET",
        "/v1/stores/cfg/kv/app?recursive=true",
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["port"]["_"], "1");
    assert!(!r.body.contains("TOPSECRET"), "{}", r.body);
    let mut w = crate::client::stream_with(
        s.addr,
        "/v1/stores/cfg/watch/app?fetch=true",
        &[("Authorization", &carol)],
    );
    let mut seen = Vec::new();
    while let Some(line) = w.next_json() {
        if line["synced"] == true {
            break;
        }
        seen.push(line["path"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["app.locked.k1", "app.port"]);
    ok(&["kv", "set", &cfg, "app.hidden.key", "NEW"]);
    ok(&["kv", "set", &cfg, "app.port", "2"]);
    assert_eq!(
        w.next_json().unwrap()["path"],
        "app.port",
        "the hidden change is left out"
    );
    // erin may enter app (`x`) but read only under app.locked: a recursive get and a
    // watch of app show exactly those values.
    add_user(&root, "erin", "e", false);
    ok(&["acl", "grant", &root, "erin", "x", "cfg", "app.#"]);
    ok(&["acl", "grant", &root, "erin", "rx", "cfg", "app.locked.#"]);
    let erin = basic("erin", "e");
    let r = as_user(&s, &erin, "GET", "/v1/stores/cfg/kv/app?recursive=true", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"locked": {"k1": {"_": "keep"}}})
    );
    let mut w = crate::client::stream_with(
        s.addr,
        "/v1/stores/cfg/watch/app?fetch=true",
        &[("Authorization", &erin)],
    );
    assert_eq!(w.status, 200);
    assert_eq!(w.next_json().unwrap()["path"], "app.locked.k1");
    assert_eq!(w.next_json().unwrap()["synced"], true);
    // Entering a subtree none of whose values may be read finds nothing in it; without
    // `x` at the path, the request is refused.
    let r = as_user(
        &s,
        &carol,
        "GET",
        "/v1/stores/cfg/kv/app.hidden?recursive=true",
        "",
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = as_user(
        &s,
        &erin,
        "GET",
        "/v1/stores/cfg/kv/other?recursive=true",
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // dave may delete under app, but not under app.locked: nothing is deleted.
    let r = as_user(
        &s,
        &dave,
        "DELETE",
        "/v1/stores/cfg/kv/app?recursive=true",
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("app.locked.k1"), "{}", r.body);
    let r = as_user(
        &s,
        &basic("admin", "a"),
        "GET",
        "/v1/stores/cfg/kv/app?recursive=true",
        "",
    );
    assert_eq!(r.json()["port"]["_"], "2");
    assert_eq!(r.json()["locked"]["k1"]["_"], "keep");
    // Where every path may be deleted, the subtree goes.
    let r = as_user(
        &s,
        &dave,
        "DELETE",
        "/v1/stores/cfg/kv/app.port?recursive=true",
        "",
    );
    assert_eq!(
        (r.status, r.json()["deleted"].clone()),
        (200, 1.into()),
        "{}",
        r.body
    );
}

/// An ack moves a reader forward only: a late or repeated ack below its position does
/// not make it deliver again (moving back is `rewind`, which needs `a`).
#[test]
fn an_ack_never_moves_a_reader_back() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    let ev = s.dir("ev");
    ok(&["init", &ev]);
    for i in 0..10 {
        ok(&["write", &ev, &format!("{{\"i\":{i}}}")]);
    }
    add_user(&root, "r", "r", false);
    ok(&["acl", "grant", &root, "r", "r", "ev"]);
    let r = basic("r", "r");
    let ack = |seq: u64| {
        let resp = request(
            s.addr,
            "POST",
            "/v1/stores/ev/readers/billing/ack",
            &[("Authorization", &r), ("Content-Type", "application/json")],
            format!("{{\"seq\":{seq}}}").as_bytes(),
        );
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.json()["position"].as_u64().unwrap()
    };
    assert_eq!(ack(6), 7);
    assert_eq!(ack(2), 7, "a stale ack changes nothing");
    assert_eq!(ack(8), 9);
}

/// A token dies with the password it was issued under: after `user passwd`, or after
/// `user del` and `user add` of the same name, it is refused.
#[test]
fn a_token_dies_with_its_users_password() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    add_user(&root, "ops", "one", true);
    let token = |password: &str| {
        let r = as_user(&s, &basic("ops", password), "POST", "/v1/auth/token", "");
        format!("Bearer {}", r.json()["token"].as_str().unwrap())
    };
    let first = token("one");
    assert_eq!(as_user(&s, &first, "GET", "/v1/stores", "").status, 200);
    let out = reel_stdin(
        &["user", "passwd", "--password-stdin", &root, "ops"],
        "two\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = as_user(&s, &first, "GET", "/v1/stores", "");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("password changed")
    );
    let second = token("two");
    ok(&["user", "del", &root, "ops"]);
    add_user(&root, "ops", "two", true);
    assert_eq!(as_user(&s, &second, "GET", "/v1/stores", "").status, 401);
    // Refusals axum makes itself are JSON too, as every error.
    let r = as_user(
        &s,
        &token("two"),
        "GET",
        "/v1/stores/x/records?from_seq=abc",
        "",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"].is_string(), "{}", r.body);
}

#[test]
fn open_streams_end_when_their_user_loses_access() {
    use crate::client::stream_with;
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    add_user(&root, "ops", "adminpw", true);
    add_user(&root, "gina", "gpw", false);
    let (admin, gina) = (basic("ops", "adminpw"), basic("gina", "gpw"));
    ok(&["init", &format!("{root}/ev")]);
    ok(&["acl", "grant", &root, "gina", "rx", "ev"]);
    ok(&["acl", "grant", &root, "gina", "rx", "cfg", "app.#"]);
    assert_eq!(
        as_user(&s, &admin, "POST", "/v1/stores/ev/records", r#"{"n":1}"#).status,
        200
    );
    assert_eq!(
        as_user(&s, &admin, "PUT", "/v1/stores/cfg/kv/app.port", "1").status,
        200
    );
    // A user's status of a store shows paths below the server's root, not the root.
    let st = as_user(&s, &gina, "GET", "/v1/stores/ev", "").json();
    assert_eq!(st["dir"], "ev", "{st}");
    let st = as_user(&s, &admin, "GET", "/v1/stores/ev", "").json();
    assert_eq!(st["dir"].as_str().unwrap(), format!("{root}/ev"));
    let auth = [("Authorization", gina.as_str())];
    let mut follow = stream_with(
        s.addr,
        "/v1/stores/ev/records?follow=true&from_seq=0",
        &auth,
    );
    let mut watch = stream_with(s.addr, "/v1/stores/cfg/watch/app", &auth);
    assert_eq!(follow.next_json().unwrap()["value"]["n"], 1);
    // Revoked: the follow stops at its next chunk, with the reason as its last line.
    ok(&["acl", "revoke", &root, "gina", "ev"]);
    as_user(&s, &admin, "POST", "/v1/stores/ev/records", r#"{"n":2}"#);
    let last = follow.next_json().expect("a last line");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("permission missing"),
        "{last}"
    );
    assert_eq!(follow.next_line(), None, "the stream ended");
    // Metrics name a store only to a user who may read it.
    let m = as_user(&s, &gina, "GET", "/metrics", "").body;
    assert!(m.contains("reel_next_seq{store=\"cfg\"}"), "{m}");
    assert!(!m.contains("store=\"ev\""), "{m}");
    assert!(m.contains("reel_requests_total"), "{m}");
    let m = as_user(&s, &admin, "GET", "/metrics", "").body;
    assert!(m.contains("reel_next_seq{store=\"ev\"}"), "{m}");
    // Deleted: the watch stops likewise, and never shows the change made after.
    ok(&["user", "del", &root, "gina"]);
    as_user(&s, &admin, "PUT", "/v1/stores/cfg/kv/app.port", "2");
    let last = watch.next_json().expect("a last line");
    assert!(
        last["error"].as_str().unwrap().contains("no longer exists"),
        "{last}"
    );
    assert_eq!(watch.next_line(), None, "the stream ended");
    // The last user deleted: its stream ends too (the server is open to loopback again,
    // which is not what the stream was authorised as).
    let admin_auth = [("Authorization", admin.as_str())];
    let mut follow = stream_with(s.addr, "/v1/stores/ev/records?follow=true", &admin_auth);
    ok(&["user", "del", &root, "ops"]);
    request(s.addr, "POST", "/v1/stores/ev/records", &[], br#"{"n":3}"#);
    // The records from before may come first; the one appended after never does.
    loop {
        let line = follow.next_json().expect("an error line before the end");
        if line["error"].is_string() {
            break;
        }
        assert_ne!(line["value"]["n"], 3, "sent after the user was deleted");
    }
    assert_eq!(follow.next_line(), None, "the stream ended");
}
