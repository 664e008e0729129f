//! `reel kv`: the kv store from the command line.

use crate::cli::KvCommand;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use reel::kv::{Condition, KvStore, Path, WatchOptions};

fn path(text: &str) -> CliResult<Path> {
    Ok(text.parse()?)
}

/// Opens a store to change it (only `kv set` creates one).
fn open(dir: &std::path::Path, create: bool) -> CliResult<KvStore> {
    Ok(KvStore::builder(dir).create(create).open()?)
}

/// Opens an existing store to read it (also on read-only media and snapshots).
fn open_read_only(dir: &std::path::Path) -> CliResult<KvStore> {
    Ok(KvStore::on_spool(&super::open_spool_for_reading(dir)?)?)
}

/// The store directory (or server URL) of a kv command.
fn dir_of(cmd: &KvCommand) -> &std::path::Path {
    match cmd {
        KvCommand::Set { dir, .. }
        | KvCommand::Get { dir, .. }
        | KvCommand::Del { dir, .. }
        | KvCommand::Keys { dir, .. }
        | KvCommand::Watch { dir, .. } => dir,
    }
}

pub fn run(cmd: KvCommand, out: &mut Output) -> CliResult {
    if let Some(r) = crate::remote::target(dir_of(&cmd))? {
        // Checked here as locally: a bad path is refused before anything is sent.
        let (KvCommand::Set { path: p, .. }
        | KvCommand::Get { path: p, .. }
        | KvCommand::Del { path: p, .. }
        | KvCommand::Keys { path: p, .. }
        | KvCommand::Watch { path: p, .. }) = &cmd;
        path(p)?;
        return crate::remote::kv(&r, &cmd, out);
    }
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
                reel::parse_json(value.as_bytes())
                    .map_err(|e| CliError::Input(format!("VALUE is not valid JSON (-e): {e}")))?
            } else {
                serde_json::Value::String(value)
            };
            let tier = crate::tier::writer(&dir)?;
            let kv = open(&dir, true)?;
            let rev = match (if_rev, if_absent) {
                (Some(r), _) => kv.compare_and_set(&p, v, Condition::Rev(r))?,
                (None, true) => kv.compare_and_set(&p, v, Condition::Absent)?,
                (None, false) => kv.set(&p, v)?,
            };
            if let Some(w) = &tier {
                crate::tier::upload(w, kv.spool().log())?;
            }
            out.line(format_args!("{rev}"))?;
        }
        KvCommand::Get {
            meta,
            recursive,
            dir,
            path: p,
        } => {
            let p = path(&p)?;
            let kv = open_read_only(&dir)?;
            let value = if recursive {
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
            out.json_line(&value)?;
        }
        KvCommand::Del {
            recursive,
            if_rev,
            dir,
            path: p,
        } => {
            let p = path(&p)?;
            let tier = crate::tier::writer(&dir)?;
            let kv = open(&dir, false)?;
            let shown = if recursive {
                kv.delete_tree(&p)?.to_string()
            } else {
                match if_rev {
                    Some(r) => kv.delete_if(&p, r)?,
                    None => kv.delete(&p)?,
                }
                .to_string()
            };
            if let Some(w) = &tier {
                crate::tier::upload(w, kv.spool().log())?;
            }
            out.line(format_args!("{shown}"))?;
        }
        KvCommand::Keys {
            recursive,
            json,
            dir,
            path: p,
        } => {
            let p = path(&p)?;
            let kv = open_read_only(&dir)?;
            let keys = if recursive {
                kv.descendants(&p)?
            } else {
                kv.children(&p)?
            };
            if json {
                let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
                out.json_line(&texts)?;
            } else {
                for k in keys {
                    out.line(format_args!("{k}"))?;
                }
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
            let kv = open_read_only(&dir)?;
            let mut w = kv.watch(&p, WatchOptions { fetch, from_rev })?;
            let mut n = 0u64;
            while count.is_none_or(|c| n < c) {
                let Some(event) = w.next(Some(std::time::Duration::from_secs(1)))? else {
                    // Quiet: notice a consumer that went away (`| head`) all the same.
                    if out.consumer_gone() {
                        return Ok(());
                    }
                    continue;
                };
                if !matches!(event, reel::kv::WatchEvent::Synced) {
                    n += 1;
                }
                out.json_line(&event.to_json()?)?;
                out.flush()?;
            }
        }
    }
    Ok(())
}
