//! The catalog of a spool's views: those with a checkpoint, those whose folder holds none
//! readable, and the built-in views whose records the spool holds.

use super::{View, ViewInfo, list_views};
use crate::error::Result;
use crate::kv::{KV_VIEW, KvState};
use crate::list::{LISTS_VIEW, ListIndex};
use crate::spool::Spool;

/// Every view of the spool, sorted by name: each folder under `DIR/views/` (with its
/// checkpoint's version, `since` and lag, or version 0 and no `since` when it holds no
/// readable checkpoint), and each built-in view (`kv`, `lists`) whose records the spool
/// holds even though it has no checkpoint yet (a view is checkpointed by the process that
/// applied it; `kv set` alone never applies it). Finding those records reads record
/// headers from the oldest record until one of each kind turns up.
pub fn all_views(spool: &Spool) -> Result<Vec<ViewInfo>> {
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
) -> Result<(bool, bool)> {
    let (mut kv, mut lists) = (false, false);
    let mut reader = spool.log().reader(spool.oldest_seq());
    while want_kv || want_lists {
        let batch = reader.read_batch(8192)?;
        if batch.is_empty() {
            break;
        }
        batch.for_each(|r| {
            if r.encoding == crate::Encoding::ListItem.tag() {
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
