//! `reel_log::meta::Meta::decode` on arbitrary bytes.
//!
//! Input: one mode byte, then the file bytes. Mode bit 0 recomputes the checksum, bit 1
//! writes the magic and format version, so the fuzzer reaches the fields behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel_log::meta::Meta;
use reel_log::segment::FORMAT_VERSION;
use std::path::Path;

const META_LEN: usize = 96;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let mut buf = rest.to_vec();
    if buf.len() == META_LEN {
        if mode & 2 != 0 {
            buf[0..8].copy_from_slice(b"REELMETA");
            buf[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        }
        if mode & 1 != 0 {
            let crc = crc32c::crc32c(&buf[..92]);
            buf[92..96].copy_from_slice(&crc.to_le_bytes());
        }
    }
    if let Ok(m) = Meta::decode(&buf, Path::new("/spool/reel.meta")) {
        assert_eq!(buf.len(), META_LEN);
        // Whatever a damaged file claims, validating it must not panic.
        let _ = m.config.validate();
        let _ = m.config.when_full.to_string();
    }
});
