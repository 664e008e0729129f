//! `reel init`: create a spool or change its capacity and policy.

use crate::cli::InitArgs;
use crate::error::{CliError, CliResult};
use crate::units::fmt_bytes;
use reel::{Spool, WhenFull};

pub fn run(a: InitArgs) -> CliResult {
    let when_full: Option<WhenFull> = a
        .when_full
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(reel::Error::from)?;
    let exists = a.dir.join(reel_log::META_FILE).exists();
    if !exists {
        if a.dir.is_dir()
            && std::fs::read_dir(&a.dir)
                .map_err(CliError::Output)?
                .next()
                .is_some()
        {
            return Err(CliError::Input(format!(
                "{} exists, is not empty and is not a spool; refusing to create a spool there",
                a.dir.display()
            )));
        }
        let mut b = Spool::builder(&a.dir).capacity(a.size.unwrap_or(reel_log::DEFAULT_CAPACITY));
        b = b.when_full(when_full.unwrap_or_default());
        if let Some(m) = a.max_record_size {
            b = b.max_record_size(m);
        }
        let spool = b.open()?;
        let c = spool.log().config();
        println!(
            "created spool {} (capacity {}, when full: {}, segments of {})",
            a.dir.display(),
            fmt_bytes(c.capacity),
            c.when_full,
            fmt_bytes(c.segment_size)
        );
        return Ok(());
    }
    let spool = super::open_spool(&a.dir, Default::default())?;
    let before = spool.log().config();
    if a.max_record_size
        .is_some_and(|m| m != before.max_record_size)
    {
        return Err(CliError::Input(
            "the maximum record size of an existing spool cannot be changed".into(),
        ));
    }
    let capacity = a.size.unwrap_or(before.capacity);
    let policy = when_full.unwrap_or(before.when_full);
    let old_oldest = spool.oldest_seq();
    spool.reconfigure(capacity, policy)?;
    let after = spool.log().config();
    if after == before {
        println!(
            "spool {} unchanged (capacity {}, when full: {})",
            a.dir.display(),
            fmt_bytes(after.capacity),
            after.when_full
        );
    } else {
        println!(
            "spool {}: capacity {} -> {}, when full: {} -> {}",
            a.dir.display(),
            fmt_bytes(before.capacity),
            fmt_bytes(after.capacity),
            before.when_full,
            after.when_full
        );
        let dropped = spool.oldest_seq() - old_oldest;
        if dropped > 0 {
            println!("dropped the {dropped} oldest records to fit");
        }
    }
    Ok(())
}
