//! `reel read` and `reel rewind`: a named reader's records as NDJSON, and moving it.

use crate::cli::{ReadArgs, RewindArgs};
use crate::error::{CliError, CliResult};
use reel::{RecordRef, Spool, meta_json, value_json};
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

pub fn run(a: ReadArgs) -> CliResult {
    let spool = super::open_spool(&a.dir, Default::default())?;
    let mut reader = spool.reader(&a.reader)?;
    let mut out = BufWriter::with_capacity(256 << 10, std::io::stdout().lock());
    let idle = match a.timeout {
        Some(t) if !(t >= 0.0 && t.is_finite()) => {
            return Err(CliError::Input(format!("invalid --timeout {t}")));
        }
        Some(t) => Some(Duration::from_secs_f64(t)),
        None => None,
    };
    let mut printed = 0u64;
    let mut line = Vec::with_capacity(4096);
    loop {
        let want = a.count.map_or(4096, |c| (c - printed).min(4096));
        if want == 0 {
            break;
        }
        let committed = reader.position();
        let mut failure: Option<CliError> = None;
        let got = reader.read_with(want as usize, |r| {
            if failure.is_none()
                && let Err(e) = print_record(&mut out, &mut line, r, a.meta)
            {
                failure = Some(e);
            }
        });
        let n = match got {
            Ok(n) => n,
            Err(e) => {
                reader.commit()?;
                return Err(damage_hint(e, &spool, &a.reader, reader.position(), &a.dir));
            }
        };
        if failure.is_none()
            && n > 0
            && let Err(e) = out.flush()
        {
            failure = Some(e.into());
        }
        if let Some(e) = failure {
            // Nothing unprinted may be marked as read.
            reader.seek(committed);
            if matches!(&e, CliError::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe) {
                return Ok(());
            }
            return Err(e);
        }
        if n > 0 {
            reader.commit()?;
            printed += n as u64;
            continue;
        }
        if a.no_wait {
            break;
        }
        let deadline = idle.map(|d| Instant::now() + d);
        if !reader.wait(deadline) {
            break;
        }
    }
    Ok(())
}

fn print_record(
    out: &mut impl Write,
    line: &mut Vec<u8>,
    r: &RecordRef<'_>,
    meta: bool,
) -> CliResult {
    let value = value_json(r)?;
    line.clear();
    if meta {
        serde_json::to_writer(&mut *line, &meta_json(r.seq, r.ts, r.key, r.nonce, &value)?)
            .map_err(std::io::Error::from)?;
    } else {
        serde_json::to_writer(&mut *line, &value).map_err(std::io::Error::from)?;
    }
    line.push(b'\n');
    out.write_all(line)?;
    Ok(())
}

/// Adds to a corruption error the command that skips the damage.
fn damage_hint(
    e: reel::Error,
    spool: &Spool,
    reader: &str,
    position: u64,
    dir: &std::path::Path,
) -> CliError {
    if !matches!(e.as_log(), Some(reel_log::Error::Corrupt { .. })) {
        return e.into();
    }
    match spool.resume_after_damage(position) {
        Ok(next) => CliError::Input(format!(
            "{e}; records from seq {position} cannot be read; to skip them run: reel rewind --reader {reader} --to-seq {next} {}",
            dir.display()
        )),
        Err(_) => e.into(),
    }
}

pub fn rewind(a: RewindArgs) -> CliResult {
    let spool = super::open_spool(&a.dir, Default::default())?;
    let mut reader = spool.reader(&a.reader)?;
    match (a.to_seq, a.to_time) {
        (Some(seq), _) => {
            if seq > spool.next_seq() {
                return Err(CliError::Input(format!(
                    "seq {seq} is past the end of the spool (next seq is {})",
                    spool.next_seq()
                )));
            }
            reader.seek(seq);
        }
        (None, Some(ts)) => reader.seek_time(ts)?,
        (None, None) => reader.rewind(),
    }
    reader.commit()?;
    let pos = reader.position();
    let unread = spool.next_seq().saturating_sub(pos);
    println!(
        "reader {} now at seq {pos} ({unread} records to read)",
        a.reader
    );
    Ok(())
}
