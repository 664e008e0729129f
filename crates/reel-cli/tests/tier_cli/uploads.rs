//! What write commands on a tiered directory promise (README "Writers"): what they
//! append is uploaded before they exit or they fail saying what is missing, and a fenced
//! directory takes no more records. `reel kafka consume` and `reel tee` are writers too.

use crate::broker::{Broker, record};
use crate::weed::{self, fails, ok, reel, s, url};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str], envs: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn count(dir_or_url: &str) -> usize {
    ok(&["stream", dir_or_url]).lines().count()
}

/// Waits until `cond` holds (at most 20 s).
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_streaming_write_taken_over_stops_appending_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let u = url("fenced-stream");
    ok(&["init", "--object-store", &u, "--seal-after", "0.05", s(&a)]);
    let env: Vec<(&str, String)> = weed::env().into();
    let mut child = spawn(&["write", s(&a)], &env);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"early\":1}\n{\"early\":2}\n").unwrap();
    stdin.flush().unwrap();
    until("the first records uploaded", || count(&u) == 2);
    ok(&["init", "--object-store", &u, s(&b)]);
    // Well past the writer's next upload attempt (every 50 ms): it knows it is fenced.
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..20 {
        if stdin
            .write_all(format!("{{\"late\":{i}}}\n").as_bytes())
            .is_err()
        {
            break;
        }
        let _ = stdin.flush();
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a fenced writer exited 0: {err}");
    assert!(err.contains("fenced") && err.contains(s(&b)), "{err}");
    let local = ok(&["stream", s(&a)]);
    assert!(!local.contains("late"), "appended after the fence: {local}");
    assert_eq!(count(&u), 2);
}

#[test]
fn a_write_whose_final_upload_fails_exits_1_and_the_next_write_uploads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("upload-fails");
    // No upload while streaming: only the one at exit.
    ok(&[
        "init",
        "--object-store",
        &u,
        "--seal-after",
        "3600",
        s(&dir),
    ]);
    let proxy = crate::proxy::Proxy::start("127.0.0.1:8333".parse().unwrap());
    let env: Vec<(&str, String)> = weed::env()
        .into_iter()
        .map(|(k, v)| match k {
            "AWS_ENDPOINT" => (k, format!("http://{}", proxy.addr)),
            _ => (k, v),
        })
        .collect();
    let mut child = spawn(&["write", s(&dir)], &env);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"1\n2\n3\n").unwrap();
    stdin.flush().unwrap();
    until("the records stored locally", || count(s(&dir)) == 3);
    // Object storage unreachable from here on (refused, and open connections cut).
    drop(proxy);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit 0 with nothing uploaded: {err}");
    assert!(
        err.contains("3 records are stored in") && err.contains("the next write command"),
        "{err}"
    );
    assert_eq!(count(&u), 0);
    ok(&["write", s(&dir), "4"]);
    assert_eq!(ok(&["stream", &u]), "1\n2\n3\n4\n");
}

#[test]
fn tee_into_a_tiered_directory_uploads_and_is_refused_once_fenced() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, a, b) = (
        tmp.path().join("src"),
        tmp.path().join("a"),
        tmp.path().join("b"),
    );
    let u = url("tee");
    ok(&["init", s(&src)]);
    ok(&["write", s(&src), "1", "2", "3"]);
    ok(&["init", "--object-store", &u, s(&a)]);
    ok(&["tee", "--no-wait", s(&src), s(&a)]);
    assert_eq!(ok(&["stream", &u]), "1\n2\n3\n");
    ok(&["init", "--object-store", &u, s(&b)]);
    ok(&["write", s(&src), "4"]);
    let err = fails(&["tee", "--no-wait", s(&src), s(&a)]);
    assert!(err.contains("fenced"), "{err}");
    assert_eq!(count(s(&a)), 3, "a fenced directory took records");
}

fn list_count(dir_or_url: &str) -> serde_json::Value {
    let info = ok(&["list", "info", "--json", dir_or_url, "k"]);
    serde_json::from_str::<serde_json::Value>(&info).unwrap()["count"].clone()
}

fn consume(b: &Broker, dir: &Path) -> std::process::Output {
    reel(
        &[
            "kafka",
            "consume",
            "--once",
            "--brokers",
            &b.addr,
            "--topic",
            "t",
            "--key-parser",
            "RecordKey",
            s(dir),
        ],
        None,
    )
}

#[test]
fn kafka_consume_into_a_tiered_directory_uploads_and_is_refused_once_fenced() {
    let broker = Broker::start();
    let p = broker.topic("t", 1);
    let recs = |from: u32, to: u32| {
        (from..to)
            .map(|i| record(format!("{i}").as_bytes(), Some(b"k"), &[]))
            .collect()
    };
    broker.produce(&p[0], recs(0, 5));
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let u = url("kafka");
    ok(&["init", "--kind", "lists", "--object-store", &u, s(&a)]);
    let out = consume(&broker, &a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(list_count(&u), 5);
    ok(&["init", "--object-store", &u, s(&b)]);
    broker.produce(&p[0], recs(5, 8));
    let out = consume(&broker, &a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("fenced"), "{err}");
    assert_eq!(list_count(s(&a)), 5, "a fenced directory took records");
    // The new writer continues from the uploaded checkpoint.
    let out = consume(&broker, &b);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(list_count(&u), 8);
}
