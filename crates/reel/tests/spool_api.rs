//! The embedded API from the outside: appending, named readers, iteration, status, tee.
use reel::tee::Tee;
use reel::{Error, NewRecord, Spool, Value, WhenFull};
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn spool() -> (tempfile::TempDir, Spool) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Spool::create(tmp.path().join("s")).unwrap();
    (tmp, s)
}

/// Readers asleep on the spool's `publish` word: the `waiters` word of `reel.head`
/// (FORMAT.md §5: u32 at byte 20, native-endian).
fn waiters(dir: &std::path::Path) -> u32 {
    let head = std::fs::read(dir.join(reel_log::HEAD_FILE)).unwrap();
    u32::from_ne_bytes(head[20..24].try_into().unwrap())
}

fn n_of(r: &reel::Record) -> i64 {
    r.value.to_json().unwrap()["n"].as_i64().unwrap()
}

#[test]
fn reader_continues_where_it_committed_and_never_skips() {
    let (_t, s) = spool();
    for n in 0..10 {
        s.append(json!({ "n": n })).unwrap();
    }
    {
        let mut r = s.reader("a").unwrap();
        for n in 0..4 {
            assert_eq!(n_of(&r.next().unwrap().unwrap()), n);
        }
        r.commit().unwrap();
        // Delivered but not committed: redelivered after a crash (at-least-once).
        r.next().unwrap();
        std::mem::forget(r); // simulates a crash: no drop, no commit
    }
    // A crash frees the reader's lock; within one process, look at a copy of the spool.
    let copy = copy_spool(&s);
    let mut r = copy.reader("a").unwrap();
    assert_eq!(n_of(&r.next().unwrap().unwrap()), 4);
    for n in 5..10 {
        assert_eq!(n_of(&r.next().unwrap().unwrap()), n);
    }
    assert!(r.next().unwrap().is_none());
    drop(r); // clean exit commits
    let mut r = copy.reader("a").unwrap();
    assert!(
        r.next().unwrap().is_none(),
        "exactly once after a clean exit"
    );
}

fn copy_spool(s: &Spool) -> Spool {
    let copy = s.dir().with_extension("copy");
    copy_dir(s.dir(), &copy);
    Spool::open(&copy).unwrap()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn a_reader_name_is_owned_by_one_reader_at_a_time() {
    let (_t, s) = spool();
    let _a = s.reader("x").unwrap();
    assert!(matches!(s.reader("x"), Err(Error::ReaderBusy { .. })));
    assert!(matches!(s.reader("../etc"), Err(Error::InvalidName { .. })));
    assert!(matches!(s.reader(""), Err(Error::InvalidName { .. })));
    s.reader("y").unwrap();
}

#[test]
fn distinct_readers_each_see_every_record() {
    let (_t, s) = spool();
    for n in 0..100 {
        s.append(json!({ "n": n })).unwrap();
    }
    for name in ["a", "b", "c"] {
        let mut r = s.reader(name).unwrap();
        let got = r.next_batch(1000, None).unwrap();
        assert_eq!(
            got.iter().map(n_of).collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
    }
}

#[test]
fn blocking_read_wakes_when_another_thread_appends() {
    let (_t, s) = spool();
    let mut r = s.reader("w").unwrap();
    let s2 = s.clone();
    let h = std::thread::spawn(move || {
        // Append only once the reader is blocked, so the append has to wake it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while waiters(s2.dir()) == 0 {
            assert!(Instant::now() < deadline, "the reader never blocked");
            std::thread::yield_now();
        }
        s2.append(json!({"n": 1})).unwrap();
    });
    let t0 = Instant::now();
    let rec = r
        .next_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("woken");
    assert_eq!(n_of(&rec), 1);
    assert!(t0.elapsed() < Duration::from_secs(5));
    h.join().unwrap();
    let t0 = Instant::now();
    assert!(
        r.next_timeout(Duration::from_millis(100))
            .unwrap()
            .is_none()
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "timeout is honoured"
    );
}

#[test]
fn rewind_seek_and_seek_time_replay() {
    let (_t, s) = spool();
    for n in 0..20 {
        s.append(NewRecord::new(json!({ "n": n })).ts(1000 + n * 10))
            .unwrap();
    }
    let mut r = s.reader("r").unwrap();
    r.next_batch(100, None).unwrap();
    r.rewind();
    assert_eq!(n_of(&r.next().unwrap().unwrap()), 0);
    r.seek(15);
    assert_eq!(n_of(&r.next().unwrap().unwrap()), 15);
    r.seek_time(1055).unwrap();
    assert_eq!(n_of(&r.next().unwrap().unwrap()), 6);
}

#[test]
fn iterate_ranges_forwards_and_backwards() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Spool::builder(tmp.path())
        .capacity(1 << 20)
        .segment_size(16 << 10)
        .open()
        .unwrap();
    let recs: Vec<NewRecord> = (0..2000)
        .map(|n| NewRecord::new(json!({ "n": n })))
        .collect();
    s.append_batch(&recs).unwrap();
    let fwd: Vec<i64> = s.iter(10..20).map(|r| n_of(&r.unwrap())).collect();
    assert_eq!(fwd, (10..20).collect::<Vec<_>>());
    let back: Vec<i64> = s.iter_rev(..).map(|r| n_of(&r.unwrap())).collect();
    assert_eq!(back, (0..2000).rev().collect::<Vec<_>>());
    let back: Vec<i64> = s.iter_rev(500..=700).map(|r| n_of(&r.unwrap())).collect();
    assert_eq!(back, (500..=700).rev().collect::<Vec<_>>());
    assert_eq!(s.get(1999).unwrap().map(|r| n_of(&r)), Some(1999));
    assert_eq!(s.get(2000).unwrap(), None);
}

#[test]
fn status_reports_readers_progress_and_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Spool::builder(tmp.path())
        .capacity(256 << 10)
        .open()
        .unwrap();
    let mut r = s.reader("slow").unwrap();
    r.commit().unwrap();
    let mut fast = s.reader("fast").unwrap();
    let v = json!({ "pad": "x".repeat(200) });
    for _ in 0..3000 {
        s.append(&v).unwrap();
        fast.next_batch(10, None).unwrap();
    }
    fast.commit().unwrap();
    let st = s.status().unwrap();
    assert!(st.used_bytes <= st.capacity + st.segment_size);
    let slow = st.readers.iter().find(|x| x.name == "slow").unwrap();
    assert_eq!(
        slow.lost, st.oldest_seq,
        "slow reader will lose everything dropped"
    );
    assert_eq!(slow.unread, st.records);
    let f = st.readers.iter().find(|x| x.name == "fast").unwrap();
    assert_eq!((f.unread, f.lost, f.consumed_pct), (0, 0, 100.0));
    // The slow reader continues at the oldest retained record and counts the loss.
    let first = r.next().unwrap().unwrap();
    assert_eq!(first.seq, st.oldest_seq);
    assert_eq!(r.lost(), st.oldest_seq);
}

#[test]
fn reject_keeps_unread_records_and_accepts_again_after_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Spool::builder(tmp.path())
        .capacity(128 << 10)
        .when_full(WhenFull::Reject)
        .open()
        .unwrap();
    let mut r = s.reader("only").unwrap();
    r.commit().unwrap();
    let v = json!({ "pad": "y".repeat(500) });
    let mut n = 0;
    let err = loop {
        match s.append(&v) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("full"), "{err}");
    assert_eq!(r.next_batch(100_000, None).unwrap().len(), n);
    r.commit().unwrap();
    s.append(&v)
        .expect("accepted again after the reader advanced");
}

#[test]
fn values_of_every_kind_round_trip() {
    let (_t, s) = spool();
    let vals = [
        json!(null),
        json!(1),
        json!(-2.5),
        json!("s"),
        json!([1, [2]]),
        json!({"a": {"b": [true, false]}}),
        json!({}),
    ];
    for v in &vals {
        s.append(v).unwrap();
    }
    s.append(Value::bytes(vec![0u8, 1, 2])).unwrap();
    s.append(NewRecord::new(json!(1)).key("k").nonce(u128::MAX))
        .unwrap();
    let got: Vec<_> = s.iter(..).map(|r| r.unwrap()).collect();
    for (v, r) in vals.iter().zip(&got) {
        assert_eq!(&r.value.to_json().unwrap(), v);
    }
    assert_eq!(got[7].value.as_bytes(), &[0, 1, 2]);
    assert_eq!(
        got[8].to_json_meta().unwrap()["nonce"],
        json!(u128::MAX.to_string())
    );
}

#[test]
fn tee_copies_everything_and_a_restart_neither_duplicates_nor_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Spool::create(tmp.path().join("src")).unwrap();
    let d1 = Spool::create(tmp.path().join("d1")).unwrap();
    let d2 = Spool::create(tmp.path().join("d2")).unwrap();
    let stop = AtomicBool::new(false);
    for n in 0..50 {
        src.append(NewRecord::new(json!({ "n": n })).key("k"))
            .unwrap();
    }
    {
        let mut tee = Tee::new(&src, "tee", &[d1.clone(), d2.clone()]).unwrap();
        assert_eq!(tee.run(false, &stop).unwrap(), 50);
    }
    for n in 50..80 {
        src.append(json!({ "n": n })).unwrap();
    }
    // Crash between appending to d1 and writing its marker: roll the marker back.
    {
        let mut tee = Tee::new(&src, "tee", &[d1.clone(), d2.clone()]).unwrap();
        tee.run(false, &stop).unwrap();
    }
    let marker_dir = d1.dir().join("tee");
    let marker = std::fs::read_dir(&marker_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&marker).unwrap();
    // Keep only the older of the two slots valid: the newest write "never happened".
    let (g0, g1) = (
        u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
        u64::from_le_bytes(bytes[80..88].try_into().unwrap()),
    );
    let mut damaged = bytes.clone();
    let newest = if g0 > g1 { 0 } else { 64 };
    damaged[newest + 30] ^= 0xff;
    std::fs::write(&marker, damaged).unwrap();
    // And an unrelated writer appended to d1 after the crash.
    d1.append(json!({ "other": true })).unwrap();
    for n in 80..90 {
        src.append(json!({ "n": n })).unwrap();
    }
    let mut tee = Tee::new(&src, "tee", &[d1.clone(), d2.clone()]).unwrap();
    tee.run(false, &stop).unwrap();
    for d in [&d1, &d2] {
        let ns: Vec<i64> = d
            .iter(..)
            .filter_map(|r| r.unwrap().value.to_json().unwrap()["n"].as_i64())
            .collect();
        assert_eq!(ns, (0..90).collect::<Vec<_>>(), "{}", d.dir().display());
    }
    let first = d1.iter(..).next().unwrap().unwrap();
    assert_eq!(first.key.as_deref(), Some("k"), "keys are kept");
    assert_eq!(
        first.ts,
        src.get(0).unwrap().unwrap().ts,
        "timestamps are kept"
    );
}

#[test]
fn a_backwards_read_returns_every_record_after_damage_then_reports_it() {
    let (tmp, s) = spool();
    for n in 0..1000 {
        s.append(json!({ "n": n, "pad": "x".repeat(40) })).unwrap();
    }
    let seg = tmp.path().join("s/segments/00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[40_000] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();
    let s = Spool::open(tmp.path().join("s")).unwrap();
    // Forward: the records before the damage, then its error.
    let forward: Vec<_> = s.iter(0..).collect();
    let damaged = forward.iter().take_while(|r| r.is_ok()).count() as u64;
    assert!(forward[damaged as usize].is_err());
    let resume = s.resume_after_damage(damaged).unwrap();
    assert!(resume > damaged && resume < 1000, "{damaged} {resume}");
    // Backwards: every readable record after the damage, newest first, then the error
    // (it stopped at the start of the index interval holding the damage).
    let backward: Vec<_> = s.iter_rev(0..).collect();
    let (ok, failed): (Vec<_>, Vec<_>) = backward.into_iter().partition(Result::is_ok);
    let seqs: Vec<u64> = ok.into_iter().map(|r| r.unwrap().seq).collect();
    assert_eq!(seqs, (resume..1000).rev().collect::<Vec<_>>());
    assert_eq!(failed.len(), 1);
    // A backwards read that starts inside the same interval, past the damage, too.
    let part: Vec<u64> = s
        .iter_rev(..resume + 3)
        .take_while(Result::is_ok)
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(part, (resume..resume + 3).rev().collect::<Vec<_>>());
}

/// A store deleted (or deleted and created anew) while a handle had it open took that
/// handle's appends into unlinked files and acknowledged them: they were lost.
#[test]
fn appends_to_a_store_deleted_or_replaced_while_open_fail() {
    for replace in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let spool = Spool::create(&dir).unwrap();
        spool.append(serde_json::json!(1)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        if replace {
            Spool::create(&dir).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
        let err = spool.append(serde_json::json!(2)).unwrap_err();
        assert!(err.to_string().contains("deleted or replaced"), "{err}");
    }
}
