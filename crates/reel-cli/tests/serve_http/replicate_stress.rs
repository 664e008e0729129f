//! Three followers of one source while a writer appends at full speed: one behind a
//! proxy that cuts its connections at random moments, one over HTTP and one from the
//! local directory, both killed (-9) and restarted at random moments, and the server
//! itself killed (-9) and restarted on its address. At the end each follower equals the
//! source exactly (same seqs, timestamps, keys and values), with no gap and no
//! duplicate. 50 short trials are part of `cargo test`; 50 long ones run with `cargo test
//! -p reel-cli --test serve_http -- --ignored followers_survive_50`.

use crate::Server;
use crate::common::{bin, ok, reel_stdin};
use crate::proxy::Proxy;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// xorshift64*: a reproducible sequence per trial (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn last_seq(dir: &str) -> Option<u64> {
    if !std::path::Path::new(dir).join("reel.meta").exists() {
        return None;
    }
    let st: Value = serde_json::from_str(&ok(&["status", "--json", dir])).ok()?;
    st["next_seq"].as_u64()?.checked_sub(1)
}

fn replicate(from: &str, dst: &str) -> std::process::Child {
    Command::new(bin())
        .args(["replicate", from, dst])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// One trial: at least `batches` writes of up to 200 records each while the proxy cuts
/// every connection at random intervals and the other followers and the server are
/// killed and restarted; returns how many cuts hit the proxied follower's live frames
/// stream during the writes (at least `min_hits`), how many follower kills and how many
/// server kills there were.
fn trial(seed: u64, batches: u64, min_hits: usize) -> (usize, usize, usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let tmp_root = tempfile::tempdir().unwrap();
    let s = Server::start_in(tmp_root.path(), &[]);
    let addr = s.addr;
    let src = s.dir("ev");
    ok(&["init", &src]);
    let proxy = Proxy::start(s.addr);
    let server = std::sync::Mutex::new(Some(s));
    let url = format!("http://{}/ev", proxy.addr);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f").display().to_string();
    let mut follower = Command::new(bin())
        .args(["replicate", &url, &f])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (src, done, hits) = (src.clone(), done.clone(), hits.clone());
        let mut rng = Rng(rng.next() | 1);
        std::thread::spawn(move || {
            let mut n = 0u64;
            // At least `batches` writes, and on until three cuts hit the follower's
            // stream while records were being written: the promise of the test's name.
            for b in 0.. {
                if b >= batches && hits.load(Ordering::Acquire) >= min_hits {
                    break;
                }
                let count = 1 + rng.below(200);
                // Values from a few bytes to a few KiB, so that cuts fall inside frames
                // and inside batches of every size.
                let body: String = (0..count)
                    .map(|i| {
                        let pad =
                            "z".repeat(rng.below(if i % 17 == 0 { 4000 } else { 120 }) as usize);
                        format!("{{\"b\":{b},\"n\":{},\"pad\":\"{pad}\"}}\n", n + i)
                    })
                    .collect();
                let key = format!("k{}", b % 5);
                let out = reel_stdin(&["write", "--key", &key, &src], &body);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                n += count;
                std::thread::sleep(Duration::from_millis(rng.below(20)));
            }
            done.store(true, Ordering::Release);
            n
        })
    };
    let direct_url = format!("http://{addr}/ev");
    let f2 = tmp.path().join("f2").display().to_string();
    let f3 = tmp.path().join("f3").display().to_string();
    let mut f2_child = replicate(&direct_url, &f2);
    let mut f3_child = replicate(&src, &f3);
    let (mut server_kills, mut follower_kills) = (0, 0);
    // (After each cut the follower waits 200 ms before it connects again.)
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(5 + rng.below(60)));
        if proxy.cut_all() > 0 {
            hits.fetch_add(1, Ordering::AcqRel);
        }
        match rng.below(12) {
            0..=2 => {
                f2_child.kill().unwrap();
                f2_child.wait().unwrap();
                f2_child = replicate(&direct_url, &f2);
                follower_kills += 1;
            }
            3..=5 => {
                f3_child.kill().unwrap();
                f3_child.wait().unwrap();
                f3_child = replicate(&src, &f3);
                follower_kills += 1;
            }
            // The server, at most once a trial: kill -9, then start again on its address.
            6 if server_kills == 0 => {
                let mut guard = server.lock().unwrap();
                if let Some(old) = guard.take() {
                    old.kill();
                }
                *guard = Some(Server::start_at(tmp_root.path(), &addr.to_string(), &[]));
                server_kills += 1;
            }
            _ => {}
        }
    }
    let written = writer.join().unwrap();
    let hits = hits.load(Ordering::Acquire);
    let theirs = ok(&["stream", "--meta", &src]);
    for (dst, child) in [
        (&f, &mut follower),
        (&f2, &mut f2_child),
        (&f3, &mut f3_child),
    ] {
        let deadline = Instant::now() + Duration::from_secs(60);
        while last_seq(dst) != Some(written - 1) {
            assert!(
                Instant::now() < deadline,
                "seed {seed}: follower {dst} at {:?} of {written}",
                last_seq(dst)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let mine = ok(&["stream", "--meta", dst]);
        let seqs: Vec<u64> = crate::common::lines(&mine)
            .iter()
            .map(|l| l["seq"].as_u64().unwrap())
            .collect();
        assert!(
            seqs.iter().copied().eq(0..written),
            "seed {seed}: the seqs of {dst} are not 0..{written} once each"
        );
        assert!(mine == theirs, "seed {seed}: {dst} differs from the source");
        let st: Value = serde_json::from_str(&ok(&["status", "--json", dst])).unwrap();
        assert_eq!(
            st["replication"]["gaps"],
            serde_json::json!([]),
            "seed {seed}: {dst}"
        );
    }
    (hits, follower_kills, server_kills)
}

fn run(trials: u64, batches: u64, min_hits: usize) {
    let started = Instant::now();
    let (mut hits, mut follower_kills, mut server_kills) = (0, 0, 0);
    for seed in 0..trials {
        let (h, f, s) = trial(seed, batches, min_hits);
        hits += h;
        follower_kills += f;
        server_kills += s;
    }
    println!(
        "{trials} trials, {hits} cuts of a live frames stream, {follower_kills} followers and {server_kills} servers killed, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The faults must have happened for the test to say anything.
    assert!(
        follower_kills >= trials as usize && server_kills >= trials as usize / 5,
        "too few faults: {follower_kills} follower kills, {server_kills} server kills"
    );
}

#[test]
fn followers_survive_cuts_and_kills_while_a_writer_appends() {
    run(50, 4, 1);
}

#[test]
#[ignore]
fn followers_survive_50_long_trials_of_cuts_and_kills() {
    run(50, 30, 3);
}
