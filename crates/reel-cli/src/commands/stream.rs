//! `reel stream`: records by seq range, as NDJSON.

use crate::cli::StreamArgs;
use crate::error::{CliError, CliResult};
use reel::{StreamOptions, meta_json};
use std::io::{BufWriter, Write};

pub fn run(a: StreamArgs) -> CliResult {
    let spool = super::open_spool(&a.dir, Default::default())?;
    let opts = StreamOptions {
        gt: a.gt,
        gte: a.gte,
        lt: a.lt,
        lte: a.lte,
        reverse: a.reverse,
        limit: a.limit,
        live: a.live,
    };
    let mut out = BufWriter::with_capacity(256 << 10, std::io::stdout().lock());
    for rec in spool.stream(&opts)? {
        let rec = rec?;
        let value = rec.value.to_json()?;
        let line = if a.meta {
            meta_json(rec.seq, rec.ts, rec.key.as_deref(), rec.nonce, &value)?
        } else {
            value
        };
        let written = serde_json::to_writer(&mut out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            // A live stream may block next: followers must see this record now.
            .and_then(|()| if a.live { out.flush() } else { Ok(()) });
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(CliError::Output(e)),
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}
