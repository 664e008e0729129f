//! `reel verify`.

use crate::cli::VerifyArgs;
use crate::error::{CliError, CliResult};

pub fn run(a: VerifyArgs) -> CliResult {
    let spool = reel::Spool::builder(&a.dir)
        .create(false)
        .read_only(true)
        .open()?;
    let rep = spool.verify()?;
    if a.json {
        let damage: Vec<serde_json::Value> = rep
            .damage
            .iter()
            .map(|d| serde_json::json!({"file": d.path, "offset": d.offset, "problem": d.what, "resume_seq": d.resume_seq}))
            .collect();
        let out = serde_json::json!({"ok": rep.is_ok(), "segments": rep.segments, "records": rep.records, "bytes": rep.bytes, "damage": damage});
        println!("{out}");
    } else {
        for d in &rep.damage {
            let resume = d
                .resume_seq
                .map(|s| format!("; next readable seq {s}"))
                .unwrap_or_default();
            println!(
                "DAMAGED {} at byte {}: {}{resume}",
                d.path.display(),
                d.offset,
                d.what
            );
        }
        println!(
            "{}: {} segments, {} records, {} bytes checked, {} problem{}",
            a.dir.display(),
            rep.segments,
            rep.records,
            rep.bytes,
            rep.damage.len(),
            if rep.damage.len() == 1 { "" } else { "s" }
        );
    }
    if rep.is_ok() {
        Ok(())
    } else {
        if !a.json {
            eprintln!(
                "reel: {} is damaged; skip damaged records with `reel rewind --reader NAME --to-seq SEQ`",
                a.dir.display()
            );
        }
        Err(CliError::Failed("damaged".into()))
    }
}
