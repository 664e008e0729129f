//! A view's state on disk: a stack of sorted tables ([`crate::view::table`]), newest
//! first, named by the view's checkpoint (the manifest). A row is a key and either a value
//! or a deletion, which shadows the key in older tables and is dropped when the oldest
//! table is rewritten. The newest table holding a key decides.
//!
//! A checkpoint writes the rows changed since the last one as a new table, which absorbs
//! the newest existing tables while it holds at least 1/[`MERGE_RATIO`] as many rows as
//! the next one (or there would be more than [`MAX_TABLES`]): table sizes grow by at
//! least that ratio from newest to oldest, so there are O(log n) tables and each row is
//! rewritten O(log n) times.

use crate::error::{Error, Result};
use crate::view::ViewFiles;
use crate::view::table::{KeyHash, Table, TableCursor, TableIter, TableWriter};
use std::sync::Arc;

/// A new table absorbs the next older one when it is at least 1/MERGE_RATIO of its size
/// (2: with 4, `reel bench --scale 100k,1m,10m` in one session took 9-22% longer until
/// readable, and its random gets were 16% slower at 1M keys but 23-31% faster at 100k).
pub const MERGE_RATIO: u64 = 2;
/// Tables beyond which a checkpoint merges the newest ones regardless of size.
pub const MAX_TABLES: usize = 12;

/// A row: a key and its value, or `None` for a deletion.
pub type Row = (Vec<u8>, Option<Vec<u8>>);

/// The tables of a view, newest first.
#[derive(Debug, Default)]
pub struct TableSet {
    tables: Vec<(String, Arc<Table>)>,
    /// The next write merges every table into one (see [`TableSet::merge_all_next`]).
    merge_all: bool,
}

/// Stored value of a row: `1` then the value, or `0` alone for a deletion.
fn encode_row_value(out: &mut Vec<u8>, v: Option<&[u8]>) {
    out.clear();
    match v {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v);
        }
        None => out.push(0),
    }
}

/// A stored row value read back: the value, or `None` for a deletion.
fn stored_row<'v>(v: &'v [u8], table: &Table) -> Result<Option<&'v [u8]>> {
    match v {
        [1, value @ ..] => Ok(Some(value)),
        [0] => Ok(None),
        _ => Err(Error::Decode(format!(
            "malformed row in table {}",
            table.path().display()
        ))),
    }
}

impl TableSet {
    /// Every readable row, the newest table's for a key found in several: what a rebuild
    /// can still take from damaged tables ([`Table::salvage`]). A key in the range of a
    /// damaged block is not taken from an older table, whose row the lost one may have
    /// replaced (an old next offset would be given again). Returns the damaged blocks.
    pub fn salvage_rows(&self, mut f: impl FnMut(&[u8], Option<&[u8]>)) -> usize {
        let mut seen = std::collections::HashSet::new();
        let mut shadow: Vec<crate::view::table::KeyRange> = Vec::new();
        for (_, t) in &self.tables {
            let damaged = t.salvage(|k, v| {
                let shadowed = shadow.iter().any(|(from, to)| {
                    k >= from.as_slice() && to.as_deref().is_none_or(|to| k < to)
                });
                if !shadowed
                    && let Ok(row) = stored_row(v, t)
                    && seen.insert(k.to_vec())
                {
                    f(k, row);
                }
            });
            shadow.extend(damaged);
        }
        shadow.len()
    }

    /// Makes the next [`TableSet::write`] merge every table (and its rows) into one, even
    /// with no rows: a lookup then probes one table instead of one per size class.
    pub fn merge_all_next(&mut self) {
        self.merge_all = true;
    }

    /// Number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// True when there are no tables.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Forgets every table (their files are removed after the next checkpoint).
    pub fn clear(&mut self) {
        self.tables.clear();
    }

    /// The file names of the tables, newest first.
    pub fn names(&self) -> Vec<String> {
        self.tables.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The value of `key`'s row: `None` when no table names the key or the newest one
    /// that does deletes it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// Calls `f` on the value of `key`'s row where it lies (no copy); `None` when no
    /// table names the key or the newest one that does deletes it.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let mut f = Some(f);
        let hash = KeyHash::of(key);
        if self.tables.len() > 1 {
            for (_, t) in &self.tables {
                t.prefetch(hash);
            }
        }
        for (_, t) in &self.tables {
            let found = t.get_hashed(key, hash, |v| {
                stored_row(v, t).map(|row| row.map(|value| f.take().map(|f| f(value))))
            })?;
            if let Some(row) = found {
                return Ok(row?.flatten());
            }
        }
        Ok(None)
    }

    /// Rows from `from` on in key order, `newer` (sorted rows changed since the tables
    /// were written) winning over the tables; deletions included.
    pub fn merged<'a>(
        &'a self,
        from: &[u8],
        newer: Box<dyn Iterator<Item = Result<Row>> + 'a>,
    ) -> Result<Merge<'a>> {
        let mut sources = vec![newer];
        for (_, t) in &self.tables {
            let table = t.clone();
            let it: TableIter = t.iter_from(from);
            sources.push(Box::new(it.map(move |e| {
                let (k, v) = e?;
                Ok((k, stored_row(&v, &table)?.map(<[u8]>::to_vec)))
            })));
        }
        Merge::new(sources)
    }

    /// Writes `rows` (sorted, the changes since the tables were written) as a new table
    /// in `files`, merged with the newest tables as the size ratio says, and makes it the
    /// newest table. Nothing changes on disk that a checkpoint names.
    pub fn write(&mut self, files: &ViewFiles, rows: Vec<Row>) -> Result<()> {
        let merge_all = std::mem::take(&mut self.merge_all) && self.tables.len() > 1;
        if rows.is_empty() && !merge_all {
            return Ok(());
        }
        let mut size = rows.len() as u64;
        let mut replace = 0;
        while let Some((_, t)) = self.tables.get(replace)
            && (merge_all
                || size * MERGE_RATIO >= t.entries()
                || self.tables.len() - replace + 1 > MAX_TABLES)
        {
            size += t.entries();
            replace += 1;
        }
        // Deletions are dropped once nothing older can hold their keys.
        let is_oldest = replace == self.tables.len();
        let name = format!("{:016x}.tbl", crate::view::unique_id());
        let path = files.dir.join(&name);
        files
            .storage
            .create_dir_all(&files.dir)
            .map_err(|e| reel_log::Error::io("create directory", &files.dir, e))?;
        let mut w = TableWriter::create(&*files.storage, &path, size)?;
        merge_into(&mut w, rows, &self.tables[..replace], is_oldest)?;
        w.finish()?;
        let table = Arc::new(Table::open(&*files.storage, &path)?);
        self.tables.drain(..replace);
        self.tables.insert(0, (name, table));
        Ok(())
    }

    /// The manifest: `tables u32`, then per table (newest first) name length u32, name,
    /// entries u64.
    pub fn manifest(&self) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(self.tables.len() as u32).to_le_bytes());
        for (name, t) in &self.tables {
            m.extend_from_slice(&(name.len() as u32).to_le_bytes());
            m.extend_from_slice(name.as_bytes());
            m.extend_from_slice(&t.entries().to_le_bytes());
        }
        m
    }

    /// The table file names a manifest lists, if `b` is one.
    pub fn manifest_names(b: &[u8]) -> Option<Vec<String>> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = b.get(at..at + n)?;
            at += n;
            Some(s)
        };
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
        if count as usize > 4 * MAX_TABLES {
            return None;
        }
        let mut names = Vec::new();
        for _ in 0..count {
            let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let name = std::str::from_utf8(take(n)?).ok()?.to_string();
            take(8)?;
            if name.contains('/') || !name.ends_with(".tbl") {
                return None;
            }
            names.push(name);
        }
        (at == b.len()).then_some(names)
    }

    /// Opens the tables a manifest names; fails (changing nothing) when one is missing,
    /// damaged or not what the manifest says.
    pub fn load(files: &ViewFiles, b: &[u8]) -> Result<TableSet> {
        let bad = || Error::Decode("view checkpoint manifest is malformed".into());
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = b.get(at..at + n).ok_or_else(bad)?;
            at += n;
            Ok(s)
        };
        let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?);
        if count as usize > 4 * MAX_TABLES {
            return Err(bad());
        }
        let mut tables = Vec::new();
        for _ in 0..count {
            let n = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
            let name = std::str::from_utf8(take(n)?)
                .map_err(|_| bad())?
                .to_string();
            let entries = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad())?);
            if name.contains('/') || !name.ends_with(".tbl") {
                return Err(bad());
            }
            let table = Table::open(&*files.storage, &files.dir.join(&name))?;
            if table.entries() != entries {
                return Err(bad());
            }
            tables.push((name, Arc::new(table)));
        }
        if at != b.len() {
            return Err(bad());
        }
        Ok(TableSet {
            tables,
            merge_all: false,
        })
    }
}

/// Writes `rows` (sorted) merged with `tables` (newest first) into `w`: per key, the
/// rows' entry, else the newest table's; deletions left out when `drop_deletions`.
/// Table entries are copied as stored, without decoding them or allocating for each.
fn merge_into(
    w: &mut TableWriter,
    rows: Vec<Row>,
    tables: &[(String, Arc<Table>)],
    drop_deletions: bool,
) -> Result<()> {
    let mut cursors: Vec<TableCursor> = tables.iter().map(|(_, t)| t.cursor()).collect();
    let mut live = cursors
        .iter_mut()
        .map(TableCursor::advance)
        .collect::<Result<Vec<bool>>>()?;
    let mut rows = rows.into_iter().peekable();
    let (mut key, mut value) = (Vec::new(), Vec::new());
    loop {
        // The table holding the smallest key; of equal keys, the newest table's.
        let mut best: Option<usize> = None;
        for (i, c) in cursors.iter().enumerate() {
            if live[i] && best.is_none_or(|b| c.key() < cursors[b].key()) {
                best = Some(i);
            }
        }
        let row_first = match (rows.peek(), best) {
            (Some((k, _)), Some(b)) => k.as_slice() <= cursors[b].key(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return Ok(()),
        };
        let from = if row_first {
            let (k, v) = rows.next().expect("peeked");
            key = k;
            if v.is_some() || !drop_deletions {
                encode_row_value(&mut value, v.as_deref());
                w.add(&key, &value)?;
            }
            0
        } else {
            let b = best.expect("a table holds the smallest key");
            let c = &cursors[b];
            key.clear();
            key.extend_from_slice(c.key());
            // Copied as stored: checked, not decoded and encoded again.
            let deleted = stored_row(c.value(), &tables[b].1)?.is_none();
            if !(deleted && drop_deletions) {
                w.add(&key, c.value())?;
            }
            b
        };
        // Older entries of the same key are shadowed: skip them.
        for (i, c) in cursors.iter_mut().enumerate().skip(from) {
            if live[i] && c.key() == key.as_slice() {
                live[i] = c.advance()?;
            }
        }
    }
}

type Source<'a> = Box<dyn Iterator<Item = Result<Row>> + 'a>;

/// K-way merge of sorted sources, newest first: yields each key once, from the newest
/// source holding it.
pub struct Merge<'a> {
    sources: Vec<Source<'a>>,
    heads: Vec<Option<Row>>,
}

impl std::fmt::Debug for Merge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merge")
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Merge<'a> {
    fn new(mut sources: Vec<Source<'a>>) -> Result<Merge<'a>> {
        let heads = sources
            .iter_mut()
            .map(|s| s.next().transpose())
            .collect::<Result<Vec<_>>>()?;
        Ok(Merge { sources, heads })
    }
}

impl Iterator for Merge<'_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<usize> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some((k, _)) = h
                && best.is_none_or(|b| self.heads[b].as_ref().is_some_and(|(bk, _)| k < bk))
            {
                best = Some(i);
            }
        }
        let best = best?;
        let out = self.heads[best].take()?;
        for i in 0..self.heads.len() {
            let same = i == best || self.heads[i].as_ref().is_some_and(|(k, _)| *k == out.0);
            if same {
                match self.sources[i].next().transpose() {
                    Ok(h) => self.heads[i] = h,
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        Some(Ok(out))
    }
}

/// Reads every block of every table the checkpoints of `spool`'s views name (views kept
/// in tables: kv, lists, and user views that use [`TableSet`]) and reports what is
/// damaged or missing. Read-only.
pub fn verify_views(spool: &crate::Spool) -> Result<Vec<reel_log::Damage>> {
    let storage = spool.log().storage();
    let views = crate::view::checkpoint::views_dir(spool.dir());
    let mut damage = Vec::new();
    let Ok(names) = storage.list_dir(&views) else {
        return Ok(damage);
    };
    for view in names.iter().filter_map(|n| n.to_str()) {
        // A checkpoint written meanwhile may have replaced (and removed) the tables
        // this pass read: a pass that found damage under a checkpoint that changed is
        // repeated.
        for _attempt in 0..3 {
            let found = verify_view(spool, view)?;
            let again = crate::view::Checkpoint::read(&**storage, spool.dir(), view)?;
            if found.1.is_empty() || again.map(|c| c.state) == found.0 {
                damage.extend(found.1);
                break;
            }
        }
    }
    Ok(damage)
}

/// One pass of [`verify_views`] over one view: the checkpoint state it read, and the
/// damage it found.
fn verify_view(
    spool: &crate::Spool,
    view: &str,
) -> Result<(Option<Vec<u8>>, Vec<reel_log::Damage>)> {
    let storage = spool.log().storage();
    let views = crate::view::checkpoint::views_dir(spool.dir());
    let mut damage = Vec::new();
    {
        let cp = match crate::view::Checkpoint::read_checked(&**storage, spool.dir(), view)? {
            None => return Ok((None, damage)),
            Some(Ok(cp)) => cp,
            Some(Err(why)) => {
                let what = if view == crate::list::LISTS_VIEW && spool.oldest_seq() > 0 {
                    format!(
                        "{why} (the checkpoint of view `lists`: retention dropped records, \
                         so the next offset and last nonce of a list all of whose items were \
                         dropped lived only in this view, and appends are refused: restore \
                         views/lists from a copy, or rebuild without them with `reel view \
                         rebuild --force DIR lists`)"
                    )
                } else {
                    format!(
                        "{why} (the checkpoint of view `{view}`, a cache of the log: no \
                         record is lost; the view is rebuilt from the log)"
                    )
                };
                damage.push(reel_log::Damage {
                    path: crate::view::checkpoint::checkpoint_path(spool.dir(), view),
                    offset: 0,
                    what,
                    resume_seq: None,
                });
                return Ok((None, damage));
            }
        };
        let Some(tables) = TableSet::manifest_names(&cp.state) else {
            return Ok((Some(cp.state), damage));
        };
        for name in tables {
            let path = views.join(view).join(&name);
            let checked = Table::open(&**storage, &path).and_then(|t| {
                let t = Arc::new(t);
                t.iter_from(&[]).try_for_each(|row| row.map(|_| ()))?;
                t.verify_key_hash()
            });
            if let Err(e) = checked {
                let (offset, what) = match e {
                    Error::Log(reel_log::Error::Corrupt { offset, reason, .. }) => (offset, reason),
                    other => (0, other.to_string()),
                };
                // The lists view also keeps what retention dropped from the log: the
                // next offset and last nonce of a list whose items are all gone.
                let what = if view == crate::list::LISTS_VIEW && spool.oldest_seq() > 0 {
                    format!(
                        "{what} (a table of view `lists`: no record is lost, but retention \
                         dropped records, so the next offset and last nonce of a list all of \
                         whose items were dropped live only in this view: restore \
                         views/lists from a copy, or rebuild without them with `reel view \
                         rebuild --force DIR lists`)"
                    )
                } else {
                    format!(
                        "{what} (a table of view `{view}`, a cache of the log: no record is \
                         lost; `reel view rebuild DIR {view}` rewrites it)"
                    )
                };
                damage.push(reel_log::Damage {
                    path,
                    offset,
                    what,
                    resume_seq: None,
                });
            }
        }
        Ok((Some(cp.state), damage))
    }
}
