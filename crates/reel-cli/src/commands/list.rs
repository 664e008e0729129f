//! `reel list`: keyed lists from the command line.

use crate::cli::ListCommand;
use crate::error::{CliError, CliResult};
use reel::list::{ListStore, NewItem, PageRequest, Start};
use std::io::BufRead;

/// Opens a lists store (only `list append` creates one).
fn open(dir: &std::path::Path, create: bool) -> CliResult<ListStore> {
    let lists = ListStore::builder(dir).create(create).open()?;
    super::warn_recovery(lists.spool());
    Ok(lists)
}

pub fn run(cmd: ListCommand) -> CliResult {
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
                        n.checked_add(i as u128)
                            .ok_or_else(|| CliError::Input("nonce overflows u128".into()))
                    })
                    .transpose()?;
                items.push(NewItem { value, nonce, ts });
            }
            let lists = open(&dir, true)?;
            let r = lists.append(&key, &items)?;
            println!(
                "{}",
                serde_json::to_string(&r).map_err(std::io::Error::from)?
            );
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
            println!(
                "{}",
                serde_json::to_string(&page).map_err(std::io::Error::from)?
            );
        }
        ListCommand::Info { json, dir, key } => {
            let lists = open(&dir, false)?;
            let info = lists
                .info(&key)?
                .ok_or_else(|| reel::Error::NotFound(format!("list {key}")))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&info).map_err(std::io::Error::from)?
                );
            } else {
                let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                println!("key          {}", info.key);
                println!("count        {}", info.count);
                println!(
                    "offsets      {} to {} (next {})",
                    info.first_offset,
                    info.next_offset.saturating_sub(1),
                    info.next_offset
                );
                println!("first time   {}", opt(info.first_ts.map(|t| t.to_string())));
                println!("last time    {}", opt(info.last_ts.map(|t| t.to_string())));
                println!(
                    "last nonce   {}",
                    opt(info.last_nonce.map(|n| n.to_string()))
                );
            }
        }
        ListCommand::Keys { dir } => {
            let lists = open(&dir, false)?;
            for k in lists.keys()? {
                println!("{k}");
            }
        }
    }
    Ok(())
}
