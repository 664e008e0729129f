//! One fetcher task per owned partition: reads records from the broker in order and
//! hands them to the bridge, ahead of what is stored. It owns no position of record:
//! when the bridge loses the partition or stops, the task is aborted and whatever it
//! fetched beyond the last checkpoint is simply fetched again by the next owner.

use rskafka::client::partition::PartitionClient;
use rskafka::record::RecordAndOffset;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bytes asked for per fetch request (the broker may return more for one big record).
const FETCH_BYTES: i32 = 4 << 20;
/// How long the broker may hold a fetch while the partition has nothing new.
const FETCH_WAIT_MS: i32 = 250;

/// What a fetcher sends to the bridge.
#[derive(Debug)]
pub enum Fetched {
    /// Records in offset order, all at or after the fetcher's position.
    Records {
        partition: i32,
        claim: u64,
        records: Vec<RecordAndOffset>,
        high_watermark: i64,
    },
    /// With `--once`: the partition is consumed up to where it ended at the start.
    Done { partition: i32, claim: u64 },
    /// The broker refused; the bridge stops with this error.
    Failed { partition: i32, error: String },
}

/// Fetches partition `client` from `offset` on, sending to `tx`; with `once`, stops at
/// the high watermark of its first fetch. `claim` tells this fetcher's messages apart
/// from those of an earlier claim of the same partition.
pub async fn run(
    client: Arc<PartitionClient>,
    mut offset: i64,
    claim: u64,
    once: bool,
    tx: mpsc::Sender<Fetched>,
) {
    let partition = client.partition();
    let mut end: Option<i64> = None;
    loop {
        if end.is_some_and(|e| offset >= e) {
            let _ = tx.send(Fetched::Done { partition, claim }).await;
            return;
        }
        let (mut records, high_watermark) = match client
            .fetch_records(offset, 1..FETCH_BYTES, FETCH_WAIT_MS)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let error = format!("fetch from partition {partition} at offset {offset}: {e}");
                let _ = tx.send(Fetched::Failed { partition, error }).await;
                return;
            }
        };
        if once && end.is_none() {
            end = Some(high_watermark);
        }
        // A batch read from the middle may start before the offset asked for.
        records.retain(|r| r.offset >= offset && end.is_none_or(|e| r.offset < e));
        if let Some(last) = records.last() {
            offset = last.offset + 1;
        }
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
}
