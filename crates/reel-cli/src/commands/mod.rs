//! One module per command; `run` dispatches.

mod demo;
mod init;
mod kv;
mod list;
mod read;
mod status;
mod stream;
mod tee;
mod verify;
mod view;
mod write;

use crate::cli::Command;
use crate::error::CliResult;
use reel::{Durability, Spool};
use std::path::Path;

/// Runs one command.
pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Init(a) => init::run(a),
        Command::Write(a) => write::run(a),
        Command::Read(a) => read::run(a),
        Command::Rewind(a) => read::rewind(a),
        Command::Status(a) => status::run(a),
        Command::Tee(a) => tee::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Stream(a) => stream::run(a),
        Command::Compact(a) => view::compact(a),
        Command::View(c) => view::run(c),
        Command::Kv(c) => kv::run(c),
        Command::List(c) => list::run(c),
        Command::Bench(a) => crate::bench::run(a),
        Command::Demo(a) => demo::run(a),
    }
}

/// Opens an existing spool and reports on stderr anything recovery had to repair.
pub fn open_spool(dir: &Path, durability: Durability) -> CliResult<Spool> {
    let spool = Spool::builder(dir)
        .create(false)
        .durability(durability)
        .open()?;
    warn_recovery(&spool);
    Ok(spool)
}

/// Prints what recovery repaired, if anything.
pub fn warn_recovery(spool: &Spool) {
    if let Some(report) = spool.log().recovery_report() {
        for line in report.describe() {
            eprintln!("reel: warning: {line}");
        }
    }
}
