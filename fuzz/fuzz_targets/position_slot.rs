//! `reel::cursor::slots::decode_slot` on arbitrary bytes, for both slot kinds.
//!
//! Input: one mode byte, then the slot bytes. Mode bit 0 recomputes the checksum, bit 1
//! writes the magic and version, so the fuzzer reaches the fields behind them. A slot
//! never decodes as both kinds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel::cursor::slots::{SlotKind, decode_slot};

const SLOT: usize = 64;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let mut buf = rest.to_vec();
    if buf.len() >= SLOT {
        if mode & 2 != 0 {
            buf[0..8].copy_from_slice(b"REELPOS\0");
            buf[8..12].copy_from_slice(&1u32.to_le_bytes());
        }
        if mode & 1 != 0 {
            let crc = crc32c::crc32c(&buf[..60]);
            buf[60..64].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let cursor = decode_slot(&buf, SlotKind::Cursor);
    let tee = decode_slot(&buf, SlotKind::TeeMarker);
    assert!(
        cursor.is_none() || tee.is_none(),
        "a slot decoded as both kinds"
    );
    if let Some((generation, v)) = cursor.or(tee) {
        assert!(buf.len() >= SLOT);
        assert_eq!(buf[16..24], generation.to_le_bytes());
        assert_eq!(buf[24..32], v.a.to_le_bytes());
        assert_eq!(buf[32..40], v.b.to_le_bytes());
        assert_eq!(buf[40..48], v.updated.to_le_bytes());
    }
});
