//! One fetcher task per owned partition: reads records from the broker in order and
//! hands them to the bridge, ahead of what is stored. It owns no position of record:
//! when the bridge loses the partition or stops, the task is aborted and whatever it
//! fetched beyond the last checkpoint is simply fetched again by the next owner.

use super::config::{Settings, StartAt};
use super::kafka_err;
use super::pending::{Parsed, parse};
use crate::error::CliResult;
use rskafka::client::partition::{OffsetAt, PartitionClient};
use rskafka::record::RecordAndOffset;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Bytes asked for per fetch request (the broker may return more for one big record).
pub const FETCH_BYTES: i32 = 4 << 20;
/// How long the broker may hold a fetch while the partition has nothing new.
const FETCH_WAIT_MS: i32 = 250;
/// How long a partition's high watermark may stay below the position before the bridge
/// stops (see [`run`]).
const BEHIND_GRACE: Duration = Duration::from_secs(3);

/// What a fetcher sends to the bridge.
#[derive(Debug)]
pub enum Fetched {
    /// Records in offset order, all at or after the fetcher's position, parsed.
    Records {
        partition: i32,
        claim: u64,
        records: Vec<Parsed>,
        high_watermark: i64,
    },
    /// With `--once`: the partition is consumed up to where it ended at the start.
    Done { partition: i32, claim: u64 },
    /// The broker refused; the bridge stops with this error.
    Failed { partition: i32, error: String },
}

/// What a fetcher needs to know of the claim it serves.
#[derive(Debug)]
pub struct Claim {
    /// Tells this fetcher's messages apart from an earlier claim's of the partition.
    pub id: u64,
    /// Stop at the high watermark of the first fetch.
    pub once: bool,
    /// The parsers: records are parsed here, on the runtime's workers, while the bridge
    /// stores the previous batch.
    pub settings: Arc<Settings>,
}

/// Fetches partition `client` from `offset` on, parses and sends the records to `tx`.
pub async fn run(
    client: Arc<PartitionClient>,
    mut offset: i64,
    c: Claim,
    tx: mpsc::Sender<Fetched>,
) {
    let (claim, once) = (c.id, c.once);
    let partition = client.partition();
    let mut end: Option<i64> = None;
    let mut behind_since: Option<Instant> = None;
    // The next fetch is in flight while the records of the last one are parsed and
    // handed over, so the broker's round trip overlaps the parsing. The set aborts it
    // when this task is aborted (the partition lost, or the bridge stopping).
    let mut fetching = JoinSet::new();
    fetching.spawn(fetch(client.clone(), offset));
    while let Some(joined) = fetching.join_next().await {
        let (mut records, high_watermark) = match joined.unwrap_or_else(|e| Err(e.to_string())) {
            Ok(r) => r,
            Err(e) => {
                let error = format!("fetch from partition {partition} at offset {offset}: {e}");
                let _ = tx.send(Fetched::Failed { partition, error }).await;
                return;
            }
        };
        // Kafka answers OFFSET_OUT_OF_RANGE past the log's end; some brokers (Tansu) answer
        // with no records, which would skip every record below the position without a
        // word. A new leader's watermark can lag the old one's for a moment: only one that
        // stays below is an error.
        if high_watermark < offset {
            let since = *behind_since.get_or_insert_with(Instant::now);
            if since.elapsed() < BEHIND_GRACE {
                tokio::time::sleep(Duration::from_millis(250)).await;
                fetching.spawn(fetch(client.clone(), offset));
                continue;
            }
            let error = format!(
                "topic {:?}: the checkpoint is at offset {offset} but the partition ends at offset {high_watermark} (its high watermark): the topic was recreated or lost records, and the records below the checkpoint would be skipped; nothing more is stored from it",
                c.settings.topic
            );
            let _ = tx.send(Fetched::Failed { partition, error }).await;
            return;
        }
        behind_since = None;
        if once && end.is_none() {
            end = Some(high_watermark);
        }
        // A batch read from the middle may start before the offset asked for.
        records.retain(|r| r.offset >= offset && end.is_none_or(|e| r.offset < e));
        if let Some(last) = records.last() {
            offset = last.offset + 1;
        }
        if end.is_none_or(|e| offset < e) {
            fetching.spawn(fetch(client.clone(), offset));
        }
        let records = records
            .iter()
            .map(|r| parse(&c.settings, partition, r))
            .collect();
        let msg = Fetched::Records {
            partition,
            claim,
            records,
            high_watermark,
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
    let _ = tx.send(Fetched::Done { partition, claim }).await;
}

/// The records from `offset` on, and the partition's high watermark.
async fn fetch(
    client: Arc<PartitionClient>,
    offset: i64,
) -> Result<(Vec<RecordAndOffset>, i64), String> {
    client
        .fetch_records(offset, 1..FETCH_BYTES, FETCH_WAIT_MS)
        .await
        .map_err(|e| e.to_string())
}

/// Where a partition without a checkpoint starts. The end is the fetch high watermark:
/// `OffsetAt::Latest` is off by one on some brokers (Tansu).
pub async fn start_offset(client: &PartitionClient, start: StartAt) -> CliResult<i64> {
    let earliest = client
        .get_offset(OffsetAt::Earliest)
        .await
        .map_err(kafka_err("ask for the earliest offset"))?;
    match start {
        StartAt::Earliest => Ok(earliest),
        StartAt::Latest => {
            let (_, high_watermark) = client
                .fetch_records(earliest, 1..2, 0)
                .await
                .map_err(kafka_err("ask for the high watermark"))?;
            Ok(high_watermark)
        }
    }
}
