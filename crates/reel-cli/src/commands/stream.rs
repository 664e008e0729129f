//! `reel stream`: records by seq range, as NDJSON.

use crate::cli::StreamArgs;
use crate::error::CliResult;
use crate::output::Output;
use reel::StreamOptions;

pub fn run(a: StreamArgs, out: &mut Output) -> CliResult {
    if let Some(r) = crate::remote::target(&a.dir)? {
        return crate::remote::stream(&r, &a, out);
    }
    let spool = super::open_spool_for_reading(&a.dir)?;
    let opts = StreamOptions {
        gt: a.gt,
        gte: a.gte,
        lt: a.lt,
        lte: a.lte,
        reverse: a.reverse,
        limit: a.limit,
        live: a.live,
    };
    for rec in spool.stream(&opts)? {
        let rec = rec?;
        if a.meta {
            out.json_line(&rec.to_json_meta()?)?;
        } else {
            out.json_line(&rec.value.to_json()?)?;
        }
        if a.live {
            // A live stream may block next: followers must see this record now.
            out.flush()?;
        }
    }
    Ok(())
}
