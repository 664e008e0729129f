//! `reel kv watch`: the state, then live changes made by other processes.

use super::*;

#[test]
fn kv_watch_fetch_prints_the_state_then_live_changes_made_by_other_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    let ra = kv_set(&d, "cfg.a", "1");
    let rb = kv_set(&d, "cfg.b", "2");
    kv_set(&d, "other", "x");
    let ra2 = kv_set(&d, "cfg.a", "3");
    assert!(ra2 > ra);
    let t = Instant::now();
    let w = Proc::spawn(&["kv", "watch", "--fetch", "--count", "5", s(&d), "cfg"]);
    // The current state of the subtree (latest values only), then the marker.
    let mut snapshot = vec![w.json_line(), w.json_line()];
    snapshot.sort_by_key(|e| e["path"].as_str().unwrap().to_string());
    assert_eq!(
        snapshot,
        vec![
            json!({"path": "cfg.a", "value": "3", "rev": ra2}),
            json!({"path": "cfg.b", "value": "2", "rev": rb}),
        ]
    );
    assert_eq!(w.json_line(), json!({"synced": true}));
    // Changes by other processes: inside the subtree, outside it, and at paths whose
    // text merely starts like `cfg`.
    let rc = kv_set_json(&d, "cfg.c", "4");
    kv_set(&d, "other", "y");
    kv_set(&d, "cfgx", "no");
    kv_set(&d, "cfg:.x", "no");
    let del: u64 = ok(&["kv", "del", s(&d), "cfg.b"]).trim().parse().unwrap();
    assert_eq!(
        w.json_line(),
        json!({"path": "cfg.c", "value": 4, "rev": rc})
    );
    assert_eq!(
        w.json_line(),
        json!({"path": "cfg.b", "deleted": true, "rev": del})
    );
    let own = kv_set(&d, "cfg", "self");
    let (st, rest) = w.finish();
    assert!(st.success(), "{st:?}");
    assert_eq!(
        rest.iter().map(|l| parse(l)).collect::<Vec<_>>(),
        vec![json!({"path": "cfg", "value": "self", "rev": own})],
        "--count 5 stops after the fifth event"
    );
    assert!(t.elapsed() < PROMPT * 2, "took {:?}", t.elapsed());
}

#[test]
fn kv_watch_fetch_seam_loses_and_doubles_nothing_under_concurrent_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    let n = 30u64;
    let (tx, rx) = mpsc::channel();
    let dir = d.clone();
    let writer = std::thread::spawn(move || {
        let mut revs = BTreeMap::new();
        for i in 0..n {
            revs.insert(
                format!("w.p{i}"),
                kv_set_json(&dir, &format!("w.p{i}"), &i.to_string()),
            );
            if i == 8 {
                tx.send(()).unwrap();
            }
        }
        revs
    });
    rx.recv().unwrap();
    // Starts while the writer keeps going: the seam falls somewhere in the middle.
    let w = Proc::spawn(&[
        "kv",
        "watch",
        "--fetch",
        "--count",
        &n.to_string(),
        s(&d),
        "w",
    ]);
    let revs = writer.join().unwrap();
    let (st, out) = w.finish();
    assert!(st.success(), "{st:?}");
    let events: Vec<Value> = out.iter().map(|l| parse(l)).collect();
    let synced: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["synced"] == true)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(synced.len(), 1, "one synced marker: {events:?}");
    let seam = synced[0];
    assert!(seam >= 9, "the snapshot holds the first values: {events:?}");
    let puts: Vec<&Value> = events.iter().filter(|e| e["synced"] != true).collect();
    assert_eq!(puts.len() as u64, n, "{events:?}");
    let mut seen = BTreeMap::new();
    for e in &puts {
        let path = e["path"].as_str().unwrap().to_string();
        let i: u64 = path.strip_prefix("w.p").unwrap().parse().unwrap();
        assert_eq!(e["value"], i, "{e}");
        assert_eq!(e["rev"], revs[&path], "{e}");
        assert!(seen.insert(path, ()).is_none(), "doubled: {e}");
    }
    assert_eq!(seen.len() as u64, n, "lost events");
    // Live events come in revision order, all after every snapshot revision.
    let snap_max = events[..seam]
        .iter()
        .map(|e| e["rev"].as_u64().unwrap())
        .max();
    let live: Vec<u64> = events[seam + 1..]
        .iter()
        .map(|e| e["rev"].as_u64().unwrap())
        .collect();
    assert!(live.windows(2).all(|w| w[0] < w[1]), "{live:?}");
    if let (Some(m), Some(first)) = (snap_max, live.first()) {
        assert!(*first > m, "live {first} not after snapshot {m}");
    }
}

#[test]
fn kv_watch_from_rev_resumes_after_that_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    let r0 = kv_set(&d, "x.a", "1");
    let r1 = kv_set(&d, "y", "skip");
    let r2 = kv_set_json(&d, "x.b", "2");
    let r3: u64 = ok(&["kv", "del", s(&d), "x.a"]).trim().parse().unwrap();
    let r4 = kv_set(&d, "x", "own");
    assert_eq!([r0, r1, r2, r3, r4], [0, 1, 2, 3, 4]);
    let all = [
        json!({"path": "x.a", "value": "1", "rev": 0}),
        json!({"path": "y", "value": "skip", "rev": 1}),
        json!({"path": "x.b", "value": 2, "rev": 2}),
        json!({"path": "x.a", "deleted": true, "rev": 3}),
        json!({"path": "x", "value": "own", "rev": 4}),
    ];
    let out = ok(&["kv", "watch", "--from-rev", "0", "--count", "4", s(&d), ":"]);
    assert_eq!(lines(&out), all[1..].to_vec());
    let out = ok(&["kv", "watch", "--from-rev", "1", "-n", "3", s(&d), "x"]);
    assert_eq!(
        lines(&out),
        vec![all[2].clone(), all[3].clone(), all[4].clone()]
    );
    // A resumed watch also keeps following.
    let w = Proc::spawn(&["kv", "watch", "--from-rev", "3", "--count", "2", s(&d), "x"]);
    assert_eq!(w.json_line(), all[4]);
    let r5 = kv_set(&d, "x.c", "new");
    let (st, rest) = w.finish();
    assert!(st.success());
    assert_eq!(
        rest.iter().map(|l| parse(l)).collect::<Vec<_>>(),
        vec![json!({"path": "x.c", "value": "new", "rev": r5})]
    );
    // --fetch and --from-rev exclude each other.
    let (code, _, err) = run(&["kv", "watch", "--fetch", "--from-rev", "1", s(&d), "x"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn kv_watch_from_the_largest_revision_neither_panics_nor_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    kv_set(&d, "a", "1");
    kv_set(&d, "b", "2");
    let mut w = Proc::spawn(&[
        "kv",
        "watch",
        "--from-rev",
        &u64::MAX.to_string(),
        "--count",
        "1",
        s(&d),
        ":",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    kv_set(&d, "c", "3");
    // No revision is after u64::MAX: either a clean error or nothing at all.
    match w.lines.recv_timeout(Duration::from_millis(700)) {
        Ok(l) => panic!("printed an event after revision u64::MAX: {l}"),
        Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => {
            let st = w.child.wait().unwrap();
            let err = w.stderr();
            assert_eq!(st.code(), Some(1), "{st:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}
