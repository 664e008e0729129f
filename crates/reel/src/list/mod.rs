//! Keyed lists (klstore's model, made safe): every key has its own list with offsets
//! from 0; items carry a time and an optional nonce; an item whose nonce is not greater
//! than the last one accepted for its key is a duplicate and is skipped, decided under
//! the writer lock, so retries after a crash never store anything twice. Readers page
//! forwards and backwards from an offset, a time or a nonce with continuation tokens.
//!
//! An item is a record with the list's key, the item's nonce and time, and value tag 2:
//! its list offset (u64) followed by the MessagePack value. The offset is stored rather
//! than derived so that it survives retention and rebuilds unchanged.
//!
//! Lists live in a store of kind lists ([`StoreKind::Lists`], fixed at creation), which
//! never compacts: compaction keeps only the latest record of each key and would destroy
//! every list. A lists store is bounded by its capacity: with `drop-oldest` (the
//! default) the oldest items of every list expire segment by segment, like a Kafka
//! topic's retention; with `reject` appends fail when it is full (no item is ever
//! dropped, unless named readers consumed it). Either way `info` and `read` count and
//! return only the items still stored: retention moves a list's first offset forward,
//! never leaves an item that is counted but cannot be read.

mod batch;
mod index;
pub mod token;

pub use batch::{EncodedItem, ListAppend, ListBatch, NonceCondition};

pub use index::{CHUNK, ItemMeta, KeyList, LISTS_VIEW, ListIndex, ListView};

use crate::error::{Error, Result};
use crate::spool::Spool;
use crate::value::{Encoding, Value};
use crate::view::ViewHandle;
use reel_log::storage::Storage;
use reel_log::{Durability, StoreKind, WhenFull};
use serde::Serialize;
use std::sync::Arc;
use token::Token;

/// Items per page when no limit is given.
pub const DEFAULT_PAGE: usize = 100;

/// An item to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    /// The value.
    pub value: serde_json::Value,
    /// Nonce for exactly-once appends.
    pub nonce: Option<u128>,
    /// Time (µs since the epoch); `None` means now.
    pub ts: Option<i64>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// Items stored.
    pub appended: u64,
    /// Items skipped as duplicates (nonce not above the last accepted).
    pub duplicates: u64,
    /// The offset the next item will get.
    pub next_offset: u64,
}

/// One item read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Offset in its list.
    pub offset: u64,
    /// Time (µs since the epoch).
    pub ts: i64,
    /// Nonce, if any (a decimal string when above 2^64).
    #[serde(serialize_with = "ser_nonce")]
    pub nonce: Option<u128>,
    /// The value (MessagePack as stored; `value.to_json()` for JSON).
    #[serde(serialize_with = "ser_value")]
    pub value: Value,
}

fn ser_value<S: serde::Serializer>(v: &Value, s: S) -> std::result::Result<S::Ok, S::Error> {
    v.to_json().map_err(serde::ser::Error::custom)?.serialize(s)
}

fn ser_nonce<S: serde::Serializer>(n: &Option<u128>, s: S) -> std::result::Result<S::Ok, S::Error> {
    n.map(crate::nonce_json).serialize(s)
}

/// Where a page starts (without a continuation token).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Start {
    /// The first item (the last with `reverse`).
    #[default]
    End,
    /// The item at this offset (forward: at or after; reverse: at or before).
    Offset(u64),
    /// Forward: the first item at or after this time; reverse: the last item up to it.
    Time(i64),
    /// Forward: the first item whose nonce is at least this; reverse: the last up to it.
    Nonce(u128),
}

/// A page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Newest first.
    pub reverse: bool,
    /// Items per page (default 100).
    pub limit: Option<usize>,
    /// Where to start, unless `continuation` is given.
    pub start: Start,
    /// A token from a previous page: continue exactly after its last item.
    pub continuation: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// The list's key.
    pub key: String,
    /// The items.
    pub items: Vec<Item>,
    /// Where the next page starts; `null` when a reverse read reached the first item.
    /// Forward pages always have one, so that readers can continue once more items
    /// are appended.
    pub continuation: Option<String>,
}

/// Summary of one list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListInfo {
    /// The key.
    pub key: String,
    /// Items retained.
    pub count: u64,
    /// Offset of the first retained item (the next offset when none).
    pub first_offset: u64,
    /// Offset the next item gets.
    pub next_offset: u64,
    /// Time of the first retained item.
    pub first_ts: Option<i64>,
    /// Time of the last item.
    pub last_ts: Option<i64>,
    /// Largest nonce accepted.
    #[serde(serialize_with = "ser_nonce")]
    pub last_nonce: Option<u128>,
}

/// Keyed lists in a spool directory. Cheap to clone.
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// use reel::list::{ListStore, NewItem, PageRequest};
/// let lists = ListStore::open(tmp.path())?;
/// let item = |n: u64| NewItem { value: serde_json::json!(n), nonce: Some(n.into()), ts: None };
/// let r = lists.append("orders", &[item(1), item(2)])?;
/// assert_eq!((r.appended, r.duplicates), (2, 0));
/// // A retry of the same batch stores nothing twice.
/// assert_eq!(lists.append("orders", &[item(2)])?.duplicates, 1);
/// let page = lists.read("orders", &PageRequest { limit: Some(1), ..Default::default() })?;
/// let next = lists.read("orders", &PageRequest { continuation: page.continuation, ..Default::default() })?;
/// assert_eq!(next.items[0].offset, 1);
/// # Ok::<(), reel::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ListStore {
    spool: Spool,
    view: ViewHandle<ListIndex>,
}

/// Options for opening a lists store; see [`ListStore::builder`].
#[derive(Debug, Clone)]
pub struct ListBuilder {
    dir: std::path::PathBuf,
    create: bool,
    read_only: bool,
    durability: Durability,
    capacity: Option<u64>,
    when_full: WhenFull,
    storage: Option<Arc<dyn Storage>>,
}

impl ListBuilder {
    /// Create the store when the directory holds none (default true).
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }
    /// Never write to the directory.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Durability of appends (default none).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
    /// Capacity of a new store in bytes (default 1 GiB).
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }
    /// When-full policy of a new store: drop-oldest (default: the oldest items expire)
    /// or reject (appends fail when full); compact is refused.
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }
    /// Storage backend (tests).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }
    /// Opens the store: one of kind lists, or an untyped one whose policy is not
    /// compact (a writable open then records the kind, see [`Spool::set_kind`]);
    /// anything else fails with [`Error::WrongKind`] or [`Error::CannotAdopt`].
    pub fn open(self) -> Result<ListStore> {
        let mut b = Spool::builder(&self.dir)
            .kind(StoreKind::Lists)
            .capacity(self.capacity.unwrap_or(reel_log::DEFAULT_CAPACITY))
            .when_full(self.when_full)
            .create(self.create && !self.read_only)
            .read_only(self.read_only)
            .durability(self.durability);
        if let Some(s) = self.storage {
            b = b.storage(s);
        }
        ListStore::on_spool(&b.open()?)
    }
}

impl ListStore {
    /// Opens the lists store in `dir`, creating it with default settings if needed.
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<ListStore> {
        Self::builder(dir).open()
    }

    /// Options for opening a lists store.
    pub fn builder(dir: impl AsRef<std::path::Path>) -> ListBuilder {
        ListBuilder {
            dir: dir.as_ref().to_path_buf(),
            create: true,
            read_only: false,
            durability: Durability::None,
            capacity: None,
            when_full: WhenFull::DropOldest,
            storage: None,
        }
    }

    /// Lists over an open spool, which must be a lists store or an untyped one that
    /// fits (see [`ListBuilder::open`]).
    pub fn on_spool(spool: &Spool) -> Result<ListStore> {
        spool.ensure_kind(StoreKind::Lists)?;
        let view = ViewHandle::open(spool, ListIndex::default())?;
        // A list's next offset and last nonce live on in the view after retention
        // drops its items: the view must hold them before the records go.
        if spool.log().is_writable() {
            view.checkpoint_before_retention();
        }
        Ok(ListStore {
            spool: spool.clone(),
            view,
        })
    }

    /// The spool underneath.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The view (for checkpoints and rebuilds).
    pub fn view(&self) -> &ViewHandle<ListIndex> {
        &self.view
    }

    /// Appends items to `key`'s list, skipping those whose nonce is not greater than the
    /// last accepted for the key (including earlier items of this same call).
    pub fn append(&self, key: &str, items: &[NewItem]) -> Result<Appended> {
        self.append_with(key, items, self.spool.log().durability())
    }

    /// Appends with an explicit durability.
    pub fn append_with(
        &self,
        key: &str,
        items: &[NewItem],
        durability: Durability,
    ) -> Result<Appended> {
        let encoded: Vec<EncodedItem> = items.iter().map(EncodedItem::from).collect();
        let mut appended = self.append_lists(&[(key, &encoded)], &[], durability)?;
        appended
            .pop()
            .ok_or_else(|| Error::InvalidArgument("an append of one list returned none".into()))
    }

    /// Reads one page of `key`'s list. O(log n) to find the start, then one direct read
    /// per item.
    pub fn read(&self, key: &str, req: &PageRequest) -> Result<Page> {
        let limit = req.limit.unwrap_or(DEFAULT_PAGE).max(1);
        let log_id = self.spool.log().log_id();
        let token = req
            .continuation
            .as_deref()
            .map(|t| Token::decode(t, log_id, key))
            .transpose()?;
        let reverse = match token {
            Some(t) if t.reverse != req.reverse && req.reverse => {
                return Err(Error::InvalidArgument(
                    "this continuation token pages forwards: read it without reverse (`--reverse`, `reverse=true`)".into(),
                ));
            }
            Some(t) => t.reverse,
            None => req.reverse,
        };
        let oldest = self.spool.oldest_seq();
        let (metas, next_token) = {
            let mut st = self.view.lock_at(self.spool.next_seq())?;
            let Some(list) = st.view_mut().list(key, oldest)? else {
                // Nothing appended to this key yet: a forward page still promises a token,
                // so a reader can wait for the list's first items with it.
                let continuation = (!reverse).then(|| {
                    let offset = match (token, req.start) {
                        (Some(t), _) => t.offset,
                        (None, Start::Offset(o)) => o,
                        _ => 0,
                    };
                    Token {
                        reverse: false,
                        offset,
                    }
                    .encode(log_id, key)
                });
                return Ok(Page {
                    key: key.into(),
                    items: Vec::new(),
                    continuation,
                });
            };
            let n = list.len();
            // `from` is the position of the first item to return; for reverse pages, one
            // past it.
            let from = match (token, req.start) {
                (Some(t), _) if reverse => list.by_offset(t.offset.saturating_add(1))?,
                (Some(t), _) => list.by_offset(t.offset)?,
                (None, Start::End) => {
                    if reverse {
                        n
                    } else {
                        0
                    }
                }
                (None, Start::Offset(o)) => {
                    if reverse {
                        list.by_offset(o.saturating_add(1))?
                    } else {
                        list.by_offset(o)?
                    }
                }
                (None, Start::Time(t)) => {
                    if reverse {
                        list.time_partition(|max| max > t)?
                    } else {
                        list.by_time(t)?
                    }
                }
                (None, Start::Nonce(x)) => {
                    if reverse {
                        list.partition_point(|i| i.nonce_max.is_none_or(|m| m <= x))?
                    } else {
                        list.by_nonce(x)?
                    }
                }
            };
            if reverse {
                let lo = from.saturating_sub(limit);
                let mut metas = list.items(lo..from)?;
                metas.reverse();
                let next = if lo > 0 {
                    Some(Token {
                        reverse: true,
                        offset: list.item(lo - 1)?.offset,
                    })
                } else {
                    None
                };
                (metas, next)
            } else {
                let hi = from.saturating_add(limit).min(n);
                let metas = list.items(from..hi)?;
                let offset = match metas.last() {
                    Some(m) => m.offset.saturating_add(1),
                    None if from < n => list.item(from)?.offset,
                    None => list.next_offset(),
                };
                (
                    metas,
                    Some(Token {
                        reverse: false,
                        offset,
                    }),
                )
            }
        };
        let wanted: Vec<(reel_log::FramePos, u64)> = metas.iter().map(|m| (m.pos, m.seq)).collect();
        let mut values: Vec<Option<Value>> = vec![None; metas.len()];
        self.spool.log().read_records_at(&wanted, |i, r| {
            values[i] = r.map(|r| {
                Value::from_parts(
                    Encoding::MsgPack,
                    r.value.get(8..).unwrap_or_default().to_vec(),
                )
            });
        })?;
        // Retention dropped records between the index lookup and the reads: look the
        // page up again (this happens at most once per dropped segment), so that a page
        // never leaves out an item `info` counts.
        if values.iter().any(Option::is_none) && self.spool.oldest_seq() > oldest {
            return self.read(key, req);
        }
        let items = metas
            .iter()
            .zip(values)
            .filter_map(|(m, v)| {
                Some(Item {
                    offset: m.offset,
                    ts: m.ts,
                    nonce: m.nonce,
                    value: v?,
                })
            })
            .collect();
        Ok(Page {
            key: key.into(),
            items,
            continuation: next_token.map(|t| t.encode(log_id, key)),
        })
    }

    /// Summary of `key`'s list; `None` if nothing was ever appended to it.
    pub fn info(&self, key: &str) -> Result<Option<ListInfo>> {
        let oldest = self.spool.oldest_seq();
        let mut st = self.view.lock_at(self.spool.next_seq())?;
        let Some(l) = st.view_mut().list(key, oldest)? else {
            drop(st);
            // A list all of whose items expired may be one the lost state held.
            if let Some(why) = self.view.lost_state() {
                return Err(Error::RebuildLoses(why));
            }
            return Ok(None);
        };
        let (first, last) = if l.is_empty() {
            (None, None)
        } else {
            (Some(l.item(0)?), Some(l.item(l.len() - 1)?))
        };
        Ok(Some(ListInfo {
            key: key.into(),
            count: l.len() as u64,
            first_offset: first.map_or(l.next_offset(), |i| i.offset),
            next_offset: l.next_offset(),
            first_ts: first.map(|i| i.ts),
            last_ts: last.map(|i| i.ts),
            last_nonce: l.last_nonce(),
        }))
    }

    /// Every key that has a list, sorted.
    pub fn keys(&self) -> Result<Vec<String>> {
        self.view.read(|v| v.keys())?
    }
}
