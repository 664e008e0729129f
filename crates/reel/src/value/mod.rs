//! Record values: JSON-compatible data stored as MessagePack, or raw bytes.
//!
//! The engine stores a 4-bit encoding tag with every record; this module owns the tags:
//! `0` raw bytes, `1` MessagePack (any JSON-compatible value, maps with string keys),
//! `2` keyed-list item (a u64 list offset, then MessagePack), `15` tombstone (a kv
//! deletion, no value; the engine's compaction knows this tag).

mod json_text;

pub use json_text::{check_integers, check_parsed, parse_json};

use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Tag of a keyed-list item: 8 bytes of list offset, then the MessagePack value.
pub const TAG_LIST_ITEM: u8 = 2;
/// Tag of a kv deletion.
pub const TAG_TOMBSTONE: u8 = reel_log::frame::TOMBSTONE;

/// How a value's bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Opaque bytes.
    Bytes,
    /// MessagePack of a JSON-compatible value.
    MsgPack,
    /// A keyed-list item: 8 bytes of list offset, then MessagePack.
    ListItem,
    /// A kv deletion; no value (shown as JSON `null`).
    Tombstone,
}

impl Encoding {
    /// The tag stored in each frame.
    pub fn tag(self) -> u8 {
        match self {
            Encoding::Bytes => 0,
            Encoding::MsgPack => 1,
            Encoding::ListItem => TAG_LIST_ITEM,
            Encoding::Tombstone => TAG_TOMBSTONE,
        }
    }

    /// The encoding of a stored tag.
    pub fn from_tag(tag: u8) -> Result<Encoding> {
        match tag {
            0 => Ok(Encoding::Bytes),
            1 => Ok(Encoding::MsgPack),
            TAG_LIST_ITEM => Ok(Encoding::ListItem),
            TAG_TOMBSTONE => Ok(Encoding::Tombstone),
            other => Err(Error::Decode(format!("unknown value encoding tag {other}"))),
        }
    }
}

/// A record's value, in its stored form. Convert with [`Value::to_json`] or
/// [`Value::decode`].
///
/// ```
/// use reel::Value;
/// let v = Value::json(&serde_json::json!({"day": "Wed", "temp": 37}));
/// assert_eq!(v.to_json()?["temp"], 37);
/// # Ok::<(), reel::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Value {
    encoding: Encoding,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_json() {
            Ok(j) => write!(f, "Value({j})"),
            Err(_) => write!(f, "Value({:?}, {} bytes)", self.encoding, self.bytes.len()),
        }
    }
}

impl Value {
    /// A JSON value.
    pub fn json(v: &serde_json::Value) -> Value {
        // Serializing a serde_json::Value to MessagePack cannot fail: every variant maps.
        let bytes = rmp_serde::to_vec_named(v).unwrap_or_default();
        Value {
            encoding: Encoding::MsgPack,
            bytes,
        }
    }

    /// JSON text, encoded straight to MessagePack: the same bytes as [`Value::json`] of
    /// the parsed text, without building the parsed value (a repeated object key is
    /// kept twice, where parsing would keep the last).
    pub fn from_json_text(text: &[u8]) -> Result<Value> {
        let mut de = serde_json::Deserializer::from_slice(text);
        let mut bytes = Vec::with_capacity(text.len());
        let mut ser = rmp_serde::Serializer::new(&mut bytes).with_struct_map();
        serde_transcode::transcode(&mut de, &mut ser)
            .map_err(|e| Error::Decode(format!("not JSON: {e}")))?;
        de.end()
            .map_err(|e| Error::Decode(format!("not JSON: {e}")))?;
        // An integer literal beyond 64 bits comes out as a double (MessagePack 0xcb): only
        // then is the text looked at again.
        if bytes.contains(&0xcb) {
            check_integers(text).map_err(|e| Error::Decode(format!("not stored: {e}")))?;
        }
        Ok(Value {
            encoding: Encoding::MsgPack,
            bytes,
        })
    }

    /// Any serializable value (structs become maps with their field names).
    pub fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Value> {
        let bytes = rmp_serde::to_vec_named(v).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(Value {
            encoding: Encoding::MsgPack,
            bytes,
        })
    }

    /// Raw bytes.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Value {
        Value {
            encoding: Encoding::Bytes,
            bytes: bytes.into(),
        }
    }

    /// Rebuilds a value from stored parts.
    pub fn from_parts(encoding: Encoding, bytes: Vec<u8>) -> Value {
        Value { encoding, bytes }
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// As JSON. Raw bytes become `{"$bytes": "<lowercase hex>"}`.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        json_of(self.encoding, &self.bytes)
    }

    /// Decodes into any deserializable type.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        let msgpack = |b: &[u8]| rmp_serde::from_slice(b).map_err(|e| Error::Decode(e.to_string()));
        match self.encoding {
            Encoding::MsgPack => msgpack(&self.bytes),
            Encoding::ListItem => msgpack(self.bytes.get(8..).unwrap_or_default()),
            Encoding::Bytes | Encoding::Tombstone => {
                serde_json::from_value(self.to_json()?).map_err(|e| Error::Decode(e.to_string()))
            }
        }
    }
}

/// Converts stored value bytes to JSON without copying them into a [`Value`] first.
pub fn json_of(encoding: Encoding, bytes: &[u8]) -> Result<serde_json::Value> {
    let msgpack = |b: &[u8]| rmp_serde::from_slice(b).map_err(|e| Error::Decode(e.to_string()));
    match encoding {
        Encoding::MsgPack => msgpack(bytes),
        Encoding::ListItem => msgpack(bytes.get(8..).unwrap_or_default()),
        Encoding::Tombstone => Ok(serde_json::Value::Null),
        Encoding::Bytes => {
            let mut hex = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                hex.push_str(&format!("{b:02x}"));
            }
            Ok(serde_json::json!({ "$bytes": hex }))
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::json(&v)
    }
}

impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Self {
        Value::json(v)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::json(&serde_json::Value::String(s.to_string()))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::json(&serde_json::Value::String(s))
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_strategy() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (-1e300f64..1e300).prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(".{0,10}", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_round_trips(v in json_strategy()) {
            prop_assert_eq!(Value::json(&v).to_json().unwrap(), v);
        }

        #[test]
        fn json_text_encodes_to_the_same_bytes_as_its_parsed_value(v in json_strategy()) {
            // Parsed from the same text: serde_json's float parsing is not exact, the
            // same way on both paths.
            let text = serde_json::to_vec(&v).unwrap();
            let parsed: serde_json::Value = serde_json::from_slice(&text).unwrap();
            prop_assert_eq!(Value::from_json_text(&text).unwrap(), Value::json(&parsed));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Value::from_parts(Encoding::MsgPack, b).to_json();
        }
    }

    #[test]
    fn text_that_is_not_json_is_refused() {
        assert!(Value::from_json_text(b"{\"a\":1} x").is_err());
        assert!(Value::from_json_text(b"not json").is_err());
        assert!(Value::from_json_text(b" [1, 2] ").is_ok());
    }

    #[test]
    fn raw_bytes_show_as_hex() {
        assert_eq!(
            Value::bytes(vec![0, 255]).to_json().unwrap(),
            serde_json::json!({"$bytes": "00ff"})
        );
    }

    #[test]
    fn structs_encode_as_maps() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            a: u32,
            b: String,
        }
        let v = Value::encode(&T {
            a: 1,
            b: "x".into(),
        })
        .unwrap();
        assert_eq!(v.to_json().unwrap(), serde_json::json!({"a": 1, "b": "x"}));
        assert_eq!(
            v.decode::<T>().unwrap(),
            T {
                a: 1,
                b: "x".into()
            }
        );
    }
}
