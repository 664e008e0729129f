//! What a trial does after a flip: opens the store as a user would, reads and writes
//! through every interface, and records what it observed.

use super::*;

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

    /// Reads the whole log forwards, stepping over reported damage; returns the seqs read.
    pub(crate) fn read_forward(&mut self, log: &Log) -> BTreeSet<u64> {
        let mut r = log.reader(0);
        let mut got = BTreeSet::new();
        let mut skipped: Vec<Range<u64>> = Vec::new();
        let mut last_err_at = None;
        let mut stuck = 0;
        for _ in 0..100_000 {
            match r.read_batch(97) {
                Ok(b) => {
                    if let Some(l) = b.lost() {
                        self.bad(format!(
                            "forward read: lost range {l:?} reported, nothing was dropped"
                        ));
                    }
                    if b.is_empty() {
                        break;
                    }
                    let recs: Vec<Rec> = b.iter().map(|x| Rec::of(&x)).collect();
                    for rec in recs {
                        self.check_rec("forward read", &rec);
                        if !got.insert(rec.seq) {
                            self.bad(format!("forward read: record {} returned twice", rec.seq));
                        }
                    }
                }
                Err(e) => {
                    self.err("read", &e);
                    if last_err_at == Some(r.position()) {
                        stuck += 1;
                        if stuck > 3 {
                            self.bad(format!(
                                "forward read: stuck at {} (skip_damage makes no progress)",
                                r.position()
                            ));
                            break;
                        }
                    }
                    last_err_at = Some(r.position());
                    match r.skip_damage() {
                        Ok(s) => {
                            let _ = self.check_skip("forward read", &s);
                            skipped.push(s);
                        }
                        Err(e) => {
                            self.err("skip_damage", &e);
                            // What is left: seek to the next segment, as `reel rewind
                            // --to-seq` would.
                            let at = r.position();
                            self.bad(format!(
                                "forward read: skip_damage cannot step over the damage at seq {at}"
                            ));
                            match self.fx.segment_after(at) {
                                Some(n) => {
                                    skipped.push(at..n);
                                    r.seek(n);
                                }
                                None => {
                                    skipped.push(at..u64::MAX);
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        // Every record below the end was read or stepped over as damage.
        let end = log.next_seq();
        let missing: Vec<u64> = (0..end)
            .filter(|s| !got.contains(s) && !skipped.iter().any(|k| k.contains(s)))
            .collect();
        if !missing.is_empty() {
            self.bad(format!(
                "forward read: {} records silently missing (first {:?}); skipped {skipped:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            ));
        }
        got
    }

    /// The whole log through `Spool::stream` (which stops at damage): contiguous from
    /// the oldest record until an error, complete without one.
    pub(crate) fn read_stream(&mut self, sp: &Spool) -> BTreeSet<u64> {
        let mut got = BTreeSet::new();
        let mut expect = sp.oldest_seq();
        let stream = match sp.stream(&StreamOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                self.err("stream", &e);
                return got;
            }
        };
        for r in stream {
            match r {
                Ok(rec) => {
                    let rec = Rec::of_record(&rec);
                    self.check_rec("stream", &rec);
                    if rec.seq != expect {
                        self.bad(format!(
                            "stream: {} follows {}: records in between silently skipped",
                            rec.seq,
                            expect.wrapping_sub(1)
                        ));
                    }
                    expect = rec.seq + 1;
                    got.insert(rec.seq);
                }
                Err(e) => {
                    self.err("stream", &e);
                    return got;
                }
            }
        }
        if expect != sp.next_seq() {
            self.bad(format!(
                "stream ended at {expect} without an error, the end is {}",
                sp.next_seq()
            ));
        }
        got
    }

    /// Newest first, over the flipped segment: contiguous from its end until an error,
    /// complete without one.
    pub(crate) fn read_backward(&mut self, sp: &Spool) {
        let Some(range) = self.fx.segment_range(&self.t.file) else {
            return;
        };
        let lo = range.start.max(sp.oldest_seq());
        let mut expect = range.end.min(sp.next_seq());
        let mut failed = false;
        for r in sp.iter_rev(range) {
            match r {
                Ok(rec) => {
                    let rec = Rec::of_record(&rec);
                    self.check_rec("backward read", &rec);
                    if rec.seq + 1 != expect {
                        self.bad(format!(
                            "backward read: {} follows {expect}: records in between silently skipped",
                            rec.seq
                        ));
                    }
                    expect = rec.seq;
                }
                Err(e) => {
                    self.err("backward read", &e);
                    failed = true;
                    break;
                }
            }
        }
        if !failed && expect > lo {
            self.bad(format!(
                "backward read stopped at {expect} without an error, the segment starts at {lo}"
            ));
        }
    }

    /// `seek_time` of timestamps in the flipped segment and around it (spool fixture:
    /// increasing timestamps, so each has one right answer).
    pub(crate) fn seek_times(&mut self, log: &Log) {
        let Some(range) = self.fx.segment_range(&self.t.file) else {
            return;
        };
        let n = self.end();
        let (lo, hi) = (range.start, range.end.min(n));
        let mut seqs: BTreeSet<u64> =
            [lo, lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3, hi - 1].into();
        if hi < n {
            seqs.insert(hi);
        }
        for &s in &seqs {
            let ts = self.fx.recs[s as usize].ts;
            match log.seek_time(ts) {
                Ok(got) if got == s => {}
                Ok(got) => self.bad(format!(
                    "seek_time(ts of record {s}) = {got} without an error"
                )),
                Err(e) => self.err("seek_time", &e),
            }
        }
    }

    pub(crate) fn status_and_verify(&mut self, sp: &Spool, readable: usize) {
        let clean = self.obs.errors.is_empty() && self.obs.damage.is_empty();
        match sp.status() {
            Ok(st) => {
                if st.next_seq != sp.next_seq() {
                    self.bad(format!(
                        "status next_seq {} != {}",
                        st.next_seq,
                        sp.next_seq()
                    ));
                }
                if clean && st.records != readable as u64 {
                    self.bad(format!(
                        "status counts {} records, {readable} can be read",
                        st.records
                    ));
                }
            }
            Err(e) => self.err("status", &e),
        }
        match sp.verify() {
            Ok(rep) => {
                for d in &rep.damage {
                    self.obs.damage.push(format!(
                        "{}: verify: {} at {}: {}",
                        self.phase,
                        d.path.file_name().unwrap().to_string_lossy(),
                        d.offset,
                        d.what
                    ));
                    // `reel rewind --to-seq` follows this advice: it must not skip
                    // intact records.
                    let limit = self.t.damaged.end.max(self.t.damaged.start);
                    if let Some(r) = d.resume_seq
                        && d.path.ends_with(&self.t.file)
                        && r > limit
                    {
                        self.bad(format!(
                            "verify says the next readable seq after the damage is {r}, but only {:?} can be damaged",
                            self.t.damaged
                        ));
                    }
                }
                if rep.is_ok() && rep.records != readable as u64 {
                    self.bad(format!(
                        "verify finds no damage and {} records, {readable} can be read",
                        rep.records
                    ));
                }
            }
            Err(e) => self.err("verify", &e),
        }
    }

    /// Opens every named reader: it must resume where it was committed; with `full`,
    /// reads to the end and commits, otherwise reads a few records.
    pub(crate) fn readers(&mut self, sp: &Spool, full: bool) {
        for (name, ok) in self.fx.readers.clone() {
            let mut r = match sp.reader(&name) {
                Ok(r) => r,
                Err(e) => {
                    self.err(&format!("open reader {name}"), &e);
                    continue;
                }
            };
            let pos = r.position();
            let allowed = match self.committed.get(&name) {
                Some(&p) => vec![p],
                None => ok.iter().map(|&p| p.min(sp.next_seq())).collect(),
            };
            if !allowed.contains(&pos) {
                self.bad(format!(
                    "reader {name} resumes at {pos}, committed positions were {allowed:?}"
                ));
            }
            let mut expect = pos;
            for _ in 0..if full { 10_000 } else { 3 } {
                match r.next() {
                    Ok(Some(rec)) => {
                        let rec = Rec::of_record(&rec);
                        self.check_rec(&format!("reader {name}"), &rec);
                        if rec.seq != expect {
                            self.bad(format!(
                                "reader {name}: delivered {} after {}: records in between silently skipped",
                                rec.seq,
                                expect.wrapping_sub(1)
                            ));
                        }
                        expect = rec.seq + 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.err(&format!("reader {name}"), &e);
                        match r.skip_damage() {
                            Ok(s) => {
                                // Once it skipped intact records, one such finding is enough.
                                if !self.check_skip(&format!("reader {name}"), &s)
                                    || (s.end <= expect && s.is_empty())
                                {
                                    break;
                                }
                                expect = s.end;
                            }
                            Err(e) => {
                                self.err(&format!("reader {name} skip_damage"), &e);
                                let at = r.position();
                                self.bad(format!(
                                    "reader {name}: skip_damage cannot step over the damage at seq {at}"
                                ));
                                match self.fx.segment_after(at) {
                                    Some(n) => {
                                        r.seek(n);
                                        expect = n;
                                    }
                                    None => break,
                                }
                            }
                        }
                    }
                }
            }
            if full && r.position() != sp.next_seq() && self.obs.errors.is_empty() {
                self.bad(format!(
                    "reader {name} stopped at {} without an error, the end is {}",
                    r.position(),
                    sp.next_seq()
                ));
            }
            if full {
                match r.commit() {
                    Ok(()) => {
                        self.committed.insert(name.clone(), r.position());
                    }
                    Err(e) => self.err(&format!("commit reader {name}"), &e),
                }
            }
        }
    }

    pub(crate) fn kv_checks(&mut self, kv: &KvStore) {
        let exp = kv_state(self.expected());
        let mut paths = self.fx.paths.clone();
        paths.extend(self.extra.iter().filter_map(|r| r.key.clone()));
        for p in &paths {
            let path: KvPath = p.parse().unwrap();
            match kv.get(&path) {
                Ok(got) => {
                    let got = got.map(|e| (e.encoding.tag(), e.bytes, e.rev, e.ts));
                    if got.as_ref() != exp.get(p) {
                        self.bad(format!("kv get {p} = {got:?}, expected {:?}", exp.get(p)));
                    }
                }
                Err(e) => {
                    self.err(&format!("kv get {p}"), &e);
                    // The view stops at the same place for every path.
                    break;
                }
            }
        }
        match kv.entries(&KvPath::root()) {
            Ok(v) => {
                let got: KvExp = v
                    .into_iter()
                    .map(|(p, e)| (p.to_string(), (e.encoding.tag(), e.bytes, e.rev, e.ts)))
                    .collect();
                if got != exp {
                    let wrong: Vec<&String> = got
                        .keys()
                        .chain(exp.keys())
                        .filter(|k| got.get(*k) != exp.get(*k))
                        .collect();
                    self.bad(format!("kv entries differ from the model at {wrong:?}"));
                }
            }
            Err(e) => self.err("kv entries", &e),
        }
    }

    /// Every list's info and items; `small_pages` pages through with continuation
    /// tokens (and one reverse page), otherwise one page holds a whole list.
    pub(crate) fn list_checks(&mut self, lists: &ListStore, small_pages: bool) {
        let exp = lists_state(self.expected());
        match lists.keys() {
            Ok(keys) => {
                let want: Vec<String> = exp.keys().cloned().collect();
                if keys != want {
                    self.bad(format!("list keys {keys:?}, expected {want:?}"));
                }
            }
            Err(e) => self.err("list keys", &e),
        }
        for key in self.fx.list_keys.clone() {
            let l = exp.get(&key).cloned().unwrap_or_default();
            let info = match lists.info(&key) {
                Ok(Some(i)) => i,
                Ok(None) => {
                    self.bad(format!("list {key}: info says it does not exist"));
                    continue;
                }
                Err(e) => {
                    self.err(&format!("list info {key}"), &e);
                    continue;
                }
            };
            let want = (
                l.items.len() as u64,
                l.items.first().map_or(l.next_offset, |i| i.0),
                l.next_offset,
                l.items.first().map(|i| i.1),
                l.items.last().map(|i| i.1),
                l.last_nonce,
            );
            let got = (
                info.count,
                info.first_offset,
                info.next_offset,
                info.first_ts,
                info.last_ts,
                info.last_nonce,
            );
            if got != want {
                self.bad(format!("list {key}: info {got:?}, expected {want:?}"));
            }
            // Page forwards to the end.
            let mut paged = Vec::new();
            let mut req = PageRequest {
                limit: Some(if small_pages { 20 } else { 100_000 }),
                ..Default::default()
            };
            let mut failed = false;
            for _ in 0..1000 {
                match lists.read(&key, &req) {
                    Ok(page) => {
                        if page.items.is_empty() {
                            break;
                        }
                        paged.extend(
                            page.items
                                .into_iter()
                                .map(|i| (i.offset, i.ts, i.nonce, i.value.as_bytes().to_vec())),
                        );
                        req.continuation = page.continuation;
                        if req.continuation.is_none() {
                            self.bad(format!("list {key}: a forward page without a token"));
                            break;
                        }
                    }
                    Err(e) => {
                        self.err(&format!("list read {key}"), &e);
                        failed = true;
                        break;
                    }
                }
            }
            let n = paged.len().min(l.items.len());
            if paged[..n] != l.items[..n] || (!failed && paged.len() != l.items.len()) {
                let first_diff = paged.iter().zip(&l.items).position(|(a, b)| a != b);
                self.bad(format!(
                    "list {key}: paged {} items, info counts {}, {} written; first difference at {first_diff:?}",
                    paged.len(),
                    info.count,
                    l.items.len()
                ));
            }
            if !small_pages {
                continue;
            }
            // The newest page, backwards.
            let req = PageRequest {
                limit: Some(3),
                reverse: true,
                ..Default::default()
            };
            match lists.read(&key, &req) {
                Ok(page) => {
                    let got: Vec<_> = page
                        .items
                        .into_iter()
                        .map(|i| (i.offset, i.ts, i.nonce, i.value.as_bytes().to_vec()))
                        .collect();
                    let want: Vec<_> = l.items.iter().rev().take(3).cloned().collect();
                    if got != want {
                        self.bad(format!("list {key}: newest page differs from the model"));
                    }
                }
                Err(e) => self.err(&format!("list read {key} reverse"), &e),
            }
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

// ---------------------------------------------------------------------------------------
// Tee: a damaged marker or source cursor must cost neither a duplicate nor a gap.
// ---------------------------------------------------------------------------------------

/// Runs the tee from `dir/src` into `dir/dst` until it is caught up.
pub(crate) fn run_tee(dir: &Path) -> reel::Result<()> {
    let src = Spool::open(dir.join("src"))?;
    let dst = Spool::open(dir.join("dst"))?;
    let mut tee = reel::tee::Tee::new(&src, "tee", &[dst])?;
    tee.run(false, &std::sync::atomic::AtomicBool::new(false))?;
    Ok(())
}

/// The source gets 130 records; the tee copies them in two runs (60, then 40 more), so
/// both slots of its marker and cursor hold a position; 30 are left for the trial. The
/// destination starts with 5 records of its own. The model (`recs`) is what the
/// destination holds once an intact copy of the fixture is teed to the end.
pub(crate) fn build_tee(dir: &Path) -> Fixture {
    let src = spool_builder(&dir.join("src")).open().unwrap();
    let dst = spool_builder(&dir.join("dst")).open().unwrap();
    for i in 0..5 {
        let own = NewRecord::new(serde_json::json!({"own": i})).ts(TS0 - 1000 + i);
        dst.append(own).unwrap();
    }
    for (upto, run) in [(60, true), (100, true), (130, false)] {
        for i in src.next_seq()..upto {
            src.append(spool_value(i)).unwrap();
        }
        if run {
            run_tee(dir).unwrap();
        }
    }
    drop((src, dst));
    let snap = snapshot(dir);
    // The model: an intact copy teed to the end.
    let scratch = tempfile::tempdir().unwrap();
    restore(scratch.path(), &snap);
    run_tee(scratch.path()).unwrap();
    let recs = read_intact(&scratch.path().join("dst"));
    let src_recs = read_intact(&dir.join("src"));
    assert_eq!(recs.len(), 5 + src_recs.len());
    for (d, s) in recs[5..].iter().zip(&src_recs) {
        assert_eq!(
            (d.ts, &d.key, d.nonce, d.tag, &d.value),
            (s.ts, &s.key, s.nonce, s.tag, &s.value)
        );
    }
    Fixture {
        kind: Kind::Tee,
        snap,
        recs,
        readers: Vec::new(),
        paths: Vec::new(),
        list_keys: Vec::new(),
    }
}

/// Every byte of the tee's marker (in the destination) and of its source cursor.
pub(crate) fn tee_targets(fx: &Fixture) -> Vec<Target> {
    let mut all = Vec::new();
    for (p, bytes) in &fx.snap.files {
        let class = if p.starts_with("dst/tee") {
            "tee marker"
        } else if p.starts_with("src/readers") {
            "tee cursor"
        } else {
            continue;
        };
        let mut t = Targets {
            out: Vec::new(),
            file: p,
            class,
            salt: 6,
            damaged: 0..0,
        };
        for (slot, base) in [("slot0", 0u64), ("slot1", 64)] {
            let (g, a) = cursor_slots(&bytes[base as usize..base as usize + 64])[0];
            let what = format!("{slot}: generation {g}, a = {a}");
            t.bytes(
                &format!("{slot} magic/version/kind"),
                &what,
                base..base + 16,
            );
            t.bytes(
                &format!("{slot} generation/a/b"),
                &what,
                base + 16..base + 40,
            );
            t.bytes(
                &format!("{slot} updated/reserved"),
                &what,
                base + 40..base + 60,
            );
            t.bytes(&format!("{slot} crc"), &what, base + 60..base + 64);
        }
        all.extend(t.out);
    }
    assert_eq!(all.len(), 256);
    all
}

/// Tees to the end, twice (the second run after a reopen must copy nothing): the
/// destination must then hold exactly its own records and every source record once,
/// in order; after a refused tee, a prefix of that.
pub(crate) fn exercise_tee(fx: &Fixture, dir: &Path, t: &Target) -> Obs {
    let mut c = Ctx {
        fx,
        t,
        phase: "tee",
        cut_end: None,
        extra: Vec::new(),
        committed: BTreeMap::new(),
        obs: Obs::default(),
    };
    for phase in ["tee", "tee again"] {
        c.phase = phase;
        let ran = match run_tee(dir) {
            Ok(()) => true,
            Err(e) => {
                c.err("run", &e);
                false
            }
        };
        let dst = match Spool::open(dir.join("dst")) {
            Ok(d) => d,
            Err(e) => {
                c.err("open the destination", &e);
                continue;
            }
        };
        let got = c.read_forward(dst.log());
        let n = dst.next_seq();
        if n > fx.next() || (ran && n != fx.next()) {
            c.bad(format!(
                "the destination holds {n} records, {} expected (duplicates or a gap)",
                fx.next()
            ));
        }
        if got.len() as u64 != n {
            c.bad(format!(
                "{} of {n} destination records can be read",
                got.len()
            ));
        }
        c.status_and_verify(&dst, got.len());
    }
    c.obs
}

// ---------------------------------------------------------------------------------------
// The sweep: watchdog, panic capture, classification, summary.
// ---------------------------------------------------------------------------------------

thread_local! {
    pub(crate) static PANIC_MSG: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}
