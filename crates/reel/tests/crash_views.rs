//! Power cuts between every two file-system operations while views, the kv store and
//! keyed lists work: a view restored from its checkpoint and caught up always equals a
//! full rebuild, and a retried list batch is never stored twice.
use reel::kv::{KvStore, Path};
use reel::list::{ListStore, NewItem, PageRequest};
use reel::{Durability, Spool};
use reel_log::storage::sim::SimStorage;
use serde_json::json;
use std::sync::Arc;

const DIR: &str = "/store";

fn kv_on(sim: &SimStorage) -> KvStore {
    KvStore::builder(DIR)
        .storage(Arc::new(sim.clone()))
        .capacity(4 << 20)
        .durability(Durability::Always)
        .open()
        .unwrap()
}

fn kv_workload(sim: &SimStorage) {
    let kv = kv_on(sim);
    for i in 0..120u64 {
        let p: Path = format!("k:{}", i % 17).parse().unwrap();
        if i % 11 == 10 {
            let _ = kv.delete(&p);
        } else {
            kv.set(&p, json!(i)).unwrap();
        }
        if i % 25 == 24 {
            kv.view().checkpoint().unwrap();
        }
    }
}

#[test]
fn a_kv_view_restored_after_a_power_cut_equals_a_full_rebuild() {
    let probe = SimStorage::new();
    kv_workload(&probe);
    let total = probe.op_count();
    for k in 1..=total {
        let sim = SimStorage::new();
        sim.capture_at_op(k, k * 31 + 7);
        kv_workload(&sim);
        let image = sim.captured().unwrap();
        let kv = match KvStore::builder(DIR)
            .storage(Arc::new(image))
            .create(false)
            .open()
        {
            Ok(kv) => kv,
            Err(reel::Error::Log(reel_log::Error::NotALog { .. })) => continue,
            Err(e) => panic!("crash before {}: {e}", sim.captured_op().unwrap()),
        };
        let restored = kv.entries(&Path::root()).unwrap();
        kv.view().rebuild(|_, _| {}).unwrap();
        assert_eq!(
            kv.entries(&Path::root()).unwrap(),
            restored,
            "crash before {}",
            sim.captured_op().unwrap()
        );
    }
}

fn list_batch() -> Vec<NewItem> {
    (0..20u64)
        .map(|n| NewItem {
            value: json!(n),
            nonce: Some(100 + n as u128),
            ts: None,
        })
        .collect()
}

fn lists_on(sim: &SimStorage) -> ListStore {
    let spool = Spool::builder(DIR)
        .kind(reel::StoreKind::Lists)
        .storage(Arc::new(sim.clone()))
        .capacity(4 << 20)
        .durability(Durability::Always)
        .open()
        .unwrap();
    ListStore::on_spool(&spool).unwrap()
}

#[test]
fn a_list_batch_retried_after_a_power_cut_is_stored_exactly_once() {
    let probe = SimStorage::new();
    let l = lists_on(&probe);
    l.append(
        "k",
        &[NewItem {
            value: json!("first"),
            nonce: Some(1),
            ts: None,
        }],
    )
    .unwrap();
    let before = probe.op_count();
    l.append("k", &list_batch()).unwrap();
    let ops = probe.op_count() - before;
    for k in 1..=ops + 1 {
        let sim = SimStorage::new();
        let l = lists_on(&sim);
        l.append(
            "k",
            &[NewItem {
                value: json!("first"),
                nonce: Some(1),
                ts: None,
            }],
        )
        .unwrap();
        sim.capture_at_op(k, k);
        l.append("k", &list_batch()).unwrap();
        let Some(image) = sim.captured() else {
            continue;
        };
        // After the crash, the producer retries the whole batch.
        let l = lists_on(&image);
        l.append("k", &list_batch()).unwrap();
        let page = l
            .read(
                "k",
                &PageRequest {
                    limit: Some(1000),
                    ..Default::default()
                },
            )
            .unwrap();
        let nonces: Vec<u128> = page.items.iter().map(|i| i.nonce.unwrap()).collect();
        let mut expect = vec![1u128];
        expect.extend(100..120);
        assert_eq!(
            nonces, expect,
            "crash point {k}: every item exactly once, in order"
        );
        let offsets: Vec<u64> = page.items.iter().map(|i| i.offset).collect();
        assert_eq!(
            offsets,
            (0..21).collect::<Vec<_>>(),
            "crash point {k}: dense offsets"
        );
    }
}
