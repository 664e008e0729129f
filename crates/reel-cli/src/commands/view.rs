//! `reel view` and `reel compact`. `view list` prints `reel::view::all_views`.

use crate::cli::{CompactArgs, ViewCommand};
use crate::error::{CliError, CliResult};
use crate::output::{Output, note};
use crate::units::{fmt_bytes, plural};
use reel::kv::{KV_VIEW, KvStore};
use reel::list::{LISTS_VIEW, ListStore};
use reel::view::{Checkpoint, ViewInfo, all_views};
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub fn compact(a: CompactArgs, out: &mut Output) -> CliResult {
    let spool = super::open_spool(&a.dir, Default::default())?;
    let r = spool.log().compact(Duration::from_secs(a.grace))?;
    out.line(format_args!(
        "compacted {} of {}: dropped {}, {} -> {}",
        r.rewritten,
        plural(r.segments as u64, "sealed segment"),
        plural(r.dropped, "record"),
        fmt_bytes(r.bytes_before),
        fmt_bytes(r.bytes_after)
    ))?;
    Ok(())
}

pub fn run(cmd: ViewCommand, out: &mut Output) -> CliResult {
    match cmd {
        ViewCommand::List { json, dir } => {
            let views: Vec<ViewInfo> = match crate::remote::target(&dir)? {
                Some(r) => serde_json::from_value(crate::remote::views(&r)?)?,
                None => all_views(&super::open_spool_for_reading(&dir)?)?,
            };
            if json {
                out.json_line(&views)?;
            } else if views.is_empty() {
                out.line(format_args!("no views"))?;
            } else {
                out.line(format_args!(
                    "{:<20} {:>8} {:>14} {:>12}",
                    "NAME", "VERSION", "SINCE", "LAG"
                ))?;
                for v in views {
                    let since = v.since.map_or("-".to_string(), |s| s.to_string());
                    let version = if v.version == 0 {
                        "-".to_string()
                    } else {
                        v.version.to_string()
                    };
                    out.line(format_args!(
                        "{:<20} {:>8} {:>14} {:>12}",
                        v.name, version, since, v.lag
                    ))?;
                }
            }
        }
        ViewCommand::Compact { dir, name } => {
            let spool = super::open_spool(&dir, Default::default())?;
            let t = std::time::Instant::now();
            let (before, after) = match name.as_str() {
                KV_VIEW => KvStore::on_spool(&spool)?.view().compact()?,
                LISTS_VIEW => ListStore::on_spool(&spool)?.view().compact()?,
                other => {
                    return Err(CliError::Input(format!(
                        "view `{other}` cannot be compacted here: only the views kept in tables, kv and lists, can"
                    )));
                }
            };
            out.line(format_args!(
                "compacted view {name}: {} -> {} in {:.2} s",
                plural(before as u64, "table"),
                plural(after as u64, "table"),
                t.elapsed().as_secs_f64()
            ))?;
        }
        ViewCommand::Rebuild { force, dir, name } => {
            let spool = super::open_spool(&dir, Default::default())?;
            let tty = std::io::stderr().is_terminal();
            let mut progress = |done: u64, total: u64| {
                if tty {
                    let pct = done.saturating_mul(100).checked_div(total).unwrap_or(100);
                    let bar: String = (0..30)
                        .map(|i| if i * 100 / 30 < pct { '#' } else { '.' })
                        .collect();
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\rrebuilding {name}: [{bar}] {pct:>3}% {done}/{total}");
                    let _ = err.flush();
                }
            };
            let t = std::time::Instant::now();
            match name.as_str() {
                KV_VIEW => KvStore::on_spool(&spool)?
                    .view()
                    .rebuild_with(force, &mut progress)?,
                LISTS_VIEW => ListStore::on_spool(&spool)?
                    .view()
                    .rebuild_with(force, &mut progress)?,
                other => {
                    let known = all_views(&spool)?;
                    if !known.iter().any(|v| v.name == other) {
                        let names: Vec<String> = known.into_iter().map(|v| v.name).collect();
                        return Err(CliError::Input(format!(
                            "unknown view `{other}` (views here: {}; built-in: kv, lists)",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        )));
                    }
                    Checkpoint::remove(&**spool.log().storage(), spool.dir(), other)?;
                    out.line(format_args!(
                        "view {other} reset: its application rebuilds it when it next opens it"
                    ))?;
                    return Ok(());
                }
            }
            if tty {
                note(format_args!(""));
            }
            out.line(format_args!(
                "rebuilt view {name} from {} in {:.2} s",
                plural(spool.status()?.records, "record"),
                t.elapsed().as_secs_f64()
            ))?;
        }
    }
    Ok(())
}
