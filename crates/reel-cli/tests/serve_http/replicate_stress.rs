//! A follower behind a proxy that cuts its connections at random moments while a writer
//! appends: at the end it equals the source exactly (same seqs, timestamps, keys and
//! values), with no gap and no duplicate. A short run is part of `cargo test`; the long
//! one (50 trials) runs with `cargo test -p reel-cli --test serve_http -- --ignored
//! follower_survives_50`.

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

/// One trial: at least `batches` writes of up to 200 records each while the proxy cuts
/// every connection at random intervals; returns how many cuts hit the follower's live
/// frames stream during the writes (at least three).
fn trial(seed: u64, batches: u64) -> usize {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let s = Server::start(&[]);
    let src = s.dir("ev");
    ok(&["init", &src]);
    let proxy = Proxy::start(s.addr);
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
                if b >= batches && hits.load(Ordering::Acquire) >= 3 {
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
    // (After each cut the follower waits 200 ms before it connects again.)
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(5 + rng.below(60)));
        if proxy.cut_all() > 0 {
            hits.fetch_add(1, Ordering::AcqRel);
        }
    }
    let written = writer.join().unwrap();
    let hits = hits.load(Ordering::Acquire);
    let deadline = Instant::now() + Duration::from_secs(60);
    while last_seq(&f) != Some(written - 1) {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: follower at {:?} of {written}",
            last_seq(&f)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
    let theirs = ok(&["stream", "--meta", &src]);
    let mine = ok(&["stream", "--meta", &f]);
    let seqs: Vec<u64> = crate::common::lines(&mine)
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.iter().copied().eq(0..written),
        "seed {seed}: the follower's seqs are not 0..{written} once each"
    );
    assert!(
        mine == theirs,
        "seed {seed}: the follower differs from the source"
    );
    let st: Value = serde_json::from_str(&ok(&["status", "--json", &f])).unwrap();
    assert_eq!(
        st["replication"]["gaps"],
        serde_json::json!([]),
        "seed {seed}"
    );
    hits
}

fn run(trials: u64, batches: u64) {
    let started = Instant::now();
    let mut hits = 0;
    for seed in 0..trials {
        hits += trial(seed, batches);
    }
    println!(
        "{trials} trials, {hits} cuts of a live frames stream, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn follower_survives_random_connection_cuts_while_a_writer_appends() {
    run(4, 25);
}

#[test]
#[ignore]
fn follower_survives_50_trials_of_random_connection_cuts() {
    run(50, 30);
}
