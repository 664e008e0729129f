//! Tests of the parent module.

use super::*;

#[test]
fn meta_round_trips_and_detects_damage() {
    let m = Meta {
        config: Config::with_capacity(1 << 20, WhenFull::Reject),
        log_id: 0xfeed,
        created: 12,
        tombstone_horizon: 3,
        kind: StoreKind::Spool,
    };
    let mut b = m.encode();
    assert_eq!(Meta::decode(&b, Path::new("m")).unwrap(), m);
    b[20] ^= 1;
    assert!(Meta::decode(&b, Path::new("m")).unwrap_err().is_corrupt());
}

fn with_kind_bytes(kind: u8, syntax: u8) -> Result<Meta> {
    let mut b = Meta {
        config: Config::with_capacity(1 << 20, WhenFull::Compact),
        log_id: 1,
        created: 2,
        tombstone_horizon: 0,
        kind: StoreKind::Untyped,
    }
    .encode();
    b[13] = kind;
    b[14] = syntax;
    let crc = crc32c::crc32c(&b[..92]);
    b[92..96].copy_from_slice(&crc.to_le_bytes());
    Meta::decode(&b, Path::new("m"))
}

#[test]
fn kind_bytes_round_trip_and_unknown_values_are_corruption() {
    for (kind, bytes) in [
        (StoreKind::Untyped, (0, 0)),
        (StoreKind::Spool, (1, 0)),
        (StoreKind::Kv(KvPathSyntax::Legacy), (2, 0)),
        (StoreKind::Kv(KvPathSyntax::DistKv), (2, 1)),
        (StoreKind::Lists, (3, 0)),
    ] {
        assert_eq!(kind.codes(), bytes);
        assert_eq!(with_kind_bytes(bytes.0, bytes.1).unwrap().kind, kind);
    }
    for (k, s, why) in [
        (4, 0, "unknown store kind 4"),
        (2, 2, "unknown kv path syntax 2"),
        (1, 1, "kv path syntax 1 (byte 14) set on a spool"),
    ] {
        let e = with_kind_bytes(k, s).unwrap_err();
        assert!(e.is_corrupt() && e.to_string().contains(why), "{e}");
    }
}

#[test]
fn a_kind_refuses_the_policy_that_would_destroy_its_data() {
    let kv = StoreKind::Kv(KvPathSyntax::DistKv);
    assert!(kv.check_policy(WhenFull::Compact).is_ok());
    assert!(kv.check_policy(WhenFull::DropOldest).is_err());
    assert!(kv.check_policy(WhenFull::Reject).is_err());
    assert!(StoreKind::Lists.check_policy(WhenFull::Compact).is_err());
    assert!(StoreKind::Lists.check_policy(WhenFull::DropOldest).is_ok());
    for k in [StoreKind::Spool, StoreKind::Untyped] {
        for p in [WhenFull::DropOldest, WhenFull::Reject, WhenFull::Compact] {
            assert!(k.check_policy(p).is_ok());
        }
    }
}

fn sample(when_full: WhenFull, kind: StoreKind) -> Meta {
    Meta {
        config: Config {
            capacity: 0x0102_0304_0506,
            when_full,
            segment_size: 0x0a0b_0c0d,
            max_record_size: 0x7fff_0001,
        },
        log_id: 0x1122_3344_5566_7788_99aa_bbcc_ddee_ff00,
        created: -5,
        tombstone_horizon: 0x0fed,
        kind,
    }
}

#[test]
fn the_layout_is_the_documented_one() {
    let m = sample(WhenFull::Compact, StoreKind::Kv(KvPathSyntax::DistKv));
    let b = m.encode();
    assert_eq!(&b[0..8], b"REELMETA");
    assert_eq!(&b[8..12], &1u32.to_le_bytes());
    assert_eq!((b[12], b[13], b[14], b[15]), (2, 2, 1, 0));
    assert_eq!(&b[16..24], &0x0102_0304_0506u64.to_le_bytes());
    assert_eq!(&b[24..32], &0x0a0b_0c0du64.to_le_bytes());
    assert_eq!(&b[32..40], &0x7fff_0001u64.to_le_bytes());
    assert_eq!(&b[40..56], &m.log_id.to_le_bytes());
    assert_eq!(&b[56..64], &(-5i64).to_le_bytes());
    assert_eq!(&b[64..72], &0x0fedu64.to_le_bytes());
    assert_eq!(&b[72..92], &[0; 20]);
    assert_eq!(&b[92..96], &crc32c::crc32c(&b[..92]).to_le_bytes());
}

#[test]
fn every_policy_and_kind_round_trips() {
    for (policy, code) in [
        (WhenFull::DropOldest, 0u8),
        (WhenFull::Reject, 1),
        (WhenFull::Compact, 2),
    ] {
        for kind in [
            StoreKind::Untyped,
            StoreKind::Spool,
            StoreKind::Kv(KvPathSyntax::Legacy),
            StoreKind::Kv(KvPathSyntax::DistKv),
            StoreKind::Lists,
        ] {
            let m = sample(policy, kind);
            let b = m.encode();
            assert_eq!(b[12], code);
            assert_eq!(Meta::decode(&b, Path::new("m")).unwrap(), m);
        }
    }
    assert_eq!(WhenFull::from_code(3), None);
}

/// `b` with its checksum recomputed, so that the checks after it are reached.
fn resealed(mut b: [u8; META_LEN]) -> [u8; META_LEN] {
    let crc = crc32c::crc32c(&b[..92]);
    b[92..96].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn decode_checks_length_magic_checksum_version_and_policy_in_order() {
    let p = Path::new("m");
    let good = sample(WhenFull::Reject, StoreKind::Spool).encode();
    let reason = |b: &[u8]| match Meta::decode(b, p) {
        Err(Error::Corrupt { reason, offset, .. }) => {
            assert_eq!(offset, 0);
            reason
        }
        other => panic!("expected corruption, got {other:?}"),
    };
    let mut longer = good.to_vec();
    longer.push(0);
    assert_eq!(reason(&longer), "not a reel metadata file");
    assert_eq!(reason(&good[..95]), "not a reel metadata file");
    let mut magic = good;
    magic[0] = b'X';
    assert_eq!(reason(&resealed(magic)), "not a reel metadata file");
    let mut crc = good;
    crc[92] ^= 1;
    assert_eq!(reason(&crc), "metadata checksum mismatch");
    let mut version = good;
    version[8] = 2;
    match Meta::decode(&resealed(version), p) {
        Err(Error::UnsupportedVersion {
            found: 2,
            supported: 1,
            ..
        }) => {}
        other => panic!("expected an unsupported version, got {other:?}"),
    }
    // A version error wins over a bad policy: the version is checked first.
    let mut both = version;
    both[12] = 9;
    assert!(matches!(
        Meta::decode(&resealed(both), p),
        Err(Error::UnsupportedVersion { .. })
    ));
    let mut policy = good;
    policy[12] = 3;
    assert_eq!(reason(&resealed(policy)), "unknown when-full policy");
}

#[test]
fn read_tells_a_missing_or_foreign_file_from_a_damaged_one() {
    use crate::storage::sim::SimStorage;
    let sim = SimStorage::new();
    let dir = Path::new("/log");
    sim.create_dir_all(dir).unwrap();
    let not_a_log = |sim: &SimStorage| matches!(Meta::read(sim, dir), Err(Error::NotALog { path }) if path == dir);
    assert!(not_a_log(&sim), "no reel.meta");
    let write = |bytes: &[u8]| {
        let f = sim
            .open(&Meta::path(dir), OpenMode::CreateTruncate)
            .unwrap();
        f.write_all_at(bytes, 0).unwrap();
    };
    write(b"REEL");
    assert!(not_a_log(&sim), "shorter than the magic");
    write(b"NOTREEL!and more bytes");
    assert!(not_a_log(&sim), "another magic");
    // The magic, but not a whole file: a damaged log, not a foreign file.
    write(b"REELMETA");
    assert!(Meta::read(&sim, dir).unwrap_err().is_corrupt());
    let m = sample(WhenFull::Compact, StoreKind::Kv(KvPathSyntax::Legacy));
    let mut longer = m.encode().to_vec();
    longer.push(0);
    write(&longer);
    assert!(Meta::read(&sim, dir).unwrap_err().is_corrupt(), "97 bytes");
    write(&m.encode());
    assert_eq!(Meta::read(&sim, dir).unwrap(), m);
}

#[test]
fn read_reports_a_meta_file_that_cannot_be_opened_as_io() {
    // A symlink loop: opening fails, but not with "not found".
    let tmp = tempfile::tempdir().unwrap();
    let path = Meta::path(tmp.path());
    std::os::unix::fs::symlink(&path, &path).unwrap();
    match Meta::read(&crate::storage::DiskStorage, tmp.path()) {
        Err(Error::Io { op: "open", .. }) => {}
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn write_replaces_the_file_and_refuses_an_unsafe_policy() {
    use crate::storage::sim::SimStorage;
    let sim = SimStorage::new();
    let dir = Path::new("/log");
    sim.create_dir_all(dir).unwrap();
    let m = sample(WhenFull::Reject, StoreKind::Lists);
    m.write(&sim, dir).unwrap();
    assert_eq!(Meta::read(&sim, dir).unwrap(), m);
    assert!(!sim.exists(&dir.join("reel.meta.tmp")));
    // Durable: a power cut right after keeps it.
    assert_eq!(Meta::read(&sim.power_loss(1), dir).unwrap(), m);
    let unsafe_policy = sample(WhenFull::Compact, StoreKind::Lists);
    assert!(matches!(
        unsafe_policy.write(&sim, dir),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(Meta::read(&sim, dir).unwrap(), m, "left alone");
}

#[test]
fn names_spellings_and_kinds() {
    for (p, s) in [
        (WhenFull::DropOldest, "drop-oldest"),
        (WhenFull::Reject, "reject"),
        (WhenFull::Compact, "compact"),
    ] {
        assert_eq!((p.as_str(), p.to_string()), (s, s.to_string()));
        assert_eq!(s.parse::<WhenFull>().unwrap(), p);
    }
    let e = "sometimes".parse::<WhenFull>().unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown when-full policy `sometimes`"),
        "{e}"
    );
    let kv = StoreKind::Kv(KvPathSyntax::DistKv);
    for (k, name, spelling) in [
        (StoreKind::Untyped, "untyped store", "untyped"),
        (StoreKind::Spool, "spool", "spool"),
        (kv, "kv store", "kv"),
        (StoreKind::Lists, "lists store", "lists"),
    ] {
        assert_eq!(
            (k.name(), k.as_str(), k.to_string()),
            (name, spelling, name.to_string())
        );
    }
    assert!(kv.is_same_kind(StoreKind::Kv(KvPathSyntax::Legacy)));
    assert!(StoreKind::Spool.is_same_kind(StoreKind::Spool));
    assert!(!kv.is_same_kind(StoreKind::Lists));
    assert!(!StoreKind::Untyped.is_same_kind(StoreKind::Spool));
    let dir = Path::new("/d");
    assert!(StoreKind::Lists.check_compaction(dir).is_err());
    for k in [StoreKind::Untyped, StoreKind::Spool, kv] {
        assert!(k.check_compaction(dir).is_ok(), "{k}");
    }
}

#[test]
fn configuration_limits_are_the_documented_ones() {
    assert_eq!(DEFAULT_CAPACITY, 1 << 30);
    assert_eq!(DEFAULT_MAX_RECORD_SIZE, 16 << 20);
    assert_eq!(MIN_CAPACITY, 64 << 10);
    assert_eq!(
        Config::default(),
        Config {
            capacity: 1 << 30,
            when_full: WhenFull::DropOldest,
            segment_size: (1 << 30) / 10,
            max_record_size: 16 << 20,
        }
    );
    let ok = |capacity: u64, segment_size: u64, max_record_size: u64| {
        Config {
            capacity,
            when_full: WhenFull::Reject,
            segment_size,
            max_record_size,
        }
        .validate()
        .is_ok()
    };
    let k = 1u64 << 10;
    // Capacity at least 64 KiB.
    assert!(ok(64 * k, 16 * k, 1));
    assert!(!ok(64 * k - 1, 16 * k, 1));
    // Segments from 16 KiB up to the capacity.
    assert!(ok(64 * k, 64 * k, 1));
    assert!(!ok(64 * k, 64 * k + 1, 1));
    assert!(!ok(64 * k, 16 * k - 1, 1));
    // Records from 1 byte to 2^31 - 1.
    assert!(!ok(64 * k, 16 * k, 0));
    assert!(ok(64 * k, 16 * k, (1 << 31) - 1));
    assert!(!ok(64 * k, 16 * k, 1 << 31));
    // Default segments: a tenth, at least 16 KiB, at most 1 GiB and the capacity.
    assert_eq!(default_segment_size(1 << 20), (1 << 20) / 10);
    assert_eq!(default_segment_size(100 * k), 16 * k);
    assert_eq!(default_segment_size(20 << 30), 1 << 30);
    assert_eq!(default_segment_size(10 * k), 10 * k);
    assert_eq!(
        Config::with_capacity(1 << 20, WhenFull::Compact),
        Config {
            capacity: 1 << 20,
            when_full: WhenFull::Compact,
            segment_size: (1 << 20) / 10,
            max_record_size: 16 << 20,
        }
    );
}

#[test]
fn segment_size_is_a_tenth_within_bounds() {
    assert_eq!(default_segment_size(1 << 30), (1 << 30) / 10);
    assert_eq!(default_segment_size(MIN_CAPACITY), MIN_SEGMENT);
}
