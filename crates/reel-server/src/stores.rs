//! The stores under the server's root: names, opening on demand, one open handle per
//! store shared by every request, and a per-store notifier that tells async waiters
//! (live tails, watches) that new records exist without a thread per waiter.

use crate::error::{ApiError, ApiResult};
use reel::kv::KvStore;
use reel::list::ListStore;
use reel::{Durability, Spool};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How a store is opened: as the kind its requests need.
#[derive(Debug)]
enum Handle {
    Spool(Spool),
    Kv(KvStore),
    Lists(ListStore),
}

impl Handle {
    /// Brings the store's view (kv or lists) up to date and checkpoints it, so that the
    /// next opener does not replay what this server wrote: its writes append without
    /// applying, and a server that only wrote would leave every record to replay.
    fn checkpoint_view(&self) -> reel::Result<()> {
        match self {
            Handle::Spool(_) => Ok(()),
            Handle::Kv(k) => k.view().checkpoint(),
            Handle::Lists(l) => l.view().checkpoint(),
        }
    }

    fn spool(&self) -> &Spool {
        match self {
            Handle::Spool(s) => s,
            Handle::Kv(k) => k.spool(),
            Handle::Lists(l) => l.spool(),
        }
    }
}

/// One open store.
#[derive(Debug)]
pub struct Store {
    name: String,
    handle: Mutex<Arc<Handle>>,
    /// The log's next seq, as last seen by the notifier thread (or by a request that
    /// appended through this server).
    next_seq: watch::Receiver<u64>,
    published: Arc<watch::Sender<u64>>,
    /// The notifier thread, parked while nobody waits (so that appends wake no one).
    notifier: Mutex<Option<std::thread::Thread>>,
    /// Share groups of this store, by name.
    pub(crate) groups: Mutex<HashMap<String, crate::routes::groups::GroupState>>,
    /// Set when the store is tiered and another directory took its writing over: why
    /// appends are refused.
    pub(crate) fenced: Mutex<Option<String>>,
    /// Followers reading this store's frames now: their address and the next seq each
    /// will get (for `/metrics`).
    pub(crate) followers: Mutex<HashMap<u64, (String, Arc<std::sync::atomic::AtomicU64>)>>,
}

impl Store {
    /// The store's name (its directory under the root).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn current(&self) -> Arc<Handle> {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The store as a spool.
    pub fn spool(&self) -> Spool {
        self.current().spool().clone()
    }

    /// The store as a kv store (it must be one, or an untyped store that can become one).
    pub fn kv(&self) -> ApiResult<KvStore> {
        let current = self.current();
        if let Handle::Kv(k) = &*current {
            return Ok(k.clone());
        }
        let kv = KvStore::on_spool(current.spool())?;
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(Handle::Kv(kv.clone()));
        Ok(kv)
    }

    /// The store as a lists store.
    pub fn lists(&self) -> ApiResult<ListStore> {
        let current = self.current();
        if let Handle::Lists(l) = &*current {
            return Ok(l.clone());
        }
        let lists = ListStore::on_spool(current.spool())?;
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Handle::Lists(lists.clone()));
        Ok(lists)
    }

    /// Resolves once the log's next seq is above `seq` (a record `seq` exists), or the
    /// store's notifier stops.
    pub async fn appended_past(&self, seq: u64) {
        let mut rx = self.changes();
        let _ = rx.wait_for(|&next| next > seq).await;
    }

    /// Tells this server's followers at once that records were appended through it,
    /// without waiting for the notifier thread to wake.
    pub fn appended(&self) {
        let next = self.spool().next_seq();
        self.published.send_if_modified(|seen| {
            let newer = next > *seen;
            if newer {
                *seen = next;
            }
            newer
        });
    }

    /// A receiver that changes whenever records are appended (the notifier follows the
    /// log while such a receiver exists).
    pub fn changes(&self) -> watch::Receiver<u64> {
        let rx = self.next_seq.clone();
        if let Some(t) = &*self.notifier.lock().unwrap_or_else(|e| e.into_inner()) {
            t.unpark();
        }
        rx
    }
}

/// What a request needs of a store that may not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Any existing store.
    Existing,
    /// A kv store, created if missing.
    CreateKv,
    /// A lists store, created if missing.
    CreateLists,
}

/// Every store under the root.
#[derive(Debug)]
pub struct Stores {
    root: PathBuf,
    durability: Durability,
    open: Mutex<HashMap<String, Arc<Store>>>,
}

/// Checks a store name: one path element, printable, not hidden.
pub fn validate_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid store name `{name}`: use letters, digits, `-`, `_` and `.` (not first)"
        )))
    }
}

impl Stores {
    /// The stores under `root` (which must exist).
    pub fn new(root: &Path, durability: Durability) -> Stores {
        Stores {
            // Absolute, as the stores opened under it are (their paths in answers are
            // shown relative to it).
            root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
            durability,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Whether appends that do not ask for a durability wait for an fsync.
    pub fn syncs_every_append(&self) -> bool {
        self.durability == Durability::Always
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Syncs every open store (at shutdown: what was acknowledged with durability
    /// `batch` reaches the disk before the process exits).
    pub fn sync_all(&self) {
        for s in self.open_stores() {
            if let Err(e) = s.spool().sync() {
                tracing::error!(store = s.name(), "sync at shutdown failed: {e}");
            }
            if s.spool().log().is_writable()
                && let Err(e) = s.current().checkpoint_view()
            {
                tracing::warn!(store = s.name(), "view checkpoint at shutdown failed: {e}");
            }
            // A tiered store: what was appended reaches object storage before exit (on a
            // thread of its own: the tier's client blocks on a runtime of its own).
            let dir = self.root.join(s.name());
            let spool = s.spool();
            let name = s.name().to_string();
            let uploaded = std::thread::spawn(move || {
                if let Ok(Some(w)) = reel_tier::writer::TierWriter::open(&dir)
                    && let Err(e) = w.upload(spool.log())
                    && !matches!(e, reel_tier::Error::Fenced { .. })
                {
                    tracing::error!(store = name, "upload at shutdown failed: {e}");
                }
            });
            let _ = uploaded.join();
        }
    }

    /// The stores opened so far, by name.
    pub fn open_stores(&self) -> Vec<Arc<Store>> {
        let mut v: Vec<Arc<Store>> = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Names of the directories under the root that hold a store, sorted.
    pub fn names(&self) -> ApiResult<Vec<String>> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| ApiError::internal(format!("cannot list {}: {e}", self.root.display())))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(reel::META_FILE).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// [`Stores::get`] for a write: refused (409) when the store is a tiered store whose
    /// writing another directory took over.
    pub fn get_for_writing(&self, name: &str, want: Want) -> ApiResult<Arc<Store>> {
        let store = self.get(name, want)?;
        if let Some(why) = store
            .fenced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(ApiError::new(axum::http::StatusCode::CONFLICT, why));
        }
        Ok(store)
    }

    /// The open store `name`, opening (or creating, as `want` says) it first. Blocking:
    /// call from a blocking task.
    pub fn get(&self, name: &str, want: Want) -> ApiResult<Arc<Store>> {
        validate_name(name)?;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = open.get(name) {
            return Ok(s.clone());
        }
        let dir = self.root.join(name);
        let handle = match want {
            Want::Existing => {
                if !dir.join(reel::META_FILE).is_file() {
                    return Err(ApiError::not_found(format!("no store named `{name}`")));
                }
                Handle::Spool(
                    Spool::builder(&dir)
                        .create(false)
                        .durability(self.durability)
                        .open()?,
                )
            }
            Want::CreateKv => Handle::Kv(
                KvStore::builder(&dir)
                    .create(true)
                    .durability(self.durability)
                    .open()?,
            ),
            Want::CreateLists => Handle::Lists(
                ListStore::builder(&dir)
                    .create(true)
                    .durability(self.durability)
                    .open()?,
            ),
        };
        let (tx, rx) = watch::channel(handle.spool().next_seq());
        let tx = Arc::new(tx);
        let store = Arc::new(Store {
            name: name.to_string(),
            handle: Mutex::new(Arc::new(handle)),
            next_seq: rx,
            published: tx.clone(),
            notifier: Mutex::new(None),
            groups: Mutex::new(HashMap::new()),
            fenced: Mutex::new(None),
            followers: Mutex::new(HashMap::new()),
        });
        let thread = spawn_notifier(Arc::downgrade(&store), tx);
        *store.notifier.lock().unwrap_or_else(|e| e.into_inner()) = thread;
        spawn_uploader(Arc::downgrade(&store), &dir);
        open.insert(name.to_string(), store.clone());
        tracing::info!(store = name, "opened");
        Ok(store)
    }
}

/// For a tiered store (`reel init --object-store`), a thread that uploads what was
/// appended every `seal_after`, until the store is dropped. Failures are logged and
/// retried; once fenced (another directory took the store over) the thread stops and
/// the store refuses writes (409, naming the new writer).
fn spawn_uploader(store: Weak<Store>, dir: &std::path::Path) {
    let writer = match reel_tier::writer::TierWriter::open(dir) {
        Ok(Some(w)) => w,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(dir = %dir.display(), "tiered store, but its uploader cannot start: {e}");
            return;
        }
    };
    let every = Duration::from_millis(writer.config().seal_after_ms.max(50));
    // The tier's client blocks on a runtime of its own, which a tokio worker (where
    // stores are opened) must not do: all of its work happens on this thread.
    let spawned = std::thread::Builder::new()
        .name("reel-upload".into())
        .spawn(move || {
            let mut first = true;
            loop {
                // Already fenced (taken over while this server was down) is found at once.
                if !std::mem::take(&mut first) {
                    std::thread::sleep(every);
                }
                let Some(s) = store.upgrade() else { return };
                let spool = s.spool();
                drop(s);
                match writer.upload(spool.log()).and_then(|_| writer.maintain()) {
                    Ok(()) => {}
                    Err(e @ reel_tier::Error::Fenced { .. }) => {
                        tracing::error!(url = %writer.url(), "{e}");
                        if let Some(s) = store.upgrade() {
                            *s.fenced.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(e.to_string());
                        }
                        return;
                    }
                    Err(e) => tracing::error!(url = %writer.url(), "upload failed (retried): {e}"),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start an uploader thread: {e}; the store is not uploaded");
    }
}

/// A thread per open store waits on the engine's cross-process wake-up and publishes the
/// next seq, so that any number of async followers wait on a channel, not on threads.
/// While nobody follows it parks instead (the store's own receiver is the one left), so
/// that an append wakes no thread. It ends when the store is dropped.
fn spawn_notifier(store: Weak<Store>, tx: Arc<watch::Sender<u64>>) -> Option<std::thread::Thread> {
    let spawned = std::thread::Builder::new()
        .name("reel-notify".into())
        .spawn(move || {
            loop {
                let Some(s) = store.upgrade() else { return };
                let spool = s.spool();
                drop(s);
                let next = spool.next_seq();
                tx.send_if_modified(|seen| {
                    let newer = next > *seen;
                    if newer {
                        *seen = next;
                    }
                    newer
                });
                // Bounded, so that a dropped store ends this thread.
                if tx.receiver_count() > 1 {
                    spool.wait_for(next, Some(Duration::from_millis(500)));
                } else {
                    std::thread::park_timeout(Duration::from_millis(500));
                }
            }
        });
    match spawned {
        Ok(h) => Some(h.thread().clone()),
        Err(e) => {
            tracing::error!("cannot start a notifier thread: {e}; live reads will not wake");
            None
        }
    }
}
