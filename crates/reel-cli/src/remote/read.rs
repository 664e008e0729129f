//! `reel read URL`: a named reader on a server, with the local command's promise that
//! only records the consumer took are consumed. Records are printed as `next` hands them
//! out and acknowledged once the bytes of their line left the pipe (the same slow start
//! and FIONREAD accounting as the local `read`), so `reel read URL | head -1` consumes
//! one record, not the batch. After a dropped connection the reader resumes at the
//! server's position and skips what it already printed: nothing lost, nothing doubled.

use super::{Call, Remote, encode};
use crate::cli::ReadArgs;
use crate::error::{CliError, CliResult};
use crate::output::{Drain, Output};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Instant;

/// Records asked for per `next` request at most.
const READ_BATCH: u64 = 1000;
/// How long one `next` request waits on the server when following.
const LONG_POLL: f64 = 30.0;
/// The slow start ends once one window is this many bytes (a default pipe's capacity).
const FULL_WINDOW_BYTES: u64 = 64 << 10;

struct Session<'a> {
    r: &'a Remote,
    /// `readers/NAME` or `groups/G`.
    base: String,
    /// In a share group: this member's name and lease.
    member: Option<(String, f64)>,
    /// Group records printed and not acknowledged yet (a redelivery of one of them to
    /// this member is not printed again).
    unacked: std::collections::HashSet<u64>,
    out: &'a mut Output,
    /// For each printed record not yet acknowledged: where its line ends in the output,
    /// and its seq.
    ends: VecDeque<(u64, u64)>,
    window: Option<u64>,
    last_printed: Option<u64>,
}

pub fn read(r: &Remote, a: &ReadArgs, out: &mut Output) -> CliResult {
    let idle = match a.timeout {
        Some(t) if t.is_nan() || t < 0.0 => {
            return Err(CliError::Input(format!(
                "invalid --timeout {t}: expected seconds, 0 or more"
            )));
        }
        Some(t) => Some(t),
        None if a.no_wait => Some(0.0),
        None => None,
    };
    let window = out.is_pipe().then_some(1);
    let (base, member) = match &a.group {
        Some(g) => (
            format!("groups/{}", encode(g)),
            Some((member_name(), a.lease)),
        ),
        None => (format!("readers/{}", encode(&a.reader)), None),
    };
    let mut s = Session {
        r,
        base,
        member,
        unacked: Default::default(),
        out,
        ends: VecDeque::new(),
        window,
        last_printed: None,
    };
    let pumped = s.pump(a, idle);
    let closed = matches!(&pumped, Err(e) if e.is_broken_pipe());
    if !closed {
        let _ = s.out.flush();
    }
    s.out.wait_drained(None);
    let acked = s.ack_consumed();
    match pumped {
        Err(e) if e.is_broken_pipe() => acked,
        Err(e) => Err(e),
        Ok(()) => acked,
    }
}

impl Session<'_> {
    fn pump(&mut self, a: &ReadArgs, idle: Option<f64>) -> CliResult {
        let mut printed = 0u64;
        let mut idle_since = Instant::now();
        loop {
            let left = a.count.map_or(u64::MAX, |c| c - printed);
            let want = left.min(READ_BATCH).min(self.window.unwrap_or(u64::MAX));
            if want == 0 {
                return Ok(());
            }
            let wait = match idle {
                Some(t) => (t - idle_since.elapsed().as_secs_f64()).clamp(0.0, LONG_POLL),
                None => LONG_POLL,
            };
            let mut query = vec![("max", want.to_string()), ("wait", format!("{wait:.3}"))];
            if let Some((m, lease)) = &self.member {
                query.push(("member", m.clone()));
                query.push(("lease", format!("{lease}")));
            }
            let body = self.r.text(&Call {
                method: "POST",
                path: format!("/{}/next", self.base),
                query,
                idempotent: true,
                waits: std::time::Duration::from_secs_f64(wait),
                ..Default::default()
            })?;
            let start = self.out.pushed();
            let mut new = 0;
            for line in body.lines() {
                let rec: Value = serde_json::from_str(line)
                    .map_err(|e| CliError::Input(format!("the server sent a bad record ({e})")))?;
                let seq = rec["seq"].as_u64().unwrap_or(0);
                // Printed before a reconnect (or, in a group, before its lease ran out),
                // not acknowledged yet: not again.
                let seen = match self.member {
                    Some(_) => !self.unacked.insert(seq),
                    None => self.last_printed.is_some_and(|p| seq <= p),
                };
                if seen {
                    continue;
                }
                if a.meta {
                    self.out.json_line(&rec)?;
                } else {
                    self.out.json_line(&rec["value"])?;
                }
                self.ends.push_back((self.out.pushed(), seq));
                self.last_printed = Some(seq);
                new += 1;
            }
            if new > 0 {
                printed += new;
                self.out.flush()?;
                if let Some(w) = self.window {
                    // Hand out the next window only once this one was taken.
                    if self.out.wait_drained(None) == Drain::Closed {
                        return Err(CliError::Output(std::io::ErrorKind::BrokenPipe.into()));
                    }
                    let bytes = self.out.pushed() - start;
                    self.window = (bytes < FULL_WINDOW_BYTES && w < READ_BATCH).then_some(w * 2);
                }
                self.ack_consumed()?;
                idle_since = Instant::now();
                continue;
            }
            self.ack_consumed()?;
            if idle.is_some_and(|t| idle_since.elapsed().as_secs_f64() >= t) {
                return Ok(());
            }
            if self.out.consumer_gone() {
                return Err(CliError::Output(std::io::ErrorKind::BrokenPipe.into()));
            }
        }
    }

    /// Acknowledges every printed record the consumer has taken.
    fn ack_consumed(&mut self) -> CliResult {
        let consumed = self.out.consumed();
        let mut taken = Vec::new();
        while let Some(&(end, seq)) = self.ends.front() {
            if end > consumed {
                break;
            }
            taken.push(seq);
            self.ends.pop_front();
        }
        let Some(&last) = taken.last() else {
            return Ok(());
        };
        // A reader's position is one seq; a group acknowledges the records themselves.
        let body = match self.member {
            Some(_) => {
                for s in &taken {
                    self.unacked.remove(s);
                }
                serde_json::json!({ "seqs": taken })
            }
            None => serde_json::json!({ "seq": last }),
        };
        self.r.json(&Call {
            method: "POST",
            path: format!("/{}/ack", self.base),
            headers: vec![("Content-Type", "application/json".into())],
            body: Some(body.to_string().into_bytes()),
            idempotent: true,
            ..Default::default()
        })?;
        Ok(())
    }
}

/// This process's name in a share group: host and pid, unique among the group's members.
pub fn member_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}-{}", std::process::id())
}
