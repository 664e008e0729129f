//! `reel_log::frame::decode` on arbitrary bytes with an arbitrary maximum length.
//!
//! Input: one mode byte, two bytes of maximum frame length, then the frame bytes. When
//! bit 0 of the mode is set the checksum is recomputed first, so the fuzzer explores
//! what lies behind it (a CRC32C is out of reach of blind mutation). When a frame
//! decodes, encoding it again must give exactly the bytes it was decoded from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel_log::frame::{self, DecodeError, Frame, HEADER_LEN, SEAL_LEN};

fuzz_target!(|data: &[u8]| {
    let [mode, m0, m1, rest @ ..] = data else {
        return;
    };
    let max_len = match u16::from_le_bytes([*m0, *m1]) {
        u16::MAX => usize::MAX,
        n => usize::from(n),
    };
    let mut buf = rest.to_vec();
    if mode & 1 != 0 {
        fix_crc(&mut buf);
    }

    match frame::decode(&buf, max_len) {
        Ok((f, len)) => {
            assert!((HEADER_LEN..=buf.len()).contains(&len) && len <= max_len);
            assert_eq!(frame::peek_len(&buf), Some(len));
            let mut again = Vec::new();
            match f {
                Frame::Record(r) => {
                    assert!(r.encoding < 16);
                    let entry = r.as_entry();
                    assert_eq!(entry.frame_len(), len);
                    frame::encode_record(&mut again, r.seq, r.ts, &entry);
                }
                Frame::Seal(s) => {
                    assert_eq!(len, SEAL_LEN);
                    frame::encode_seal(&mut again, &s);
                }
            }
            assert_eq!(again, &buf[..len], "re-encoding {f:?} changed its bytes");
            // The frame alone decodes the same, and trailing bytes never matter.
            assert_eq!(frame::decode(&buf[..len], max_len), Ok((f, len)));
        }
        Err(DecodeError::Incomplete { needed }) => {
            assert!(
                needed > buf.len(),
                "incomplete, yet {needed} <= {} bytes",
                buf.len()
            );
        }
        Err(DecodeError::Corrupt(_)) => {}
    }
});

/// Writes the CRC32C of bytes 4..len into bytes 0..4, when the claimed length fits.
fn fix_crc(buf: &mut [u8]) {
    let Some(len) = frame::peek_len(buf) else {
        return;
    };
    if (8..=buf.len()).contains(&len) {
        let crc = crc32c::crc32c(&buf[4..len]);
        buf[..4].copy_from_slice(&crc.to_le_bytes());
    }
}
