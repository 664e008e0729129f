//! Where the bridge keeps its Kafka offsets: one list per group, topic and partition
//! (`_kafka/GROUP/TOPIC/PARTITION`) in the store it writes to. Each item is a checkpoint
//! `{"offset": NEXT, "member": ID, "expires": MICROS}` whose nonce is a generation that
//! grows by one with every checkpoint.
//!
//! Invariant: a checkpoint is only ever appended in the same [`ListBatch`] as the items
//! of the records below its offset, under the condition that the list's last nonce is
//! still the generation its writer read or wrote last. So the newest checkpoint is the
//! exact end of what is stored (a restart resumes there), and a bridge that lost its
//! partition to another (lease taken over, a second bridge started by mistake) can never
//! store a record the other one stores too: its next batch fails as a whole.
//!
//! [`ListBatch`]: reel::list::ListBatch

use crate::error::{CliError, CliResult};
use reel::list::{EncodedItem, ListAppend, ListStore, NewItem, NonceCondition, PageRequest};
use serde::{Deserialize, Serialize};

/// The group name used without `--group`.
pub const DEFAULT_GROUP: &str = "default";

/// The checkpoint list of a partition.
pub fn key(group: &str, topic: &str, partition: i32) -> String {
    format!("_kafka/{group}/{topic}/{partition}")
}

/// The newest checkpoint of a partition, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The next Kafka offset to consume.
    pub offset: i64,
    /// The bridge that wrote it.
    pub member: String,
    /// Until when (µs since the epoch) that member holds the partition; 0: not held.
    pub expires: i64,
}

/// A partition's checkpoint with its generation (the list's last nonce).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The generation; `None` when no checkpoint was ever written.
    pub generation: Option<u128>,
    /// The checkpoint; `None` when none was ever written.
    pub checkpoint: Option<Checkpoint>,
}

/// Reads the newest checkpoint in list `key`.
pub fn read(lists: &ListStore, key: &str) -> CliResult<Stored> {
    let Some(info) = lists.info(key)? else {
        return Ok(Stored {
            generation: None,
            checkpoint: None,
        });
    };
    let page = lists.read(
        key,
        &PageRequest {
            reverse: true,
            limit: Some(1),
            ..Default::default()
        },
    )?;
    let Some(item) = page.items.first() else {
        // Retention dropped every checkpoint: resuming from the start would store records
        // twice, so refuse and say what to do.
        return Err(CliError::Input(format!(
            "the checkpoints in list {key} were dropped by the store's retention; the bridge cannot tell where to resume (give the store more capacity with `reel init --size`, or consume with a new --group, which starts the topic over)"
        )));
    };
    let value = item.value.to_json()?;
    let checkpoint: Checkpoint = serde_json::from_value(value).map_err(|e| {
        CliError::Input(format!(
            "list {key} holds an item that is not a bridge checkpoint: {e}"
        ))
    })?;
    Ok(Stored {
        generation: info.last_nonce,
        checkpoint: Some(checkpoint),
    })
}

/// The list items and condition that move a checkpoint from generation `from` on.
pub fn advance(key: &str, from: Option<u128>, next: &Checkpoint) -> (ListAppend, NonceCondition) {
    let generation = from.map_or(1, |g| g + 1);
    (
        ListAppend {
            key: key.to_string(),
            items: vec![EncodedItem::from(&NewItem {
                value: serde_json::json!(next),
                nonce: Some(generation),
                ts: None,
            })],
        },
        NonceCondition {
            key: key.to_string(),
            last_nonce: from,
        },
    )
}

/// Microseconds since the epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
