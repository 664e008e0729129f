//! The keyed-list group: pages of 100 and nonce checks, next to redb and fjall ranges.

use super::fixtures::*;
use criterion::Criterion;
use redb::ReadableDatabase;
use reel::list::{ListStore, NewItem, PageRequest, Start};
use reel::{Encoding, Value};
use std::time::Duration;

fn list_value(i: usize) -> serde_json::Value {
    serde_json::json!({"n": i, "event": "login", "ok": i.is_multiple_of(3)})
}

pub fn list(c: &mut Criterion) {
    let s = sizes();
    let tmp = tempfile::tempdir().expect("tempdir");
    let lists = ListStore::open(tmp.path().join("reel")).expect("open lists");
    let item = |i: usize| NewItem {
        value: list_value(i),
        nonce: Some(i as u128 + 1),
        ts: None,
    };
    for start in (0..s.list).step_by(1000) {
        let items: Vec<NewItem> = (start..(start + 1000).min(s.list)).map(item).collect();
        lists.append("events", &items).expect("append");
    }
    let small: Vec<NewItem> = (0..100).map(item).collect();
    lists.append("small", &small).expect("append");
    let db = redb_create(tmp.path());
    let (ks, part) = fjall_open(tmp.path());
    {
        let tx = db.begin_write().expect("begin write");
        {
            let mut t = tx.open_table(LIST).expect("open table");
            for i in 0..s.list {
                let v = Value::json(&list_value(i));
                t.insert(i as u64, v.as_bytes()).expect("insert");
            }
        }
        tx.commit().expect("commit");
        let mut batch = ks.batch();
        for i in 0..s.list {
            let v = Value::json(&list_value(i));
            batch.insert(&part, (i as u64).to_be_bytes(), v.as_bytes());
        }
        batch.commit().expect("commit");
    }

    let mut rng = Rng(9);
    let mut offset = move || rng.below(s.list - PAGE) as u64;
    let mut g = c.benchmark_group(format!("list_{}", label(s.list)));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("reel/page_100", |b| {
        b.iter(|| {
            let o = offset();
            let req = PageRequest {
                limit: Some(PAGE),
                start: Start::Offset(o),
                ..Default::default()
            };
            let page = lists.read("events", &req).expect("read");
            assert_eq!(page.items.len(), PAGE);
            assert_eq!(page.items[0].offset, o);
            page
        })
    });
    // Where a page's time goes: the 100 direct record reads alone, without decoding.
    let metas = lists
        .view()
        .lock_at(lists.spool().next_seq())
        .expect("index")
        .view_mut()
        .items("events", 0)
        .expect("list");
    g.bench_function("reel/read_record_at_x100_raw", |b| {
        b.iter(|| {
            let o = offset() as usize;
            let mut bytes = 0;
            for m in &metas[o..o + PAGE] {
                bytes += lists
                    .spool()
                    .log()
                    .read_record_at(m.pos, m.seq, |r| r.value.len())
                    .expect("read")
                    .expect("record");
            }
            bytes
        })
    });
    g.bench_function("redb/range_100", |b| {
        b.iter(|| {
            let o = offset();
            let tx = db.begin_read().expect("begin read");
            let t = tx.open_table(LIST).expect("open table");
            let items: Vec<(u64, serde_json::Value)> = t
                .range(o..)
                .expect("range")
                .take(PAGE)
                .map(|r| {
                    let (k, v) = r.expect("item");
                    let j = reel::json_of(Encoding::MsgPack, v.value()).expect("decode");
                    (k.value(), j)
                })
                .collect();
            assert_eq!(items.len(), PAGE);
            items
        })
    });
    g.bench_function("redb/range_100_raw", |b| {
        b.iter(|| {
            let o = offset();
            let tx = db.begin_read().expect("begin read");
            let t = tx.open_table(LIST).expect("open table");
            let bytes: usize = t
                .range(o..)
                .expect("range")
                .take(PAGE)
                .map(|r| r.expect("item").1.value().len())
                .sum();
            bytes
        })
    });
    g.bench_function("fjall/range_100", |b| {
        b.iter(|| {
            let o = offset();
            let items: Vec<(u64, serde_json::Value)> = part
                .range(o.to_be_bytes()..)
                .take(PAGE)
                .map(|r| {
                    let (k, v) = r.expect("item");
                    let k = u64::from_be_bytes(k[..].try_into().expect("u64 key"));
                    (k, reel::json_of(Encoding::MsgPack, &v).expect("decode"))
                })
                .collect();
            assert_eq!(items.len(), PAGE);
            items
        })
    });
    for (name, key, last) in [
        ("reel/nonce_duplicate_100", "small", 100usize),
        ("reel/nonce_duplicate_big", "events", s.list),
    ] {
        let dup = [item(last - 1)];
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = lists.append(key, &dup).expect("append");
                assert_eq!((r.appended, r.duplicates), (0, 1));
                r
            })
        });
    }
    g.finish();
}
