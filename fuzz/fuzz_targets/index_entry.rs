//! `reel_log::index::decode_entry` on arbitrary bytes.
//!
//! Input: one mode byte, then the entry bytes; mode bit 0 recomputes the checksum. An
//! entry that decodes must come back unchanged through `encode_entry`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel_log::index::{self, ENTRY_LEN};

const LEN: usize = ENTRY_LEN as usize;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let mut buf = rest.to_vec();
    if mode & 1 != 0 && buf.len() >= LEN {
        let crc = crc32c::crc32c(&buf[..28]);
        buf[28..32].copy_from_slice(&crc.to_le_bytes());
    }
    if let Some(e) = index::decode_entry(&buf) {
        assert!(buf.len() >= LEN);
        let mut again = Vec::new();
        index::encode_entry(&mut again, &e);
        assert_eq!(again.len(), LEN);
        assert_eq!(index::decode_entry(&again), Some(e));
        // Everything but the reserved bytes 24..28 is what was decoded.
        assert_eq!(again[..24], buf[..24]);
    }
    // The floor searches never panic on what decodes, sorted or not.
    let entries: Vec<_> = buf
        .chunks_exact(LEN)
        .filter_map(index::decode_entry)
        .collect();
    for e in &entries {
        let _ = index::floor_by_seq(&entries, e.seq);
        let _ = index::floor_by_time(&entries, e.ts_max_before);
    }
});
