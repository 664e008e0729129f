//! `reel_tier::Manifest::decode` (the manifest of a store in object storage) on arbitrary
//! bytes, and on manifests the input describes as JSON with a correct checksum.
//!
//! Input: one mode byte, then the bytes. Mode bit 0: if the bytes parse as a manifest,
//! re-encode them (which fills in the checksum) so the fuzzer reaches the checks behind
//! it. Whatever decodes must re-encode to a manifest that decodes to the same value, and
//! its kind, configuration and identity are read without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel_tier::Manifest;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 != 0
        && let Ok(m) = serde_json::from_slice::<Manifest>(&bytes)
    {
        bytes = m.encode();
    }
    if let Ok(m) = Manifest::decode(&bytes) {
        let again = Manifest::decode(&m.encode()).expect("a decoded manifest re-encodes");
        assert_eq!(again, m);
        let _ = m.store_kind();
        let _ = m.store_config().map(|c| c.validate());
        let _ = m.store_log_id();
        assert!(m.objects.windows(2).all(|w| w[0].next <= w[1].first));
    }
});
