//! View checkpoints under damage, driven through the binary: a checkpoint ahead of the
//! log, a damaged checkpoint, and damage `verify` must find in a view table.
mod common;
use common::derived::*;
use common::*;
use std::path::Path;

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

/// A checkpoint that applied records the log no longer holds (here the log's tail is
/// cut, as a power cut or a restore of `views/` newer than `segments/` leaves it) was
/// ignored only until new records reached its `applied_to`: then every process adopted
/// it and answered values of records that no longer exist.
#[test]
fn a_view_checkpoint_ahead_of_the_log_is_never_adopted() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for i in 1000..1100 {
        kv_set(&d, &format!("k.{i}"), &format!("old{i}"));
    }
    ok(&["view", "rebuild", s(&d), "kv"]);
    // Every frame has the same length: keep the first 50 records.
    let seg = d.join("segments/00000000000000000000.seg");
    let len = std::fs::metadata(&seg).unwrap().len();
    let frame = (len - 32) / 100;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(32 + 50 * frame)
        .unwrap();
    std::fs::remove_file(d.join("reel.head")).unwrap();
    for i in 0..60 {
        kv_set(&d, &format!("n.{i}"), "new");
    }
    let (code, out, err) = run(&["kv", "get", s(&d), "k.1080"]);
    assert_eq!(code, 1, "k.1080 was cut from the log: {out} {err}");
    assert_eq!(ok(&["kv", "get", s(&d), "n.59"]).trim(), "\"new\"");
    let keys = ok(&["kv", "keys", s(&d), "k"]);
    assert_eq!(keys.lines().count(), 50, "{keys}");
}

/// One flipped byte in the lists view's checkpoint, once retention dropped records: the
/// view was rebuilt without the lists all of whose items expired (their offsets given
/// again from 0, their nonces taken again) and `verify` said nothing.
#[test]
fn a_damaged_lists_checkpoint_is_reported_and_refuses_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    ok(&["init", "--kind", "lists", "--size", "64k", s(&d)]);
    ok(&[
        "list",
        "append",
        "--nonce",
        "1",
        s(&d),
        "old",
        "1",
        "2",
        "3",
    ]);
    let items: String = (0..20)
        .map(|i| format!("{{\"i\":{i},\"p\":\"{}\"}}\n", "x".repeat(50)))
        .collect();
    for _ in 0..40 {
        let out = reel_stdin(&["list", "append", s(&d), "new"], &items);
        assert!(out.status.success(), "{out:?}");
    }
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["list", "info", "--json", s(&d), "old"])).unwrap();
    assert_eq!(
        (info["count"].as_u64(), info["next_offset"].as_u64()),
        (Some(0), Some(3))
    );
    flip(&d.join("views/lists/checkpoint"), 20);
    let (code, out, _) = run(&["verify", s(&d)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("checkpoint checksum does not match"), "{out}");
    let (code, _, err) = run(&["list", "append", "--nonce", "1", s(&d), "old", "4"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("reel view rebuild --force"), "{err}");
}

/// `verify` read a table's rows but not its key hash index: a damaged page there was
/// found only by the next get (which then rebuilt the view, every time).
#[test]
fn verify_reports_a_damaged_key_hash_page() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for i in 0..50 {
        kv_set(&d, &format!("k{i}"), "some value");
    }
    ok(&["view", "rebuild", s(&d), "kv"]);
    let table = std::fs::read_dir(d.join("views/kv"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .find(|p| p.extension().is_some_and(|e| e == "tbl"))
        .unwrap();
    let b = std::fs::read(&table).unwrap();
    // The footer (last 48 bytes) says where the key hash index starts.
    let footer = b.len() - 48;
    let hash_at = u64::from_le_bytes(b[footer + 16..footer + 24].try_into().unwrap());
    flip(&table, hash_at as usize + 8);
    let (code, out, _) = run(&["verify", s(&d)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("key hash page"), "{out}");
}

/// A rebuild that stopped at a damaged record still replaced the checkpoint that
/// answered reads past the damage with its partial state: every read failed after it.
/// It is now refused before anything changes.
#[test]
fn a_rebuild_that_would_stop_at_damage_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for i in 0..300 {
        kv_set(&d, &format!("k.{}", i % 50), &format!("v{i}"));
    }
    ok(&["view", "rebuild", s(&d), "kv"]);
    let seg = d.join("segments/00000000000000000000.seg");
    let len = std::fs::metadata(&seg).unwrap().len() as usize;
    flip(&seg, len / 2);
    assert_eq!(ok(&["kv", "get", s(&d), "k.1"]).trim(), "\"v251\"");
    let (code, _, err) = run(&["view", "rebuild", s(&d), "kv"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("damaged records"), "{err}");
    assert_eq!(ok(&["kv", "get", s(&d), "k.1"]).trim(), "\"v251\"");
}
