//! The follower marker: `reel.follow` in a log's directory says that the log is a copy of
//! another store, kept by `reel replicate`, and names that source. While it is there,
//! appends are refused except through a handle opened as the replica
//! ([`crate::LogOptions::replica`]); `reel promote` removes it.
//!
//! Format (text, so that an operator can read it): `reel-follow 1`, then `source URL`,
//! then `crc32c HEX` of the two lines before it, each line ending in `\n`. A marker that
//! does not read back is treated as present with an unknown source: a damaged marker
//! must not make a follower writable.
//!
//! Beside it, `reel.follow.state` ([`FollowState`]) holds what the replicator last saw of
//! its source (for lag in `reel status`) and the seqs it skipped (`--skip-gap`,
//! `--from-seq`).

use crate::storage::{OpenMode, Storage};
use std::io;
use std::path::{Path, PathBuf};

/// The marker's file name.
pub const FOLLOW_FILE: &str = "reel.follow";

/// The source a follower copies, if `dir` holds a follower (`Some("?")` when the marker
/// is damaged).
pub fn read_source(storage: &dyn Storage, dir: &Path) -> io::Result<Option<String>> {
    let path = dir.join(FOLLOW_FILE);
    if !storage.exists(&path) {
        return Ok(None);
    }
    let f = storage.open(&path, OpenMode::Read)?;
    let len = f.len()?.min(64 << 10) as usize;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, 0)?;
    Ok(Some(parse(&buf).unwrap_or_else(|| "?".into())))
}

fn parse(buf: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(buf).ok()?;
    let mut lines = text.split_inclusive('\n');
    let (v, s, c) = (lines.next()?, lines.next()?, lines.next()?);
    if v != "reel-follow 1\n" {
        return None;
    }
    let crc = u32::from_str_radix(c.strip_prefix("crc32c ")?.trim_end(), 16).ok()?;
    if crc != crc32c::crc32c(format!("{v}{s}").as_bytes()) {
        return None;
    }
    Some(s.strip_prefix("source ")?.trim_end().to_string())
}

/// Makes `dir` a follower of `source`, durably.
pub fn write_source(storage: &dyn Storage, dir: &Path, source: &str) -> io::Result<()> {
    if source.contains('\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a source name cannot hold a line break",
        ));
    }
    let body = format!("reel-follow 1\nsource {source}\n");
    let text = format!("{body}crc32c {:08x}\n", crc32c::crc32c(body.as_bytes()));
    let tmp = dir.join(format!("{FOLLOW_FILE}.tmp"));
    let f = storage.open(&tmp, OpenMode::CreateTruncate)?;
    f.write_all_at(text.as_bytes(), 0)?;
    f.sync_data()?;
    storage.rename(&tmp, &dir.join(FOLLOW_FILE))?;
    storage.sync_dir(dir)
}

/// Makes a follower a store of its own (`reel promote`), durably. Its state file goes
/// too: a store of its own has no source to lag behind (the seqs it skipped stay
/// visible as the jump in its seqs).
pub fn remove(storage: &dyn Storage, dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join(FOLLOW_FILE);
    storage.remove_file(&path)?;
    match storage.remove_file(&dir.join(FOLLOW_STATE_FILE)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    storage.sync_dir(dir)?;
    Ok(path)
}

/// The follower state file's name.
pub const FOLLOW_STATE_FILE: &str = "reel.follow.state";
const STATE_MAGIC: &[u8; 8] = b"REELFST\0";
const STATE_VERSION: u32 = 1;
const STATE_FIXED_LEN: usize = 48;
/// Gaps kept at most: the oldest are merged into one (a follower that skips this often
/// is broken anyway, and the file stays small).
pub const MAX_GAPS: usize = 64;

/// What a follower's replicator last saw of its source, and the seqs the follower will
/// never have (`reel.follow.state`).
///
/// Format (little-endian): magic `REELFST\0` (8) | version u32 | gap count u32 |
/// source next seq u64 | follower next seq u64 | oldest missing ts i64 | observed at
/// i64 | then per gap: first seq u64, end seq u64 (exclusive) | crc32c u32 of all
/// bytes before it. Replaced whole (written to `.tmp`, renamed); a file that does not
/// read back counts as absent, except that gaps are written durably (synced before and
/// after the rename) so that a skip is never forgotten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowState {
    /// The source's next seq when last seen.
    pub source_next: u64,
    /// The follower's next seq at that moment.
    pub follower_next: u64,
    /// Timestamp (µs) of the source's record at `follower_next` then: the oldest record
    /// the follower did not have yet; `None` when it had everything.
    pub oldest_missing_ts: Option<i64>,
    /// When the source was seen (µs since the epoch; 0: never).
    pub observed_at: i64,
    /// Seqs the follower skipped because the source no longer had them, oldest first.
    pub gaps: Vec<std::ops::Range<u64>>,
}

impl FollowState {
    /// Reads `dir`'s state file; `None` when there is none or it does not read back.
    pub fn read(storage: &dyn Storage, dir: &Path) -> Option<FollowState> {
        let f = storage
            .open(&dir.join(FOLLOW_STATE_FILE), OpenMode::Read)
            .ok()?;
        let len = f
            .len()
            .ok()?
            .min((STATE_FIXED_LEN + 16 * MAX_GAPS + 4) as u64) as usize;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, 0).ok()?;
        Self::decode(&buf)
    }

    fn decode(buf: &[u8]) -> Option<FollowState> {
        let (body, crc) = buf.split_at_checked(buf.len().checked_sub(4)?)?;
        if u32::from_le_bytes(crc.try_into().ok()?) != crc32c::crc32c(body) {
            return None;
        }
        let u64_at = |at: usize| Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?));
        let u32_at = |at: usize| Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?));
        if body.get(..8)? != STATE_MAGIC || u32_at(8)? != STATE_VERSION {
            return None;
        }
        let count = u32_at(12)? as usize;
        if body.len() != STATE_FIXED_LEN + 16 * count {
            return None;
        }
        let missing = u64_at(32)? as i64;
        let gaps = (0..count)
            .map(|i| {
                let at = STATE_FIXED_LEN + 16 * i;
                Some(u64_at(at)?..u64_at(at + 8)?)
            })
            .collect::<Option<Vec<_>>>()?;
        Some(FollowState {
            source_next: u64_at(16)?,
            follower_next: u64_at(24)?,
            oldest_missing_ts: (missing != i64::MIN).then_some(missing),
            observed_at: u64_at(40)? as i64,
            gaps,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STATE_FIXED_LEN + 16 * self.gaps.len() + 4);
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.gaps.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.source_next.to_le_bytes());
        out.extend_from_slice(&self.follower_next.to_le_bytes());
        out.extend_from_slice(&self.oldest_missing_ts.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(&self.observed_at.to_le_bytes());
        for g in &self.gaps {
            out.extend_from_slice(&g.start.to_le_bytes());
            out.extend_from_slice(&g.end.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Records that the follower skipped `gap`, merging the oldest gaps when there are
    /// more than [`MAX_GAPS`].
    pub fn add_gap(&mut self, gap: std::ops::Range<u64>) {
        self.gaps.push(gap);
        if self.gaps.len() > MAX_GAPS {
            let merged = self.gaps[0].start..self.gaps[1].end;
            self.gaps.splice(0..2, [merged]);
        }
    }

    /// Replaces `dir`'s state file with this one; `durable` syncs it (needed for gaps,
    /// not for what was seen of the source, which the next look refreshes).
    pub fn write(&self, storage: &dyn Storage, dir: &Path, durable: bool) -> io::Result<()> {
        let tmp = dir.join(format!("{FOLLOW_STATE_FILE}.tmp"));
        let f = storage.open(&tmp, OpenMode::CreateTruncate)?;
        f.write_all_at(&self.encode(), 0)?;
        if durable {
            f.sync_data()?;
        }
        storage.rename(&tmp, &dir.join(FOLLOW_STATE_FILE))?;
        if durable {
            storage.sync_dir(dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_reads_back_and_any_damaged_byte_makes_it_absent() {
        let mut st = FollowState {
            source_next: 1500,
            follower_next: 1000,
            oldest_missing_ts: Some(1_700_000_000_000_000),
            observed_at: 1_700_000_000_500_000,
            gaps: vec![],
        };
        st.add_gap(10..20);
        let bytes = st.encode();
        assert_eq!(FollowState::decode(&bytes), Some(st.clone()));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert_eq!(FollowState::decode(&bad), None, "byte {i}");
        }
        assert_eq!(FollowState::decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn gaps_beyond_the_limit_merge_the_oldest() {
        let mut st = FollowState::default();
        for i in 0..MAX_GAPS as u64 + 1 {
            st.add_gap(i * 10..i * 10 + 5);
        }
        assert_eq!(st.gaps.len(), MAX_GAPS);
        assert_eq!(st.gaps[0], 0..15);
        assert_eq!(
            st.gaps.last(),
            Some(&(MAX_GAPS as u64 * 10..MAX_GAPS as u64 * 10 + 5))
        );
        assert_eq!(FollowState::decode(&st.encode()), Some(st));
    }
}
