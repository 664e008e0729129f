//! The tee fixture, its flips and its trial: a damaged marker or source cursor must cost
//! neither a duplicate nor a gap.

use super::*;

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
