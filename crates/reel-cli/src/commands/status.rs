//! `reel status`.

use crate::cli::StatusArgs;
use crate::error::CliResult;
use crate::units::fmt_bytes;

pub fn run(a: StatusArgs) -> CliResult {
    let spool = super::open_spool(&a.dir, Default::default())?;
    let st = spool.status()?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&st).map_err(std::io::Error::from)?
        );
        return Ok(());
    }
    let pct = if st.capacity == 0 {
        0.0
    } else {
        st.used_bytes as f64 * 100.0 / st.capacity as f64
    };
    println!("spool      {}", st.dir.display());
    println!(
        "capacity   {} (when full: {}), segments of {}",
        fmt_bytes(st.capacity),
        st.when_full,
        fmt_bytes(st.segment_size)
    );
    println!(
        "used       {} in {} segment{} ({pct:.1}%)",
        fmt_bytes(st.used_bytes),
        st.segments,
        if st.segments == 1 { "" } else { "s" }
    );
    if st.records == 0 {
        println!("records    none retained (next seq {})", st.next_seq);
    } else {
        println!(
            "records    {} retained: seq {} to {} (next seq {})",
            st.records,
            st.oldest_seq,
            st.next_seq - 1,
            st.next_seq
        );
    }
    if st.readers.is_empty() {
        println!("readers    none");
        return Ok(());
    }
    let w = st
        .readers
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "readers    {:<w$}  {:>12}  {:>12}  {:>6}  {:>10}",
        "NAME", "POSITION", "UNREAD", "READ%", "LOST"
    );
    for r in &st.readers {
        println!(
            "           {:<w$}  {:>12}  {:>12}  {:>6.1}  {:>10}",
            r.name, r.position, r.unread, r.consumed_pct, r.lost
        );
    }
    Ok(())
}
