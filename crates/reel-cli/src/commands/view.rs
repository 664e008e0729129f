//! `reel view` and `reel compact`.
//!
//! `view list` shows every view a spool has: each folder under `DIR/views/` (with its
//! checkpoint's version, `since` and lag, or `-` when it holds no readable checkpoint),
//! and each built-in view (`kv`, `lists`) whose records the spool holds even though it
//! has no checkpoint yet (a view is checkpointed by the process that applied it, at
//! most every 30 s; `kv set` alone never applies it). Finding those records reads
//! record headers from the oldest record until one of each kind turns up.

use crate::cli::{CompactArgs, ViewCommand};
use crate::error::{CliError, CliResult};
use crate::output::{Output, note};
use crate::units::{fmt_bytes, plural};
use reel::Spool;
use reel::kv::{KV_VIEW, KvState, KvStore};
use reel::list::{LISTS_VIEW, ListIndex, ListStore};
use reel::view::{Checkpoint, View, ViewInfo, list_views};
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

/// Every view of the spool (see the module documentation), sorted by name.
fn all_views(spool: &Spool) -> CliResult<Vec<ViewInfo>> {
    let mut views = list_views(spool)?;
    let next = spool.next_seq();
    let oldest = spool.oldest_seq().min(next);
    // Folders under views/ without a readable checkpoint.
    let dir = spool.dir().join("views");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && !views.iter().any(|v| v.name == name) {
                views.push(ViewInfo {
                    name,
                    version: 0,
                    since: None,
                    lag: next - oldest,
                });
            }
        }
    }
    let want_kv = !views.iter().any(|v| v.name == KV_VIEW);
    let want_lists = !views.iter().any(|v| v.name == LISTS_VIEW);
    if want_kv || want_lists {
        let (kv, lists) = built_in_records(spool, want_kv, want_lists)?;
        let pending = |version| ViewInfo {
            name: String::new(),
            version,
            since: None,
            lag: next - oldest,
        };
        if kv {
            views.push(ViewInfo {
                name: KV_VIEW.into(),
                ..pending(KvState::default().version())
            });
        }
        if lists {
            views.push(ViewInfo {
                name: LISTS_VIEW.into(),
                ..pending(ListIndex::default().version())
            });
        }
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(views)
}

/// Whether the spool holds records the kv view applies (keyed values and tombstones)
/// and list items, reading from the oldest record until both questions are answered.
fn built_in_records(
    spool: &Spool,
    mut want_kv: bool,
    mut want_lists: bool,
) -> CliResult<(bool, bool)> {
    let (mut kv, mut lists) = (false, false);
    let mut reader = spool.log().reader(spool.oldest_seq());
    while want_kv || want_lists {
        let batch = reader.read_batch(8192)?;
        if batch.is_empty() {
            break;
        }
        batch.for_each(|r| {
            if r.encoding == reel::Encoding::ListItem.tag() {
                lists |= want_lists;
                want_lists = false;
            } else if r.key.is_some() {
                kv |= want_kv;
                want_kv = false;
            }
        });
    }
    Ok((kv, lists))
}

pub fn run(cmd: ViewCommand, out: &mut Output) -> CliResult {
    match cmd {
        ViewCommand::List { json, dir } => {
            let spool = super::open_spool_for_reading(&dir)?;
            let views = all_views(&spool)?;
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
        ViewCommand::Rebuild { dir, name } => {
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
                KV_VIEW => KvStore::on_spool(&spool)?.view().rebuild(&mut progress)?,
                LISTS_VIEW => ListStore::on_spool(&spool)?.view().rebuild(&mut progress)?,
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
