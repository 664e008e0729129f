//! `reel kafka produce`: publishes a spool's records to a topic through a named reader.
//!
//! Ordering invariant: the reader's position is committed only after the broker
//! acknowledged every record below it. A crash between the two publishes those records
//! again (at least once, never lost); each carries its seq in the header `reel-seq`, so
//! a consumer can drop the repeats (`--nonce-parser 'RecordHeaderUtf8(reel-seq)'`).

use super::{connect, kafka_err};
use crate::cli::ProduceArgs;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use reel::Record;
use rskafka::chrono::{DateTime, Utc};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a caught-up producer waits for new records before checking again.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Runs `reel kafka produce`.
pub fn run(args: ProduceArgs, out: &mut Output) -> CliResult {
    if crate::remote::target(&args.src)?.is_some() {
        return Err(CliError::Input(format!(
            "{}: reel kafka produce reads a local directory (run it where the store is)",
            args.src.display()
        )));
    }
    let spool = super::super::open_spool_for_reading(&args.src)?;
    let mut reader = spool.reader(&args.reader)?;
    let brokers: Vec<String> = args
        .brokers
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let published = rt.block_on(async {
        let client = connect(&brokers).await?;
        let topics = client
            .list_topics()
            .await
            .map_err(kafka_err("list topics"))?;
        let partitions = match topics.into_iter().find(|t| t.name == args.topic) {
            Some(t) => {
                let mut p: Vec<i32> = t.partitions.into_iter().collect();
                p.sort_unstable();
                p
            }
            None => {
                let controller = client
                    .controller_client()
                    .map_err(kafka_err("find the controller"))?;
                controller
                    .create_topic(args.topic.clone(), 1, 1, 5_000)
                    .await
                    .map_err(kafka_err("create the topic"))?;
                vec![0]
            }
        };
        let mut clients = Vec::with_capacity(partitions.len());
        for p in &partitions {
            let c = client
                .partition_client(args.topic.clone(), *p, UnknownTopicHandling::Retry)
                .await
                .map_err(kafka_err("connect to the partition leader"))?;
            clients.push(c);
        }
        let mut published = 0u64;
        loop {
            let wait = (!args.no_wait).then_some(IDLE_WAIT);
            // Nothing else runs on this runtime: waiting here in place blocks no one.
            let batch = reader.next_batch(args.batch_items.max(1), wait)?;
            if batch.is_empty() {
                if args.no_wait {
                    return Ok::<u64, CliError>(published);
                }
                continue;
            }
            publish(&clients, &batch, args.key_from.as_deref()).await?;
            published += batch.len() as u64;
            // Only now: the broker has every record up to the reader's position.
            reader.commit()?;
        }
    })?;
    out.json_line(&serde_json::json!({ "published": published, "topic": args.topic }))?;
    Ok(())
}

/// Sends `batch` to the partitions, each record to the one its key hashes to.
async fn publish(
    clients: &[PartitionClient],
    batch: &[Record],
    key_from: Option<&str>,
) -> CliResult {
    let mut by_partition: BTreeMap<usize, Vec<rskafka::record::Record>> = BTreeMap::new();
    for r in batch {
        let value = r.value.to_json()?;
        let key: Option<Vec<u8>> = match key_from {
            Some(field) => value.get(field).map(|v| match v {
                serde_json::Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            }),
            None => r.key.clone().map(String::into_bytes),
        };
        // Records with the same key go to the same partition, so they stay in order.
        let slot = match &key {
            Some(k) => crc32c::crc32c(k) as usize % clients.len(),
            None => (r.seq % clients.len() as u64) as usize,
        };
        let timestamp = DateTime::<Utc>::from_timestamp_micros(r.ts).unwrap_or_default();
        by_partition
            .entry(slot)
            .or_default()
            .push(rskafka::record::Record {
                key,
                value: Some(serde_json::to_vec(&value)?),
                headers: BTreeMap::from([("reel-seq".to_string(), r.seq.to_string().into_bytes())]),
                timestamp,
            });
    }
    for (slot, records) in by_partition {
        clients[slot]
            .produce(records, Compression::NoCompression)
            .await
            .map_err(kafka_err("produce"))?;
    }
    Ok(())
}
