//! `reel tee`.

use crate::cli::TeeArgs;
use crate::error::CliResult;
use reel::tee::Tee;
use std::sync::atomic::AtomicBool;

pub fn run(a: TeeArgs) -> CliResult {
    let src = super::open_spool(&a.src, Default::default())?;
    let dsts = a
        .dst
        .iter()
        .map(|d| super::open_spool(d, Default::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut tee = Tee::new(&src, &a.reader, &dsts)?;
    let stop = AtomicBool::new(false);
    let copied = tee.run(!a.no_wait, &stop)?;
    eprintln!(
        "reel tee: copied {copied} records into {} spool{}",
        dsts.len(),
        if dsts.len() == 1 { "" } else { "s" }
    );
    if tee.lost() > 0 {
        eprintln!(
            "reel tee: {} records were dropped from {} before they could be copied",
            tee.lost(),
            a.src.display()
        );
    }
    Ok(())
}
