//! What a trial does after a flip: opens the store as a user would, reads and writes
//! through every interface, and records what it observed.

use super::*;

mod reads;
mod views;

#[derive(Debug, Default, Clone)]
pub(crate) struct Obs {
    /// Errors returned, as "operation: message".
    pub(crate) errors: Vec<String>,
    /// Errors that do not name the flipped file.
    pub(crate) unnamed: Vec<String>,
    /// Damage listed by `verify` or by recovery.
    pub(crate) damage: Vec<String>,
    /// Recovery cut records off the tail (and said so).
    pub(crate) cut: bool,
    pub(crate) refused_ro: bool,
    pub(crate) refused_rw: bool,
    /// Broken promises.
    pub(crate) violations: Vec<String>,
}

pub(crate) struct Ctx<'a> {
    pub(crate) fx: &'a Fixture,
    pub(crate) t: &'a Target,
    pub(crate) phase: &'static str,
    /// End of the log as the first open that reported a cut left it.
    pub(crate) cut_end: Option<u64>,
    /// Records this trial appended.
    pub(crate) extra: Vec<Rec>,
    /// Where r1 was committed by this trial.
    pub(crate) committed: BTreeMap<String, u64>,
    pub(crate) obs: Obs,
}

impl Ctx<'_> {
    pub(crate) fn err(&mut self, op: &str, e: &dyn std::fmt::Display) {
        let msg = format!("{}: {op}: {e}", self.phase);
        let name = self.t.file.file_name().unwrap().to_str().unwrap();
        if !msg.contains(name) {
            self.obs.unnamed.push(msg.clone());
        }
        self.obs.errors.push(msg);
    }

    pub(crate) fn bad(&mut self, what: String) {
        self.obs.violations.push(format!("{}: {what}", self.phase));
    }

    /// End of the written records as this trial may see it: the model's, or where a
    /// reported cut left it.
    pub(crate) fn end(&self) -> u64 {
        self.cut_end.unwrap_or(self.fx.next())
    }

    /// All records this trial expects: the model up to `end`, then what it appended.
    pub(crate) fn expected(&self) -> Vec<&Rec> {
        let end = self.end();
        self.fx.recs[..end as usize]
            .iter()
            .chain(self.extra.iter())
            .collect()
    }

    pub(crate) fn check_rec(&mut self, what: &str, r: &Rec) {
        let exp = if r.seq < self.end() {
            self.fx.recs.get(r.seq as usize)
        } else {
            self.extra.iter().find(|x| x.seq == r.seq)
        };
        match exp {
            Some(e) if e == r => {}
            // An appended kv value whose time the view could not tell.
            Some(e)
                if e.ts == i64::MIN
                    && Rec {
                        ts: r.ts,
                        ..e.clone()
                    } == *r => {}
            Some(e) => {
                let e = e.clone();
                self.bad(format!("{what}: record {} is {r:?}, written {e:?}", r.seq));
            }
            None => self.bad(format!("{what}: record {} was never written: {r:?}", r.seq)),
        }
    }

    /// A skip over damage must only step over records the flip can have damaged.
    /// Returns false when it did not.
    pub(crate) fn check_skip(&mut self, what: &str, s: &Range<u64>) -> bool {
        let intact: Vec<u64> = s.clone().filter(|q| !self.t.damaged.contains(q)).collect();
        if intact.is_empty() {
            return true;
        }
        {
            self.bad(format!(
                "{what}: skip_damage stepped over {} intact records ({}..={}); only {:?} can be damaged",
                intact.len(),
                intact[0],
                intact[intact.len() - 1],
                self.t.damaged
            ));
        }
        false
    }

    /// Opening checks: the end of the log and what recovery said.
    pub(crate) fn check_open(&mut self, sp: &Spool) {
        let log = sp.log();
        if let Some(rep) = log.recovery_report() {
            for d in &rep.damage {
                self.obs
                    .damage
                    .push(format!("{}: recovery: damage at {}", self.phase, d.offset));
            }
            if let Some(c) = &rep.cut {
                self.obs.cut = true;
                self.obs.damage.push(format!(
                    "{}: recovery cut {} bytes at {} ({})",
                    self.phase, c.bytes, c.offset, c.reason
                ));
                if self.cut_end.is_none() && self.extra.is_empty() {
                    let end = log.next_seq();
                    self.cut_end = Some(end);
                    // A torn write is the end of what was written: a cut may take the
                    // damaged record, never the intact ones after it.
                    let intact: Vec<u64> = (end..self.fx.next())
                        .filter(|q| !self.t.damaged.contains(q))
                        .collect();
                    if !intact.is_empty() {
                        self.bad(format!(
                            "recovery cut {} intact records ({}..={}) after the damaged one, as a torn tail",
                            intact.len(),
                            intact[0],
                            intact[intact.len() - 1]
                        ));
                    }
                }
            }
        }
        let next = log.next_seq();
        let want = self.end() + self.extra.len() as u64;
        if next != want {
            self.bad(format!(
                "next_seq is {next}, but {want} records were written and no cut to {next} was reported"
            ));
        }
        if log.oldest_seq() != 0 {
            self.bad(format!(
                "oldest_seq is {}, nothing was dropped",
                log.oldest_seq()
            ));
        }
    }

    /// What a reader of the store does; returns the seqs read forwards and the store's
    /// own handle. The first writable open does everything; the read-only open and the
    /// reopen skip the slowest (backward reads, `seek_time`, reading readers to the end).
    pub(crate) fn read_checks(&mut self, sp: &Spool, everything: bool) -> (BTreeSet<u64>, Handle) {
        let got = if sp.log().is_writable() {
            self.read_forward(sp.log())
        } else {
            self.read_stream(sp)
        };
        if everything {
            self.read_backward(sp);
            if self.fx.kind == Kind::Spool {
                self.seek_times(sp.log());
            }
        }
        self.status_and_verify(sp, got.len());
        if sp.log().is_writable() {
            self.readers(sp, everything);
        }
        let handle = match self.fx.kind {
            Kind::Spool | Kind::Tee => Handle::Spool,
            Kind::Kv => match KvStore::on_spool(sp) {
                Ok(kv) => {
                    self.kv_checks(&kv);
                    Handle::Kv(kv)
                }
                Err(e) => {
                    self.err("kv open", &e);
                    Handle::None
                }
            },
            Kind::Lists => match ListStore::on_spool(sp) {
                Ok(l) => {
                    self.list_checks(&l, everything);
                    Handle::Lists(l)
                }
                Err(e) => {
                    self.err("lists open", &e);
                    Handle::None
                }
            },
        };
        (got, handle)
    }

    /// One new record through the store's own API (read back by the reopen).
    pub(crate) fn append(&mut self, sp: &Spool, handle: &Handle) {
        let next = sp.next_seq();
        let ts = TS0 + 1_000_000_000;
        let json = serde_json::json!({"new": true});
        let msgpack = Value::json(&json).as_bytes().to_vec();
        let rec = |seq, ts, key: &str, nonce, tag, value| Rec {
            seq,
            ts,
            key: Some(key.into()),
            nonce,
            tag,
            value,
        };
        let result: reel::Result<Rec> = match handle {
            Handle::None => return,
            Handle::Spool => sp
                .append(NewRecord::new(json.clone()).key("new").ts(ts))
                .map(|seq| rec(seq, ts, "new", None, 1, msgpack)),
            Handle::Kv(kv) => {
                let path: KvPath = "fresh.path".parse().unwrap();
                kv.set(&path, json.clone()).map(|seq| {
                    // The time is the append's own: learn it from the view, if it can
                    // still catch up.
                    let ts = match kv.get(&path) {
                        Ok(Some(e)) => e.ts,
                        _ => i64::MIN,
                    };
                    rec(seq, ts, "fresh.path", None, 1, msgpack)
                })
            }
            Handle::Lists(l) => l
                .append(
                    "list-0",
                    &[NewItem {
                        value: json.clone(),
                        nonce: Some(u128::MAX),
                        ts: Some(ts),
                    }],
                )
                .map(|r| {
                    let mut value = (r.next_offset - 1).to_le_bytes().to_vec();
                    value.extend_from_slice(&msgpack);
                    rec(sp.next_seq() - 1, ts, "list-0", Some(u128::MAX), 2, value)
                }),
        };
        let rec = match result {
            Ok(r) => r,
            Err(e) => return self.err("append", &e),
        };
        // The first append of a handle checks the tail: it may have reported something.
        if let Some(rep) = sp.log().recovery_report()
            && (rep.cut.is_some() || !rep.damage.is_empty())
        {
            self.obs.damage.push(format!(
                "{}: recovery at the first append: {rep:?}",
                self.phase
            ));
            if rep.cut.is_some() {
                self.obs.cut = true;
            }
        }
        if rec.seq != next {
            self.bad(format!(
                "the new record got seq {}, the end was {next}",
                rec.seq
            ));
        }
        self.extra.push(rec);
    }
}

/// The store's own handle in one phase of a trial.
pub(crate) enum Handle {
    None,
    Spool,
    Kv(KvStore),
    Lists(ListStore),
}

pub(crate) fn exercise(fx: &Fixture, dir: &Path, t: &Target, mode: Mode) -> Obs {
    if fx.kind == Kind::Tee {
        return exercise_tee(fx, dir, t);
    }
    let mut c = Ctx {
        fx,
        t,
        phase: "read-only",
        cut_end: None,
        extra: Vec::new(),
        committed: BTreeMap::new(),
        obs: Obs::default(),
    };
    match Spool::builder(dir).create(false).read_only(true).open() {
        Err(e) => {
            c.err("open", &e);
            c.obs.refused_ro = true;
        }
        Ok(sp) => {
            // The harness itself: a warm head is trusted (no recovery), a cold one not.
            let recovered = sp.log().recovery_report().is_some();
            if mode == Mode::Warm && recovered && t.class != "reel.head" {
                c.bad("harness: the warm head was not trusted".into());
            }
            if mode == Mode::Cold && !recovered {
                c.bad("harness: the cold head was trusted".into());
            }
            c.check_open(&sp);
            c.read_checks(&sp, false);
        }
    }
    // A read-only open that saw a cut did not make it: the writable open must again.
    let ro_cut = c.cut_end.take();
    c.phase = "read-write";
    match Spool::open(dir) {
        Err(e) => {
            c.err("open", &e);
            c.obs.refused_rw = true;
        }
        Ok(sp) => {
            c.check_open(&sp);
            if ro_cut.is_some() && c.cut_end != ro_cut {
                c.bad(format!(
                    "read-only recovery ended the log at {ro_cut:?}, the writable one at {:?}",
                    c.cut_end
                ));
            }
            let (before, handle) = c.read_checks(&sp, true);
            c.append(&sp, &handle);
            drop(handle);
            drop(sp);
            c.phase = "reopen";
            match Spool::open(dir) {
                Err(e) => c.err("reopen", &e),
                Ok(sp) => {
                    c.check_open(&sp);
                    let (after, _) = c.read_checks(&sp, false);
                    let lost: Vec<&u64> = before.difference(&after).collect();
                    if !lost.is_empty() {
                        c.bad(format!(
                            "{} records readable before the append and reopen are not after (first {:?})",
                            lost.len(),
                            lost.first()
                        ));
                    }
                    for r in c.extra.clone() {
                        if !after.contains(&r.seq) {
                            c.bad(format!(
                                "the appended record {} is gone after the reopen",
                                r.seq
                            ));
                        }
                    }
                }
            }
        }
    }
    c.obs
}
