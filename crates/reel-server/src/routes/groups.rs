//! Share groups (kvsp-pub -s, Kafka consumer groups, NATS queue groups): each record of a
//! store goes to exactly one member of group G among those asking; a member acknowledges
//! what it processed; a record leased to a member that does not acknowledge it within
//! the lease (it died, or lost its connection) goes to another member. The group's
//! position (every seq below it acknowledged) persists as the named reader `group.G`, so
//! a server restart redelivers only what was handed out and not acknowledged.
//! Records handed to one member in one answer are in seq order; across members and
//! redeliveries there is no order.

use super::{AppState, NoQuery, inline, ndjson};
use crate::auth::{Caller, LiveCaller, acl::Flags};
use crate::error::{ApiError, ApiResult};
use crate::stores::{Store, Want};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a group stands (in memory; its position also on disk).
#[derive(Debug, Default)]
pub struct GroupState {
    loaded: bool,
    /// Every seq below is acknowledged (persisted as reader `group.G`).
    committed: u64,
    /// The next seq never handed out.
    next: u64,
    /// Handed out and not acknowledged: the member and when its lease ends.
    leased: BTreeMap<u64, (String, Instant)>,
    /// Acknowledged above `committed`.
    acked: BTreeSet<u64>,
    /// Leases that ended: handed out again first.
    redeliver: BTreeSet<u64>,
}

fn cursor_name(group: &str) -> String {
    format!("group.{group}")
}

impl GroupState {
    fn load(&mut self, store: &Store, group: &str) -> ApiResult<()> {
        if !self.loaded {
            let spool = store.spool();
            let r = spool.reader(&cursor_name(group))?;
            self.committed = r.position();
            self.next = self.committed;
            self.loaded = true;
        }
        Ok(())
    }

    /// Up to `max` seqs for `member`: expired leases first, then new records.
    fn take(&mut self, member: &str, max: usize, lease: Duration, end: u64) -> Vec<u64> {
        let now = Instant::now();
        let expired: Vec<u64> = self
            .leased
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(&s, _)| s)
            .collect();
        for s in expired {
            self.leased.remove(&s);
            self.redeliver.insert(s);
        }
        let mut out: Vec<u64> = Vec::new();
        while out.len() < max {
            let Some(s) = self.redeliver.pop_first() else {
                break;
            };
            out.push(s);
        }
        while out.len() < max && self.next < end {
            out.push(self.next);
            self.next += 1;
        }
        for &s in &out {
            self.leased.insert(s, (member.to_string(), now + lease));
        }
        out.sort_unstable();
        out
    }

    /// Records `seqs` acknowledged; returns the new position if it moved.
    fn ack(&mut self, seqs: &[u64], oldest: u64) -> Option<u64> {
        for &s in seqs {
            if s >= self.committed
                && (self.leased.remove(&s).is_some() || self.redeliver.remove(&s))
            {
                self.acked.insert(s);
            }
        }
        let before = self.committed;
        // Records retention dropped count as done: nobody can have them.
        if self.committed < oldest {
            self.committed = oldest;
            self.acked.retain(|&s| s >= oldest);
            self.redeliver.retain(|&s| s >= oldest);
            self.leased.retain(|&s, _| s >= oldest);
            self.next = self.next.max(oldest);
        }
        while self.acked.remove(&self.committed) {
            self.committed += 1;
        }
        (self.committed != before).then_some(self.committed)
    }

    /// When the earliest lease ends.
    fn next_expiry(&self) -> Option<Instant> {
        self.leased.values().map(|(_, until)| *until).min()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NextQuery {
    member: String,
    max: Option<usize>,
    wait: Option<f64>,
    /// Seconds a member has to acknowledge (default 30).
    lease: Option<f64>,
}

fn secs(v: Option<f64>, default: f64, what: &str) -> ApiResult<Duration> {
    match v {
        None => Ok(Duration::from_secs_f64(default)),
        Some(s) if s.is_finite() && (0.0..=3600.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(ApiError::bad_request(format!(
            "bad {what} `{s}` (0 to 3600 seconds)"
        ))),
    }
}

/// `POST .../groups/G/next?member=M&max=N&wait=SECS&lease=SECS`: NDJSON of records
/// leased to member M.
pub(crate) async fn next(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, group)): Path<(String, String)>,
    Query(q): Query<NextQuery>,
) -> ApiResult<Response> {
    caller.require(&name, &[], Flags::READ)?;
    reel::cursor::validate_name(&cursor_name(&group))?;
    if q.member.is_empty() || q.member.len() > 200 {
        return Err(ApiError::bad_request("member must be 1 to 200 characters"));
    }
    let max = super::max_records(q.max)?;
    let wait = secs(q.wait, 0.0, "wait")?.min(Duration::from_secs(300));
    let lease = secs(q.lease, 30.0, "lease")?;
    let stores = st.stores.clone();
    // A long wait is checked again before it leases anything (see `LiveCaller`).
    let mut live = LiveCaller::new(st.guard.clone(), caller, &name, &[], Flags::READ);
    let store = inline(move || stores.get(&name, Want::Existing)).await?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut waited = false;
    loop {
        if waited {
            live.check().await?;
        }
        waited = true;
        let (s, g, m) = (store.clone(), group.clone(), q.member.clone());
        let (lines, next, expiry) = inline(move || hand_out(&s, &g, &m, max, lease)).await?;
        if !lines.is_empty() || wait.is_zero() || st.is_stopping() {
            return Ok(ndjson(Body::from(lines)));
        }
        // Leases taken after this look (by members that die) end later: look again at
        // least every second.
        let recheck = tokio::time::Instant::now() + Duration::from_secs(1);
        let expiry = expiry
            .map(tokio::time::Instant::from_std)
            .unwrap_or(deadline)
            .min(recheck);
        tokio::select! {
            _ = store.appended_past(next) => {}
            _ = tokio::time::sleep_until(expiry.min(deadline)) => {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(ndjson(Body::empty()));
                }
            }
            _ = st.stopping() => return Ok(ndjson(Body::empty())),
        }
    }
}

/// Leases up to `max` records to `member` and renders them; also the group's next new
/// seq and its earliest lease end (what a waiting member waits for).
fn hand_out(
    store: &Arc<Store>,
    group: &str,
    member: &str,
    max: usize,
    lease: Duration,
) -> ApiResult<(Vec<u8>, u64, Option<Instant>)> {
    let spool = store.spool();
    let mut groups = store.groups.lock().unwrap_or_else(|e| e.into_inner());
    let g = groups.entry(group.to_string()).or_default();
    g.load(store, group)?;
    let oldest = spool.oldest_seq();
    g.ack(&[], oldest);
    let first_new = g.next;
    let seqs = g.take(member, max, lease, spool.next_seq());
    let mut buf = Vec::new();
    let mut render = |r: &reel::Record| -> ApiResult<()> {
        let line = r.to_json_meta()?;
        serde_json::to_writer(&mut buf, &line).map_err(|e| ApiError::internal(e.to_string()))?;
        buf.push(b'\n');
        Ok(())
    };
    // Redelivered records one by one (rare); the new ones, a contiguous range, in one
    // sequential read.
    let (again, new): (Vec<u64>, Vec<u64>) = seqs.iter().partition(|&&s| s < first_new);
    let mut gone = Vec::new();
    for s in again {
        match spool.get(s)? {
            Some(r) => render(&r)?,
            None => gone.push(s),
        }
    }
    if let (Some(&a), Some(&b)) = (new.first(), new.last()) {
        let mut expect = a;
        for r in spool.iter(a..=b) {
            let r = r?;
            gone.extend(expect..r.seq);
            expect = r.seq + 1;
            render(&r)?;
        }
        gone.extend(expect..=b);
    }
    // Gone to retention meanwhile: done, nobody can have them.
    g.ack(&gone, oldest);
    Ok((buf, g.next, g.next_expiry()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ack {
    seqs: Vec<u64>,
}

/// `POST .../groups/G/ack` with `{"seqs": [..]}`: those records are processed;
/// `{"position": P}` (every seq below P is acknowledged).
pub(crate) async fn ack(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, group)): Path<(String, String)>,
    _: NoQuery,
    Json(a): Json<Ack>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&name, &[], Flags::READ)?;
    reel::cursor::validate_name(&cursor_name(&group))?;
    inline(move || {
        let store = st.stores.get(&name, Want::Existing)?;
        let spool = store.spool();
        // As a reader's ack: a seq never appended is a client's mistake, said so, not
        // ignored (nothing of the ack is taken then).
        let next = spool.next_seq();
        if let Some(&bad) = a.seqs.iter().find(|&&s| s >= next) {
            return Err(ApiError::bad_request(format!(
                "cannot acknowledge seq {bad}: the next seq is {next}"
            )));
        }
        let mut groups = store.groups.lock().unwrap_or_else(|e| e.into_inner());
        let g = groups.entry(group.clone()).or_default();
        g.load(&store, &group)?;
        if let Some(p) = g.ack(&a.seqs, spool.oldest_seq()) {
            let mut r = spool.reader(&cursor_name(&group))?;
            r.seek(p);
            r.commit()?;
        }
        Ok(Json(serde_json::json!({"position": g.committed})))
    })
    .await
}
