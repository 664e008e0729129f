//! `reel view` and `reel compact`.

use crate::cli::{CompactArgs, ViewCommand};
use crate::error::{CliError, CliResult};
use crate::units::fmt_bytes;
use reel::kv::{KV_VIEW, KvStore};
use reel::list::{LISTS_VIEW, ListStore};
use reel::view::{Checkpoint, list_views};
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub fn compact(a: CompactArgs) -> CliResult {
    let spool = super::open_spool(&a.dir, Default::default())?;
    let r = spool.log().compact(Duration::from_secs(a.grace))?;
    println!(
        "compacted {} of {} sealed segments: dropped {} records, {} -> {}",
        r.rewritten,
        r.segments,
        r.dropped,
        fmt_bytes(r.bytes_before),
        fmt_bytes(r.bytes_after)
    );
    Ok(())
}

pub fn run(cmd: ViewCommand) -> CliResult {
    match cmd {
        ViewCommand::List { json, dir } => {
            let spool = super::open_spool(&dir, Default::default())?;
            let views = list_views(&spool)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&views).map_err(std::io::Error::from)?
                );
            } else if views.is_empty() {
                println!("no views");
            } else {
                println!(
                    "{:<20} {:>8} {:>14} {:>12}",
                    "NAME", "VERSION", "SINCE", "LAG"
                );
                for v in views {
                    let since = v.since.map_or("-".to_string(), |s| s.to_string());
                    println!(
                        "{:<20} {:>8} {:>14} {:>12}",
                        v.name, v.version, since, v.lag
                    );
                }
            }
        }
        ViewCommand::Rebuild { dir, name } => {
            let spool = super::open_spool(&dir, Default::default())?;
            let tty = std::io::stderr().is_terminal();
            let mut progress = |done: u64, total: u64| {
                if tty {
                    let pct = (done * 100).checked_div(total).unwrap_or(100);
                    let bar: String = (0..30)
                        .map(|i| if i * 100 / 30 < pct { '#' } else { '.' })
                        .collect();
                    eprint!("\rrebuilding {name}: [{bar}] {pct:>3}% {done}/{total}");
                    let _ = std::io::stderr().flush();
                }
            };
            let t = std::time::Instant::now();
            match name.as_str() {
                KV_VIEW => KvStore::on_spool(&spool)?.view().rebuild(&mut progress)?,
                LISTS_VIEW => ListStore::on_spool(&spool)?.view().rebuild(&mut progress)?,
                other => {
                    let known = list_views(&spool)?;
                    if !known.iter().any(|v| v.name == other) {
                        let names: Vec<String> = known.into_iter().map(|v| v.name).collect();
                        return Err(CliError::Input(format!(
                            "unknown view `{other}` (views with a checkpoint here: {}; built-in: kv, lists)",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        )));
                    }
                    Checkpoint::remove(&**spool.log().storage(), spool.dir(), other)?;
                    println!(
                        "view {other} reset: its application rebuilds it when it next opens it"
                    );
                    return Ok(());
                }
            }
            if tty {
                eprintln!();
            }
            println!(
                "rebuilt view {name} from {} records in {:.2} s",
                spool.status()?.records,
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
