//! Fixtures: small real stores of each kind, written once per sweep, and what they hold
//! (the model the trials compare answers with).

use super::*;

/// Timestamp of record `seq` in the spool fixture: increasing, so `seek_time` has one
/// right answer.
pub(crate) const TS0: i64 = 1_700_000_000_000_000;
const SEGMENT: u64 = 16 << 10;
const CAPACITY: u64 = 1 << 20;
/// Small, so that the buffers the engine sizes by the largest frame stay small too (a
/// debug build fills them byte by byte).
const MAX_RECORD: u64 = 4 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Spool,
    Kv,
    Lists,
    /// A source spool (`src/`) teed into a destination spool (`dst/`) that also has
    /// records of its own; the flips go to the tee's marker and its source reader.
    Tee,
}

/// The store directories of a fixture.
pub(crate) fn store_dirs(kind: Kind, dir: &Path) -> Vec<PathBuf> {
    match kind {
        Kind::Tee => vec![dir.join("src"), dir.join("dst")],
        _ => vec![dir.to_path_buf()],
    }
}

#[derive(Debug)]
pub(crate) struct Fixture {
    pub(crate) kind: Kind,
    pub(crate) snap: Snapshot,
    /// Every record, by seq (dense from 0).
    pub(crate) recs: Vec<Rec>,
    /// Positions a reader may resume at: the valid slots of its cursor file.
    pub(crate) readers: Vec<(String, Vec<u64>)>,
    /// kv paths ever written.
    pub(crate) paths: Vec<String>,
    /// List keys ever appended to.
    pub(crate) list_keys: Vec<String>,
}

impl Fixture {
    pub(crate) fn next(&self) -> u64 {
        self.recs.len() as u64
    }

    /// First seq of the segment after the one holding `seq`.
    pub(crate) fn segment_after(&self, seq: u64) -> Option<u64> {
        self.segs().into_iter().find(|&s| s > seq)
    }

    fn segs(&self) -> Vec<u64> {
        self.snap
            .files
            .keys()
            .filter_map(|p| {
                p.strip_prefix("segments")
                    .ok()?
                    .to_str()?
                    .strip_suffix(".seg")?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// The seqs of the segment a `.seg` or `.idx` file belongs to.
    pub(crate) fn segment_range(&self, file: &Path) -> Option<Range<u64>> {
        let first: u64 = file
            .strip_prefix("segments")
            .ok()?
            .file_stem()?
            .to_str()?
            .parse()
            .ok()?;
        let end = self.segment_after(first).unwrap_or(u64::MAX);
        Some(first..end)
    }
}

pub(crate) fn seg_name(first: u64) -> String {
    format!("{first:020}")
}

pub(crate) fn segments_of(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    v.sort();
    v
}

fn tail_len(dir: &Path) -> u64 {
    let segs = segments_of(dir);
    let tail = segs.last().unwrap();
    std::fs::metadata(dir.join(format!("segments/{}.seg", seg_name(*tail))))
        .unwrap()
        .len()
}

/// Big enough: three sealed segments and a tail with two index entries.
fn full_enough(dir: &Path) -> bool {
    segments_of(dir).len() >= 4 && tail_len(dir) >= 6000
}

pub(crate) fn spool_builder(dir: &Path) -> reel::SpoolBuilder {
    Spool::builder(dir)
        .capacity(CAPACITY)
        .segment_size(SEGMENT)
        .max_record_size(MAX_RECORD)
}

pub(crate) fn spool_value(i: u64) -> NewRecord {
    let pad = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(3);
    let rec = match i % 4 {
        0 => NewRecord::new(serde_json::json!({"i": i, "pad": &pad[..40 + (i % 7) as usize]})),
        1 => NewRecord::new(serde_json::json!({"i": i, "pad": &pad[..60]})).key(format!("k-{i}")),
        2 => NewRecord::new(serde_json::json!([i, &pad[..50]])).nonce(u128::from(i) << 70 | 0xabc),
        _ => NewRecord::new(Value::bytes(&pad.as_bytes()[..70]))
            .key(format!("raw-{i}"))
            .nonce(u128::from(i) + 1),
    };
    rec.ts(TS0 + 1000 * i as i64)
}

/// Records of four shapes (JSON or raw bytes; with a key, a nonce, both, neither), then
/// reader r1 committed twice (both cursor slots hold a position) and r2 only created.
fn build_spool(dir: &Path) -> Vec<Rec> {
    let spool = spool_builder(dir).open().unwrap();
    let mut written = Vec::new();
    let mut i = 0;
    while !full_enough(dir) {
        let r = spool_value(i);
        assert_eq!(spool.append(r.clone()).unwrap(), i);
        written.push(Rec {
            seq: i,
            ts: r.ts.unwrap(),
            key: r.key.clone(),
            nonce: r.nonce,
            tag: r.value.encoding().tag(),
            value: r.value.as_bytes().to_vec(),
        });
        i += 1;
    }
    let mut r1 = spool.reader("r1").unwrap();
    for _ in 0..100 {
        r1.next().unwrap().unwrap();
    }
    r1.commit().unwrap();
    for _ in 0..50 {
        r1.next().unwrap().unwrap();
    }
    r1.commit().unwrap();
    drop(r1);
    drop(spool.reader("r2").unwrap());
    written
}

fn kv_path(i: u64) -> String {
    format!("grp{}.item{}", i % 5, i % 37)
}

/// Writes kv sets and deletes; returns the checkpoint bytes taken midway (restored after
/// the last handle is gone, so that later writes are not in it).
fn build_kv(dir: &Path) -> (Vec<u8>, Vec<String>) {
    let spool = spool_builder(dir)
        .kind(StoreKind::Kv(reel::kv::PATH_SYNTAX))
        .when_full(WhenFull::Compact)
        .open()
        .unwrap();
    let kv = KvStore::on_spool(&spool).unwrap();
    let mut checkpoint = None;
    let mut paths = BTreeSet::new();
    let mut i = 0u64;
    while !full_enough(dir) {
        let p: KvPath = kv_path(i).parse().unwrap();
        paths.insert(p.to_string());
        if i % 9 == 4 && kv.get(&p).unwrap().is_some() {
            kv.delete(&p).unwrap();
        } else {
            let pad = "0123456789abcdef".repeat(2 + (i % 5) as usize);
            kv.set(&p, serde_json::json!({"i": i, "pad": pad})).unwrap();
        }
        if checkpoint.is_none() && segments_of(dir).len() == 3 {
            kv.view().checkpoint().unwrap();
            checkpoint = Some(std::fs::read(dir.join("views/kv/checkpoint")).unwrap());
        }
        i += 1;
    }
    drop(kv);
    drop(spool);
    (checkpoint.unwrap(), paths.into_iter().collect())
}

fn build_lists(dir: &Path) -> (Vec<u8>, Vec<String>) {
    let spool = spool_builder(dir).kind(StoreKind::Lists).open().unwrap();
    let lists = ListStore::on_spool(&spool).unwrap();
    let keys: Vec<String> = (0..6).map(|k| format!("list-{k}")).collect();
    let mut checkpoint = None;
    let mut i = 0u64;
    let mut nonce = [0u128; 6];
    while !full_enough(dir) {
        let k = (i % 6) as usize;
        let n = 1 + (i % 3) as usize;
        let items: Vec<NewItem> = (0..n)
            .map(|j| {
                nonce[k] += 1;
                NewItem {
                    value: serde_json::json!({"i": i, "j": j, "pad": "list item padding ".repeat(1 + (i % 4) as usize)}),
                    // Lists 4 and 5 take no nonces.
                    nonce: (k < 4).then_some(nonce[k] * 1000),
                    ts: Some(TS0 + 1000 * i as i64 + j as i64),
                }
            })
            .collect();
        let r = lists.append(&keys[k], &items).unwrap();
        assert_eq!(r.appended, n as u64);
        if k == 1 {
            // A retried item is a duplicate: nothing stored.
            assert_eq!(lists.append(&keys[k], &items[n - 1..]).unwrap().appended, 0);
        }
        if checkpoint.is_none() && segments_of(dir).len() == 3 {
            lists.view().checkpoint().unwrap();
            checkpoint = Some(std::fs::read(dir.join("views/lists/checkpoint")).unwrap());
        }
        i += 1;
    }
    drop(lists);
    drop(spool);
    (checkpoint.unwrap(), keys)
}

/// Reads every record of an intact store.
pub(crate) fn read_intact(dir: &Path) -> Vec<Rec> {
    let log = Log::open(dir).unwrap();
    let mut r = log.reader(0);
    let mut out = Vec::new();
    loop {
        let b = r.read_batch(1000).unwrap();
        if b.is_empty() {
            break;
        }
        out.extend(b.iter().map(|x| Rec::of(&x)));
    }
    assert!(log.verify().unwrap().is_ok());
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
    }
    assert_eq!(out.len() as u64, log.next_seq());
    out
}

/// Valid slots of a cursor file: (generation, position).
pub(crate) fn cursor_slots(bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for s in bytes.chunks(64) {
        if s.len() == 64
            && &s[..8] == b"REELPOS\0"
            && crc32c::crc32c(&s[..60]).to_le_bytes() == s[60..64]
        {
            let u = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
            out.push((u(16), u(24)));
        }
    }
    out
}

pub(crate) fn build(kind: Kind, dir: &Path) -> Fixture {
    std::fs::create_dir_all(dir).unwrap();
    if kind == Kind::Tee {
        return build_tee(dir);
    }
    let (checkpoint, names) = match kind {
        Kind::Spool | Kind::Tee => {
            let written = build_spool(dir);
            let intact = read_intact(dir);
            assert_eq!(intact, written, "the spool reads back as written");
            (None, Vec::new())
        }
        Kind::Kv => {
            let (cp, paths) = build_kv(dir);
            (Some(("views/kv/checkpoint", cp)), paths)
        }
        Kind::Lists => {
            let (cp, keys) = build_lists(dir);
            (Some(("views/lists/checkpoint", cp)), keys)
        }
    };
    if let Some((p, bytes)) = &checkpoint {
        std::fs::write(dir.join(p), bytes).unwrap();
    }
    let recs = read_intact(dir);
    let snap = snapshot(dir);
    let readers = snap
        .files
        .iter()
        .filter_map(|(p, b)| {
            let name = p
                .strip_prefix("readers")
                .ok()?
                .to_str()?
                .strip_suffix(".cursor")?;
            let slots = cursor_slots(b);
            let best = slots.iter().max()?.1;
            // The newest position, or the one before (at-least-once after damage).
            let mut ok: Vec<u64> = slots.iter().map(|s| s.1).collect();
            ok.sort();
            assert!(ok.contains(&best));
            Some((name.to_string(), ok))
        })
        .collect();
    let fx = Fixture {
        kind,
        snap,
        recs,
        readers,
        paths: if kind == Kind::Kv {
            names.clone()
        } else {
            Vec::new()
        },
        list_keys: if kind == Kind::Lists {
            names
        } else {
            Vec::new()
        },
    };
    // The model is what the writes meant, not only what was read back.
    match kind {
        Kind::Spool | Kind::Tee => assert_eq!(fx.readers.len(), 2),
        Kind::Kv => {
            let kv = KvStore::builder(dir)
                .create(false)
                .read_only(true)
                .open()
                .unwrap();
            let got: KvExp = kv
                .entries(&KvPath::root())
                .unwrap()
                .into_iter()
                .map(|(p, e)| (p.to_string(), (e.encoding.tag(), e.bytes, e.rev, e.ts)))
                .collect();
            assert_eq!(got, kv_state(&fx.recs));
            assert!(
                got.len() > 10 && got.len() < fx.paths.len(),
                "sets and deletes"
            );
        }
        Kind::Lists => {
            let exp = lists_state(&fx.recs);
            assert_eq!(exp.len(), 6);
            let total: usize = exp.values().map(|l| l.items.len()).sum();
            assert_eq!(total, fx.recs.len());
        }
    }
    fx
}
