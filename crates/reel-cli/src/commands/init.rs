//! `reel init`: create a store of a kind, or change the capacity and policy of one.

use crate::cli::InitArgs;
use crate::error::{CliError, CliResult};
use crate::units::fmt_bytes;
use reel::{Spool, StoreKind, WhenFull};

/// The kind named on the command line.
fn kind_of(name: &str) -> CliResult<StoreKind> {
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

pub fn run(a: InitArgs) -> CliResult {
    let when_full: Option<WhenFull> = a
        .when_full
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(reel::Error::from)?;
    let kind = a.kind.as_deref().map(kind_of).transpose()?;
    if !a.dir.join(reel_log::META_FILE).exists() {
        let kind = kind.unwrap_or(StoreKind::Spool);
        let policy = when_full.unwrap_or(match kind {
            StoreKind::Kv(_) => WhenFull::Compact,
            _ => WhenFull::DropOldest,
        });
        let mut b = Spool::builder(&a.dir)
            .kind(kind)
            .capacity(a.size.unwrap_or(reel_log::DEFAULT_CAPACITY))
            .when_full(policy);
        if let Some(m) = a.max_record_size {
            b = b.max_record_size(m);
        }
        let spool = b.open()?;
        let c = spool.log().config();
        println!(
            "created {} {} (capacity {}, when full: {}, segments of {})",
            kind.name(),
            a.dir.display(),
            fmt_bytes(c.capacity),
            c.when_full,
            fmt_bytes(c.segment_size)
        );
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
    let policy = when_full.unwrap_or(before.when_full);
    let old_oldest = spool.oldest_seq();
    spool.reconfigure(capacity, policy)?;
    let after = spool.log().config();
    let name = have.name();
    if after == before {
        println!(
            "{name} {} unchanged (capacity {}, when full: {})",
            a.dir.display(),
            fmt_bytes(after.capacity),
            after.when_full
        );
    } else {
        println!(
            "{name} {}: capacity {} -> {}, when full: {} -> {}",
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
    if let Some(kind) = kind.filter(|_| have == StoreKind::Untyped) {
        spool.set_kind(kind)?;
        println!(
            "{} is now a {} (it was created before stores had kinds; when full: {})",
            a.dir.display(),
            kind.name(),
            spool.log().config().when_full
        );
    }
    Ok(())
}
