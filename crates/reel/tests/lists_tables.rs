//! The lists view kept on disk (headers and chunks of 256 items in sorted tables): it
//! answers like a plain model through appends, checkpoints, reopens and retention, with
//! lists spanning many chunks; pages and seeks cross chunk boundaries; a new handle
//! replays nothing a checkpoint holds.
use proptest::prelude::*;
use reel::list::{CHUNK, ListStore, NewItem, PageRequest, Start};
use serde_json::json;
use std::collections::BTreeMap;

const TS0: i64 = 1_700_000_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// Append `n` items to key `k` (nonces increasing; every third call retries its last).
    Append(u8, u16),
    Checkpoint,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 1u16..1500).prop_map(|(k, n)| Op::Append(k, n)),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

/// Per key: (offset, ts, nonce, value) of every item.
type Model = BTreeMap<String, Vec<(u64, i64, u128, u64)>>;

fn read_all(l: &ListStore, key: &str, reverse: bool, limit: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = l
            .read(
                key,
                &PageRequest {
                    reverse,
                    limit: Some(limit),
                    continuation: token.take(),
                    ..Default::default()
                },
            )
            .unwrap();
        if page.items.is_empty() {
            break;
        }
        out.extend(page.items.iter().map(|i| i.offset));
        match page.continuation {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    out
}

fn check(l: &ListStore, model: &Model) {
    let keys: Vec<String> = model.keys().cloned().collect();
    assert_eq!(l.keys().unwrap(), keys);
    for (key, items) in model {
        let info = l.info(key).unwrap().unwrap();
        assert_eq!(info.count, items.len() as u64, "{key}");
        assert_eq!(info.next_offset, items.len() as u64, "{key}");
        assert_eq!(info.last_nonce, items.last().map(|i| i.2), "{key}");
        assert_eq!(info.last_ts, items.last().map(|i| i.1), "{key}");
        let all: Vec<u64> = items.iter().map(|i| i.0).collect();
        assert_eq!(read_all(l, key, false, 700), all, "{key} forward");
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(read_all(l, key, true, 900), rev, "{key} reverse");
        // Seeks land on the right item wherever it is (chunk edges included).
        for &i in [
            0,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            items.len() / 2,
            items.len() - 1,
        ]
        .iter()
        .filter(|&&i| i < items.len())
        {
            let (offset, ts, nonce, value) = items[i];
            for start in [Start::Offset(offset), Start::Time(ts), Start::Nonce(nonce)] {
                let page = l
                    .read(
                        key,
                        &PageRequest {
                            limit: Some(1),
                            start,
                            ..Default::default()
                        },
                    )
                    .unwrap();
                assert_eq!(page.items[0].offset, offset, "{key} {start:?}");
                assert_eq!(page.items[0].value.to_json().unwrap(), json!(value));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn the_lists_view_in_tables_answers_like_a_model(ops in proptest::collection::vec(op(), 1..14)) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("l");
        let mut l = ListStore::open(&dir).unwrap();
        let mut model = Model::new();
        let mut calls = 0u64;
        for op in ops {
            match op {
                Op::Append(k, n) => {
                    calls += 1;
                    let key = format!("key-{k}");
                    let list = model.entry(key.clone()).or_default();
                    let retry = calls.is_multiple_of(3) && !list.is_empty();
                    let mut batch = Vec::new();
                    if retry {
                        let (_, ts, nonce, value) = *list.last().unwrap();
                        batch.push(NewItem { value: json!(value), nonce: Some(nonce), ts: Some(ts) });
                    }
                    for _ in 0..n {
                        let offset = list.len() as u64;
                        let (ts, nonce, value) = (TS0 + offset as i64 * 10, 1000 + offset as u128, offset * 7);
                        list.push((offset, ts, nonce, value));
                        batch.push(NewItem { value: json!(value), nonce: Some(nonce), ts: Some(ts) });
                    }
                    let r = l.append(&key, &batch).unwrap();
                    prop_assert_eq!(r.duplicates, u64::from(retry));
                    prop_assert_eq!(r.appended, n as u64);
                }
                Op::Checkpoint => l.view().checkpoint().unwrap(),
                Op::Reopen => {
                    drop(l);
                    l = ListStore::open(&dir).unwrap();
                }
            }
            check(&l, &model);
        }
        drop(l);
        check(&ListStore::open(&dir).unwrap(), &model);
    }
}

#[test]
fn a_big_list_opens_without_replay_and_retention_drops_whole_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let l = ListStore::builder(&dir).capacity(4 << 20).open().unwrap();
    let items = |from: u64, n: u64| -> Vec<NewItem> {
        (from..from + n)
            .map(|i| NewItem {
                value: json!({"i": i, "pad": "p".repeat(60)}),
                nonce: Some(i as u128 + 1),
                ts: Some(TS0 + i as i64),
            })
            .collect()
    };
    let mut n = 0;
    // Enough to fill the 4 MiB store several times over: retention drops old items.
    while n < 100_000 {
        l.append("big", &items(n, 5000)).unwrap();
        n += 5000;
    }
    l.view().checkpoint().unwrap();
    let info = l.info("big").unwrap().unwrap();
    assert!(info.first_offset > 0, "retention dropped the oldest items");
    assert_eq!(info.next_offset, 100_000);
    assert_eq!(info.count, 100_000 - info.first_offset);
    drop(l);
    let l = ListStore::open(&dir).unwrap();
    assert_eq!(
        l.view().applied_to(),
        l.spool().next_seq(),
        "nothing to replay"
    );
    let again = l.info("big").unwrap().unwrap();
    assert_eq!(again.count, info.count);
    let page = l
        .read(
            "big",
            &PageRequest {
                limit: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.items[0].offset, info.first_offset);
    assert_eq!(
        page.items[2].value.to_json().unwrap()["i"],
        json!(info.first_offset + 2)
    );
}

/// A list longer than several summary pages (64 chunks, 16,384 items each) and a short
/// one: reads, seeks by offset, time and nonce on both sides of page and chunk edges,
/// reopening, and `keys` (chunk 104's row key ends in the same two bytes as a header's:
/// it must not be taken for a list).
#[test]
fn a_list_of_many_summary_pages_answers_like_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let mut l = ListStore::open(&dir).unwrap();
    let mut model = Model::new();
    let total = 70_000u64;
    let mut n = 0u64;
    while n < total {
        let batch: Vec<NewItem> = (n..(n + 3_000).min(total))
            .map(|i| {
                model.entry("long".into()).or_default().push((
                    i,
                    TS0 + i as i64 * 10,
                    1000 + i as u128,
                    i * 7,
                ));
                NewItem {
                    value: json!(i * 7),
                    nonce: Some(1000 + i as u128),
                    ts: Some(TS0 + i as i64 * 10),
                }
            })
            .collect();
        n += batch.len() as u64;
        l.append("long", &batch).unwrap();
        if n.is_multiple_of(9_000) {
            l.view().checkpoint().unwrap();
        }
        if n.is_multiple_of(21_000) {
            drop(l);
            l = ListStore::open(&dir).unwrap();
        }
    }
    l.append(
        "short",
        &[NewItem {
            value: json!(7),
            nonce: Some(1000),
            ts: Some(TS0),
        }],
    )
    .unwrap();
    model
        .entry("short".into())
        .or_default()
        .push((0, TS0, 1000, 7));
    l.view().checkpoint().unwrap();
    check(&l, &model);
    drop(l);
    let l = ListStore::open(&dir).unwrap();
    check(&l, &model);
    assert_eq!(
        l.keys().unwrap(),
        vec!["long".to_string(), "short".to_string()]
    );
    let items = &model["long"];
    let page_items = 64 * CHUNK;
    for i in [
        page_items - 1,
        page_items,
        page_items + 1,
        2 * page_items - 1,
        2 * page_items,
        3 * page_items + CHUNK,
        items.len() - 1,
    ] {
        let (offset, ts, nonce, value) = items[i];
        for start in [Start::Offset(offset), Start::Time(ts), Start::Nonce(nonce)] {
            for reverse in [false, true] {
                let page = l
                    .read(
                        "long",
                        &PageRequest {
                            limit: Some(3),
                            start,
                            reverse,
                            ..Default::default()
                        },
                    )
                    .unwrap();
                assert_eq!(page.items[0].offset, offset, "{i} {start:?} {reverse}");
                assert_eq!(page.items[0].value.to_json().unwrap(), json!(value));
            }
        }
    }
}

#[test]
fn compacting_the_lists_view_keeps_every_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let l = ListStore::open(&dir).unwrap();
    let mut model = Model::new();
    for round in 0..6u64 {
        for k in 0..3 {
            let key = format!("key-{k}");
            let list = model.entry(key.clone()).or_default();
            let batch: Vec<NewItem> = (0..2_000)
                .map(|_| {
                    let offset = list.len() as u64;
                    let item = (
                        offset,
                        TS0 + offset as i64,
                        1000 + offset as u128,
                        offset + round,
                    );
                    list.push(item);
                    NewItem {
                        value: json!(item.3),
                        nonce: Some(item.2),
                        ts: Some(item.1),
                    }
                })
                .collect();
            l.append(&key, &batch).unwrap();
        }
        l.view().checkpoint().unwrap();
    }
    let (before, after) = l.view().compact().unwrap();
    assert!(before > 1, "{before} tables");
    assert_eq!(after, 1);
    check(&l, &model);
    drop(l);
    check(&ListStore::open(&dir).unwrap(), &model);
}
