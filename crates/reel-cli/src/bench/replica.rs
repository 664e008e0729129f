//! `reel bench --replication`: replication over loopback HTTP, measured as a user runs
//! it: `reel serve` in this process, a `reel replicate URL DST` child process as the
//! follower, and share-group members as HTTP clients.
//!
//! - full copy: records/s from spawning the follower to DST holding every record, with
//!   the CPU time each side spent per million records (from `/proc/PID/stat`, so the
//!   figure includes everything the processes did, parsing and syscalls included);
//! - lag: a writer appends at a steady 100k records/s; for every batch, the time from
//!   its append to its arrival in DST;
//! - share group: four members asking for up to 1,000 records and acknowledging them,
//!   records/s delivered and acknowledged in total.

use super::http::{BenchServer, Client, io, percentile};
use crate::error::CliResult;
use crate::output::{Output, note};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
struct ReplicaReport {
    records: u64,
    /// Records/s of the initial copy by a follower process over HTTP.
    copy_per_s: f64,
    /// CPU seconds the source (server) spent per million records shipped.
    source_cpu_s_per_million: f64,
    /// CPU seconds the follower process spent per million records.
    follower_cpu_s_per_million: f64,
    /// Rate the writer held during the lag measurement (target 100k/s).
    lag_write_per_s: f64,
    /// Append at the source to arrival in the follower's directory.
    lag_p50_us: f64,
    lag_p99_us: f64,
    lag_max_us: f64,
    /// Records/s delivered and acknowledged by a share group of four members.
    group4_per_s: f64,
}

/// CPU time (user + system) of process `pid` so far, in seconds. `/proc` counts in
/// USER_HZ ticks, which Linux fixes at 100 for user space.
fn cpu_seconds(pid: u32) -> CliResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(io)?;
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io("unreadable /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> CliResult<f64> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| io("unreadable /proc stat"))
    };
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn line(i: u64) -> String {
    format!(
        "{{\"id\":{i},\"user\":\"someone\",\"pad\":\"{}\"}}",
        "x".repeat(60)
    )
}

/// Fills `spool` with `n` records of about 100 bytes, in batches.
fn fill(spool: &reel::Spool, n: u64) -> CliResult {
    let mut i = 0;
    while i < n {
        let batch: Vec<reel::NewRecord> = (i..(i + 1000).min(n))
            .map(|k| {
                let v: serde_json::Value = serde_json::from_str(&line(k)).map_err(io)?;
                Ok(reel::NewRecord::new(reel::Value::json(&v)))
            })
            .collect::<CliResult<_>>()?;
        spool.append_batch(&batch)?;
        i += batch.len() as u64;
    }
    Ok(())
}

/// A `reel replicate URL DST` child process, killed when dropped.
struct Follower(std::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_follower(url: &str, dst: &Path) -> CliResult<Follower> {
    let exe = std::env::current_exe().map_err(io)?;
    let child = std::process::Command::new(exe)
        .arg("replicate")
        .arg(url)
        .arg(dst)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(io)?;
    Ok(Follower(child))
}

/// Opens `dst` once the follower created it.
fn open_follower_dir(dst: &Path) -> CliResult<reel::Spool> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match reel::Spool::builder(dst).create(false).open() {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

pub fn run(work: &Path, records: u64, json: bool, out: &mut Output) -> CliResult {
    let say = |s: &str| {
        if !json {
            note(format_args!("{s}"));
        }
    };
    let root = work.join("replica-root");
    let server = BenchServer::start(&root)?;
    let addr = server.addr;
    let n = records.clamp(100_000, 5_000_000);
    let open = |name: &str| -> CliResult<reel::Spool> {
        Ok(reel::Spool::builder(root.join(name))
            .capacity(n.saturating_mul(400).max(256 << 20))
            .open()?)
    };

    say("replication: filling the source...");
    let src = open("src")?;
    fill(&src, n)?;

    say("replication: a follower process copies it over HTTP...");
    let dst = work.join("copy");
    let me = std::process::id();
    let (cpu0, t) = (cpu_seconds(me)?, Instant::now());
    let follower = spawn_follower(&format!("http://{addr}/src"), &dst)?;
    let copy = open_follower_dir(&dst)?;
    if !copy.wait_for(n - 1, Some(Duration::from_secs(600))) {
        return Err(io("the follower did not catch up within 600 s"));
    }
    let copy_secs = t.elapsed().as_secs_f64();
    let source_cpu = cpu_seconds(me)? - cpu0;
    let follower_cpu = cpu_seconds(follower.0.id())?;
    let per_million = 1e6 / n as f64;

    say("replication: lag while writing 100k records/s...");
    // 100 records every millisecond, on an absolute schedule so that a late wake-up is
    // made up rather than lowering the rate.
    let appended: std::sync::Mutex<Vec<(u64, Instant)>> = Default::default();
    let done = AtomicU64::new(0);
    let window = Duration::from_secs(3);
    let batch: Vec<reel::NewRecord> = (0..100)
        .map(|k| {
            let v: serde_json::Value = serde_json::from_str(&line(k)).map_err(io)?;
            Ok(reel::NewRecord::new(reel::Value::json(&v)))
        })
        .collect::<CliResult<_>>()?;
    let (written, mut lags) = std::thread::scope(|s| -> CliResult<(u64, Vec<f64>)> {
        let writer = s.spawn(|| -> CliResult<u64> {
            let start = Instant::now();
            let mut next = start;
            let mut written = 0u64;
            while start.elapsed() < window {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                let r = src.append_batch(&batch)?;
                appended
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((r.end - 1, Instant::now()));
                written += 100;
                next += Duration::from_millis(1);
            }
            done.store(1, Ordering::Release);
            Ok(written)
        });
        let mut lags = Vec::new();
        let mut i = 0;
        loop {
            let item = appended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(i)
                .copied();
            let Some((seq, at)) = item else {
                if done.load(Ordering::Acquire) == 1 && writer.is_finished() {
                    break;
                }
                std::thread::yield_now();
                continue;
            };
            if !copy.wait_for(seq, Some(Duration::from_secs(60))) {
                return Err(io(format!("seq {seq} did not reach the follower in 60 s")));
            }
            lags.push(at.elapsed().as_secs_f64() * 1e6);
            i += 1;
        }
        let written = writer.join().map_err(|_| io("writer panicked"))??;
        Ok((written, lags))
    })?;
    drop(follower);

    say("replication: a share group of 4 members...");
    let grp = open("grp")?;
    fill(&grp, n)?;
    let acked = AtomicU64::new(0);
    let t = Instant::now();
    std::thread::scope(|s| -> CliResult {
        let members: Vec<_> = (0..4)
            .map(|m| {
                let acked = &acked;
                s.spawn(move || -> std::io::Result<()> {
                    let mut c = Client::connect(addr)?;
                    let next =
                        format!("/v1/stores/grp/groups/bench/next?member=m{m}&max=1000&wait=0.2");
                    while acked.load(Ordering::Relaxed) < n {
                        let (st, body) = c.call("POST", &next, b"")?;
                        if st != 200 {
                            return Err(std::io::Error::other(format!("next: status {st}")));
                        }
                        let seqs = seqs_of(&body)?;
                        if seqs.is_empty() {
                            continue;
                        }
                        let ack = serde_json::to_vec(&serde_json::json!({ "seqs": seqs }))?;
                        let (st, body) =
                            c.call_json("POST", "/v1/stores/grp/groups/bench/ack", &ack)?;
                        if st != 200 {
                            return Err(std::io::Error::other(format!(
                                "ack: status {st}: {}",
                                String::from_utf8_lossy(&body)
                            )));
                        }
                        acked.fetch_add(seqs.len() as u64, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for m in members {
            m.join().map_err(|_| io("member panicked"))?.map_err(io)?;
        }
        Ok(())
    })?;
    let group4 = acked.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    server.stop();

    let report = ReplicaReport {
        records: n,
        copy_per_s: n as f64 / copy_secs,
        source_cpu_s_per_million: source_cpu * per_million,
        follower_cpu_s_per_million: follower_cpu * per_million,
        lag_write_per_s: written as f64 / window.as_secs_f64(),
        lag_p50_us: percentile(&mut lags, 0.5),
        lag_p99_us: percentile(&mut lags, 0.99),
        lag_max_us: percentile(&mut lags, 1.0),
        group4_per_s: group4,
    };
    if json {
        out.json_line(&report)?;
        return Ok(());
    }
    let r = &report;
    out.line(format_args!(
        "reel bench --replication: loopback HTTP, follower and members as separate clients, {n} records of ~100 bytes"
    ))?;
    out.line(format_args!(
        "  follower initial copy          {:>8.2} M records/s",
        r.copy_per_s / 1e6
    ))?;
    out.line(format_args!(
        "  CPU per million records        source {:.2} s, follower {:.2} s",
        r.source_cpu_s_per_million, r.follower_cpu_s_per_million
    ))?;
    out.line(format_args!(
        "  lag at {:.0}k records/s         p50 {:.0} us  p99 {:.0} us  max {:.0} us",
        r.lag_write_per_s / 1e3,
        r.lag_p50_us,
        r.lag_p99_us,
        r.lag_max_us
    ))?;
    out.line(format_args!(
        "  share group, 4 members         {:>8.0} records/s delivered and acknowledged",
        r.group4_per_s
    ))?;
    Ok(())
}

/// The `seq` of every NDJSON line of a group answer.
fn seqs_of(body: &[u8]) -> std::io::Result<Vec<u64>> {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l)?;
            v["seq"]
                .as_u64()
                .ok_or_else(|| std::io::Error::other("a record without a seq"))
        })
        .collect()
}
