//! `reel bench --scale`: how the kv store's costs grow with its size. For each size, a
//! store of that many keys is filled in batches, and the table shows what a user feels:
//! the time until every write is readable, opening the store, random gets, one `reel kv
//! get` / `kv set` process each (spawned from this binary, so process start-up counts),
//! the memory of a process that opens the store and does 10,000 random gets (its own,
//! and the page cache of the store it maps, which is shared), and disk per key.

use crate::error::{CliError, CliResult};
use crate::output::Output;
use reel::kv::{KvStore, Path as KvPath};
use reel::list::{ListStore, NewItem, PageRequest, Start};
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Keys written per `set_batch` call while filling.
const FILL_BATCH: u64 = 10_000;
/// Gets (or page reads) in the process whose memory is reported.
const CHILD_GETS: u64 = 10_000;

#[derive(Debug, Serialize)]
pub(super) struct ScaleRow {
    keys: u64,
    /// Batched sets (10,000 per call), durability none.
    set_per_s: f64,
    /// Fill time plus applying and checkpointing the view, per key.
    set_until_readable_us: f64,
    /// Opening the store in a new handle and answering one get.
    open_first_get_ms: f64,
    /// Random gets of existing keys, one thread, in a handle just opened: every page
    /// the process reads is new to it (a page fault, and the page's checksum).
    cold_get_per_s: f64,
    /// The same gets again, one thread: warm.
    get_per_s: f64,
    /// The raw limit of those gets (kv only): lookups of two dependent random reads
    /// each, one after another, in the mapped largest table (see `raw_lookups_per_s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_get_per_s: Option<f64>,
    /// `reel kv get` as a new process, wall time, median of 5.
    cli_get_ms: f64,
    /// `reel kv set` as a new process, wall time, median of 5.
    cli_set_ms: f64,
    /// Private memory of a process that opened the store and did 10,000 random gets.
    private_mb: f64,
    /// Page cache of the store mapped into that process (shared, reclaimable).
    mapped_mb: f64,
    /// Bytes of the store directory per key.
    disk_bytes_per_key: f64,
}

#[derive(Debug, Serialize, serde::Deserialize)]
struct ChildReport {
    /// Memory of the process's own (anonymous pages).
    private_kb: u64,
    /// Page cache of the store's files mapped into the process (shared with every
    /// other process and the kernel's cache, and dropped under memory pressure).
    mapped_kb: u64,
}

fn path_of(i: u64) -> String {
    format!("user.u{i}")
}

/// A spread of key numbers below `n` (a fixed stride coprime with typical sizes).
fn spread(count: u64, n: u64) -> impl Iterator<Item = u64> {
    (0..count).map(move |i| (i.wrapping_mul(7_919_993) + 12_345) % n)
}

pub use crate::cli::ScaleStore;

/// Lists a lists store of N items spreads them over.
const LISTS: u64 = 100;

pub(super) fn run(
    sizes: &[u64],
    store: ScaleStore,
    work: &Path,
    json: bool,
    out: &mut Output,
) -> CliResult {
    let mut rows = Vec::new();
    for &n in sizes {
        if !json {
            crate::output::note(format_args!("scale: {store:?} store of {n}..."));
        }
        let dir = work.join(format!("scale-{n}"));
        rows.push(match store {
            ScaleStore::Kv => one_size(n, &dir)?,
            ScaleStore::Lists => one_size_lists(n, &dir)?,
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    if json {
        for r in &rows {
            out.json_line(r)?;
        }
        return Ok(());
    }
    let (what, cold, get, cli_get, cli_set) = match store {
        ScaleStore::Kv => ("keys", "cold get M/s", "get M/s", "kv get", "kv set"),
        ScaleStore::Lists => (
            "items",
            "cold page M/s",
            "page M/s",
            "list read",
            "list append",
        ),
    };
    out.line(format_args!(
        "{:>10} {:>8} {:>12} {:>12} {:>13} {:>8} {:>9} {:>11} {:>11} {:>11} {:>10} {:>10}",
        what,
        "set M/s",
        "readable µs",
        "open+get ms",
        cold,
        get,
        "raw M/s",
        cli_get,
        cli_set,
        "private MB",
        "mapped MB",
        "disk B/one"
    ))?;
    for r in &rows {
        out.line(format_args!(
            "{:>10} {:>8.2} {:>12.2} {:>12.2} {:>13.2} {:>8.2} {:>9} {:>8.1} ms {:>8.1} ms {:>11.1} {:>10.1} {:>10.0}",
            r.keys,
            r.set_per_s / 1e6,
            r.set_until_readable_us,
            r.open_first_get_ms,
            r.cold_get_per_s / 1e6,
            r.get_per_s / 1e6,
            r.raw_get_per_s
                .map_or("-".to_string(), |g| format!("{:.2}", g / 1e6)),
            r.cli_get_ms,
            r.cli_set_ms,
            r.private_mb,
            r.mapped_mb,
            r.disk_bytes_per_key
        ))?;
    }
    Ok(())
}

fn one_size(n: u64, dir: &Path) -> CliResult<ScaleRow> {
    let capacity = (n * 160).max(64 << 20);
    let kv = KvStore::builder(dir).capacity(capacity).open()?;
    let value = reel::Value::encode(&serde_json::json!({"v": 1}))?;
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + FILL_BATCH).min(n);
        let paths: Vec<KvPath> = (i..end)
            .map(|j| path_of(j).parse())
            .collect::<reel::Result<_>>()?;
        kv.set_batch(paths.iter().map(|p| (p, value.clone())))?;
        i = end;
    }
    let fill = t.elapsed().as_secs_f64();
    kv.view().checkpoint()?;
    let readable = t.elapsed().as_secs_f64();
    drop(kv);

    let t = Instant::now();
    let kv = KvStore::open(dir)?;
    let first = kv.get(&path_of(n / 2).parse()?)?;
    let open_first_get_ms = t.elapsed().as_secs_f64() * 1e3;
    if first.is_none() {
        return Err(CliError::Input(format!("scale: key {} is missing", n / 2)));
    }
    let gets = n.clamp(100_000, 1_000_000);
    let keys: Vec<String> = spread(gets, n)
        .map(|j| kv.key(&path_of(j).parse()?))
        .collect::<reel::Result<_>>()?;
    // Twice: the first pass reads pages this process has not touched, the second is warm.
    let mut rates = [0f64; 2];
    for rate in &mut rates {
        let t = Instant::now();
        let mut found = 0u64;
        for k in &keys {
            found += kv.get_with(k, |e| e.is_some() as u64)?;
        }
        *rate = gets as f64 / t.elapsed().as_secs_f64();
        if found != gets {
            return Err(CliError::Input(format!(
                "scale: {found} of {gets} gets found their key"
            )));
        }
    }
    let [cold_get_per_s, get_per_s] = rates;
    drop(kv);
    let raw_get_per_s = raw_lookups_per_s(dir, gets)?;

    let dir_s = dir.to_string_lossy().to_string();
    let probe = path_of(n / 3);
    let cli_get_ms = time_cli(&["kv", "get", &dir_s, &probe])?;
    let cli_set_ms = time_cli(&["kv", "set", &dir_s, &probe, "v2"])?;
    let mut row = finish_row(
        n,
        dir,
        ScaleStore::Kv,
        [
            fill,
            readable,
            open_first_get_ms,
            cold_get_per_s,
            get_per_s,
            cli_get_ms,
            cli_set_ms,
        ],
    )?;
    row.raw_get_per_s = Some(raw_get_per_s);
    Ok(row)
}

/// The row of one size from its timings (fill s, readable s, open + first read ms,
/// cold and warm reads/s, CLI read ms, CLI write ms), with the memory probe's and the
/// disk's figures.
fn finish_row(n: u64, dir: &Path, store: ScaleStore, t: [f64; 7]) -> CliResult<ScaleRow> {
    let [
        fill,
        readable,
        open_first_get_ms,
        cold_get_per_s,
        get_per_s,
        cli_get_ms,
        cli_set_ms,
    ] = t;
    let child = memory_probe(dir, n, store)?;
    Ok(ScaleRow {
        keys: n,
        set_per_s: n as f64 / fill,
        set_until_readable_us: readable * 1e6 / n as f64,
        open_first_get_ms,
        cold_get_per_s,
        get_per_s,
        raw_get_per_s: None,
        cli_get_ms,
        cli_set_ms,
        private_mb: child.private_kb as f64 / 1024.0,
        mapped_mb: child.mapped_kb as f64 / 1024.0,
        disk_bytes_per_key: dir_bytes(dir) as f64 / n as f64,
    })
}

/// Wall time of one `reel` process with `args`, median of 5.
fn time_cli(args: &[&str]) -> CliResult<f64> {
    let exe = std::env::current_exe().map_err(CliError::Output)?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let st = Command::new(&exe)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(CliError::Output)?;
        if !st.success() {
            return Err(CliError::Input(format!("scale: reel {args:?} failed")));
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[2])
}

/// Runs the memory probe (this binary with `--scale-child`) on the store in `dir`.
fn memory_probe(dir: &Path, n: u64, store: ScaleStore) -> CliResult<ChildReport> {
    let exe = std::env::current_exe().map_err(CliError::Output)?;
    let store = match store {
        ScaleStore::Kv => "kv",
        ScaleStore::Lists => "lists",
    };
    let output = Command::new(&exe)
        .args([
            "bench",
            "--scale-store",
            store,
            "--records",
            &n.to_string(),
            "--scale-child",
        ])
        .arg(dir)
        .output()
        .map_err(CliError::Output)?;
    if !output.status.success() {
        return Err(CliError::Input(format!(
            "scale: the memory probe failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| CliError::Input(format!("scale: memory probe output: {e}")))
}

fn list_key(k: u64) -> String {
    format!("list-{k}")
}

fn one_size_lists(n: u64, dir: &Path) -> CliResult<ScaleRow> {
    let lists = ListStore::builder(dir)
        .capacity((n * 250).max(64 << 20))
        .when_full(reel::WhenFull::Reject)
        .open()?;
    let per_list = n.div_ceil(LISTS);
    let t = Instant::now();
    let mut written = 0;
    let mut round = 0;
    while written < n {
        for k in 0..LISTS {
            let count = FILL_BATCH
                .min(per_list.saturating_sub(round * FILL_BATCH))
                .min(n - written);
            if count == 0 {
                continue;
            }
            let items: Vec<NewItem> = (0..count)
                .map(|i| NewItem {
                    value: serde_json::json!({"v": round * FILL_BATCH + i}),
                    nonce: Some(u128::from(round * FILL_BATCH + i + 1)),
                    ts: None,
                })
                .collect();
            lists.append(&list_key(k), &items)?;
            written += count;
        }
        round += 1;
    }
    let fill = t.elapsed().as_secs_f64();
    lists.view().checkpoint()?;
    let readable = t.elapsed().as_secs_f64();
    drop(lists);

    let page = |offset: u64| PageRequest {
        limit: Some(10),
        start: Start::Offset(offset),
        ..Default::default()
    };
    let t = Instant::now();
    let lists = ListStore::builder(dir).create(false).open()?;
    let first = lists.read(&list_key(LISTS / 2), &page(per_list / 2))?;
    let open_first_get_ms = t.elapsed().as_secs_f64() * 1e3;
    if first.items.is_empty() {
        return Err(CliError::Input("scale: a page came back empty".into()));
    }
    let reads = 100_000u64;
    // Twice: the first pass reads pages this process has not touched, the second is warm.
    let mut rates = [0f64; 2];
    for rate in &mut rates {
        let t = Instant::now();
        for j in spread(reads, n) {
            let p = lists.read(&list_key(j % LISTS), &page((j / LISTS) % per_list))?;
            std::hint::black_box(p);
        }
        *rate = reads as f64 / t.elapsed().as_secs_f64();
    }
    let [cold_get_per_s, get_per_s] = rates;
    drop(lists);

    let dir_s = dir.to_string_lossy().to_string();
    let key = list_key(7);
    let from = (per_list / 3).to_string();
    let cli_get_ms = time_cli(&["list", "read", "--from-offset", &from, &dir_s, &key])?;
    let cli_set_ms = time_cli(&["list", "append", &dir_s, &key, "{\"x\":1}"])?;
    finish_row(
        n,
        dir,
        ScaleStore::Lists,
        [
            fill,
            readable,
            open_first_get_ms,
            cold_get_per_s,
            get_per_s,
            cli_get_ms,
            cli_set_ms,
        ],
    )
}

/// The memory probe: opens the store, does 10,000 random reads, prints its memory.
pub(super) fn child(dir: &Path, n: u64, store: ScaleStore, out: &mut Output) -> CliResult {
    let n = n.max(1);
    match store {
        ScaleStore::Kv => {
            let kv = KvStore::builder(dir).create(false).open()?;
            let mut found = 0u64;
            for j in spread(CHILD_GETS, n) {
                found += kv.get(&path_of(j).parse()?)?.is_some() as u64;
            }
            std::hint::black_box(found);
        }
        ScaleStore::Lists => {
            let lists = ListStore::builder(dir).create(false).open()?;
            let per_list = n.div_ceil(LISTS);
            for j in spread(CHILD_GETS, n) {
                let p = lists.read(
                    &list_key(j % LISTS),
                    &PageRequest {
                        limit: Some(10),
                        start: Start::Offset((j / LISTS) % per_list),
                        ..Default::default()
                    },
                )?;
                std::hint::black_box(p);
            }
        }
    }
    out.json_line(&ChildReport {
        private_kb: status_kb("RssAnon:").unwrap_or(0),
        mapped_kb: status_kb("RssFile:").unwrap_or(0),
    })?;
    Ok(())
}

/// A field of `/proc/self/status` in KiB (Linux); `None` elsewhere.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The raw limit of a get from a key hash index on this machine: lookups of two
/// dependent random 8-byte reads each (a slot, then the entry it points at), each lookup
/// starting from what the last one read (a get returns before the next begins), in a
/// read-only mapping of the store's largest view table (the same pages, page size and
/// cache pressure as the gets). Warm: the best of two passes over `lookups`.
fn raw_lookups_per_s(dir: &Path, lookups: u64) -> CliResult<f64> {
    use reel_log::storage::{DiskStorage, Storage};
    let Some(biggest) = largest_file(&dir.join("views")) else {
        return Err(CliError::Input("scale: the store has no view table".into()));
    };
    let map = DiskStorage
        .map_immutable(&biggest)
        .map_err(CliError::Output)?
        .ok_or_else(|| CliError::Input("scale: the largest view table is empty".into()))?;
    let span = (map.len().saturating_sub(8) as u64).max(1);
    let mut best = 0f64;
    let (mut x, mut acc) = (0x9e37_79b9_7f4a_7c15u64, 0u64);
    for _ in 0..2 {
        let t = Instant::now();
        for _ in 0..lookups {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut at = ((x ^ (acc & 1)) % span) as usize;
            for _ in 0..2 {
                let word: [u8; 8] = map[at..at + 8].try_into().expect("8 bytes");
                acc = acc.wrapping_add(u64::from_le_bytes(word));
                at = ((acc ^ x).wrapping_mul(0x2545_f491_4f6c_dd1d) % span) as usize;
            }
        }
        best = best.max(lookups as f64 / t.elapsed().as_secs_f64());
    }
    std::hint::black_box(acc);
    Ok(best)
}

/// The largest file below `dir`.
fn largest_file(dir: &Path) -> Option<std::path::PathBuf> {
    let mut best: Option<(u64, std::path::PathBuf)> = None;
    for e in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let Ok(m) = e.metadata() else { continue };
        let found = if m.is_dir() {
            largest_file(&e.path()).and_then(|p| Some((std::fs::metadata(&p).ok()?.len(), p)))
        } else {
            Some((m.len(), e.path()))
        };
        if let Some((len, p)) = found
            && best.as_ref().is_none_or(|(b, _)| len > *b)
        {
            best = Some((len, p));
        }
    }
    best.map(|(_, p)| p)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
