//! `reel verify`.

use crate::cli::VerifyArgs;
use crate::error::{CliError, CliResult};
use crate::output::{Output, note};
use crate::units::{plural, plural_phrase};
use reel::Damage;

pub fn run(a: VerifyArgs, out: &mut Output) -> CliResult {
    let (rep, local) = match crate::remote::target(&a.dir)? {
        Some(r) => (crate::remote::verify(&r)?, None),
        None => {
            let spool = super::open_spool_read_only(&a.dir)?;
            let rep = spool.verify()?;
            (reel_server::verify_json(&rep), Some(rep))
        }
    };
    let ok = rep["ok"].as_bool().unwrap_or(false);
    if a.json {
        out.json_line(&rep)?;
    } else {
        let damage = rep["damage"].as_array().cloned().unwrap_or_default();
        for d in &damage {
            let resume = d["resume_seq"]
                .as_u64()
                .map(|s| format!("; next readable seq {s}"))
                .unwrap_or_default();
            out.line(format_args!(
                "DAMAGED {} at byte {}: {}{resume}",
                d["file"].as_str().unwrap_or("?"),
                d["offset"],
                d["problem"].as_str().unwrap_or("?")
            ))?;
        }
        let n = |k: &str| rep[k].as_u64().unwrap_or(0);
        out.line(format_args!(
            "{}: {}, {}, {} checked, {}",
            a.dir.display(),
            plural(n("segments"), "segment"),
            plural(n("records"), "record"),
            plural(n("bytes"), "byte"),
            plural(damage.len() as u64, "problem")
        ))?;
    }
    if ok {
        return Ok(());
    }
    if let (false, Some(rep)) = (a.json, local) {
        out.flush()?;
        for line in advice(&a.dir, &rep.damage) {
            note(format_args!("reel: {line}"));
        }
    }
    Err(CliError::Failed("damaged".into()))
}

/// What to do about each kind of damage, naming the seqs: damaged records are skipped
/// with `reel rewind --to-seq` at the next readable seq; damaged indexes and cursors are
/// no loss of records at all.
pub fn advice(dir: &std::path::Path, damage: &[Damage]) -> Vec<String> {
    let ext = |d: &Damage| {
        d.path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut lines = Vec::new();
    let mut resumes: Vec<u64> = damage.iter().filter_map(|d| d.resume_seq).collect();
    resumes.dedup();
    for seq in &resumes {
        lines.push(format!(
            "{} has damaged records; a reader stopped by them skips them with `reel rewind --reader NAME --to-seq {seq} {}`",
            dir.display(),
            dir.display()
        ));
    }
    let records_unreadable_to_end = damage
        .iter()
        .any(|d| d.resume_seq.is_none() && !matches!(ext(d).as_str(), "idx" | "cursor" | "tbl"));
    if records_unreadable_to_end {
        lines.push(format!(
            "{} has damaged records with no readable record after them in their segment's tail; nothing past them can be read",
            dir.display()
        ));
    }
    let indexes = damage.iter().filter(|d| ext(d) == "idx").count() as u64;
    if indexes > 0 {
        lines.push(format!(
            "{} damaged: no record is lost, every record is still readable (an index is a cache; see above)",
            plural_phrase(indexes, "index file is", "index files are")
        ));
    }
    let tables = damage.iter().filter(|d| ext(d) == "tbl").count() as u64;
    let lists_state = damage
        .iter()
        .any(|d| ext(d) == "tbl" && d.what.contains("live only in this view"));
    if lists_state {
        lines.push(format!(
            "a lists view table is damaged after retention dropped records: restore {}/views/lists from a copy, or accept losing expired lists' offsets and nonces with `reel view rebuild --force {} lists`",
            dir.display(),
            dir.display()
        ));
    } else if tables > 0 {
        lines.push(format!(
            "{} damaged: no record is lost (a view is a cache of the log); rebuild the view named above with `reel view rebuild {} NAME`",
            plural_phrase(tables, "view table is", "view tables are"),
            dir.display()
        ));
    }
    let cursors = damage.iter().filter(|d| ext(d) == "cursor").count() as u64;
    if cursors > 0 {
        lines.push(format!(
            "{} damaged: reset each with `reel rewind --reader NAME {}`",
            plural_phrase(cursors, "reader cursor is", "reader cursors are"),
            dir.display()
        ));
    }
    lines
}
