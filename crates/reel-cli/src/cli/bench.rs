//! The arguments of `reel bench`: which figures to measure, and at what size.

use clap::Args;
use std::path::PathBuf;

/// `reel bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Records per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Bytes of each record's value (a JSON-like dictionary padded to this size).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Wake-up round trips to time.
    #[arg(long, default_value_t = 2000)]
    pub wakeups: u64,
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Directory to benchmark in (a temporary directory inside it is used and removed);
    /// default: the system temporary directory.
    pub dir: Option<PathBuf>,
    /// Internal: run as the wake-up echo process.
    #[arg(long, hide = true)]
    pub wake_child: Option<PathBuf>,
    /// Internal: run as the kv watch process.
    #[arg(long, hide = true)]
    pub watch_child: Option<PathBuf>,
    /// Instead of the spool figures, measure a kv store (or, with --scale-store lists, a
    /// lists store) at each of these sizes (comma-separated; k and m multiply by 1,000
    /// and 1,000,000): fill rate, time until readable, open + first read, random reads,
    /// one CLI read and write process, a reader process's private and mapped memory, disk
    /// per key. Example: --scale 100k,1m,10m
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub scale: Vec<u64>,
    /// The store --scale measures: kv (N paths) or lists (N items in 100 lists: append
    /// rate, time until readable, open + first page, random 10-item pages, one `reel list
    /// read` / `list append` process, a reader's memory, disk per item).
    #[arg(long, value_enum, default_value = "kv")]
    pub scale_store: ScaleStore,
    /// Instead of the spool figures, measure `reel serve` over loopback next to the
    /// embedded API in the same run: NDJSON appends (1,000 per request), single-record
    /// POSTs, kv GETs with keep-alive, live follow and watch latency.
    #[arg(long)]
    pub http: bool,
    /// Instead of the spool figures, measure replication over loopback HTTP: a follower
    /// process's initial copy (records/s and CPU per million records on each side), its
    /// lag while a writer appends 100k records/s, and a share group of four members.
    #[arg(long, conflicts_with = "http")]
    pub replication: bool,
    /// Instead of the spool figures, measure a tiered store against the object store at
    /// s3://BUCKET/PREFIX (endpoint and credentials from AWS_*): raw puts, the upload of a
    /// log, a stateless reader's fetch and read, and durability `object` latency. Leaves
    /// its objects under PREFIX/bench-*.
    #[arg(long, value_name = "URL", conflicts_with_all = ["http", "replication"])]
    pub object_store: Option<String>,
    /// Instead of the spool figures, measure `reel kafka consume` (batches of 1,000 into
    /// lists) next to the same Kafka client only reading, on a new one-partition topic of
    /// --records records on the broker at HOST:PORT (e.g. a local Tansu or Kafka).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["http", "replication"])]
    pub kafka: Option<String>,
    /// With --kafka: records per produce request while filling a topic, so per record
    /// batch on the broker; one topic and one set of figures per size (comma-separated).
    /// A producer that sends each record as it comes makes batches of one, and reading
    /// them is slow; big batches make reading cheap.
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "1,1000",
          requires = "kafka", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub kafka_produce_batch: Vec<u64>,
    /// Internal: run as the memory probe of --scale.
    #[arg(long, hide = true)]
    pub scale_child: Option<PathBuf>,
}

/// Which store `bench --scale` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleStore {
    /// A kv store of N paths.
    Kv,
    /// A lists store of N items in 100 lists.
    Lists,
}

/// A count with an optional k (thousand) or m (million) suffix.
fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix('m') {
        (n, 1_000_000)
    } else if let Some(n) = t.strip_suffix('k') {
        (n, 1_000)
    } else {
        (t.as_str(), 1)
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a count (examples: 5000, 100k, 10m)"))?;
    match n.checked_mul(mult) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(format!("`{s}` must be between 1 and 2^64-1")),
    }
}
