//! The follower marker: `reel.follow` in a log's directory says that the log is a copy of
//! another store, kept by `reel replicate`, and names that source. While it is there,
//! appends are refused except through a handle opened as the replica
//! ([`crate::LogOptions::replica`]); `reel promote` removes it.
//!
//! Format (text, so that an operator can read it): `reel-follow 1`, then `source URL`,
//! then `crc32c HEX` of the two lines before it, each line ending in `\n`. A marker that
//! does not read back is treated as present with an unknown source: a damaged marker
//! must not make a follower writable.

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

/// Makes a follower a store of its own (`reel promote`), durably.
pub fn remove(storage: &dyn Storage, dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join(FOLLOW_FILE);
    storage.remove_file(&path)?;
    storage.sync_dir(dir)?;
    Ok(path)
}
