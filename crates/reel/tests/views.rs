//! Views: checkpoints, rebuilds, read-your-writes, concurrent waiters.
use reel::view::{Checkpoint, Reduce, View, ViewHandle, list_views};
use reel::{RecordRef, Spool};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sums values and counts how many records it was fed (to see what a reopen replays).
struct Sum {
    version: u32,
    sum: i64,
    fed: Arc<AtomicU64>,
}

impl View for Sum {
    fn name(&self) -> &str {
        "sum"
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn apply(&mut self, r: &RecordRef<'_>) -> reel::Result<()> {
        self.sum += reel::value_json(r)?.as_i64().unwrap_or(0);
        self.fed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn reset(&mut self) {
        self.sum = 0;
    }
    fn save(&self) -> reel::Result<Vec<u8>> {
        Ok(self.sum.to_le_bytes().to_vec())
    }
    fn load(&mut self, b: &[u8]) -> reel::Result<()> {
        self.sum = i64::from_le_bytes(
            b.try_into()
                .map_err(|_| reel::Error::Decode("bad sum".into()))?,
        );
        Ok(())
    }
}

fn sum_view(spool: &Spool, version: u32) -> (ViewHandle<Sum>, Arc<AtomicU64>) {
    let fed = Arc::new(AtomicU64::new(0));
    (
        ViewHandle::open(
            spool,
            Sum {
                version,
                sum: 0,
                fed: fed.clone(),
            },
        )
        .unwrap(),
        fed,
    )
}

#[test]
fn a_checkpoint_spares_the_replay_and_a_new_version_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Spool::create(tmp.path()).unwrap();
    for n in 1..=100 {
        spool.append(json!(n)).unwrap();
    }
    {
        let (v, fed) = sum_view(&spool, 1);
        assert_eq!(v.read(|s| s.sum).unwrap(), 5050);
        assert_eq!(fed.load(Ordering::SeqCst), 100);
        v.checkpoint().unwrap();
    }
    spool.append(json!(1000)).unwrap();
    let (v, fed) = sum_view(&spool, 1);
    assert_eq!(v.read(|s| s.sum).unwrap(), 6050);
    assert_eq!(
        fed.load(Ordering::SeqCst),
        1,
        "only the new record was applied"
    );
    let info = list_views(&spool).unwrap();
    assert_eq!(info[0].name, "sum");
    drop(v);
    let (v2, fed2) = sum_view(&spool, 2);
    assert_eq!(v2.read(|s| s.sum).unwrap(), 6050);
    assert_eq!(
        fed2.load(Ordering::SeqCst),
        101,
        "a new version rebuilds from the oldest record"
    );
}

#[test]
fn reads_see_writes_made_through_another_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Spool::create(tmp.path()).unwrap();
    let b = Spool::open(tmp.path()).unwrap();
    let (v, _) = sum_view(&a, 1);
    for n in 0..50 {
        b.append(json!(n)).unwrap();
        assert_eq!(v.read(|s| s.sum).unwrap(), (0..=n).sum::<i64>());
    }
}

/// Readers asleep on the spool's `publish` word: the `waiters` word of `reel.head`
/// (FORMAT.md §5: u32 at byte 20, native-endian).
fn waiters(dir: &std::path::Path) -> u32 {
    let head = std::fs::read(dir.join(reel_log::HEAD_FILE)).unwrap();
    u32::from_ne_bytes(head[20..24].try_into().unwrap())
}

/// Spins until `cond` holds, failing after 30 s.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}

#[test]
fn many_readers_waiting_for_different_positions_all_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Spool::create(tmp.path()).unwrap();
    let (v, _) = sum_view(&spool, 1);
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        for target in [9u64, 3, 7, 0, 5, 1, 8, 2, 6, 4] {
            let (v, done) = (v.clone(), &done);
            s.spawn(move || {
                let sum = v
                    .read_at(target, Duration::from_secs(30), |s| s.sum)
                    .unwrap()
                    .expect("not timed out");
                assert!(
                    sum >= (0..=target as i64).sum::<i64>(),
                    "read at {target} saw sum {sum}"
                );
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        wait_until("all ten readers wait", || waiters(tmp.path()) == 10);
        for n in 0..10 {
            spool.append(json!(n)).unwrap();
            // The reader waiting for seq n (and every earlier one) completes, while the
            // others keep waiting.
            wait_until(&format!("the reader of {n} completed"), || {
                done.load(Ordering::SeqCst) == n + 1
            });
        }
    });
    assert_eq!(done.load(Ordering::SeqCst), 10);
}

#[test]
fn a_checkpoint_from_beyond_the_log_end_is_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Spool::create(tmp.path()).unwrap();
    for n in 0..10 {
        spool.append(json!(n)).unwrap();
    }
    // As if a power cut lost records that a synced checkpoint had applied.
    let bogus = Checkpoint {
        version: 1,
        applied_to: 500,
        log_id: spool.log().log_id(),
        state: 999i64.to_le_bytes().to_vec(),
    };
    bogus
        .write(&**spool.log().storage(), spool.dir(), "sum")
        .unwrap();
    let (v, fed) = sum_view(&spool, 1);
    assert_eq!(v.read(|s| s.sum).unwrap(), 45);
    assert_eq!(fed.load(Ordering::SeqCst), 10);
}

#[test]
fn rebuild_reports_progress_and_matches_a_fresh_view() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Spool::create(tmp.path()).unwrap();
    let recs: Vec<reel::NewRecord> = (0..120_000)
        .map(|n| reel::NewRecord::new(json!(n % 7)))
        .collect();
    spool.append_batch(&recs).unwrap();
    let total = ViewHandle::open(
        &spool,
        Reduce::new("total", 1, 0i64, |a: &mut i64, r| {
            *a += reel::value_json(r)?.as_i64().unwrap_or(0);
            Ok(())
        }),
    )
    .unwrap();
    let expect: i64 = (0..120_000i64).map(|n| n % 7).sum();
    assert_eq!(total.read(|v| *v.value()).unwrap(), expect);
    let mut calls = Vec::new();
    total.rebuild(|done, all| calls.push((done, all))).unwrap();
    assert_eq!(calls.last(), Some(&(120_000, 120_000)));
    assert!(calls.len() >= 2, "progress is reported along the way");
    assert_eq!(total.read(|v| *v.value()).unwrap(), expect);
}

/// Fails to apply the record with value 13 the first `failures` times it sees it.
struct Flaky {
    sum: i64,
    failures: u32,
}

impl View for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&mut self, r: &RecordRef<'_>) -> reel::Result<()> {
        let v = reel::value_json(r)?.as_i64().unwrap_or(0);
        if v == 13 && self.failures > 0 {
            self.failures -= 1;
            return Err(reel::Error::InvalidArgument("not now".into()));
        }
        self.sum += v;
        Ok(())
    }
    fn reset(&mut self) {
        self.sum = 0;
    }
    fn save(&self) -> reel::Result<Vec<u8>> {
        Ok(self.sum.to_le_bytes().to_vec())
    }
    fn load(&mut self, b: &[u8]) -> reel::Result<()> {
        self.sum = i64::from_le_bytes(
            b.try_into()
                .map_err(|_| reel::Error::Decode("bad".into()))?,
        );
        Ok(())
    }
}

#[test]
fn a_record_a_view_failed_to_apply_is_applied_again_and_nothing_after_it_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Spool::create(tmp.path().join("s")).unwrap();
    for i in 1..=100i64 {
        spool.append(reel::NewRecord::new(json!(i))).unwrap();
    }
    let view = ViewHandle::open(
        &spool,
        Flaky {
            sum: 0,
            failures: 2,
        },
    )
    .unwrap();
    // The failing record is in the middle of the batch the view reads.
    assert!(view.read(|v| v.sum).is_err());
    assert!(view.read(|v| v.sum).is_err());
    assert_eq!(
        view.read(|v| v.sum).unwrap(),
        5050,
        "every record applied once"
    );
}

/// A user view that keeps its state in tables, as the kv and lists views do: counts per
/// key, the counts as of the last checkpoint in a `TableSet`, newer ones in memory.
#[derive(Default)]
struct CountInTables {
    tables: reel::view::tables::TableSet,
    recent: std::collections::BTreeMap<String, u64>,
}

impl CountInTables {
    fn count(&self, key: &str) -> reel::Result<u64> {
        if let Some(n) = self.recent.get(key) {
            return Ok(*n);
        }
        Ok(match self.tables.get(key.as_bytes())? {
            Some(v) => u64::from_le_bytes(v.try_into().unwrap()),
            None => 0,
        })
    }
}

impl View for CountInTables {
    fn name(&self) -> &str {
        "count"
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&mut self, r: &RecordRef<'_>) -> reel::Result<()> {
        let key = r.key.unwrap_or("").to_string();
        let n = self.count(&key)? + 1;
        self.recent.insert(key, n);
        Ok(())
    }
    fn reset(&mut self) {
        self.tables.clear();
        self.recent.clear();
    }
    fn save(&self) -> reel::Result<Vec<u8>> {
        unreachable!("uses_files views are saved with save_files")
    }
    fn load(&mut self, _: &[u8]) -> reel::Result<()> {
        unreachable!("uses_files views are loaded with load_files")
    }
    fn uses_files(&self) -> bool {
        true
    }
    fn save_files(&mut self, files: &reel::view::ViewFiles) -> reel::Result<Vec<u8>> {
        let rows = std::mem::take(&mut self.recent)
            .into_iter()
            .map(|(k, n)| (k.into_bytes(), Some(n.to_le_bytes().to_vec())))
            .collect();
        self.tables.write(files, rows)?;
        Ok(self.tables.manifest())
    }
    fn load_files(&mut self, files: &reel::view::ViewFiles, b: &[u8]) -> reel::Result<()> {
        let tables = reel::view::tables::TableSet::load(files, b)?;
        self.reset();
        self.tables = tables;
        Ok(())
    }
    fn files_in_use(&self) -> Vec<String> {
        self.tables.names()
    }
}

#[test]
fn a_user_view_keeps_its_state_in_tables_across_checkpoints_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let spool = Spool::create(&dir).unwrap();
    let append = |n: u64| {
        for i in 0..n {
            spool
                .append(reel::NewRecord::new(json!(i)).key(format!("k{}", i % 7)))
                .unwrap();
        }
    };
    append(700);
    let view = ViewHandle::open(&spool, CountInTables::default()).unwrap();
    assert_eq!(view.read(|v| v.count("k3").unwrap()).unwrap(), 100);
    view.checkpoint().unwrap();
    append(70);
    view.checkpoint().unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.join("views/count"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tbl"))
        .collect();
    assert!(!files.is_empty(), "the state is in tables");
    drop(view);
    let view = ViewHandle::open(&spool, CountInTables::default()).unwrap();
    assert_eq!(
        view.applied_to(),
        770,
        "restored from the tables, nothing replayed"
    );
    assert_eq!(view.read(|v| v.count("k3").unwrap()).unwrap(), 110);
    append(7);
    assert_eq!(view.read(|v| v.count("k6").unwrap()).unwrap(), 111);
}

/// A rebuild through a read-only handle claimed success and saved nothing.
#[test]
fn a_rebuild_through_a_read_only_handle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::create(dir.path()).unwrap();
    spool.append(json!(1)).unwrap();
    drop(spool);
    let ro = Spool::builder(dir.path()).read_only(true).open().unwrap();
    let (view, _) = sum_view(&ro, 1);
    let err = view.rebuild(|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("cannot write to"), "{err}");
}
