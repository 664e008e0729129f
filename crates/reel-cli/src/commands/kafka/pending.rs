//! The batch being built: records turned into list items (or dead letters), grouped by
//! partition and list, with the offset each partition will be checkpointed at once the
//! batch is stored.

use super::config::Settings;
use super::parser::{Source, Unreadable, bytes};
use reel::list::{EncodedItem, ListAppend, NewItem};
use rskafka::record::RecordAndOffset;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Records parsed but not stored yet.
#[derive(Debug, Default)]
pub struct Pending {
    /// Items per (partition, list), in arrival order.
    pub appends: Vec<ListAppend>,
    pub partitions: Vec<i32>,
    /// Where each partition's lists are in `appends`.
    pub index: HashMap<i32, HashMap<String, usize>>,
    /// The next offset of every partition with records here.
    pub next: BTreeMap<i32, i64>,
    /// Records (stored or dead-lettered) and dead letters per partition.
    pub counts: BTreeMap<i32, (usize, u64)>,
    pub records: usize,
    pub bytes: u64,
    pub since: Option<Instant>,
    /// The list the last item went to (partition, index in `appends`): records in a row
    /// mostly share their list, and then need no lookup.
    last: Option<(i32, usize)>,
}

/// What the records of one fetched message add to a [`Pending`] besides their items.
#[derive(Debug, Default)]
pub struct Counted {
    pub records: usize,
    pub dead: u64,
    pub bytes: u64,
    /// The offset after the last record counted.
    pub next: Option<i64>,
}

impl Counted {
    /// Adds what was counted for `partition` to `p`, and starts again from nothing.
    pub fn note(&mut self, p: &mut Pending, partition: i32) {
        let c = std::mem::take(self);
        let Some(next) = c.next else { return };
        let counts = p.counts.entry(partition).or_default();
        counts.0 += c.records;
        counts.1 += c.dead;
        p.records += c.records;
        p.bytes += c.bytes;
        p.next.insert(partition, next);
        p.since.get_or_insert_with(Instant::now);
    }
}

impl Pending {
    pub fn push(&mut self, partition: i32, key: String, item: EncodedItem) {
        if let Some((p, i)) = self.last
            && p == partition
            && self.appends[i].key == key
        {
            self.appends[i].items.push(item);
            return;
        }
        let lists = self.index.entry(partition).or_default();
        let i = match lists.get(&key) {
            Some(i) => *i,
            None => {
                let i = self.appends.len();
                lists.insert(key.clone(), i);
                self.appends.push(ListAppend {
                    key,
                    items: Vec::new(),
                });
                self.partitions.push(partition);
                i
            }
        };
        self.last = Some((partition, i));
        self.appends[i].items.push(item);
    }

    /// Forgets every record of `partition` (its claim was lost).
    pub fn drop_partition(&mut self, partition: i32) {
        self.last = None;
        let kept: Vec<(ListAppend, i32)> = std::mem::take(&mut self.appends)
            .into_iter()
            .zip(std::mem::take(&mut self.partitions))
            .filter(|(_, p)| *p != partition)
            .collect();
        self.index.clear();
        for (i, (a, p)) in kept.iter().enumerate() {
            self.index.entry(*p).or_default().insert(a.key.clone(), i);
        }
        (self.appends, self.partitions) = kept.into_iter().unzip();
        self.next.remove(&partition);
        if let Some((n, _)) = self.counts.remove(&partition) {
            self.records -= n;
        }
    }
}

/// One fetched record, parsed (by the fetcher task, beside the appends).
#[derive(Debug)]
pub struct Parsed {
    /// Its offset.
    pub offset: i64,
    /// Its approximate size in bytes.
    pub bytes: u64,
    /// Its list, or the dead-letter list when `unreadable`.
    pub key: String,
    /// Its item, or its dead-letter item when `unreadable`.
    pub item: EncodedItem,
    /// Why a parser could not read it.
    pub unreadable: Option<Unreadable>,
}

/// Parses record `r` of `partition`: its item, or (if a parser cannot read it) its
/// dead-letter item with the reason.
pub fn parse(s: &Settings, partition: i32, r: &RecordAndOffset) -> Parsed {
    let bytes = r.record.approximate_size() as u64;
    match item(s, partition, r) {
        Ok((key, item)) => Parsed {
            offset: r.offset,
            bytes,
            key,
            item,
            unreadable: None,
        },
        Err(why) => Parsed {
            offset: r.offset,
            bytes,
            key: s.dead_letter.clone().unwrap_or_default(),
            item: dead_letter(&s.topic, partition, r, &why),
            unreadable: Some(why),
        },
    }
}

fn item(
    s: &Settings,
    partition: i32,
    r: &RecordAndOffset,
) -> Result<(String, EncodedItem), Unreadable> {
    let src = Source {
        record: &r.record,
        offset: r.offset,
        partition,
    };
    let key = s.key.parse(&src)?;
    if key.is_empty() {
        return Err(Unreadable("the list key is empty".into()));
    }
    let nonce = s.nonce.parse(&src)?;
    let ts = s.timestamp.parse_time(&src)?;
    let value = s.value_format.item(r.record.value.as_deref())?;
    let item = EncodedItem::new(value, nonce, ts).map_err(|e| Unreadable(e.to_string()))?;
    Ok((key, item))
}

/// The dead-letter item of a record no parser could read: the reason and the record.
fn dead_letter(topic: &str, partition: i32, r: &RecordAndOffset, why: &Unreadable) -> EncodedItem {
    let headers: serde_json::Map<String, serde_json::Value> = r
        .record
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), bytes(v)))
        .collect();
    EncodedItem::from(&NewItem {
        value: serde_json::json!({
            "reason": why.to_string(),
            "topic": topic,
            "partition": partition,
            "offset": r.offset,
            "key": r.record.key.as_deref().map(bytes),
            "value": r.record.value.as_deref().map(bytes),
            "headers": headers,
        }),
        nonce: None,
        ts: None,
    })
}
