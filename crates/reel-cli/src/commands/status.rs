//! `reel status`.

use crate::cli::StatusArgs;
use crate::error::CliResult;
use crate::output::Output;
use crate::units::{fmt_bytes, plural};

pub fn run(a: StatusArgs, out: &mut Output) -> CliResult {
    let spool = super::open_spool_for_reading(&a.dir)?;
    let st = spool.status()?;
    if a.json {
        out.json_line(&st)?;
        return Ok(());
    }
    let pct = if st.capacity == 0 {
        0.0
    } else {
        st.used_bytes as f64 * 100.0 / st.capacity as f64
    };
    out.line(format_args!("spool      {}", st.dir.display()))?;
    out.line(format_args!(
        "capacity   {} (when full: {}), segments of {}",
        fmt_bytes(st.capacity),
        st.when_full,
        fmt_bytes(st.segment_size)
    ))?;
    out.line(format_args!(
        "used       {} in {} ({pct:.1}%)",
        fmt_bytes(st.used_bytes),
        plural(st.segments as u64, "segment"),
    ))?;
    if st.records == 0 {
        out.line(format_args!(
            "records    none retained (next seq {})",
            st.next_seq
        ))?;
    } else {
        out.line(format_args!(
            "records    {} retained: seq {} to {} (next seq {})",
            st.records,
            st.oldest_seq,
            st.next_seq.saturating_sub(1),
            st.next_seq
        ))?;
    }
    if st.readers.is_empty() {
        out.line(format_args!("readers    none"))?;
        return Ok(());
    }
    let w = st
        .readers
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.line(format_args!(
        "readers    {:<w$}  {:>12}  {:>12}  {:>6}  {:>10}",
        "NAME", "POSITION", "UNREAD", "READ%", "LOST"
    ))?;
    for r in &st.readers {
        out.line(format_args!(
            "           {:<w$}  {:>12}  {:>12}  {:>6.1}  {:>10}",
            r.name, r.position, r.unread, r.consumed_pct, r.lost
        ))?;
    }
    Ok(())
}
