//! Many processes on one spool: concurrent writers and readers, prompt cross-process
//! wake-up, kill -9 of writers and readers, snapshots taken while writing.
mod common;
use common::*;
use reel::{Durability, Spool};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn concurrent_writer_and_reader_processes_see_every_record_once_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "64m", s(&d)]);
    let (writers, per) = (3, 2000);
    let total = writers * per;
    let readers: Vec<_> = (0..3)
        .map(|r| {
            Command::new(bin())
                .args([
                    "read",
                    "--reader",
                    &format!("r{r}"),
                    "--count",
                    &total.to_string(),
                    "--timeout",
                    "30",
                    s(&d),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ws: Vec<_> = (0..writers)
        .map(|w| {
            let mut c = Command::new(bin())
                .args(["write", s(&d)])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = c.stdin.take().unwrap();
            std::thread::spawn(move || {
                for i in 0..per {
                    // Small writes so the writers interleave.
                    writeln!(stdin, "{{\"w\":{w},\"i\":{i}}}").unwrap();
                }
            });
            c
        })
        .collect();
    for mut w in ws {
        assert!(w.wait().unwrap().success());
    }
    for r in readers {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success());
        let got = lines(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(got.len(), total);
        let mut next: HashMap<u64, u64> = HashMap::new();
        for v in &got {
            let (w, i) = (v["w"].as_u64().unwrap(), v["i"].as_u64().unwrap());
            let n = next.entry(w).or_default();
            assert_eq!(i, *n, "writer {w}'s records out of order or duplicated");
            *n += 1;
        }
    }
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--json", s(&d)])).unwrap();
    assert_eq!(st["next_seq"], total as u64, "every record stored once");
}

#[test]
fn a_reader_blocked_in_another_process_wakes_promptly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    for round in 0..5 {
        let child = Command::new(bin())
            .args(["read", "--count", "1", "--timeout", "30", s(&d)])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Append only once the child is asleep on the head (it registered as a waiter).
        wait_until("the reading child blocks", Duration::from_secs(20), || {
            head_word(&d, WAITERS) > 0
        });
        let t = Instant::now();
        ok(&["write", s(&d), &round.to_string()]);
        let out = child.wait_with_output().unwrap();
        let took = t.elapsed();
        assert_eq!(
            lines(&String::from_utf8(out.stdout).unwrap()),
            vec![serde_json::json!(round)]
        );
        // Process start-up of `reel write` dominates; the wake-up itself is microseconds
        // (see `reel bench`). Far below the blocked reader's 30 s timeout.
        assert!(took < Duration::from_secs(3), "woke after {took:?}");
    }
}

/// Child mode: appends batches of `BATCH` records (durability `always` or `none` from
/// REEL_CHILD_DURABILITY), printing `ACK <i> <seq>` for each record of a batch once its
/// append returned. Runs only when the parent test sets REEL_CHILD_WRITER.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var("REEL_CHILD_WRITER") else {
        return;
    };
    let start: u64 = std::env::var("REEL_CHILD_START").unwrap().parse().unwrap();
    let durability = match std::env::var("REEL_CHILD_DURABILITY").as_deref() {
        Ok("none") => Durability::None,
        _ => Durability::Always,
    };
    let spool = Spool::builder(&dir)
        .create(false)
        .durability(durability)
        .open()
        .unwrap();
    let mut out = std::io::stdout().lock();
    let mut acks = String::new();
    for first in (start..).step_by(BATCH as usize) {
        let batch: Vec<reel::NewRecord> = (first..first + BATCH)
            .map(|i| serde_json::json!({ "i": i, "pad": "z".repeat((i % 300) as usize) }).into())
            .collect();
        let seqs = spool.append_batch(&batch).unwrap();
        acks.clear();
        for (i, seq) in (first..).zip(seqs) {
            acks.push_str(&format!("ACK {i} {seq}\n"));
        }
        out.write_all(acks.as_bytes()).unwrap();
        out.flush().unwrap();
    }
}

/// Child mode: a named reader printing `GOT <i>` and committing after each record.
#[test]
fn child_reader() {
    let Ok(dir) = std::env::var("REEL_CHILD_READER") else {
        return;
    };
    let spool = Spool::open(&dir).unwrap();
    let mut r = spool.reader("crashy").unwrap();
    let mut out = std::io::stdout().lock();
    while let Some(rec) = r.next_timeout(Duration::from_secs(30)).unwrap() {
        writeln!(out, "GOT {}", rec.value.to_json().unwrap()["i"]).unwrap();
        out.flush().unwrap();
        r.commit().unwrap();
    }
}

fn spawn_child(test: &str, env: &[(&str, String)]) -> std::process::Child {
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new(exe);
    c.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// Collects the `PREFIX n` lines a child printed until it died; each number is also sent
/// to the returned receiver as soon as it is read.
fn collect(
    child: &mut std::process::Child,
    prefix: &'static str,
) -> (std::thread::JoinHandle<Vec<u64>>, mpsc::Receiver<u64>) {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            // libtest prints "test NAME ... " without a newline before the child's first line.
            .filter_map(|l| {
                l.find(prefix)
                    .and_then(|at| l[at + prefix.len()..].split(' ').next()?.parse().ok())
            })
            .inspect(|&n| {
                let _ = tx.send(n);
            })
            .collect()
    });
    (h, rx)
}

/// Byte offsets of words of `reel.head` (FORMAT.md §5; u32, native-endian).
const WRITING: usize = 12;
const WAITERS: usize = 20;

/// A u32 word of the spool's shared head file, as any process would see it now.
fn head_word(spool: &std::path::Path, offset: usize) -> u32 {
    let head = std::fs::read(spool.join(reel_log::HEAD_FILE)).unwrap();
    u32::from_ne_bytes(head[offset..offset + 4].try_into().unwrap())
}

/// Spins until `cond` holds; fails the test after `timeout`.
fn wait_until(what: &str, timeout: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}

/// Records per append of the child writer.
const BATCH: u64 = 500;

/// kill -9 of a writer and a reader, again and again: no acknowledged record is lost,
/// nothing is stored twice or out of order, and the reader never skips. The writer
/// appends batches, alternately with durability `always` and `none` (a killed process
/// leaves the page cache behind, so both keep every acknowledged record). A kill counts
/// as landing mid-write when the dead writer left the head's `writing` word set, or the
/// next open had to cut its tail; the test fails if no kill did.
#[test]
fn kill_9_of_writers_and_readers_never_loses_acknowledged_records_or_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "256m", "--when-full", "reject", s(&d)]);
    let dir = s(&d).to_string();
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut got: BTreeSet<u64> = BTreeSet::new();
    let mut last_got_max: Option<u64> = None;
    let mut rng = 0x1234_5678u64;
    let mut next_i = 0;
    let mut prev_tail: Vec<u64> = Vec::new();
    // `i` of the record at each seq, every `i` stored, and where the last round began.
    let mut by_seq: Vec<u64> = Vec::new();
    let mut stored: BTreeSet<u64> = BTreeSet::new();
    let mut prev_round_start = 0;
    let rounds = 30;
    let mut mid_write = 0;
    for round in 0..rounds {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let durability = if round % 2 == 0 { "always" } else { "none" };
        let mut w = spawn_child(
            "child_writer",
            &[
                ("REEL_CHILD_WRITER", dir.clone()),
                ("REEL_CHILD_START", next_i.to_string()),
                ("REEL_CHILD_DURABILITY", durability.to_string()),
            ],
        );
        let mut r = spawn_child("child_reader", &[("REEL_CHILD_READER", dir.clone())]);
        let (wl, acks_so_far) = collect(&mut w, "ACK ");
        let (rl, _) = collect(&mut r, "GOT ");
        // Kill while the writer is busy: once it acknowledged one to three batches (its
        // first publish also cleared a `writing` word a previous victim left set) ...
        for _ in 0..(1 + rng % 3) * BATCH {
            acks_so_far
                .recv_timeout(Duration::from_secs(30))
                .expect("the writer acknowledges appends");
        }
        // ... and, every other pair of rounds, only once the head says it is inside a
        // write (between its first byte written and its publish).
        let aim_mid_write = round / 2 % 2 == 1;
        if aim_mid_write {
            let head = std::fs::File::open(d.join(reel_log::HEAD_FILE)).unwrap();
            wait_until("the writer writes", Duration::from_secs(30), || {
                let mut word = [0u8; 4];
                std::os::unix::fs::FileExt::read_exact_at(&head, &mut word, WRITING as u64)
                    .unwrap();
                u32::from_ne_bytes(word) != 0
            });
        }
        // SIGKILL both, in either order.
        if aim_mid_write || round / 4 % 2 == 0 {
            w.kill().unwrap();
            r.kill().unwrap();
        } else {
            r.kill().unwrap();
            w.kill().unwrap();
        }
        w.wait().unwrap();
        r.wait().unwrap();
        // Before anyone reopens the spool: did the writer die between its first write and
        // its publish?
        let writing = head_word(&d, WRITING) != 0;
        let acks = wl.join().unwrap();
        let gots = rl.join().unwrap();
        // A restarted reader resumes at or before the record after the last it printed.
        if let (Some(prev_max), Some(first)) = (last_got_max, gots.first())
            && *first > prev_max + 1
        {
            let spool = Spool::open(&d).unwrap();
            let around: Vec<String> = spool
                .iter(prev_max.saturating_sub(2)..prev_max + 4)
                .map(|r| {
                    let r = r.unwrap();
                    format!("seq {} i {}", r.seq, r.value.to_json().unwrap()["i"])
                })
                .collect();
            let cur = reel::cursor::list_cursors(&**spool.log().storage(), &d).unwrap();
            panic!(
                "round {round}: reader skipped from {prev_max} to {first}; gots {:?}; acks {:?}; log {around:?}; cursors {cur:?}; prev tail {prev_tail:?}",
                &gots[..gots.len().min(5)],
                acks.first()
            );
        }
        if let Some(m) = gots.iter().max() {
            last_got_max = Some(last_got_max.map_or(*m, |p: u64| p.max(*m)));
        }
        prev_tail = gots.iter().rev().take(3).copied().collect();
        got.extend(gots);
        acked.extend(&acks);
        // Every acknowledged record is in the spool; the spool is dense and clean.
        let spool = Spool::open(&d).unwrap();
        let cut = spool
            .log()
            .recovery_report()
            .is_some_and(|r| r.cut.is_some());
        mid_write += u32::from(writing || cut);
        // The records of the previous round and this one are decoded again (recovery only
        // ever touches the tail); older ones were checked before and `verify` checks
        // every checksum.
        assert_eq!(spool.oldest_seq(), 0, "round {round}: nothing is dropped");
        let recheck_from = prev_round_start.min(by_seq.len() as u64);
        prev_round_start = by_seq.len() as u64;
        for (k, rec) in (recheck_from..).zip(spool.iter(recheck_from..)) {
            let rec = rec.unwrap();
            assert_eq!(rec.seq, k, "round {round}: gap");
            let i = rec.value.to_json().unwrap()["i"].as_u64().unwrap();
            match by_seq.get(k as usize) {
                Some(&before) => assert_eq!(i, before, "round {round}: seq {k} changed"),
                None => {
                    assert!(stored.insert(i), "round {round}: record {i} stored twice");
                    by_seq.push(i);
                }
            }
        }
        assert_eq!(
            by_seq.len() as u64,
            spool.next_seq(),
            "round {round}: records vanished"
        );
        for a in &acked {
            assert!(
                stored.contains(a),
                "round {round}: acknowledged record {a} lost"
            );
        }
        next_i = stored.iter().max().map_or(0, |m| m + 1);
        assert!(spool.verify().unwrap().is_ok(), "round {round}: verify");
    }
    eprintln!("kill -9: {mid_write} of {rounds} writer kills landed mid-write");
    assert!(
        mid_write > 0,
        "no kill landed between a write and its publish: the test did not test a crash"
    );
    assert!(
        acked.len() > 20,
        "the writer made progress ({} acks)",
        acked.len()
    );
    // The reader saw a gap-free prefix of what was stored.
    if let Some(&max) = got.iter().max() {
        let missing: Vec<u64> = (0..=max).filter(|i| !got.contains(i)).collect();
        assert!(missing.is_empty(), "reader never saw {missing:?}");
    }
}

#[test]
fn copying_a_spool_while_it_is_written_gives_a_readable_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "4m", s(&d)]);
    let mut writer = Command::new(bin())
        .args(["write", s(&d)])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    // Feeds until the writer is killed at the end: a fixed count could run out while
    // the copies are still being made (on a slow machine), and the test then waited for
    // appends that never came.
    let feeder = std::thread::spawn(move || {
        for i in 0u64.. {
            if i % 1000 == 999 {
                std::thread::sleep(Duration::from_millis(1));
            }
            if writeln!(
                stdin,
                "{{\"i\":{i},\"pad\":\"{}\"}}",
                "q".repeat((i % 50) as usize)
            )
            .is_err()
            {
                break;
            }
        }
    });
    let live = Spool::open(&d).unwrap();
    for k in 0..5 {
        // Copy while the writer is busy: once it appended another thousand records.
        let target = live.next_seq() + 1000;
        assert!(
            live.wait_for(target, Some(Duration::from_secs(30))),
            "the writer keeps appending"
        );
        let copy = tmp.path().join(format!("copy{k}"));
        // Retention may delete a segment between cp listing the directory and copying
        // it (cp then reports the missing file): a user copies again.
        let copied = (0..5).any(|_| {
            let _ = std::fs::remove_dir_all(&copy);
            Command::new("cp")
                .args(["-r", s(&d), s(&copy)])
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        });
        assert!(copied, "cp -r of the live spool failed 5 times");
        let spool = Spool::open(&copy).unwrap();
        let all: Vec<reel::Record> = spool.iter(..).collect::<Result<_, _>>().unwrap();
        let oldest = spool.oldest_seq();
        for (n, rec) in all.iter().enumerate() {
            assert_eq!(rec.seq, oldest + n as u64, "copy {k}: gap");
            assert_eq!(
                rec.value.to_json().unwrap()["i"].as_u64(),
                Some(rec.seq),
                "copy {k}: wrong record"
            );
        }
        // The copy is a spool of its own: it accepts appends.
        spool
            .append(serde_json::json!({"i": spool.next_seq()}))
            .unwrap();
        assert!(spool.verify().unwrap().is_ok());
    }
    drop(feeder);
    let _ = writer.kill();
    let _ = writer.wait();
}

#[test]
fn damaged_records_are_reported_and_skippable_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "1m", s(&d)]);
    let input: String = (0..4000)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "d".repeat(60)))
        .collect();
    assert!(reel_stdin(&["write", s(&d)], &input).status.success());
    let mut segs: Vec<_> = std::fs::read_dir(d.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3);
    let victim = &segs[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = 5000;
    bytes[at] ^= 0x55;
    std::fs::write(victim, bytes).unwrap();

    let out = reel(&["verify", s(&d)]);
    assert!(!out.status.success());
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains(&format!("DAMAGED {}", victim.display())) && report.contains("at byte"),
        "{report}"
    );

    let out = reel(&["read", "--no-wait", s(&d)]);
    assert!(!out.status.success());
    let good = lines(&String::from_utf8(out.stdout).unwrap());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&victim.display().to_string()) && err.contains("byte"),
        "{err}"
    );
    let hint = err
        .split("run: ")
        .nth(1)
        .expect("a command to skip the damage")
        .trim()
        .to_string();
    let args: Vec<&str> = hint.split_whitespace().skip(1).collect();
    ok(&args);
    let rest = lines(&ok(&["read", "--no-wait", s(&d)]));
    let resumed = rest[0]["i"].as_u64().unwrap();
    let last_good = good.last().map_or(0, |v| v["i"].as_u64().unwrap());
    assert!(
        resumed > last_good + 1 && resumed < last_good + 100,
        "resumed at {resumed} after {last_good}"
    );
    assert_eq!(rest.last().unwrap()["i"], 3999);
    for v in good.iter().chain(&rest) {
        assert_eq!(
            v["pad"].as_str().map(str::len),
            Some(60),
            "no damaged record is returned"
        );
    }
}
