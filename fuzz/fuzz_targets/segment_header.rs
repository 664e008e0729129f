//! `reel_log::segment::decode_header` on arbitrary bytes.
//!
//! Input: one mode byte, then the header bytes. Mode bit 0 recomputes the checksum,
//! bit 1 writes the magic and format version, so the fuzzer reaches the fields behind
//! them. A header that decodes must come back unchanged through `encode_header`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel_log::segment::{self, FORMAT_VERSION, SEGMENT_HEADER_LEN};
use std::path::Path;

const LEN: usize = SEGMENT_HEADER_LEN as usize;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let mut buf = rest.to_vec();
    if buf.len() >= LEN {
        if mode & 2 != 0 {
            buf[0..8].copy_from_slice(b"REELSEG\0");
            buf[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        }
        if mode & 1 != 0 {
            let crc = crc32c::crc32c(&buf[..28]);
            buf[28..32].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let path = Path::new("/spool/segments/00000000000000000000.seg");
    match segment::decode_header(&buf, path) {
        Ok(h) => {
            assert!(buf.len() >= LEN);
            let again = segment::encode_header(h.first_seq, h.flags);
            assert_eq!(segment::decode_header(&again, path).ok(), Some(h));
            // Everything but the reserved bytes 24..28 is what was decoded.
            assert_eq!(again[..24], buf[..24]);
        }
        Err(e) => {
            // Errors name the file and are either corruption or a version mismatch.
            let text = e.to_string();
            assert!(text.contains("00000000000000000000.seg"), "{text}");
        }
    }
});
