//! Cross-process wake-up latency: a child `reel` process blocks on a spool; this process
//! appends one record at a time with pauses (so the child is asleep each time) and the
//! child reports, per record, the time from the append's timestamp to its delivery.

use crate::error::{CliError, CliResult};
use crate::output::Output;
use reel::Spool;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Which wake-up to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A blocked log reader.
    Log,
    /// A kv watch.
    KvWatch,
}

pub fn parent(dir: &Path, n: u64, mode: Mode) -> CliResult<(f64, f64, f64)> {
    // A spool for the log reader, a kv store for the watch (raw appends go to spools only).
    let kind = match mode {
        Mode::Log => reel::StoreKind::Spool,
        Mode::KvWatch => reel::StoreKind::Kv(reel::kv::PATH_SYNTAX),
    };
    let spool = Spool::builder(dir)
        .kind(kind)
        .capacity(64 << 20)
        .when_full(reel::WhenFull::Compact)
        .open()?;
    let kv = match mode {
        Mode::Log => None,
        Mode::KvWatch => Some(reel::kv::KvStore::on_spool(&spool)?),
    };
    let path: reel::kv::Path = "bench.wake".parse()?;
    let exe = std::env::current_exe().map_err(CliError::Output)?;
    let flag = match mode {
        Mode::Log => "--wake-child",
        Mode::KvWatch => "--watch-child",
    };
    let mut child = Command::new(exe)
        .args(["bench", "--wakeups", &n.to_string(), flag])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(CliError::Output)?;
    let mut out = BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| CliError::Failed("no child stdout".into()))?,
    );
    let mut line = String::new();
    out.read_line(&mut line).map_err(CliError::Output)?;
    if line.trim() != "ready" {
        return Err(CliError::Failed(format!(
            "wake-up child failed to start: {line}"
        )));
    }
    for i in 0..n {
        // Give the child time to go back to sleep so that each append measures a wake-up.
        std::thread::sleep(Duration::from_micros(500));
        match mode {
            Mode::Log => {
                spool.append(serde_json::json!({ "i": i }))?;
            }
            Mode::KvWatch => {
                let Some(kv) = &kv else { break };
                kv.set(
                    &path,
                    serde_json::json!({ "i": i, "sent": reel::now_micros() }),
                )?;
            }
        }
    }
    line.clear();
    out.read_line(&mut line).map_err(CliError::Output)?;
    let _ = child.wait();
    let mut lat: Vec<f64> = serde_json::from_str(line.trim())
        .map_err(|e| CliError::Failed(format!("bad child report: {e}")))?;
    if lat.is_empty() {
        return Err(CliError::Failed("wake-up child reported nothing".into()));
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let at = ((lat.len() - 1) as f64 * p).round() as usize;
        lat.get(at).copied().unwrap_or(f64::NAN)
    };
    Ok((pct(0.50), pct(0.99), pct(1.0)))
}

/// Room for `n` latencies, without trusting `n` (a command-line value) with the allocation.
fn latencies(n: u64) -> Vec<f64> {
    Vec::with_capacity(usize::try_from(n.min(1 << 20)).unwrap_or(0))
}

pub fn child(dir: &Path, n: u64, out: &mut Output) -> CliResult {
    let spool = Spool::open(dir)?;
    let log = spool.log().clone();
    let mut reader = log.reader(log.next_seq());
    let mut lat = latencies(n);
    out.line(format_args!("ready"))?;
    out.flush()?;
    let deadline = Instant::now() + Duration::from_secs(60 + (n / 100).min(86_400));
    while (lat.len() as u64) < n {
        if !reader.wait(Some(deadline)) {
            break;
        }
        let batch = reader.read_batch(1024)?;
        let now = reel::now_micros();
        batch.for_each(|r| lat.push(now.saturating_sub(r.ts) as f64));
    }
    out.json_line(&lat)?;
    Ok(())
}

/// The kv watch process: reports, per change, the time from the writer's `sent` stamp to
/// the event's delivery.
pub fn watch_child(dir: &Path, n: u64, out: &mut Output) -> CliResult {
    let kv = reel::kv::KvStore::builder(dir).create(false).open()?;
    let mut w = kv.watch(&"bench".parse()?, reel::kv::WatchOptions::default())?;
    let mut lat = latencies(n);
    out.line(format_args!("ready"))?;
    out.flush()?;
    let deadline = Instant::now() + Duration::from_secs(60 + (n / 100).min(86_400));
    while (lat.len() as u64) < n && Instant::now() < deadline {
        let Some(event) = w.next(Some(Duration::from_secs(1)))? else {
            continue;
        };
        if let reel::kv::WatchEvent::Put { value, .. } = event {
            let now = reel::now_micros();
            let sent = value
                .to_json()?
                .get("sent")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(now);
            lat.push(now.saturating_sub(sent) as f64);
        }
    }
    out.json_line(&lat)?;
    Ok(())
}
