//! Clients that stall: a half-sent request head is dropped after the header timeout,
//! and a shutdown waits for a stalled request no longer than its grace period, then
//! syncs the stores and exits 0.

use crate::Server;
use crate::client::get;
use crate::common::{lines, ok};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn a_half_sent_request_head_is_dropped_after_the_header_timeout() {
    let s = Server::start(&[]);
    let mut slow = TcpStream::connect(s.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    // The server closes the connection (with or without a 408 first).
    let _ = slow.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(20),
        "closed after {waited:?}"
    );
    // Everyone else was served meanwhile and still is.
    assert_eq!(get(s.addr, "/healthz").status, 200);
}

#[test]
fn a_shutdown_waits_for_a_stalled_request_at_most_its_grace_period() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start_in(root.path(), &[]);
    ok(&["init", &s.dir("ev")]);
    let dir = s.dir("ev");
    // Acknowledged with durability `batch`: synced at the latest when the server stops.
    let r = crate::client::request(
        s.addr,
        "POST",
        "/v1/stores/ev/records?durability=batch",
        &[],
        b"{\"n\":1}\n",
    );
    assert_eq!(r.status, 200);
    // A body that never completes, and a head that never completes.
    let mut body = TcpStream::connect(s.addr).unwrap();
    body.write_all(
        b"POST /v1/stores/ev/records HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"n\":",
    )
    .unwrap();
    let mut head = TcpStream::connect(s.addr).unwrap();
    head.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = s.terminate_within(Duration::from_secs(40));
    let took = started.elapsed();
    let status = status.expect("the server still runs 40 s after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(20), "the shutdown took {took:?}");
    let records = lines(&ok(&["stream", &dir]));
    assert_eq!(records, vec![serde_json::json!({"n": 1})]);
    drop((body, head));
}

/// A server's kv writes append without applying the view: one that only wrote left no
/// checkpoint at all, and the next opener replayed everything it wrote.
#[test]
fn a_stopping_server_checkpoints_the_views_of_the_stores_it_wrote() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start_in(root.path(), &[]);
    for i in 0..50 {
        let r =
            crate::client::request(s.addr, "PUT", &format!("/v1/stores/cfg/kv/k{i}"), &[], b"1");
        assert_eq!(r.status, 200);
    }
    let dir = s.dir("cfg");
    let status = s.terminate_within(Duration::from_secs(40));
    assert!(status.expect("stopped").success());
    let views: serde_json::Value =
        serde_json::from_str(&ok(&["view", "list", "--json", &dir])).unwrap();
    let kv = views
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "kv"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(kv["since"], 49, "{views}: the last seq applied");
}
