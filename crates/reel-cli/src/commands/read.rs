//! `reel read` and `reel rewind`: a named reader's records as NDJSON, and moving it.
//!
//! `read` commits only what its consumer has taken. Every printed record's end is
//! remembered as a byte offset in the output; a record counts as read once the bytes up
//! to its end left the process *and* the pipe: when stdout is a pipe, the bytes still in
//! the pipe buffer (FIONREAD) are not consumed yet. On a closed pipe (EPIPE, or poll
//! reporting the reading end gone) the commit stops at what the consumer had taken;
//! before a normal exit `read` waits until the pipe is drained or closed.
//!
//! A pipe cannot say what its consumer did with what it took. `head -1` takes one read
//! buffer and prints a line of it; the rest of that buffer was taken, so it counts as
//! read. To keep that read-ahead small, a run starts by handing out 1 record, waiting
//! until it was taken, then 2, 4, ... (as TCP's slow start does), until a window fills
//! the pipe: `head -1` and `head -3` then take exactly what they print.

use crate::cli::{ReadArgs, RewindArgs};
use crate::error::{CliError, CliResult};
use crate::output::{Drain, Output};
use reel::{RecordRef, Spool, meta_json, value_json};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Records per read from the spool.
const BATCH: u64 = 4096;
/// While caught up and following, how often to commit what the consumer took since.
const RECHECK: Duration = Duration::from_millis(200);
/// The slow start ends once one window is this many bytes (a default pipe's capacity).
const FULL_WINDOW_BYTES: u64 = 64 << 10;

pub fn run(a: ReadArgs, out: &mut Output) -> CliResult {
    let idle = parse_timeout(a.timeout)?;
    if let Some(r) = crate::remote::target(&a.dir)? {
        return crate::remote::read(&r, &a, out);
    }
    if a.group.is_some() {
        return Err(CliError::Input(
            "--group needs a server URL (share groups are kept by `reel serve`)".into(),
        ));
    }
    let spool = super::open_spool(&a.dir, Default::default())?;
    let reader = spool.reader(&a.reader)?;
    let mut s = Session {
        ends: VecDeque::new(),
        window: out.is_pipe().then_some(1),
        printed_to: reader.position(),
        reader,
        out,
    };
    let pumped = s.pump(&a, idle);
    let finished = s.finish(matches!(&pumped, Err(e) if e.is_broken_pipe()));
    match (pumped, finished) {
        (Err(e), _) if e.is_broken_pipe() => Ok(()),
        (Err(e), _) => Err(damage_hint(e, &spool, &a.reader, s.printed_to, &a.dir)),
        (Ok(()), f) => f,
    }
}

/// `--timeout SECS` as a duration; `None` for no limit (also for more seconds than a
/// deadline can express).
fn parse_timeout(t: Option<f64>) -> CliResult<Option<Duration>> {
    match t {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(CliError::Input(format!(
            "invalid --timeout {t}: expected seconds, 0 or more"
        ))),
        Some(t) => Ok(Duration::try_from_secs_f64(t).ok()),
    }
}

/// One run of `reel read`: the reader, the output, and where each printed record ends.
struct Session<'o> {
    reader: reel::Reader,
    out: &'o mut Output,
    /// For each printed record not yet committed: the output offset where its line
    /// ends, and the seq after it.
    ends: VecDeque<(u64, u64)>,
    /// Slow start: records in the next window; `None` once windows fill the pipe (or
    /// stdout is no pipe).
    window: Option<u64>,
    /// The seq after the last printed record.
    printed_to: u64,
}

impl Session<'_> {
    fn pump(&mut self, a: &ReadArgs, idle: Option<Duration>) -> CliResult {
        let mut printed = 0u64;
        let mut line = Vec::with_capacity(4096);
        loop {
            // A reader of a store in object storage whose name another reader took (its
            // lease lapsed) stops: both would hand out the same records.
            crate::tier::check_reader_lease()?;
            let left = a.count.map_or(u64::MAX, |c| c.saturating_sub(printed));
            let want = left.min(BATCH).min(self.window.unwrap_or(u64::MAX));
            if want == 0 {
                return Ok(());
            }
            let start = self.out.pushed();
            let mut failure: Option<CliError> = None;
            let (out, ends, printed_to) = (&mut *self.out, &mut self.ends, &mut self.printed_to);
            let got = self.reader.read_with(want as usize, |r| {
                if failure.is_some() {
                    return;
                }
                match print_record(out, &mut line, r, a.meta) {
                    Ok(()) => {
                        ends.push_back((out.pushed(), r.seq + 1));
                        *printed_to = r.seq + 1;
                    }
                    Err(e) => failure = Some(e),
                }
            });
            let n = got?;
            if let Some(e) = failure {
                return Err(e);
            }
            if n > 0 {
                printed += n as u64;
                self.out.flush()?;
                if let Some(w) = self.window {
                    // Hand out the next window only once this one was taken.
                    if self.out.wait_drained(None) == Drain::Closed {
                        return Err(broken_pipe());
                    }
                    let bytes = self.out.pushed() - start;
                    self.window = (bytes < FULL_WINDOW_BYTES && w < BATCH).then_some(w * 2);
                }
                self.commit_consumed()?;
                continue;
            }
            if a.no_wait {
                return Ok(());
            }
            // Caught up: wait for records, committing what the consumer took meanwhile.
            let deadline = idle.and_then(|d| Instant::now().checked_add(d));
            loop {
                let step = Instant::now() + RECHECK;
                if self
                    .reader
                    .wait(Some(deadline.map_or(step, |d| d.min(step))))
                {
                    break;
                }
                self.commit_consumed()?;
                crate::tier::check_reader_lease()?;
                if self.out.consumer_gone() {
                    return Err(broken_pipe());
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(());
                }
            }
        }
    }

    /// Commits every printed record the consumer has taken.
    fn commit_consumed(&mut self) -> CliResult {
        let consumed = self.out.consumed();
        let mut upto = None;
        while let Some(&(end, next)) = self.ends.front() {
            if end > consumed {
                break;
            }
            upto = Some(next);
            self.ends.pop_front();
        }
        let Some(seq) = upto else { return Ok(()) };
        // The reader has read ahead of what was taken: commit at `seq`, then go back.
        let resume = self.reader.position();
        if seq != resume {
            self.reader.seek(seq);
        }
        let committed = self.reader.commit();
        if seq != resume {
            self.reader.seek(resume);
        }
        Ok(committed?)
    }

    /// Ends the run: writes out what is buffered, waits until the consumer took it or
    /// went away, commits what it took, and leaves the reader there (its drop commits
    /// its position).
    fn finish(&mut self, closed: bool) -> CliResult {
        let flushed = if closed { Ok(()) } else { self.out.flush() };
        self.out.wait_drained(None);
        let committed = self.commit_consumed();
        // The next run starts at the first record the consumer did not take (its entry
        // holds the seq after it), or after the last one printed.
        let stop = self
            .ends
            .front()
            .map_or(self.printed_to, |&(_, next)| next - 1);
        if self.reader.position() != stop {
            self.reader.seek(stop);
        }
        match flushed {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => committed,
        }
    }
}

fn broken_pipe() -> CliError {
    CliError::Output(std::io::ErrorKind::BrokenPipe.into())
}

fn print_record(out: &mut Output, line: &mut Vec<u8>, r: &RecordRef<'_>, meta: bool) -> CliResult {
    let value = value_json(r)?;
    line.clear();
    if meta {
        serde_json::to_writer(
            &mut *line,
            &meta_json(r.seq, r.ts, r.key, r.nonce, r.encoding, &value)?,
        )?;
    } else {
        serde_json::to_writer(&mut *line, &value)?;
    }
    line.push(b'\n');
    out.bytes(line)?;
    Ok(())
}

/// Adds to a corruption error the command that skips the damage.
fn damage_hint(
    e: CliError,
    spool: &Spool,
    reader: &str,
    position: u64,
    dir: &std::path::Path,
) -> CliError {
    let CliError::Reel(e) = e else { return e };
    if !matches!(e.as_log(), Some(reel::LogError::Corrupt { .. })) {
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

pub fn rewind(a: RewindArgs, out: &mut Output) -> CliResult {
    if let Some(r) = crate::remote::target(&a.dir)? {
        return crate::remote::rewind(&r, &a, out);
    }
    let spool = super::open_spool(&a.dir, Default::default())?;
    let mut reader = spool.reader(&a.reader)?;
    reader.move_to(reel::MoveTo::from_options(a.to_seq, a.to_time))?;
    let pos = reader.position();
    let unread = spool.records_from(pos)?;
    out.line(format_args!(
        "reader {} now at seq {pos} ({} to read)",
        a.reader,
        crate::units::plural(unread, "record")
    ))?;
    Ok(())
}
