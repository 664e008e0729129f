//! `reel list`: keyed lists from the command line.

use crate::cli::ListCommand;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use reel::list::{ListStore, NewItem, PageRequest, Start};
use std::io::BufRead;

/// Opens the lists store in `dir`: to append (creating it if needed: only `list append`
/// creates one), or only to read it (also on read-only media and snapshots).
fn open(dir: &std::path::Path, append: bool) -> CliResult<ListStore> {
    if append {
        return Ok(ListStore::builder(dir).create(true).open()?);
    }
    match ListStore::builder(dir).create(false).open() {
        Err(e) if matches!(e.as_log(), Some(reel::LogError::ReadOnly { .. })) => {
            Ok(ListStore::builder(dir)
                .create(false)
                .read_only(true)
                .open()?)
        }
        other => Ok(other?),
    }
}

pub fn run(cmd: ListCommand, out: &mut Output) -> CliResult {
    match cmd {
        ListCommand::Append {
            nonce,
            ts,
            dir,
            key,
            json,
        } => {
            let mut texts: Vec<(String, String)> = json
                .into_iter()
                .enumerate()
                .map(|(i, t)| (format!("argument {}", i + 1), t))
                .collect();
            if texts.is_empty() {
                for (i, line) in std::io::stdin().lock().lines().enumerate() {
                    let line = line.map_err(|e| CliError::Input(format!("line {}: {e}", i + 1)))?;
                    if !line.trim().is_empty() {
                        texts.push((format!("line {}", i + 1), line));
                    }
                }
            }
            // Parse everything first: a bad value stores nothing of this call.
            let mut items = Vec::with_capacity(texts.len());
            for (i, (what, text)) in texts.iter().enumerate() {
                let value = serde_json::from_str(text).map_err(|e| {
                    CliError::Input(format!("{what}: invalid JSON: {e}; nothing was stored"))
                })?;
                let nonce = nonce
                    .map(|n| {
                        u128::try_from(i)
                            .ok()
                            .and_then(|i| n.checked_add(i))
                            .ok_or_else(|| CliError::Input("nonce overflows u128".into()))
                    })
                    .transpose()?;
                items.push(NewItem { value, nonce, ts });
            }
            let lists = open(&dir, true)?;
            let r = lists.append(&key, &items)?;
            out.json_line(&r)?;
        }
        ListCommand::Read {
            reverse,
            limit,
            from_offset,
            from_time,
            from_nonce,
            continuation,
            dir,
            key,
        } => {
            let start = match (from_offset, from_time, from_nonce) {
                (Some(o), _, _) => Start::Offset(o),
                (_, Some(t), _) => Start::Time(t),
                (_, _, Some(n)) => Start::Nonce(n),
                _ => Start::End,
            };
            if limit == Some(0) {
                return Err(CliError::Input("--limit must be at least 1".into()));
            }
            let lists = open(&dir, false)?;
            let page = lists.read(
                &key,
                &PageRequest {
                    reverse,
                    limit,
                    start,
                    continuation,
                },
            )?;
            out.json_line(&page)?;
        }
        ListCommand::Info { json, dir, key } => {
            let lists = open(&dir, false)?;
            let info = lists
                .info(&key)?
                .ok_or_else(|| reel::Error::NotFound(format!("list {key}")))?;
            if json {
                out.json_line(&info)?;
            } else {
                let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                out.line(format_args!("key          {}", info.key))?;
                out.line(format_args!("count        {}", info.count))?;
                if info.count == 0 {
                    out.line(format_args!(
                        "offsets      none retained (next {})",
                        info.next_offset
                    ))?;
                } else {
                    out.line(format_args!(
                        "offsets      {} to {} (next {})",
                        info.first_offset,
                        info.next_offset.saturating_sub(1),
                        info.next_offset
                    ))?;
                }
                out.line(format_args!(
                    "first time   {}",
                    opt(info.first_ts.map(|t| t.to_string()))
                ))?;
                out.line(format_args!(
                    "last time    {}",
                    opt(info.last_ts.map(|t| t.to_string()))
                ))?;
                out.line(format_args!(
                    "last nonce   {}",
                    opt(info.last_nonce.map(|n| n.to_string()))
                ))?;
            }
        }
        ListCommand::Keys { dir } => {
            let lists = open(&dir, false)?;
            for k in lists.keys()? {
                out.line(format_args!("{k}"))?;
            }
        }
    }
    Ok(())
}
