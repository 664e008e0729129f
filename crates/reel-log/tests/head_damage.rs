//! `reel.head` is a cache of the segments: whatever happens to its bytes, opening the log
//! gives the state the segments hold, never a wrong position or a hidden record.
mod common;
use common::*;
use reel_log::{HEAD_FILE, Log};
use std::os::unix::fs::FileExt;

const RECORDS: u64 = 300;

fn flip(path: &std::path::Path, at: u64, mask: u8) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ mask], at).unwrap();
}

#[test]
fn any_flipped_byte_in_the_head_is_detected_or_harmless() {
    let (tmp, log) = tmp_log(small_config());
    append_n(&log, RECORDS, 100);
    let expect = read_all(&log, log.oldest_seq());
    let oldest = log.oldest_seq();
    drop(log);
    let head = tmp.path().join(HEAD_FILE);
    let original = std::fs::read(&head).unwrap();
    // Every byte of the used part of the head (0..136), each with two different flips;
    // the file keeps its identity, so only its contents can make it untrusted.
    for at in 0..136u64 {
        for mask in [0x01u8, 0x80] {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&head)
                .unwrap()
                .write_all_at(&original, 0)
                .unwrap();
            flip(&head, at, mask);
            let what = format!("byte {at} ^ {mask:#x}");
            let ro = reel_log::LogOptions::new()
                .read_only(true)
                .open(tmp.path())
                .unwrap();
            assert_eq!(ro.next_seq(), RECORDS, "read-only, {what}");
            assert_eq!(read_all(&ro, 0), expect, "read-only, {what}");
            drop(ro);
            let log = Log::open(tmp.path()).unwrap();
            assert_eq!(log.next_seq(), RECORDS, "{what}");
            assert_eq!(log.oldest_seq(), oldest, "{what}");
            assert_eq!(read_all(&log, 0), expect, "{what}");
        }
    }
}

#[test]
fn appends_after_a_damaged_head_continue_the_log() {
    // next_seq, tail offset and used bytes: the words a writer builds on.
    for at in [24u64, 40, 72] {
        let (tmp, log) = tmp_log(small_config());
        append_n(&log, RECORDS, 100);
        drop(log);
        flip(&tmp.path().join(HEAD_FILE), at, 0x10);
        let log = Log::open(tmp.path()).unwrap();
        assert_eq!(append_n(&log, 1, 10), RECORDS..RECORDS + 1, "byte {at}");
        assert_eq!(read_all(&log, RECORDS).len(), 1, "byte {at}");
        assert!(log.verify().unwrap().is_ok(), "byte {at}");
    }
}

#[test]
fn a_head_from_another_boot_file_or_version_is_not_trusted() {
    // Offsets of version (8), boot id (104) and file id (112): each alone makes the
    // head untrusted, so opening runs recovery from the segments.
    for at in [8u64, 104, 112] {
        let (tmp, log) = tmp_log(small_config());
        append_n(&log, 10, 100);
        drop(log);
        flip(&tmp.path().join(HEAD_FILE), at, 0x04);
        let log = Log::open(tmp.path()).unwrap();
        assert!(
            log.recovery_report().is_some(),
            "byte {at}: a stale head was trusted"
        );
        assert_eq!(log.next_seq(), 10);
    }
    // An intact head of this boot and file is trusted: no recovery on open.
    let (tmp, log) = tmp_log(small_config());
    append_n(&log, 10, 100);
    drop(log);
    let log = Log::open(tmp.path()).unwrap();
    assert!(log.recovery_report().is_none());
}
