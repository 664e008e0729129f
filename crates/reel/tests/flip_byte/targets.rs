//! Which bytes the sweep flips: every region of every file kind (docs/FORMAT.md).

use super::*;

/// One byte to flip.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// File, relative to the store directory.
    pub(crate) file: PathBuf,
    /// File kind for the summary ("sealed .seg", "tail .idx", "reel.head", ...).
    pub(crate) class: &'static str,
    /// Region inside the file ("frame.len", "seal.next_seq", "slot1", ...).
    pub(crate) region: String,
    /// Which structure (e.g. "frame seq 112 (first)").
    pub(crate) at: String,
    pub(crate) offset: u64,
    pub(crate) mask: u8,
    /// Records this flip may make unreadable (and `skip_damage` step over): the flipped
    /// frame's, or a whole segment's when its header is flipped.
    pub(crate) damaged: Range<u64>,
}

impl Target {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} byte {} ^ {:#04x} ({} {}, {})",
            self.file.display(),
            self.offset,
            self.mask,
            self.class,
            self.region,
            self.at
        )
    }
}

pub(crate) const MASKS: [u8; 9] = [0x01, 0x80, 0xff, 0x10, 0x04, 0x40, 0x02, 0x20, 0x08];

pub(crate) fn mask_for(offset: u64, salt: usize) -> u8 {
    MASKS[(offset as usize + salt) % MASKS.len()]
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameInfo {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) key_len: u64,
    pub(crate) seq: u64,
}

pub(crate) fn frames(seg: &[u8]) -> Vec<FrameInfo> {
    let mut out = Vec::new();
    let mut off = 32usize;
    while off + 28 <= seg.len() {
        let len = u32::from_le_bytes(seg[off + 4..off + 8].try_into().unwrap()) as usize;
        if len < 28 || off + len > seg.len() {
            break;
        }
        out.push(FrameInfo {
            offset: off as u64,
            len: len as u64,
            kind: seg[off + 8],
            flags: seg[off + 9],
            key_len: u64::from(u16::from_le_bytes(
                seg[off + 10..off + 12].try_into().unwrap(),
            )),
            seq: u64::from_le_bytes(seg[off + 12..off + 20].try_into().unwrap()),
        });
        off += len;
    }
    out
}

pub(crate) struct Targets<'a> {
    pub(crate) out: Vec<Target>,
    pub(crate) file: &'a Path,
    pub(crate) class: &'static str,
    pub(crate) salt: usize,
    pub(crate) damaged: Range<u64>,
}

impl Targets<'_> {
    pub(crate) fn one(&mut self, region: &str, at: &str, offset: u64, mask: u8) {
        self.out.push(Target {
            file: self.file.to_path_buf(),
            class: self.class,
            region: region.to_string(),
            at: at.to_string(),
            offset,
            mask,
            damaged: self.damaged.clone(),
        });
    }
    /// Every byte of a field (masks rotating over the bytes).
    pub(crate) fn bytes(&mut self, region: &str, at: &str, range: Range<u64>) {
        for o in range {
            self.one(region, at, o, mask_for(o, self.salt));
        }
    }
    /// Every byte, each with its lowest and its highest bit: for fields whose value
    /// steers the decoder (lengths), where a small and a large change differ.
    pub(crate) fn bytes2(&mut self, region: &str, at: &str, range: Range<u64>) {
        for o in range {
            self.one(region, at, o, 0x01);
            self.one(region, at, o, 0x80);
        }
    }
    /// A field's first and last byte (every byte when `full`).
    pub(crate) fn field(&mut self, region: &str, at: &str, range: Range<u64>, full: bool) {
        if full {
            return self.bytes(region, at, range);
        }
        let picks: BTreeSet<u64> = [range.start, range.end - 1].into();
        for o in picks {
            self.one(region, at, o, mask_for(o, self.salt));
        }
    }
    /// A few bytes spread over a range: both ends and some inside.
    pub(crate) fn sample(&mut self, region: &str, at: &str, range: Range<u64>, n: u64) {
        let len = range.end - range.start;
        let picks: BTreeSet<u64> = (0..n)
            .map(|i| range.start + i * len.saturating_sub(1) / (n - 1).max(1))
            .collect();
        for o in picks {
            self.one(region, at, o, mask_for(o, self.salt));
        }
    }
}

/// Flips in one frame: `full` tries every byte of the fixed header, the nonce and the
/// key; otherwise each field's first and last byte. The length, which steers the
/// decoder, always gets every byte with a small and a large change; values a spread.
pub(crate) fn frame_targets(t: &mut Targets<'_>, f: &FrameInfo, label: &str, full: bool) {
    let at = format!(
        "{} seq {} ({label})",
        if f.kind == 2 { "seal" } else { "frame" },
        f.seq
    );
    let o = f.offset;
    t.damaged = if f.kind == 2 {
        f.seq..f.seq
    } else {
        f.seq..f.seq + 1
    };
    let fields: &[(&str, Range<u64>)] = if f.kind == 2 {
        &[
            ("seal.crc", 0..4),
            ("seal.len", 4..8),
            ("seal.kind", 8..9),
            ("seal.flags", 9..10),
            ("seal.key_len", 10..12),
            ("seal.next_seq", 12..20),
            ("seal.ts_max", 20..28),
            ("seal.records", 28..36),
        ]
    } else {
        &[
            ("frame.crc", 0..4),
            ("frame.len", 4..8),
            ("frame.kind", 8..9),
            ("frame.flags", 9..10),
            ("frame.key_len", 10..12),
            ("frame.seq", 12..20),
            ("frame.ts", 20..28),
        ]
    };
    for (name, r) in fields {
        let r = o + r.start..o + r.end;
        if name.ends_with(".len") {
            t.bytes2(name, &at, r);
        } else {
            t.field(name, &at, r, full);
        }
    }
    if f.kind == 2 {
        return;
    }
    let mut p = o + 28;
    if f.flags & 2 != 0 {
        t.field("frame.nonce", &at, p..p + 16, full);
        p += 16;
    }
    if f.flags & 1 != 0 && f.key_len > 0 {
        t.field("frame.key", &at, p..p + f.key_len, full);
        p += f.key_len;
    }
    t.sample("frame.value", &at, p..o + f.len, if full { 7 } else { 3 });
}

/// Which part of a store a sweep flips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Sealed segment files.
    Sealed,
    /// The tail segment file.
    Tail,
    /// Every `.idx` file.
    Indexes,
    /// `reel.meta`, `reel.head`, reader cursors, view checkpoints.
    Files,
}

/// The flips of a store: `thorough` for the spool (every engine structure byte by byte),
/// otherwise a sample per region plus everything that is the kind's own (the view
/// checkpoint and the records around the line it covers).
pub(crate) fn targets(fx: &Fixture, dir: &Path, parts: &[Part], thorough: bool) -> Vec<Target> {
    let mut all = Vec::new();
    let segs = segments_of(dir);
    // The records a view checkpoint covers end here: flip around that line too.
    let applied_to = fx
        .snap
        .files
        .iter()
        .find(|(p, _)| p.ends_with("checkpoint"))
        .map(|(_, b)| u64::from_le_bytes(b[16..24].try_into().unwrap()));
    for (i, &first) in segs.iter().enumerate() {
        let tail = i + 1 == segs.len();
        // The first sealed segment and the tail get every byte of their structures.
        let full = thorough && (i == 0 || tail);
        let seg_rel = PathBuf::from(format!("segments/{}.seg", seg_name(first)));
        let idx_rel = PathBuf::from(format!("segments/{}.idx", seg_name(first)));
        if parts.contains(if tail { &Part::Tail } else { &Part::Sealed }) {
            let bytes = &fx.snap.files[&seg_rel];
            let mut t = Targets {
                out: Vec::new(),
                file: &seg_rel,
                class: if tail { "tail .seg" } else { "sealed .seg" },
                salt: i,
                damaged: fx.segment_range(&seg_rel).unwrap(),
            };
            if full {
                t.bytes("header", "segment header", 0..32);
            } else {
                t.sample("header", "segment header", 0..32, 6);
            }
            let fr = frames(bytes);
            let recs: Vec<&FrameInfo> = fr.iter().filter(|f| f.kind == 1).collect();
            let n = recs.len();
            let mut chosen: BTreeMap<usize, (&str, bool)> = BTreeMap::new();
            if thorough {
                chosen.insert(0, ("first", full));
                chosen.insert(n / 2, ("middle", false));
            }
            if tail {
                chosen.insert(0, ("first", full));
                chosen.insert(n - 2, ("second to last", false));
            }
            chosen.insert(n - 1, ("last", full));
            if let Some(a) = applied_to {
                for (j, f) in recs.iter().enumerate() {
                    if f.seq + 1 == a {
                        chosen.insert(j, ("last in the checkpoint", false));
                    }
                    if f.seq == a {
                        chosen.insert(j, ("first after the checkpoint", false));
                    }
                }
            }
            for (j, (label, full)) in chosen {
                frame_targets(&mut t, recs[j], label, full);
            }
            if let Some(seal) = fr.iter().find(|f| f.kind == 2)
                && (thorough || i == 0)
            {
                frame_targets(&mut t, seal, "seal", full);
            }
            all.extend(t.out);
        }
        if !parts.contains(&Part::Indexes) {
            continue;
        }
        let idx = &fx.snap.files[&idx_rel];
        let mut t = Targets {
            out: Vec::new(),
            file: &idx_rel,
            class: if tail { "tail .idx" } else { "sealed .idx" },
            salt: i + 3,
            damaged: 0..0,
        };
        let entries = (idx.len() as u64 - 32) / 32;
        assert!(entries >= 2, "{idx_rel:?} has {entries} entries");
        let last = 32 + 32 * (entries - 1);
        let last_at = format!("index entry {}", entries - 1);
        if full {
            t.bytes("header", "index header", 0..32);
            t.bytes("entry", "index entry 0", 32..64);
            t.bytes("entry", &last_at, last..last + 32);
        } else {
            t.sample("header", "index header", 0..32, 4);
            t.sample("entry", "index entry 0", 32..64, 4);
            t.sample("entry", &last_at, last..last + 32, 4);
        }
        all.extend(t.out);
    }
    if !parts.contains(&Part::Files) {
        return all;
    }
    let meta = PathBuf::from("reel.meta");
    let mut t = Targets {
        out: Vec::new(),
        file: &meta,
        class: "reel.meta",
        salt: 1,
        damaged: 0..0,
    };
    for (name, r) in [
        ("magic", 0..8),
        ("version", 8..12),
        ("when_full/kind/syntax", 12..16),
        ("capacity/segment_size", 16..32),
        ("max_record_size", 32..40),
        ("log_id", 40..56),
        ("created/horizon", 56..72),
        ("reserved", 72..92),
        ("crc", 92..96),
    ] {
        t.field(name, "reel.meta", r, thorough);
    }
    all.extend(t.out);
    let head = PathBuf::from("reel.head");
    let mut t = Targets {
        out: Vec::new(),
        file: &head,
        class: "reel.head",
        salt: 2,
        damaged: 0..0,
    };
    for (name, r) in [
        ("magic/version", 0..12),
        ("writing/publish/waiters", 12..24),
        ("next_seq", 24..32),
        ("tail words", 32..72),
        ("used/oldest", 72..88),
        ("config/layout gen", 88..104),
        ("boot/file id", 104..120),
        ("tail_records", 120..128),
        ("check", 128..136),
    ] {
        if thorough {
            t.bytes(name, "reel.head", r);
        } else {
            t.sample(name, "reel.head", r, 3);
        }
    }
    all.extend(t.out);
    for (name, _) in &fx.readers {
        let p = PathBuf::from(format!("readers/{name}.cursor"));
        let bytes = &fx.snap.files[&p];
        let mut t = Targets {
            out: Vec::new(),
            file: &p,
            class: "cursor",
            salt: 4,
            damaged: 0..0,
        };
        for (slot, base) in [("slot0", 0u64), ("slot1", 64)] {
            let live = cursor_slots(&bytes[base as usize..base as usize + 64])
                .first()
                .copied();
            let what = match live {
                Some((g, a)) => format!("{name} {slot}: generation {g}, position {a}"),
                None => format!("{name} {slot}: empty"),
            };
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
    for (p, bytes) in &fx.snap.files {
        if !p.ends_with("checkpoint") {
            continue;
        }
        let mut t = Targets {
            out: Vec::new(),
            file: p,
            class: "checkpoint",
            salt: 5,
            damaged: 0..0,
        };
        let len = bytes.len() as u64;
        t.bytes("header", "checkpoint header", 0..48);
        // The state's first bytes (counts, the first key) and a spread of the rest.
        t.bytes("state", "checkpoint state", 48..112.min(len - 4));
        if len - 4 > 112 {
            t.sample("state", "checkpoint state", 112..len - 4, 40);
        }
        t.bytes("crc", "checkpoint crc", len - 4..len);
        all.extend(t.out);
    }
    // Tables of views kept in files (docs/FORMAT.md "Sorted tables"): header, a spread
    // of the blocks and the index, every byte of the footer.
    for (p, bytes) in &fx.snap.files {
        if p.extension().is_none_or(|e| e != "tbl") {
            continue;
        }
        let mut t = Targets {
            out: Vec::new(),
            file: p,
            class: "table",
            salt: 6,
            damaged: 0..0,
        };
        let len = bytes.len() as u64;
        let index_at = u64::from_le_bytes(bytes[bytes.len() - 32..][..8].try_into().unwrap());
        t.bytes("header", "table header", 0..32);
        t.sample("blocks", "table blocks", 32..index_at, 60);
        t.sample("index", "table index", index_at..len - 32, 20);
        t.bytes("footer", "table footer", len - 32..len);
        all.extend(t.out);
    }
    all
}
