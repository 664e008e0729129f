//! [`LogOptions`]: how a log is opened (storage, creation config, kind, read-only,
//! durability, replica, identity).

use crate::error::Result;
use crate::log::Log;
use crate::meta::{Config, StoreKind};
use crate::storage::{DiskStorage, Storage};
use crate::sync::Durability;
use std::path::Path;
use std::sync::Arc;

/// How to open a log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) create: Option<Config>,
    pub(crate) kind: StoreKind,
    pub(crate) read_only: bool,
    pub(crate) durability: Durability,
    pub(crate) replica: bool,
    pub(crate) log_id: Option<u128>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            storage: Arc::new(DiskStorage),
            create: None,
            kind: StoreKind::Untyped,
            read_only: false,
            durability: Durability::None,
            replica: false,
            log_id: None,
        }
    }
}

impl LogOptions {
    /// Defaults: real disk, open an existing log, read-write, durability `none`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses another storage backend (tests use [`SimStorage`](crate::storage::sim::SimStorage)).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Creates the log with `config` when the directory holds none.
    pub fn create(mut self, config: Config) -> Self {
        self.create = Some(config);
        self
    }

    /// The kind recorded in a log this open creates (default untyped).
    pub fn kind(mut self, kind: StoreKind) -> Self {
        self.kind = kind;
        self
    }

    /// Opens without ever writing to the directory.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Durability of appends made through this handle.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens the handle through which `reel replicate` appends to a follower (see
    /// [`crate::follow`]); other handles of a follower refuse appends.
    pub fn replica(mut self, replica: bool) -> Self {
        self.replica = replica;
        self
    }

    /// The identity a log created by this open gets, instead of a random one: a copy
    /// that must be the same log to its users (a follower, a cache of a store in object
    /// storage) keeps its source's, so that tokens naming the log (list continuations)
    /// are valid on both.
    pub fn log_id(mut self, id: u128) -> Self {
        self.log_id = Some(id);
        self
    }

    /// Opens (or creates) the log in `dir`.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Log> {
        Log::open_with(dir.as_ref(), self)
    }
}
