//! `reel write`: append JSON arguments or NDJSON from stdin.

use crate::cli::WriteArgs;
use crate::error::{CliError, CliResult};
use crate::units::plural;
use reel::{Durability, NewRecord, Spool, Value};
use std::io::BufRead;
use std::ops::Range;

/// Records buffered before an append when input arrives faster than it is written.
const MAX_BATCH: usize = 4096;
const MAX_BATCH_BYTES: usize = 4 << 20;

pub fn run(a: WriteArgs) -> CliResult {
    // `object`: synced locally like `always`, then uploaded before the command succeeds.
    let to_object = a.durability == "object";
    let durability: Durability = if to_object {
        Durability::Always
    } else {
        a.durability.parse().map_err(reel::Error::from)?
    };
    if let Some(r) = crate::remote::target(&a.dir)? {
        if to_object {
            return Err(CliError::Input(
                "--durability object is for a tiered store's writer directory, not a server URL"
                    .into(),
            ));
        }
        return crate::remote::write(&r, &a);
    }
    // A tiered store: refused at once if another directory took over its writing.
    let tier = crate::tier::writer(&a.dir)?;
    if to_object && tier.is_none() {
        return Err(CliError::Input(format!(
            "--durability object needs a store in object storage; {} is not one (reel init --object-store s3://BUCKET/PREFIX DIR)",
            a.dir.display()
        )));
    }
    let spool = super::open_spool(&a.dir, durability)?;
    // While records stream in, upload at the store's interval, so object storage is never
    // far behind a long-running writer.
    let uploader = tier
        .as_ref()
        .filter(|_| a.json.is_empty())
        .map(|w| crate::tier::Periodic::start(&a.dir, w.config().seal_after_ms, None));
    let config = spool.log().config();
    let mut batch = Batch {
        spool: &spool,
        key: a.key.as_deref(),
        records: Vec::new(),
        bytes: 0,
        max: config.max_record_size,
        // A batch is stored whole or refused whole, so it must stay well inside the
        // capacity.
        max_bytes: MAX_BATCH_BYTES.min(usize::try_from(config.capacity / 8).unwrap_or(usize::MAX)),
        stored: None,
        uploader: uploader.as_ref(),
    };
    let result = write_all(&a, &mut batch);
    let result = result.and_then(|()| {
        if durability == Durability::Batch {
            spool.sync()?;
        }
        match &tier {
            Some(w) => crate::tier::upload(w, spool.log()),
            None => Ok(()),
        }
    });
    // Whatever stopped the command, say exactly what it stored before that.
    result.map_err(|e| match e {
        CliError::Input(msg) => CliError::Input(format!("{msg}; {}", batch.stored_summary())),
        CliError::Reel(e) => CliError::Input(format!("{e}; {}", batch.stored_summary())),
        other => other,
    })
}

fn write_all(a: &WriteArgs, batch: &mut Batch<'_>) -> CliResult {
    if !a.json.is_empty() {
        for (i, arg) in a.json.iter().enumerate() {
            batch.push(arg, &format!("argument {}", i + 1))?;
        }
        batch.flush()?;
    } else {
        let mut input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock());
        let mut line = String::new();
        let mut lineno = 0u64;
        loop {
            line.clear();
            let n = match input.read_line(&mut line) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    batch.flush()?;
                    return Err(CliError::Input(format!(
                        "line {}: not valid UTF-8",
                        lineno + 1
                    )));
                }
                Err(e) => {
                    batch.flush()?;
                    return Err(CliError::Input(format!("cannot read stdin: {e}")));
                }
            };
            if n == 0 {
                break;
            }
            lineno += 1;
            // JSON's whitespace only: a line of other blanks (\v, \f) is not JSON.
            let text = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if text.is_empty() {
                continue;
            }
            batch.push(text, &format!("line {lineno}"))?;
            // Append now when no more input is waiting: interactive input is not delayed.
            if batch.records.len() >= MAX_BATCH
                || batch.bytes >= batch.max_bytes
                || input.buffer().is_empty()
            {
                batch.flush()?;
            }
        }
        batch.flush()?;
    }
    Ok(())
}

struct Batch<'a> {
    spool: &'a Spool,
    key: Option<&'a str>,
    records: Vec<NewRecord>,
    bytes: usize,
    max: u64,
    /// Frame bytes buffered before an append.
    max_bytes: usize,
    /// Seqs from the first to one past the last record this command stored, and how
    /// many it stored (fewer than the range when other writers appended in between).
    stored: Option<(Range<u64>, u64)>,
    /// A streaming writer's uploads: once they find the store fenced, nothing more is
    /// appended.
    uploader: Option<&'a crate::tier::Periodic>,
}

impl Batch<'_> {
    /// Parses one JSON text; on bad input, stores what came before and fails.
    fn push(&mut self, text: &str, what: &str) -> CliResult {
        let parsed = reel::parse_json(text.as_bytes());
        let value = match parsed {
            Ok(v) => Value::json(&v),
            Err(e) => {
                self.flush()?;
                return Err(CliError::Input(format!(
                    "{what}: invalid JSON: {e}; none after it was stored"
                )));
            }
        };
        let size = value.as_bytes().len() + self.key.map_or(0, str::len);
        if size as u64 > self.max {
            self.flush()?;
            return Err(CliError::Input(format!(
                "{what}: record of {size} bytes exceeds the maximum record size of {} bytes; none after it was stored",
                self.max
            )));
        }
        // Frame header and optional fields included, as the capacity counts them.
        self.bytes += size + 44;
        let mut rec = NewRecord::new(value);
        rec.key = self.key.map(str::to_string);
        self.records.push(rec);
        Ok(())
    }

    fn flush(&mut self) -> CliResult {
        if self.records.is_empty() {
            return Ok(());
        }
        if let Some(u) = self.uploader {
            u.check()?;
        }
        match self.spool.append_batch(&self.records) {
            Ok(seqs) => self.stored(seqs),
            // A batch that does not fit as a whole: store as many of its records as fit,
            // one by one, so that the error says exactly where the input stopped.
            Err(e) if self.records.len() > 1 && no_room(&e) => {
                let records = std::mem::take(&mut self.records);
                for r in &records {
                    let seqs = self.spool.append_batch([r])?;
                    self.stored(seqs);
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.records.clear();
        self.bytes = 0;
        Ok(())
    }

    fn stored(&mut self, seqs: Range<u64>) {
        let n = seqs.end - seqs.start;
        self.stored = Some(match self.stored.take() {
            Some((s, count)) => (s.start..seqs.end, count + n),
            None => (seqs, n),
        });
    }

    /// "stored 3 records before it (seq 10 to 12)" or "no record was stored".
    fn stored_summary(&self) -> String {
        stored_summary(&self.stored)
    }
}

/// What a `write` stored before it stopped: "stored 3 records before it (seq 10 to 12)"
/// or "no record was stored". `stored`: seqs from the first to one past the last record
/// stored, and how many (fewer than the range when other writers appended in between).
pub fn stored_summary(stored: &Option<(Range<u64>, u64)>) -> String {
    match stored {
        Some((s, n)) if *n > 0 => format!(
            "stored {} before it ({} {} to {})",
            plural(*n, "record"),
            if s.end - s.start == *n {
                "seq"
            } else {
                "between seq"
            },
            s.start,
            s.end - 1
        ),
        _ => "no record was stored".into(),
    }
}

/// The spool or the disk is full (an append of fewer bytes may still fit).
fn no_room(e: &reel::Error) -> bool {
    matches!(
        e.as_log(),
        Some(reel::LogError::Full { .. } | reel::LogError::DiskFull { .. })
    )
}
