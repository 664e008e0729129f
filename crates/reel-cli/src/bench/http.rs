//! `reel bench --http`: the server over loopback next to the same operations through
//! the embedded API in the same run. The server runs in this process (tokio, as `reel
//! serve` does); clients are plain HTTP/1.1 with keep-alive, on the same 2 cores.

use crate::error::{CliError, CliResult};
use crate::output::{Output, note};
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
struct HttpReport {
    /// Records/s appended as NDJSON in requests of 1,000 records, one client.
    http_append_1000_per_s: f64,
    /// The same records appended locally in batches of 1,000 (JSON parsed and encoded).
    local_append_1000_per_s: f64,
    /// Single-record POSTs/s with keep-alive, one client (its round trip bounds it).
    http_single_1_client_per_s: f64,
    /// Single-record POSTs/s with keep-alive, four clients.
    http_single_per_s: f64,
    /// Single-record appends/s locally (one call per record, durability none).
    local_single_per_s: f64,
    /// kv GETs/s with keep-alive, two clients.
    http_kv_get_per_s: f64,
    /// kv gets/s locally, one thread.
    local_kv_get_per_s: f64,
    /// A single-record POST sent to the line read by an HTTP follower.
    follow_p50_us: f64,
    follow_p99_us: f64,
    /// kv set in the server's process to the event read by an HTTP watcher.
    watch_p50_us: f64,
    watch_p99_us: f64,
}

/// `reel serve` on loopback in this process, on a runtime of its own.
pub(super) struct BenchServer {
    pub addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), reel_server::ServeError>>,
}

impl BenchServer {
    /// Serves every store under `root` (created if missing).
    pub fn start(root: &Path) -> CliResult<BenchServer> {
        std::fs::create_dir_all(root).map_err(CliError::Output)?;
        let config = reel_server::ServerConfig {
            root: root.to_path_buf(),
            listen: "127.0.0.1:0".parse().map_err(io)?,
            max_body: 64 << 20,
            durability: reel::Durability::None,
            token_ttl: Duration::from_secs(3600),
            insecure_open: false,
            tls: None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(io)?;
        let server = runtime
            .block_on(reel_server::Server::bind(config))
            .map_err(io)?;
        let addr = server.local_addr().map_err(io)?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = runtime.spawn(server.run(async {
            let _ = stop_rx.await;
        }));
        Ok(BenchServer {
            addr,
            runtime,
            stop,
            serving,
        })
    }

    /// Stops serving and waits for the server to finish.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.runtime.block_on(self.serving);
    }
}

/// A minimal keep-alive client: requests with Content-Length, answers with
/// Content-Length (what the server sends for non-streaming routes).
pub(super) struct Client {
    r: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Client {
            r: BufReader::new(s),
        })
    }

    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        self.call_typed(method, path, "application/x-ndjson", body)
    }

    /// [`Client::call`] with a JSON body.
    pub fn call_json(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        self.call_typed(method, path, "application/json", body)
    }

    fn call_typed(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        // One write: a request split over two segments waits for the peer's delayed ACK.
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        self.r.get_mut().write_all(&req)?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        std::io::Read::read_exact(&mut self.r, &mut body)?;
        Ok((status, body))
    }
}

pub(super) fn io(e: impl std::fmt::Display) -> CliError {
    CliError::Input(format!("bench --http: {e}"))
}

pub(super) fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run(work: &Path, records: u64, json: bool, out: &mut Output) -> CliResult {
    let say = |s: &str| {
        if !json {
            note(format_args!("{s}"));
        }
    };
    let root = work.join("http-root");
    let server = BenchServer::start(&root)?;
    let addr = server.addr;
    let spool_dir = root.join("ev");
    let spool = reel::Spool::builder(&spool_dir)
        .capacity(records.saturating_mul(400).max(256 << 20))
        .durability(reel::Durability::None)
        .open()?;
    let line = |i: u64| {
        format!(
            "{{\"id\":{i},\"user\":\"someone\",\"pad\":\"{}\"}}",
            "x".repeat(60)
        )
    };
    let n = records.clamp(10_000, 1_000_000) / 1000 * 1000;

    say("HTTP: NDJSON appends, 1,000 records per request...");
    let mut c = Client::connect(addr).map_err(io)?;
    let bodies: Vec<Vec<u8>> = (0..n / 1000)
        .map(|b| {
            (0..1000)
                .flat_map(|i| (line(b * 1000 + i) + "\n").into_bytes())
                .collect()
        })
        .collect();
    let t = Instant::now();
    for body in &bodies {
        let (status, resp) = c.call("POST", "/v1/stores/ev/records", body).map_err(io)?;
        if status != 200 {
            return Err(io(String::from_utf8_lossy(&resp)));
        }
    }
    let http_append = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for body in &bodies {
        let recs: Vec<reel::NewRecord> = std::str::from_utf8(body)
            .map_err(io)?
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .map(|v| reel::NewRecord::new(reel::Value::json(&v)))
            })
            .collect::<Result<_, _>>()
            .map_err(io)?;
        spool.append_batch(&recs)?;
    }
    let local_append = n as f64 / t.elapsed().as_secs_f64();

    say("HTTP: single-record POSTs, 1 and 4 clients...");
    let singles = 20_000u64;
    let one = line(0) + "\n";
    let t = Instant::now();
    for _ in 0..singles / 4 {
        c.call("POST", "/v1/stores/ev/records", one.as_bytes())
            .map_err(io)?;
    }
    let http_single_1 = (singles / 4) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let posted: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let one = &one;
                s.spawn(move || -> std::io::Result<u64> {
                    let mut c = Client::connect(addr)?;
                    for _ in 0..singles / 4 {
                        c.call("POST", "/v1/stores/ev/records", one.as_bytes())?;
                    }
                    Ok(singles / 4)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().ok().and_then(Result::ok).unwrap_or(0))
            .collect()
    });
    let http_single = posted.iter().sum::<u64>() as f64 / t.elapsed().as_secs_f64();
    let v = reel::Value::json(&serde_json::from_str::<serde_json::Value>(&line(0)).map_err(io)?);
    let t = Instant::now();
    for _ in 0..singles {
        spool.append(v.clone())?;
    }
    let local_single = singles as f64 / t.elapsed().as_secs_f64();

    say("HTTP: kv GETs, two clients...");
    let kv = reel::kv::KvStore::builder(root.join("cfg"))
        .create(true)
        .open()?;
    let keys = 10_000u64;
    let paths: Vec<reel::kv::Path> = (0..keys)
        .map(|i| format!("user.u{i}").parse())
        .collect::<Result<_, _>>()?;
    kv.set_batch(
        paths
            .iter()
            .map(|p| (p, reel::Value::json(&serde_json::json!({"n": 1})))),
    )?;
    let window = Duration::from_secs(3);
    let counts: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2u64)
            .map(|t| {
                s.spawn(move || -> std::io::Result<u64> {
                    let mut c = Client::connect(addr)?;
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < window {
                        let (st, _) = c.call(
                            "GET",
                            &format!("/v1/stores/cfg/kv/user.u{}", (n * 7919 + t) % keys),
                            b"",
                        )?;
                        if st != 200 {
                            return Err(std::io::Error::other(format!("status {st}")));
                        }
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().ok().and_then(Result::ok).unwrap_or(0))
            .collect()
    });
    let http_kv_get = counts.iter().sum::<u64>() as f64 / window.as_secs_f64();
    let t = Instant::now();
    let mut i = 0u64;
    while t.elapsed() < Duration::from_secs(1) {
        kv.get(&paths[(i * 7919 % keys) as usize])?;
        i += 1;
    }
    let local_kv_get = i as f64 / t.elapsed().as_secs_f64();

    say("HTTP: live follow and watch latency...");
    let (mut follow, mut watch) = (Vec::new(), Vec::new());
    let from = spool.next_seq();
    let mut f = open_stream(
        addr,
        &format!("/v1/stores/ev/records?from_seq={from}&follow=true"),
    )
    .map_err(io)?;
    // Appends through the server (a POST on another connection), timed from the request
    // to the line at the follower.
    for _ in 0..1000 {
        let t = Instant::now();
        c.call("POST", "/v1/stores/ev/records", one.as_bytes())
            .map_err(io)?;
        read_event_line(&mut f).map_err(io)?;
        follow.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut w = open_stream(addr, "/v1/stores/cfg/watch/app").map_err(io)?;
    let p: reel::kv::Path = "app.x".parse()?;
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..1000 {
        let t = Instant::now();
        kv.set(&p, serde_json::json!(i))?;
        read_event_line(&mut w).map_err(io)?;
        watch.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop((f, w, c));
    server.stop();

    let report = HttpReport {
        http_append_1000_per_s: http_append,
        local_append_1000_per_s: local_append,
        http_single_1_client_per_s: http_single_1,
        http_single_per_s: http_single,
        local_single_per_s: local_single,
        http_kv_get_per_s: http_kv_get,
        local_kv_get_per_s: local_kv_get,
        follow_p50_us: percentile(&mut follow, 0.5),
        follow_p99_us: percentile(&mut follow, 0.99),
        watch_p50_us: percentile(&mut watch, 0.5),
        watch_p99_us: percentile(&mut watch, 0.99),
    };
    if json {
        out.json_line(&report)?;
        return Ok(());
    }
    let r = &report;
    out.line(format_args!(
        "reel bench --http: loopback, server in this process, {n} records"
    ))?;
    let m = |x: f64| x / 1e6;
    out.line(format_args!(
        "  append NDJSON, 1000/request     {:>8.2} M/s   local batches {:.2} M/s ({:.0}%)",
        m(r.http_append_1000_per_s),
        m(r.local_append_1000_per_s),
        100.0 * r.http_append_1000_per_s / r.local_append_1000_per_s
    ))?;
    out.line(format_args!(
        "  append, one POST per record     {:>8.0} /s    4 clients ({:.0} /s with 1); local single appends {:.0} /s",
        r.http_single_per_s,
        r.http_single_1_client_per_s,
        r.local_single_per_s
    ))?;
    out.line(format_args!(
        "  kv GET, 2 clients, keep-alive   {:>8.0} /s    local gets {:.0} /s",
        r.http_kv_get_per_s, r.local_kv_get_per_s
    ))?;
    out.line(format_args!(
        "  follow: POST -> follower's line  p50 {:.0} us  p99 {:.0} us",
        r.follow_p50_us, r.follow_p99_us
    ))?;
    out.line(format_args!(
        "  watch: kv set -> HTTP event     p50 {:.0} us  p99 {:.0} us",
        r.watch_p50_us, r.watch_p99_us
    ))?;
    Ok(())
}

/// A GET whose chunked body is read line by line.
fn open_stream(addr: SocketAddr, path: &str) -> std::io::Result<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            return Ok(r);
        }
    }
}

/// Reads chunks until one holds a complete NDJSON line (each event arrives as one chunk).
fn read_event_line(r: &mut BufReader<TcpStream>) -> std::io::Result<()> {
    let mut size = String::new();
    loop {
        size.clear();
        r.read_line(&mut size)?;
        let n = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
        if n == 0 {
            return Err(std::io::Error::other("stream ended"));
        }
        let mut chunk = vec![0u8; n + 2];
        std::io::Read::read_exact(r, &mut chunk)?;
        if chunk[..n].ends_with(b"\n") {
            return Ok(());
        }
    }
}
