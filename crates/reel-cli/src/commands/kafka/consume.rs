//! `reel kafka consume`: the bridge from a Kafka topic into keyed lists.
//!
//! Fetcher tasks ([`super::fetch`]) read the owned partitions ahead; this loop turns
//! records into list items with the parsers and stores them in batches. Each batch is
//! one [`ListBatch`]: the items of every partition in it, the dead letters, and for each
//! of those partitions a checkpoint holding the next offset, conditional on the previous
//! checkpoint (see [`super::checkpoint`] for the invariant). A batch is stored whole or
//! not at all, so after a crash the checkpoints are exactly where the items end.
//!
//! Appends run on the runtime's blocking section ([`tokio::task::block_in_place`]) so
//! that the fetchers keep reading while a batch is written.

use super::checkpoint::{self, Checkpoint, now_us};
use super::config::Settings;
use super::fetch::{self, Fetched};
use super::group::{self, Membership};
use super::pending::{Counted, Pending};
use super::{connect, kafka_err};
use crate::cli::ConsumeArgs;
use crate::error::{CliError, CliResult};
use crate::output::{Output, note};
use reel::Durability;
use reel::list::{ListBatch, ListStore};
use rskafka::client::Client;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Runs the bridge until it is stopped, or with `--once` to the end of the topic.
pub fn run(args: ConsumeArgs, out: &mut Output) -> CliResult {
    if crate::remote::target(&args.dir)?.is_some() {
        // Exactly once needs the items and the offsets in one conditional batch, which
        // the HTTP API has no route for yet.
        return Err(CliError::Input(format!(
            "{}: reel kafka consume writes to a local directory (a server has no atomic multi-list append yet)",
            args.dir.display()
        )));
    }
    let settings = Settings::from_args(&args)?;
    let durability: Durability = args
        .durability
        .parse()
        .map_err(|e| CliError::Input(format!("{e}")))?;
    // A tiered store is written as by `reel write`: refused when fenced, uploaded while
    // the bridge runs and before it exits (its checkpoints say "stored" only locally).
    let tier = crate::tier::writer(&args.dir)?;
    let lists = ListStore::builder(&args.dir)
        .durability(durability)
        .open()?;
    let store = lists.clone();
    let uploader = tier
        .as_ref()
        .map(|w| crate::tier::Periodic::start(&args.dir, w.config().seal_after_ms, None));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = rt.block_on(async {
        let client = connect(&settings.brokers).await?;
        let mut bridge = Bridge::new(settings, lists, client, &args).await?;
        bridge.uploader = uploader;
        let result = bridge.run().await;
        bridge.stop();
        result.map(|()| bridge.summary())
    });
    // Uploaded also when the bridge stopped on an error: what it stored stays stored.
    let uploaded = tier
        .as_ref()
        .map_or(Ok(()), |w| crate::tier::upload(w, store.spool().log()));
    out.json_line(&summary?)?;
    uploaded
}

/// A partition this bridge holds.
#[derive(Debug)]
struct Owned {
    /// Its checkpoint list.
    key: String,
    /// The generation of its newest checkpoint (this bridge wrote it).
    generation: Option<u128>,
    /// The next offset not yet stored.
    committed: i64,
    /// The next offset expected from the fetcher.
    fetched: i64,
    /// The broker's high watermark, as last fetched.
    high_watermark: i64,
    /// Tells this claim's fetcher messages from an earlier claim's.
    claim: u64,
    task: JoinHandle<()>,
    /// `--once`: the fetcher reached the end.
    done: bool,
    /// When the checkpoint (and so the lease) was last written.
    renewed: Instant,
}

/// The bridge's state.
struct Bridge {
    s: Arc<Settings>,
    lists: ListStore,
    client: Client,
    group: Option<Membership>,
    group_name: String,
    member: String,
    lease: Duration,
    once: bool,
    partitions: Vec<i32>,
    clients: HashMap<i32, Arc<PartitionClient>>,
    owned: BTreeMap<i32, Owned>,
    claims: u64,
    tx: mpsc::Sender<Fetched>,
    rx: mpsc::Receiver<Fetched>,
    pending: Pending,
    /// Items stored (dead letters not counted).
    stored: u64,
    /// Records skipped because their nonce was not above their list's last one.
    duplicates: u64,
    dead_lettered: u64,
    started: Instant,
    /// A tiered store's uploads: a fence they find stops the bridge before its next batch.
    uploader: Option<crate::tier::Periodic>,
}

impl Bridge {
    async fn new(
        s: Settings,
        lists: ListStore,
        client: Client,
        args: &ConsumeArgs,
    ) -> CliResult<Bridge> {
        let topics = client
            .list_topics()
            .await
            .map_err(kafka_err("list topics"))?;
        let Some(topic) = topics.into_iter().find(|t| t.name == s.topic) else {
            return Err(CliError::Kafka(format!(
                "topic {:?} does not exist on {}",
                s.topic,
                s.brokers.join(",")
            )));
        };
        let mut partitions: Vec<i32> = topic.partitions.into_iter().collect();
        partitions.sort_unstable();
        let member = format!("{}-{}", std::process::id(), now_us());
        let group_name = s
            .group
            .clone()
            .unwrap_or_else(|| checkpoint::DEFAULT_GROUP.into());
        let group = s
            .group
            .as_ref()
            .map(|g| Membership::new(lists.clone(), g, &s.topic, member.clone(), args.lease));
        let (tx, rx) = mpsc::channel(64);
        Ok(Bridge {
            s: Arc::new(s),
            lists,
            client,
            group,
            group_name,
            member,
            lease: args.lease,
            once: args.once,
            partitions,
            clients: HashMap::new(),
            owned: BTreeMap::new(),
            claims: 0,
            tx,
            rx,
            pending: Pending::default(),
            stored: 0,
            duplicates: 0,
            dead_lettered: 0,
            started: Instant::now(),
            uploader: None,
        })
    }

    async fn run(&mut self) -> CliResult {
        let tty = std::io::stderr().is_terminal();
        let status_every = if tty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        let rebalance_every = (self.lease / 3).max(Duration::from_millis(100));
        let shutdown = reel_server::shutdown_signal();
        tokio::pin!(shutdown);
        // Polled once now, so that the handlers are installed before any partition is
        // claimed: from here on a SIGTERM stops the bridge cleanly, not by default death.
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            () = std::future::ready(()) => {}
        }
        self.rebalance().await?;
        let (mut next_status, mut next_rebalance) = (
            Instant::now() + status_every,
            Instant::now() + rebalance_every,
        );
        let mut last_stored = 0;
        loop {
            if self.once && self.owned.values().all(|o| o.done) {
                return self.flush();
            }
            let flush_at = self.pending.since.map(|t| t + self.s.batch_interval);
            let wake = [Some(next_status), Some(next_rebalance), flush_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_status);
            let msg = tokio::select! {
                msg = tokio::time::timeout_at(wake.into(), self.rx.recv()) => msg,
                () = &mut shutdown => {
                    // SIGINT or SIGTERM: store what was fetched; `stop` then releases
                    // the partitions, so that the group need not wait for the leases.
                    return self.flush();
                }
            };
            if let Ok(Some(msg)) = msg {
                self.take(msg)?;
            }
            let now = Instant::now();
            if self.pending.records >= self.s.batch_items
                || self.pending.bytes >= self.s.batch_bytes
                || flush_at.is_some_and(|t| now >= t)
            {
                self.flush()?;
            }
            if self.group.is_some() && now >= next_rebalance {
                self.flush()?;
                self.rebalance().await?;
                next_rebalance = Instant::now() + rebalance_every;
            }
            if now >= next_status {
                let rate = (self.stored - last_stored) as f64 / status_every.as_secs_f64();
                last_stored = self.stored;
                let lag: Vec<String> = self
                    .owned
                    .iter()
                    .map(|(p, o)| format!("p{p}={}", (o.high_watermark - o.committed).max(0)))
                    .collect();
                let line = format!(
                    "reel kafka: {} stored, {rate:.0}/s, lag {}",
                    self.stored,
                    if lag.is_empty() {
                        "-".into()
                    } else {
                        lag.join(" ")
                    }
                );
                if tty {
                    eprint_status(&line);
                } else {
                    note(format_args!("{line}"));
                }
                next_status = now + status_every;
            }
        }
    }

    /// Parses fetched records into the pending batch.
    fn take(&mut self, msg: Fetched) -> CliResult {
        match msg {
            Fetched::Failed { partition, error } => {
                self.flush()?;
                Err(CliError::Kafka(format!("partition {partition}: {error}")))
            }
            Fetched::Done { partition, claim } => {
                if let Some(o) = self.owned.get_mut(&partition).filter(|o| o.claim == claim) {
                    o.done = true;
                }
                Ok(())
            }
            Fetched::Records {
                partition,
                claim,
                records,
                high_watermark,
            } => {
                let Some(o) = self.owned.get_mut(&partition).filter(|o| o.claim == claim) else {
                    return Ok(()); // from a claim since lost
                };
                o.high_watermark = high_watermark;
                // Counted here and noted in the batch once per message (or before a flush).
                let mut counted = Counted::default();
                for r in records {
                    if r.offset < o.fetched {
                        continue;
                    }
                    o.fetched = r.offset + 1;
                    if let Some(why) = &r.unreadable {
                        if self.s.dead_letter.is_none() {
                            // Store what came before, so a restart stops at this record.
                            counted.note(&mut self.pending, partition);
                            self.flush()?;
                            return Err(CliError::Input(format!(
                                "partition {partition} offset {}: {why}; stopping (with --dead-letter KEY such records are kept in a list instead)",
                                r.offset
                            )));
                        }
                        counted.dead += 1;
                    }
                    counted.records += 1;
                    counted.bytes += r.bytes;
                    counted.next = Some(r.offset + 1);
                    self.pending.push(partition, r.key, r.item);
                }
                counted.note(&mut self.pending, partition);
                Ok(())
            }
        }
    }

    /// Stores the pending batch with a checkpoint per partition in it.
    fn flush(&mut self) -> CliResult {
        if self.pending.next.is_empty() {
            self.pending.since = None;
            return Ok(());
        }
        if let Some(u) = &self.uploader {
            u.check()?;
        }
        loop {
            let mut p = std::mem::take(&mut self.pending);
            let n = p.appends.len();
            let mut batch = ListBatch {
                lists: std::mem::take(&mut p.appends),
                conditions: Vec::new(),
            };
            let expires = self.expiry();
            for (partition, next) in &p.next {
                let o = &self.owned[partition];
                let cp = Checkpoint {
                    offset: *next,
                    member: self.member.clone(),
                    expires,
                };
                let (append, cond) = checkpoint::advance(&o.key, o.generation, &cp);
                batch.lists.push(append);
                batch.conditions.push(cond);
            }
            let lists = &self.lists;
            let result = tokio::task::block_in_place(|| {
                lists.append_batch(&batch, lists.spool().log().durability())
            });
            match result {
                Ok(appended) => {
                    // The first `n` lists are the records' (items and dead letters).
                    for a in appended.iter().take(n) {
                        self.stored += a.appended;
                        self.duplicates += a.duplicates;
                    }
                    let now = Instant::now();
                    for (partition, next) in &p.next {
                        if let Some(o) = self.owned.get_mut(partition) {
                            o.generation = Some(o.generation.map_or(1, |g| g + 1));
                            o.committed = *next;
                            o.renewed = now;
                        }
                    }
                    for (_, dead) in p.counts.values() {
                        self.stored -= dead;
                        self.dead_lettered += dead;
                    }
                    return Ok(());
                }
                Err(e @ reel::Error::NonceConflict { .. }) if self.group.is_some() => {
                    let reel::Error::NonceConflict { key, .. } = &e else {
                        return Err(e.into());
                    };
                    // Another member claimed this partition: it resumes from our last
                    // checkpoint; what we fetched beyond it is theirs to store.
                    let lost = self
                        .owned
                        .iter()
                        .find(|(_, o)| o.key == *key)
                        .map(|(p, _)| *p);
                    let Some(lost) = lost else {
                        return Err(e.into());
                    };
                    tracing::warn!(partition = lost, "partition taken over by another member");
                    self.release_local(lost);
                    batch.lists.truncate(n);
                    p.appends = batch.lists;
                    p.drop_partition(lost);
                    self.pending = p;
                    if self.pending.next.is_empty() {
                        self.pending = Pending::default();
                        return Ok(());
                    }
                }
                Err(e @ reel::Error::NonceConflict { .. }) => {
                    // Exit status 3, as every failed condition: say what it means here.
                    tracing::error!(
                        "another bridge stored this partition meanwhile (bridges sharing a topic and DIR need one --group); nothing of this batch was stored"
                    );
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// When the leases written now expire (0 without a group: nobody waits for them).
    fn expiry(&self) -> i64 {
        match self.group {
            Some(_) => now_us().saturating_add(group::lease_us(self.lease)),
            None => 0,
        }
    }

    /// Claims, renews and releases partitions (nothing is pending when called).
    async fn rebalance(&mut self) -> CliResult {
        let wanted = match &self.group {
            None => self.partitions.clone(),
            Some(m) => {
                let m = m.clone();
                tokio::task::block_in_place(|| m.heartbeat(false))?;
                let live = tokio::task::block_in_place(|| m.live())?;
                group::assigned(&self.partitions, &live, &self.member)
            }
        };
        let owned: Vec<i32> = self.owned.keys().copied().collect();
        for p in owned {
            let keep = wanted.contains(&p);
            let due = self.owned[&p].renewed.elapsed() >= self.lease / 3;
            if !keep || due {
                self.write_lease(p, keep)?;
            }
        }
        for p in wanted {
            if !self.owned.contains_key(&p) {
                self.claim(p).await?;
            }
        }
        Ok(())
    }

    /// Renews (`keep`) or releases the lease on owned partition `p`.
    fn write_lease(&mut self, p: i32, keep: bool) -> CliResult {
        let o = &self.owned[&p];
        let cp = Checkpoint {
            offset: o.committed,
            member: self.member.clone(),
            expires: if keep { self.expiry() } else { 0 },
        };
        let (append, cond) = checkpoint::advance(&o.key, o.generation, &cp);
        let batch = ListBatch {
            lists: vec![append],
            conditions: vec![cond],
        };
        match tokio::task::block_in_place(|| self.lists.append_batch(&batch, Durability::None)) {
            Ok(_) if keep => {
                if let Some(o) = self.owned.get_mut(&p) {
                    o.generation = Some(o.generation.map_or(1, |g| g + 1));
                    o.renewed = Instant::now();
                }
                Ok(())
            }
            Ok(_) | Err(reel::Error::NonceConflict { .. }) => {
                self.release_local(p);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stops consuming partition `p`.
    fn release_local(&mut self, p: i32) {
        if let Some(o) = self.owned.remove(&p) {
            o.task.abort();
        }
    }

    /// Claims partition `p` if its lease is free, and starts fetching it.
    async fn claim(&mut self, p: i32) -> CliResult {
        let key = checkpoint::key(&self.group_name, &self.s.topic, p);
        let stored = tokio::task::block_in_place(|| checkpoint::read(&self.lists, &key))?;
        if let Some(cp) = stored
            .checkpoint
            .as_ref()
            .filter(|c| c.expires > now_us() && c.member != self.member)
        {
            if self.group.is_none() {
                return Err(CliError::Input(format!(
                    "partition {p} of {} is held by bridge {} of group {:?}; give the same --group to share it",
                    self.s.topic, cp.member, self.group_name
                )));
            }
            return Ok(());
        }
        let client = self.partition_client(p).await?;
        let offset = match &stored.checkpoint {
            Some(cp) => cp.offset,
            None => fetch::start_offset(&client, self.s.start).await?,
        };
        let cp = Checkpoint {
            offset,
            member: self.member.clone(),
            expires: self.expiry(),
        };
        let (append, cond) = checkpoint::advance(&key, stored.generation, &cp);
        let batch = ListBatch {
            lists: vec![append],
            conditions: vec![cond],
        };
        match tokio::task::block_in_place(|| self.lists.append_batch(&batch, Durability::None)) {
            Ok(_) => {}
            Err(reel::Error::NonceConflict { .. }) if self.group.is_some() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.claims += 1;
        let task = tokio::spawn(fetch::run(
            client,
            offset,
            fetch::Claim {
                id: self.claims,
                once: self.once,
                settings: self.s.clone(),
            },
            self.tx.clone(),
        ));
        self.owned.insert(
            p,
            Owned {
                key,
                generation: Some(stored.generation.map_or(1, |g| g + 1)),
                committed: offset,
                fetched: offset,
                high_watermark: offset,
                claim: self.claims,
                task,
                done: false,
                renewed: Instant::now(),
            },
        );
        Ok(())
    }

    async fn partition_client(&mut self, p: i32) -> CliResult<Arc<PartitionClient>> {
        if let Some(c) = self.clients.get(&p) {
            return Ok(c.clone());
        }
        let c = self
            .client
            .partition_client(self.s.topic.clone(), p, UnknownTopicHandling::Retry)
            .await
            .map_err(kafka_err("connect to the partition leader"))?;
        let c = Arc::new(c);
        self.clients.insert(p, c.clone());
        Ok(c)
    }

    /// Stops the fetchers and, in a group, releases the leases so others take over now.
    fn stop(&mut self) {
        let owned: Vec<i32> = self.owned.keys().copied().collect();
        for p in owned {
            if self.group.is_some() && self.pending.next.is_empty() {
                let _ = self.write_lease(p, false);
            }
            self.release_local(p);
        }
        if let Some(m) = &self.group {
            let _ = m.heartbeat(true);
        }
        if std::io::stderr().is_terminal() {
            // End the status line, so that what follows starts on a line of its own.
            note(format_args!(""));
        }
    }

    fn summary(&self) -> serde_json::Value {
        let secs = self.started.elapsed().as_secs_f64();
        serde_json::json!({
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "seconds": (secs * 1000.0).round() / 1000.0,
        })
    }
}

/// Rewrites the status line on a terminal.
fn eprint_status(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{line}\x1b[K");
    let _ = err.flush();
}
