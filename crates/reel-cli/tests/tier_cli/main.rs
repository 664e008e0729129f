//! Tiered stores against a real S3-compatible server (SeaweedFS, see `weed.rs`), driven
//! through the `reel` binary as a user would: `init --object-store`, writes that upload,
//! `s3://` read commands on a machine that never saw the writer's directory, fencing of
//! a second writer, continuing a store in a new directory, kill -9 during uploads.

#[allow(dead_code)]
#[path = "../kafka_cli/broker.rs"]
mod broker;
mod faulty;
#[allow(dead_code)]
#[path = "../serve_http/proxy.rs"]
mod proxy;
mod readers;
mod uploads;
mod weed;

use std::process::{Command, Stdio};
use weed::{fails, ok, reel, s, url};

#[test]
fn a_tiered_store_reads_the_same_from_object_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("same");
    let init = ok(&["init", "--object-store", &u, s(&dir)]);
    assert!(init.contains("is kept in"), "{init}");
    let input: String = (0..2000)
        .map(|i| format!("{{\"i\":{i},\"s\":\"é{i}\"}}\n"))
        .collect();
    let out = reel(&["write", "--key", "k", s(&dir)], Some(&input));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&["write", s(&dir), "{\"last\":true}"]);
    let local = ok(&["stream", "--meta", s(&dir)]);
    // Another "machine": no access to DIR, only the URL (and its own cache).
    let remote = ok(&["stream", "--meta", &u]);
    assert_eq!(remote, local);
    assert_eq!(remote.lines().count(), 2001);
    let status = ok(&["status", "--json", &u]);
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["next_seq"], 2001, "{st}");
    assert_eq!(st["follows"], u.as_str());
    let v = ok(&["verify", &u]);
    assert!(!v.is_empty());
    // Writes go to the writer's directory, never to the URL.
    let err = fails(&["write", &u, "{}"]);
    assert!(err.contains("writer directory"), "{err}");
}

#[test]
fn readers_keep_their_positions_in_object_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("readers");
    ok(&["init", "--object-store", &u, s(&dir)]);
    ok(&["write", s(&dir), "1", "2", "3", "4", "5"]);
    assert_eq!(ok(&["read", "--count", "2", &u]), "1\n2\n");
    // A new process, a new (temporary) cache: the position came from object storage.
    assert_eq!(ok(&["read", "--no-wait", &u]), "3\n4\n5\n");
    assert_eq!(ok(&["read", "--no-wait", &u]), "");
    assert_eq!(
        ok(&["read", "--no-wait", "--reader", "other", &u]),
        "1\n2\n3\n4\n5\n"
    );
    // A kept cache is reused and brought up to date.
    let cache = tmp.path().join("cache");
    ok(&["write", s(&dir), "6"]);
    assert_eq!(ok(&["read", "--no-wait", "--cache", s(&cache), &u]), "6\n");
    ok(&["write", s(&dir), "7"]);
    assert_eq!(
        ok(&["stream", "--gte", "5", "--cache", s(&cache), &u]),
        "6\n7\n"
    );
}

#[test]
fn a_live_reader_follows_new_uploads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("live");
    ok(&["init", "--object-store", &u, s(&dir)]);
    ok(&["write", s(&dir), "\"first\""]);
    let reader = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["read", "--count", "2", "--timeout", "30", &u])
        .envs(weed::env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    ok(&["write", s(&dir), "\"second\""]);
    let out = reader.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\"first\"\n\"second\"\n"
    );
}

#[test]
fn a_second_writer_fences_the_first_and_the_log_stays_dense() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let u = url("fence");
    ok(&["init", "--object-store", &u, s(&a)]);
    ok(&["write", s(&a), "\"a1\"", "\"a2\""]);
    let cont = ok(&["init", "--object-store", &u, s(&b)]);
    assert!(
        cont.contains("2 records copied") && cont.contains("epoch 2"),
        "{cont}"
    );
    let err = fails(&["write", s(&a), "\"a3\""]);
    assert!(err.contains("fenced") && err.contains(s(&b)), "{err}");
    ok(&["write", "--durability", "object", s(&b), "\"b3\""]);
    assert_eq!(ok(&["stream", &u]), "\"a1\"\n\"a2\"\n\"b3\"\n");
    // `reel status` on either directory says who writes the store and how far it got.
    let st = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&ok(&["status", "--json", s(d)])).unwrap()
    };
    let (sa, sb) = (st(&a), st(&b));
    assert_eq!(sa["object_store"]["fenced"], true, "{sa}");
    assert_eq!(sb["object_store"]["fenced"], false, "{sb}");
    assert_eq!(sb["object_store"]["uploaded_next_seq"], 3, "{sb}");
    assert_eq!(sb["object_store"]["pending_records"], 0, "{sb}");
    let text = ok(&["status", s(&a)]);
    assert!(text.contains("FENCED") && text.contains(s(&b)), "{text}");
    // Continuing needs a new directory; a directory already tiered is refused.
    let err = fails(&["init", "--object-store", &u, s(&a)]);
    assert!(err.contains("already"), "{err}");
}

#[test]
fn kv_and_lists_are_served_from_object_storage_and_continue_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (kv, lists) = (tmp.path().join("kv"), tmp.path().join("lists"));
    let (ku, lu) = (url("kv"), url("lists"));
    ok(&["init", "--kind", "kv", "--object-store", &ku, s(&kv)]);
    ok(&["kv", "set", "-e", s(&kv), "app.port", "8080"]);
    ok(&["kv", "set", s(&kv), "app.name", "web"]);
    ok(&["kv", "del", s(&kv), "app.name"]);
    assert_eq!(ok(&["kv", "get", &ku, "app.port"]), "8080\n");
    assert_eq!(ok(&["kv", "keys", "-r", &ku, "app"]), "app.port\n");
    ok(&["init", "--kind", "lists", "--object-store", &lu, s(&lists)]);
    ok(&[
        "list",
        "append",
        "--nonce",
        "1",
        s(&lists),
        "orders",
        "{\"id\":1}",
        "{\"id\":2}",
    ]);
    let page = ok(&["list", "read", &lu, "orders"]);
    assert_eq!(page, ok(&["list", "read", s(&lists), "orders"]));
    // The whole kv store rebuilt on a new machine: the same answers, and writable there.
    let kv2 = tmp.path().join("kv2");
    ok(&["init", "--object-store", &ku, s(&kv2)]);
    assert_eq!(
        ok(&["kv", "get", "--meta", s(&kv2), "app.port"]),
        ok(&["kv", "get", "--meta", s(&kv), "app.port"])
    );
    ok(&["kv", "set", "-e", s(&kv2), "app.port", "9090"]);
    assert_eq!(ok(&["kv", "get", &ku, "app.port"]), "9090\n");
    let err = fails(&["kv", "set", "-e", s(&kv), "app.port", "1"]);
    assert!(err.contains("fenced"), "{err}");
}

#[test]
fn kill_9_during_uploads_loses_nothing_uploaded_and_leaves_no_hole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("kill");
    ok(&[
        "init",
        "--object-store",
        &u,
        "--seal-after",
        "0.05",
        s(&dir),
    ]);
    let mut written = 0u64;
    for round in 0..5u64 {
        // A streaming writer uploading every 50 ms, killed at a varying moment.
        let mut child = Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(["write", s(&dir)])
            .envs(weed::env())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_millis(150 + 70 * round);
        while std::time::Instant::now() < until {
            use std::io::Write;
            let batch: String = (0..50)
                .map(|i| format!("{{\"r\":{round},\"i\":{i}}}\n"))
                .collect();
            if stdin.write_all(batch.as_bytes()).is_err() {
                break;
            }
            written += 50;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        drop(stdin);
    }
    // The next write uploads whatever the killed writers left behind.
    ok(&["write", "--durability", "object", s(&dir), "\"end\""]);
    let local = ok(&["stream", "--meta", s(&dir)]);
    let remote = ok(&["stream", "--meta", &u]);
    assert_eq!(remote, local, "object storage holds exactly the local log");
    let seqs: Vec<u64> = remote
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "dense");
    assert!(seqs.len() as u64 <= written + 1);
    ok(&["verify", &u]);
}

#[test]
fn concurrent_creations_have_one_winner() {
    let tmp = tempfile::tempdir().unwrap();
    let u = url("race");
    let outs: Vec<std::process::Output> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let d = tmp.path().join(format!("d{i}"));
                let u = &u;
                sc.spawn(move || reel(&["init", "--object-store", u, s(&d)], None))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let text: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .collect();
    let created = text.iter().filter(|t| t.contains("is kept in")).count();
    assert_eq!(
        created,
        1,
        "{text:?} {:?}",
        outs.iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn reel_serve_uploads_a_tiered_store_it_writes() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let u = url("serve");
    ok(&[
        "init",
        "--object-store",
        &u,
        "--seal-after",
        "0.2",
        s(&root.join("ev")),
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), s(&root)])
        .envs(weed::env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut conn = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() > deadline => panic!("server: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    let body = "{\"n\":1}\n{\"n\":2}\n";
    write!(
        conn,
        "POST /v1/stores/ev/records HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Uploaded within a few intervals, by the server itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = ok(&["stream", &u]);
        if got == "{\"n\":1}\n{\"n\":2}\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not uploaded: {got:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Another directory takes the store over: the server refuses writes, naming it.
    let b = tmp.path().join("b");
    ok(&["init", "--object-store", &u, s(&b)]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            conn,
            "POST /v1/stores/ev/records HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: 8\r\nConnection: close\r\n\r\n{{\"n\":3}}\n"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        if answer.starts_with("HTTP/1.1 409") {
            assert!(
                answer.contains("fenced") && answer.contains(s(&b)),
                "{answer}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never refused: {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn many_small_writes_are_merged_and_read_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let cache = tmp.path().join("cache");
    let u = url("merge");
    ok(&["init", "--object-store", &u, s(&dir)]);
    // One object per command: the 16th merges them; a kept cache crosses the merge.
    for i in 0..20 {
        ok(&["write", s(&dir), &format!("{{\"i\":{i}}}")]);
        if i == 10 {
            ok(&["stream", "--cache", s(&cache), &u]);
        }
    }
    let local = ok(&["stream", "--meta", s(&dir)]);
    assert_eq!(ok(&["stream", "--meta", "--cache", s(&cache), &u]), local);
    assert_eq!(ok(&["stream", "--meta", &u]), local);
    assert_eq!(local.lines().count(), 20);
}

#[test]
fn object_retention_keeps_the_newest_and_readers_continue_after_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("retention");
    let err = fails(&[
        "init",
        "--object-store",
        &u,
        "--object-retention",
        "lots",
        s(&dir),
    ]);
    assert!(err.contains("object retention"), "{err}");
    // One byte: only the newest object is kept.
    ok(&[
        "init",
        "--object-store",
        &u,
        "--object-retention",
        "1",
        s(&dir),
    ]);
    ok(&["write", s(&dir), "1", "2"]);
    let cache = tmp.path().join("cache");
    assert_eq!(ok(&["stream", "--cache", s(&cache), &u]), "1\n2\n");
    ok(&["write", s(&dir), "3"]);
    ok(&["write", s(&dir), "4", "5"]);
    // A new copy holds what object storage keeps; the kept copy continues after the gap.
    assert_eq!(ok(&["stream", &u]), "4\n5\n");
    assert_eq!(ok(&["stream", "--cache", s(&cache), &u]), "1\n2\n4\n5\n");
    // The writer's own directory keeps everything (its capacity is its own).
    assert_eq!(ok(&["stream", s(&dir)]), "1\n2\n3\n4\n5\n");
}

#[test]
fn uploads_through_cut_connections_never_acknowledge_what_is_not_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("faults");
    ok(&["init", "--object-store", &u, s(&dir)]);
    let proxy = proxy::Proxy::start("127.0.0.1:8333".parse().unwrap());
    let via_proxy: Vec<(&str, String)> = weed::env()
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT" {
                (k, format!("http://{}", proxy.addr))
            } else {
                (k, v)
            }
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cutter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut cuts = 0;
            let mut n = 7u64;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                std::thread::sleep(std::time::Duration::from_millis(2 + (n >> 33) % 40));
                cuts += proxy.cut_open();
            }
            cuts
        })
    };
    let (acked, refused) = object_writes(&dir, &u, &via_proxy, 20);
    stop.store(true, std::sync::atomic::Ordering::Release);
    let cuts = cutter.join().unwrap();
    // With the connection whole again, one more write uploads whatever is left.
    ok(&["write", "--durability", "object", s(&dir), "\"end\""]);
    assert_eq!(
        ok(&["stream", "--meta", &u]),
        ok(&["stream", "--meta", s(&dir)])
    );
    println!("{acked} writes acknowledged, {refused} refused, {cuts} connections cut");
    assert!(
        acked > 0 && cuts > 0,
        "no write got through or nothing was cut: the test says nothing"
    );
}

#[test]
fn answers_503_and_slow_puts_are_retried_and_nothing_unstored_is_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("slowdown");
    ok(&["init", "--object-store", &u, s(&dir)]);
    let faulty = faulty::Faulty::start(
        "127.0.0.1:8333".parse().unwrap(),
        25,
        15,
        std::time::Duration::from_millis(1500),
    );
    let env: Vec<(&str, String)> = weed::env()
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT" {
                (k, format!("http://{}", faulty.addr))
            } else {
                (k, v)
            }
        })
        .collect();
    let (acked, refused) = object_writes(&dir, &u, &env, 12);
    // Reads through the same faults.
    let through = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["stream", &u])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    ok(&["write", "--durability", "object", s(&dir), "\"end\""]);
    assert_eq!(
        ok(&["stream", "--meta", &u]),
        ok(&["stream", "--meta", s(&dir)])
    );
    let (e503, slow) = (
        faulty
            .answered_503
            .load(std::sync::atomic::Ordering::Relaxed),
        faulty.delayed.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!(
        "{acked} acknowledged, {refused} refused; {e503} answers 503, {slow} slow connections"
    );
    assert!(
        e503 > 0 && slow > 0 && acked > 0,
        "the faults did not happen"
    );
    if through.status.success() {
        let text = String::from_utf8(through.stdout).unwrap();
        assert!(text.lines().count() >= acked, "{text}");
    }
}

/// Writes `0..n` to `dir` one `reel write --durability object` each, with `env` (a
/// faulty path to object storage); every acknowledged write must be in object storage
/// at `url` at once, every refused one must say why. Returns (acknowledged, refused).
fn object_writes(
    dir: &std::path::Path,
    url: &str,
    env: &[(&str, String)],
    n: usize,
) -> (usize, usize) {
    let (mut acked, mut refused) = (0, 0);
    for i in 0..n {
        let out = Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(["write", "--durability", "object", s(dir), &i.to_string()])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        if out.status.success() {
            acked += 1;
            // Acknowledged with durability object: in object storage now.
            let there = ok(&["stream", url]);
            assert!(
                there.lines().any(|l| l == i.to_string()),
                "write {i} was acknowledged but object storage lacks it: {there:?}"
            );
        } else {
            refused += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("object store"), "{err}");
        }
    }
    (acked, refused)
}
