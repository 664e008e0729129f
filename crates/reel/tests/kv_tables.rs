//! The kv view kept on disk in sorted tables: it answers like a plain map through any mix
//! of writes, deletions, checkpoints (which write and merge tables) and reopens; several
//! handles (processes) build on each other's checkpoints; a new handle does not replay
//! what a checkpoint holds; a damaged table is rebuilt from the log, never answered from.
use proptest::prelude::*;
use reel::kv::{KvStore, Path};
use serde_json::json;
use std::collections::BTreeMap;

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

fn path_of(k: u8) -> Path {
    // Nested paths, so that subtrees cross table boundaries too.
    p(&format!("g{}.k{k}", k % 3))
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, u32),
    Delete(u8),
    Checkpoint,
    Reopen,
    /// Many writes at once: enough to make a read checkpoint on its own.
    Burst(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..40, any::<u32>()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => (0u8..40).prop_map(Op::Delete),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        1 => (0u32..3).prop_map(Op::Burst),
    ]
}

fn check(kv: &KvStore, model: &BTreeMap<u8, u32>) {
    for k in 0..40u8 {
        let got = kv.get(&path_of(k)).unwrap().map(|e| e.json().unwrap());
        assert_eq!(got, model.get(&k).map(|v| json!(v)), "key {k}");
    }
    let all = kv.entries(&Path::root()).unwrap();
    assert_eq!(all.len(), model.len(), "entries of the root");
    let st_len = kv.view().read(|s| s.len().unwrap()).unwrap();
    assert_eq!(st_len, model.len(), "len");
    let g1: Vec<_> = kv.entries(&p("g1")).unwrap();
    assert_eq!(g1.len(), model.keys().filter(|k| *k % 3 == 1).count());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn the_view_in_tables_answers_like_a_map(ops in proptest::collection::vec(op(), 1..60)) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("kv");
        let mut kv = KvStore::open(&dir).unwrap();
        let mut model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Set(k, v) => {
                    kv.set(&path_of(k), json!(v)).unwrap();
                    model.insert(k, v);
                }
                Op::Delete(k) => {
                    let r = kv.delete(&path_of(k));
                    assert_eq!(r.is_ok(), model.remove(&k).is_some());
                }
                Op::Checkpoint => kv.view().checkpoint().unwrap(),
                Op::Reopen => {
                    drop(kv);
                    kv = KvStore::open(&dir).unwrap();
                }
                Op::Burst(seed) => {
                    // 20k writes over the 40 keys: reads checkpoint (and merge) on their own.
                    let writes: Vec<(Path, reel::Value)> = (0..20_000u32)
                        .map(|i| {
                            let k = ((i * 7 + seed) % 40) as u8;
                            model.insert(k, i);
                            (path_of(k), reel::Value::encode(&json!(i)).unwrap())
                        })
                        .collect();
                    for chunk in writes.chunks(5000) {
                        kv.set_batch(chunk.iter().map(|(p, v)| (p, v.clone()))).unwrap();
                    }
                }
            }
            check(&kv, &model);
        }
        drop(kv);
        let kv = KvStore::open(&dir).unwrap();
        check(&kv, &model);
    }
}

fn tables(dir: &std::path::Path) -> Vec<String> {
    let mut t: Vec<String> = std::fs::read_dir(dir.join("views/kv"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tbl"))
        .collect();
    t.sort();
    t
}

#[test]
fn a_checkpoint_removes_the_temporary_file_of_one_killed_mid_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let kv = KvStore::open(&dir).unwrap();
    kv.set(&p("a"), json!(1)).unwrap();
    kv.view().checkpoint().unwrap();
    // What a process killed while writing its checkpoint leaves (named by its pid).
    let stale = dir.join("views/kv/checkpoint.tmp.4242424");
    std::fs::write(&stale, b"partial").unwrap();
    kv.set(&p("b"), json!(2)).unwrap();
    kv.view().checkpoint().unwrap();
    assert!(!stale.exists(), "left after a checkpoint");
    assert_eq!(kv.get(&p("b")).unwrap().unwrap().json().unwrap(), json!(2));
}

#[test]
fn a_new_handle_starts_from_the_tables_and_replays_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let kv = KvStore::open(&dir).unwrap();
    let paths: Vec<Path> = (0..50_000).map(|i| p(&format!("user.u{i}"))).collect();
    for chunk in paths.chunks(10_000) {
        kv.set_batch(
            chunk
                .iter()
                .map(|p| (p, reel::Value::encode(&json!(1)).unwrap())),
        )
        .unwrap();
    }
    kv.view().checkpoint().unwrap();
    assert!(!tables(&dir).is_empty(), "the state is in tables");
    let again = KvStore::open(&dir).unwrap();
    assert_eq!(again.view().applied_to(), 50_000, "nothing to replay");
    assert_eq!(
        again
            .get(&p("user.u49999"))
            .unwrap()
            .unwrap()
            .json()
            .unwrap(),
        json!(1)
    );
    assert_eq!(again.view().read(|s| s.len().unwrap()).unwrap(), 50_000);
}

#[test]
fn handles_build_on_each_others_checkpoints_and_no_table_goes_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let a = KvStore::open(&dir).unwrap();
    let b = KvStore::open(&dir).unwrap();
    let mut model = BTreeMap::new();
    for round in 0..20u32 {
        let (w, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        for i in 0..50u32 {
            let k = ((round * 13 + i) % 60) as u8;
            w.set(&p(&format!("r.k{k}")), json!(round * 100 + i))
                .unwrap();
            model.insert(k, round * 100 + i);
        }
        if round % 3 == 0 {
            let k = (round % 60) as u8;
            if model.remove(&k).is_some() {
                other.delete(&p(&format!("r.k{k}"))).unwrap();
            }
        }
        // Both checkpoint, each from its own tables: the second must build on the
        // first's, or its checkpoint would name tables the first one removed.
        w.view().checkpoint().unwrap();
        other.view().checkpoint().unwrap();
        let fresh = KvStore::open(&dir).unwrap();
        for (k, v) in &model {
            assert_eq!(
                fresh
                    .get(&p(&format!("r.k{k}")))
                    .unwrap()
                    .unwrap()
                    .json()
                    .unwrap(),
                json!(v),
                "round {round} key {k}"
            );
        }
        assert_eq!(fresh.entries(&p("r")).unwrap().len(), model.len());
        assert_eq!(
            fresh.view().applied_to(),
            fresh.spool().next_seq(),
            "round {round}: the fresh handle loaded the newest checkpoint"
        );
    }
    assert!(
        tables(&dir).len() <= 8,
        "old tables are removed: {:?}",
        tables(&dir)
    );
}

#[test]
fn a_damaged_table_is_rebuilt_from_the_log_and_never_answered_from() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let kv = KvStore::open(&dir).unwrap();
    for i in 0..3000 {
        kv.set(
            &p(&format!("d.k{i}")),
            json!({"i": i, "pad": "y".repeat(40)}),
        )
        .unwrap();
    }
    kv.view().checkpoint().unwrap();
    drop(kv);
    for t in tables(&dir) {
        let path = dir.join("views/kv").join(t);
        let mut b = std::fs::read(&path).unwrap();
        // A byte in the middle of the blocks: the index and footer still hold.
        let at = b.len() / 3;
        b[at] ^= 0x20;
        std::fs::write(&path, b).unwrap();
    }
    let kv = KvStore::open(&dir).unwrap();
    for i in (0..3000).step_by(7) {
        assert_eq!(
            kv.get(&p(&format!("d.k{i}")))
                .unwrap()
                .unwrap()
                .json()
                .unwrap()["i"],
            json!(i)
        );
    }
    assert_eq!(kv.entries(&p("d")).unwrap().len(), 3000);
}

/// Tables written by an older build (format 1) are not read: the checkpoint naming them
/// cannot be loaded, and the view is rebuilt from the log with the same answers.
#[test]
fn tables_of_an_older_format_are_rebuilt_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let kv = KvStore::open(&dir).unwrap();
    for i in 0..2000 {
        kv.set(&p(&format!("o.k{i}")), json!(i)).unwrap();
    }
    kv.view().checkpoint().unwrap();
    drop(kv);
    let old = tables(&dir);
    assert!(!old.is_empty());
    for t in &old {
        let path = dir.join("views/kv").join(t);
        let mut b = std::fs::read(&path).unwrap();
        // The header, as format 1 with a valid checksum.
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, b).unwrap();
    }
    let kv = KvStore::open(&dir).unwrap();
    for i in (0..2000).step_by(3) {
        assert_eq!(
            kv.get(&p(&format!("o.k{i}")))
                .unwrap()
                .unwrap()
                .json()
                .unwrap(),
            json!(i)
        );
    }
    assert_eq!(kv.entries(&p("o")).unwrap().len(), 2000);
    kv.view().checkpoint().unwrap();
    assert!(
        tables(&dir).iter().all(|t| !old.contains(t)),
        "the rebuilt view wrote new tables"
    );
}

#[test]
fn a_handle_ahead_of_a_newer_checkpoint_builds_on_its_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let set_many = |kv: &KvStore, from: u32, n: u32| {
        let paths: Vec<Path> = (from..from + n).map(|i| p(&format!("m.k{i}"))).collect();
        kv.set_batch(
            paths
                .iter()
                .map(|p| (p, reel::Value::encode(&json!(from)).unwrap())),
        )
        .unwrap();
    };
    let a = KvStore::open(&dir).unwrap();
    set_many(&a, 0, 20_000);
    a.view().checkpoint().unwrap();
    set_many(&a, 20_000, 100);
    a.view().checkpoint().unwrap();
    // b starts from a's tables: the base and one small table after it.
    let b = KvStore::open(&dir).unwrap();
    assert_eq!(b.view().applied_to(), 20_100);
    // a adds small tables until it merges them, removing the one b reads...
    for round in 0..6 {
        set_many(&a, 20_100 + round * 100, 100);
        a.view().checkpoint().unwrap();
    }
    // ...while b goes beyond a's checkpoint and checkpoints from its own tables.
    set_many(&b, 30_000, 10);
    b.view().checkpoint().unwrap();
    let fresh = KvStore::open(&dir).unwrap();
    assert_eq!(
        fresh.view().applied_to(),
        20_710,
        "the newest checkpoint loads (it names only tables that exist)"
    );
    assert_eq!(fresh.entries(&p("m")).unwrap().len(), 20_710);
    assert_eq!(
        fresh.get(&p("m.k30005")).unwrap().unwrap().json().unwrap(),
        json!(30_000)
    );
}

#[test]
fn verify_reads_every_view_table_and_names_the_damaged_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let kv = KvStore::open(&dir).unwrap();
    for i in 0..2000 {
        kv.set(
            &p(&format!("v.k{i}")),
            json!({"i": i, "pad": "z".repeat(30)}),
        )
        .unwrap();
    }
    kv.view().checkpoint().unwrap();
    assert!(kv.spool().verify().unwrap().is_ok(), "intact tables verify");
    drop(kv);
    let table = tables(&dir).pop().unwrap();
    let path = dir.join("views/kv").join(&table);
    let mut b = std::fs::read(&path).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x08;
    std::fs::write(&path, b).unwrap();
    let spool = reel::Spool::open(&dir).unwrap();
    let report = spool.verify().unwrap();
    assert_eq!(report.damage.len(), 1, "{:?}", report.damage);
    assert_eq!(report.damage[0].path, path);
    assert!(
        report.damage[0].what.contains("view rebuild"),
        "{:?}",
        report.damage[0]
    );
}

/// Compacting leaves one table with the same answers (deletions gone from it), in this
/// handle and in a new one.
#[test]
fn compact_merges_every_table_into_one_with_the_same_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let kv = KvStore::open(&dir).unwrap();
    let paths: Vec<Path> = (0..40_000).map(|i| p(&format!("c.k{i}"))).collect();
    for (n, chunk) in paths.chunks(5_000).enumerate() {
        kv.set_batch(
            chunk
                .iter()
                .map(|p| (p, reel::Value::encode(&json!(n)).unwrap())),
        )
        .unwrap();
        kv.view().checkpoint().unwrap();
    }
    for p in paths.iter().step_by(3) {
        kv.delete(p).unwrap();
    }
    kv.view().checkpoint().unwrap();
    let before = tables(&dir).len();
    assert!(before > 1, "several tables before: {before}");
    let (was, now) = kv.view().compact().unwrap();
    assert_eq!((was, now), (before, 1));
    assert_eq!(tables(&dir).len(), 1);
    let expect = |i: usize| (!i.is_multiple_of(3)).then(|| json!(i / 5_000));
    for handle in [kv, KvStore::open(&dir).unwrap()] {
        for (i, p) in paths.iter().enumerate().step_by(7) {
            let got = handle.get(p).unwrap().map(|e| e.json().unwrap());
            assert_eq!(got, expect(i), "{p}");
        }
        let live = paths.len() - paths.len().div_ceil(3);
        assert_eq!(handle.view().read(|s| s.len().unwrap()).unwrap(), live);
    }
}
