//! A checkpoint the partition does not reach: the topic was recreated (or its broker lost
//! its log), its offsets restarted at 0, and consuming on would skip every new record
//! below the checkpoint without a word.

use crate::broker::{Broker, record};
use crate::consume;
use crate::{consume_ok, values};
use serde_json::json;

#[test]
fn a_checkpoint_past_the_high_watermark_stops_the_bridge() {
    let args = ["--key-parser", "RecordKey"];
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("l");
    let recs = |n: u32| {
        (0..n)
            .map(|i| record(format!("{i}").as_bytes(), Some(b"k"), &[]))
            .collect()
    };
    {
        let b = Broker::start();
        let p = b.topic("t", 1);
        b.produce(&p[0], recs(5));
        consume_ok(&b, "t", &args, &d);
    }
    // The same topic on a new broker (memory storage): offsets 0 and 1 only.
    let b = Broker::start();
    let p = b.topic("t", 1);
    b.produce(&p[0], recs(2));
    let out = consume(&b, "t", &args, &d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for part in [
        "\"t\"",
        "partition 0",
        "offset 5",
        "offset 2",
        "high watermark",
    ] {
        assert!(err.contains(part), "{part} missing: {err}");
    }
    assert_eq!(values(&d, "k").len(), 5);
    assert_eq!(values(&d, "k")[4], json!(4));
}
