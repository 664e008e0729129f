//! Torn or damaged: which bad bytes are a torn write (cut) and which are damage (kept); and what recovery logs.

use super::*;

/// After a power cut, bad bytes followed by valid frames are torn (cut) when they look
/// unwritten: their first 8 bytes are zeros, or a whole 512-byte sector aligned on file
/// offsets among them is zeros; otherwise they are damage (kept). Records of 1200 bytes
/// (1228-byte frames) so that a bad frame spans several sectors.
fn torn_or_damaged(zeros_at: u64, zeros: usize) -> (RecoveryReport, u64) {
    const BIG: usize = 1200;
    let sim = SimStorage::new();
    let log = open_sim(&sim, big_tail_config());
    append_n(&log, 20, BIG);
    log.sync().unwrap();
    let tail = log.segments().unwrap().last().unwrap().path.clone();
    drop(log);
    sim.corrupt(&tail, zeros_at, &vec![0u8; zeros]).unwrap();
    let log = reopen(&sim.power_loss(8)).unwrap();
    (log.recovery_report().unwrap(), log.next_seq())
}

const BIG_FRAME: u64 = 1228;

fn big_frame_at(seq: u64) -> u64 {
    32 + BIG_FRAME * seq
}

#[test]
fn a_frame_whose_first_8_bytes_are_zeros_is_torn() {
    let (report, next) = torn_or_damaged(big_frame_at(3), 8);
    assert!(report.damage.is_empty(), "{report:?}");
    let cut = report.cut.unwrap();
    assert_eq!(cut.offset, big_frame_at(3));
    assert_eq!(next, 3);
    // A zeroed checksum alone leaves the length (cc 04 00 00) in the first 8 bytes: not
    // unwritten, so damage.
    let (report, next) = torn_or_damaged(big_frame_at(3), 4);
    assert_eq!(report.cut, None, "{report:?}");
    assert_eq!(
        report
            .damage
            .iter()
            .map(|d| (d.offset, d.bytes, d.first_seq, d.resume_seq))
            .collect::<Vec<_>>(),
        vec![(big_frame_at(3), BIG_FRAME, 3, 4)]
    );
    assert_eq!(next, 20);
}

#[test]
fn a_zeroed_sector_anywhere_in_the_bad_bytes_makes_them_torn() {
    // Frame 3 spans 3716..4944: its first aligned sector (4096..4608) holds data, the
    // second (4608..5120, reaching into frame 4) is zeros. Frame 5 is the next valid one.
    assert_eq!((big_frame_at(3), big_frame_at(4)), (3716, 4944));
    let (report, next) = torn_or_damaged(4608, 512);
    assert!(report.damage.is_empty(), "{report:?}");
    assert_eq!(
        report.cut.as_ref().map(|c| c.offset),
        Some(big_frame_at(3)),
        "{report:?}"
    );
    assert_eq!(next, 3);
    // The last aligned sector before the next valid frame counts too: frame 4 spans
    // 4944..6172, sectors 5120..5632 (data) and 5632..6144 (zeros).
    let (report, next) = torn_or_damaged(5632, 512);
    assert!(report.damage.is_empty(), "{report:?}");
    assert_eq!(report.cut.as_ref().map(|c| c.offset), Some(big_frame_at(4)));
    assert_eq!(next, 4);
}

#[test]
fn zeros_that_fill_no_aligned_sector_are_damage() {
    // 512 zero bytes straddling two sectors (4708..5220) inside frames 3 and 4, and 511
    // zeros inside one sector: no aligned sector is all zeros, so this is damage, kept.
    for (at, len) in [(4708u64, 512usize), (4609, 511)] {
        let (report, next) = torn_or_damaged(at, len);
        assert_eq!(report.cut, None, "{at}+{len}: {report:?}");
        assert_eq!(report.damage.len(), 1, "{at}+{len}: {report:?}");
        assert_eq!(report.damage[0].offset, big_frame_at(3), "{at}+{len}");
        assert_eq!(next, 20, "{at}+{len}");
    }
}

#[test]
fn a_torn_record_whose_value_holds_a_frame_is_cut_not_resynced_into() {
    // The value of record n is itself a valid frame with a later seq (a log of frames).
    // Torn after that inner frame: the outer frame is incomplete, so the tail ends there;
    // the inner frame must never become a record.
    let sim = SimStorage::new();
    let n = 10;
    let tail = synced_tail(&sim, n);
    let end = sim.file_len(&tail).unwrap();
    let inner = record(n + 5, 50);
    let mut outer = Vec::new();
    frame::encode_record(
        &mut outer,
        n,
        1,
        &Entry {
            value: &[&inner[..], &[7u8; 100][..]].concat(),
            ..Default::default()
        },
    );
    let torn = &outer[..28 + inner.len() + 10];
    for trusted in [false, true] {
        let sim = sim.process_crash();
        sim.corrupt(&tail, end, torn).unwrap();
        let log = if trusted {
            let log = open_sim(&sim, big_tail_config());
            assert_eq!(append_n(&log, 1, LEN), n..n + 1);
            log
        } else {
            reopen(&sim.power_loss(1)).unwrap()
        };
        let report = log.recovery_report().unwrap();
        assert!(report.damage.is_empty(), "trusted {trusted}: {report:?}");
        assert_eq!(
            report.cut.map(|c| (c.offset, c.bytes)),
            Some((end, torn.len() as u64)),
            "trusted {trusted}"
        );
        assert_eq!(log.next_seq(), n + u64::from(trusted), "trusted {trusted}");
    }
}

/// Every segment file deleted (the tail included, which retention never drops): the
/// records up to the published end are gone, which no open may hide. A writer used to
/// start over there, and the store read as healthy and empty; it is now refused, and
/// nothing is created.
#[test]
fn when_every_segment_is_gone_a_writer_is_refused_and_creates_nothing() {
    let sim = SimStorage::new();
    let (log, tail_first, next) = two_segments(&sim);
    drop(log);
    let dir = Path::new(DIR);
    for first in [0, tail_first] {
        sim.remove_file(&segment::segment_path(dir, first)).unwrap();
        sim.remove_file(&segment::index_path(dir, first)).unwrap();
    }
    // A read-only handle after a power cut has nothing to rebuild from: an error, and
    // nothing created.
    let image = sim.power_loss(1);
    match LogOptions::new()
        .storage(Arc::new(image.clone()))
        .read_only(true)
        .open(DIR)
    {
        Err(Error::Corrupt { reason, .. }) => assert_eq!(reason, "the log has no segments"),
        other => panic!("{other:?}"),
    }
    assert!(segment::list_segments(&image, dir).unwrap().is_empty());
    // A writer under the trusted head (same boot) knows records were written.
    let log = open_sim(&sim, small_config());
    let err = log
        .append(&[reel_log::Entry {
            value: b"x",
            ..Default::default()
        }])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("held records up to seq {}", next - 1)),
        "{err}"
    );
    assert!(segment::list_segments(&sim, dir).unwrap().is_empty());
}

#[test]
fn a_recovered_tail_keeps_counting_records_and_index_entries_for_the_next_roll() {
    // Recovery from the tail's last good index entry publishes the tail's record count
    // and index entry count; the writer builds on both: the seal's record count at the
    // next roll, and where the next index entries go.
    let sim = SimStorage::new();
    let (log, tail_first, next) = two_segments(&sim);
    drop(log);
    let tail = segment::segment_path(Path::new(DIR), tail_first);
    let idx = tail.with_extension("idx");
    let entries = index_of(&sim, &tail, tail_first);
    assert_eq!(entries.len(), 2);
    // A torn frame at the end and a damaged last index entry: recovery keeps entry 0,
    // rebuilds entry 1, cuts the torn frame.
    let end = sim.file_len(&tail).unwrap();
    sim.corrupt(&tail, end, &record(next, LEN)[..20]).unwrap();
    sim.corrupt(&idx, index::entry_pos(1) + 3, &[0xff]).unwrap();
    let log = open_sim(&sim, small_config());
    // Enough records to add index entries to the tail, then roll it.
    append_n(&log, 60, LEN);
    let report = log.recovery_report().unwrap();
    assert_eq!(report.rebuilt_index_entries, 1, "{report:?}");
    assert_eq!(report.cut.map(|c| c.offset), Some(end));
    let segs = log.segments().unwrap();
    assert_eq!(segs.len(), 3, "{segs:?}");
    // The sealed tail verifies: its seal counts every record, its index every 4 KiB.
    let v = log.verify().unwrap();
    assert!(v.is_ok(), "{v:?}");
    let sealed = index_of(&sim, &tail, tail_first);
    let offsets: Vec<u64> = sealed.iter().map(|e| e.offset).collect();
    let mut want = vec![32u64];
    let records = segs[2].first_seq - tail_first;
    for k in 1..records {
        let at = 32 + FRAME * k;
        if at >= want.last().unwrap() + index::INDEX_INTERVAL {
            want.push(at);
        }
    }
    assert_eq!(offsets, want);
    assert_goes_on(&log, 0, next + 60, "after the roll");
}

/// Collects the messages of `tracing` warnings emitted on this thread.
#[derive(Default)]
struct Warnings(std::sync::Mutex<Vec<String>>);

impl tracing::Subscriber for Warnings {
    fn register_callsite(&self, _: &tracing::Metadata<'_>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::always()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message<'a>(&'a mut String);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut m = String::new();
            event.record(&mut Message(&mut m));
            self.0.lock().unwrap().push(m);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A process-wide subscriber that records nothing but answers "ask me each time" for
/// every callsite. Without it, a test thread without a subscriber that reaches a warning
/// first makes `tracing` cache "nobody wants this" for that callsite, process-wide, and
/// a `with_default` subscriber on another thread never sees the warning (a flaky test
/// under load even with `rebuild_interest_cache`, which can race with that thread).
struct AskEachTime;

impl tracing::Subscriber for AskEachTime {
    fn register_callsite(&self, _: &tracing::Metadata<'_>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn every_repair_is_logged_as_a_warning() {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(AskEachTime);
        tracing::callsite::rebuild_interest_cache();
    });
    let sim = SimStorage::new();
    let tail = synced_tail(&sim, 30);
    let end = sim.file_len(&tail).unwrap();
    sim.corrupt(&tail, frame_at(7) + 50, &[0x42]).unwrap();
    sim.corrupt(&tail, end, &record(30, LEN)[..70]).unwrap();
    let image = sim.power_loss(1);
    let warnings = Arc::new(Warnings::default());
    let log = tracing::subscriber::with_default(warnings.clone(), || {
        // Another test thread may have cached "no subscriber wants this event" for the
        // warning's callsite (tracing caches interest globally): ask again.
        tracing::callsite::rebuild_interest_cache();
        reopen(&image).unwrap()
    });
    let report = log.recovery_report().unwrap();
    assert_eq!(report.describe().len(), 2, "{report:?}");
    assert_eq!(*warnings.0.lock().unwrap(), report.describe());
    // Under a trusted head, the first append's repair is logged too.
    let sim = sim.process_crash();
    let log = open_sim(&sim, big_tail_config());
    let warnings = Arc::new(Warnings::default());
    tracing::subscriber::with_default(warnings.clone(), || {
        tracing::callsite::rebuild_interest_cache();
        append_n(&log, 1, LEN)
    });
    let report = log.recovery_report().unwrap();
    assert_eq!(*warnings.0.lock().unwrap(), report.describe());
}
