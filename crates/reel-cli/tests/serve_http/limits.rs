//! Requests that once crashed the server, hung it, or were silently misread: kv paths
//! deeper than the limit, waits beyond a `Duration`, unknown query parameters, and
//! concurrent password guesses.

use crate::Server;
use crate::client::{get, request};
use crate::common::{fails, ok};

/// A kv path of `depth` elements `a.a.a...`.
fn deep(depth: usize) -> String {
    vec!["a"; depth].join(".")
}

#[test]
fn kv_paths_deeper_than_100_elements_are_refused_on_every_write() {
    let s = Server::start(&[]);
    // Over HTTP: refused before the store is created.
    let r = request(
        s.addr,
        "PUT",
        &format!("/v1/stores/deep/kv/{}", deep(101)),
        &[],
        b"1",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("at most 100"),
        "{}",
        r.body
    );
    assert!(
        !s.root.join("deep").exists(),
        "a refused write created no store"
    );
    // A thousand times deeper is refused the same way, and the server lives on.
    let r = request(
        s.addr,
        "PUT",
        &format!("/v1/stores/deep/kv/{}", deep(30_000)),
        &[],
        b"1",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // With a condition too.
    let r = request(
        s.addr,
        "PUT",
        &format!("/v1/stores/deep/kv/{}", deep(101)),
        &[("If-None-Match", "*")],
        b"1",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // Locally and through the remote CLI.
    let dir = s.dir("local");
    let err = fails(&["kv", "set", &dir, &deep(101), "1"]);
    assert!(err.contains("at most 100"), "{err}");
    let err = fails(&["kv", "set", "--if-absent", &dir, &deep(101), "1"]);
    assert!(err.contains("at most 100"), "{err}");
    let url = format!("http://{}/deep", s.addr);
    let err = fails(&["kv", "set", &url, &deep(101), "1"]);
    assert!(err.contains("at most 100"), "{err}");

    // The deepest allowed path, holding a value nested 100 deep: the recursive answer
    // nests 200 levels, past serde_json's parsing limit, and prints the same both ways.
    let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    ok(&["kv", "set", "-e", &url, &deep(100), &nested]);
    ok(&["kv", "set", "-e", &dir, &deep(100), &nested]);
    let r = get(s.addr, "/v1/stores/deep/kv/a?recursive=true");
    assert_eq!(r.status, 200);
    let remote = ok(&["kv", "get", "-r", &url, "a"]);
    let local = ok(&["kv", "get", "-r", &dir, "a"]);
    assert_eq!(remote, local);
    assert!(
        remote.ends_with(&format!("{nested}}}{}\n", "}".repeat(99))),
        "{remote}"
    );
    assert_eq!(get(s.addr, "/healthz").status, 200);
}

#[test]
fn a_reader_wait_beyond_any_duration_is_capped_not_a_crash() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    ok(&["write", &s.dir("ev"), "{\"n\":1}"]);
    for wait in ["1e20", "18446744073709551615", "1e308"] {
        let r = request(
            s.addr,
            "POST",
            &format!("/v1/stores/ev/readers/r/next?wait={wait}"),
            &[],
            b"",
        );
        assert_eq!(r.status, 200, "wait={wait}: {}", r.body);
        assert_eq!(r.lines()[0]["value"]["n"], 1);
    }
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/readers/r/next?wait=inf",
        &[],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn every_route_refuses_a_query_parameter_it_does_not_take() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    for i in 0..5 {
        ok(&["write", &s.dir("ev"), &format!("{{\"n\":{i}}}")]);
    }
    ok(&["kv", "set", &s.dir("cfg"), "k", "1"]);
    ok(&["list", "append", &s.dir("li"), "c", "1"]);
    let json = [("Content-Type", "application/json")];
    // A guessed `if_rev` must not turn a compare-and-set into an unconditional write.
    let r = request(s.addr, "PUT", "/v1/stores/cfg/kv/k?if_rev=99", &[], b"2");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("`if_rev`"),
        "{}",
        r.body
    );
    assert_eq!(ok(&["kv", "get", &s.dir("cfg"), "k"]), "\"1\"\n");
    // A rewind's target goes in the body: in the query it would move to the oldest.
    ok(&["read", "--reader", "r", "--count", "4", &s.dir("ev")]);
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/readers/r/rewind?to_seq=2",
        &json,
        b"{}",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("`to_seq`"), "{}", r.body);
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/readers/r/ack?seq=4",
        &json,
        b"{\"seq\":4}",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/readers/r/ack",
        &json,
        b"{\"seq\":4,\"x\":1}",
    );
    // axum's 422 for a body of the wrong shape is 400, as every malformed request.
    assert_eq!(r.status, 400, "an unknown body field too: {}", r.body);
    let r = request(s.addr, "POST", "/v1/stores/ev/readers/r/next", &[], b"");
    assert_eq!(
        r.lines()[0]["seq"],
        4,
        "nothing moved the reader: {}",
        r.body
    );
    for (method, path) in [
        ("GET", "/healthz?x=1"),
        ("GET", "/metrics?x=1"),
        ("GET", "/v1/stores?x=1"),
        ("GET", "/v1/stores/ev?x=1"),
        ("GET", "/v1/stores/ev/views?x=1"),
        ("GET", "/v1/stores/ev/verify?x=1"),
        ("POST", "/v1/stores/ev/groups/g/ack?x=1"),
        ("GET", "/v1/stores/li/lists?x=1"),
        ("POST", "/v1/stores/li/lists/c?x=1"),
        ("GET", "/v1/stores/li/lists/c/info?x=1"),
    ] {
        let body: &[u8] = if method == "POST" { b"{}" } else { b"" };
        let r = request(s.addr, method, path, &json, body);
        assert_eq!(r.status, 400, "{method} {path}: {}", r.body);
        assert!(
            r.body.contains("unknown query parameter `x`"),
            "{path}: {}",
            r.body
        );
    }
}

#[test]
fn concurrent_password_guesses_are_counted_before_they_are_checked() {
    let s = Server::start(&[]);
    let root = s.root.display().to_string();
    let out =
        crate::common::reel_stdin(&["user", "add", "--password-stdin", &root, "u"], "right\n");
    assert!(out.status.success());
    let addr = s.addr;
    let guesses: Vec<_> = (0..60)
        .map(|i| {
            std::thread::spawn(move || {
                use base64ct::Encoding;
                let auth = format!(
                    "Basic {}",
                    base64ct::Base64::encode_string(format!("u:wrong{i}").as_bytes())
                );
                request(addr, "GET", "/v1/stores", &[("Authorization", &auth)], b"").status
            })
        })
        .collect();
    let statuses: Vec<u16> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    let checked = statuses.iter().filter(|&&c| c == 401).count();
    assert!(
        checked <= 10,
        "{checked} guesses were checked: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|&c| c == 401 || c == 429),
        "{statuses:?}"
    );
    // The limit holds for a right password too, for the rest of the minute.
    let out = std::process::Command::new(crate::common::bin())
        .args(["kv", "get", &format!("http://{addr}/cfg"), "k"])
        .env("REEL_USER", "u")
        .env("REEL_PASSWORD", "right")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("too many failed logins"));
}

/// Error messages named the server's files by absolute path (where it keeps its data),
/// while answers show paths relative to the root (docs/HTTP.md, "Stores").
#[test]
fn error_messages_name_paths_relative_to_the_root() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start_in(root.path(), &[]);
    ok(&["kv", "set", &s.dir("cfg"), "a", "1"]);
    let r = request(s.addr, "POST", "/v1/stores/cfg/records", &[], b"1\n");
    assert!(r.status >= 400, "{}", r.status);
    let body = r.body;
    let root_text = root.path().display().to_string();
    assert!(!body.contains(&root_text), "{body}");
    assert!(body.contains("cfg"), "{body}");
}

/// `?key=%FF` and `?key=%FE` were both stored under U+FFFD: two keys became one.
#[test]
fn a_query_that_is_not_utf8_is_refused() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    let r = request(s.addr, "POST", "/v1/stores/ev/records?key=%FF", &[], b"1\n");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("UTF-8"), "{}", r.body);
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/records?key=%C3%A9",
        &[],
        b"1\n",
    );
    assert_eq!(r.status, 200, "{}", r.body);
}
