//! Records as the embedded API hands them out ([`Record`]) and takes them in
//! ([`NewRecord`]).

use crate::error::Result;
use crate::value::{Encoding, Value, json_of};
use reel_log::{Entry, RecordRef};

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number: dense, assigned at append.
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub ts: i64,
    /// Optional key.
    pub key: Option<String>,
    /// Optional nonce.
    pub nonce: Option<u128>,
    /// The value.
    pub value: Value,
}

impl Record {
    /// Copies a record out of a read buffer.
    pub fn from_ref(r: &RecordRef<'_>) -> Result<Record> {
        Ok(Record {
            seq: r.seq,
            ts: r.ts,
            key: r.key.map(str::to_string),
            nonce: r.nonce,
            value: Value::from_parts(Encoding::from_tag(r.encoding)?, r.value.to_vec()),
        })
    }

    /// Borrows as the engine's in-place record.
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            seq: self.seq,
            ts: self.ts,
            key: self.key.as_deref(),
            nonce: self.nonce,
            encoding: self.value.encoding().tag(),
            value: self.value.as_bytes(),
        }
    }

    /// `{"seq":..,"ts":..,"key":..,"value":..}` (and `"nonce"` when set).
    pub fn to_json_meta(&self) -> Result<serde_json::Value> {
        meta_json(
            self.seq,
            self.ts,
            self.key.as_deref(),
            self.nonce,
            self.value.encoding().tag(),
            &self.value.to_json()?,
        )
    }
}

/// Builds the `--meta` JSON object of a record: `"deleted": true` marks a deletion (a kv
/// `del`), whose value prints as `null` like a stored `null`.
pub fn meta_json(
    seq: u64,
    ts: i64,
    key: Option<&str>,
    nonce: Option<u128>,
    encoding: u8,
    value: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("seq".into(), seq.into());
    m.insert("ts".into(), ts.into());
    m.insert(
        "key".into(),
        key.map_or(serde_json::Value::Null, |k| k.into()),
    );
    if let Some(n) = nonce {
        m.insert("nonce".into(), nonce_json(n));
    }
    m.insert("value".into(), value.clone());
    if encoding == crate::value::TAG_TOMBSTONE {
        m.insert("deleted".into(), true.into());
    }
    Ok(serde_json::Value::Object(m))
}

/// Nonces above 2^53 lose precision as JSON numbers in many languages; reel prints
/// them as numbers when they fit in u64 and as decimal strings otherwise.
pub fn nonce_json(n: u128) -> serde_json::Value {
    match u64::try_from(n) {
        Ok(v) => v.into(),
        Err(_) => n.to_string().into(),
    }
}

/// The JSON of a record read in place.
pub fn value_json(r: &RecordRef<'_>) -> Result<serde_json::Value> {
    json_of(Encoding::from_tag(r.encoding)?, r.value)
}

/// A record to append.
///
/// ```
/// use reel::NewRecord;
/// let r = NewRecord::new(serde_json::json!({"temp": 37})).key("sensor-1").ts(1_700_000_000_000_000);
/// assert_eq!(r.key.as_deref(), Some("sensor-1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// The value.
    pub value: Value,
    /// Optional key.
    pub key: Option<String>,
    /// Optional nonce.
    pub nonce: Option<u128>,
    /// Timestamp; `None` means the time of the append.
    pub ts: Option<i64>,
}

impl NewRecord {
    /// A record holding `value`.
    pub fn new(value: impl Into<Value>) -> Self {
        NewRecord {
            value: value.into(),
            key: None,
            nonce: None,
            ts: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the nonce.
    pub fn nonce(mut self, nonce: u128) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Sets the timestamp (microseconds since the Unix epoch).
    pub fn ts(mut self, ts: i64) -> Self {
        self.ts = Some(ts);
        self
    }

    /// Borrows as an engine entry.
    pub fn as_entry(&self) -> Entry<'_> {
        Entry {
            ts: self.ts,
            key: self.key.as_deref(),
            nonce: self.nonce,
            encoding: self.value.encoding().tag(),
            value: self.value.as_bytes(),
        }
    }
}

impl<T: Into<Value>> From<T> for NewRecord {
    fn from(v: T) -> Self {
        NewRecord::new(v)
    }
}
