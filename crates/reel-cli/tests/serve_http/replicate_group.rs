//! `reel replicate --group G URL DST`: members of a share group each append their share
//! into a store of their own, durably before acknowledging; together they hold every
//! record of the source, each once after a clean run; a member killed mid-stream loses
//! nothing, and started again on its store never stores a record twice there.

use crate::Server;
use crate::common::{bin, fails, lines, ok};
use serde_json::Value;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn post_records(s: &Server, from: u64, n: u64) {
    let body: String = (from..from + n)
        .map(|i| {
            format!(
                "{{\"i\":{i},\"pad\":\"{}\"}}\n",
                "q".repeat((i % 50) as usize)
            )
        })
        .collect();
    let r = crate::client::request(
        s.addr,
        "POST",
        "/v1/stores/ev/records",
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn member(url: &str, dst: &str, extra: &[&str]) -> Child {
    Command::new(bin())
        .args(["replicate", "--group", "g"])
        .args(extra)
        .args([url, dst])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Records of the store at `dir` by their nonce (the source seq), if it exists.
fn by_nonce(dir: &str) -> Vec<(u64, Value)> {
    if !std::path::Path::new(dir).join("reel.meta").exists() {
        return Vec::new();
    }
    lines(&ok(&["stream", "--meta", dir]))
        .into_iter()
        .map(|l| (l["nonce"].as_u64().expect("a nonce on every record"), l))
        .collect()
}

/// Waits until the stores at `dirs` hold `want` records between them.
fn wait_for_total(dirs: &[String], want: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let have: usize = dirs.iter().map(|d| by_nonce(d).len()).sum();
        if have >= want {
            return;
        }
        assert!(Instant::now() < deadline, "{have} of {want} records stored");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every source record is stored somewhere with its seq, ts, key and value; returns how
/// many times each seq is stored.
fn check_against_source(src: &str, dirs: &[String]) -> HashMap<u64, usize> {
    let source: HashMap<u64, Value> = lines(&ok(&["stream", "--meta", src]))
        .into_iter()
        .map(|l| (l["seq"].as_u64().unwrap(), l))
        .collect();
    let mut count = HashMap::new();
    for d in dirs {
        for (nonce, rec) in by_nonce(d) {
            let orig = source
                .get(&nonce)
                .unwrap_or_else(|| panic!("{d}: nonce {nonce} not in the source"));
            for k in ["ts", "key", "value"] {
                assert_eq!(rec[k], orig[k], "{d}: {k} of source seq {nonce}");
            }
            *count.entry(nonce).or_insert(0) += 1;
        }
    }
    for seq in source.keys() {
        assert!(
            count.contains_key(seq),
            "source seq {seq} stored by no member"
        );
    }
    count
}

#[test]
fn members_store_their_shares_durably_and_together_hold_every_record_once() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    let url = format!("http://{}/ev", s.addr);
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<String> = (0..3)
        .map(|i| tmp.path().join(format!("m{i}")).display().to_string())
        .collect();
    let mut members: Vec<Child> = dirs.iter().map(|d| member(&url, d, &[])).collect();
    let total = 3000;
    for b in 0..30 {
        post_records(&s, b * 100, 100);
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_for_total(&dirs, total as usize);
    for m in &mut members {
        m.kill().unwrap();
        m.wait().unwrap();
    }
    let count = check_against_source(&s.dir("ev"), &dirs);
    assert!(
        count.values().all(|&c| c == 1),
        "a record stored twice after a clean run"
    );
    let sharing = dirs.iter().filter(|d| !by_nonce(d).is_empty()).count();
    assert!(sharing >= 2, "only {sharing} member(s) got records");
    // Every record acknowledged: a new member has nothing to take.
    let late = tmp.path().join("late").display().to_string();
    ok(&["replicate", "--group", "g", "--no-wait", &url, &late]);
    assert!(by_nonce(&late).is_empty());
    // A group member's store is a store of its own, never a follower.
    let f = tmp.path().join("f").display().to_string();
    ok(&["replicate", "--no-wait", &url, &f]);
    let err = fails(&["replicate", "--group", "g", "--no-wait", &url, &f]);
    assert!(err.contains("is a follower of"), "{err}");
    let err = fails(&[
        "replicate",
        "--group",
        "g",
        "--no-wait",
        &s.dir("ev"),
        &late,
    ]);
    assert!(err.contains("needs a server URL"), "{err}");
}

#[test]
fn a_member_killed_mid_stream_loses_nothing_and_started_again_stores_nothing_twice() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    let url = format!("http://{}/ev", s.addr);
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (
        tmp.path().join("a").display().to_string(),
        tmp.path().join("b").display().to_string(),
    );
    let mut first = member(&url, &a, &["--lease", "1"]); // the alias
    post_records(&s, 0, 500);
    let deadline = Instant::now() + Duration::from_secs(20);
    while by_nonce(&a).is_empty() {
        assert!(Instant::now() < deadline, "the member stored nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let before = by_nonce(&a).len();
    // Mid-stream: most of the records are written after it died.
    post_records(&s, 500, 1500);
    assert!(before < 2000);
    // Past its lease, whatever it held unacknowledged is handed out again: to itself
    // started again on the same store, or to another member.
    std::thread::sleep(Duration::from_millis(1500));
    let mut again = member(&url, &a, &["--ack-wait", "1"]);
    let mut other = member(&url, &b, &["--ack-wait", "1"]);
    wait_for_total(&[a.clone(), b.clone()], 2000);
    for m in [&mut again, &mut other] {
        m.kill().unwrap();
        m.wait().unwrap();
    }
    let count = check_against_source(&s.dir("ev"), &[a.clone(), b.clone()]);
    assert_eq!(count.len(), 2000);
    let mut in_a: Vec<u64> = by_nonce(&a).into_iter().map(|(n, _)| n).collect();
    let stored = in_a.len();
    in_a.sort_unstable();
    in_a.dedup();
    assert_eq!(
        in_a.len(),
        stored,
        "the restarted member stored a record twice"
    );
    // Doubles across members only among what the killed member held unacknowledged
    // (at most one batch of 1000).
    let doubles = count.values().filter(|&&c| c > 1).count();
    assert!(doubles <= 1000, "{doubles} records stored twice");
}

/// The group's position on the source (every seq below it acknowledged).
fn group_position(src: &str) -> u64 {
    let st: Value = serde_json::from_str(&ok(&["status", "--json", src])).unwrap();
    st["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "group.g")
        .map_or(0, |r| r["position"].as_u64().unwrap())
}

#[test]
fn a_member_that_died_after_storing_records_but_before_acknowledging_them_does_not_store_them_again()
 {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    post_records(&s, 0, 300);
    let proxy = crate::proxy::Proxy::start(s.addr);
    let url = format!("http://{}/ev", proxy.addr);
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a").display().to_string();
    // Its acknowledgement never reaches the server: stored, not acknowledged.
    proxy.hold_acks(true);
    let mut first = member(&url, &a, &["--ack-wait", "1"]);
    wait_for_total(std::slice::from_ref(&a), 300);
    first.kill().unwrap();
    first.wait().unwrap();
    proxy.cut_all();
    proxy.hold_acks(false);
    assert_eq!(
        group_position(&s.dir("ev")),
        0,
        "the acknowledgement got through"
    );
    // Started again on the same store: the 300 come back when the lease ends; it
    // recognises them, acknowledges them, and stores only what is new.
    let mut again = member(&url, &a, &["--ack-wait", "1"]);
    post_records(&s, 300, 100);
    let deadline = Instant::now() + Duration::from_secs(30);
    while group_position(&s.dir("ev")) < 400 {
        assert!(
            Instant::now() < deadline,
            "the group never acknowledged everything"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    again.kill().unwrap();
    again.wait().unwrap();
    let nonces: Vec<u64> = by_nonce(&a).into_iter().map(|(n, _)| n).collect();
    assert_eq!(nonces.len(), 400, "records stored twice (or lost)");
    let count = check_against_source(&s.dir("ev"), std::slice::from_ref(&a));
    assert!(count.values().all(|&c| c == 1));
}

/// A member's share of a kv store keeps a deletion a deletion: it used to store it as
/// the value `null`, which reads back like a stored `null`.
#[test]
fn a_members_share_of_a_kv_store_keeps_deletions() {
    let s = Server::start(&[]);
    let src = s.dir("cfg");
    ok(&["kv", "set", &src, "a", "1"]);
    ok(&["kv", "set", "-e", &src, "b", "null"]);
    ok(&["kv", "del", &src, "a"]);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("share").display().to_string();
    let url = format!("http://{}/cfg", s.addr);
    ok(&["replicate", "--group", "g", "--no-wait", &url, &dst]);
    let got = lines(&ok(&["stream", "--meta", &dst]));
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[1].get("deleted"), None, "a stored null: {:?}", got[1]);
    assert_eq!(got[2]["deleted"], true, "the deletion: {:?}", got[2]);
}
