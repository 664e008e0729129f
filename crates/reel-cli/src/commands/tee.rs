//! `reel tee`.

use crate::cli::TeeArgs;
use crate::error::{CliError, CliResult};
use crate::output::note;
use crate::units::{plural, plural_phrase};
use reel::tee::Tee;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub fn run(a: TeeArgs) -> CliResult {
    check_distinct(&a.src, &a.dst)?;
    let src = super::open_spool(&a.src, Default::default())?;
    // Tiered destinations are written as by `reel write`: refused when fenced, uploaded
    // while following and before the command exits.
    let tiers = a
        .dst
        .iter()
        .map(|d| crate::tier::writer(d))
        .collect::<Result<Vec<_>, _>>()?;
    let dsts = a
        .dst
        .iter()
        .map(|d| super::open_spool(d, Default::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut tee = Tee::new(&src, &a.reader, &dsts)?;
    let stop = Arc::new(AtomicBool::new(false));
    // A fence found while following stops the copy (through `stop`).
    let uploaders: Vec<crate::tier::Periodic> = tiers
        .iter()
        .zip(&a.dst)
        .filter(|_| !a.no_wait)
        .filter_map(|(t, d)| {
            let every = t.as_ref()?.config().seal_after_ms;
            Some(crate::tier::Periodic::start(d, every, Some(stop.clone())))
        })
        .collect();
    let run = tee.run(!a.no_wait, &stop);
    // Every tiered destination uploads what it stored, whatever stopped the copy (a
    // failure, one destination taken over): the first error is reported after.
    let fenced = uploaders.iter().find_map(|u| u.check().err());
    drop(uploaders);
    let mut uploads = Ok(());
    for (t, d) in tiers.iter().zip(&dsts) {
        if let Some(w) = t
            && let Err(e) = crate::tier::upload(w, d.log())
            && uploads.is_ok()
        {
            uploads = Err(e);
        }
    }
    let copied = run?;
    if let Some(e) = fenced {
        return Err(e);
    }
    uploads?;
    note(format_args!(
        "reel tee: copied {} into {}",
        plural(copied, "record"),
        plural(dsts.len() as u64, "spool")
    ));
    if tee.lost() > 0 {
        note(format_args!(
            "reel tee: {} dropped from {} before they could be copied",
            plural_phrase(tee.lost(), "record was", "records were"),
            a.src.display()
        ));
    }
    Ok(())
}

/// Refuses a destination given twice or equal to the source (by canonical path, so
/// `d`, `./d` and a symlink to it are one directory): each copy would be written twice.
fn check_distinct(src: &Path, dsts: &[PathBuf]) -> CliResult {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let src_c = canon(src);
    let mut seen: Vec<(PathBuf, &Path)> = Vec::with_capacity(dsts.len());
    for d in dsts {
        let c = canon(d);
        if c == src_c {
            return Err(CliError::Input(format!(
                "destination {} is the source spool {}: a spool cannot be teed into itself",
                d.display(),
                src.display()
            )));
        }
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == c) {
            return Err(CliError::Input(format!(
                "destination {} is given twice (also as {}): every record would be copied into it twice",
                d.display(),
                first.display()
            )));
        }
        seen.push((c, d));
    }
    Ok(())
}
