//! The command-line grammar: every command, flag and help text.

mod auth;
mod bench;
mod kafka;

pub use auth::{AclCommand, PasswordInput, UserCommand};
pub use bench::{BenchArgs, ScaleStore};
use clap::{Args, Parser, Subcommand};
pub use kafka::{ConsumeArgs, KafkaCommand, ProduceArgs};
use std::path::PathBuf;

/// reel: programs hand data to each other through a directory.
///
/// A spool is a directory holding a checksummed, append-only log of JSON records. Writers
/// append, named readers consume with persisted positions and block when caught up.
#[derive(Debug, Parser)]
#[command(name = "reel", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Start with:\n  reel init /tmp/spool\n  echo '{\"day\":\"Wed\",\"temp\":37}' | reel write /tmp/spool\n  reel read --no-wait /tmp/spool\n  reel status /tmp/spool"
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// With `s3://BUCKET/PREFIX` in place of DIR: keep the local copy of the store in
    /// DIR (reused and brought up to date by later commands) instead of a temporary
    /// directory removed at exit.
    #[arg(long, global = true, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store (a spool, a kv store or lists), or change the capacity and policy of one.
    #[command(
        after_help = "Examples:\n  reel init /var/spool/events                 # a spool: 1 GiB, drop-oldest\n  reel init --size 10g --when-full reject /var/spool/events   # resize, keep the data\n  reel init --kind kv --size 256m /var/lib/app/kv             # always compact\n  reel init --kind lists --size 10g /var/lib/app/orders       # oldest items expire when full"
    )]
    Init(InitArgs),
    /// Append JSON records (arguments, or NDJSON lines on stdin).
    #[command(
        after_help = "Examples:\n  reel write /tmp/spool '{\"temp\":37}' '{\"temp\":38}'\n  tail -F app.log.json | reel write --durability batch /tmp/spool"
    )]
    Write(WriteArgs),
    /// Print a reader's next records as NDJSON and remember where it stopped.
    #[command(
        after_help = "Examples:\n  reel read /tmp/spool                  # follow forever, like tail -f\n  reel read --no-wait --meta /tmp/spool # what is there now, with seq and time\n  reel read --reader billing --count 100 --timeout 5 /tmp/spool"
    )]
    Read(ReadArgs),
    /// Move a reader back to the oldest record, to a seq, or to a time (replay).
    #[command(
        after_help = "Examples:\n  reel rewind /tmp/spool\n  reel rewind --reader billing --to-time 2026-11-21T09:00:00Z /tmp/spool\n  reel rewind --to-seq 1200 /tmp/spool"
    )]
    Rewind(RewindArgs),
    /// Show capacity, usage, and every reader's progress.
    #[command(
        after_help = "Examples:\n  reel status /tmp/spool\n  reel status --json /tmp/spool | jq .readers"
    )]
    Status(StatusArgs),
    /// Copy every record of SRC into each DST spool, continuing as records arrive.
    #[command(
        after_help = "Examples:\n  reel init /tmp/copy1 && reel init /tmp/copy2\n  reel tee /tmp/spool /tmp/copy1 /tmp/copy2        # runs until interrupted\n  reel tee --no-wait /tmp/spool /tmp/copy1         # copy what is there, then stop"
    )]
    Tee(TeeArgs),
    /// Check every checksum and index; list what is damaged; exit non-zero if anything is.
    #[command(
        after_help = "Examples:\n  reel verify /tmp/spool\n\nA damaged record is never returned as data. To skip past one, move the reader with\n`reel rewind --reader NAME --to-seq SEQ DIR` using the next readable seq printed here."
    )]
    Verify(VerifyArgs),
    /// Print records by seq range as NDJSON, forwards or backwards, optionally following.
    #[command(
        after_help = "Examples:\n  reel stream /tmp/spool                      # every retained record\n  reel stream --gte 100 --lt 200 --meta /tmp/spool\n  reel stream --reverse --limit 10 /tmp/spool # the ten newest\n  reel stream --gt 41 --live /tmp/spool       # from seq 42, then follow\n\nUnlike `reel read`, stream keeps no position."
    )]
    Stream(StreamArgs),
    /// Keep only the latest record per key (drops superseded records and old tombstones).
    #[command(
        after_help = "Runs automatically when a `--when-full compact` spool is full.\n\nExamples:\n  reel compact /tmp/kv\n  reel compact --grace 0 /tmp/kv      # also drop every tombstone now"
    )]
    Compact(CompactArgs),
    /// List or rebuild the views derived from a spool.
    #[command(subcommand)]
    View(ViewCommand),
    /// A key-value store of hierarchical paths (a view over a compacted spool).
    #[command(subcommand)]
    Kv(KvCommand),
    /// Keyed lists: per-key offsets, exactly-once appends by nonce, paging with tokens.
    #[command(subcommand)]
    List(ListCommand),
    /// Bridge Kafka topics and reel stores: consume into keyed lists, produce from a spool.
    #[command(subcommand)]
    Kafka(KafkaCommand),
    /// Users of `reel serve` (passwords stored as argon2id hashes under ROOT).
    #[command(subcommand)]
    User(UserCommand),
    /// Access rules of `reel serve`: which user may do what on which store and paths.
    #[command(subcommand)]
    Acl(AclCommand),
    /// Keep DST an exact copy of SRC (a server URL or a directory), following live.
    #[command(
        after_help = "Examples:\n  reel replicate http://db1:7370/events /var/lib/reel/events   # runs until interrupted\n  reel replicate --no-wait /var/lib/a /backup/a                 # copy what is there, then stop\n  reel replicate --group w http://db1:7370/jobs /var/lib/reel/share   # store this member's share\n\nDST is created as a follower of SRC (same kind and configuration). Records are copied\nas stored (same seq, time, key, nonce and value, checksums verified, never re-encoded).\nA follower is read-only for writers; `reel promote DST` makes it a store of its own.\nAfter a restart, a kill -9 or a cut connection it resumes from its own last seq."
    )]
    Replicate(ReplicateArgs),
    /// Make a follower (see `reel replicate`) a writable store of its own.
    #[command(after_help = "Example:\n  reel promote /var/lib/reel/events   # manual failover")]
    Promote(PromoteArgs),
    /// Serve every store under ROOT over HTTP (see docs/HTTP.md).
    #[command(
        after_help = "Examples:\n  mkdir -p /var/lib/reel && reel serve /var/lib/reel\n  reel serve --listen 0.0.0.0:7370 --durability always /var/lib/reel\n\nA store named NAME is the directory ROOT/NAME. Then, from anywhere:\n  curl -s localhost:7370/v1/stores\n  curl -s -XPUT localhost:7370/v1/stores/cfg/kv/app.port -d 8080\n  curl -s localhost:7370/v1/stores/cfg/kv/app.port\n\nHTTPS: reel serve --tls-cert cert.pem --tls-key key.pem ROOT (clients that do not\ntrust its issuer name it in REEL_CA_CERT=ca.pem).\n\nStops cleanly on SIGINT or SIGTERM: in-flight requests finish, live streams end,\nacknowledged appends are synced."
    )]
    Serve(ServeArgs),
    /// Measure append, read and cross-process wake-up speed next to the raw disk limit.
    #[command(
        after_help = "Examples:\n  reel bench\n  reel bench --records 2000000 --value-size 100 --json /mnt/fast/bench\n  reel bench --kafka 127.0.0.1:9092 --records 200000"
    )]
    Bench(BenchArgs),
    /// Show reel working: a writer and a reader process exchanging records via a spool.
    #[command(
        after_help = "Examples:\n  reel demo              # uses ./reel-demo\n  reel demo /tmp/demo"
    )]
    Demo(DemoArgs),
}

/// `reel init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Capacity: bytes with an optional k, m, g or t suffix (powers of 1024). Default 1g
    /// for a new store; an existing store keeps its capacity unless given.
    #[arg(long, short = 's', value_name = "SIZE", value_parser = crate::units::parse_capacity)]
    pub size: Option<u64>,
    /// What the store holds, fixed when it is created: spool (default), kv or lists.
    ///
    /// spool: records you write with `reel write` and read with `reel read`; any
    /// --when-full policy.
    /// kv: paths and values (`reel kv`); always --when-full compact, so a live value is
    /// never dropped.
    /// lists: keyed lists (`reel list`); drop-oldest (the default: the oldest items
    /// expire when full) or reject (appends fail when full); never compact, which would
    /// keep only the last item of each list.
    ///
    /// Every kind can be read with `reel read`, `stream`, `status` and `verify`; `reel
    /// write` only writes to a spool. `reel kv set` and `reel list append` create their
    /// kind themselves in a new directory. On an existing store --kind must name its
    /// kind; a store created before kinds takes the kind given, if its contents fit.
    #[arg(long, value_name = "KIND", value_parser = ["spool", "kv", "lists"], verbatim_doc_comment)]
    pub kind: Option<String>,
    /// What to do when full: drop-oldest, reject or compact.
    ///
    /// drop-oldest: delete the oldest records (default for a spool and lists).
    /// reject: refuse appends while some reader has not consumed the oldest records.
    /// compact: keep only the latest record of each key (the only policy of a kv store;
    /// refused for lists).
    #[arg(long, value_name = "POLICY", value_parser = ["drop-oldest", "reject", "compact"], verbatim_doc_comment)]
    pub when_full: Option<String>,
    /// Largest record (key + value) for a new store; default 16m.
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_record_size)]
    pub max_record_size: Option<u64>,
    /// Resize even when the new capacity drops records (without it, such a resize is
    /// refused, naming the records it would drop).
    #[arg(long)]
    pub force: bool,
    /// Keep the store in S3-compatible object storage at s3://BUCKET/PREFIX: DIR becomes
    /// its local working directory, whose records are uploaded as objects. If the URL
    /// already holds a store, DIR (new and empty) continues it: every record is copied
    /// down and this directory becomes the store's only writer (the previous one is
    /// fenced). Endpoint and credentials come from the AWS_* environment variables
    /// (AWS_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP, ...).
    #[arg(long, value_name = "URL")]
    pub object_store: Option<String>,
    /// With --object-store: upload at least this often while a writer runs (seconds,
    /// fractions allowed).
    #[arg(
        long,
        value_name = "SECS",
        default_value = "2",
        requires = "object_store"
    )]
    pub seal_after: f64,
    /// With --object-store: what object storage keeps, a total size or an age (e.g. 100g,
    /// 30d, 12h); default everything. The oldest objects beyond it are dropped after
    /// uploads (the newest is always kept); readers whose copies lacked them continue
    /// after them.
    #[arg(long, value_name = "SIZE|DAYS", requires = "object_store")]
    pub object_retention: Option<String>,
    /// The store's directory (created with missing parents; an existing one must be
    /// empty or already a store).
    pub dir: PathBuf,
}

/// `reel write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Key to store with every record.
    #[arg(long, short = 'k')]
    pub key: Option<String>,
    /// none: page cache (survives a crash of reel, not of the machine); batch: synced
    /// within 10 ms and before exit; always: synced before each append returns; object
    /// (a tiered store): synced, and in object storage (an object and a manifest naming
    /// it) before the command succeeds.
    #[arg(long, default_value = "none", value_parser = ["none", "batch", "always", "object"])]
    pub durability: String,
    /// The spool directory.
    pub dir: PathBuf,
    /// JSON values; none means NDJSON on stdin (one record per line, blank lines skipped).
    pub json: Vec<String>,
}

/// A reader name as the store takes it (a malformed one is a command line that does not
/// parse: exit 2, before any store is opened).
pub fn reader_name(name: &str) -> Result<String, String> {
    reel::cursor::validate_name(name)
        .map(|()| name.to_string())
        .map_err(|e| e.to_string())
}

/// `reel read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Reader name: each name has its own persisted position.
    #[arg(long, short = 'r', default_value = "default", value_parser = reader_name)]
    pub reader: String,
    /// Stop after printing N records.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Stop when caught up instead of waiting for more.
    #[arg(long)]
    pub no_wait: bool,
    /// When caught up, wait at most SECS (fractions allowed) for the next record.
    #[arg(long, value_name = "SECS", value_parser = crate::units::parse_secs)]
    pub timeout: Option<f64>,
    /// Print {"seq":..,"ts":..,"key":..,"value":..} instead of the value alone (with
    /// "nonce" when set, and "deleted": true on a kv deletion, whose value is null).
    #[arg(long)]
    pub meta: bool,
    /// Share group (a server URL only): each record goes to one member of the group
    /// among the `reel read --group G` processes reading; unacknowledged records of a
    /// member that stops go to the others after --ack-wait seconds.
    #[arg(long, value_name = "G", conflicts_with = "reader")]
    pub group: Option<String>,
    /// With --group: seconds a member has to print (and so acknowledge) a record before
    /// it goes to another member (`--lease` is the same).
    #[arg(
        long = "ack-wait",
        alias = "lease",
        value_name = "SECS",
        default_value_t = 30.0,
        requires = "group"
    )]
    pub lease: f64,
    /// The spool directory.
    pub dir: PathBuf,
}

/// `reel rewind`.
#[derive(Debug, Args)]
pub struct RewindArgs {
    /// Reader to move.
    #[arg(long, short = 'r', default_value = "default", value_parser = reader_name)]
    pub reader: String,
    /// Move to this seq.
    #[arg(long, value_name = "N", conflicts_with = "to_time")]
    pub to_seq: Option<u64>,
    /// Move to the first record at or after this RFC 3339 time.
    #[arg(long, value_name = "RFC3339", value_parser = crate::units::parse_rfc3339)]
    pub to_time: Option<i64>,
    /// The spool directory.
    pub dir: PathBuf,
}

/// `reel serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (HOST:PORT).
    #[arg(long, default_value = reel_server::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Durability of appends whose request does not ask for one: none, batch or always.
    #[arg(long, default_value = "batch")]
    pub durability: String,
    /// Largest request body accepted (bytes; k, m, g suffixes); larger ones get 413.
    #[arg(long, default_value = "64m")]
    pub max_body: String,
    /// Seconds a token from POST /v1/auth/token stays valid.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl: u64,
    /// Answer clients on other machines even while no user is defined (no authentication
    /// at all: only for trusted networks).
    #[arg(long)]
    pub insecure_open: bool,
    /// Keep followers (see `reel replicate`) of the stores of the server at this URL
    /// (`http://HOST:PORT`) under ROOT and serve them read-only: a write gets 409 naming
    /// the source.
    #[arg(long, value_name = "URL")]
    pub follow: Option<String>,
    /// With --follow: only these stores (comma-separated); default: all, including
    /// stores created on the source later.
    #[arg(long, value_delimiter = ',', requires = "follow")]
    pub stores: Vec<String>,
    /// HTTPS: the server's certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// HTTPS: the certificate's private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The directory whose subdirectories are the stores.
    pub root: PathBuf,
}

/// `reel status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object (keys documented in README.md).
    #[arg(long)]
    pub json: bool,
    /// The spool directory.
    pub dir: PathBuf,
}

/// `reel replicate`.
#[derive(Debug, Args)]
pub struct ReplicateArgs {
    /// Stop once caught up with the end SRC had when the copy got there.
    #[arg(long)]
    pub no_wait: bool,
    /// When SRC no longer holds records the follower needs (its retention dropped
    /// them), continue from SRC's oldest record and record the skipped seqs (`reel
    /// status` lists them) instead of stopping.
    #[arg(long)]
    pub skip_gap: bool,
    /// Start a new (empty) follower at seq N instead of SRC's oldest record.
    #[arg(long, value_name = "N", conflicts_with = "group")]
    pub from_seq: Option<u64>,
    /// Join share group G of SRC (a server URL) and append this member's share into DST,
    /// a store of its own (created if missing): each record goes to one member of G, is
    /// appended with its source seq as nonce, and is acknowledged once durable in DST.
    #[arg(long, value_name = "G", conflicts_with = "skip_gap")]
    pub group: Option<String>,
    /// With --group: seconds this member has to store (and so acknowledge) a record
    /// before it goes to another member (`--lease` is the same).
    #[arg(
        long = "ack-wait",
        alias = "lease",
        value_name = "SECS",
        default_value_t = 30.0,
        requires = "group"
    )]
    pub lease: f64,
    /// The store to copy: a directory or http(s)://HOST:PORT/NAME.
    pub src: PathBuf,
    /// The follower directory (created if missing).
    pub dst: PathBuf,
}

/// `reel promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The follower directory.
    pub dir: PathBuf,
}

/// `reel tee`.
#[derive(Debug, Args)]
pub struct TeeArgs {
    /// Reader name on SRC (its position is the tee's progress).
    #[arg(long, short = 'r', default_value = "tee", value_parser = reader_name)]
    pub reader: String,
    /// Stop when caught up instead of following SRC.
    #[arg(long)]
    pub no_wait: bool,
    /// Source spool.
    pub src: PathBuf,
    /// Destination spools (create them first with `reel init`).
    #[arg(required = true)]
    pub dst: Vec<PathBuf>,
}

/// `reel verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
    /// The spool directory.
    pub dir: PathBuf,
}

/// `reel stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Only seqs greater than N.
    #[arg(long, value_name = "N")]
    pub gt: Option<u64>,
    /// Only seqs at least N.
    #[arg(long, value_name = "N")]
    pub gte: Option<u64>,
    /// Only seqs less than N.
    #[arg(long, value_name = "N")]
    pub lt: Option<u64>,
    /// Only seqs at most N.
    #[arg(long, value_name = "N")]
    pub lte: Option<u64>,
    /// Newest first.
    #[arg(long, conflicts_with = "live")]
    pub reverse: bool,
    /// At most N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Keep going as records arrive.
    #[arg(long)]
    pub live: bool,
    /// Print {"seq":..,"ts":..,"key":..,"value":..} instead of the value alone (with
    /// "nonce" when set, and "deleted": true on a kv deletion, whose value is null).
    #[arg(long)]
    pub meta: bool,
    /// The spool directory.
    pub dir: PathBuf,
}

/// `reel compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Keep tombstones younger than SECS seconds (default one day), so that readers
    /// and watchers less behind than that still see the deletion.
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    pub grace: u64,
    /// The spool directory.
    pub dir: PathBuf,
}

/// `reel view ...`.
#[derive(Debug, Subcommand)]
pub enum ViewCommand {
    /// Show each view's name, version, since (last seq applied) and lag behind the log.
    #[command(after_help = "Examples:\n  reel view list /tmp/kv\n  reel view list --json /tmp/kv")]
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
        /// The spool directory.
        dir: PathBuf,
    },
    /// Rebuild a view from the oldest record, with a progress bar.
    #[command(
        after_help = "Built-in views: kv, lists. An application's own view is reset here and rebuilt\nby the application when it next opens it.\n\nExamples:\n  reel view rebuild /tmp/kv kv"
    )]
    Rebuild {
        /// Rebuild even when the view's damaged files held state that the log no longer
        /// holds (the lists view: the next offset and last nonce of a list all of whose
        /// items retention dropped); without it such a rebuild is refused.
        #[arg(long)]
        force: bool,
        /// The spool directory.
        dir: PathBuf,
        /// The view's name.
        name: String,
    },
    /// Merge a view's sorted tables into one, so that a read probes one table.
    #[command(
        after_help = "Views kept in tables: kv, lists. Checkpoints merge tables as the store grows, and
leave a few of them (sizes 4x apart); a read probes each table newer than the one
holding its key. After a bulk load, compacting makes random reads faster (1M random
gets at 10M keys: 0.50 -> 0.68 M/s on the machine the README's figures come from).
Other processes keep reading while it runs.

Examples:
  reel view compact /tmp/kv kv"
    )]
    Compact {
        /// The spool directory.
        dir: PathBuf,
        /// The view's name (kv or lists).
        name: String,
    },
}

/// `reel kv ...`.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Store VALUE at PATH and print the new revision.
    #[command(
        after_help = "Paths (DistKV's text): a string element after a `.`; inside it `:.` is a dot, `::` a colon, `:_` a space.\nOther elements follow directly: `:e` empty string, `:t` `:f` `:n` true false null, `:12` `:-3` `:x1f` `:b101`\nintegers, `:1:.5` a float, `:vabc` `:y6162` bytes; `a:2.c` is (\"a\", 2, \"c\"); `:` is the root.\n\nExamples:\n  reel kv set /tmp/kv config.db:.host db1.example\n  reel kv set -e /tmp/kv config.port 5432\n  reel kv set --if-rev 7 -e /tmp/kv config.port 5433   # exit status 3 if the revision changed\n  reel kv set --if-absent /tmp/kv lock.owner me\n\nA directory that holds no store yet is created, with the `compact` when-full policy."
    )]
    Set {
        /// Parse VALUE as JSON (default: VALUE is a string).
        #[arg(short = 'e', long = "eval")]
        eval: bool,
        /// Only if PATH currently has revision REV (exit status 3 otherwise).
        #[arg(long, value_name = "REV", conflicts_with = "if_absent")]
        if_rev: Option<u64>,
        /// Only if PATH has no value (exit status 3 otherwise).
        #[arg(long)]
        if_absent: bool,
        /// The store directory.
        dir: PathBuf,
        /// The path.
        path: String,
        /// The value.
        value: String,
    },
    /// Print the JSON value at PATH (or its subtree with -r).
    #[command(
        after_help = "Examples:\n  reel kv get /tmp/kv config.port\n  reel kv get --meta /tmp/kv config.port      # {\"value\":..,\"rev\":..,\"ts\":..}\n  reel kv get -r /tmp/kv config                # nested objects, own values under \"_\""
    )]
    Get {
        /// Print {"value":..,"rev":..,"ts":..}.
        #[arg(long, conflicts_with = "recursive")]
        meta: bool,
        /// The whole subtree as nested objects, each node's own value under "_".
        #[arg(short, long)]
        recursive: bool,
        /// The store directory.
        dir: PathBuf,
        /// The path.
        path: String,
    },
    /// Delete the value at PATH (a tombstone in the log); print the revision.
    #[command(
        after_help = "Examples:\n  reel kv del /tmp/kv config.port\n  reel kv del -r /tmp/kv config               # the whole subtree; prints how many\n  reel kv del --if-rev 9 /tmp/kv lock.owner"
    )]
    Del {
        /// Delete PATH and everything below it.
        #[arg(short, long, conflicts_with = "if_rev")]
        recursive: bool,
        /// Only if PATH currently has revision REV (exit status 3 otherwise).
        #[arg(long, value_name = "REV")]
        if_rev: Option<u64>,
        /// The store directory.
        dir: PathBuf,
        /// The path.
        path: String,
    },
    /// List the children of PATH (all descendants with -r), one path per line, sorted.
    #[command(
        after_help = "Examples:\n  reel kv keys /tmp/kv              # top level\n  reel kv keys -r /tmp/kv config    # every path below config holding a value"
    )]
    Keys {
        /// Every descendant holding a value, not just the children.
        #[arg(short, long)]
        recursive: bool,
        /// One JSON array of the paths: unambiguous for a path holding a line break,
        /// which the one-path-per-line text prints as two lines.
        #[arg(long)]
        json: bool,
        /// The store directory.
        dir: PathBuf,
        /// The path (default: the root).
        #[arg(default_value = ":")]
        path: String,
    },
    /// Print changes to PATH and below as NDJSON events, as they happen.
    #[command(
        after_help = "Events: {\"path\":..,\"value\":..,\"rev\":..}, {\"path\":..,\"deleted\":true,\"rev\":..},\nand with --fetch, after the current state: {\"synced\":true}.\n\nExamples:\n  reel kv watch --fetch /tmp/kv config\n  reel kv watch --from-rev 41 --count 10 /tmp/kv :"
    )]
    Watch {
        /// First print the current state of the subtree, then {"synced":true}.
        #[arg(long, conflicts_with = "from_rev")]
        fetch: bool,
        /// Resume after this revision.
        #[arg(long, value_name = "REV")]
        from_rev: Option<u64>,
        /// Stop after N events (the synced marker not counted).
        #[arg(long, short = 'n', value_name = "N")]
        count: Option<u64>,
        /// The store directory.
        dir: PathBuf,
        /// The path (default `:`, everything).
        #[arg(default_value = ":")]
        path: String,
    },
}

/// `reel list ...`.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Append JSON values (arguments, or NDJSON lines on stdin) to KEY's list.
    #[command(
        after_help = "With --nonce N the values get nonces N, N+1, ...; a value whose nonce is not greater than\nthe last accepted for KEY is a duplicate and is skipped (a retried batch is never stored twice).\nPrints {\"appended\":A,\"duplicates\":D,\"next_offset\":O}.\n\nExamples:\n  reel list append /tmp/lists orders '{\"id\":1}' '{\"id\":2}'\n  reel list append --nonce 1700000000 /tmp/lists orders '{\"id\":3}'\n  producer | reel list append --nonce 1 /tmp/lists events"
    )]
    Append {
        /// Nonce of the first value (u128); the following values get the next ones.
        #[arg(long, value_name = "N")]
        nonce: Option<u128>,
        /// Time of the values in microseconds since the Unix epoch (default: now).
        #[arg(long, value_name = "MICROS")]
        ts: Option<i64>,
        /// The directory (created if needed).
        dir: PathBuf,
        /// The list's key.
        key: String,
        /// JSON values; none means NDJSON on stdin.
        json: Vec<String>,
    },
    /// Print one page of KEY's list as JSON, with a continuation token.
    #[command(
        after_help = "Prints {\"key\":..,\"items\":[{\"offset\":..,\"ts\":..,\"nonce\":..,\"value\":..}],\"continuation\":TOKEN|null}.\n\nExamples:\n  reel list read /tmp/lists orders\n  reel list read --limit 10 --from-time 1700000000000000 /tmp/lists orders\n  reel list read --reverse --limit 5 /tmp/lists orders            # the five newest\n  reel list read --continue 524c0100... /tmp/lists orders         # the next page"
    )]
    Read {
        /// Newest first.
        #[arg(long)]
        reverse: bool,
        /// Items per page (default 100).
        #[arg(long, value_name = "N", value_parser = crate::units::parse_positive)]
        limit: Option<usize>,
        /// Start at this offset.
        #[arg(long, value_name = "N", group = "start")]
        from_offset: Option<u64>,
        /// Start at this time (microseconds since the Unix epoch).
        #[arg(long, value_name = "MICROS", group = "start")]
        from_time: Option<i64>,
        /// Start at this nonce.
        #[arg(long, value_name = "N", group = "start")]
        from_nonce: Option<u128>,
        /// Continue after the page that returned TOKEN.
        #[arg(long = "continue", value_name = "TOKEN", group = "start")]
        continuation: Option<String>,
        /// The directory.
        dir: PathBuf,
        /// The list's key.
        key: String,
    },
    /// Show KEY's count, first and next offset, first and last time, last nonce.
    #[command(
        after_help = "Examples:\n  reel list info /tmp/lists orders\n  reel list info --json /tmp/lists orders"
    )]
    Info {
        /// One JSON object.
        #[arg(long)]
        json: bool,
        /// The directory.
        dir: PathBuf,
        /// The list's key.
        key: String,
    },
    /// List the keys that have lists, one per line, sorted.
    #[command(
        after_help = "Examples:\n  reel list keys /tmp/lists\n  reel list keys --json /tmp/lists   # [\"a\",\"b\"]"
    )]
    Keys {
        /// One JSON array of the keys: unambiguous for a key holding a line break, which
        /// the one-key-per-line text prints as two lines.
        #[arg(long)]
        json: bool,
        /// The directory.
        dir: PathBuf,
    },
}

/// `reel demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Spool directory for the demo.
    #[arg(default_value = "reel-demo")]
    pub dir: PathBuf,
}
