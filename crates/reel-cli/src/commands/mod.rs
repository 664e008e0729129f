//! One module per command; `run` dispatches.

mod auth;
mod demo;
pub mod init;
pub mod kafka;
mod kv;
pub mod list;
mod read;
mod replicate;
mod serve;
mod status;
mod stream;
mod tee;
mod verify;
mod view;
pub mod write;

use crate::cli::Command;
use crate::error::CliResult;
use crate::output::Output;
use reel::{Durability, Spool};
use std::path::Path;

/// Runs one command, printing through `out`.
pub fn run(cmd: Command, out: &mut Output) -> CliResult {
    match cmd {
        Command::Init(a) => init::run(a, out),
        Command::Write(a) => write::run(a),
        Command::Read(a) => read::run(a, out),
        Command::Rewind(a) => read::rewind(a, out),
        Command::Status(a) => status::run(a, out),
        Command::Tee(a) => tee::run(a),
        Command::Verify(a) => verify::run(a, out),
        Command::Stream(a) => stream::run(a, out),
        Command::Compact(a) => view::compact(a, out),
        Command::View(c) => view::run(c, out),
        Command::Kv(c) => kv::run(c, out),
        Command::List(c) => list::run(c, out),
        Command::Kafka(c) => kafka::run(c, out),
        Command::User(c) => auth::user(c, out),
        Command::Acl(c) => auth::acl(c, out),
        Command::Serve(a) => serve::run(a),
        Command::Replicate(a) => replicate::run(a),
        Command::Promote(a) => replicate::promote(a, out),
        Command::Bench(a) => crate::bench::run(a, out),
        Command::Demo(a) => demo::run(a, out),
    }
}

/// Opens an existing spool to change it. What recovery repaired, if anything, reaches
/// stderr through the library's `tracing` warnings.
pub fn open_spool(dir: &Path, durability: Durability) -> CliResult<Spool> {
    Ok(Spool::builder(dir)
        .create(false)
        .durability(durability)
        .open()?)
}

/// Opens an existing spool to look at it. Where the directory may be written, as
/// [`open_spool`] (so views save their checkpoints and recovery repairs a torn tail);
/// where it may not (read-only media, a snapshot without write permission), read-only:
/// nothing is written and a torn tail's state is derived privately.
pub fn open_spool_for_reading(dir: &Path) -> CliResult<Spool> {
    match Spool::builder(dir).create(false).open() {
        Err(e) if matches!(e.as_log(), Some(reel::LogError::ReadOnly { .. })) => {
            open_spool_read_only(dir)
        }
        other => Ok(other?),
    }
}

/// Opens an existing spool without ever writing to its directory.
pub fn open_spool_read_only(dir: &Path) -> CliResult<Spool> {
    Ok(Spool::builder(dir).create(false).read_only(true).open()?)
}
