//! `reel bench --kafka BROKERS`: the Kafka bridge next to the client alone, on a topic of
//! its own on the given broker (one partition, JSON values of `--value-size` bytes),
//! once per size of `--kafka-produce-batch`: the records per produce request, so per
//! record batch on the broker. The default, 1 and 1,000, shows both ends: a producer
//! that sends each record as it comes (the broker's per-batch cost dominates, ~100k
//! records/s from Tansu here) and one that batches (reading is cheap and the bridge's
//! own cost per record shows).
//!
//! - read only: the same rskafka client and fetch size the bridge uses, reading the topic
//!   from its first record to its end and doing nothing with the records;
//! - bridge: a `reel kafka consume --once` process with batches of 1,000 into a fresh
//!   lists store; its rate is the summary's stored records over its own run time (from
//!   connecting to the last batch stored, so its claim and checkpoint writes count).
//!
//! Three rounds, alternating, so that a broker warming up favours neither; the figures
//! are the medians.

use super::sample_values;
use crate::error::{CliError, CliResult};
use crate::output::{Output, note};
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

const ROUNDS: usize = 3;

#[derive(Debug, Serialize)]
struct KafkaReport {
    records: u64,
    /// Records per produce request (per record batch) in the topic.
    produce_batch: usize,
    /// Records/s the client alone reads.
    read_per_s: f64,
    /// Records/s the bridge stores in lists, checkpoints included.
    bridge_per_s: f64,
    /// bridge_per_s / read_per_s.
    ratio: f64,
}

fn kafka_err(e: impl std::fmt::Display) -> CliError {
    CliError::Kafka(e.to_string())
}

/// Runs the Kafka figures against `brokers`, on one topic per size of `produce_batches`.
pub fn run(
    work: &Path,
    brokers: &str,
    records: u64,
    produce_batches: &[u64],
    value_size: usize,
    json: bool,
    out: &mut Output,
) -> CliResult {
    for &b in produce_batches {
        run_one(work, brokers, records, b as usize, value_size, json, out)?;
    }
    Ok(())
}

/// The figures on a new topic filled `produce_batch` records per produce request.
fn run_one(
    work: &Path,
    brokers: &str,
    records: u64,
    produce_batch: usize,
    value_size: usize,
    json: bool,
    out: &mut Output,
) -> CliResult {
    let topic = format!("reel-bench-{}-{produce_batch}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let say = |s: &str| {
        if !json {
            note(format_args!("{s}"));
        }
    };
    say(&format!(
        "filling topic {topic} with {records} records, {produce_batch} per produce request..."
    ));
    let client = rt.block_on(async {
        let client = ClientBuilder::new(vec![brokers.to_string()])
            .build()
            .await
            .map_err(kafka_err)?;
        let controller = client.controller_client().map_err(kafka_err)?;
        controller
            .create_topic(topic.clone(), 1, 1, 5_000)
            .await
            .map_err(kafka_err)?;
        let part = client
            .partition_client(topic.clone(), 0, UnknownTopicHandling::Retry)
            .await
            .map_err(kafka_err)?;
        let values = sample_values(records.min(100_000), value_size);
        let mut batch = Vec::with_capacity(produce_batch);
        for i in 0..records {
            let v = &values[(i % values.len() as u64) as usize];
            batch.push(Record {
                key: None,
                value: Some(serde_json::to_vec(v)?),
                headers: Default::default(),
                timestamp: rskafka::chrono::DateTime::from_timestamp_micros(reel_log::now_micros())
                    .unwrap_or_default(),
            });
            if batch.len() == produce_batch || i + 1 == records {
                part.produce(std::mem::take(&mut batch), Compression::NoCompression)
                    .await
                    .map_err(kafka_err)?;
            }
        }
        Ok::<_, CliError>(part)
    })?;
    let mut reads = Vec::new();
    let mut bridges = Vec::new();
    for round in 0..ROUNDS {
        let t = Instant::now();
        let n = rt.block_on(async {
            let mut offset = 0;
            let mut n = 0u64;
            loop {
                let (recs, high_watermark) = client
                    .fetch_records(offset, 1..crate::commands::kafka::FETCH_BYTES, 250)
                    .await
                    .map_err(kafka_err)?;
                if let Some(last) = recs.last() {
                    offset = last.offset + 1;
                }
                n += recs.len() as u64;
                if offset >= high_watermark {
                    return Ok::<_, CliError>(n);
                }
            }
        })?;
        let read = n as f64 / t.elapsed().as_secs_f64();
        reads.push(read);
        let bridge = bridge_rate(work, brokers, &topic, &format!("{produce_batch}-{round}"))?;
        bridges.push(bridge);
        say(&format!(
            "round {}: read {read:.0}/s, bridge {bridge:.0}/s",
            round + 1
        ));
    }
    let read_per_s = median(&mut reads);
    let bridge_per_s = median(&mut bridges);
    let report = KafkaReport {
        records,
        produce_batch,
        read_per_s,
        bridge_per_s,
        ratio: bridge_per_s / read_per_s,
    };
    if json {
        out.json_line(&report)?;
        return Ok(());
    }
    out.line(format_args!(
        "topic of {records} records in batches of {produce_batch}:"
    ))?;
    out.line(format_args!(
        "  kafka read only (rskafka, 1 partition)  {read_per_s:>12.0} records/s"
    ))?;
    out.line(format_args!(
        "  kafka consume into lists (batch 1000)  {bridge_per_s:>12.0} records/s  ({:.0}% of read only)",
        report.ratio * 100.0
    ))?;
    Ok(())
}

/// Records/s of one `reel kafka consume --once` process on `topic`.
fn bridge_rate(work: &Path, brokers: &str, topic: &str, run: &str) -> CliResult<f64> {
    let dir = work.join(format!("kafka-lists-{run}"));
    let exe = std::env::current_exe()?;
    let output = std::process::Command::new(exe)
        .args([
            "kafka",
            "consume",
            "--once",
            "--brokers",
            brokers,
            "--topic",
            topic,
        ])
        .args(["--key-parser", "RecordPartition", "--batch-items", "1000"])
        .arg(&dir)
        .output()?;
    if !output.status.success() {
        return Err(CliError::Failed(format!(
            "reel kafka consume failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let stored = summary["stored"].as_f64().unwrap_or(0.0);
    let secs = summary["seconds"].as_f64().unwrap_or(f64::INFINITY);
    Ok(stored / secs)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
