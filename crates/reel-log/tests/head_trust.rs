//! When `reel.head` is trusted (FORMAT.md §5, trust rule): magic, version, boot id and
//! file id must all match, *and* the checksum must match the state words. A head whose
//! checksum is consistent but that was stamped in another boot, for another file (a
//! copied or restored directory) or by another layout version is a cache of other
//! segments: it is rebuilt from the segments, never trusted. Real files here, because the
//! file identity (device and inode) is what a copy changes.
mod common;
use common::*;
use reel_log::{HEAD_FILE, Log, LogOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

const RECORDS: u64 = 40;

fn word(head: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(head[at..at + 8].try_into().unwrap())
}

/// The head's checksum as FORMAT.md §5 defines it: CRC32C of twelve little-endian u64s.
fn check_of(head: &[u8]) -> u64 {
    let version = u64::from(u32::from_le_bytes(head[8..12].try_into().unwrap()));
    let mut bytes = Vec::new();
    for w in [
        version,
        word(head, 104), // boot id
        word(head, 112), // file id
        word(head, 24),  // next_seq
        word(head, 32),  // tail_first_seq
        word(head, 40),  // tail_offset
        word(head, 48),  // tail_ts_max
        word(head, 56),  // tail_index_entries
        word(head, 64),  // tail_last_index_offset
        word(head, 120), // tail_records
        word(head, 72),  // used_bytes
        word(head, 80),  // oldest_seq
    ] {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    u64::from(crc32c::crc32c(&bytes))
}

fn write_head(path: &Path, head: &[u8]) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(head, 0)
        .unwrap();
}

/// A log of `RECORDS` records, closed; returns its directory.
fn closed_log() -> tempfile::TempDir {
    let (tmp, log) = tmp_log(small_config());
    append_n(&log, RECORDS, 100);
    drop(log);
    tmp
}

#[test]
fn the_checksum_is_the_documented_crc_of_the_state_words() {
    let tmp = closed_log();
    let head = std::fs::read(tmp.path().join(HEAD_FILE)).unwrap();
    assert_eq!(&head[0..8], b"REELHEAD");
    assert_eq!(word(&head, 24), RECORDS);
    assert_eq!(word(&head, 128), check_of(&head));
    // Trusted as it is: no recovery on open.
    let log = Log::open(tmp.path()).unwrap();
    assert_eq!(log.recovery_report(), None);
}

#[test]
fn a_head_of_another_boot_file_or_version_is_rebuilt_even_with_a_valid_checksum() {
    // (offset, width) of version, boot id and file id: each changed alone, with the
    // checksum recomputed so that only the identity is wrong, and a next_seq that lies.
    for (at, width) in [(8usize, 4usize), (104, 8), (112, 8)] {
        let tmp = closed_log();
        let path = tmp.path().join(HEAD_FILE);
        let mut head = std::fs::read(&path).unwrap();
        head[at] ^= 0x02;
        let lie = RECORDS + 7;
        head[24..32].copy_from_slice(&lie.to_le_bytes());
        let check = check_of(&head);
        head[128..136].copy_from_slice(&check.to_le_bytes());
        write_head(&path, &head);
        let what = format!("word at {at} ({width} bytes)");

        let ro = LogOptions::new().read_only(true).open(tmp.path()).unwrap();
        assert_eq!(ro.next_seq(), RECORDS, "read-only, {what}");
        assert!(ro.recovery_report().is_some(), "read-only, {what}");
        assert_eq!(read_all(&ro, 0).len() as u64, RECORDS, "read-only, {what}");
        drop(ro);

        let log = Log::open(tmp.path()).unwrap();
        assert!(log.recovery_report().is_some(), "{what}: trusted");
        assert_eq!(log.next_seq(), RECORDS, "{what}");
        assert_eq!(append_n(&log, 1, 10), RECORDS..RECORDS + 1, "{what}");
        assert!(log.verify().unwrap().is_ok(), "{what}");
    }
}

#[test]
fn a_copied_directory_rebuilds_its_head_from_its_own_segments() {
    let tmp = closed_log();
    // A copy (new inodes) whose tail lost its last record, as a backup taken while the
    // head was newer than the segments' durable bytes would.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(tmp.path(), copy.path());
    let tail = Log::open(tmp.path())
        .unwrap()
        .segments()
        .unwrap()
        .last()
        .unwrap()
        .path
        .clone();
    let copied_tail = copy.path().join(tail.strip_prefix(tmp.path()).unwrap());
    let len = std::fs::metadata(&copied_tail).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copied_tail)
        .unwrap()
        .set_len(len - 128)
        .unwrap();

    let ro = LogOptions::new().read_only(true).open(copy.path()).unwrap();
    assert_eq!(ro.next_seq(), RECORDS - 1, "read-only");
    drop(ro);
    let log = Log::open(copy.path()).unwrap();
    assert!(log.recovery_report().is_some());
    assert_eq!(log.next_seq(), RECORDS - 1);
    assert_eq!(read_all(&log, 0).len() as u64, RECORDS - 1);
    assert_eq!(append_n(&log, 1, 100), RECORDS - 1..RECORDS);
    assert!(log.verify().unwrap().is_ok());
    // The original is untouched and still trusted.
    let orig = Log::open(tmp.path()).unwrap();
    assert_eq!(orig.recovery_report(), None);
    assert_eq!(orig.next_seq(), RECORDS);
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_read_only_handle_waits_without_writing_to_the_head() {
    let tmp = closed_log();
    let path = tmp.path().join(HEAD_FILE);
    let before = std::fs::read(&path).unwrap();
    let ro = LogOptions::new().read_only(true).open(tmp.path()).unwrap();
    // The head is mapped read-only: a read-only handle may not register as a waiter.
    let start = Instant::now();
    assert!(!ro.wait_for(RECORDS, Some(start + Duration::from_millis(30))));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // It still sees a writer's append (by polling).
    let log = Log::open(tmp.path()).unwrap();
    append_n(&log, 1, 10);
    assert!(ro.wait_for(RECORDS, Some(Instant::now() + Duration::from_secs(5))));
}

#[test]
fn retention_keeps_the_head_trusted() {
    // Dropping segments changes used_bytes and oldest_seq outside a publish: the head
    // must be resealed, or the next open would distrust it and rebuild.
    let (tmp, log) = tmp_log(small_config());
    for _ in 0..100 {
        append_n(&log, 5, 200);
    }
    assert!(log.oldest_seq() > 0, "retention dropped segments");
    let (oldest, used) = (log.oldest_seq(), log.used_bytes());
    drop(log);
    let log = Log::open(tmp.path()).unwrap();
    assert_eq!(log.recovery_report(), None, "the head was trusted");
    assert_eq!((log.oldest_seq(), log.used_bytes()), (oldest, used));
    let head = std::fs::read(tmp.path().join(HEAD_FILE)).unwrap();
    assert_eq!(word(&head, 128), check_of(&head));
}

#[test]
fn a_rebuilt_head_is_trusted_by_the_next_open() {
    // Recovery stamps the head it rebuilt with this boot and file; the checksum must
    // cover the stamp, or every later open would rebuild again.
    let tmp = closed_log();
    let path = tmp.path().join(HEAD_FILE);
    let mut head = std::fs::read(&path).unwrap();
    head[104] ^= 1; // another boot
    write_head(&path, &head);
    let log = Log::open(tmp.path()).unwrap();
    assert!(log.recovery_report().is_some(), "rebuilt");
    drop(log);
    let head = std::fs::read(&path).unwrap();
    assert_eq!(word(&head, 128), check_of(&head));
    let log = Log::open(tmp.path()).unwrap();
    assert_eq!(log.recovery_report(), None, "trusted after the rebuild");
    assert_eq!(log.next_seq(), RECORDS);
}

#[test]
fn compaction_keeps_the_head_trusted() {
    // Compaction changes used_bytes outside a publish: it must reseal the head.
    let mut cfg = small_config();
    cfg.when_full = reel_log::WhenFull::Compact;
    cfg.capacity = 1 << 20;
    let (tmp, log) = tmp_log(cfg);
    for i in 0..300u64 {
        let v = value_for(i, 200);
        log.append(&[reel_log::Entry {
            key: Some(["a", "b", "c"][i as usize % 3]),
            value: &v,
            ..Default::default()
        }])
        .unwrap();
    }
    let r = log.compact(Duration::from_secs(3600)).unwrap();
    assert!(r.dropped > 0, "{r:?}");
    let used = log.used_bytes();
    drop(log);
    let head = std::fs::read(tmp.path().join(HEAD_FILE)).unwrap();
    assert_eq!(word(&head, 128), check_of(&head));
    let log = Log::open(tmp.path()).unwrap();
    assert_eq!(log.recovery_report(), None, "the head was trusted");
    assert_eq!(log.used_bytes(), used);
}
