//! List continuation tokens (`reel list read --continue TOKEN`) on arbitrary text.
//!
//! Input: a mode byte (bit 0: build a well-formed token from the rest, so the fuzzer
//! also reaches the checks behind the checksum), 8 bytes of offset, then the text.
//! Nothing may panic; a token that decodes must re-encode to the same text, and one
//! issued for another store or key must be refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel::list::token::Token;

const LOG_ID: u128 = 0x0123_4567_89ab_cdef_0011_2233_4455_6677;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (offset, text) = rest.split_at(rest.len().min(8));
    let mut o = [0u8; 8];
    o[..offset.len()].copy_from_slice(offset);
    let offset = u64::from_le_bytes(o);
    let key = String::from_utf8_lossy(text).into_owned();
    let token = if mode & 1 == 1 {
        Token { reverse: mode & 2 == 2, offset }.encode(LOG_ID, &key)
    } else {
        key.clone()
    };
    match Token::decode(&token, LOG_ID, &key) {
        Ok(t) => {
            assert_eq!(t.encode(LOG_ID, &key), token.to_ascii_lowercase());
            assert!(Token::decode(&token, LOG_ID ^ 1, &key).is_err());
            assert!(Token::decode(&token, LOG_ID, &format!("{key}x")).is_err());
        }
        Err(_) => assert!(mode & 1 == 0, "a token just issued must decode"),
    }
});
