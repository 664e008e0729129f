//! `reel status`.

use crate::cli::StatusArgs;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use crate::units::{fmt_bytes, plural};
use serde_json::Value;
use std::path::Path;

pub fn run(a: StatusArgs, out: &mut Output) -> CliResult {
    let st = match crate::remote::target(&a.dir)? {
        Some(r) => crate::remote::status(&r)?,
        None => {
            let spool = super::open_spool_for_reading(&a.dir)?;
            let mut st = serde_json::to_value(spool.status()?)?;
            if let Some(tier) = tier_status(&a.dir, spool.next_seq())? {
                st["object_store"] = tier;
            }
            st
        }
    };
    if a.json {
        out.json_line(&st)?;
        return Ok(());
    }
    render(&st, out)
}

/// For `reel status` on a tiered writer directory: where its objects are and how far
/// uploads got (`None` when `dir` is not tiered). Object storage unreachable is shown,
/// not an error: the local store's status still stands.
fn tier_status(dir: &Path, local_next: u64) -> CliResult<Option<serde_json::Value>> {
    let Some(config) = reel_tier::TierConfig::read(dir)? else {
        return Ok(None);
    };
    let manifest = config
        .tier_url()
        .and_then(|u| reel_tier::Tier::connect(&u))
        .and_then(|t| t.require_manifest());
    Ok(Some(match manifest {
        Ok(v) => {
            let m = v.manifest;
            serde_json::json!({
                "url": config.url,
                "uploaded_next_seq": m.next_seq,
                "pending_records": local_next.saturating_sub(m.next_seq),
                "objects": m.objects.len(),
                "bytes": m.objects.iter().map(|o| o.bytes).sum::<u64>(),
                "epoch": m.epoch,
                "writer": m.writer.describe(),
                "fenced": m.writer.id != config.writer_id,
            })
        }
        Err(e) => serde_json::json!({"url": config.url, "error": e.to_string()}),
    }))
}

/// The text form of `reel status --json`'s object (local or from a server: one printer).
fn render(st: &Value, out: &mut Output) -> CliResult {
    let n = |k: &str| {
        st[k]
            .as_u64()
            .ok_or_else(|| CliError::Input(format!("status without `{k}`: {st}")))
    };
    let (capacity, used, next, oldest) = (
        n("capacity")?,
        n("used_bytes")?,
        n("next_seq")?,
        n("oldest_seq")?,
    );
    let pct = if capacity == 0 {
        0.0
    } else {
        used as f64 * 100.0 / capacity as f64
    };
    out.line(format_args!(
        "spool      {}",
        st["dir"].as_str().unwrap_or("?")
    ))?;
    // Absent from the answer of a server older than the field.
    if let Some(kind) = st["kind"].as_str() {
        out.line(format_args!("kind       {kind}"))?;
    }
    if let Some(t) = st.get("object_store") {
        render_object_store(t, out)?;
    }
    match st["follows"].as_str() {
        Some(src) if src.starts_with("s3://") => out.line(format_args!(
            "copy of    {src} (a local copy of object storage, brought up to date by each command)"
        ))?,
        Some(src) => {
            out.line(format_args!(
                "follows    {src} (read-only: kept by `reel replicate`; `reel promote` makes it writable)"
            ))?;
            render_replication(&st["replication"], out)?;
        }
        None => {}
    }
    out.line(format_args!(
        "capacity   {} (when full: {}), segments of {}",
        fmt_bytes(capacity),
        st["when_full"].as_str().unwrap_or("?"),
        fmt_bytes(n("segment_size")?)
    ))?;
    out.line(format_args!(
        "used       {} in {} ({pct:.1}%)",
        fmt_bytes(used),
        plural(n("segments")?, "segment"),
    ))?;
    let records = n("records")?;
    if records == 0 {
        out.line(format_args!("records    none retained (next seq {next})"))?;
    } else {
        out.line(format_args!(
            "records    {records} retained: seq {oldest} to {} (next seq {next})",
            next.saturating_sub(1),
        ))?;
    }
    let readers = st["readers"].as_array().cloned().unwrap_or_default();
    if readers.is_empty() {
        out.line(format_args!("readers    none"))?;
        return Ok(());
    }
    let name = |r: &Value| r["name"].as_str().unwrap_or("?").to_string();
    let w = readers
        .iter()
        .map(|r| name(r).len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.line(format_args!(
        "readers    {:<w$}  {:>12}  {:>12}  {:>6}  {:>10}",
        "NAME", "POSITION", "UNREAD", "READ%", "LOST"
    ))?;
    for r in &readers {
        out.line(format_args!(
            "           {:<w$}  {:>12}  {:>12}  {:>6.1}  {:>10}",
            name(r),
            r["position"].as_u64().unwrap_or(0),
            r["unread"].as_u64().unwrap_or(0),
            r["consumed_pct"].as_f64().unwrap_or(0.0),
            r["lost"].as_u64().unwrap_or(0)
        ))?;
    }
    Ok(())
}

/// A follower's progress: `replication` of `reel status --json`.
fn render_replication(r: &Value, out: &mut Output) -> CliResult {
    let last = r["last_seq"]
        .as_u64()
        .map_or_else(|| "none".to_string(), |s| s.to_string());
    match (r["lag_records"].as_u64(), r["lag_seconds"].as_f64()) {
        (Some(records), Some(secs)) => {
            let ago = r["seen_secs_ago"].as_f64().unwrap_or(0.0);
            let behind = if records == 0 {
                "caught up".to_string()
            } else {
                format!("behind by {} ({secs:.1} s)", plural(records, "record"))
            };
            out.line(format_args!(
                "replica    last seq {last}, {behind}; source next seq {} as seen {ago:.1} s ago",
                r["source_next_seq"].as_u64().unwrap_or(0)
            ))?;
        }
        _ => out.line(format_args!(
            "replica    last seq {last}; lag unknown (the source was not seen yet)"
        ))?,
    }
    for g in r["gaps"].as_array().into_iter().flatten() {
        out.line(format_args!(
            "gap        seqs {} to {} not copied (gone from the source, or before --from-seq)",
            g[0].as_u64().unwrap_or(0),
            g[1].as_u64().unwrap_or(0)
        ))?;
    }
    Ok(())
}

/// The `object_store` object of a tiered store's writer directory.
fn render_object_store(t: &Value, out: &mut Output) -> CliResult {
    let url = t["url"].as_str().unwrap_or("?");
    if let Some(e) = t["error"].as_str() {
        out.line(format_args!(
            "objects    {url} (cannot read its manifest: {e})"
        ))?;
        return Ok(());
    }
    let state = if t["fenced"].as_bool() == Some(true) {
        format!(
            "FENCED: written by {} now (epoch {})",
            t["writer"].as_str().unwrap_or("?"),
            t["epoch"]
        )
    } else {
        format!("this directory writes it (epoch {})", t["epoch"])
    };
    out.line(format_args!(
        "objects    {url}: uploaded below seq {}, {} records not yet, in {} objects; {}",
        t["uploaded_next_seq"], t["pending_records"], t["objects"], state
    ))?;
    Ok(())
}
