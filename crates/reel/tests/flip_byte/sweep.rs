//! The sweep: every flip of a fixture as one trial, under a watchdog and with panics
//! captured; each trial's findings classified; the summary printed.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Warm,
    Cold,
}

/// How long one trial may take before it counts as a hang.
const WATCHDOG: Duration = Duration::from_secs(20);

const TRIAL_THREAD: &str = "flip-trial";

thread_local! {
    static PANIC_MSG: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(TRIAL_THREAD) {
                PANIC_MSG.with(|m| *m.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs one trial under the watchdog; `None` on a hang.
pub(crate) fn guarded(fx: &Arc<Fixture>, dir: &Path, t: &Target, mode: Mode) -> Option<Obs> {
    install_panic_hook();
    let (tx, rx) = std::sync::mpsc::channel();
    let (fx2, dir2, t2) = (fx.clone(), dir.to_path_buf(), t.clone());
    std::thread::Builder::new()
        .name(TRIAL_THREAD.into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                exercise(&fx2, &dir2, &t2, mode)
            }));
            let obs = r.unwrap_or_else(|_| Obs {
                violations: vec![format!(
                    "PANIC: {}",
                    PANIC_MSG
                        .with(|m| m.borrow_mut().take())
                        .unwrap_or_else(|| "(no message)".into())
                        .replace('\n', " ")
                )],
                ..Default::default()
            });
            let _ = tx.send(obs);
        })
        .unwrap();
    rx.recv_timeout(WATCHDOG).ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Every answer right, nothing to report (caches rebuilt silently, or no effect).
    Correct,
    /// Every answer given was right; the damage was reported (errors, verify, recovery).
    Reported,
    /// Recovery cut the damaged last record of the tail and said so.
    Cut,
    /// The store refused to open (read-only and read-write), with an error.
    Refused,
    /// A broken promise that is a known bug with an ignored regression test.
    KnownBug,
    /// A broken promise: panic, hang, wrong answer, unreported damage.
    Violation,
}

const OUTCOMES: [(Outcome, &str); 6] = [
    (Outcome::Correct, "correct"),
    (Outcome::Reported, "reported"),
    (Outcome::Cut, "cut"),
    (Outcome::Refused, "refused"),
    (Outcome::KnownBug, "KNOWN BUG"),
    (Outcome::Violation, "VIOLATION"),
];

/// Broken promises already kept as ignored regression tests (`bug_*` in main.rs): the
/// sweep counts them instead of failing, so that it still catches every new one.
fn known_bug(_t: &Target, _v: &str) -> Option<&'static str> {
    // Every bug this sweep found is fixed; a new one must fail the sweep.
    None
}

fn classify(t: &Target, obs: &mut Obs) -> Outcome {
    // Damage in the data itself must be reported somewhere.
    let data = t.class.ends_with(".seg");
    if data && obs.errors.is_empty() && obs.damage.is_empty() && obs.violations.is_empty() {
        obs.violations
            .push("damage in a segment was never reported (no error, verify clean)".into());
    }
    if t.class == "reel.meta" && !(obs.refused_ro && obs.refused_rw) {
        obs.violations
            .push("a reel.meta failing its checksum was accepted".into());
    }
    if !obs.violations.is_empty() {
        let all_known = obs.violations.iter().all(|v| known_bug(t, v).is_some());
        return if all_known {
            Outcome::KnownBug
        } else {
            Outcome::Violation
        };
    }
    if obs.refused_ro && obs.refused_rw {
        Outcome::Refused
    } else if obs.cut {
        Outcome::Cut
    } else if !obs.errors.is_empty() || !obs.damage.is_empty() {
        Outcome::Reported
    } else {
        Outcome::Correct
    }
}

#[derive(Default)]
struct Row {
    counts: BTreeMap<Outcome, usize>,
}

/// Flips every target of a fixture of `kind` under `mode`; prints the summary; fails
/// listing every broken promise.
pub(crate) fn sweep(kind: Kind, mode: Mode, parts: &[Part]) {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let built = tmp.path().join("built");
    let fx = Arc::new(build(kind, &built));
    let targets = if kind == Kind::Tee {
        tee_targets(&fx)
    } else {
        targets(&fx, &built, parts, kind == Kind::Spool)
    };
    // The trial directory: the store itself (warm head) or a copy of it (cold head).
    let fresh_dir = |n: usize| -> (PathBuf, Snapshot) {
        let dir = tmp.path().join(format!("trial-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        restore(&dir, &fx.snap);
        if mode == Mode::Warm {
            // Stamp the head for this very file, then take that as the state to restore.
            for d in store_dirs(kind, &dir) {
                drop(Log::open(&d).unwrap());
            }
            let snap = snapshot(&dir);
            (dir, snap)
        } else {
            (dir, fx.snap.clone())
        }
    };
    let (mut dir, mut base) = fresh_dir(0);
    if mode == Mode::Warm {
        for d in store_dirs(kind, &dir) {
            let log = Log::open(&d).unwrap();
            assert!(log.recovery_report().is_none(), "the warm head is trusted");
        }
    }
    let mut rows: BTreeMap<(&'static str, String), Row> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut known: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unnamed: BTreeMap<String, usize> = BTreeMap::new();
    let mut hangs = 0;
    let only = std::env::var("FLIP_ONLY").ok();
    for (n, t) in targets.iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !t.describe().contains(o.as_str()))
        {
            continue;
        }
        let t0 = Instant::now();
        restore(&dir, &base);
        flip(&dir.join(&t.file), t.offset, t.mask);
        let outcome = match guarded(&fx, &dir, t, mode) {
            Some(mut obs) => {
                let o = classify(t, &mut obs);
                if std::env::var("FLIP_VERBOSE").is_ok() {
                    eprintln!(
                        "{} => {o:?} in {:.1?}\n{obs:#?}",
                        t.describe(),
                        t0.elapsed()
                    );
                }
                let line = |v: &String| format!("{kind:?} {mode:?} | {} | {v}", t.describe());
                match o {
                    Outcome::Violation => failures.extend(obs.violations.iter().map(line)),
                    Outcome::KnownBug => {
                        let bugs: BTreeSet<&str> = obs
                            .violations
                            .iter()
                            .filter_map(|v| known_bug(t, v))
                            .collect();
                        for b in bugs {
                            *known.entry(b).or_insert(0usize) += 1;
                        }
                    }
                    _ => {}
                }
                for u in &obs.unnamed {
                    // Strip paths and numbers so that equal messages count together.
                    let key: String = u
                        .replace(&dir.display().to_string(), "DIR")
                        .chars()
                        .map(|c| if c.is_ascii_digit() { '#' } else { c })
                        .collect();
                    *unnamed.entry(format!("{} | {key}", t.class)).or_default() += 1;
                }
                o
            }
            None => {
                failures.push(format!(
                    "{kind:?} {mode:?} | {} | HANG: no answer within {WATCHDOG:?}",
                    t.describe()
                ));
                hangs += 1;
                assert!(hangs < 3, "too many hangs: {failures:#?}");
                // The hung trial still holds the directory: go on in a new one.
                (dir, base) = fresh_dir(n + 1);
                Outcome::Violation
            }
        };
        *rows
            .entry((t.class, t.region.clone()))
            .or_default()
            .counts
            .entry(outcome)
            .or_default() += 1;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nflip-one-byte sweep: {kind:?} store, {parts:?}, {mode:?} head: {} flips in {:.1?}",
        targets.len(),
        started.elapsed()
    );
    let _ = write!(out, "{:<13} {:<26} {:>5}", "file", "region", "tried");
    for (_, name) in OUTCOMES {
        let _ = write!(out, " {name:>9}");
    }
    let _ = writeln!(out);
    let mut totals = Row::default();
    for ((class, region), row) in &rows {
        let tried: usize = row.counts.values().sum();
        let _ = write!(out, "{class:<13} {region:<26} {tried:>5}");
        for (o, _) in OUTCOMES {
            let c = row.counts.get(&o).copied().unwrap_or(0);
            *totals.counts.entry(o).or_default() += c;
            let _ = write!(
                out,
                " {:>9}",
                if c == 0 { "-".into() } else { c.to_string() }
            );
        }
        let _ = writeln!(out);
    }
    let _ = write!(out, "{:<13} {:<26} {:>5}", "total", "", targets.len());
    for (o, _) in OUTCOMES {
        let _ = write!(out, " {:>9}", totals.counts.get(&o).copied().unwrap_or(0));
    }
    let _ = writeln!(out);
    if !unnamed.is_empty() {
        let _ = writeln!(out, "errors that do not name the flipped file:");
        for (m, c) in &unnamed {
            let _ = writeln!(out, "  {c:>4} x {m}");
        }
    }
    for (bug, n) in &known {
        let _ = writeln!(out, "known bug, {n} flips: {bug} (ignored test)");
    }
    eprintln!("{out}");
    assert!(
        failures.is_empty(),
        "{} broken promises:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
