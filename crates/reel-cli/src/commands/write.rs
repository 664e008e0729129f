//! `reel write`: append JSON arguments or NDJSON from stdin.

use crate::cli::WriteArgs;
use crate::error::{CliError, CliResult};
use reel::{Durability, NewRecord, Spool, Value};
use std::io::BufRead;

/// Records buffered before an append when input arrives faster than it is written.
const MAX_BATCH: usize = 4096;
const MAX_BATCH_BYTES: usize = 4 << 20;

pub fn run(a: WriteArgs) -> CliResult {
    let durability: Durability = a.durability.parse().map_err(reel::Error::from)?;
    let spool = super::open_spool(&a.dir, durability)?;
    let config = spool.log().config();
    let mut batch = Batch {
        spool: &spool,
        key: a.key.as_deref(),
        records: Vec::new(),
        bytes: 0,
        max: config.max_record_size,
    };
    // A batch is stored whole or refused whole, so it must stay well inside the capacity.
    let max_batch_bytes =
        MAX_BATCH_BYTES.min(usize::try_from(config.capacity / 8).unwrap_or(usize::MAX));
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
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            batch.push(text, &format!("line {lineno}"))?;
            // Append now when no more input is waiting: interactive input is not delayed.
            if batch.records.len() >= MAX_BATCH
                || batch.bytes >= max_batch_bytes
                || input.buffer().is_empty()
            {
                batch.flush()?;
            }
        }
        batch.flush()?;
    }
    if durability == Durability::Batch {
        spool.sync()?;
    }
    Ok(())
}

struct Batch<'a> {
    spool: &'a Spool,
    key: Option<&'a str>,
    records: Vec<NewRecord>,
    bytes: usize,
    max: u64,
}

impl Batch<'_> {
    /// Parses one JSON text; on bad input, stores what came before and fails.
    fn push(&mut self, text: &str, what: &str) -> CliResult {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(text);
        let value = match parsed {
            Ok(v) => Value::json(&v),
            Err(e) => {
                self.flush()?;
                return Err(CliError::Input(format!(
                    "{what}: invalid JSON: {e}; records before it were stored, none after"
                )));
            }
        };
        let size = value.as_bytes().len() + self.key.map_or(0, str::len);
        if size as u64 > self.max {
            self.flush()?;
            return Err(CliError::Input(format!(
                "{what}: record of {size} bytes exceeds the maximum record size of {} bytes; records before it were stored, none after",
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
        if !self.records.is_empty() {
            self.spool.append_batch(&self.records)?;
            self.records.clear();
            self.bytes = 0;
        }
        Ok(())
    }
}
