//! Live reads (followed records, kv watches), many clients at once, and a clean stop.

use crate::Server;
use crate::client::{get, request, stream, stream_with};
use crate::common::ok;
use std::collections::HashSet;

#[test]
fn a_follower_gets_records_appended_by_other_processes_as_they_come() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    ok(&["write", &s.dir("ev"), "{\"n\":0}"]);
    let mut f = stream(s.addr, "/v1/stores/ev/records?from_seq=0&follow=true");
    assert_eq!(f.status, 200);
    assert_eq!(f.next_json().unwrap()["value"]["n"], 0);
    // From a local process and over HTTP, interleaved.
    ok(&["write", &s.dir("ev"), "{\"n\":1}"]);
    assert_eq!(f.next_json().unwrap()["seq"], 1);
    request(s.addr, "POST", "/v1/stores/ev/records", &[], b"{\"n\":2}\n");
    assert_eq!(f.next_json().unwrap()["value"]["n"], 2);
}

#[test]
fn a_watch_sends_the_snapshot_then_live_changes() {
    let s = Server::start(&[]);
    ok(&["kv", "set", &s.dir("cfg"), "app.a", "1"]);
    let mut w = stream(s.addr, "/v1/stores/cfg/watch/app?fetch=true");
    assert_eq!(w.status, 200);
    assert_eq!(w.next_json().unwrap()["path"], "app.a");
    assert_eq!(w.next_json().unwrap(), serde_json::json!({"synced": true}));
    ok(&["kv", "set", &s.dir("cfg"), "other.x", "1"]);
    ok(&["kv", "del", &s.dir("cfg"), "app.a"]);
    let e = w.next_json().unwrap();
    assert_eq!(
        e["path"], "app.a",
        "changes outside the subtree are not sent: {e}"
    );
    assert_eq!(e["deleted"], true);
    let r = request(s.addr, "PUT", "/v1/stores/cfg/kv/app.b", &[], b"[1,2]");
    let rev = r.json()["rev"].clone();
    let e = w.next_json().unwrap();
    assert_eq!(e["value"], serde_json::json!([1, 2]));
    assert_eq!(e["rev"], rev);
    // Resuming after a revision.
    let mut again = stream(
        s.addr,
        &format!(
            "/v1/stores/cfg/watch/app?from_rev={}",
            rev.as_u64().unwrap() - 1
        ),
    );
    assert_eq!(again.next_json().unwrap()["path"], "app.b");
}

#[test]
fn a_watch_resumed_from_a_compacted_revision_is_answered_410() {
    let s = Server::start(&[]);
    // Small, so that the writes fill sealed segments, which compaction rewrites.
    ok(&["init", "--kind", "kv", "--size", "64k", &s.dir("cfg")]);
    for i in 0..1200 {
        let path = format!("/v1/stores/cfg/kv/k.a{}", i % 3);
        assert_eq!(request(s.addr, "PUT", &path, &[], b"1").status, 200);
    }
    ok(&["compact", &s.dir("cfg")]);
    let r = request(s.addr, "GET", "/v1/stores/cfg/watch?from_rev=1", &[], b"");
    assert_eq!(r.status, 410, "{}", r.body);
    assert!(r.body.contains("compacted away"), "{}", r.body);
    // An EventSource reconnecting with that revision gets the same answer: a 410 stops
    // it from reconnecting for ever.
    let sse = [("Accept", "text/event-stream"), ("Last-Event-ID", "1")];
    let r = request(s.addr, "GET", "/v1/stores/cfg/watch", &sse, b"");
    assert_eq!(r.status, 410, "{}", r.body);
    // From the newest revision on, the watch starts.
    let w = stream(s.addr, "/v1/stores/cfg/watch?from_rev=1199");
    assert_eq!(w.status, 200);
}

#[test]
fn many_appenders_and_followers_at_once_lose_double_and_reorder_nothing() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    const WRITERS: usize = 32;
    const REQUESTS: usize = 20;
    const PER: usize = 10;
    let total = (WRITERS * REQUESTS * PER) as u64;
    let followers: Vec<_> = (0..8)
        .map(|_| {
            let mut f = stream(s.addr, "/v1/stores/ev/records?follow=true");
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while (seen.len() as u64) < total {
                    let line = f.next_json().expect("the stream ended early");
                    seen.push((
                        line["seq"].as_u64().unwrap(),
                        line["value"]["w"].as_u64().unwrap(),
                        line["value"]["i"].as_u64().unwrap(),
                    ));
                }
                seen
            })
        })
        .collect();
    std::thread::scope(|sc| {
        for w in 0..WRITERS {
            let addr = s.addr;
            sc.spawn(move || {
                for r in 0..REQUESTS {
                    let body: String = (0..PER)
                        .map(|k| format!("{{\"w\":{w},\"i\":{}}}\n", r * PER + k))
                        .collect();
                    let resp = request(addr, "POST", "/v1/stores/ev/records", &[], body.as_bytes());
                    assert_eq!(resp.status, 200, "{}", resp.body);
                }
            });
        }
    });
    for f in followers {
        let seen = f.join().unwrap();
        let seqs: Vec<u64> = seen.iter().map(|x| x.0).collect();
        assert_eq!(
            seqs,
            (0..total).collect::<Vec<_>>(),
            "dense, in order, once"
        );
        let unique: HashSet<(u64, u64)> = seen.iter().map(|x| (x.1, x.2)).collect();
        assert_eq!(unique.len() as u64, total, "every record once");
        // Each writer's records in the order it sent them.
        for w in 0..WRITERS as u64 {
            let mine: Vec<u64> = seen.iter().filter(|x| x.1 == w).map(|x| x.2).collect();
            assert!(mine.windows(2).all(|p| p[0] < p[1]), "writer {w} reordered");
        }
    }
}

#[test]
fn sigterm_ends_streams_and_keeps_every_acknowledged_append() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start_in(root.path(), &[]);
    ok(&["init", &s.dir("ev")]);
    let dir = s.dir("ev");
    let mut f = stream(s.addr, "/v1/stores/ev/records?follow=true");
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/records?durability=batch",
        &[],
        b"{\"n\":1}\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(f.next_json().unwrap()["value"]["n"], 1);
    let t = std::time::Instant::now();
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed().as_secs() < 10, "a live stream held up the stop");
    assert!(f.next_line().is_none(), "the stream ended");
    assert_eq!(ok(&["stream", &dir]), "{\"n\":1}\n");
}

#[test]
fn a_remote_read_survives_a_server_restart_without_loss_or_doubles() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start_in(root.path(), &[]);
    let addr = s.addr.to_string();
    ok(&["init", &s.dir("ev")]);
    let dir = s.dir("ev");
    let url = format!("http://{addr}/ev");
    let mut reader = std::process::Command::new(crate::common::bin())
        .args(["read", "--meta", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(reader.stdout.take().unwrap()));
    let mut next_line =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    for i in 0..3 {
        ok(&["write", &dir, &format!("{{\"i\":{i}}}")]);
    }
    for i in 0..3 {
        assert_eq!(next_line()["seq"], i);
    }
    // The server dies (kill -9) and comes back on the same address.
    s.kill();
    for i in 3..6 {
        ok(&["write", &dir, &format!("{{\"i\":{i}}}")]);
    }
    let s = Server::start_at(root.path(), &addr, &[]);
    for i in 3..6 {
        assert_eq!(next_line()["seq"], i, "resumed with no gap and no double");
    }
    ok(&["write", &dir, "{\"i\":6}"]);
    assert_eq!(next_line()["seq"], 6);
    let _ = reader.kill();
    let _ = reader.wait();
    drop(s);
}

#[test]
fn server_sent_events_carry_ids_and_resume_from_last_event_id() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    for i in 0..3 {
        ok(&["write", &s.dir("ev"), &format!("{{\"i\":{i}}}")]);
    }
    let sse = [("Accept", "text/event-stream")];
    let mut f = stream_with(s.addr, "/v1/stores/ev/records?follow=true", &sse);
    assert_eq!(f.status, 200);
    assert_eq!(f.next_line().unwrap(), "id: 0");
    assert!(f.next_line().unwrap().starts_with("data: {\"seq\":0,"));
    assert_eq!(f.next_line().unwrap(), "");
    // A reconnect with Last-Event-ID: 1 continues at seq 2.
    let mut again = stream_with(
        s.addr,
        "/v1/stores/ev/records?follow=true",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", "1")],
    );
    assert_eq!(again.next_line().unwrap(), "id: 2");
    // Watches: the id is the revision. The snapshot's values, in path order, carry none
    // (an id there would make a reconnect skip the rest of the snapshot); the synced
    // marker carries the revision the snapshot is as of.
    ok(&["kv", "set", &s.dir("cfg"), "b", "1"]);
    ok(&["kv", "set", &s.dir("cfg"), "a", "2"]);
    let mut w = stream_with(s.addr, "/v1/stores/cfg/watch?fetch=true", &sse);
    let mut lines: Vec<String> = (0..7).map(|_| w.next_line().unwrap()).collect();
    assert_eq!(
        lines.drain(..4).collect::<Vec<_>>(),
        [
            "data: {\"path\":\"a\",\"value\":\"2\",\"rev\":1}",
            "",
            "data: {\"path\":\"b\",\"value\":\"1\",\"rev\":0}",
            ""
        ]
    );
    assert_eq!(lines, ["id: 1", "data: {\"synced\":true}", ""]);
    ok(&["kv", "set", &s.dir("cfg"), "c", "3"]);
    assert_eq!(w.next_line().unwrap(), "id: 2");
    // Reconnecting after the synced marker: the changes after it, nothing again.
    let mut again = stream_with(
        s.addr,
        "/v1/stores/cfg/watch?fetch=true",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", "1")],
    );
    assert_eq!(again.next_line().unwrap(), "id: 2");
    assert!(again.next_line().unwrap().contains("\"path\":\"c\""));
}

#[test]
fn metrics_count_requests_records_and_open_streams() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    request(
        s.addr,
        "POST",
        "/v1/stores/ev/records",
        &[],
        b"{}\n{}\n{}\n",
    );
    ok(&["read", "--no-wait", "--reader", "slow", &s.dir("ev")]);
    ok(&["write", &s.dir("ev"), "{}"]);
    let mut f = stream(s.addr, "/v1/stores/ev/records?follow=true");
    f.next_line().unwrap();
    let text = get(s.addr, "/metrics").body;
    for want in [
        "reel_records_appended_total 3",
        "reel_open_streams 1",
        "reel_next_seq{store=\"ev\"} 4",
        "reel_reader_unread{store=\"ev\",reader=\"slow\"} 1",
        "reel_request_seconds_bucket{le=\"+Inf\"}",
        "reel_requests_total{class=\"2xx\"}",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}
