//! Frame encoding and decoding: round trips, damage, and property tests.

use super::*;
use proptest::prelude::*;

#[test]
fn record_round_trips() {
    let e = Entry {
        ts: None,
        key: Some("k"),
        nonce: Some(7),
        encoding: 3,
        value: b"hello",
    };
    let mut buf = Vec::new();
    encode_record(&mut buf, 42, -5, &e);
    assert_eq!(buf.len(), e.frame_len());
    let (f, n) = decode(&buf, 1 << 20).unwrap();
    assert_eq!(n, buf.len());
    let Frame::Record(r) = f else {
        panic!("not a record")
    };
    assert_eq!(
        (r.seq, r.ts, r.key, r.nonce, r.encoding, r.value),
        (42, -5, Some("k"), Some(7), 3, &b"hello"[..])
    );
}

#[test]
fn seal_round_trips() {
    let s = Seal {
        next_seq: 9,
        ts_max: 100,
        records: 4,
        gap: false,
    };
    let mut buf = Vec::new();
    encode_seal(&mut buf, &s);
    assert_eq!(decode(&buf, 1 << 20).unwrap(), (Frame::Seal(s), SEAL_LEN));
}

#[test]
fn zeroes_and_truncation_are_not_frames() {
    assert!(matches!(
        decode(&[0u8; 64], 1 << 20),
        Err(DecodeError::Corrupt(_))
    ));
    let mut buf = Vec::new();
    encode_record(
        &mut buf,
        1,
        1,
        &Entry {
            value: &[1; 100],
            ..Default::default()
        },
    );
    for cut in 0..buf.len() {
        assert!(matches!(
            decode(&buf[..cut], 1 << 20),
            Err(DecodeError::Incomplete { .. })
        ));
    }
}

#[test]
fn oversized_length_is_corruption_not_allocation() {
    let mut buf = vec![0u8; 32];
    buf[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(decode(&buf, 1024), Err(DecodeError::Corrupt(_))));
}

/// `bytes` with a correct checksum: the frame checks behind the CRC are reachable
/// only through frames whose checksum matches.
fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&bytes[4..]);
    bytes[0..4].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn corrupt_reason(bytes: &[u8]) -> String {
    match decode(bytes, 1 << 20) {
        Err(DecodeError::Corrupt(why)) => why,
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn the_record_of_format_md_encodes_byte_for_byte() {
    // FORMAT.md §2.2: seq 5, ts 1 700 000 000 000 000, key `k`, encoding 1,
    // value 81 a1 6e 01 (MessagePack {"n":1}), 33 bytes.
    let e = Entry {
        ts: None,
        key: Some("k"),
        nonce: None,
        encoding: 1,
        value: &[0x81, 0xa1, 0x6e, 0x01],
    };
    let mut buf = Vec::new();
    encode_record(&mut buf, 5, 1_700_000_000_000_000, &e);
    let expected: [u8; 33] = [
        0x81, 0x60, 0xfc, 0xa2, 0x21, 0x00, 0x00, 0x00, 0x01, 0x11, 0x01, 0x00, 0x05, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x1e, 0x18, 0x24, 0x0a, 0x06, 0x00, 0x6b, 0x81,
        0xa1, 0x6e, 0x01,
    ];
    assert_eq!(buf, expected);
    assert_eq!((e.frame_len(), e.payload_len()), (33, 5));
    // Appended after other bytes, the frame and its checksum are the same.
    let mut out = vec![0xee; 7];
    encode_record(&mut out, 5, 1_700_000_000_000_000, &e);
    assert_eq!(&out[7..], &expected[..]);
    assert_eq!(peek_len(&out[7..]), Some(33));
}

#[test]
fn the_seal_layout_is_36_bytes_with_the_count_last() {
    assert_eq!(SEAL_LEN, 36);
    let s = Seal {
        next_seq: 0x0102,
        ts_max: -2,
        records: 0x0304,
        gap: false,
    };
    let mut out = vec![0xee; 3];
    encode_seal(&mut out, &s);
    let f = &out[3..];
    assert_eq!(f.len(), 36);
    assert_eq!(&f[4..12], &[36, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(&f[12..20], &0x0102u64.to_le_bytes());
    assert_eq!(&f[20..28], &(-2i64).to_le_bytes());
    assert_eq!(&f[28..36], &0x0304u64.to_le_bytes());
    assert_eq!(&f[0..4], &crc32c::crc32c(&f[4..]).to_le_bytes());
    assert_eq!(decode(f, 1 << 20).unwrap(), (Frame::Seal(s), 36));
}

#[test]
fn lengths_count_header_nonce_key_and_value() {
    let e = Entry {
        ts: Some(1),
        key: Some("abc"),
        nonce: Some(9),
        encoding: 0,
        value: &[1; 10],
    };
    assert_eq!(e.frame_len(), 28 + 16 + 3 + 10);
    assert_eq!(e.payload_len(), 13);
    let bare = Entry {
        value: &[1; 10],
        ..Default::default()
    };
    assert_eq!((bare.frame_len(), bare.payload_len()), (38, 10));
    assert_eq!(peek_len(&[0, 0, 0, 0, 0x10, 0x20, 0, 0]), Some(0x2010));
    assert_eq!(peek_len(&[0; 7]), None);
}

#[test]
fn every_field_round_trips_through_as_entry() {
    let e = Entry {
        ts: Some(-7),
        key: Some("key"),
        nonce: Some(u128::MAX - 3),
        encoding: 15,
        value: b"value",
    };
    let mut buf = Vec::new();
    encode_record(&mut buf, u64::MAX - 1, -7, &e);
    let (Frame::Record(r), n) = decode(&buf, 1 << 20).unwrap() else {
        panic!("not a record")
    };
    assert_eq!((r.seq, n), (u64::MAX - 1, buf.len()));
    assert_eq!(r.as_entry(), e);
    let mut again = Vec::new();
    encode_record(&mut again, r.seq, r.ts, &r.as_entry());
    assert_eq!(again, buf);
    assert_eq!(
        decode_verified(&buf).unwrap(),
        decode(&buf, 1 << 20).unwrap()
    );
    // Only the nonce, only the key, and an empty key present.
    for e in [
        Entry {
            nonce: Some(1),
            value: b"v",
            ..Default::default()
        },
        Entry {
            key: Some("kk"),
            value: b"v",
            ..Default::default()
        },
        Entry {
            key: Some(""),
            ..Default::default()
        },
    ] {
        let mut buf = Vec::new();
        encode_record(&mut buf, 3, 4, &e);
        let (Frame::Record(r), _) = decode(&buf, 1 << 20).unwrap() else {
            panic!("not a record")
        };
        assert_eq!((r.key, r.nonce, r.value), (e.key, e.nonce, e.value));
    }
}

#[test]
fn patch_seq_rewrites_the_seq_and_the_checksum() {
    let mut buf = Vec::new();
    encode_record(
        &mut buf,
        0,
        5,
        &Entry {
            key: Some("k"),
            value: b"v",
            ..Default::default()
        },
    );
    patch_seq(&mut buf, 77);
    let (Frame::Record(r), _) = decode(&buf, 1 << 20).unwrap() else {
        panic!("not a record")
    };
    assert_eq!((r.seq, r.ts, r.key), (77, 5, Some("k")));
}

#[test]
fn the_length_limits_are_inclusive() {
    // The shortest frame (no key, nonce or value) is the header alone.
    let mut buf = Vec::new();
    encode_record(&mut buf, 1, 2, &Entry::default());
    assert_eq!(buf.len(), HEADER_LEN);
    assert_eq!(decode(&buf, HEADER_LEN).unwrap().1, HEADER_LEN);
    // A frame of exactly the maximum length decodes; one byte over is corruption.
    let mut buf = Vec::new();
    encode_record(
        &mut buf,
        1,
        2,
        &Entry {
            value: &[5; 100],
            ..Default::default()
        },
    );
    assert!(decode(&buf, buf.len()).is_ok());
    assert_eq!(
        decode(&buf, buf.len() - 1),
        Err(DecodeError::Corrupt(
            "frame length 128 outside 28..=127".into()
        ))
    );
    // A claimed length below the header is corruption, not an incomplete frame.
    let mut short = buf.clone();
    short[4..8].copy_from_slice(&27u32.to_le_bytes());
    assert_eq!(
        corrupt_reason(&with_crc(short)),
        "frame length 27 outside 28..=1048576"
    );
    // A frame cut short is incomplete and says how long it is.
    assert_eq!(
        decode(&buf[..60], 1 << 20),
        Err(DecodeError::Incomplete { needed: 128 })
    );
    assert_eq!(
        decode(&buf[..7], 1 << 20),
        Err(DecodeError::Incomplete { needed: HEADER_LEN })
    );
}

#[test]
fn malformed_records_with_valid_checksums_are_corruption() {
    let base = |e: &Entry<'_>| {
        let mut b = Vec::new();
        encode_record(&mut b, 1, 2, e);
        b
    };
    let plain = base(&Entry {
        value: b"0123456789",
        ..Default::default()
    });
    // Reserved flag bits 2 and 3.
    for bit in [0x04u8, 0x08] {
        let mut b = plain.clone();
        b[9] |= bit;
        assert!(
            corrupt_reason(&with_crc(b)).starts_with("reserved flag bits set"),
            "bit {bit:#x}"
        );
    }
    // The encoding tag bits are not reserved.
    let mut b = plain.clone();
    b[9] |= 0xf0;
    assert!(decode(&with_crc(b), 1 << 20).is_ok());
    // A nonce flag in a frame too short to hold a nonce.
    let mut b = plain.clone();
    b[9] |= FLAG_NONCE;
    assert_eq!(corrupt_reason(&with_crc(b)), "nonce extends past frame end");
    // A key length beyond the frame.
    let mut b = plain.clone();
    b[9] |= FLAG_KEY;
    b[10] = 11;
    assert_eq!(corrupt_reason(&with_crc(b)), "key extends past frame end");
    // A key that fits exactly is fine; with a nonce before it, it no longer fits.
    let mut b = plain.clone();
    b[9] |= FLAG_KEY;
    b[10] = 10;
    assert!(decode(&with_crc(b.clone()), 1 << 20).is_ok());
    let mut n = base(&Entry {
        nonce: Some(1),
        value: b"0123456789",
        ..Default::default()
    });
    n[9] |= FLAG_KEY;
    n[10] = 11;
    assert_eq!(corrupt_reason(&with_crc(n)), "key extends past frame end");
    // A key length without the key flag.
    let mut b = plain.clone();
    b[10] = 1;
    assert_eq!(corrupt_reason(&with_crc(b)), "key length without key flag");
    // A key that is not UTF-8.
    let mut b = base(&Entry {
        key: Some("ab"),
        ..Default::default()
    });
    b[28] = 0xff;
    assert_eq!(corrupt_reason(&with_crc(b)), "key is not UTF-8");
    // Unknown kinds.
    for kind in [0u8, 3, 255] {
        let mut b = plain.clone();
        b[8] = kind;
        assert_eq!(
            corrupt_reason(&with_crc(b)),
            format!("unknown frame kind {kind}")
        );
    }
}

#[test]
fn malformed_seals_with_valid_checksums_are_corruption() {
    let mut seal = Vec::new();
    encode_seal(
        &mut seal,
        &Seal {
            next_seq: 10,
            ts_max: 1,
            records: 10,
            gap: false,
        },
    );
    // Flags other than the gap flag, key length, or a length other than 36: each
    // alone is corruption.
    let mut flags = seal.clone();
    flags[9] = 2;
    let mut key_len = seal.clone();
    key_len[10] = 1;
    let mut longer = seal.clone();
    longer.extend_from_slice(&[0; 8]);
    longer[4] = 44;
    let mut shorter = seal[..32].to_vec();
    shorter[4] = 32;
    for (what, b) in [
        ("flags", flags),
        ("key length", key_len),
        ("44 bytes", longer),
        ("32 bytes", shorter),
    ] {
        assert_eq!(
            corrupt_reason(&with_crc(b)),
            "malformed seal frame",
            "{what}"
        );
    }
}

#[test]
fn a_gap_seal_reads_back_as_one() {
    let gap = Seal {
        next_seq: 45,
        ts_max: 7,
        records: 20,
        gap: true,
    };
    let mut buf = Vec::new();
    encode_seal(&mut buf, &gap);
    assert_eq!(buf[9], SEAL_FLAG_GAP);
    assert!(matches!(decode(&buf, 1 << 20), Ok((Frame::Seal(s), SEAL_LEN)) if s == gap));
}

proptest! {
    #[test]
    fn any_single_bit_flip_is_detected(value in proptest::collection::vec(any::<u8>(), 0..300), bit in 0usize..8*400) {
        let mut buf = Vec::new();
        encode_record(&mut buf, 5, 6, &Entry { key: Some("key"), value: &value, ..Default::default() });
        let bit = bit % (buf.len() * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(decode(&buf, 1 << 20).is_err());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes, 1 << 16);
    }
}

#[test]
fn batches_end_at_the_limit_and_before_a_jump_in_the_seqs() {
    let e = Entry {
        value: b"value",
        ..Default::default()
    };
    let mut frames = Vec::new();
    for seq in [0, 1, 2, 5, 6] {
        encode_record(&mut frames, seq, 1, &e);
    }
    let one = peek_len(&frames).unwrap();
    let seqs = |b: &[u8]| {
        let mut at = 0;
        let mut out = Vec::new();
        while at < b.len() {
            let (f, len) = decode(&b[at..], b.len()).unwrap();
            if let Frame::Record(r) = f {
                out.push(r.seq);
            }
            at += len;
        }
        out
    };
    let got: Vec<Vec<u64>> = batches(&frames, 2 * one).map(seqs).collect();
    assert_eq!(got, vec![vec![0, 1], vec![2], vec![5, 6]]);
    // A torn last frame is a batch of its own (append_frames refuses it).
    let torn = &frames[..frames.len() - 1];
    assert_eq!(batches(torn, usize::MAX).count(), 3);
}
