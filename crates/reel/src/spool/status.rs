//! Spool status: capacity, usage, and every reader's progress.

use super::Spool;
use crate::cursor::list_cursors;
use crate::error::Result;
use reel_log::follow::FollowState;
use reel_log::frame::{self, Frame};
use reel_log::storage::OpenMode;
use reel_log::{SegmentInfo, WhenFull};
use serde::Serialize;
use std::path::PathBuf;

/// A snapshot of a spool's state, as `reel status --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The spool directory.
    pub dir: PathBuf,
    /// What the store holds: `spool`, `kv`, `lists` (or `untyped`, made before kinds).
    pub kind: &'static str,
    /// Configured capacity in bytes.
    pub capacity: u64,
    /// Bytes used by segment files.
    pub used_bytes: u64,
    /// Number of segment files.
    pub segments: usize,
    /// Target size of a segment in bytes.
    pub segment_size: u64,
    /// Largest key + value in bytes.
    pub max_record_size: u64,
    /// Seq of the oldest retained record.
    pub oldest_seq: u64,
    /// Seq the next append gets.
    pub next_seq: u64,
    /// Records retained. Below `next_seq - oldest_seq` once compaction dropped
    /// superseded records: each sealed segment's seal counts its records, and the tail
    /// (never compacted) holds every seq from its first to `next_seq`.
    pub records: u64,
    /// When-full policy.
    #[serde(serialize_with = "policy_str")]
    pub when_full: WhenFull,
    /// The largest seq of a deletion that compaction dropped (0: none). A follower or
    /// reader that had not read up to it may have missed deletions; one past it misses
    /// only superseded values where compaction left gaps.
    pub tombstone_horizon: u64,
    /// Every named reader.
    pub readers: Vec<ReaderStatus>,
    /// The source this store follows (`reel replicate`), when it is a follower.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
    /// The log's identity (`reel.meta`), 32 hex digits: kept by copies, snapshots and
    /// followers, and named in list continuation tokens.
    pub log_id: String,
    /// How far this follower is behind its source, when it is a follower.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
}

/// A follower's progress, from its own log and from what its replicator last saw of
/// the source (`reel.follow.state`, refreshed about once a second while it runs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replication {
    /// The last seq the follower holds, if any.
    pub last_seq: Option<u64>,
    /// The source's next seq when last seen (`None`: never seen).
    pub source_next_seq: Option<u64>,
    /// Records the source had that the follower does not.
    pub lag_records: Option<u64>,
    /// Age of the oldest record the follower lacks: 0 when it lacks none. Measured now
    /// while the follower has not moved since the source was seen (a stopped
    /// replicator shows a growing lag), otherwise as of that moment.
    pub lag_seconds: Option<f64>,
    /// Seconds since the replicator last saw the source.
    pub seen_secs_ago: Option<f64>,
    /// Seqs skipped because the source no longer had them (`--skip-gap`) or never
    /// copied (`--from-seq`), as `[first, last]`.
    pub gaps: Vec<[u64; 2]>,
}

/// One reader's progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReaderStatus {
    /// Reader name.
    pub name: String,
    /// Seq of the next record it reads.
    pub position: u64,
    /// Retained records it has not read yet.
    pub unread: u64,
    /// Percent of the retained records it has read.
    pub consumed_pct: f64,
    /// Records it lost to retention, including those it will lose on its next read.
    pub lost: u64,
}

fn policy_str<S: serde::Serializer>(p: &WhenFull, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

impl Spool {
    /// Capacity, usage, and every reader's progress.
    pub fn status(&self) -> Result<Status> {
        let log = self.log();
        let config = log.config();
        let segments = log.segments()?;
        let next = log.next_seq();
        let oldest = log.oldest_seq().min(next);
        let retained = next - oldest;
        let spans = spans(log, &segments, next);
        let records = records_from(log, &spans, 0).min(retained);
        let readers = list_cursors(&**log.storage(), self.dir())?
            .into_iter()
            .map(|c| {
                let pos = c.position.clamp(oldest, next);
                // Counted, not subtracted: compaction leaves gaps in the seqs.
                let unread = records_from(log, &spans, pos).min(records);
                ReaderStatus {
                    name: c.name,
                    position: c.position,
                    unread,
                    consumed_pct: if records == 0 {
                        100.0
                    } else {
                        ((records - unread) as f64 * 1000.0 / records as f64).round() / 10.0
                    },
                    lost: c.lost + oldest.saturating_sub(c.position),
                }
            })
            .collect();
        Ok(Status {
            dir: self.dir().to_path_buf(),
            kind: log.kind().as_str(),
            capacity: config.capacity,
            used_bytes: segments.iter().map(|s| s.bytes).sum(),
            segments: segments.len(),
            segment_size: config.segment_size,
            max_record_size: config.max_record_size,
            oldest_seq: oldest,
            next_seq: next,
            records,
            when_full: config.when_full,
            tombstone_horizon: log.tombstone_horizon()?,
            readers,
            follows: log.follows().map(str::to_string),
            log_id: format!("{:032x}", log.log_id()),
            replication: log.follows().map(|_| self.replication(next)),
        })
    }

    fn replication(&self, next: u64) -> Replication {
        let state = FollowState::read(&**self.log().storage(), self.dir());
        let now = reel_log::now_micros();
        let secs = |micros: i64| micros.max(0) as f64 / 1e6;
        let seen = state.as_ref().filter(|s| s.observed_at > 0);
        let lag_records = seen.map(|s| s.source_next.saturating_sub(next));
        let lag_seconds = seen.map(|s| match s.oldest_missing_ts {
            _ if lag_records == Some(0) => 0.0,
            None => 0.0,
            Some(ts) if s.follower_next == next => secs(now - ts),
            Some(ts) => secs(s.observed_at - ts),
        });
        Replication {
            last_seq: next.checked_sub(1),
            source_next_seq: seen.map(|s| s.source_next),
            lag_records,
            lag_seconds,
            seen_secs_ago: seen.map(|s| secs(now - s.observed_at)),
            gaps: state
                .map(|s| {
                    s.gaps
                        .iter()
                        .filter(|g| g.end > g.start)
                        .map(|g| [g.start, g.end - 1])
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// One segment's seqs and how many records it holds.
struct Span {
    first: u64,
    end: u64,
    records: u64,
}

/// The records of each listed segment: the seal's count for a sealed segment (every seq
/// up to the next segment, the most it can hold, when its seal cannot be read), and
/// `next - first_seq` for the tail. Each seal is read once.
fn spans(log: &reel_log::Log, segments: &[SegmentInfo], next: u64) -> Vec<Span> {
    let max_frame = usize::try_from(log.config().max_record_size)
        .unwrap_or(usize::MAX)
        .saturating_add(frame::HEADER_LEN + frame::NONCE_LEN + frame::MAX_KEY_LEN);
    let mut out: Vec<Span> = segments
        .windows(2)
        .map(|w| {
            let (first, end) = (w[0].first_seq, w[1].first_seq);
            let span = end.saturating_sub(first);
            let records = seal_records(log, &w[0], max_frame).map_or(span, |n| n.min(span));
            Span {
                first,
                end,
                records,
            }
        })
        .collect();
    if let Some(tail) = segments.last() {
        out.push(Span {
            first: tail.first_seq,
            end: next,
            records: next.saturating_sub(tail.first_seq),
        });
    }
    out
}

/// Records retained with seqs from `from` on: the counts of the segments after it; in
/// the one holding `from`, its seqs from there if it has no gap, else the records
/// counted by reading them (a segment that cannot be read counts all it holds).
fn records_from(log: &reel_log::Log, spans: &[Span], from: u64) -> u64 {
    spans
        .iter()
        .filter(|s| s.end > from)
        .map(|s| {
            if s.first >= from {
                s.records
            } else if s.records == s.end - s.first {
                s.end - from
            } else {
                count_records(log, from, s.end).unwrap_or(s.records)
            }
        })
        .sum()
}

/// Records with seqs in `from..end`, read.
fn count_records(log: &reel_log::Log, from: u64, end: u64) -> Result<u64> {
    let mut reader = log.reader(from);
    let mut n = 0;
    while reader.position() < end {
        let batch = reader.read_batch(4096)?;
        if batch.is_empty() {
            break;
        }
        batch.for_each(|r| n += u64::from(r.seq < end));
    }
    Ok(n)
}

impl Spool {
    /// Records retained from seq `from` on (what a reader there has left to read):
    /// counted, since compaction leaves gaps in the seqs.
    pub fn records_from(&self, from: u64) -> Result<u64> {
        let log = self.log();
        let next = log.next_seq();
        Ok(records_from(log, &spans(log, &log.segments()?, next), from))
    }
}

/// The record count in a sealed segment's seal, if it reads back intact.
fn seal_records(log: &reel_log::Log, seg: &SegmentInfo, max_frame: usize) -> Option<u64> {
    let at = seg.bytes.checked_sub(frame::SEAL_LEN as u64)?;
    let file = log.storage().open(&seg.path, OpenMode::Read).ok()?;
    let mut buf = [0u8; frame::SEAL_LEN];
    file.read_exact_at(&mut buf, at).ok()?;
    match frame::decode(&buf, max_frame) {
        Ok((Frame::Seal(s), _)) => Some(s.records),
        _ => None,
    }
}
