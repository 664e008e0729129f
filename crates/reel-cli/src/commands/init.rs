//! `reel init`: create a store of a kind, or change the capacity and policy of one.

use crate::cli::InitArgs;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use crate::units::fmt_bytes;
use reel::{Spool, StoreKind, WhenFull};
use std::ops::Range;

/// The kind named on the command line.
pub fn kind_of(name: &str) -> CliResult<StoreKind> {
    Ok(match name {
        "spool" => StoreKind::Spool,
        "kv" => StoreKind::Kv(reel::kv::PATH_SYNTAX),
        "lists" => StoreKind::Lists,
        other => {
            return Err(CliError::Input(format!(
                "unknown kind `{other}` (expected spool, kv or lists)"
            )));
        }
    })
}

pub fn run(a: InitArgs, out: &mut Output) -> CliResult {
    let when_full: Option<WhenFull> = a
        .when_full
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(reel::Error::from)?;
    let kind = a.kind.as_deref().map(kind_of).transpose()?;
    if let Some(url) = a.object_store.clone() {
        return tiered(&a, &url, kind, when_full, out);
    }
    if !a.dir.join(reel::META_FILE).exists() {
        let kind = kind.unwrap_or(StoreKind::Spool);
        let spool = create_local(&a, kind, when_full)?;
        let c = spool.log().config();
        out.line(format_args!(
            "created {} {} (capacity {}, when full: {}, segments of {})",
            kind.name(),
            a.dir.display(),
            fmt_bytes(c.capacity),
            c.when_full,
            fmt_bytes(c.segment_size)
        ))?;
        return Ok(());
    }
    let spool = super::open_spool(&a.dir, Default::default())?;
    let have = spool.kind();
    // Everything that can be refused is refused before anything changes.
    if let Some(kind) = kind {
        if have != StoreKind::Untyped && !have.is_same_kind(kind) {
            return Err(CliError::Input(format!(
                "{} is a {have}; a store's kind is fixed when it is created (create the {} in a \
                 new directory: reel init --kind {} NEWDIR)",
                a.dir.display(),
                kind.name(),
                kind.as_str()
            )));
        }
        if let Some(policy) = when_full {
            kind.check_policy(policy).map_err(reel::Error::from)?;
        }
    }
    let before = spool.log().config();
    if a.max_record_size
        .is_some_and(|m| m != before.max_record_size)
    {
        return Err(CliError::Input(format!(
            "the maximum record size of an existing {have} cannot be changed"
        )));
    }
    // The policy first: a store from before kinds may need another one to take its kind
    // (lists never compact).
    let capacity = a.size.unwrap_or(before.capacity);
    if capacity < reel::MIN_CAPACITY {
        return Err(CliError::Input(format!(
            "capacity {} is below the minimum of {}",
            fmt_bytes(capacity),
            fmt_bytes(reel::MIN_CAPACITY)
        )));
    }
    let policy = when_full.unwrap_or(before.when_full);
    if !a.force
        && let Some((seqs, records)) = would_drop(&spool, capacity, policy)?
    {
        return Err(CliError::Input(format!(
            "resizing {} to {} would drop the {} oldest {} (seq {} to {}) to fit; \
             nothing was changed; add --force to resize anyway",
            a.dir.display(),
            fmt_bytes(capacity),
            records,
            if records == 1 { "record" } else { "records" },
            seqs.start,
            seqs.end - 1
        )));
    }
    let old_oldest = spool.oldest_seq();
    spool.reconfigure(capacity, policy)?;
    let after = spool.log().config();
    let name = have.name();
    if after == before {
        out.line(format_args!(
            "{name} {} unchanged (capacity {}, when full: {})",
            a.dir.display(),
            fmt_bytes(after.capacity),
            after.when_full
        ))?;
    } else {
        out.line(format_args!(
            "{name} {}: capacity {} -> {}, when full: {} -> {}",
            a.dir.display(),
            fmt_bytes(before.capacity),
            fmt_bytes(after.capacity),
            before.when_full,
            after.when_full
        ))?;
        let dropped = spool.oldest_seq().saturating_sub(old_oldest);
        if dropped > 0 {
            out.line(format_args!(
                "dropped the {dropped} oldest {} to fit",
                if dropped == 1 { "record" } else { "records" }
            ))?;
        }
    }
    if let Some(kind) = kind.filter(|_| have == StoreKind::Untyped) {
        spool.set_kind(kind)?;
        out.line(format_args!(
            "{} is now a {} (it was created before stores had kinds; when full: {})",
            a.dir.display(),
            kind.name(),
            spool.log().config().when_full
        ))?;
    }
    Ok(())
}

/// The seqs a resize to `capacity` under `policy` would drop, and how many records that
/// is, computed from the segments as they are now: oldest segments go, never the tail,
/// until the rest fits (`drop-oldest`), or only segments every reader has consumed
/// (`reject`); `compact` never drops a segment. Another writer appending meanwhile can
/// change the answer; the resize itself always keeps the spool consistent.
fn would_drop(
    spool: &Spool,
    capacity: u64,
    policy: WhenFull,
) -> CliResult<Option<(Range<u64>, u64)>> {
    let segments = spool.log().segments()?;
    let floor = match policy {
        WhenFull::DropOldest => u64::MAX,
        WhenFull::Reject => {
            let st = spool.status()?;
            st.readers.iter().map(|r| r.position).min().unwrap_or(0)
        }
        _ => 0,
    };
    let mut used: u64 = segments.iter().map(|s| s.bytes).sum();
    let mut end = None;
    for pair in segments.windows(2) {
        let [oldest, next] = pair else { break };
        if used <= capacity || next.first_seq > floor {
            break;
        }
        used = used.saturating_sub(oldest.bytes);
        end = Some(next.first_seq);
    }
    let start = spool.oldest_seq();
    Ok(end.filter(|&e| e > start).map(|e| (start..e, e - start)))
}

/// Creates a new local store of `kind` as the flags say (the policy defaults to the
/// kind's: compact for kv, drop-oldest otherwise).
fn create_local(a: &InitArgs, kind: StoreKind, when_full: Option<WhenFull>) -> CliResult<Spool> {
    let policy = when_full.unwrap_or(match kind {
        StoreKind::Kv(_) => WhenFull::Compact,
        _ => WhenFull::DropOldest,
    });
    let mut b = Spool::builder(&a.dir)
        .kind(kind)
        .capacity(a.size.unwrap_or(reel::DEFAULT_CAPACITY))
        .when_full(policy);
    if let Some(m) = a.max_record_size {
        b = b.max_record_size(m);
    }
    Ok(b.open()?)
}

/// `reel init --object-store URL DIR`: a new store kept in object storage, an existing
/// local store moved there, or (when URL holds a store) that store continued in DIR.
fn tiered(
    a: &InitArgs,
    url: &str,
    kind: Option<StoreKind>,
    when_full: Option<WhenFull>,
    out: &mut Output,
) -> CliResult {
    let tier_url: reel_tier::TierUrl = url.parse()?;
    if !(a.seal_after.is_finite() && a.seal_after > 0.0) {
        return Err(CliError::Input(format!(
            "--seal-after must be a number of seconds above 0, not {}",
            a.seal_after
        )));
    }
    let seal_ms = (a.seal_after * 1000.0).round().max(1.0) as u64;
    if let Some(r) = &a.object_retention {
        reel_tier::writer::Retention::parse(r)?;
    }
    if let Some(c) = reel_tier::TierConfig::read(&a.dir)? {
        return Err(CliError::Input(format!(
            "{} is already the writer directory of {}",
            a.dir.display(),
            c.url
        )));
    }
    let tier = reel_tier::Tier::connect(&tier_url)?;
    let existing = tier.manifest()?;
    // A kv store's records are its live values however old: object retention would
    // drop some of them.
    let final_kind = match &existing {
        Some(v) => Some(v.manifest.store_kind()?),
        None if a.dir.join(reel::META_FILE).exists() => {
            Some(reel::Log::open(&a.dir).map_err(reel::Error::from)?.kind())
        }
        None => kind,
    };
    if a.object_retention.is_some() && matches!(final_kind, Some(StoreKind::Kv(_))) {
        return Err(CliError::Input(
            "--object-retention does not apply to a kv store: its oldest records hold live \
             values (its log compacts instead)"
                .into(),
        ));
    }
    let log = match &existing {
        Some(v) => {
            // Continue the store: its kind and configuration come from object storage.
            let m = &v.manifest;
            let their_kind = m.store_kind()?;
            if kind.is_some_and(|k| !k.is_same_kind(their_kind)) {
                return Err(CliError::Input(format!(
                    "{url} holds a {their_kind}, not a {}",
                    kind.map_or("", StoreKind::name)
                )));
            }
            if a.dir.join(reel::META_FILE).exists() {
                return Err(CliError::Input(format!(
                    "{url} already holds a store: continue it in a new, empty directory (not {}, which holds a store)",
                    a.dir.display()
                )));
            }
            std::fs::create_dir_all(&a.dir).map_err(CliError::Output)?;
            reel_log::LogOptions::new()
                .create(m.store_config()?)
                .kind(their_kind)
                .log_id(m.store_log_id()?)
                .open(&a.dir)
                .map_err(reel::Error::from)?
        }
        None => {
            if !a.dir.join(reel::META_FILE).exists() {
                drop(create_local(
                    a,
                    kind.unwrap_or(StoreKind::Spool),
                    when_full,
                )?);
            }
            reel::Log::open(&a.dir).map_err(reel::Error::from)?
        }
    };
    match existing {
        Some(v) => {
            let (_, m) = reel_tier::writer::TierWriter::continue_store(
                tier,
                &a.dir,
                &log,
                &v.manifest,
                seal_ms,
                a.object_retention.clone(),
            )?;
            out.line(format_args!(
                "continued {} {url} in {}: {} records copied; this directory is its writer now (epoch {}; {} is fenced)",
                m.store_kind()?.name(),
                a.dir.display(),
                log.next_seq(),
                m.epoch,
                v.manifest.writer.describe()
            ))?;
        }
        None => {
            let w = reel_tier::writer::TierWriter::create(
                tier,
                &a.dir,
                &log,
                seal_ms,
                a.object_retention.clone(),
            )?;
            let up = w.upload(&log)?;
            out.line(format_args!(
                "{} {} is kept in {url} ({} records uploaded; uploads at least every {}s while a writer runs)",
                log.kind().name(),
                a.dir.display(),
                up.seqs.end - up.seqs.start,
                a.seal_after
            ))?;
        }
    }
    Ok(())
}
