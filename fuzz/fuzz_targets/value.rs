//! `reel::json_of` on arbitrary bytes, with both encodings.
//!
//! Raw bytes always convert, to `{"$bytes": "<hex>"}`. MessagePack that converts to
//! JSON must survive a round trip through `Value::json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel::{Encoding, Value, json_of};

fuzz_target!(|data: &[u8]| {
    let raw = json_of(Encoding::Bytes, data).expect("raw bytes always convert");
    let hex = raw["$bytes"].as_str().expect("raw bytes show as hex");
    assert_eq!(hex.len(), data.len() * 2);

    if let Ok(json) = json_of(Encoding::MsgPack, data) {
        let value = Value::json(&json);
        assert_eq!(value.encoding(), Encoding::MsgPack);
        let back = json_of(Encoding::MsgPack, value.as_bytes())
            .unwrap_or_else(|e| panic!("re-encoded {json} does not decode: {e}"));
        assert_eq!(back, json);
        assert_eq!(
            Value::from_parts(Encoding::MsgPack, data.to_vec())
                .to_json()
                .ok(),
            Some(json)
        );
    }
});
