//! Flip one byte, then use the `reel` binary as an operator would: `stream` (both ways),
//! `read` with a named reader, `status`, `verify`, `write`, `kv get`, `list info` and
//! `list read`. Under a warm head (the store's own files, restored in place) and a cold
//! one (a copy of the directory). No command may panic or hang, and what a command prints
//! must be what the intact store prints (a prefix of it, when the command fails and says
//! why). Damage in a segment must show up on stderr or in `verify`'s exit code.
//!
//! The library-level sweep (`crates/reel/tests/flip_byte/`) flips every region of every
//! file kind; this one takes a sample of each through the binary's own paths (output,
//! exit codes, warnings). Flips that hit an engine bug already kept as an ignored test
//! there are counted as known here too.

mod common;

use reel::kv::{KvStore, Path as KvPath};
use reel::list::{ListStore, NewItem};
use reel::{NewRecord, Spool, StoreKind, WhenFull};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WATCHDOG: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Files: snapshots restored in place (same inodes: a warm head stays trusted).
// ---------------------------------------------------------------------------------------

type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

fn snapshot(dir: &Path) -> Snapshot {
    fn walk(root: &Path, rel: &Path, out: &mut Snapshot) {
        for e in std::fs::read_dir(root.join(rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                walk(root, &r, out);
            } else {
                out.insert(r.clone(), std::fs::read(root.join(&r)).unwrap());
            }
        }
    }
    let mut out = Snapshot::new();
    walk(dir, Path::new(""), &mut out);
    out
}

/// Makes `dir` hold exactly the files of `snap` (directories are kept), writing into
/// existing files so that they keep their inodes.
fn restore(dir: &Path, snap: &Snapshot) {
    std::fs::create_dir_all(dir).unwrap();
    for f in snapshot(dir).keys() {
        if !snap.contains_key(f) {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
    }
    for (f, bytes) in snap {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .unwrap();
        file.set_len(bytes.len() as u64).unwrap();
        file.write_all_at(bytes, 0).unwrap();
    }
}

fn flip(path: &Path, at: u64, mask: u8) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ mask], at).unwrap();
}

// ---------------------------------------------------------------------------------------
// Running the binary under a watchdog.
// ---------------------------------------------------------------------------------------

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `reel ARGS`; `None` when it does not finish within the watchdog's time.
fn run(scratch: &Path, args: &[&str]) -> Option<Out> {
    let (o, e) = (scratch.join("stdout"), scratch.join("stderr"));
    let mut child = Command::new(common::bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Some(Out {
        code: status.code(),
        stdout: String::from_utf8_lossy(&std::fs::read(&o).unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&std::fs::read(&e).unwrap()).into_owned(),
    })
}

// ---------------------------------------------------------------------------------------
// Fixtures, built with the library; the intact store's own output is the model.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Spool,
    Kv,
    Lists,
}

fn builder(dir: &Path) -> reel::SpoolBuilder {
    Spool::builder(dir)
        .capacity(1 << 20)
        .segment_size(16 << 10)
        .max_record_size(4 << 10)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// (offset, len, seq) of every record frame of a segment.
fn frames(seg: &Path) -> Vec<(u64, u64, u64)> {
    let b = std::fs::read(seg).unwrap();
    let mut out = Vec::new();
    let mut off = 32usize;
    while off + 28 <= b.len() {
        let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
        if b[off + 8] == 1 {
            let seq = u64::from_le_bytes(b[off + 12..off + 20].try_into().unwrap());
            out.push((off as u64, len as u64, seq));
        }
        off += len;
    }
    out
}

/// Keeps writing until the store has three sealed segments.
fn build(kind: Kind, dir: &Path) -> Vec<String> {
    // Three sealed segments and a tail of twenty records.
    let full = |dir: &Path| {
        let segs = segments(dir);
        segs.len() >= 4 && frames(&segs[3]).len() >= 20
    };
    match kind {
        Kind::Spool => {
            let sp = builder(dir).open().unwrap();
            let mut i = 0i64;
            while !full(dir) {
                let mut r = NewRecord::new(serde_json::json!({"i": i, "pad": "p".repeat(90)}))
                    .ts(1_700_000_000_000_000 + 1000 * i);
                if i % 3 == 0 {
                    r = r.key(format!("k{i}"));
                }
                if i % 5 == 0 {
                    r = r.nonce(i as u128 + 7);
                }
                sp.append(r).unwrap();
                i += 1;
            }
            let mut r1 = sp.reader("r1").unwrap();
            for _ in 0..100 {
                r1.next().unwrap().unwrap();
            }
            r1.commit().unwrap();
            Vec::new()
        }
        Kind::Kv => {
            let sp = builder(dir)
                .kind(StoreKind::Kv(reel::kv::PATH_SYNTAX))
                .when_full(WhenFull::Compact)
                .open()
                .unwrap();
            let kv = KvStore::on_spool(&sp).unwrap();
            let mut cp = None;
            let mut i = 0u64;
            while !full(dir) {
                let p: KvPath = format!("a{}.b{}", i % 3, i % 11).parse().unwrap();
                kv.set(&p, serde_json::json!({"i": i, "pad": "q".repeat(60)}))
                    .unwrap();
                if cp.is_none() && segments(dir).len() == 3 {
                    kv.view().checkpoint().unwrap();
                    cp = Some(std::fs::read(dir.join("views/kv/checkpoint")).unwrap());
                }
                i += 1;
            }
            drop((kv, sp));
            // The checkpoint as taken midway: later writes are replayed on open.
            std::fs::write(dir.join("views/kv/checkpoint"), cp.unwrap()).unwrap();
            vec![":".into()]
        }
        Kind::Lists => {
            let sp = builder(dir).kind(StoreKind::Lists).open().unwrap();
            let lists = ListStore::on_spool(&sp).unwrap();
            let mut cp = None;
            let mut i = 0u64;
            while !full(dir) {
                let item = NewItem {
                    value: serde_json::json!({"i": i, "pad": "r".repeat(60)}),
                    nonce: Some(u128::from(i) + 1),
                    ts: Some(1_700_000_000_000_000 + 1000 * i as i64),
                };
                lists.append(&format!("l{}", i % 2), &[item]).unwrap();
                if cp.is_none() && segments(dir).len() == 3 {
                    lists.view().checkpoint().unwrap();
                    cp = Some(std::fs::read(dir.join("views/lists/checkpoint")).unwrap());
                }
                i += 1;
            }
            drop((lists, sp));
            std::fs::write(dir.join("views/lists/checkpoint"), cp.unwrap()).unwrap();
            vec!["l0".into(), "l1".into()]
        }
    }
}

/// One byte to flip, with the seqs it may damage.
#[derive(Debug, Clone)]
struct Target {
    file: PathBuf,
    what: String,
    offset: u64,
    mask: u8,
    damaged: std::ops::Range<u64>,
}

fn targets(kind: Kind, dir: &Path) -> Vec<Target> {
    let mut out = Vec::new();
    let rel = |p: &Path| p.strip_prefix(dir).unwrap().to_path_buf();
    let mut add = |file: PathBuf, what: &str, offset: u64, mask: u8, damaged| {
        out.push(Target {
            file,
            what: what.into(),
            offset,
            mask,
            damaged,
        })
    };
    let segs = segments(dir);
    let (sealed, tail) = (&segs[1], &segs[3]);
    let fr = frames(sealed);
    let tail_fr = frames(tail);
    let first = |f: &[(u64, u64, u64)]| f[0].2;
    let sealed_range = first(&fr)..first(&frames(&segs[2]));
    // Segment headers, a record (every field), the seal of a sealed segment.
    for (at, m) in [(0u64, 0x80u8), (16, 0x01), (28, 0x10)] {
        add(rel(sealed), "sealed header", at, m, sealed_range.clone());
    }
    add(rel(tail), "tail header", 0, 0x01, first(&tail_fr)..u64::MAX);
    let (o, len, seq) = fr[5];
    for (at, m, what) in [
        (0u64, 0x01u8, "record crc"),
        (4, 0x01, "record len"),
        (5, 0x80, "record len"),
        (8, 0x03, "record kind"),
        (9, 0x04, "record flags"),
        (12, 0x01, "record seq"),
        (20, 0x80, "record ts"),
        (len - 3, 0x20, "record value"),
    ] {
        add(rel(sealed), what, o + at, m, seq..seq + 1);
    }
    let (o, len, _) = *fr.last().unwrap();
    let seal = o + len;
    for (at, m, what) in [
        (4u64, 0x01u8, "seal len"),
        (12, 0x01, "seal next_seq"),
        (28, 0x01, "seal records"),
    ] {
        add(rel(sealed), what, seal + at, m, seal..seal);
    }
    // The tail: its first record (length and value), its last record.
    let (o, len, seq) = tail_fr[0];
    add(
        rel(tail),
        "tail first record len",
        o + 5,
        0x80,
        seq..seq + 1,
    );
    add(
        rel(tail),
        "tail first record value",
        o + len - 2,
        0x02,
        seq..seq + 1,
    );
    let (o, len, seq) = *tail_fr.last().unwrap();
    add(
        rel(tail),
        "tail last record value",
        o + len - 2,
        0x02,
        seq..seq + 1,
    );
    // Caches and small files.
    let idx = sealed.with_extension("idx");
    add(rel(&idx), "index header", 3, 0x01, 0..0);
    add(rel(&idx), "index entry 1 offset", 32 + 32 + 8, 0x01, 0..0);
    for (at, what) in [
        (0u64, "meta magic"),
        (13, "meta kind"),
        (16, "meta capacity"),
        (92, "meta crc"),
    ] {
        add(PathBuf::from("reel.meta"), what, at, 0x01, 0..0);
    }
    for (at, what) in [
        (0u64, "head magic"),
        (24, "head next_seq"),
        (40, "head tail_offset"),
        (128, "head check"),
    ] {
        add(PathBuf::from("reel.head"), what, at, 0x04, 0..0);
    }
    match kind {
        Kind::Spool => {
            for (at, what) in [
                (24u64, "cursor slot0 a"),
                (88, "cursor slot1 a"),
                (60, "cursor slot0 crc"),
            ] {
                add(PathBuf::from("readers/r1.cursor"), what, at, 0x01, 0..0);
            }
        }
        Kind::Kv | Kind::Lists => {
            let cp = PathBuf::from(if kind == Kind::Kv {
                "views/kv/checkpoint"
            } else {
                "views/lists/checkpoint"
            });
            let len = std::fs::metadata(dir.join(&cp)).unwrap().len();
            for (at, what) in [
                (0u64, "checkpoint magic"),
                (16, "checkpoint applied_to"),
                (44, "checkpoint state_len"),
                (60, "checkpoint state"),
                (len - 1, "checkpoint crc"),
            ] {
                add(cp.clone(), what, at, 0x01, 0..0);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// One trial: the commands, compared with the intact store's output.
// ---------------------------------------------------------------------------------------

/// What the intact store prints.
struct Model {
    /// `stream --meta` lines by seq.
    records: Vec<Value>,
    /// Per argument list: stdout of the intact store (kv and lists commands).
    outputs: Vec<(Vec<String>, String)>,
    /// Where reader r1 may resume: the positions in its cursor's valid slots (a damaged
    /// newer slot falls back to the older one: at-least-once).
    r1_positions: Vec<u64>,
}

fn lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn model(kind: Kind, dir: &Path, scratch: &Path, names: &[String]) -> Model {
    let d = dir.to_str().unwrap();
    let out = run(scratch, &["stream", "--meta", d]).unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let records = lines(&out.stdout);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
    }
    let outputs = commands(kind, names)
        .into_iter()
        .map(|args| {
            let a: Vec<&str> = args
                .iter()
                .map(|x| if x == "DIR" { d } else { x })
                .collect();
            let out = run(scratch, &a).unwrap();
            assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
            (args, out.stdout)
        })
        .collect();
    let r1_positions = std::fs::read(dir.join("readers/r1.cursor"))
        .map(|b| {
            b.chunks(64)
                .filter(|s| &s[..8] == b"REELPOS\0")
                .map(|s| u64::from_le_bytes(s[24..32].try_into().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    Model {
        records,
        outputs,
        r1_positions,
    }
}

/// The kind's own read commands (`DIR` stands for the store).
fn commands(kind: Kind, names: &[String]) -> Vec<Vec<String>> {
    let d = "DIR";
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut out = Vec::new();
    for n in names {
        match kind {
            Kind::Spool => {}
            Kind::Kv => out.push(v(&["kv", "get", "-r", d, n])),
            Kind::Lists => {
                out.push(v(&["list", "info", "--json", d, n]));
                out.push(v(&["list", "read", "--limit", "100000", d, n]));
            }
        }
    }
    out
}

#[derive(Default)]
struct Trial {
    violations: Vec<String>,
    errors: usize,
    damage_seen: bool,
    cut: bool,
}

impl Trial {
    fn bad(&mut self, s: String) {
        self.violations.push(s);
    }

    /// Runs a command; checks it neither panicked nor hung; notes a failure.
    fn run(&mut self, scratch: &Path, args: &[&str]) -> Option<Out> {
        let Some(out) = run(scratch, args) else {
            self.bad(format!(
                "HANG: reel {args:?} did not finish within {WATCHDOG:?}"
            ));
            return None;
        };
        if out.code == Some(101) || out.stderr.contains("panicked") {
            self.bad(format!("PANIC: reel {args:?}: {}", out.stderr.trim()));
        }
        if out.code != Some(0) {
            self.errors += 1;
            if out.stderr.trim().is_empty() {
                self.bad(format!("reel {args:?} failed without a word on stderr"));
            }
        }
        if out.stderr.contains("recovery cut") {
            self.cut = true;
        }
        if out.stderr.contains("corrupt") || out.stderr.contains("damage") {
            self.damage_seen = true;
        }
        Some(out)
    }

    /// Checks `stream`/`read` output: each line as the intact store printed it, seqs
    /// consecutive from `from` (descending with `reverse`), all of them when it succeeded.
    fn check_records(
        &mut self,
        what: &str,
        m: &Model,
        t: &Target,
        out: &Out,
        from: u64,
        reverse: bool,
    ) {
        let got = match std::panic::catch_unwind(|| lines(&out.stdout)) {
            Ok(g) => g,
            Err(_) => return self.bad(format!("{what}: output is not NDJSON")),
        };
        let mut expect = from;
        for r in &got {
            let seq = r["seq"].as_u64().unwrap_or(u64::MAX);
            if m.records.get(seq as usize) != Some(r) {
                self.bad(format!(
                    "{what}: record {seq} printed as {r}, intact: {:?}",
                    m.records.get(seq as usize)
                ));
                return;
            }
            if seq != expect {
                self.bad(format!(
                    "{what}: record {seq} where {expect} was due: records skipped"
                ));
                return;
            }
            expect = if reverse {
                seq.wrapping_sub(1)
            } else {
                seq + 1
            };
        }
        let end = m.records.len() as u64;
        let complete = if reverse {
            expect == u64::MAX
        } else {
            expect == end
        };
        if out.code == Some(0) && !complete {
            // Only a reported cut of the damaged last record may shorten it.
            let missing = if reverse { 0..expect + 1 } else { expect..end };
            let intact = missing.clone().filter(|s| !t.damaged.contains(s)).count();
            if !(self.cut && intact == 0) {
                self.bad(format!(
                    "{what}: succeeded but printed nothing of {missing:?}{}",
                    if self.cut {
                        " (recovery cut intact records)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
}

fn known_bug(_t: &Target, _v: &str) -> Option<&'static str> {
    // Every bug this sweep found is fixed; a new one must fail the sweep.
    None
}

fn trial(kind: Kind, m: &Model, dir: &Path, scratch: &Path, t: &Target) -> Trial {
    let mut tr = Trial::default();
    let d = dir.to_str().unwrap();
    let segment = t.file.extension().is_some_and(|x| x == "seg");
    // verify first: it reads without writing; every later command may repair.
    if let Some(out) = tr.run(scratch, &["verify", d])
        && segment
        && out.code == Some(0)
        && !out.stderr.contains("recovery")
    {
        tr.bad("verify: damage in a segment, exit 0 and no warning".into());
    }
    if let Some(out) = tr.run(scratch, &["stream", "--meta", d]) {
        tr.check_records("stream", m, t, &out, 0, false);
    }
    // Where the log ends now (a cold open may have cut a torn-looking tail).
    let end = tr
        .run(scratch, &["status", "--json", d])
        .and_then(|o| serde_json::from_str::<Value>(&o.stdout).ok())
        .and_then(|s| s["next_seq"].as_u64());
    if let Some(out) = tr.run(scratch, &["stream", "--reverse", "--meta", d]) {
        let newest = end.unwrap_or(m.records.len() as u64).saturating_sub(1);
        tr.check_records("stream --reverse", m, t, &out, newest, true);
    }
    if kind == Kind::Spool
        && let Some(out) = tr.run(scratch, &["read", "--no-wait", "--meta", "-r", "r1", d])
    {
        // It starts where its cursor says: the newest valid slot, or the one before.
        let first = out
            .stdout
            .lines()
            .next()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v["seq"].as_u64());
        let newest = *m.r1_positions.iter().max().unwrap();
        let from = first
            .filter(|f| m.r1_positions.contains(f))
            .unwrap_or(newest);
        tr.check_records("read -r r1", m, t, &out, from, false);
    }
    for (args, want) in &m.outputs {
        let a: Vec<&str> = args
            .iter()
            .map(|x| if x == "DIR" { d } else { x })
            .collect();
        if let Some(out) = tr.run(scratch, &a)
            && out.code == Some(0)
            && &out.stdout != want
            && !tr.cut
        {
            tr.bad(format!(
                "{} {}: output differs from the intact store's",
                args[0], args[1]
            ));
        }
    }
    // A write through the store's own command, then it must read back.
    let (write, shows): (Vec<&str>, &str) = match kind {
        Kind::Spool => (vec!["write", d, r#"{"new":1}"#], r#""value":{"new":1}"#),
        Kind::Kv => (vec!["kv", "set", d, "new.path", "1"], r#""key":"new.path""#),
        Kind::Lists => (
            vec!["list", "append", d, "l0", r#"{"new":1}"#],
            r#""value":{"new":1}"#,
        ),
    };
    if let Some(out) = tr.run(scratch, &write)
        && out.code == Some(0)
        && let Some(s) = tr.run(
            scratch,
            &["stream", "--reverse", "--limit", "1", "--meta", d],
        )
        && s.code == Some(0)
        && !s.stdout.contains(shows)
    {
        tr.bad(format!(
            "the new record is not the newest: {}",
            s.stdout.trim()
        ));
    }
    if segment && tr.errors == 0 && !tr.damage_seen && !tr.cut {
        tr.bad("damage in a segment was never reported".into());
    }
    if t.file == Path::new("reel.meta") && tr.errors == 0 {
        tr.bad("a reel.meta failing its checksum was accepted".into());
    }
    tr
}

fn sweep(kind: Kind) {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let built = tmp.path().join("built");
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let names = build(kind, &built);
    let snap = snapshot(&built);
    let targets = targets(kind, &built);
    // (Reading commands may write a view checkpoint: the model comes after the targets.)
    let m = model(kind, &built, &scratch, &names);
    let mut failures = Vec::new();
    let mut known: BTreeMap<&str, usize> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for warm in [true, false] {
        // Warm: the built store itself, its head stamped for its own file; cold: a copy.
        let dir = if warm {
            built.clone()
        } else {
            tmp.path().join("copy")
        };
        restore(&dir, &snap);
        let base = snapshot(&dir);
        for t in &targets {
            restore(&dir, &base);
            assert!(
                std::fs::metadata(dir.join(&t.file)).unwrap().len() > t.offset,
                "{t:?}"
            );
            flip(&dir.join(&t.file), t.offset, t.mask);
            let tr = trial(kind, &m, &dir, &scratch, t);
            let mode = if warm { "warm" } else { "cold" };
            let class = if tr.violations.is_empty() {
                if tr.cut {
                    "cut"
                } else if tr.errors > 0 || tr.damage_seen {
                    "reported"
                } else {
                    "correct"
                }
            } else if tr.violations.iter().all(|v| known_bug(t, v).is_some()) {
                let bugs: BTreeSet<&str> = tr
                    .violations
                    .iter()
                    .filter_map(|v| known_bug(t, v))
                    .collect();
                for b in bugs {
                    *known.entry(b).or_default() += 1;
                }
                "known bug"
            } else {
                for v in &tr.violations {
                    failures.push(format!(
                        "{kind:?} {mode} | {} byte {} ^ {:#04x} ({}) | {v}",
                        t.file.display(),
                        t.offset,
                        t.mask,
                        t.what
                    ));
                }
                "VIOLATION"
            };
            *counts.entry(class).or_default() += 1;
        }
    }
    eprintln!(
        "flip-one-byte through the CLI: {kind:?} store, {} flips x warm/cold in {:.1?}: {counts:?}",
        targets.len(),
        started.elapsed()
    );
    for (b, n) in &known {
        eprintln!("  known bug, {n} flips: {b}");
    }
    assert!(
        failures.is_empty(),
        "{} broken promises:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn flip_one_byte_through_the_cli_spool() {
    sweep(Kind::Spool);
}

#[test]
fn flip_one_byte_through_the_cli_kv() {
    sweep(Kind::Kv);
}

#[test]
fn flip_one_byte_through_the_cli_lists() {
    sweep(Kind::Lists);
}
