//! Keyed lists under retention: what a list promises (its next offset, its last nonce,
//! the items `info` counts, answers by time) holds while drop-oldest deletes the
//! segments under it, across processes (handles dropped and reopened), checkpoints,
//! rebuilds and concurrent reads.
use reel::list::{ListStore, NewItem, Page, PageRequest, Start};
use serde_json::json;
use std::path::Path;

const SMALL: u64 = 64 << 10;

fn open(dir: &Path) -> ListStore {
    ListStore::builder(dir).capacity(SMALL).open().unwrap()
}

fn item(value: serde_json::Value, nonce: Option<u128>, ts: Option<i64>) -> NewItem {
    NewItem { value, nonce, ts }
}

/// `n` items of about 120 bytes, to fill the store.
fn filler(n: usize) -> Vec<NewItem> {
    (0..n)
        .map(|i| item(json!(format!("{i:0>100}")), None, None))
        .collect()
}

fn read(l: &ListStore, key: &str, reverse: bool, start: Start) -> Page {
    l.read(
        key,
        &PageRequest {
            reverse,
            start,
            limit: Some(50),
            ..Default::default()
        },
    )
    .unwrap()
}

fn offsets(p: &Page) -> Vec<u64> {
    p.items.iter().map(|i| i.offset).collect()
}

/// Each append in a handle of its own, as `reel list append` runs one process each:
/// none of them writes a checkpoint on close (too few records), so only retention's
/// own checkpoint can save the list of `j` before its items go.
#[test]
fn a_list_whose_items_all_expired_keeps_its_next_offset_and_nonce() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let items = [json!("a"), json!("b"), json!("c")].map(|v| item(v, None, None));
    let mut first = items.to_vec();
    first[0].nonce = Some(1);
    open(&dir).append("j", &first).unwrap();
    for _ in 0..7 {
        open(&dir).append("other", &filler(100)).unwrap();
    }
    let check = |l: &ListStore, stage: &str| {
        let info = l
            .info("j")
            .unwrap()
            .unwrap_or_else(|| panic!("{stage}: j is gone"));
        assert_eq!(
            (
                info.count,
                info.first_offset,
                info.next_offset,
                info.last_nonce
            ),
            (0, 3, 3, Some(1)),
            "{stage}"
        );
        assert_eq!(l.keys().unwrap(), ["j", "other"], "{stage}");
    };
    let l = open(&dir);
    check(&l, "after retention");
    drop(l);
    let l = open(&dir);
    l.view().rebuild(|_, _| {}).unwrap();
    check(&l, "after a rebuild");
    drop(l);
    let l = open(&dir);
    check(&l, "reopened after the rebuild");
    // Exactly once still holds: nonce 1 is a duplicate; nonce 2 continues at offset 3.
    let r = l.append("j", &[item(json!("x"), Some(1), None)]).unwrap();
    assert_eq!((r.appended, r.duplicates), (0, 1));
    let r = l.append("j", &[item(json!("x"), Some(2), None)]).unwrap();
    assert_eq!((r.appended, r.next_offset), (1, 4));
    assert_eq!(offsets(&read(&l, "j", false, Start::End)), [3]);
}

/// A nonce set by an item retention dropped, followed by items without one: a rebuild
/// must not forget it.
#[test]
fn a_rebuild_keeps_the_nonce_of_a_dropped_item() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let l = open(&dir);
    l.append("j", &[item(json!(0), Some(7), None)]).unwrap();
    l.append("other", &filler(300)).unwrap();
    l.append("j", &[item(json!(1), None, None)]).unwrap();
    l.append("other", &filler(200)).unwrap();
    let info = l.info("j").unwrap().unwrap();
    assert_eq!(
        (info.first_offset, info.count),
        (1, 1),
        "the nonce's item expired"
    );
    l.view().rebuild(|_, _| {}).unwrap();
    let info = l.info("j").unwrap().unwrap();
    assert_eq!((info.next_offset, info.last_nonce), (2, Some(7)));
    assert_eq!(
        l.append("j", &[item(json!(2), Some(7), None)])
            .unwrap()
            .duplicates,
        1
    );
}

/// A long-running handle (a server) whose list's partial last chunk expires while new
/// items wait for the next checkpoint: checkpoints keep working, and a new handle
/// (after a restart) sees every offset.
#[test]
fn retention_through_a_partial_chunk_keeps_checkpoints_and_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let numbers = |from: u64, n: u64| -> Vec<NewItem> {
        (from..from + n)
            .map(|i| item(json!([i, "-".repeat(30)]), None, None))
            .collect()
    };
    {
        let l = open(&dir);
        l.append("k", &numbers(0, 300)).unwrap();
        for i in 0..60 {
            l.append(&format!("o{i}"), &numbers(0, 1)).unwrap();
        }
        l.append("other", &numbers(0, 700)).unwrap();
        assert_eq!(l.info("k").unwrap().unwrap().next_offset, 300);
        l.view().checkpoint().unwrap();
    }
    let l = open(&dir);
    for from in (300..800).step_by(20) {
        l.append("k", &numbers(from, 20)).unwrap();
    }
    assert_eq!(l.info("k").unwrap().unwrap().next_offset, 800);
    // Until retention reaches past chunk 1 (items 256..512), not to the end of k.
    let mut info = l.info("k").unwrap().unwrap();
    while info.first_offset < 512 {
        l.append("other", &numbers(0, 20)).unwrap();
        info = l.info("k").unwrap().unwrap();
    }
    assert_eq!(info.next_offset, 800);
    assert!(info.count > 0, "{info:?}");
    l.view().checkpoint().unwrap();
    drop(l);
    let l = open(&dir);
    let again = l.info("k").unwrap().unwrap();
    assert_eq!(again, info);
    let all = offsets(&read(&l, "k", false, Start::Offset(info.first_offset)));
    assert_eq!(all.first(), Some(&info.first_offset), "{info:?}");
}

/// Answers by time count only the items still stored: an expired item with a later
/// time than the ones kept does not hide them, and a rebuild answers the same.
#[test]
fn seeking_by_time_ignores_expired_items() {
    const T: i64 = 1_000_000_000_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let l = open(&dir);
    l.append("k", &[item(json!("a"), None, Some(9 * T))])
        .unwrap();
    l.append("other", &filler(250)).unwrap();
    l.append(
        "k",
        &[
            item(json!("b"), None, Some(7 * T)),
            item(json!("c"), None, Some(7 * T + 1)),
        ],
    )
    .unwrap();
    l.append("other", &filler(250)).unwrap();
    assert_eq!(
        l.info("k").unwrap().unwrap().count,
        2,
        "a expired, b and c did not"
    );
    let answers = |l: &ListStore| {
        [
            offsets(&read(l, "k", true, Start::Time(8 * T))),
            offsets(&read(l, "k", false, Start::Time(8 * T))),
            offsets(&read(l, "k", false, Start::Time(7 * T + 1))),
            offsets(&read(l, "k", true, Start::Time(7 * T))),
            offsets(&read(l, "k", false, Start::Time(6 * T))),
        ]
    };
    let expected = [vec![2, 1], vec![], vec![2], vec![1], vec![1, 2]];
    assert_eq!(answers(&l), expected);
    l.view().rebuild(|_, _| {}).unwrap();
    assert_eq!(answers(&l), expected, "after a rebuild");
}

/// While retention deletes segments under them, reads never leave out an item that
/// is still stored: every page of a list that always holds items is full, in order,
/// read by handles of their own (as other processes read).
#[test]
fn pages_stay_whole_while_retention_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let l = open(&dir);
    l.append("k", &filler(20)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (l, stop) = (l.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || rounds < 200 {
                l.append("other", &filler(20)).unwrap();
                l.append("k", &filler(20)).unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let mut pages = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        // A handle of its own, as a process has: no segment file already open.
        let reader = ListStore::builder(&dir).read_only(true).open().unwrap();
        let page = reader
            .read(
                "k",
                &PageRequest {
                    limit: Some(10),
                    ..Default::default()
                },
            )
            .unwrap();
        let got = offsets(&page);
        assert_eq!(got.len(), 10, "page {pages}: {got:?}");
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
        pages += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(
        l.info("k").unwrap().unwrap().first_offset > 0,
        "retention ran"
    );
    assert!(
        pages > 100 && rounds >= 200,
        "{pages} pages, {rounds} rounds"
    );
}

/// `reject` keeps every item of a lists store: a reader that consumed the records (an
/// audit tool, `reel tee`) must not free room as it does in a spool.
#[test]
fn reject_keeps_every_item_even_after_a_reader_consumed_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let l = ListStore::builder(&dir)
        .capacity(SMALL)
        .when_full(reel::WhenFull::Reject)
        .open()
        .unwrap();
    let mut stored = 0;
    while let Ok(a) = l.append("orders", &filler(20)) {
        stored = a.next_offset;
    }
    let mut audit = l.spool().reader("audit").unwrap();
    while !audit.next_batch(1000, None).unwrap().is_empty() {}
    audit.commit().unwrap();
    let e = l.append("orders", &filler(20)).unwrap_err();
    assert!(e.to_string().contains("every item of a lists store"), "{e}");
    let info = l.info("orders").unwrap().unwrap();
    assert_eq!((info.first_offset, info.next_offset), (0, stored));
}

/// Shrinking a lists store drops its oldest records: the view is checkpointed through
/// them first, as before an append's retention, so no list's next offset or last nonce
/// goes back. Each append runs in a handle of its own, small enough that closing it
/// writes no checkpoint (as `reel list append` processes).
#[test]
fn a_shrink_keeps_the_offsets_and_nonces_of_the_lists_it_empties() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let big = || ListStore::builder(&dir).capacity(1 << 20).open().unwrap();
    let first = big();
    first
        .append("c", &[item(json!("c0"), Some(100), None)])
        .unwrap();
    first.view().checkpoint().unwrap();
    drop(first);
    let two = [json!("c1"), json!("c2")].map(|v| item(v, None, None));
    let mut two = two.to_vec();
    two[0].nonce = Some(101);
    big().append("c", &two).unwrap();
    // 600 records of 400 bytes: segments fill and roll, and fewer records than make a
    // closing handle checkpoint (1,024 since the last checkpoint).
    let wide: Vec<NewItem> = (0..100)
        .map(|_| item(json!("x".repeat(400)), None, None))
        .collect();
    for _ in 0..6 {
        big().append("other", &wide).unwrap();
    }
    let spool = reel::Spool::open(&dir).unwrap();
    spool
        .reconfigure(SMALL, reel::WhenFull::DropOldest)
        .unwrap();
    assert!(spool.oldest_seq() > 3, "c's items were dropped");
    drop(spool);
    let l = open(&dir);
    let info = l.info("c").unwrap().unwrap();
    assert_eq!((info.next_offset, info.last_nonce), (3, Some(101)));
    let again = l
        .append("c", &[item(json!("c1 again"), Some(101), None)])
        .unwrap();
    assert_eq!((again.duplicates, again.next_offset), (1, 3));
}
