//! Spool status: capacity, usage, and every reader's progress.

use super::Spool;
use crate::cursor::list_cursors;
use crate::error::Result;
use reel_log::WhenFull;
use serde::Serialize;
use std::path::PathBuf;

/// A snapshot of a spool's state, as `reel status --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The spool directory.
    pub dir: PathBuf,
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
    /// Records retained (`next_seq - oldest_seq`).
    pub records: u64,
    /// When-full policy.
    #[serde(serialize_with = "policy_str")]
    pub when_full: WhenFull,
    /// Every named reader.
    pub readers: Vec<ReaderStatus>,
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
        let readers = list_cursors(&**log.storage(), self.dir())?
            .into_iter()
            .map(|c| {
                let pos = c.position.clamp(oldest, next);
                let read = pos - oldest;
                ReaderStatus {
                    name: c.name,
                    position: c.position,
                    unread: next - pos,
                    consumed_pct: if retained == 0 {
                        100.0
                    } else {
                        (read as f64 * 1000.0 / retained as f64).round() / 10.0
                    },
                    lost: c.lost + oldest.saturating_sub(c.position),
                }
            })
            .collect();
        Ok(Status {
            dir: self.dir().to_path_buf(),
            capacity: config.capacity,
            used_bytes: segments.iter().map(|s| s.bytes).sum(),
            segments: segments.len(),
            segment_size: config.segment_size,
            max_record_size: config.max_record_size,
            oldest_seq: oldest,
            next_seq: next,
            records: retained,
            when_full: config.when_full,
            readers,
        })
    }
}
