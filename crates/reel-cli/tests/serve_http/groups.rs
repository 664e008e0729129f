//! Share groups: `reel read --group G URL` members each get a share; a member killed
//! mid-stream loses nothing (its unacknowledged records go to the others after the
//! lease), and only those can be printed twice.

use crate::Server;
use crate::common::{bin, fails, ok};
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn members_share_the_records_and_a_killed_members_records_are_redelivered() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    let total = 2000u64;
    let body: String = (0..total).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let r = crate::client::request(
        s.addr,
        "POST",
        "/v1/stores/ev/records",
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200);
    let url = format!("http://{}/ev", s.addr);
    // Who printed what.
    let seen: Arc<Mutex<HashMap<u64, Vec<usize>>>> = Arc::default();
    let mut members = Vec::new();
    let mut readers = Vec::new();
    for m in 0..4 {
        let mut child = Command::new(bin())
            .args(["read", "--group", "g", "--ack-wait", "5", "--meta", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut pipe = child.stdout.take().unwrap();
        let seen = seen.clone();
        // Member 0 is killed once it printed 30 records, with more of them in its pipe:
        // those it never saw taken, so it never acknowledged them, and they must reach
        // the other members once its lease ends.
        let stop_after = if m == 0 { 30 } else { usize::MAX };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        readers.push(std::thread::spawn(move || {
            // Byte by byte, so that what this side took from the pipe is exactly the
            // lines it counts (the member acknowledges what left the pipe).
            let mut line = Vec::new();
            let mut n = 0;
            let mut byte = [0u8; 1];
            while n < stop_after && std::io::Read::read(&mut pipe, &mut byte).is_ok_and(|k| k == 1)
            {
                if byte[0] != b'\n' {
                    line.push(byte[0]);
                    continue;
                }
                let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
                line.clear();
                seen.lock()
                    .unwrap()
                    .entry(v["seq"].as_u64().unwrap())
                    .or_default()
                    .push(m);
                n += 1;
            }
            let _ = tx.send(());
            // Hold the pipe open (unread) until the member is killed.
            std::thread::sleep(Duration::from_secs(if m == 0 { 30 } else { 0 }));
        }));
        members.push((child, rx));
    }
    members[0].1.recv_timeout(Duration::from_secs(30)).unwrap();
    members[0].0.kill().unwrap();
    members[0].0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < total as usize {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} records delivered",
            seen.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for (mut c, _) in members.into_iter().skip(1) {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let seen = seen.lock().unwrap();
    let all: HashSet<u64> = seen.keys().copied().collect();
    assert_eq!(all, (0..total).collect(), "every record was delivered");
    let doubles: Vec<u64> = seen
        .iter()
        .filter(|(_, ms)| ms.len() > 1)
        .map(|(&s, _)| s)
        .collect();
    for s in &doubles {
        assert!(
            seen[s].contains(&0),
            "seq {s} printed twice without the killed member: {:?}",
            seen[s]
        );
    }
    let shares: Vec<usize> = (1..4)
        .map(|m| seen.values().filter(|ms| ms.contains(&m)).count())
        .collect();
    assert!(
        shares.iter().filter(|&&n| n > 0).count() >= 2,
        "shared: {shares:?}"
    );
    eprintln!(
        "shares {shares:?}, printed twice (held by the killed member): {}",
        doubles.len()
    );
}

#[test]
fn a_group_resumes_where_it_was_acknowledged_and_needs_a_server() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    ok(&["write", &s.dir("ev"), "{\"i\":0}", "{\"i\":1}", "{\"i\":2}"]);
    let url = format!("http://{}/ev", s.addr);
    assert_eq!(
        ok(&["read", "--group", "g", "--no-wait", "--count", "2", &url]),
        "{\"i\":0}\n{\"i\":1}\n"
    );
    // A new member of the same group continues after what was acknowledged.
    assert_eq!(
        ok(&["read", "--group", "g", "--no-wait", &url]),
        "{\"i\":2}\n"
    );
    // Another group has its own position.
    assert_eq!(
        ok(&["read", "--group", "h", "--no-wait", &url])
            .lines()
            .count(),
        3
    );
    assert!(fails(&["read", "--group", "g", &s.dir("ev")]).contains("server URL"));
}
