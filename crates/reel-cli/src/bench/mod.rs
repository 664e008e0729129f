//! `reel bench`: throughput and wake-up latency of this build on this disk, measured next
//! to the raw limit of the same disk in the same run, so the figures are ratios rather
//! than boasts. Every figure comes from one timed run; run it twice to see the noise.

mod http;
mod kafka;
mod replica;
pub mod scale;
mod tier;
mod wake;

use crate::cli::BenchArgs;
use crate::error::{CliError, CliResult};
use crate::output::{Output, note};
use reel::{Durability, Entry, NewRecord, Spool, Value, WhenFull};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Appends per batch in the batched append figure.
const BATCH: usize = 1000;
/// Largest `--value-size`: the default maximum record size.
const MAX_VALUE_SIZE: usize = 16 << 20;

#[derive(Debug, Serialize)]
struct Report {
    records: u64,
    value_size: usize,
    dir: PathBuf,
    /// Batched appends (1000 per call) of pre-encoded values, one thread, durability none.
    append_per_s: f64,
    /// One append call per record, one thread, durability none.
    append_single_per_s: f64,
    /// Batched appends including JSON -> MessagePack encoding of each value.
    append_json_per_s: f64,
    /// Buffered writes of the same frames with a CRC to a plain file: the raw limit.
    raw_append_per_s: f64,
    /// append_per_s / raw_append_per_s.
    append_vs_raw: f64,
    /// Sequential read through a named reader, in place, checksums verified.
    read_per_s: f64,
    /// Sequential read copying every record out (owned `Record`s).
    read_owned_per_s: f64,
    /// 8 threads appending single records with durability batch (background group commit).
    batch8_per_s: f64,
    /// 8 threads appending single records with durability always (each waits for its sync).
    always8_per_s: f64,
    /// Frames written with one fdatasync per 100 records.
    raw_sync100_per_s: f64,
    /// Frames written 100 per write, with an fdatasync every 10 ms: the raw limit of
    /// what durability `batch` promises (synced within 10 ms).
    raw_sync10ms_per_s: f64,
    /// batch8_per_s / raw_sync10ms_per_s: the same durability, so a fair ratio.
    batch8_vs_raw: f64,
    /// Frames written 8 per write, each write followed by an fdatasync: the raw limit of
    /// 8 writers that each wait for their covering sync (durability `always`).
    raw_sync8_per_s: f64,
    /// always8_per_s / raw_sync8_per_s.
    always8_vs_raw: f64,
    /// Opening the filled spool (head valid, as while other processes use it).
    open_ms: f64,
    /// Opening after a reboot or copy (head distrusted, tail segment rescanned).
    recover_open_ms: f64,
    /// Cross-process wake-up: append in this process to delivery in a blocked reader process.
    wake_p50_us: f64,
    /// 99th percentile of the same.
    wake_p99_us: f64,
    /// Worst of the same.
    wake_max_us: f64,
    /// kv set in this process to delivery by a `kv watch` in another process, p50.
    watch_p50_us: f64,
    /// 99th percentile of the same.
    watch_p99_us: f64,
}

pub fn run(a: BenchArgs, out: &mut Output) -> CliResult {
    if let Some(dir) = &a.wake_child {
        return wake::child(dir, a.wakeups, out);
    }
    if let Some(dir) = &a.watch_child {
        return wake::watch_child(dir, a.wakeups, out);
    }
    if let Some(dir) = &a.scale_child {
        return scale::child(dir, a.records, a.scale_store, out);
    }
    if a.records == 0 {
        return Err(CliError::Input("--records must be at least 1".into()));
    }
    if a.value_size > MAX_VALUE_SIZE {
        return Err(CliError::Input(format!(
            "--value-size must be at most {MAX_VALUE_SIZE} bytes (the default maximum record size)"
        )));
    }
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).map_err(CliError::Output)?;
    let work = base.join(format!("reel-bench-{}", std::process::id()));
    let _cleanup = Cleanup(work.clone());
    std::fs::create_dir_all(&work).map_err(CliError::Output)?;
    if !a.scale.is_empty() {
        return scale::run(&a.scale, a.scale_store, &work, a.json, out);
    }
    if a.http {
        return http::run(&work, a.records, a.json, out);
    }
    if a.replication {
        return replica::run(&work, a.records, a.json, out);
    }
    if let Some(url) = &a.object_store {
        return tier::run(&work, url, a.records, a.json, out);
    }
    if let Some(brokers) = &a.kafka {
        return kafka::run(
            &work,
            brokers,
            a.records,
            &a.kafka_produce_batch,
            a.value_size,
            a.json,
            out,
        );
    }
    let say = |s: &str| {
        if !a.json {
            note(format_args!("{s}"));
        }
    };

    let values = sample_values(a.records.min(100_000), a.value_size);
    let n = a.records;
    let capacity = n
        .saturating_mul((a.value_size as u64).saturating_add(64))
        .saturating_mul(2)
        .max(64 << 20);
    let open = |name: &str, durability: Durability| -> CliResult<Spool> {
        Ok(Spool::builder(work.join(name))
            .capacity(capacity)
            .when_full(WhenFull::DropOldest)
            .durability(durability)
            .open()?)
    };

    let encoded: Vec<Value> = values.iter().map(Value::json).collect();
    let frame_len = 28 + encoded.first().map_or(0, |v| v.as_bytes().len());
    // The raw limit first, with no dirty pages left by anything else, best of three: it
    // is the denominator of every ratio, so it must not be the noisy one.
    say("raw limit: buffered frames with CRC to a plain file (best of 3)...");
    let _ = std::process::Command::new("sync").status();
    let mut raw_append_per_s = 0f64;
    for _ in 0..3 {
        raw_append_per_s = raw_append_per_s.max(raw_append(&work.join("raw.bin"), n, frame_len)?);
    }

    say("appending (batched)...");
    let spool = open("main", Durability::None)?;
    let t = Instant::now();
    let mut done = 0u64;
    while done < n {
        let k = (n - done).min(BATCH as u64) as usize;
        let entries: Vec<Entry<'_>> = (0..k)
            .map(|i| {
                let v = &encoded[(done as usize + i) % encoded.len()];
                Entry {
                    encoding: v.encoding().tag(),
                    value: v.as_bytes(),
                    ..Default::default()
                }
            })
            .collect();
        spool.append_entries(&entries)?;
        done += k as u64;
    }
    let append_per_s = n as f64 / t.elapsed().as_secs_f64();

    say("appending (one call per record)...");
    let single = open("single", Durability::None)?;
    let m = (n / 4).max(1);
    let t = Instant::now();
    for i in 0..m {
        let v = &encoded[i as usize % encoded.len()];
        single.append_entries(&[Entry {
            encoding: v.encoding().tag(),
            value: v.as_bytes(),
            ..Default::default()
        }])?;
    }
    let append_single_per_s = m as f64 / t.elapsed().as_secs_f64();

    say("appending (with JSON encoding)...");
    let js = open("json", Durability::None)?;
    let t = Instant::now();
    let mut done = 0u64;
    while done < m {
        let k = (m - done).min(BATCH as u64) as usize;
        let recs: Vec<NewRecord> = (0..k)
            .map(|i| NewRecord::new(&values[(done as usize + i) % values.len()]))
            .collect();
        js.append_batch(&recs)?;
        done += k as u64;
    }
    let append_json_per_s = m as f64 / t.elapsed().as_secs_f64();

    say("reading...");
    let t = Instant::now();
    let mut reader = spool.reader("bench")?;
    let mut read = 0u64;
    let mut checksum = 0u64;
    while read < n {
        let k = reader.read_with(8192, |r| {
            checksum = checksum.wrapping_add(r.value.len() as u64)
        })?;
        if k == 0 {
            break;
        }
        read += k as u64;
    }
    let read_per_s = read as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    reader.rewind();
    let t = Instant::now();
    let mut owned = 0u64;
    while owned < n {
        let b = reader.next_batch(8192, None)?;
        if b.is_empty() {
            break;
        }
        owned += b.len() as u64;
    }
    let read_owned_per_s = owned as f64 / t.elapsed().as_secs_f64();
    drop(reader);

    say("opening the filled spool...");
    drop(spool);
    let t = Instant::now();
    let reopened = Spool::open(work.join("main"))?;
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    drop(reopened);
    std::fs::remove_file(work.join("main").join(reel::HEAD_FILE)).map_err(CliError::Output)?;
    let t = Instant::now();
    let reopened = Spool::open(work.join("main"))?;
    let recover_open_ms = t.elapsed().as_secs_f64() * 1000.0;
    drop(reopened);

    say("group commit: 8 threads, durability batch and always...");
    // Start the sync-bound measurements with no dirty pages left over from the ones above.
    let _ = std::process::Command::new("sync").status();
    // Long enough runs that thread start-up and the first append's tail check vanish.
    let gc_records = (n / 2).clamp(8000, 400_000);
    let batch8_per_s = threaded(
        &open("batch8", Durability::Batch)?,
        8,
        gc_records,
        &encoded,
        true,
    )?;
    let always8_per_s = threaded(
        &open("always8", Durability::Always)?,
        8,
        (gc_records / 20).max(800),
        &encoded,
        false,
    )?;
    let raw_sync100_per_s = raw_sync(
        &work.join("rawsync.bin"),
        (gc_records / 5).max(2000),
        frame_len,
        100,
        None,
    )?;
    let raw_sync10ms_per_s = raw_sync(
        &work.join("rawsync10ms.bin"),
        gc_records,
        frame_len,
        100,
        Some(reel::BATCH_INTERVAL),
    )?;
    let raw_sync8_per_s = raw_sync(
        &work.join("rawsync8.bin"),
        (gc_records / 20).max(800),
        frame_len,
        8,
        None,
    )?;

    say("cross-process wake-up...");
    let (wake_p50_us, wake_p99_us, wake_max_us) =
        wake::parent(&work.join("wake"), a.wakeups, wake::Mode::Log)?;
    say("kv watch across processes...");
    let (watch_p50_us, watch_p99_us, _) =
        wake::parent(&work.join("watch"), a.wakeups, wake::Mode::KvWatch)?;

    let report = Report {
        records: n,
        value_size: a.value_size,
        dir: base,
        append_per_s,
        append_single_per_s,
        append_json_per_s,
        raw_append_per_s,
        append_vs_raw: append_per_s / raw_append_per_s,
        read_per_s,
        read_owned_per_s,
        batch8_per_s,
        always8_per_s,
        raw_sync100_per_s,
        raw_sync10ms_per_s,
        batch8_vs_raw: batch8_per_s / raw_sync10ms_per_s,
        raw_sync8_per_s,
        always8_vs_raw: always8_per_s / raw_sync8_per_s,
        open_ms,
        recover_open_ms,
        wake_p50_us,
        wake_p99_us,
        wake_max_us,
        watch_p50_us,
        watch_p99_us,
    };
    if a.json {
        out.json_line(&report)?;
    } else {
        print_table(&report, out)?;
    }
    Ok(())
}

fn print_table(r: &Report, out: &mut Output) -> std::io::Result<()> {
    let m = |x: f64| format!("{:.2} M/s", x / 1e6);
    macro_rules! println {
        ($($t:tt)*) => { out.line(format_args!($($t)*))? };
    }
    println!(
        "reel bench: {} records of ~{} bytes in {}",
        r.records,
        r.value_size,
        r.dir.display()
    );
    println!(
        "  append, batched (1000/call)     {:>12}   {:.0}% of raw",
        m(r.append_per_s),
        r.append_vs_raw * 100.0
    );
    println!(
        "  append, one call per record     {:>12}",
        m(r.append_single_per_s)
    );
    println!(
        "  append, JSON encoded, batched   {:>12}",
        m(r.append_json_per_s)
    );
    println!(
        "  raw limit: buffered frames+CRC  {:>12}",
        m(r.raw_append_per_s)
    );
    println!("  read, in place                  {:>12}", m(r.read_per_s));
    println!(
        "  read, owned records             {:>12}",
        m(r.read_owned_per_s)
    );
    println!(
        "  8 threads, durability batch     {:>12}   {:.0}% of raw with a sync every 10 ms",
        m(r.batch8_per_s),
        r.batch8_vs_raw * 100.0
    );
    println!(
        "  8 threads, durability always    {:>12}   {:.0}% of raw with a sync per 8 frames",
        m(r.always8_per_s),
        r.always8_vs_raw * 100.0
    );
    println!(
        "  raw: fdatasync every 10 ms      {:>12}",
        m(r.raw_sync10ms_per_s)
    );
    println!(
        "  raw: fdatasync per 8 frames     {:>12}",
        m(r.raw_sync8_per_s)
    );
    println!(
        "  raw: fdatasync per 100 frames   {:>12}",
        m(r.raw_sync100_per_s)
    );
    println!(
        "  open {:.2} ms, open with recovery {:.2} ms",
        r.open_ms, r.recover_open_ms
    );
    println!(
        "  wake-up across processes        p50 {:.0} us  p99 {:.0} us  max {:.0} us",
        r.wake_p50_us, r.wake_p99_us, r.wake_max_us
    );
    println!(
        "  kv watch across processes       p50 {:.0} us  p99 {:.0} us",
        r.watch_p50_us, r.watch_p99_us
    );
    Ok(())
}

/// ~`size`-byte dictionaries with varying content.
fn sample_values(n: u64, size: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let mut v = serde_json::json!({"id": i, "user": format!("user{}", i % 977), "day": "Wed", "temp": (i % 40) as i64, "ok": i % 3 == 0});
            let base = Value::json(&v).as_bytes().len();
            let pad = size.saturating_sub(base + 8);
            v["pad"] = serde_json::Value::String("x".repeat(pad));
            v
        })
        .collect()
}

/// The raw limit: the same number of frames of the same size, each with a CRC32C,
/// copied into a 1 MiB buffer that is written to a plain file whenever it fills: the
/// work reel's own append path cannot avoid, without its locking, index or publishing.
fn raw_append(path: &Path, n: u64, frame_len: usize) -> CliResult<f64> {
    let frame = vec![0x5au8; frame_len];
    let t = Instant::now();
    let mut f = std::fs::File::create(path).map_err(CliError::Output)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    for i in 0..n {
        let start = buf.len();
        buf.extend_from_slice(&frame);
        buf[start + 12..start + 20].copy_from_slice(&i.to_le_bytes());
        let crc = crc32c::crc32c(&buf[start + 4..]);
        buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        if buf.len() + frame_len > 1 << 20 {
            f.write_all(&buf).map_err(CliError::Output)?;
            buf.clear();
        }
    }
    f.write_all(&buf).map_err(CliError::Output)?;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(path);
    Ok(rate)
}

/// The raw group-commit limit: frames with a CRC, `per_sync` per write, each write
/// followed by an fdatasync, or with `interval`, an fdatasync once that much time passed.
fn raw_sync(
    path: &Path,
    n: u64,
    frame_len: usize,
    per_sync: u64,
    interval: Option<std::time::Duration>,
) -> CliResult<f64> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).map_err(CliError::Output)?;
    let mut buf = Vec::with_capacity(frame_len * per_sync as usize);
    let mut frame = vec![0x5au8; frame_len];
    let t = Instant::now();
    let mut last_sync = t;
    let mut off = 0u64;
    let mut done = 0;
    while done < n {
        buf.clear();
        for i in 0..per_sync {
            frame[12..20].copy_from_slice(&(done + i).to_le_bytes());
            let crc = crc32c::crc32c(&frame[4..]);
            frame[0..4].copy_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&frame);
        }
        f.write_all_at(&buf, off).map_err(CliError::Output)?;
        match interval {
            Some(i) if last_sync.elapsed() < i => {}
            _ => {
                f.sync_data().map_err(CliError::Output)?;
                last_sync = Instant::now();
            }
        }
        off += buf.len() as u64;
        done += per_sync;
    }
    f.sync_data().map_err(CliError::Output)?;
    let rate = done as f64 / t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(path);
    Ok(rate)
}

/// `threads` threads appending `total` single records between them.
fn threaded(
    spool: &Spool,
    threads: u64,
    total: u64,
    values: &[Value],
    final_sync: bool,
) -> CliResult<f64> {
    let per = total / threads;
    let t = Instant::now();
    let errors: Vec<reel::Error> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || -> reel::Result<()> {
                    for i in 0..per {
                        let v = &values[((k * per + i) as usize) % values.len()];
                        spool.append_entries(&[Entry {
                            encoding: v.encoding().tag(),
                            value: v.as_bytes(),
                            ..Default::default()
                        }])?;
                    }
                    Ok(())
                })
            })
            .collect();
        hs.into_iter()
            .filter_map(|h| h.join().ok().and_then(Result::err))
            .collect()
    });
    if let Some(e) = errors.into_iter().next() {
        return Err(e.into());
    }
    if final_sync {
        spool.sync()?;
    }
    Ok((per * threads) as f64 / t.elapsed().as_secs_f64())
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
