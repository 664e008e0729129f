//! `reel kv`: the kv store from the command line.

use crate::cli::KvCommand;
use crate::error::{CliError, CliResult};
use reel::kv::{Condition, KvStore, Path, WatchOptions};
use std::io::Write;

fn path(text: &str) -> CliResult<Path> {
    Ok(text.parse()?)
}

/// Opens an existing store (only `kv set` creates one).
fn open(dir: &std::path::Path, create: bool) -> CliResult<KvStore> {
    let kv = KvStore::builder(dir).create(create).open()?;
    super::warn_recovery(kv.spool());
    Ok(kv)
}

pub fn run(cmd: KvCommand) -> CliResult {
    match cmd {
        KvCommand::Set {
            eval,
            if_rev,
            if_absent,
            dir,
            path: p,
            value,
        } => {
            let p = path(&p)?;
            let v: serde_json::Value = if eval {
                serde_json::from_str(&value)
                    .map_err(|e| CliError::Input(format!("VALUE is not valid JSON (-e): {e}")))?
            } else {
                serde_json::Value::String(value)
            };
            let kv = open(&dir, true)?;
            let rev = match (if_rev, if_absent) {
                (Some(r), _) => kv.compare_and_set(&p, v, Condition::Rev(r))?,
                (None, true) => kv.compare_and_set(&p, v, Condition::Absent)?,
                (None, false) => kv.set(&p, v)?,
            };
            println!("{rev}");
        }
        KvCommand::Get {
            meta,
            recursive,
            dir,
            path: p,
        } => {
            let p = path(&p)?;
            let kv = open(&dir, false)?;
            let out = if recursive {
                kv.tree_json(&p)?
                    .ok_or_else(|| reel::Error::NotFound(p.to_string()))?
            } else {
                let e = kv
                    .get(&p)?
                    .ok_or_else(|| reel::Error::NotFound(p.to_string()))?;
                if meta {
                    serde_json::json!({"value": e.json()?, "rev": e.rev, "ts": e.ts})
                } else {
                    e.json()?
                }
            };
            println!("{out}");
        }
        KvCommand::Del {
            recursive,
            if_rev,
            dir,
            path: p,
        } => {
            let p = path(&p)?;
            let kv = open(&dir, false)?;
            if recursive {
                println!("{}", kv.delete_tree(&p)?);
            } else {
                let rev = match if_rev {
                    Some(r) => kv.delete_if(&p, r)?,
                    None => kv.delete(&p)?,
                };
                println!("{rev}");
            }
        }
        KvCommand::Keys {
            recursive,
            dir,
            path: p,
        } => {
            let p = path(&p)?;
            let kv = open(&dir, false)?;
            let keys = if recursive {
                kv.descendants(&p)?
            } else {
                kv.children(&p)?
            };
            let mut out = std::io::stdout().lock();
            for k in keys {
                writeln!(out, "{k}")?;
            }
        }
        KvCommand::Watch {
            fetch,
            from_rev,
            count,
            dir,
            path: p,
        } => {
            let p = path(&p)?;
            let kv = open(&dir, false)?;
            let mut w = kv.watch(&p, WatchOptions { fetch, from_rev })?;
            let mut out = std::io::stdout().lock();
            let mut n = 0u64;
            while count.is_none_or(|c| n < c) {
                let Some(event) = w.next(None)? else { continue };
                if !matches!(event, reel::kv::WatchEvent::Synced) {
                    n += 1;
                }
                let written = writeln!(out, "{}", event.to_json()?).and_then(|()| out.flush());
                match written {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    other => other?,
                }
            }
        }
    }
    Ok(())
}
