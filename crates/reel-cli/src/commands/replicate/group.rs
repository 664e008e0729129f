//! `reel replicate --group G URL DST` (kvsp-sub -s): a member of share group G that
//! appends its share of the source's records into DST, a store of its own.
//!
//! Each batch the server leases to this member is appended to DST durably (fsync) and
//! only then acknowledged, so a crash loses nothing: what was leased and not
//! acknowledged goes to a member again when the lease ends. Every record is appended
//! with its source seq as nonce; a member started again on the same DST recognises the
//! records it stored but could not acknowledge (it reads the nonces of DST's newest
//! records) and acknowledges them without storing them twice. A record whose lease ran
//! out while this member was storing it may also be stored by another member: across
//! members the group gives at-least-once, not exactly-once.

use crate::cli::ReplicateArgs;
use crate::error::{CliError, CliResult};
use crate::output::note;
use crate::remote::{Call, Remote, encode};
use reel::{Durability, NewRecord, Spool, StoreKind, Value};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Records asked for per request at most.
const BATCH: usize = 1000;
/// How long one request waits on the server for records.
const LONG_POLL: f64 = 30.0;
/// Source seqs remembered as stored (read back from DST at start, then as appended).
const REMEMBER: usize = 100_000;

pub fn run(a: &ReplicateArgs, group: &str) -> CliResult {
    let r = crate::remote::target(&a.src)?.ok_or_else(|| {
        CliError::Input(format!(
            "--group needs a server URL as SRC (http(s)://HOST:PORT/NAME), not {}",
            a.src.display()
        ))
    })?;
    if !(a.lease.is_finite() && a.lease > 0.0) {
        return Err(CliError::Input(format!(
            "invalid --ack-wait {}: expected seconds, more than 0",
            a.lease
        )));
    }
    let storage = reel_log::storage::DiskStorage;
    if let Some(src) = reel_log::follow::read_source(&storage, &a.dst).map_err(CliError::Output)? {
        return Err(CliError::Input(format!(
            "{} is a follower of {src}: a group member appends into a store of its own",
            a.dst.display()
        )));
    }
    let dst = Spool::builder(&a.dst)
        .kind(StoreKind::Spool)
        .durability(Durability::Always)
        .open()?;
    let mut member = Member {
        r: &r,
        base: format!("/groups/{}", encode(group)),
        name: crate::remote::member_name(),
        lease: a.lease,
        dst: &dst,
        stored: Stored::load(&dst)?,
    };
    let started = Instant::now();
    loop {
        match member.pump(a.no_wait) {
            // The server away or the connection cut: what was leased and not
            // acknowledged comes back (to this member or another) after the lease.
            Err(e) if e.is_connection() && (!a.no_wait || started.elapsed() < super::RETRY_FOR) => {
                note(format_args!("reel: {e}; trying again"));
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

struct Member<'a> {
    r: &'a Remote,
    base: String,
    name: String,
    lease: f64,
    dst: &'a Spool,
    stored: Stored,
}

impl Member<'_> {
    /// Takes, stores and acknowledges batches; with `no_wait`, until the group has
    /// nothing to hand out.
    fn pump(&mut self, no_wait: bool) -> CliResult {
        loop {
            let wait = if no_wait { 0.0 } else { LONG_POLL };
            let body = self.r.text(&Call {
                method: "POST",
                path: format!("{}/next", self.base),
                query: vec![
                    ("max", BATCH.to_string()),
                    ("wait", format!("{wait:.3}")),
                    ("member", self.name.clone()),
                    ("lease", format!("{}", self.lease)),
                ],
                idempotent: true,
                ..Default::default()
            })?;
            let mut seqs = Vec::new();
            let mut fresh = Vec::new();
            for line in body.lines() {
                let rec: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| CliError::Input(format!("the server sent a bad record ({e})")))?;
                let seq = rec["seq"]
                    .as_u64()
                    .ok_or_else(|| CliError::Input(format!("a record without seq: {line}")))?;
                seqs.push(seq);
                if self.stored.contains(seq) {
                    continue;
                }
                // A kv deletion stays one (its value prints as null, like a stored null).
                let value = if rec["deleted"] == serde_json::Value::Bool(true) {
                    Value::from_parts(reel::Encoding::Tombstone, Vec::new())
                } else {
                    Value::json(&rec["value"])
                };
                let mut new = NewRecord::new(value).nonce(u128::from(seq));
                if let Some(k) = rec["key"].as_str() {
                    new = new.key(k);
                }
                if let Some(ts) = rec["ts"].as_i64() {
                    new = new.ts(ts);
                }
                fresh.push((seq, new));
            }
            if seqs.is_empty() {
                if no_wait {
                    return Ok(());
                }
                continue;
            }
            if !fresh.is_empty() {
                // Durable before the acknowledgement: the ack is the promise that the
                // record survives a crash here.
                self.dst
                    .append_batch_with(fresh.iter().map(|(_, r)| r), Durability::Always)?;
                for (seq, _) in &fresh {
                    self.stored.insert(*seq);
                }
            }
            self.r.json(&Call {
                method: "POST",
                path: format!("{}/ack", self.base),
                headers: vec![("Content-Type", "application/json".into())],
                body: Some(serde_json::json!({ "seqs": seqs }).to_string().into_bytes()),
                idempotent: true,
                ..Default::default()
            })?;
        }
    }
}

/// Source seqs known to be in DST: the nonces of its newest records, then each append.
struct Stored {
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Stored {
    fn load(dst: &Spool) -> CliResult<Stored> {
        let mut s = Stored {
            set: HashSet::new(),
            order: VecDeque::new(),
        };
        let mut newest = Vec::new();
        for rec in dst.iter_rev(..).take(REMEMBER) {
            if let Some(n) = rec?.nonce.and_then(|n| u64::try_from(n).ok()) {
                newest.push(n);
            }
        }
        for n in newest.into_iter().rev() {
            s.insert(n);
        }
        Ok(s)
    }

    fn contains(&self, seq: u64) -> bool {
        self.set.contains(&seq)
    }

    fn insert(&mut self, seq: u64) {
        if self.set.insert(seq) {
            self.order.push_back(seq);
            if self.order.len() > REMEMBER
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}
