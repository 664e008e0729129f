//! `reel kafka`: the bridge between Kafka topics and reel stores. `consume` drains a
//! topic into keyed lists exactly once (offsets stored with the items, partitions shared
//! through leases in the store); `produce` feeds a spool to a topic at least once
//! through a named reader. The Kafka client is rskafka (pure Rust, no consumer-group
//! protocol, no offset commits: neither is needed, the offsets live in reel).

mod checkpoint;
mod config;
mod consume;
mod fetch;
pub use fetch::FETCH_BYTES;
mod group;
pub mod parser;
mod pending;
mod produce;

use crate::cli::KafkaCommand;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use rskafka::BackoffConfig;
use rskafka::client::{Client, ClientBuilder};
use std::time::Duration;

/// How long to keep retrying a broker that does not answer before saying so.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// Runs one `reel kafka` command.
pub fn run(cmd: KafkaCommand, out: &mut Output) -> CliResult {
    match cmd {
        KafkaCommand::Consume(a) => consume::run(a, out),
        KafkaCommand::Produce(a) => produce::run(a, out),
    }
}

/// A client of the cluster behind `brokers`; fails with the brokers named when none
/// answers within [`CONNECT_DEADLINE`].
async fn connect(brokers: &[String]) -> CliResult<Client> {
    let backoff = BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        base: 2.0,
        deadline: Some(CONNECT_DEADLINE),
    };
    ClientBuilder::new(brokers.to_vec())
        .backoff_config(backoff)
        .build()
        .await
        .map_err(|e| {
            CliError::Kafka(format!(
                "cannot reach the brokers {} ({e})",
                brokers.join(",")
            ))
        })
}

/// Maps a client error to one that says what was being done.
fn kafka_err(doing: &'static str) -> impl Fn(rskafka::client::error::Error) -> CliError {
    move |e| CliError::Kafka(format!("{doing}: {e}"))
}
