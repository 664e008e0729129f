//! The kv store: the latest value per hierarchical path, as a view over a spool whose
//! records are writes (key = the path's canonical text, value = the new value) and
//! deletions (tombstones). Revisions are seqs. Compare-and-set decides under the writer
//! lock on the view caught up to that very moment, so of two processes racing on one
//! revision exactly one wins. Watches read the log itself, so they never drop events.
//!
//! A kv store is a store of kind kv ([`StoreKind::Kv`], fixed at creation) and always
//! uses the `compact` when-full policy: compaction keeps the latest record of every
//! path, so a value is never dropped while it is live. Answers never outlive their
//! record: on a log that dropped segments (an untyped store from before kinds), values
//! whose records are gone are forgotten before any read.

pub mod path;
mod state;
mod watch;

pub use path::{Element, Path, PathSyntax, TotalF64};
pub use state::{KV_VIEW, KvEntry, KvState};
pub use watch::{Watch, WatchEvent, WatchOptions};

use crate::error::{Error, Result};
use crate::record::NewRecord;
use crate::spool::Spool;
use crate::value::{TAG_TOMBSTONE, Value};
use crate::view::ViewHandle;
use reel_log::storage::Storage;
use reel_log::{Durability, KvPathSyntax, OwnedEntry, StoreKind, WhenFull};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The path syntax new kv stores record their keys in (`reel.meta` byte 14).
pub const PATH_SYNTAX: KvPathSyntax = KvPathSyntax::DistKv;

/// The most elements a path written to a kv store may have. A recursive get answers
/// with one JSON object per element, nested: JSON parsers bound nesting (serde_json at
/// 128 levels, counting the value under the deepest path) and serialisers recurse, so
/// an unbounded path would make its subtree unreadable, or crash the reader.
pub const MAX_DEPTH: usize = 100;

impl Path {
    /// Fails when the path has more than [`MAX_DEPTH`] elements: writes refuse such
    /// paths (reads and deletes still take them, so that a store written before the
    /// limit can be cleaned up).
    pub fn check_depth(&self) -> Result<()> {
        if self.0.len() <= MAX_DEPTH {
            return Ok(());
        }
        let mut shown = self.to_string();
        if shown.len() > 60 {
            let cut = (0..=60)
                .rev()
                .find(|&i| shown.is_char_boundary(i))
                .unwrap_or(0);
            shown.truncate(cut);
            shown.push('…');
        }
        Err(Error::InvalidArgument(format!(
            "path `{shown}` has {} elements: a kv path has at most {MAX_DEPTH}",
            self.0.len()
        )))
    }
}

/// The condition of a compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The path currently has this revision.
    Rev(u64),
    /// The path has no value.
    Absent,
}

/// A kv store in a directory. Cheap to clone.
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// use reel::kv::{Condition, KvStore, Path};
/// let kv = KvStore::open(tmp.path())?;
/// let p: Path = "config.db:.host".parse()?;
/// let rev = kv.set(&p, serde_json::json!("db1"))?;
/// assert_eq!(kv.get(&p)?.unwrap().json()?, "db1");
/// // Compare-and-set: only if nobody changed it since.
/// kv.compare_and_set(&p, serde_json::json!("db2"), Condition::Rev(rev))?;
/// assert!(kv.compare_and_set(&p, serde_json::json!("db3"), Condition::Rev(rev)).is_err());
/// # Ok::<(), reel::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct KvStore {
    spool: Spool,
    view: ViewHandle<KvState>,
    /// The oldest seq the view's entries were last checked against (see `KvStore::read`).
    checked_oldest: Arc<AtomicU64>,
}

/// Options for opening a kv store; see [`KvStore::builder`].
#[derive(Debug, Clone)]
pub struct KvBuilder {
    dir: std::path::PathBuf,
    create: bool,
    read_only: bool,
    durability: Durability,
    capacity: Option<u64>,
    storage: Option<Arc<dyn Storage>>,
}

impl KvBuilder {
    /// Create the store (with the `compact` policy) when the directory holds none
    /// (default true).
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }
    /// Never write to the directory (works on directories the user may not write).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Durability of writes (default none).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
    /// Capacity of a new store in bytes (default 1 GiB).
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }
    /// Storage backend (tests).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }
    /// Opens the store: one of kind kv, or an untyped one that fits (a writable open
    /// then records the kind, see [`Spool::set_kind`]); anything else fails with
    /// [`Error::WrongKind`] or [`Error::CannotAdopt`].
    pub fn open(self) -> Result<KvStore> {
        let mut b = Spool::builder(&self.dir)
            .kind(StoreKind::Kv(PATH_SYNTAX))
            .capacity(self.capacity.unwrap_or(reel_log::DEFAULT_CAPACITY))
            .when_full(WhenFull::Compact)
            .create(self.create && !self.read_only)
            .read_only(self.read_only)
            .durability(self.durability);
        if let Some(s) = self.storage {
            b = b.storage(s);
        }
        KvStore::on_spool(&b.open()?)
    }
}

impl KvStore {
    /// Opens the store in `dir`, creating it (with the `compact` policy) if needed.
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<KvStore> {
        Self::builder(dir).open()
    }

    /// Options for opening a store.
    pub fn builder(dir: impl AsRef<std::path::Path>) -> KvBuilder {
        KvBuilder {
            dir: dir.as_ref().to_path_buf(),
            create: true,
            read_only: false,
            durability: Durability::None,
            capacity: None,
            storage: None,
        }
    }

    /// A kv store over an already open spool, which must be a kv store or an untyped
    /// one that fits (see [`KvBuilder::open`]).
    pub fn on_spool(spool: &Spool) -> Result<KvStore> {
        spool.ensure_kind(StoreKind::Kv(PATH_SYNTAX))?;
        let syntax = match spool.kind() {
            StoreKind::Kv(syntax) => syntax,
            _ => KvPathSyntax::Legacy,
        };
        Ok(KvStore {
            spool: spool.clone(),
            view: ViewHandle::open(spool, KvState::with_syntax(syntax.into()))?,
            checked_oldest: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How this store writes paths as record keys: [`KvPathSyntax::DistKv`] for stores
    /// created with kinds, [`KvPathSyntax::Legacy`] for those created before.
    pub fn path_syntax(&self) -> KvPathSyntax {
        match self.spool.kind() {
            StoreKind::Kv(syntax) => syntax,
            _ => KvPathSyntax::Legacy,
        }
    }

    /// `path` as this store's record key (its canonical text in the store's syntax).
    pub fn key(&self, path: &Path) -> Result<String> {
        path.to_key(self.path_syntax().into())
    }

    /// The path a record key of this store names.
    pub fn path_of(&self, key: &str) -> Result<Path> {
        Path::from_key(key, self.path_syntax().into())
    }

    /// Reads the view caught up with every committed write, after forgetting values
    /// whose records retention dropped (only possible on a log that is not compact; on
    /// a compact log the oldest seq never moves and this costs two atomic loads).
    fn read<R>(&self, f: impl FnOnce(&KvState) -> R) -> Result<R> {
        let oldest = self.spool.oldest_seq();
        if oldest > self.checked_oldest.load(Ordering::Acquire) {
            let mut st = self.view.lock_at(self.spool.next_seq())?;
            st.view_mut().forget_below(oldest);
            self.checked_oldest.fetch_max(oldest, Ordering::AcqRel);
        }
        self.view.read(f)
    }

    /// [`KvStore::read`] for lookups that can fail: a damaged view table (a cache of the
    /// log) is reported once in the log output, the view is rebuilt from the log, and
    /// the lookup runs again; damage anywhere else is the caller's error.
    fn lookup<R>(&self, f: impl Fn(&KvState) -> Result<R>) -> Result<R> {
        match self.read(&f)? {
            Err(Error::Log(reel_log::Error::Corrupt {
                path,
                offset,
                reason,
            })) if path.starts_with(crate::view::checkpoint::views_dir(self.spool.dir())) => {
                tracing::warn!(
                    dir = %self.spool.dir().display(),
                    "kv view table {} is damaged at byte {offset} ({reason}): rebuilding the view from the log",
                    path.display()
                );
                self.view.rebuild(|_, _| {})?;
                self.read(&f)?
            }
            other => other,
        }
    }

    /// The spool underneath.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The view (for checkpoints and rebuilds).
    pub fn view(&self) -> &ViewHandle<KvState> {
        &self.view
    }

    /// The entry at `path`, after catching up with every committed write.
    pub fn get(&self, path: &Path) -> Result<Option<KvEntry>> {
        let key = self.key(path)?;
        self.lookup(|s| s.get(&key))
    }

    /// Calls `f` on the entry at a record key (see [`KvStore::key`]) without copying it.
    pub fn get_with<R>(&self, key: &str, f: impl FnOnce(Option<&KvEntry>) -> R) -> Result<R> {
        let e = self.lookup(|s| s.get(key))?;
        Ok(f(e.as_ref()))
    }

    /// True when `path` holds a value.
    pub fn contains(&self, path: &Path) -> Result<bool> {
        let key = self.key(path)?;
        Ok(self.lookup(|s| s.get(&key))?.is_some())
    }

    /// Stores `value` at `path`; returns the new revision.
    pub fn set(&self, path: &Path, value: impl Into<Value>) -> Result<u64> {
        path.check_depth()?;
        let rec = NewRecord::new(value).key(self.key(path)?);
        Ok(self.spool.log().append(&[rec.as_entry()])?.start)
    }

    /// Stores many values in one append (one lock, one write); returns their
    /// revisions, in order.
    pub fn set_batch<'a>(
        &self,
        writes: impl IntoIterator<Item = (&'a Path, Value)>,
    ) -> Result<std::ops::Range<u64>> {
        let records: Vec<NewRecord> = writes
            .into_iter()
            .map(|(p, v)| {
                p.check_depth()?;
                Ok(NewRecord::new(v).key(self.key(p)?))
            })
            .collect::<Result<_>>()?;
        let entries: Vec<reel_log::Entry<'_>> = records.iter().map(NewRecord::as_entry).collect();
        Ok(self.spool.log().append(&entries)?)
    }

    /// Stores `value` at `path` only if `cond` holds at that moment; otherwise fails with
    /// [`Error::Conflict`] and stores nothing.
    pub fn compare_and_set(
        &self,
        path: &Path,
        value: impl Into<Value>,
        cond: Condition,
    ) -> Result<u64> {
        path.check_depth()?;
        let key = self.key(path)?;
        let value = value.into();
        let entry = OwnedEntry {
            key: Some(key.as_str().into()),
            encoding: value.encoding().tag(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        };
        self.guarded(&key, &path.to_string(), Some(cond), vec![entry])
    }

    /// Deletes the value at `path` (a tombstone in the log); [`Error::NotFound`] if absent.
    pub fn delete(&self, path: &Path) -> Result<u64> {
        let key = self.key(path)?;
        self.guarded(&key, &path.to_string(), None, vec![tombstone(&key)])
    }

    /// Deletes only if `path` has revision `rev`.
    pub fn delete_if(&self, path: &Path, rev: u64) -> Result<u64> {
        let key = self.key(path)?;
        self.guarded(
            &key,
            &path.to_string(),
            Some(Condition::Rev(rev)),
            vec![tombstone(&key)],
        )
    }

    /// Deletes `path` and everything below it, atomically; returns how many values.
    pub fn delete_tree(&self, path: &Path) -> Result<usize> {
        match self.delete_tree_checked(path, |_| true)? {
            Ok(n) => Ok(n),
            Err(p) => Err(Error::InvalidArgument(format!("{p} may not be deleted"))),
        }
    }

    /// Like [`KvStore::delete_tree`], when `allowed` holds for every path in the subtree
    /// (decided under the writer lock, so no path added meanwhile escapes the check);
    /// otherwise deletes nothing and returns the first path it refused.
    pub fn delete_tree_checked(
        &self,
        path: &Path,
        allowed: impl Fn(&Path) -> bool,
    ) -> Result<std::result::Result<usize, Path>> {
        let key = self.key(path)?;
        let shown = path.to_string();
        let view = &self.view;
        let (_, n) = self
            .spool
            .log()
            .append_guarded(self.spool.log().durability(), |end| {
                let mut st = view.lock_at(end)?;
                st.view_mut().forget_below(self.spool.oldest_seq());
                let subtree = st.view().subtree(&key)?;
                if subtree.is_empty() {
                    return Err(Error::NotFound(shown.clone()));
                }
                for (k, _) in &subtree {
                    let p = self.path_of(k)?;
                    if !allowed(&p) {
                        return Ok((Vec::new(), Err(p)));
                    }
                }
                let doomed: Vec<OwnedEntry> = subtree.iter().map(|(k, _)| tombstone(k)).collect();
                let n = doomed.len();
                Ok((doomed, Ok(n)))
            })?;
        Ok(n)
    }

    /// Deletes every value; returns how many.
    pub fn clear(&self) -> Result<usize> {
        match self.delete_tree(&Path::root()) {
            Err(Error::NotFound(_)) => Ok(0),
            other => other,
        }
    }

    /// Appends `entries` if `cond` holds for `key` (a record key); `shown` is the path as
    /// the user wrote it, for errors.
    fn guarded(
        &self,
        key: &str,
        shown: &str,
        cond: Option<Condition>,
        entries: Vec<OwnedEntry>,
    ) -> Result<u64> {
        let view = &self.view;
        let deleting = entries.first().is_some_and(|e| e.encoding == TAG_TOMBSTONE);
        let (range, ()) =
            self.spool
                .log()
                .append_guarded(self.spool.log().durability(), |end| {
                    let mut st = view.lock_at(end)?;
                    st.view_mut().forget_below(self.spool.oldest_seq());
                    let actual = st.view().get(key)?.map(|e| e.rev);
                    let ok = match cond {
                        Some(Condition::Rev(r)) => actual == Some(r),
                        Some(Condition::Absent) => actual.is_none(),
                        None => !deleting || actual.is_some(),
                    };
                    if !ok {
                        return Err(match cond {
                            None => Error::NotFound(shown.to_string()),
                            Some(Condition::Rev(r)) => Error::Conflict {
                                path: shown.into(),
                                expected: format!("revision {r}"),
                                actual,
                            },
                            Some(Condition::Absent) => Error::Conflict {
                                path: shown.into(),
                                expected: "the path to be absent".into(),
                                actual,
                            },
                        });
                    }
                    // Cloned: a compaction between two tries decides again.
                    Ok((entries.clone(), ()))
                })?;
        Ok(range.start)
    }

    /// Paths holding values below `path` (all depths), sorted.
    pub fn descendants(&self, path: &Path) -> Result<Vec<Path>> {
        let key = self.key(path)?;
        let mut out: Vec<Path> = self.lookup(|s| {
            s.subtree(&key)?
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, _)| self.path_of(k))
                .collect::<Result<Vec<_>>>()
        })?;
        out.sort();
        Ok(out)
    }

    /// The children of `path` (one level down, whether they hold a value or only have
    /// descendants), sorted.
    pub fn children(&self, path: &Path) -> Result<Vec<Path>> {
        let depth = path.elements().len();
        let mut out: Vec<Path> = self
            .descendants(path)?
            .into_iter()
            .map(|p| Path(p.0[..=depth].to_vec()))
            .collect();
        out.dedup();
        Ok(out)
    }

    /// `path` and its descendants with their entries, sorted by path.
    pub fn entries(&self, path: &Path) -> Result<Vec<(Path, KvEntry)>> {
        let key = self.key(path)?;
        let mut out: Vec<(Path, KvEntry)> = self.lookup(|s| {
            s.subtree(&key)?
                .into_iter()
                .map(|(k, e)| Ok((self.path_of(&k)?, e)))
                .collect::<Result<Vec<_>>>()
        })?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The subtree at `path` as nested JSON objects keyed by element (text form), each
    /// node's own value under `"_"` (DistKV's `get -rd_` shape); `None` when empty. An
    /// element whose text starts with `_` gets one more `_` in front (`_` becomes `__`),
    /// so that `"_"` always means the node's own value.
    pub fn tree_json(&self, path: &Path) -> Result<Option<serde_json::Value>> {
        self.tree_json_where(path, |_| true)
    }

    /// [`KvStore::tree_json`] of the values whose paths `keep` accepts (the server
    /// leaves out what a user may not read).
    pub fn tree_json_where(
        &self,
        path: &Path,
        keep: impl Fn(&Path) -> bool,
    ) -> Result<Option<serde_json::Value>> {
        let mut entries = self.entries(path)?;
        entries.retain(|(p, _)| keep(p));
        if entries.is_empty() {
            return Ok(None);
        }
        let depth = path.elements().len();
        // Writes refuse paths deeper than MAX_DEPTH, but a store written before the limit
        // may hold some: nesting them would take a recursion as deep as the path to print
        // (and to drop) the answer, which overflows a thread's stack.
        if let Some((deep, _)) = entries
            .iter()
            .find(|(p, _)| p.elements().len() - depth > MAX_DEPTH)
        {
            let below = deep.elements().len() - depth;
            return Err(Error::InvalidArgument(format!(
                "the subtree at {path} holds a path {below} elements below it, deeper than the \
                 {MAX_DEPTH} a recursive get shows: list its paths with `kv keys -r` and get \
                 them one by one"
            )));
        }
        let mut root = serde_json::Map::new();
        for (p, e) in entries {
            let mut node = &mut root;
            for el in &p.elements()[depth..] {
                let child = node
                    .entry(tree_key(el))
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                node = child
                    .as_object_mut()
                    .ok_or_else(|| Error::Decode("tree node is not an object".into()))?;
            }
            node.insert("_".into(), e.json()?);
        }
        Ok(Some(serde_json::Value::Object(root)))
    }

    /// Watches `path` and everything under it; see [`Watch`].
    pub fn watch(&self, path: &Path, opts: WatchOptions) -> Result<Watch> {
        Watch::start(self, path, opts)
    }
}

/// An element's key in [`KvStore::tree_json`]: its text form, with a leading `_` doubled.
fn tree_key(el: &Element) -> String {
    let text = el.to_string();
    if text.starts_with('_') {
        format!("_{text}")
    } else {
        text
    }
}

fn tombstone(key: &str) -> OwnedEntry {
    OwnedEntry {
        key: Some(key.into()),
        encoding: TAG_TOMBSTONE,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtree_deeper_than_the_limit_is_refused_not_nested() {
        let tmp = tempfile::tempdir().unwrap();
        let kv = KvStore::open(tmp.path()).unwrap();
        let deep = Path(vec![Element::Str("a".into()); 5000]);
        assert!(kv.set(&deep, serde_json::json!(1)).is_err());
        // As a store written before the limit holds it.
        let rec = NewRecord::new(serde_json::json!(1)).key(kv.key(&deep).unwrap());
        kv.spool().log().append(&[rec.as_entry()]).unwrap();
        let err = kv.tree_json(&Path(deep.0[..1].to_vec())).unwrap_err();
        assert!(err.to_string().contains("deeper than the 100"), "{err}");
        // Near its end the subtree is shallow enough to show.
        let near = Path(deep.0[..4950].to_vec());
        assert!(kv.tree_json(&near).unwrap().is_some());
        // It can still be read and deleted.
        assert!(kv.get(&deep).unwrap().is_some());
        kv.delete(&deep).unwrap();
    }
}
