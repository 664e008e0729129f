//! Atomic appends to several lists at once, under conditions on their last nonces.
//!
//! A [`ListBatch`] is stored as one log batch: either every item of every list in it is
//! stored, or (on an error, a failed condition, or a crash before the batch is published)
//! none is. This is what lets a bridge from another system commit the position it
//! consumed up to *with* the items that position produced (`reel kafka consume` appends
//! a checkpoint item to a list of its own in the same batch), so that a restart resumes
//! exactly where the stored items end. A [`NonceCondition`] fences concurrent writers:
//! the batch is stored only if a list's last nonce is still the one its writer last saw.
//!
//! Within a batch, nonces are checked per list exactly as in [`ListStore::append`]: an
//! item whose nonce is not above the last accepted for its list is skipped as a
//! duplicate, including earlier items of the same batch.

use super::{Appended, ListStore, NewItem};
use crate::error::{Error, Result};
use crate::value::{Encoding, TAG_LIST_ITEM, Value};
use reel_log::{Durability, OwnedEntry};
use std::collections::HashMap;

/// An item whose value is already encoded (MessagePack, as [`Value::json`] or
/// [`Value::from_json_text`] make it): what a batch stores, with no JSON tree in between.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedItem {
    value: Value,
    /// Nonce for exactly-once appends.
    pub nonce: Option<u128>,
    /// Time (µs since the epoch); `None` means now.
    pub ts: Option<i64>,
}

impl EncodedItem {
    /// An item of `value`, which must be MessagePack ([`Error::InvalidArgument`] if not).
    pub fn new(value: Value, nonce: Option<u128>, ts: Option<i64>) -> Result<EncodedItem> {
        if value.encoding() != Encoding::MsgPack {
            return Err(Error::InvalidArgument(format!(
                "a list item is MessagePack, not {:?}",
                value.encoding()
            )));
        }
        Ok(EncodedItem { value, nonce, ts })
    }
}

impl From<&NewItem> for EncodedItem {
    fn from(i: &NewItem) -> EncodedItem {
        EncodedItem {
            value: Value::json(&i.value),
            nonce: i.nonce,
            ts: i.ts,
        }
    }
}

/// Items for one list within a [`ListBatch`].
#[derive(Debug, Clone, PartialEq)]
pub struct ListAppend {
    /// The list key.
    pub key: String,
    /// Its new items, in order.
    pub items: Vec<EncodedItem>,
}

/// A condition on a list, checked under the writer lock before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceCondition {
    /// The list key.
    pub key: String,
    /// The list's last accepted nonce must be exactly this (`None`: the list has accepted
    /// no nonce yet, or does not exist).
    pub last_nonce: Option<u128>,
}

/// Items for several lists stored atomically, if every condition holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListBatch {
    /// The lists and their items; a key may appear more than once (its items are
    /// appended in batch order).
    pub lists: Vec<ListAppend>,
    /// Conditions that must all hold, or nothing is stored ([`Error::NonceConflict`]).
    pub conditions: Vec<NonceCondition>,
}

/// Where one list stands while a batch is being built under the writer lock.
#[derive(Debug, Clone, Copy)]
struct ListState {
    next_offset: u64,
    last_nonce: Option<u128>,
}

impl ListStore {
    /// Appends every list of `batch` as one log batch, after checking its conditions;
    /// returns what was appended to each list, in batch order. Nothing is stored when a
    /// condition fails ([`Error::NonceConflict`]) or on any other error.
    pub fn append_batch(&self, batch: &ListBatch, durability: Durability) -> Result<Vec<Appended>> {
        let lists: Vec<(&str, &[EncodedItem])> = batch
            .lists
            .iter()
            .map(|l| (l.key.as_str(), l.items.as_slice()))
            .collect();
        self.append_lists(&lists, &batch.conditions, durability)
    }

    /// [`ListStore::append_batch`] over borrowed items (what `append` uses, without
    /// copying its items into a batch).
    pub(super) fn append_lists(
        &self,
        lists: &[(&str, &[EncodedItem])],
        conditions: &[NonceCondition],
        durability: Durability,
    ) -> Result<Vec<Appended>> {
        for (key, _) in lists {
            check_key(key)?;
        }
        if let Some(why) = self.view.lost_state() {
            return Err(Error::RebuildLoses(why));
        }
        let view = &self.view;
        let (_, appended) = self.spool.log().append_guarded(durability, |end| {
            let mut st = view.lock_at(end)?;
            let mut states: HashMap<&str, ListState> = HashMap::new();
            // Every list of the batch as the log has it (retention cannot change a
            // list's next offset or last nonce, so the oldest seq does not matter here).
            for key in conditions
                .iter()
                .map(|c| c.key.as_str())
                .chain(lists.iter().map(|(key, _)| *key))
            {
                if !states.contains_key(key) {
                    let list = st.view_mut().list(key, 0)?;
                    let state = ListState {
                        next_offset: list.as_ref().map_or(0, |l| l.next_offset()),
                        last_nonce: list.as_ref().and_then(|l| l.last_nonce()),
                    };
                    states.insert(key, state);
                }
            }
            for c in conditions {
                let actual = states.get(c.key.as_str()).and_then(|s| s.last_nonce);
                if actual != c.last_nonce {
                    return Err(Error::NonceConflict {
                        key: c.key.clone(),
                        expected: c.last_nonce,
                        actual,
                    });
                }
            }
            let mut entries = Vec::new();
            let mut appended = Vec::with_capacity(lists.len());
            for (key, items) in lists {
                // Every key was looked up above.
                let state = states
                    .get_mut(key)
                    .ok_or_else(|| Error::InvalidArgument(format!("list {key:?} not looked up")))?;
                appended.push(push_items(key, items, state, &mut entries));
            }
            Ok::<_, Error>((entries, appended))
        })?;
        Ok(appended)
    }
}

/// Adds `items` of list `key` to `entries`, skipping duplicates by nonce, and advances
/// the list's `state`.
fn push_items(
    key: &str,
    items: &[EncodedItem],
    state: &mut ListState,
    entries: &mut Vec<OwnedEntry>,
) -> Appended {
    let mut duplicates = 0;
    let mut stored = 0;
    let shared_key: std::sync::Arc<str> = key.into();
    for item in items {
        let bytes = item.value.as_bytes();
        if let Some(n) = item.nonce {
            if state.last_nonce.is_some_and(|last| n <= last) {
                duplicates += 1;
                continue;
            }
            state.last_nonce = Some(n);
        }
        // The offset is stored in front of the value so that it survives retention and
        // rebuilds unchanged (see the module doc of `list`).
        let mut value = Vec::with_capacity(8 + bytes.len());
        value.extend_from_slice(&state.next_offset.to_le_bytes());
        value.extend_from_slice(bytes);
        entries.push(OwnedEntry {
            ts: item.ts,
            key: Some(shared_key.clone()),
            nonce: item.nonce,
            encoding: TAG_LIST_ITEM,
            value,
        });
        state.next_offset += 1;
        stored += 1;
    }
    Appended {
        appended: stored,
        duplicates,
        next_offset: state.next_offset,
    }
}

/// A list key must be non-empty and free of NUL characters.
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("a list key cannot be empty".into()));
    }
    if key.contains('\0') {
        return Err(Error::InvalidArgument(
            "a list key cannot contain a NUL character".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: u64, nonce: Option<u128>) -> EncodedItem {
        EncodedItem::new(Value::json(&json!(v)), nonce, None).unwrap()
    }

    fn batch(cond: Option<u128>, checkpoint: u128) -> ListBatch {
        ListBatch {
            lists: vec![
                ListAppend {
                    key: "a".into(),
                    items: vec![item(1, None), item(2, None)],
                },
                ListAppend {
                    key: "b".into(),
                    items: vec![item(3, Some(7))],
                },
                ListAppend {
                    key: "cp".into(),
                    items: vec![item(0, Some(checkpoint))],
                },
            ],
            conditions: vec![NonceCondition {
                key: "cp".into(),
                last_nonce: cond,
            }],
        }
    }

    #[test]
    fn a_batch_is_stored_whole_or_not_at_all() {
        let tmp = tempfile::tempdir().unwrap();
        let lists = ListStore::open(tmp.path()).unwrap();
        let r = lists
            .append_batch(&batch(None, 1), Durability::None)
            .unwrap();
        assert_eq!(r.iter().map(|a| a.appended).collect::<Vec<_>>(), [2, 1, 1]);
        // The same batch again: the checkpoint moved on, so the condition fails and
        // nothing is stored, not even the items without nonces.
        let err = lists
            .append_batch(&batch(None, 1), Durability::None)
            .unwrap_err();
        assert!(
            matches!(err, Error::NonceConflict { ref key, expected: None, actual: Some(1) } if key == "cp"),
            "{err}"
        );
        assert_eq!(lists.info("a").unwrap().unwrap().count, 2);
        // The condition that holds stores the next batch; b's nonce 7 is now a duplicate.
        let r = lists
            .append_batch(&batch(Some(1), 2), Durability::None)
            .unwrap();
        assert_eq!((r[0].appended, r[0].next_offset), (2, 4));
        assert_eq!((r[1].appended, r[1].duplicates), (0, 1));
        assert_eq!(lists.info("cp").unwrap().unwrap().last_nonce, Some(2));
    }

    #[test]
    fn a_key_twice_in_a_batch_continues_its_offsets_and_nonces() {
        let tmp = tempfile::tempdir().unwrap();
        let lists = ListStore::open(tmp.path()).unwrap();
        let b = ListBatch {
            lists: vec![
                ListAppend {
                    key: "k".into(),
                    items: vec![item(1, Some(5))],
                },
                ListAppend {
                    key: "k".into(),
                    items: vec![item(2, Some(5)), item(3, Some(6))],
                },
            ],
            conditions: vec![],
        };
        let r = lists.append_batch(&b, Durability::None).unwrap();
        assert_eq!(
            (r[1].appended, r[1].duplicates, r[1].next_offset),
            (1, 1, 2)
        );
    }
}
