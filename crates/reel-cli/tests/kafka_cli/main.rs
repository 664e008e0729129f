//! `reel kafka` against a real Kafka-protocol broker (Tansu): the contract of issue #12.
mod broker;
#[path = "../common/mod.rs"]
mod common;
mod crashes;
mod gaps;

use broker::{Broker, record};
use common::*;
use serde_json::{Value, json};
use std::path::Path;

/// `reel kafka consume --once --brokers B --topic T ARGS DIR`.
pub(crate) fn consume(b: &Broker, topic: &str, args: &[&str], dir: &Path) -> std::process::Output {
    let mut all = vec![
        "kafka",
        "consume",
        "--once",
        "--brokers",
        &b.addr,
        "--topic",
        topic,
    ];
    all.extend_from_slice(args);
    all.push(s(dir));
    reel(&all)
}

pub(crate) fn consume_ok(b: &Broker, topic: &str, args: &[&str], dir: &Path) -> Value {
    let out = consume(b, topic, args, dir);
    assert!(
        out.status.success(),
        "consume {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&String::from_utf8(out.stdout).unwrap()).remove(0)
}

/// Starts `reel kafka consume --brokers B --topic T ARGS DIR` (until stopped), its
/// stdout and stderr piped.
pub(crate) fn spawn_consume(
    b: &Broker,
    topic: &str,
    args: &[&str],
    dir: &Path,
) -> std::process::Child {
    std::process::Command::new(bin())
        .args(["kafka", "consume", "--brokers", &b.addr, "--topic", topic])
        .args(args)
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every item of list `key`: (nonce, ts, value).
fn items(dir: &Path, key: &str) -> Vec<(Value, i64, Value)> {
    let page = lines(&ok(&["list", "read", "--limit", "1000000", s(dir), key])).remove(0);
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["nonce"].clone(),
                i["ts"].as_i64().unwrap(),
                i["value"].clone(),
            )
        })
        .collect()
}

fn values(dir: &Path, key: &str) -> Vec<Value> {
    items(dir, key).into_iter().map(|(_, _, v)| v).collect()
}

fn nonces(dir: &Path, key: &str) -> Vec<Value> {
    items(dir, key).into_iter().map(|(n, _, _)| n).collect()
}

#[test]
fn header_parsers_read_both_byte_orders_and_utf8() {
    let b = Broker::start();
    let p = b.topic("h", 1);
    let recs = (0..3u64)
        .map(|i| {
            let be = (1000 + i).to_be_bytes();
            let le = (1_700_000_000_000_000 + i).to_le_bytes();
            let dec = format!("{}", 500 + i);
            let list = if i == 1 { "b" } else { "a" };
            record(
                format!("{{\"i\":{i}}}").as_bytes(),
                None,
                &[
                    ("list", list.as_bytes()),
                    ("be", &be),
                    ("le", &le),
                    ("dec", dec.as_bytes()),
                ],
            )
        })
        .collect();
    b.produce(&p[0], recs);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("be");
    let args = [
        "--key-parser",
        "RecordHeader(list)",
        "--nonce-parser",
        "RecordHeaderBigEndian(be)",
        "--timestamp-parser",
        "RecordHeaderLittleEndian(le)",
    ];
    assert_eq!(consume_ok(&b, "h", &args, &d)["stored"], 3);
    let a = items(&d, "a");
    assert_eq!(
        a,
        [
            (json!(1000), 1_700_000_000_000_000, json!({"i": 0})),
            (json!(1002), 1_700_000_000_000_002, json!({"i": 2}))
        ]
    );
    assert_eq!(values(&d, "b"), [json!({"i": 1})]);
    // The same records, numbers read the other way round and as decimal text.
    let d = tmp.path().join("le");
    let args = [
        "--key-parser",
        "Static(all)",
        "--nonce-parser",
        "RecordHeaderUtf8(dec)",
        "--timestamp-parser",
        "RecordHeaderBigEndian(be)",
    ];
    consume_ok(&b, "h", &args, &d);
    let all = items(&d, "all");
    assert_eq!(
        all.iter().map(|x| x.0.clone()).collect::<Vec<_>>(),
        [json!(500), json!(501), json!(502)]
    );
    assert_eq!(
        all.iter().map(|x| x.1).collect::<Vec<_>>(),
        [1000, 1001, 1002]
    );
    let d = tmp.path().join("le2");
    consume_ok(
        &b,
        "h",
        &[
            "--key-parser",
            "Static(x)",
            "--nonce-parser",
            "RecordHeaderLittleEndian(le)",
        ],
        &d,
    );
    assert_eq!(nonces(&d, "x")[2], json!(1_700_000_000_000_002u64));
}

#[test]
fn key_parsers_and_offset_and_partition_numbers() {
    let b = Broker::start();
    let p = b.topic("k", 2);
    // UTF-8 decimal keys on partition 0, 2-byte binary keys on partition 1.
    b.produce(
        &p[0],
        vec![
            record(b"\"x\"", Some(b"41"), &[]),
            record(b"\"y\"", Some(b"42"), &[]),
        ],
    );
    b.produce(&p[1], vec![record(b"\"z\"", Some(&[1, 2]), &[])]);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("partition");
    consume_ok(
        &b,
        "k",
        &[
            "--key-parser",
            "RecordPartition",
            "--nonce-parser",
            "RecordOffset",
        ],
        &d,
    );
    assert_eq!(values(&d, "0"), [json!("x"), json!("y")]);
    assert_eq!(nonces(&d, "0"), [json!(0), json!(1)]);
    assert_eq!(values(&d, "1"), [json!("z")]);
    // Partition numbers as nonces (per list: the second item of list 0 repeats nonce 0,
    // a duplicate) and offsets as times.
    let d = tmp.path().join("numbers");
    let r = consume_ok(
        &b,
        "k",
        &[
            "--key-parser",
            "RecordPartition",
            "--nonce-parser",
            "RecordPartition",
            "--timestamp-parser",
            "RecordOffset",
        ],
        &d,
    );
    assert_eq!(
        (r["stored"].clone(), r["duplicates"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(items(&d, "0"), [(json!(0), 0, json!("x"))]);
    assert_eq!(items(&d, "1"), [(json!(1), 0, json!("z"))]);
    // Keys as numbers: UTF-8 on partition 0; binary in both byte orders on partition 1
    // (partition 0's keys are 2 bytes too: "41" is 0x3431).
    let d = tmp.path().join("utf8");
    let out = consume(
        &b,
        "k",
        &[
            "--key-parser",
            "RecordKey",
            "--nonce-parser",
            "RecordKeyUtf8",
            "--dead-letter",
            "bad",
        ],
        &d,
    );
    assert!(out.status.success());
    assert_eq!(nonces(&d, "41"), [json!(41)]);
    let bad = values(&d, "bad");
    assert_eq!(
        bad.len(),
        1,
        "the binary key is neither a UTF-8 list key nor a number: {bad:?}"
    );
    assert_eq!(bad[0]["partition"], 1);
    let d = tmp.path().join("bin");
    consume_ok(
        &b,
        "k",
        &[
            "--key-parser",
            "RecordPartition",
            "--nonce-parser",
            "RecordKeyBigEndian",
        ],
        &d,
    );
    assert_eq!(nonces(&d, "1"), [json!(0x0102)]);
    assert_eq!(nonces(&d, "0"), [json!(0x3431), json!(0x3432)]);
    let d = tmp.path().join("bin-le");
    consume_ok(
        &b,
        "k",
        &[
            "--key-parser",
            "RecordPartition",
            "--nonce-parser",
            "RecordKeyLittleEndian",
        ],
        &d,
    );
    assert_eq!(nonces(&d, "1"), [json!(0x0201)]);
}

#[test]
fn values_become_json_bytes_or_strings() {
    let b = Broker::start();
    let p = b.topic("v", 1);
    b.produce(
        &p[0],
        vec![
            record(b"{\"a\":1}", None, &[]),
            record(b"not json", None, &[]),
            record(&[0xff, 0], None, &[]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("auto");
    consume_ok(&b, "v", &["--key-parser", "Static(v)"], &d);
    assert_eq!(
        values(&d, "v"),
        [
            json!({"a": 1}),
            json!({"$bytes": "6e6f74206a736f6e"}),
            json!({"$bytes": "ff00"})
        ]
    );
    let d = tmp.path().join("bytes");
    consume_ok(
        &b,
        "v",
        &["--key-parser", "Static(v)", "--value-format", "bytes"],
        &d,
    );
    assert_eq!(values(&d, "v")[0], json!({"$bytes": "7b2261223a317d"}));
    let d = tmp.path().join("string");
    let r = consume_ok(
        &b,
        "v",
        &[
            "--key-parser",
            "Static(v)",
            "--value-format",
            "string",
            "--dead-letter",
            "dl",
        ],
        &d,
    );
    assert_eq!(
        (r["stored"].clone(), r["dead_lettered"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(values(&d, "v"), [json!("{\"a\":1}"), json!("not json")]);
    assert_eq!(values(&d, "dl")[0]["reason"], "value is not UTF-8");
}

#[test]
fn unreadable_records_go_to_the_dead_letter_list_or_stop_the_bridge() {
    let b = Broker::start();
    let p = b.topic("d", 1);
    let recs = (0..5)
        .map(|i| {
            let h: &[(&str, &[u8])] = if i == 2 { &[] } else { &[("c", b"orders")] };
            record(format!("{i}").as_bytes(), Some(b"k"), h)
        })
        .collect();
    b.produce(&p[0], recs);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("dl");
    let r = consume_ok(
        &b,
        "d",
        &["--key-parser", "RecordHeader(c)", "--dead-letter", "dead"],
        &d,
    );
    assert_eq!(
        (r["stored"].clone(), r["dead_lettered"].clone()),
        (json!(4), json!(1))
    );
    assert_eq!(
        values(&d, "orders"),
        [json!(0), json!(1), json!(3), json!(4)]
    );
    let dead = values(&d, "dead");
    assert_eq!(dead[0]["reason"], "header \"c\" missing");
    assert_eq!(
        (dead[0]["offset"].clone(), dead[0]["value"].clone()),
        (json!(2), json!({"$bytes": "32"}))
    );
    assert_eq!(dead[0]["key"], json!({"$bytes": "6b"}));
    // --on-error stop: the records before the bad one are stored, then a clear error.
    let d = tmp.path().join("stop");
    let args = [
        "--key-parser",
        "RecordHeader(c)",
        "--dead-letter",
        "dead",
        "--on-error",
        "stop",
    ];
    let out = consume(&b, "d", &args, &d);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("partition 0 offset 2: header \"c\" missing"),
        "{err}"
    );
    assert_eq!(values(&d, "orders"), [json!(0), json!(1)]);
    // A restart stops at the same record: it was not skipped.
    let out = consume(&b, "d", &args, &d);
    assert!(String::from_utf8_lossy(&out.stderr).contains("offset 2"));
    assert_eq!(values(&d, "orders").len(), 2);
    assert!(items(&d, "dead").is_empty());
}

#[test]
fn a_config_file_sets_the_bridge_and_mistakes_are_named() {
    let b = Broker::start();
    let p = b.topic("c", 1);
    b.produce(
        &p[0],
        vec![record(b"1", Some(b"7"), &[]), record(b"2", Some(b"8"), &[])],
    );
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bridge.toml");
    let text = format!(
        "[kafka]\nbootstrap.servers = \"{}\"\ntopic = \"c\"\ngroup.id = \"g\"\nenable.auto.commit = true\n\n[batcher]\nbatch_flush_item_count_threshold = 1\nbatch_flush_interval_millis = 100\n\n[parser]\nkey_parser = \"Static(cfg)\"\nnonce_parser = \"RecordKeyUtf8\"\n",
        b.addr
    );
    std::fs::write(&cfg, text).unwrap();
    let d = tmp.path().join("store");
    let out = ok(&["kafka", "consume", "--once", "--config", s(&cfg), s(&d)]);
    assert_eq!(lines(&out)[0]["stored"], 2);
    assert_eq!(nonces(&d, "cfg"), [json!(7), json!(8)]);
    // group.id came from the file: the checkpoint is the group's.
    assert_eq!(items(&d, "_kafka/g/c/0").last().unwrap().2["offset"], 2);
    // One checkpoint per record (batch_flush_item_count_threshold = 1) after the claim.
    assert_eq!(items(&d, "_kafka/g/c/0").len(), 3);
    let config_error = |text: &str| {
        std::fs::write(&cfg, text).unwrap();
        fails(&[
            "kafka",
            "consume",
            "--config",
            s(&cfg),
            "--topic",
            "c",
            s(&d),
        ])
    };
    let err = config_error("[parser]\nkeyspace_parser = \"Static(ks)\"\n");
    assert!(
        err.contains("unknown field `keyspace_parser`") && err.contains("bridge.toml"),
        "{err}"
    );
    let err = config_error("[kafka]\nsession.timeout.ms = \"1\"\n");
    assert!(
        err.contains("unknown key `session.timeout.ms` in [kafka]"),
        "{err}"
    );
    let err = fails(&[
        "kafka",
        "consume",
        "--topic",
        "c",
        "--nonce-parser",
        "RecordValue",
        s(&d),
    ]);
    assert!(
        err.contains("unknown parser \"RecordValue\"") && err.contains("RecordKeyUtf8"),
        "{err}"
    );
    let err = fails(&[
        "kafka",
        "consume",
        "--brokers",
        &b.addr,
        "--topic",
        "nope",
        s(&d),
    ]);
    assert!(err.contains("topic \"nope\" does not exist"), "{err}");
    let err = fails(&[
        "kafka",
        "consume",
        "--topic",
        "c",
        "http://127.0.0.1:1/lists",
    ]);
    assert!(err.contains("writes to a local directory"), "{err}");
}

#[test]
fn an_unreachable_broker_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let err = fails(&[
        "kafka",
        "consume",
        "--brokers",
        &addr,
        "--topic",
        "t",
        s(&tmp.path().join("d")),
    ]);
    assert!(
        err.contains(&format!("cannot reach the brokers {addr}")),
        "{err}"
    );
}

#[test]
fn produce_publishes_a_spool_through_a_named_reader() {
    let b = Broker::start();
    b.topic("out", 2);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    ok(&["init", s(&src)]);
    for i in 0..10 {
        ok(&[
            "write",
            s(&src),
            &format!("{{\"i\":{i},\"c\":\"c{}\"}}", i % 3),
        ]);
    }
    let produce = |reader: &str| {
        let out = ok(&[
            "kafka",
            "produce",
            "--brokers",
            &b.addr,
            "--topic",
            "out",
            "--key-from",
            "c",
            "--no-wait",
            "--reader",
            reader,
            s(&src),
        ]);
        lines(&out)[0]["published"].as_u64().unwrap()
    };
    assert_eq!(produce("k"), 10);
    assert_eq!(produce("k"), 0, "the reader's position was committed");
    for i in 10..13 {
        ok(&[
            "write",
            s(&src),
            &format!("{{\"i\":{i},\"c\":\"c{}\"}}", i % 3),
        ]);
    }
    assert_eq!(produce("k"), 3);
    // Read the topic back with the bridge: every record once; the same key always on
    // the same partition, in order; reel-seq dedupes a second publication.
    assert_eq!(produce("again"), 13);
    let d = tmp.path().join("back");
    let args = [
        "--key-parser",
        "RecordKey",
        "--nonce-parser",
        "RecordHeaderUtf8(reel-seq)",
    ];
    let r = consume_ok(&b, "out", &args, &d);
    assert_eq!(
        (r["stored"].clone(), r["duplicates"].clone()),
        (json!(13), json!(13))
    );
    let mut seen = Vec::new();
    for c in ["c0", "c1", "c2"] {
        let v = values(&d, c);
        let is: Vec<u64> = v.iter().map(|x| x["i"].as_u64().unwrap()).collect();
        assert!(is.windows(2).all(|w| w[0] < w[1]), "{c}: {is:?}");
        seen.extend(is);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..13).collect::<Vec<_>>());
}

#[test]
fn a_second_bridge_without_a_group_fences_the_first_and_nothing_is_stored_twice() {
    let b = Broker::start();
    let p = b.topic("f", 1);
    let produce = |from: u64, to: u64| {
        let recs = (from..to)
            .map(|i| record(format!("{i}").as_bytes(), None, &[]))
            .collect();
        b.produce(&p[0], recs);
    };
    produce(0, 10);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("lists");
    let first = spawn_consume(&b, "f", &["--batch-interval", "10ms"], &d);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !d.join("reel.meta").exists() || values(&d, "0").len() < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first bridge stored nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A second bridge takes the partition over from the stored checkpoint.
    assert_eq!(consume_ok(&b, "f", &[], &d)["stored"], 0);
    produce(10, 15);
    // The first bridge's next batch fails its condition: it stops, storing nothing.
    let out = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("another bridge stored this partition"),
        "{err}"
    );
    assert_eq!(consume_ok(&b, "f", &[], &d)["stored"], 5);
    let got: Vec<Value> = values(&d, "0");
    assert_eq!(got, (0..15).map(|i| json!(i)).collect::<Vec<_>>());
}
