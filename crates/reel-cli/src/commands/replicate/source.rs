//! Where a follower copies from: a local log or a server, and what it says about itself.

use crate::error::{CliError, CliResult};
use reel::{Config, Log, StoreKind, WhenFull};
use reel_log::LogOptions;
use std::io::Read;
use std::path::Path;

/// What a follower is made from: the source's kind and configuration, and its end.
pub(super) struct SourceInfo {
    pub kind: StoreKind,
    pub config: Config,
    pub oldest: u64,
    pub next: u64,
    /// The source's identity, which a new follower keeps (`None` from an older server).
    pub log_id: Option<u128>,
    /// The largest seq of a deletion its compaction dropped (`None` from an older
    /// server: unknown).
    pub tombstone_horizon: Option<u64>,
}

pub(super) enum Source {
    Local(Log),
    Remote(crate::remote::Remote),
}

impl Source {
    pub fn open(src: &Path) -> CliResult<Source> {
        Ok(match crate::remote::target(src)? {
            Some(r) => Source::Remote(r),
            None => Source::Local(
                LogOptions::new()
                    .read_only(true)
                    .open(src)
                    .map_err(reel::Error::from)?,
            ),
        })
    }

    /// The stored frame of `seq`, if the source still has it.
    pub fn frame_at(&self, seq: u64) -> CliResult<Option<Vec<u8>>> {
        let frame = match self {
            Source::Local(log) => frame_at(log, seq)?,
            Source::Remote(r) => {
                let mut body = r.lines(
                    "/frames",
                    vec![("from_seq", seq.to_string()), ("limit", "1".into())],
                )?;
                let mut out = Vec::new();
                body.read_to_end(&mut out).map_err(|e| r.broken(e))?;
                // The source sends from the first record at or after `seq`: where its
                // compaction removed `seq`, that is a later one.
                match reel_log::frame::decode(&out, out.len()) {
                    Ok((reel_log::frame::Frame::Record(rec), _)) if rec.seq != seq => Vec::new(),
                    _ => out,
                }
            }
        };
        Ok((!frame.is_empty()).then_some(frame))
    }

    pub fn info(&self) -> CliResult<SourceInfo> {
        match self {
            Source::Local(log) => Ok(SourceInfo {
                kind: log.kind(),
                config: log.config(),
                oldest: log.oldest_seq(),
                next: log.next_seq(),
                log_id: Some(log.log_id()),
                tombstone_horizon: Some(log.tombstone_horizon().map_err(reel::Error::from)?),
            }),
            Source::Remote(r) => {
                let st = crate::remote::status(r)?;
                let n = |k: &str| {
                    st[k]
                        .as_u64()
                        .ok_or_else(|| CliError::Input(format!("source status without `{k}`")))
                };
                let when_full: WhenFull = st["when_full"]
                    .as_str()
                    .unwrap_or("")
                    .parse()
                    .map_err(reel::Error::from)?;
                Ok(SourceInfo {
                    kind: super::super::init::kind_of(&crate::remote::kind(r)?)?,
                    config: Config {
                        capacity: n("capacity")?,
                        when_full,
                        segment_size: n("segment_size")?,
                        max_record_size: n("max_record_size")?,
                    },
                    oldest: n("oldest_seq")?,
                    next: n("next_seq")?,
                    log_id: st["log_id"]
                        .as_str()
                        .and_then(|h| u128::from_str_radix(h, 16).ok()),
                    tombstone_horizon: st["tombstone_horizon"].as_u64(),
                })
            }
        }
    }
}

/// The stored frame of `seq` in `log`.
pub(super) fn frame_at(log: &Log, seq: u64) -> CliResult<Vec<u8>> {
    let mut reader = log.reader(seq);
    let batch = reader.read_batch(1).map_err(reel::Error::from)?;
    let mut out = Vec::new();
    batch.for_each_frame(|s, bytes| {
        if s == seq {
            out = bytes.to_vec();
        }
    });
    Ok(out)
}

impl Source {
    /// The timestamp of the source's record `seq`, if it still has it.
    pub fn ts_at(&self, seq: u64) -> CliResult<Option<i64>> {
        if let Source::Local(log) = self {
            return Ok(log.read_record(seq, |r| r.ts).map_err(reel::Error::from)?);
        }
        let Some(frame) = self.frame_at(seq)? else {
            return Ok(None);
        };
        match reel_log::frame::decode(&frame, frame.len()) {
            Ok((reel_log::frame::Frame::Record(r), _)) if r.seq == seq => Ok(Some(r.ts)),
            _ => Err(CliError::Input(format!(
                "the source sent something else than the frame of seq {seq}"
            ))),
        }
    }
}
