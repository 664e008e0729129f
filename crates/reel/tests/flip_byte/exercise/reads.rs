//! The log's own interfaces in a trial: forward reads stepping over damage, the stream,
//! backward reads, `seek_time`, `status` and `verify`, the named readers.

use super::*;

impl Ctx<'_> {
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
}
