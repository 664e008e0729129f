//! The parsers of `reel kafka consume` (klstore's names): which part of a Kafka record
//! becomes the list key, the nonce and the time, and how its value becomes a list item.
//!
//! A parser that cannot read what it names (a missing header, a key that is not UTF-8,
//! a number that does not fit) returns a [`Unreadable`] reason; the bridge then sends the
//! record to the dead-letter list or stops, never drops it.

use crate::error::CliError;
use reel::Value;
use rskafka::record::Record;
use std::fmt;
use std::str::FromStr;

/// Why a record could not be parsed; stored with a dead-lettered record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Kafka record as the parsers see it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The record.
    pub record: &'a Record,
    /// Its offset in its partition.
    pub offset: i64,
    /// Its partition.
    pub partition: i32,
}

/// Which part of a record names its list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyParser {
    /// `Static(s)`: every record goes to list `s`.
    Static(String),
    /// `RecordHeader(name)`: the header's value as UTF-8.
    RecordHeader(String),
    /// `RecordKey`: the record key as UTF-8.
    RecordKey,
    /// `RecordPartition`: the partition number in decimal.
    RecordPartition,
}

/// Which part of a record becomes a number (nonce or time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumParser {
    /// `None`: no number.
    None,
    /// `RecordHeaderBigEndian(name)`: the header's bytes as an unsigned big-endian integer.
    HeaderBigEndian(String),
    /// `RecordHeaderLittleEndian(name)`: the header's bytes, little-endian.
    HeaderLittleEndian(String),
    /// `RecordHeaderUtf8(name)`: the header as a decimal number in UTF-8.
    HeaderUtf8(String),
    /// `RecordKeyBigEndian`: the record key, big-endian.
    KeyBigEndian,
    /// `RecordKeyLittleEndian`: the record key, little-endian.
    KeyLittleEndian,
    /// `RecordKeyUtf8`: the record key as a decimal number in UTF-8.
    KeyUtf8,
    /// `RecordOffset`: the record's offset in its partition.
    Offset,
    /// `RecordPartition`: the record's partition.
    Partition,
}

/// How a record value becomes a list item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// JSON if the value parses as JSON, else bytes.
    Auto,
    /// JSON; a value that is not is unreadable.
    Json,
    /// Bytes, as `{"$bytes": "<hex>"}` (how reel shows raw bytes).
    Bytes,
    /// A UTF-8 string; a value that is not is unreadable.
    String,
}

const KEY_PARSERS: &str = "Static(s), RecordHeader(name), RecordKey, RecordPartition";
const NUM_PARSERS: &str = "None, RecordHeaderBigEndian(name), RecordHeaderLittleEndian(name), RecordHeaderUtf8(name), RecordKeyBigEndian, RecordKeyLittleEndian, RecordKeyUtf8, RecordOffset, RecordPartition";

/// Splits `Name(arg)` into its name and argument; `Name` alone has none.
fn split(s: &str) -> Result<(&str, Option<&str>), CliError> {
    let s = s.trim();
    match s.find('(') {
        None => Ok((s, None)),
        Some(i) => {
            let arg = s[i + 1..].strip_suffix(')').ok_or_else(|| {
                CliError::Input(format!("parser {s:?}: missing `)` after the argument"))
            })?;
            Ok((&s[..i], Some(arg)))
        }
    }
}

/// The argument a parser needs, or an error naming the parser.
fn needs(name: &str, arg: Option<&str>) -> Result<String, CliError> {
    match arg {
        Some(a) if !a.is_empty() => Ok(a.to_string()),
        _ => Err(CliError::Input(format!(
            "parser {name} needs an argument: {name}(...)"
        ))),
    }
}

impl FromStr for KeyParser {
    type Err = CliError;
    fn from_str(s: &str) -> Result<Self, CliError> {
        let (name, arg) = split(s)?;
        let p = match name {
            "Static" => KeyParser::Static(needs(name, arg)?),
            "RecordHeader" => KeyParser::RecordHeader(needs(name, arg)?),
            "RecordKey" => KeyParser::RecordKey,
            "RecordPartition" => KeyParser::RecordPartition,
            _ => {
                return Err(CliError::Input(format!(
                    "unknown key parser {s:?}; one of: {KEY_PARSERS}"
                )));
            }
        };
        if arg.is_some() && matches!(p, KeyParser::RecordKey | KeyParser::RecordPartition) {
            return Err(CliError::Input(format!(
                "key parser {name} takes no argument"
            )));
        }
        Ok(p)
    }
}

impl FromStr for NumParser {
    type Err = CliError;
    fn from_str(s: &str) -> Result<Self, CliError> {
        let (name, arg) = split(s)?;
        let p = match name {
            "None" => NumParser::None,
            "RecordHeaderBigEndian" => NumParser::HeaderBigEndian(needs(name, arg)?),
            "RecordHeaderLittleEndian" => NumParser::HeaderLittleEndian(needs(name, arg)?),
            "RecordHeaderUtf8" => NumParser::HeaderUtf8(needs(name, arg)?),
            "RecordKeyBigEndian" => NumParser::KeyBigEndian,
            "RecordKeyLittleEndian" => NumParser::KeyLittleEndian,
            "RecordKeyUtf8" => NumParser::KeyUtf8,
            "RecordOffset" => NumParser::Offset,
            "RecordPartition" => NumParser::Partition,
            _ => {
                return Err(CliError::Input(format!(
                    "unknown parser {s:?}; one of: {NUM_PARSERS}"
                )));
            }
        };
        let takes_arg = matches!(
            p,
            NumParser::HeaderBigEndian(_)
                | NumParser::HeaderLittleEndian(_)
                | NumParser::HeaderUtf8(_)
        );
        if arg.is_some() && !takes_arg {
            return Err(CliError::Input(format!("parser {name} takes no argument")));
        }
        Ok(p)
    }
}

fn header<'a>(src: &Source<'a>, name: &str) -> Result<&'a [u8], Unreadable> {
    src.record
        .headers
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| Unreadable(format!("header {name:?} missing")))
}

fn key<'a>(src: &Source<'a>) -> Result<&'a [u8], Unreadable> {
    src.record
        .key
        .as_deref()
        .ok_or_else(|| Unreadable("record has no key".into()))
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Unreadable> {
    std::str::from_utf8(bytes).map_err(|_| Unreadable(format!("{what} is not UTF-8")))
}

/// An unsigned integer of 1 to 16 bytes.
fn integer(bytes: &[u8], big_endian: bool, what: &str) -> Result<u128, Unreadable> {
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(Unreadable(format!(
            "{what} has {} bytes; a binary number has 1 to 16",
            bytes.len()
        )));
    }
    let fold = |n: u128, b: &u8| (n << 8) | u128::from(*b);
    Ok(if big_endian {
        bytes.iter().fold(0, fold)
    } else {
        bytes.iter().rev().fold(0, fold)
    })
}

fn decimal(bytes: &[u8], what: &str) -> Result<u128, Unreadable> {
    let s = utf8(bytes, what)?;
    s.trim()
        .parse()
        .map_err(|_| Unreadable(format!("{what} {s:?} is not a non-negative decimal number")))
}

impl KeyParser {
    /// The list key of `src`.
    pub fn parse(&self, src: &Source<'_>) -> Result<String, Unreadable> {
        match self {
            KeyParser::Static(s) => Ok(s.clone()),
            KeyParser::RecordHeader(name) => {
                let what = format!("header {name:?}");
                Ok(utf8(header(src, name)?, &what)?.to_string())
            }
            KeyParser::RecordKey => Ok(utf8(key(src)?, "record key")?.to_string()),
            KeyParser::RecordPartition => Ok(src.partition.to_string()),
        }
    }
}

impl NumParser {
    /// The number `src` gives, if the parser names one.
    pub fn parse(&self, src: &Source<'_>) -> Result<Option<u128>, Unreadable> {
        let h = |name: &str| header(src, name).map(|b| (b, format!("header {name:?}")));
        let n = match self {
            NumParser::None => return Ok(None),
            NumParser::HeaderBigEndian(name) => h(name).and_then(|(b, w)| integer(b, true, &w))?,
            NumParser::HeaderLittleEndian(name) => {
                h(name).and_then(|(b, w)| integer(b, false, &w))?
            }
            NumParser::HeaderUtf8(name) => h(name).and_then(|(b, w)| decimal(b, &w))?,
            NumParser::KeyBigEndian => integer(key(src)?, true, "record key")?,
            NumParser::KeyLittleEndian => integer(key(src)?, false, "record key")?,
            NumParser::KeyUtf8 => decimal(key(src)?, "record key")?,
            // Offsets and partitions are never negative in records a broker returns.
            NumParser::Offset => u128::try_from(src.offset)
                .map_err(|_| Unreadable(format!("negative offset {}", src.offset)))?,
            NumParser::Partition => u128::try_from(src.partition)
                .map_err(|_| Unreadable(format!("negative partition {}", src.partition)))?,
        };
        Ok(Some(n))
    }

    /// A time in microseconds since the epoch (a list item's `ts` is an i64).
    pub fn parse_time(&self, src: &Source<'_>) -> Result<Option<i64>, Unreadable> {
        self.parse(src)?
            .map(|n| {
                i64::try_from(n).map_err(|_| Unreadable(format!("time {n} does not fit in an i64")))
            })
            .transpose()
    }
}

impl ValueFormat {
    /// The list item a record value becomes (an absent value is JSON null).
    /// JSON is encoded straight from the record's bytes, never parsed into a tree: this
    /// is most of the bridge's work per record.
    pub fn item(self, value: Option<&[u8]>) -> Result<Value, Unreadable> {
        let Some(v) = value else {
            return Ok(Value::json(&serde_json::Value::Null));
        };
        match self {
            ValueFormat::Auto => {
                Ok(Value::from_json_text(v).unwrap_or_else(|_| Value::json(&bytes(v))))
            }
            ValueFormat::Json => Value::from_json_text(v).map_err(|e| match e {
                // "not JSON: expected value at line 1 column 1"
                reel::Error::Decode(why) => Unreadable(format!("value is {why}")),
                other => Unreadable(other.to_string()),
            }),
            ValueFormat::Bytes => Ok(Value::json(&bytes(v))),
            ValueFormat::String => Ok(Value::json(&serde_json::Value::String(
                utf8(v, "value")?.to_string(),
            ))),
        }
    }
}

/// Raw bytes as reel shows them: `{"$bytes": "<lowercase hex>"}`.
pub fn bytes(b: &[u8]) -> serde_json::Value {
    let mut hex = String::with_capacity(b.len() * 2);
    for byte in b {
        hex.push_str(&format!("{byte:02x}"));
    }
    serde_json::json!({ "$bytes": hex })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&[u8]>, headers: &[(&str, &[u8])]) -> Record {
        Record {
            key: key.map(<[u8]>::to_vec),
            value: None,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
            timestamp: rskafka::chrono::DateTime::from_timestamp_millis(0).unwrap_or_default(),
        }
    }

    #[test]
    fn names_parse_and_bad_names_say_what_is_allowed() {
        assert_eq!(
            "Static(orders)".parse::<KeyParser>().unwrap(),
            KeyParser::Static("orders".into())
        );
        assert_eq!(
            "RecordHeaderLittleEndian(n)".parse::<NumParser>().unwrap(),
            NumParser::HeaderLittleEndian("n".into())
        );
        let e = "RecordValue".parse::<NumParser>().unwrap_err().to_string();
        assert!(
            e.contains("unknown parser \"RecordValue\"") && e.contains("RecordOffset"),
            "{e}"
        );
        let e = "RecordHeader".parse::<KeyParser>().unwrap_err().to_string();
        assert!(e.contains("needs an argument"), "{e}");
        let e = "RecordOffset(x)"
            .parse::<NumParser>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("takes no argument"), "{e}");
    }

    #[test]
    fn numbers_read_in_both_byte_orders_and_decimal() {
        let r = record(Some(&[1, 2]), &[("n", &[0, 0, 1, 0]), ("d", b"42")]);
        let src = Source {
            record: &r,
            offset: 9,
            partition: 3,
        };
        let p = |s: &str| s.parse::<NumParser>().unwrap().parse(&src);
        assert_eq!(p("RecordHeaderBigEndian(n)"), Ok(Some(256)));
        assert_eq!(p("RecordHeaderLittleEndian(n)"), Ok(Some(65536)));
        assert_eq!(p("RecordHeaderUtf8(d)"), Ok(Some(42)));
        assert_eq!(p("RecordKeyBigEndian"), Ok(Some(0x0102)));
        assert_eq!(p("RecordKeyLittleEndian"), Ok(Some(0x0201)));
        assert_eq!(p("RecordOffset"), Ok(Some(9)));
        assert_eq!(p("RecordPartition"), Ok(Some(3)));
        assert_eq!(p("None"), Ok(None));
        assert_eq!(
            p("RecordHeaderUtf8(x)"),
            Err(Unreadable("header \"x\" missing".into()))
        );
        assert!(p("RecordKeyUtf8").is_err());
    }
}
