//! Continuation tokens: where the next page of a list starts, bound to one store and one
//! key so that a token used elsewhere is refused rather than misread.
//!
//! 32 bytes, printed as 64 lowercase hex digits:
//! `"RL"` | version 1 | flags (bit 0: reverse) | next offset u64 | log id (low 64 bits)
//! | FNV-1a of the key u64 | CRC32C of the 28 bytes before.

use crate::error::{Error, Result};

/// A decoded token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Direction of the paging that issued it.
    pub reverse: bool,
    /// Offset of the first item of the next page.
    pub offset: u64,
}

fn key_hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Token {
    /// Encodes for the list `key` of the log `log_id`.
    pub fn encode(&self, log_id: u128, key: &str) -> String {
        let mut b = Vec::with_capacity(32);
        b.extend_from_slice(b"RL");
        b.push(1);
        b.push(u8::from(self.reverse));
        b.extend_from_slice(&self.offset.to_le_bytes());
        b.extend_from_slice(&(log_id as u64).to_le_bytes());
        b.extend_from_slice(&key_hash(key).to_le_bytes());
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        // By hand: a `format!` per byte was a third of the time of reading a page.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(64);
        for x in b {
            text.push(char::from(HEX[usize::from(x >> 4)]));
            text.push(char::from(HEX[usize::from(x & 15)]));
        }
        text
    }

    /// Decodes a token, checking it was issued for this list.
    pub fn decode(text: &str, log_id: u128, key: &str) -> Result<Token> {
        let malformed = || Error::InvalidArgument(format!("malformed continuation token `{text}`"));
        if text.len() != 64 || !text.is_ascii() {
            return Err(malformed());
        }
        let b: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| malformed())?;
        if &b[..2] != b"RL"
            || b[2] != 1
            || crc32c::crc32c(&b[..28]).to_le_bytes() != b[28..32]
            || b[3] > 1
        {
            return Err(malformed());
        }
        let u = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        if u(12) != log_id as u64 || u(20) != key_hash(key) {
            return Err(Error::InvalidArgument(format!(
                "continuation token `{text}` belongs to another list or store"
            )));
        }
        Ok(Token {
            reverse: b[3] == 1,
            offset: u(4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_token_of_one_key_is_refused_for_every_similar_key() {
        // Keys that differ by one byte, by order or by length: a weak key hash (one that
        // keeps few bits, or ignores order) would let a token pass for the wrong list.
        let mut keys: Vec<String> = (0..500).map(|i| format!("key{i}")).collect();
        keys.extend(
            [
                "ab", "ba", "a", "aa", "aaa", "", "b", "orders", "ordres", "sredro",
            ]
            .map(String::from),
        );
        keys.extend((0u8..=255).map(|b| String::from_utf8_lossy(&[b'x', b]).into_owned()));
        keys.sort();
        keys.dedup();
        let hashes: std::collections::HashSet<u64> = keys.iter().map(|k| key_hash(k)).collect();
        assert_eq!(hashes.len(), keys.len(), "distinct keys hash apart");
        let t = Token {
            reverse: false,
            offset: 7,
        };
        for (i, k) in keys.iter().enumerate().step_by(7) {
            let text = t.encode(42, k);
            for other in keys.iter().skip(i % 3).step_by(3).filter(|o| *o != k) {
                assert!(Token::decode(&text, 42, other).is_err(), "{k} -> {other}");
            }
            assert_eq!(Token::decode(&text, 42, k).unwrap(), t);
        }
    }

    #[test]
    fn round_trips_and_refuses_foreign_or_damaged_tokens() {
        let t = Token {
            reverse: true,
            offset: 42,
        };
        let s = t.encode(7, "k");
        assert_eq!(Token::decode(&s, 7, "k").unwrap(), t);
        assert!(
            Token::decode(&s, 8, "k")
                .unwrap_err()
                .to_string()
                .contains("another")
        );
        assert!(
            Token::decode(&s, 7, "j")
                .unwrap_err()
                .to_string()
                .contains("another")
        );
        let mut bad = s.clone().into_bytes();
        bad[20] = if bad[20] == b'0' { b'1' } else { b'0' };
        assert!(
            Token::decode(std::str::from_utf8(&bad).unwrap(), 7, "k")
                .unwrap_err()
                .to_string()
                .contains("malformed")
        );
        assert!(Token::decode("xyz", 7, "k").is_err());
    }

    #[test]
    fn a_token_of_another_version_or_with_unknown_flags_is_refused_even_with_a_valid_checksum() {
        let t = Token {
            reverse: false,
            offset: 3,
        };
        let text = t.encode(7, "k");
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        for (at, value) in [(0, b'X'), (2, 2), (3, 2)] {
            let mut b = bytes.clone();
            b[at] = value;
            let crc = crc32c::crc32c(&b[..28]);
            b[28..32].copy_from_slice(&crc.to_le_bytes());
            let forged: String = b.iter().map(|x| format!("{x:02x}")).collect();
            let err = Token::decode(&forged, 7, "k").unwrap_err().to_string();
            assert!(err.contains("malformed"), "byte {at} = {value}: {err}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            let _ = Token::decode(&s, 1, "k");
        }
    }
}
