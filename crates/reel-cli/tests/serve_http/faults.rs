//! The server under faults: kill -9 during appends, client retries, slow followers,
//! many idle followers.

use crate::Server;
use crate::client::{request, stream};
use crate::common::ok;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A request that may fail because the server is gone: `None` then.
fn try_request(addr: std::net::SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split(' ').nth(1)?.parse().ok()
}

#[test]
fn kill_9_during_appends_loses_no_acknowledged_record_and_retries_double_nothing() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start_in(root.path(), &["--durability", "always"]);
    let addr = s.addr;
    let addr_text = addr.to_string();
    ok(&["init", &s.dir("ev")]);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let rec = format!("{{\"w\":{w},\"i\":{i}}}\n");
                    if try_request(addr, "POST", "/v1/stores/ev/records", rec.as_bytes())
                        == Some(200)
                    {
                        acked.lock().unwrap().push((w, i));
                    }
                    // Keyed lists: each item has a nonce; a failed request is retried
                    // with the same one until it is answered.
                    let item = format!("{{\"items\":[{{\"value\":{i},\"nonce\":{}}}]}}", i + 1);
                    let path = format!("/v1/stores/li/lists/w{w}");
                    while !stop.load(Ordering::Relaxed)
                        && try_request(addr, "POST", &path, item.as_bytes()) != Some(200)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(700));
    s.kill();
    let before = acked.lock().unwrap().len();
    assert!(before > 10, "the writers got going ({before} acknowledged)");
    let s = Server::start_at(root.path(), &addr_text, &["--durability", "always"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    // Every acknowledged record is there.
    let stored: HashSet<(u64, u64)> = crate::common::lines(&ok(&["stream", &s.dir("ev")]))
        .iter()
        .map(|v| (v["w"].as_u64().unwrap(), v["i"].as_u64().unwrap()))
        .collect();
    for a in acked.lock().unwrap().iter() {
        assert!(stored.contains(a), "acknowledged record {a:?} lost");
    }
    // Each list holds each item once, in order, whatever was retried.
    for w in 0..4 {
        let page: serde_json::Value = serde_json::from_str(&ok(&[
            "list",
            "read",
            "--limit",
            "100000",
            &s.dir("li"),
            &format!("w{w}"),
        ]))
        .unwrap();
        let values: Vec<u64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|it| it["value"].as_u64().unwrap())
            .collect();
        assert_eq!(
            values,
            (0..values.len() as u64).collect::<Vec<_>>(),
            "list w{w}"
        );
    }
}

#[test]
fn a_follower_that_does_not_read_does_not_make_the_server_buffer() {
    let s = Server::start(&[]);
    ok(&["init", "--size", "1g", &s.dir("ev")]);
    let pid = s.pid();
    let mut f = stream(s.addr, "/v1/stores/ev/records?follow=true");
    // 64 MiB of records the follower does not read.
    let value = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(1000));
    let body: String = value.repeat(1024);
    let base = rss_kb(pid);
    for _ in 0..64 {
        let r = request(
            s.addr,
            "POST",
            "/v1/stores/ev/records",
            &[],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let grown = rss_kb(pid).saturating_sub(base);
    assert!(grown < 32 << 10, "the server's memory grew by {grown} KiB");
    // The stream is intact: the follower reads everything in order.
    for seq in 0..(64 * 1024) {
        let line = f.next_json().unwrap();
        assert_eq!(line["seq"], seq);
    }
}

#[test]
fn idle_followers_and_watchers_cost_little_memory() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    ok(&["kv", "set", &s.dir("cfg"), "a", "1"]);
    let pid = s.pid();
    // Warm up: one of each, so that the stores are open.
    let _one = stream(s.addr, "/v1/stores/ev/records?follow=true");
    let _two = stream(s.addr, "/v1/stores/cfg/watch/a");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let base = rss_kb(pid);
    let n = 500;
    let held: Vec<_> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                stream(s.addr, "/v1/stores/ev/records?follow=true")
            } else {
                stream(s.addr, "/v1/stores/cfg/watch/a")
            }
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let per = rss_kb(pid).saturating_sub(base) as f64 / n as f64;
    eprintln!("idle followers/watchers: {per:.1} KiB each ({n} held)");
    assert!(per < 64.0, "{per:.1} KiB per idle stream");
    // And they all still wake.
    ok(&["write", &s.dir("ev"), "{}"]);
    drop(held);
}
