//! Appending and reading through the engine API.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Config, Entry, Error, Log, WhenFull};

#[test]
fn appended_records_read_back_in_order_across_segments() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    for _ in 0..20 {
        append_n(&log, 7, 300);
    }
    assert_eq!(log.next_seq(), 140);
    assert!(
        log.segments().unwrap().len() > 1,
        "should have rolled segments"
    );
    let all = read_all(&log, 0);
    let first = all[0].0;
    for (i, (seq, v)) in all.iter().enumerate() {
        assert_eq!(*seq, first + i as u64);
        assert_eq!(v, &value_for(*seq, 300));
    }
    assert_eq!(all.last().unwrap().0, 139);
}

#[test]
fn reopen_keeps_everything_and_continues_seqs() {
    let sim = SimStorage::new();
    {
        let log = open_sim(&sim, Config::with_capacity(1 << 20, WhenFull::Reject));
        append_n(&log, 500, 100);
    }
    let log = open_sim(&sim, Config::default());
    assert_eq!(log.next_seq(), 500);
    assert_eq!(
        log.config().when_full,
        WhenFull::Reject,
        "existing config is kept"
    );
    append_n(&log, 1, 100);
    let all = read_all(&log, 0);
    assert_eq!(all.len(), 501);
    assert!(all.iter().enumerate().all(|(i, (s, _))| *s == i as u64));
}

#[test]
fn keys_nonces_timestamps_and_empty_values_round_trip() {
    let (_tmp, log) = tmp_log(Config::default());
    log.append(&[
        Entry {
            ts: Some(-7),
            key: Some("k1"),
            nonce: Some(u128::MAX),
            encoding: 2,
            value: b"",
        },
        Entry {
            key: Some(""),
            value: b"x",
            ..Default::default()
        },
    ])
    .unwrap();
    let mut r = log.reader(0);
    let b = r.read_batch(10).unwrap();
    let recs: Vec<_> = b.iter().collect();
    assert_eq!(
        (
            recs[0].ts,
            recs[0].key,
            recs[0].nonce,
            recs[0].encoding,
            recs[0].value
        ),
        (-7, Some("k1"), Some(u128::MAX), 2, &b""[..])
    );
    assert_eq!((recs[1].key, recs[1].nonce), (Some(""), None));
    assert!(
        recs[1].ts > 1_600_000_000_000_000,
        "default ts is now in microseconds"
    );
}

#[test]
fn records_up_to_the_maximum_size_work_and_larger_ones_are_refused() {
    let mut config = Config::with_capacity(64 << 20, WhenFull::DropOldest);
    config.max_record_size = 16 << 20;
    let (_tmp, log) = tmp_log(config);
    let big = vec![7u8; 16 << 20];
    let sizes = [0usize, 1, 4095, 4096, 4097, 1 << 20];
    for &n in &sizes {
        log.append(&[Entry {
            value: &big[..n],
            ..Default::default()
        }])
        .unwrap();
    }
    log.append(&[Entry {
        value: &big,
        ..Default::default()
    }])
    .unwrap();
    let too_big = vec![0u8; (16 << 20) + 1];
    let err = log
        .append(&[Entry {
            value: &too_big,
            ..Default::default()
        }])
        .unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err}");
    let all = read_all(&log, 0);
    let lens: Vec<usize> = all.iter().map(|(_, v)| v.len()).collect();
    assert_eq!(lens, [0, 1, 4095, 4096, 4097, 1 << 20, 16 << 20]);
    assert!(log.verify().unwrap().is_ok());
}

#[test]
fn seek_time_finds_first_record_at_or_after_a_time() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    let vals: Vec<Vec<u8>> = (0..200).map(|s| value_for(s, 200)).collect();
    for (i, v) in vals.iter().enumerate() {
        // Timestamps mostly increase, with one step back in the middle.
        let ts = if i == 100 { 5 } else { 1000 + i as i64 * 10 };
        log.append(&[Entry {
            ts: Some(ts),
            value: v,
            ..Default::default()
        }])
        .unwrap();
    }
    assert_eq!(log.seek_time(0).unwrap(), 0);
    assert_eq!(log.seek_time(1000).unwrap(), 0);
    assert_eq!(log.seek_time(1001).unwrap(), 1);
    assert_eq!(log.seek_time(1000 + 150 * 10).unwrap(), 150);
    assert_eq!(log.seek_time(i64::MAX).unwrap(), 200);
}

#[test]
fn reader_positioned_mid_segment_starts_exactly_there() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    append_n(&log, 150, 250);
    for from in [0, 1, 17, 63, 64, 99, 149, 150] {
        let got = read_all(&log, from);
        let oldest = log.oldest_seq().max(from);
        assert_eq!(
            got.first().map(|g| g.0),
            if oldest < 150 { Some(oldest) } else { None },
            "from {from}"
        );
    }
}

#[test]
fn floor_seq_is_at_or_before_the_seq() {
    let sim = SimStorage::new();
    let log = open_sim(&sim, small_config());
    append_n(&log, 150, 250);
    for s in log.oldest_seq()..150 {
        let f = log.floor_seq(s).unwrap();
        assert!(f <= s && f >= log.oldest_seq(), "floor {f} of {s}");
    }
}

#[test]
fn many_threads_append_dense_seqs_and_keep_their_own_order() {
    let (_tmp, log) = tmp_log(Config::with_capacity(64 << 20, WhenFull::Reject));
    let threads = 8;
    let per = 2000u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            let log = log.clone();
            s.spawn(move || {
                for i in 0..per {
                    let v = format!("{t}:{i}");
                    log.append(&[Entry {
                        value: v.as_bytes(),
                        ..Default::default()
                    }])
                    .unwrap();
                }
            });
        }
    });
    let all = read_all(&log, 0);
    assert_eq!(all.len() as u64, threads * per);
    let mut last = vec![-1i64; threads as usize];
    for (i, (seq, v)) in all.iter().enumerate() {
        assert_eq!(*seq, i as u64);
        let s = String::from_utf8(v.clone()).unwrap();
        let (t, n) = s.split_once(':').unwrap();
        let (t, n): (usize, i64) = (t.parse().unwrap(), n.parse().unwrap());
        assert_eq!(n, last[t] + 1, "thread {t} out of order");
        last[t] = n;
    }
}

#[test]
fn two_handles_on_one_directory_interleave_safely() {
    let (tmp, a) = tmp_log(Config::with_capacity(8 << 20, WhenFull::Reject));
    let b = Log::open(tmp.path()).unwrap();
    for i in 0..300u64 {
        let h = if i % 3 == 0 { &a } else { &b };
        let v = i.to_le_bytes();
        assert_eq!(
            h.append(&[Entry {
                value: &v,
                ..Default::default()
            }])
            .unwrap(),
            i..i + 1
        );
    }
    let all = read_all(&b, 0);
    assert_eq!(all.len(), 300);
    assert!(all.iter().all(|(s, v)| v[..] == s.to_le_bytes()));
}

#[test]
fn not_a_log_and_bad_config_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Log::open(tmp.path()).unwrap_err();
    assert!(matches!(err, Error::NotALog { .. }), "{err}");
    assert!(err.to_string().contains("not a reel spool"));
    let err = Log::create(
        tmp.path().join("x"),
        Config::with_capacity(10, WhenFull::DropOldest),
    )
    .unwrap_err();
    assert!(err.to_string().contains("capacity"), "{err}");
}

#[test]
fn opening_reads_a_bounded_amount_whatever_the_log_size() {
    // Fast open is a property of the work done, not a timing: opening must not read the
    // records. (`reel bench` reports the time it takes.)
    let mut cost = Vec::new();
    for rounds in [10u64, 200] {
        let sim = SimStorage::new();
        let log = open_sim(
            &sim,
            Config {
                capacity: 64 << 20,
                when_full: WhenFull::DropOldest,
                segment_size: 256 << 10,
                max_record_size: 4096,
            },
        );
        for _ in 0..rounds {
            append_n(&log, 500, 100);
        }
        drop(log);
        let before = sim.bytes_read();
        let log = open_sim(&sim, Config::default());
        let open_bytes = sim.bytes_read() - before;
        assert_eq!(log.next_seq(), rounds * 500);
        // The first append verifies the tail from its last index entry.
        let before = sim.bytes_read();
        append_n(&log, 1, 100);
        let first_append_bytes = sim.bytes_read() - before;
        cost.push((open_bytes, first_append_bytes));
    }
    let (small, large) = (cost[0], cost[1]);
    assert!(
        large.0 <= small.0 + 64 && large.0 < 1024,
        "open reads {large:?} vs {small:?}"
    );
    assert!(
        large.1 < 64 << 10,
        "first append verifies a bounded tail: {large:?}"
    );
}

#[test]
fn guarded_appends_decide_atomically_across_handles() {
    // Every thread increments a counter stored as the last record: read-modify-write
    // under the writer lock never loses or duplicates an increment.
    let (tmp, log) = tmp_log(Config::with_capacity(8 << 20, WhenFull::Reject));
    let other = Log::open(tmp.path()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let h = if t % 2 == 0 {
                log.clone()
            } else {
                other.clone()
            };
            s.spawn(move || {
                for _ in 0..100 {
                    h.append_guarded(reel_log::Durability::None, |end| {
                        let last = if end == 0 {
                            0u64
                        } else {
                            let mut r = h.reader(end - 1);
                            let b = r.read_batch(1)?;
                            let v = b
                                .iter()
                                .next()
                                .map(|r| u64::from_le_bytes(r.value.try_into().unwrap()))
                                .unwrap();
                            v + 1
                        };
                        let e = reel_log::OwnedEntry {
                            value: last.to_le_bytes().to_vec(),
                            ..Default::default()
                        };
                        Ok::<_, reel_log::Error>((vec![e], ()))
                    })
                    .unwrap();
                }
            });
        }
    });
    let all = read_all(&log, 0);
    assert_eq!(all.len(), 400);
    for (i, (_, v)) in all.iter().enumerate() {
        assert_eq!(u64::from_le_bytes(v[..].try_into().unwrap()), i as u64);
    }
    // Deciding to append nothing appends nothing.
    let (r, ()) = log
        .append_guarded(reel_log::Durability::None, |_| {
            Ok::<_, reel_log::Error>((vec![], ()))
        })
        .unwrap();
    assert!(r.is_empty());
}

/// A record within the maximum record size but too large for the capacity was refused
/// as "exceeds the maximum record size" of a larger number than its own size.
#[test]
fn a_record_too_large_for_the_capacity_names_the_largest_that_fits() {
    let sim = reel_log::storage::sim::SimStorage::new();
    let mut cfg = small_config();
    cfg.max_record_size = cfg.capacity;
    let log = open_sim(&sim, cfg);
    let v = vec![b'x'; cfg.capacity as usize - 3];
    let e = reel_log::Entry {
        value: &v,
        ..Default::default()
    };
    match log.append(&[e]) {
        Err(reel_log::Error::RecordTooLarge { size, max }) => {
            assert_eq!(size, v.len() as u64);
            assert!(max < size, "{max} bytes would fit, not {size}");
            assert!(
                max + 20 <= cfg.capacity && max + 100 > cfg.capacity,
                "{max}"
            );
        }
        other => panic!("{other:?}"),
    }
}
