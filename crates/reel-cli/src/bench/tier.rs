//! `reel bench --object-store s3://BUCKET/PREFIX`: a tiered store against a real object
//! store (the `AWS_*` environment names it), next to the raw limit of the same client
//! and server in the same run:
//! - raw: create-only puts of 16 MiB objects through `object_store`, bytes/s;
//! - upload: a local log of ~100-byte records uploaded by the tier (one group commit),
//!   bytes/s and records/s, and its ratio to raw;
//! - stateless read: a new local copy fetched from object storage (records/s), then
//!   read from that copy (records/s once fetched);
//! - durability `object`: 2048 threads each appending one record and waiting until a
//!   manifest names an object holding it, uploads every 250 ms: latency p50/p99 and
//!   appends per object.

use super::http::{io, percentile};
use crate::error::CliResult;
use crate::output::{Output, note};
use reel_tier::committer::Committer;
use reel_tier::writer::TierWriter;
use reel_tier::{Tier, TierUrl};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// Appenders waiting for durability `object` at once (each with one record in flight).
const APPENDERS: usize = 2048;

#[derive(Debug, Serialize)]
struct TierReport {
    records: u64,
    raw_put_mib_per_s: f64,
    upload_mib_per_s: f64,
    upload_records_per_s: f64,
    upload_vs_raw: f64,
    fetch_records_per_s: f64,
    read_fetched_records_per_s: f64,
    object_p50_ms: f64,
    object_p99_ms: f64,
    object_appends: u64,
    appends_per_object: f64,
}

fn fill(log: &reel_log::Log, n: u64) -> CliResult {
    let value = format!("{{\"user\":\"someone\",\"pad\":\"{}\"}}", "x".repeat(60));
    let mut i = 0;
    while i < n {
        let k = (n - i).min(1000);
        let entries: Vec<reel_log::Entry<'_>> = (0..k)
            .map(|_| reel_log::Entry {
                ts: None,
                key: None,
                nonce: None,
                encoding: 0,
                value: value.as_bytes(),
            })
            .collect();
        log.append(&entries).map_err(reel::Error::from)?;
        i += k;
    }
    Ok(())
}

fn new_log(dir: &Path, n: u64) -> CliResult<reel_log::Log> {
    Ok(reel_log::LogOptions::new()
        .create(reel_log::Config::with_capacity(
            (n * 400).max(256 << 20),
            reel_log::WhenFull::DropOldest,
        ))
        .kind(reel_log::StoreKind::Spool)
        .open(dir)
        .map_err(reel::Error::from)?)
}

pub fn run(work: &Path, url: &str, records: u64, json: bool, out: &mut Output) -> CliResult {
    let say = |s: &str| {
        if !json {
            note(format_args!("{s}"));
        }
    };
    let n = records.clamp(10_000, 10_000_000);
    let base: TierUrl = url.parse()?;
    let run_id = format!("bench-{}-{}", std::process::id(), reel_log::now_micros());
    let at = |what: &str| -> CliResult<TierUrl> { Ok(format!("{base}/{run_id}/{what}").parse()?) };

    say("object store: raw create-only puts of 16 MiB objects...");
    let raw = Tier::connect(&at("raw")?)?;
    let blob = vec![0x5au8; 16 << 20];
    let t = Instant::now();
    for i in 0..8 {
        raw.put_object(&format!("data/raw-{i}"), blob.clone())?;
    }
    let raw_bps = (8 * blob.len()) as f64 / t.elapsed().as_secs_f64();

    say("object store: uploading a filled local log...");
    let dir = work.join("tier-writer");
    let log = new_log(&dir, n)?;
    fill(&log, n)?;
    let w = TierWriter::create(Tier::connect(&at("store")?)?, &dir, &log, 2000, None)?;
    let t = Instant::now();
    let up = w.upload(&log)?;
    let up_secs = t.elapsed().as_secs_f64();

    say("object store: a stateless reader fetches and reads it...");
    let cache = work.join("tier-cache");
    let t = Instant::now();
    reel_tier::reader::sync_cache(&Tier::connect(&at("store")?)?, &cache)?;
    let fetch_secs = t.elapsed().as_secs_f64();
    let copy = reel_log::LogOptions::new()
        .read_only(true)
        .open(&cache)
        .map_err(reel::Error::from)?;
    let t = Instant::now();
    let mut r = copy.reader(0);
    let mut got = 0u64;
    loop {
        let b = r.read_batch(4096).map_err(reel::Error::from)?;
        if b.is_empty() {
            break;
        }
        got += b.len() as u64;
    }
    let read_secs = t.elapsed().as_secs_f64();
    if got != n {
        return Err(io(format!("the copy holds {got} records, not {n}")));
    }

    say("object store: durability object, 2048 appenders, uploads every 250 ms...");
    let before = w.check()?.manifest.objects.len();
    let committer = Committer::start(w, log.clone(), Duration::from_millis(250))?;
    let window = Duration::from_secs(5);
    let latencies: Vec<f64> = std::thread::scope(|s| -> CliResult<Vec<f64>> {
        let hs: Vec<_> = (0..APPENDERS)
            .map(|_| {
                let (log, committer) = (&log, &committer);
                s.spawn(move || -> CliResult<Vec<f64>> {
                    let start = Instant::now();
                    let mut lat = Vec::new();
                    while start.elapsed() < window {
                        let t = Instant::now();
                        let seq = log
                            .append(&[reel_log::Entry {
                                ts: None,
                                key: None,
                                nonce: None,
                                encoding: 0,
                                value: b"{\"durable\":true}",
                            }])
                            .map_err(reel::Error::from)?
                            .start;
                        committer.wait_durable(seq, Duration::from_secs(30))?;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(lat)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in hs {
            all.extend(h.join().map_err(|_| io("an appender panicked"))??);
        }
        Ok(all)
    })?;
    drop(committer);
    let w = TierWriter::open(&dir)?.ok_or_else(|| io("the writer directory lost reel.tier"))?;
    let objects = w
        .check()?
        .manifest
        .objects
        .len()
        .saturating_sub(before)
        .max(1);
    let mut lat = latencies;
    let appends = lat.len() as u64;

    let mib = |b: f64| b / (1u64 << 20) as f64;
    let report = TierReport {
        records: n,
        raw_put_mib_per_s: mib(raw_bps),
        upload_mib_per_s: mib(up.bytes as f64 / up_secs),
        upload_records_per_s: n as f64 / up_secs,
        upload_vs_raw: (up.bytes as f64 / up_secs) / raw_bps,
        fetch_records_per_s: n as f64 / fetch_secs,
        read_fetched_records_per_s: n as f64 / read_secs,
        object_p50_ms: percentile(&mut lat, 0.5),
        object_p99_ms: percentile(&mut lat, 0.99),
        object_appends: appends,
        appends_per_object: appends as f64 / objects as f64,
    };
    if json {
        out.json_line(&report)?;
        return Ok(());
    }
    let r = &report;
    out.line(format_args!(
        "reel bench --object-store: {url}, {n} records of ~100 bytes"
    ))?;
    out.line(format_args!(
        "  raw puts (16 MiB objects)       {:>8.1} MiB/s",
        r.raw_put_mib_per_s
    ))?;
    out.line(format_args!(
        "  upload of the log               {:>8.1} MiB/s ({:.2} M records/s, {:.0}% of raw)",
        r.upload_mib_per_s,
        r.upload_records_per_s / 1e6,
        100.0 * r.upload_vs_raw
    ))?;
    out.line(format_args!(
        "  stateless read: fetch + append  {:>8.2} M records/s; read once fetched {:.2} M records/s",
        r.fetch_records_per_s / 1e6,
        r.read_fetched_records_per_s / 1e6
    ))?;
    out.line(format_args!(
        "  durability object (2048 threads) p50 {:.0} ms  p99 {:.0} ms  ({} appends, {:.0} per object)",
        r.object_p50_ms, r.object_p99_ms, r.object_appends, r.appends_per_object
    ))?;
    Ok(())
}
