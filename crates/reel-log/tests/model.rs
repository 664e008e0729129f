//! Property test: the log against a vector of records, through appends, reads, process
//! crashes and power cuts (with durability `always`, a power cut loses nothing).
mod common;
use common::*;
use proptest::prelude::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Durability, Entry, Log, LogOptions, WhenFull};
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    Append { n: u8, len: u16, keyed: bool },
    Read { from: u16, max: u8 },
    Reopen,
    PowerCut { seed: u64 },
    Verify,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..20, 0u16..2000, any::<bool>()).prop_map(|(n, len, keyed)| Op::Append { n, len, keyed }),
        3 => (any::<u16>(), 1u8..50).prop_map(|(from, max)| Op::Read { from, max }),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(|seed| Op::PowerCut { seed }),
        1 => Just(Op::Verify),
    ]
}

fn open(sim: &SimStorage) -> Log {
    let cfg = Config {
        capacity: 96 << 10,
        when_full: WhenFull::DropOldest,
        segment_size: 16 << 10,
        max_record_size: 4 << 10,
    };
    LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(cfg)
        .durability(Durability::Always)
        .open(DIR)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut sim = SimStorage::new();
        let mut log = open(&sim);
        // model[i] = (key, value) of seq i
        let mut model: Vec<(Option<String>, Vec<u8>)> = Vec::new();
        for op in ops {
            match op {
                Op::Append { n, len, keyed } => {
                    let start = model.len() as u64;
                    let items: Vec<(Option<String>, Vec<u8>)> = (start..start + n as u64)
                        .map(|s| (keyed.then(|| format!("k{}", s % 7)), value_for(s, len as usize)))
                        .collect();
                    let entries: Vec<Entry<'_>> = items.iter().map(|(k, v)| Entry { key: k.as_deref(), value: v, ..Default::default() }).collect();
                    let r = log.append(&entries).unwrap();
                    prop_assert_eq!(r, start..start + n as u64);
                    model.extend(items);
                }
                Op::Read { from, max } => {
                    let from = u64::from(from) % (model.len() as u64 + 2);
                    let mut r = log.reader(from);
                    let oldest = log.oldest_seq();
                    let start = from.max(oldest);
                    let expect_n = (model.len() as u64).saturating_sub(start).min(max as u64) as usize;
                    // A batch may end early at a segment boundary; it is empty only at the end.
                    let mut got = Vec::new();
                    let mut lost = None;
                    while got.len() < max as usize {
                        let b = r.read_batch(max as usize - got.len()).unwrap();
                        if b.is_empty() {
                            break;
                        }
                        lost = lost.or(b.lost());
                        got.extend(b.iter().map(|rec| (rec.seq, rec.key.map(str::to_string), rec.value.to_vec())));
                    }
                    prop_assert_eq!(got.len(), expect_n);
                    if from < oldest && expect_n > 0 {
                        prop_assert_eq!(lost, Some(from..oldest));
                    }
                    for (i, rec) in got.iter().enumerate() {
                        let seq = start + i as u64;
                        prop_assert_eq!(rec.0, seq);
                        let (k, v) = &model[seq as usize];
                        prop_assert_eq!(&rec.1, k);
                        prop_assert_eq!(&rec.2, v);
                    }
                }
                Op::Reopen => {
                    drop(log);
                    log = open(&sim);
                }
                Op::PowerCut { seed } => {
                    drop(log);
                    sim = sim.power_loss(seed);
                    log = open(&sim);
                    prop_assert_eq!(log.next_seq(), model.len() as u64, "acknowledged appends lost");
                }
                Op::Verify => {
                    let rep = log.verify().unwrap();
                    prop_assert!(rep.is_ok(), "{:?}", rep);
                }
            }
            prop_assert_eq!(log.next_seq(), model.len() as u64);
            let on_disk: u64 = log.segments().unwrap().iter().map(|s| s.bytes).sum();
            prop_assert!(on_disk <= (96 << 10) + (16 << 10) + (4 << 10));
        }
    }
}
