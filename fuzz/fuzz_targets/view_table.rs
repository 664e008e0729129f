//! View tables (`reel::view::table`): opening, looking up and scanning a table file.
//!
//! Input: one mode byte, then bytes. Mode bit 0 clear: the bytes are the table file
//! itself (damaged or made up): opening may fail, but nothing may panic, and a scan or a
//! lookup either fails or returns rows in strictly increasing key order. Mode bit 0 set:
//! the bytes are cut into rows (a length byte, a key, a length byte, a value), written as
//! a table (sorted, duplicates dropped), then one byte of the file chosen by the input is
//! flipped: every row read back must be one that was written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel::view::table::{Table, TableWriter};
use reel_log::storage::sim::SimStorage;
use reel_log::storage::{OpenMode, Storage};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn check(t: &Arc<Table>, written: Option<&BTreeMap<Vec<u8>, Vec<u8>>>) {
    let mut last: Option<Vec<u8>> = None;
    for row in t.iter_from(&[]) {
        let Ok((k, v)) = row else { break };
        if let Some(l) = &last {
            assert!(*l < k, "keys out of order");
        }
        if let Some(w) = written {
            assert_eq!(w.get(&k), Some(&v), "a row that was never written");
        }
        if let Ok(Some(again)) = t.get(&k) {
            assert_eq!(again, v, "lookup and scan disagree");
        }
        last = Some(k);
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new("/v")).unwrap();
    let path = Path::new("/v/t.tbl");
    if mode & 1 == 0 {
        let f = sim.open(path, OpenMode::CreateTruncate).unwrap();
        f.write_all_at(rest, 0).unwrap();
        if let Ok(t) = Table::open(&sim, path) {
            check(&Arc::new(t), None);
        }
        return;
    }
    let mut rows = BTreeMap::new();
    let mut at = 0usize;
    let flip_at = rest.first().copied().unwrap_or(0) as u64 * 7;
    while at + 2 <= rest.len() {
        let kl = rest[at] as usize % 24;
        let k = rest.get(at + 1..at + 1 + kl).unwrap_or_default().to_vec();
        at += 1 + kl;
        let vl = rest.get(at).copied().unwrap_or(0) as usize;
        let v = rest.get(at + 1..at + 1 + vl).unwrap_or_default().to_vec();
        at += 1 + vl;
        rows.insert(k, v);
    }
    let mut w = TableWriter::create(&sim, path, rows.len() as u64).unwrap();
    for (k, v) in &rows {
        w.add(k, v).unwrap();
    }
    w.finish().unwrap();
    let t = Arc::new(Table::open(&sim, path).unwrap());
    check(&t, Some(&rows));
    let f = sim.open(path, OpenMode::ReadWrite).unwrap();
    let len = f.len().unwrap();
    let at = flip_at % len.max(1);
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ (mode | 1)], at).unwrap();
    if let Ok(t) = Table::open(&sim, path) {
        check(&Arc::new(t), Some(&rows));
    }
});
