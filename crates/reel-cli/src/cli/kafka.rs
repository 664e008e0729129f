//! The grammar of `reel kafka`: the bridge between Kafka topics and reel stores.

use crate::commands::kafka::parser::ValueFormat;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `reel kafka`.
#[derive(Debug, Subcommand)]
pub enum KafkaCommand {
    /// Consume a topic into keyed lists, exactly once (the offsets are stored with the items).
    #[command(after_help = CONSUME_HELP)]
    Consume(ConsumeArgs),
    /// Publish a spool's records to a topic through a named reader (at least once).
    #[command(after_help = PRODUCE_HELP)]
    Produce(ProduceArgs),
}

const CONSUME_HELP: &str = "\
Parsers (klstore's names):
  key:               Static(s), RecordHeader(name), RecordKey, RecordPartition
  nonce, timestamp:  None, RecordHeaderBigEndian(name), RecordHeaderLittleEndian(name),
                     RecordHeaderUtf8(name), RecordKeyBigEndian, RecordKeyLittleEndian,
                     RecordKeyUtf8, RecordOffset, RecordPartition
A timestamp is in microseconds since the epoch; None means the time of the append.

Exactly once: every batch of list items is stored in the same atomic log batch as the
Kafka offsets it consumed (one checkpoint item per partition, in the list
_kafka/GROUP/TOPIC/PARTITION; GROUP is `default` without --group). After a crash or
kill -9 the bridge resumes from the stored offsets, whatever the broker's committed group
offsets say: no record is stored twice and none is skipped. Two bridges can never both
store the same offsets: each batch is stored only if its partition's checkpoint is still
the one the bridge last wrote (the one that lost exits with status 3). After a power cut
(not a process crash) the batch being written may survive in part and be stored again
on restart; a nonce parser (e.g. RecordOffset with RecordPartition keys) drops those too.

--group G shares the topic's partitions among every bridge started with G on the same
DIR, through leases kept in DIR (not Kafka's group protocol): a member that stops
renewing (killed, hung) loses its partitions after --lease, and the others resume them
from the stored offsets. Without --group one bridge takes every partition.

A record a parser cannot read goes to the --dead-letter list with the reason, or stops
the bridge (--on-error stop, the default without --dead-letter); it is never dropped.

Config file (TOML; flags override it; an unknown key is an error):
  [kafka]
  bootstrap.servers = \"127.0.0.1:9092\"
  topic = \"inbound\"
  group.id = \"orders\"
  auto.offset.reset = \"earliest\"      # or latest: where a partition with no checkpoint starts
  [batcher]
  batch_flush_item_count_threshold = 1000
  batch_flush_size_threshold = 1000000
  batch_flush_interval_millis = 1000
  [parser]
  key_parser = \"RecordKey\"
  nonce_parser = \"RecordOffset\"
  timestamp_parser = \"None\"
  value_format = \"auto\"
  dead_letter = \"bad-records\"
  on_error = \"dead-letter\"            # or stop

Stops cleanly on SIGINT or SIGTERM: stores what it fetched, releases its partitions to
the group and prints the summary below. While it runs, a status line on stderr shows records/s and each partition's lag (every
second on a terminal, else every 10 s); at the end it prints {\"stored\":N,\"duplicates\":N,\"dead_lettered\":N,..}.

Examples:
  reel kafka consume --brokers 127.0.0.1:9092 --topic orders --key-parser RecordKey /var/lib/orders
  reel kafka consume --once --topic orders --key-parser 'RecordHeader(customer)' \\
      --nonce-parser RecordOffset --dead-letter bad /var/lib/orders
  reel kafka consume --config bridge.toml /var/lib/orders
  reel list read /var/lib/orders customer-42";

const PRODUCE_HELP: &str = "\
Each record of SRC becomes one Kafka record: its value as JSON, its reel key (or the field
named by --key-from) as the Kafka key, its time as the Kafka timestamp. Records with the
same key go to the same partition (CRC-32C of the key); keyless ones by seq. The reader's
position is committed only after the broker acknowledged the records, so a crash sends
some records again, never loses one (at least once; consumers deduplicate with the
header reel-seq, the record's seq in SRC, e.g. --nonce-parser 'RecordHeaderUtf8(reel-seq)').

Examples:
  reel kafka produce --brokers 127.0.0.1:9092 --topic events /var/spool/events
  reel kafka produce --no-wait --topic orders --key-from customer /var/spool/orders";

/// `reel kafka consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// A TOML file with [kafka], [batcher] and [parser] sections (see below).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Bootstrap brokers, comma-separated (default 127.0.0.1:9092).
    #[arg(long, value_name = "HOST:PORT,...")]
    pub brokers: Option<String>,
    /// The topic.
    #[arg(long, value_name = "T")]
    pub topic: Option<String>,
    /// Share the topic's partitions with the other bridges of this group on DIR.
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Which part of a record names its list (default RecordPartition).
    #[arg(long, value_name = "P")]
    pub key_parser: Option<String>,
    /// Which part of a record is its nonce (default None).
    #[arg(long, value_name = "P")]
    pub nonce_parser: Option<String>,
    /// Which part of a record is its time in microseconds (default None: now).
    #[arg(long, value_name = "P")]
    pub timestamp_parser: Option<String>,
    /// How record values become items: auto (JSON if it parses, else bytes), json,
    /// bytes or string.
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub value_format: Option<ValueFormat>,
    /// Store a batch when it holds this many records (default 1000).
    #[arg(long, value_name = "N")]
    pub batch_items: Option<usize>,
    /// Store a batch when its values reach this many bytes (default 1m).
    #[arg(long, value_name = "N", value_parser = crate::units::parse_size)]
    pub batch_bytes: Option<u64>,
    /// Store a batch at least this often (default 1s).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub batch_interval: Option<std::time::Duration>,
    /// Send records that a parser cannot read to this list, with the reason.
    #[arg(long, value_name = "KEY")]
    pub dead_letter: Option<String>,
    /// What to do with a record a parser cannot read: dead-letter (needs --dead-letter)
    /// or stop (default without --dead-letter).
    #[arg(long, value_name = "ACTION", value_parser = ["dead-letter", "stop"])]
    pub on_error: Option<String>,
    /// With --group: a member that has not renewed its partitions for this long loses them.
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration, default_value = "10s")]
    pub lease: std::time::Duration,
    /// Stop once every partition is consumed up to where it ended when the bridge started.
    #[arg(long)]
    pub once: bool,
    /// Durability of the appends: none, batch or always.
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = ["none", "batch", "always"])]
    pub durability: String,
    /// The lists store (created if needed).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// `reel kafka produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Bootstrap brokers, comma-separated.
    #[arg(long, value_name = "HOST:PORT,...", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// The topic (created with one partition if it does not exist).
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// Use this top-level field of each record's value as the Kafka key (default: the
    /// record's reel key, if any).
    #[arg(long, value_name = "FIELD")]
    pub key_from: Option<String>,
    /// The named reader whose position says what was published.
    #[arg(long, value_name = "NAME", default_value = "kafka", value_parser = super::reader_name)]
    pub reader: String,
    /// Records per produce request.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch_items: usize,
    /// Stop when caught up instead of waiting for new records.
    #[arg(long)]
    pub no_wait: bool,
    /// The spool (any store) to publish.
    #[arg(value_name = "SRC")]
    pub src: PathBuf,
}
