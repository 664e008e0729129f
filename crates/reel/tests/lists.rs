//! Keyed lists: offsets, exactly-once nonces, paging with continuation tokens.
use reel::list::{ListStore, NewItem, PageRequest, Start};
use serde_json::json;

fn item(v: serde_json::Value, nonce: Option<u128>, ts: Option<i64>) -> NewItem {
    NewItem {
        value: v,
        nonce,
        ts,
    }
}

fn store() -> (tempfile::TempDir, ListStore) {
    let tmp = tempfile::tempdir().unwrap();
    let l = ListStore::open(tmp.path().join("l")).unwrap();
    (tmp, l)
}

fn offsets(p: &reel::list::Page) -> Vec<u64> {
    p.items.iter().map(|i| i.offset).collect()
}

#[test]
fn each_key_has_its_own_offsets_and_nonces_deduplicate() {
    let (_t, l) = store();
    let r = l
        .append(
            "a",
            &[
                item(json!(1), Some(10), None),
                item(json!(2), Some(11), None),
            ],
        )
        .unwrap();
    assert_eq!((r.appended, r.duplicates, r.next_offset), (2, 0, 2));
    let r = l.append("b", &[item(json!("x"), Some(1), None)]).unwrap();
    assert_eq!(r.next_offset, 1, "keys count their own offsets");
    // A retried batch: the first two are duplicates, the third is new.
    let r = l
        .append(
            "a",
            &[
                item(json!(1), Some(10), None),
                item(json!(2), Some(11), None),
                item(json!(3), Some(12), None),
            ],
        )
        .unwrap();
    assert_eq!((r.appended, r.duplicates, r.next_offset), (1, 2, 3));
    // Not increasing inside one call: skipped too.
    let r = l
        .append(
            "a",
            &[
                item(json!(4), Some(20), None),
                item(json!(5), Some(15), None),
            ],
        )
        .unwrap();
    assert_eq!((r.appended, r.duplicates), (1, 1));
    // Items without nonce are always appended.
    assert_eq!(
        l.append("a", &[item(json!(6), None, None)])
            .unwrap()
            .appended,
        1
    );
    let page = l.read("a", &PageRequest::default()).unwrap();
    let vals: Vec<serde_json::Value> = page
        .items
        .iter()
        .map(|i| i.value.to_json().unwrap())
        .collect();
    assert_eq!(vals, [json!(1), json!(2), json!(3), json!(4), json!(6)]);
    assert_eq!(offsets(&page), [0, 1, 2, 3, 4]);
    let info = l.info("a").unwrap().unwrap();
    assert_eq!(
        (
            info.count,
            info.first_offset,
            info.next_offset,
            info.last_nonce
        ),
        (5, 0, 5, Some(20))
    );
    assert_eq!(l.keys().unwrap(), ["a", "b"]);
    assert!(l.info("zzz").unwrap().is_none());
}

#[test]
fn nonce_state_survives_reopen() {
    let (t, l) = store();
    l.append("k", &[item(json!(1), Some(5), None)]).unwrap();
    drop(l);
    let l = ListStore::open(t.path().join("l")).unwrap();
    assert_eq!(
        l.append("k", &[item(json!(1), Some(5), None)])
            .unwrap()
            .duplicates,
        1
    );
}

#[test]
fn paging_forward_and_backward_with_tokens_continues_exactly() {
    let (_t, l) = store();
    let items: Vec<NewItem> = (0..25).map(|n| item(json!(n), None, None)).collect();
    l.append("k", &items).unwrap();
    l.append("other", &items[..3]).unwrap();
    let mut seen = Vec::new();
    let mut req = PageRequest {
        limit: Some(10),
        ..Default::default()
    };
    loop {
        let p = l.read("k", &req).unwrap();
        if p.items.is_empty() {
            break;
        }
        seen.extend(offsets(&p));
        req.continuation = p.continuation;
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    // The last forward token still works after more items are appended.
    l.append("k", &[item(json!(25), None, None)]).unwrap();
    assert_eq!(offsets(&l.read("k", &req).unwrap()), [25]);
    // Backwards from the end.
    let mut seen = Vec::new();
    let mut req = PageRequest {
        reverse: true,
        limit: Some(7),
        ..Default::default()
    };
    loop {
        let p = l.read("k", &req).unwrap();
        seen.extend(offsets(&p));
        match p.continuation {
            Some(t) => req.continuation = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, (0..26).rev().collect::<Vec<_>>());
}

#[test]
fn seek_by_offset_time_and_nonce() {
    let (_t, l) = store();
    let items: Vec<NewItem> = (0..100u64)
        .map(|n| {
            item(
                json!(n),
                Some(1000 + 2 * n as u128),
                Some(5_000 + 10 * n as i64),
            )
        })
        .collect();
    l.append("k", &items).unwrap();
    let first = |start, reverse| {
        offsets(
            &l.read(
                "k",
                &PageRequest {
                    start,
                    reverse,
                    limit: Some(2),
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    };
    assert_eq!(first(Start::Offset(40), false), [40, 41]);
    assert_eq!(first(Start::Offset(40), true), [40, 39]);
    assert_eq!(
        first(Start::Time(5_005), false),
        [1, 2],
        "first item at or after the time"
    );
    assert_eq!(
        first(Start::Time(5_005), true),
        [0],
        "last item up to the time"
    );
    assert_eq!(first(Start::Nonce(1003), false), [2, 3]);
    assert_eq!(first(Start::Nonce(1004), true), [2, 1]);
    assert_eq!(first(Start::Offset(1000), false), Vec::<u64>::new());
}

#[test]
fn foreign_and_malformed_tokens_are_refused() {
    let (_t, l) = store();
    l.append(
        "a",
        &[item(json!(1), None, None), item(json!(2), None, None)],
    )
    .unwrap();
    l.append("b", &[item(json!(1), None, None)]).unwrap();
    let p = l
        .read(
            "a",
            &PageRequest {
                limit: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    let tok = p.continuation.unwrap();
    let err = l
        .read(
            "b",
            &PageRequest {
                continuation: Some(tok.clone()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("another list"), "{err}");
    let err = l
        .read(
            "a",
            &PageRequest {
                continuation: Some("nonsense".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
    let (_t2, l2) = store();
    l2.append("a", &[item(json!(1), None, None)]).unwrap();
    assert!(
        l2.read(
            "a",
            &PageRequest {
                continuation: Some(tok),
                ..Default::default()
            }
        )
        .is_err(),
        "a token of another store"
    );
}

#[test]
fn concurrent_appenders_with_the_same_nonces_store_each_item_once() {
    let (t, l) = store();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let dir = t.path().join("l");
            s.spawn(move || {
                let l = ListStore::open(dir).unwrap();
                for n in 0..200u128 {
                    l.append("k", &[item(json!(n as u64), Some(n), None)])
                        .unwrap();
                }
            });
        }
    });
    let info = l.info("k").unwrap().unwrap();
    assert_eq!(info.count, 200, "each nonce stored exactly once");
}
