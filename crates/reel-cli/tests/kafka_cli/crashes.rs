//! Kill -9 of bridges while the topic is produced to: each Kafka record is stored
//! exactly once, in order per partition, alone and in a group whose member dies.

use super::broker::{Broker, record};
use super::common::*;
use super::{consume, consume_ok, spawn_consume, values};
use rskafka::client::partition::PartitionClient;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Produces `{"p": P, "i": I}` (I counting per partition) in chunks to every partition
/// until `stop`, except while `paused`; `counts[p]` is how many partition p has.
fn produce_until(
    b: &Broker,
    parts: &[Arc<PartitionClient>],
    counts: &[AtomicU64],
    stop: &AtomicBool,
    paused: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        if paused.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        for (p, client) in parts.iter().enumerate() {
            let start = counts[p].load(Ordering::Relaxed);
            let recs = (start..start + 20)
                .map(|i| record(format!("{{\"p\":{p},\"i\":{i}}}").as_bytes(), None, &[]))
                .collect();
            b.produce(client, recs);
            counts[p].store(start + 20, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sets its flag when dropped: a failed assertion inside a thread scope still stops the
/// producer thread (else the scope, waiting for it, never ends).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A bridge process that a failed assertion does not leave running.
struct Running(Option<Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Kills it (SIGKILL) and returns its output.
    fn kill9(mut self) -> std::process::Output {
        let mut child = self.0.take().expect("running");
        child.kill().unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bridge(b: &Broker, topic: &str, extra: &[&str], dir: &Path) -> Running {
    let mut args = vec![
        "--key-parser",
        "RecordPartition",
        "--batch-interval",
        "20ms",
    ];
    args.extend_from_slice(extra);
    Running(Some(spawn_consume(b, topic, &args, dir)))
}

/// The `i` of every item in partition `p`'s list.
fn stored(dir: &Path, p: usize) -> Vec<u64> {
    if !dir.join("reel.meta").exists() {
        return Vec::new();
    }
    values(dir, &p.to_string())
        .iter()
        .map(|v| v["i"].as_u64().unwrap())
        .collect()
}

/// Each partition's list holds 0..count exactly once, in order.
fn assert_exactly_once(dir: &Path, counts: &[AtomicU64]) {
    for (p, c) in counts.iter().enumerate() {
        let got = stored(dir, p);
        let want: Vec<u64> = (0..c.load(Ordering::Relaxed)).collect();
        assert!(
            got == want,
            "partition {p}: {} stored, {} produced; first difference at {:?}",
            got.len(),
            want.len(),
            got.iter().zip(&want).position(|(a, b)| a != b)
        );
    }
}

/// Waits until every record produced is stored.
fn wait_stored(dir: &Path, counts: &[AtomicU64], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let done = counts
            .iter()
            .enumerate()
            .all(|(p, c)| stored(dir, p).len() as u64 >= c.load(Ordering::Relaxed));
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "the bridges did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when a bridge's stderr says that recovery cut a batch a killed bridge had
/// written but not published.
fn cut_by_recovery(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("recovery cut")
}

/// Freezes the bridge (SIGSTOP) at random moments until the store's head says a batch
/// is being written (`writing`, byte 12 of `reel.head`, docs/FORMAT.md §5), and leaves
/// it frozen there for the kill; true if that happened within a few hundred tries.
fn stop_mid_append(child: &Running, dir: &Path, seed: &mut u64) -> bool {
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    // The process state letter in /proc/PID/stat: T stopped, Z or X gone.
    let state = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .unwrap_or('X')
    };
    for _ in 0..500 {
        std::thread::sleep(Duration::from_micros(next_rand(seed) % 2000));
        signal("-STOP");
        loop {
            match state() {
                'T' => break,
                'Z' | 'X' => return false, // the bridge exited (a test failure follows)
                _ => std::thread::yield_now(),
            }
        }
        let head = std::fs::read(dir.join("reel.head")).unwrap_or_default();
        if head.get(12..16) == Some(&1u32.to_ne_bytes()[..]) {
            return true;
        }
        signal("-CONT");
    }
    false
}

/// A small pseudo-random sequence (no dependency needed for kill timing).
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn kill_loop(trials: usize) {
    let b = Broker::start();
    let parts = b.topic("kill", 2);
    let counts = [AtomicU64::new(0), AtomicU64::new(0)];
    let (stop, paused) = (AtomicBool::new(false), AtomicBool::new(false));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lists");
    let mut seed = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let (mut behind, mut progressed, mut mid_write, mut aimed) = (0, 0, 0, 0);
    std::thread::scope(|scope| {
        let _stop_producer = SetOnDrop(&stop);
        scope.spawn(|| produce_until(&b, &parts, &counts, &stop, &paused));
        let mut before = 0;
        for trial in 0..trials {
            paused.store(false, Ordering::Relaxed);
            // Small batches: most of the bridge's time goes to storing them, so most
            // kills land in or between the appends, not while it waits.
            let child = bridge(&b, "kill", &["--batch-items", "5"], &dir);
            std::thread::sleep(Duration::from_millis(150 + next_rand(&mut seed) % 350));
            // Every other trial waits for the bridge to be inside an append: a batch's
            // frames written, not yet published.
            if trial % 2 == 1 {
                aimed += usize::from(stop_mid_append(&child, &dir, &mut seed));
            }
            let produced: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            let out = child.kill9();
            // The first append after a kill inside an append repairs the log, and says so
            // if there was something to cut (here: this run's, after the previous kill;
            // unless a `reel list read` below got there first).
            mid_write += usize::from(cut_by_recovery(&out.stderr));
            // Checking the store takes a while: the topic should not run away meanwhile.
            paused.store(true, Ordering::Relaxed);
            let mut after = 0;
            for p in 0..2 {
                // Every kill leaves a gapless prefix of each partition behind.
                let got = stored(&dir, p);
                assert!(
                    got.iter().enumerate().all(|(i, x)| *x == i as u64),
                    "partition {p} after a kill"
                );
                after += got.len();
            }
            // The kill hit while records were still on their way into the store.
            behind += usize::from((after as u64) < produced);
            progressed += usize::from(after > before);
            before = after;
        }
    });
    assert!(
        progressed * 2 >= trials,
        "only {progressed} of {trials} runs stored anything before their kill"
    );
    let out = consume(&b, "kill", &["--key-parser", "RecordPartition"], &dir);
    assert!(out.status.success());
    mid_write += usize::from(cut_by_recovery(&out.stderr));
    // The kills meant: while fetched records were on their way into the store, and (every
    // other one) inside an append.
    eprintln!(
        "{trials} kills: {behind} with records not yet stored, {aimed} aimed inside an append, {mid_write} cut by recovery"
    );
    assert!(
        behind * 2 >= trials,
        "only {behind} of {trials} kills landed while records were in flight"
    );
    // `writing` set in the head is the log's own mark of an append in progress: the
    // killed bridge had started a batch and not published it. Recovery then cuts what
    // it wrote ("cut by recovery": only when bytes had reached the file already).
    assert!(aimed >= 1, "no kill could be aimed inside an append");

    assert_exactly_once(&dir, &counts);
}

#[test]
fn kill_9_of_the_bridge_stores_each_record_once_in_order() {
    kill_loop(5);
}

#[test]
#[ignore = "long: 50 kills; run with --ignored"]
fn kill_9_of_the_bridge_50_times_stores_each_record_once_in_order() {
    kill_loop(50);
}

/// The member holding each partition, from its newest checkpoint.
fn holders(dir: &Path, group: &str, topic: &str, parts: usize) -> Vec<Option<String>> {
    (0..parts)
        .map(|p| {
            let key = format!("_kafka/{group}/{topic}/{p}");
            let page = lines(&ok(&[
                "list",
                "read",
                "--reverse",
                "--limit",
                "1",
                s(dir),
                &key,
            ]))
            .remove(0);
            let cp = page["items"].get(0)?["value"].clone();
            (cp["expires"].as_i64()? > 0)
                .then(|| cp["member"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_group_shares_partitions_and_loses_nothing_when_a_member_dies() {
    let b = Broker::start();
    let parts = b.topic("grp", 4);
    let counts: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
    let (stop, paused) = (AtomicBool::new(false), AtomicBool::new(false));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lists");
    ok(&["init", "--kind", "lists", s(&dir)]);
    let group = ["--group", "g", "--lease", "1s"];
    std::thread::scope(|scope| {
        let stop_producer = SetOnDrop(&stop);
        let producer = scope.spawn(|| produce_until(&b, &parts, &counts, &stop, &paused));
        let a = bridge(&b, "grp", &group, &dir);
        let c = bridge(&b, "grp", &group, &dir);
        let a_id = format!("{}-", a.id());
        // Both members hold partitions: two each once they agree.
        wait_for(
            "two members sharing the partitions",
            Duration::from_secs(30),
            || {
                let h = holders(&dir, "g", "grp", 4);
                let a_n = h.iter().flatten().filter(|m| m.starts_with(&a_id)).count();
                h.iter().all(Option::is_some) && a_n == 2
            },
        );
        a.kill9();
        // The survivor takes over every partition after the lease.
        wait_for(
            "the survivor holding all partitions",
            Duration::from_secs(30),
            || {
                let h = holders(&dir, "g", "grp", 4);
                h.iter()
                    .all(|m| m.as_ref().is_some_and(|m| !m.starts_with(&a_id)))
            },
        );
        std::thread::sleep(Duration::from_millis(300));
        drop(stop_producer);
        producer.join().unwrap();
        wait_stored(&dir, &counts, Duration::from_secs(60));
        c.kill9();
    });
    assert_exactly_once(&dir, &counts);
}

#[test]
fn sigterm_stores_what_was_fetched_and_hands_the_partitions_back() {
    let b = Broker::start();
    let parts = b.topic("term", 2);
    for p in &parts {
        let recs = (0..10)
            .map(|i| record(format!("{{\"i\":{i}}}").as_bytes(), None, &[]))
            .collect();
        b.produce(p, recs);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lists");
    // A long batch interval keeps the records pending; a long lease would keep the
    // partitions from the group for 60 s unless they are released.
    let args = ["--group", "g", "--lease", "60s", "--batch-interval", "60s"];
    let child = spawn_consume(&b, "term", &args, &dir);
    let first = format!("{}-", child.id());
    wait_for(
        "the bridge to claim both partitions",
        Duration::from_secs(20),
        || {
            dir.join("reel.meta").exists()
                && holders(&dir, "g", "term", 2).iter().all(Option::is_some)
        },
    );
    assert!(
        stored(&dir, 0).is_empty(),
        "stored before the batch interval"
    );
    std::thread::sleep(Duration::from_millis(500)); // the fetchers read the records
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines(&String::from_utf8(out.stdout).unwrap())[0]["stored"],
        20
    );
    assert_eq!(stored(&dir, 0), (0..10).collect::<Vec<_>>());
    assert_eq!(stored(&dir, 1), (0..10).collect::<Vec<_>>());
    assert_eq!(
        holders(&dir, "g", "term", 2),
        [None, None],
        "leases released"
    );
    // Another member takes the partitions at once, with nothing left to store.
    let t = Instant::now();
    let r = consume_ok(&b, "term", &["--group", "g", "--lease", "60s"], &dir);
    assert_eq!(r["stored"], 0);
    assert!(t.elapsed() < Duration::from_secs(20), "waited for a lease");
    for p in 0..2 {
        let cp = values(&dir, &format!("_kafka/g/term/{p}")).pop().unwrap();
        assert!(!cp["member"].as_str().unwrap().starts_with(&first), "{cp}");
        assert_eq!(cp["offset"], 10, "{cp}");
    }
    assert_eq!(stored(&dir, 0).len(), 10);
}
