//! The remote CLI when the network or the server misbehaves: an answer lost after the
//! request was applied, a server that restarts under a live stream, and a server that
//! accepts connections but never answers.

use crate::Server;
use crate::common::{bin, ok, reel};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A proxy to `target` that forwards everything, except the answer to the first request
/// starting with `method`: that request reaches the server, its answer is read and the
/// client's connection closed without it (an answer lost on the way back).
fn drop_first_answer(target: SocketAddr, method: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let dropped = dropped.clone();
            std::thread::spawn(move || relay(client, target, method, &dropped));
        }
    });
    addr
}

fn relay(mut client: TcpStream, target: SocketAddr, method: &str, dropped: &AtomicBool) {
    let Ok(mut server) = TcpStream::connect(target) else {
        return;
    };
    let mut start = [0u8; 8];
    let n = client.peek(&mut start).unwrap_or(0);
    if start[..n].starts_with(method.as_bytes()) && !dropped.swap(true, Ordering::SeqCst) {
        // The whole request: until the client has sent nothing for a moment.
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = client.read(&mut buf) {
            server.write_all(&buf[..n]).unwrap();
        }
        // The server answered (so the request was applied); the client never hears it.
        let _ = server.read(&mut buf).unwrap();
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Write);
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_conditional_write_whose_answer_was_lost_is_not_reported_as_a_failed_condition() {
    let s = Server::start(&[]);
    let dir = s.dir("cfg");
    ok(&["kv", "set", &dir, "k", "0"]);
    let url = format!("http://{}/cfg", drop_first_answer(s.addr, "PUT"));
    let out = reel(&["kv", "set", "--if-rev", "0", &url, "k", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("unknown") && err.contains("kv get --meta"),
        "{err}"
    );
    assert_eq!(ok(&["kv", "get", &dir, "k"]), "\"1\"\n", "it was applied");

    let url = format!("http://{}/cfg", drop_first_answer(s.addr, "PUT"));
    let out = reel(&["kv", "set", "--if-absent", &url, "lock", "me"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ok(&["kv", "get", &dir, "lock"]), "\"me\"\n");

    let lists = s.dir("li");
    let url = format!("http://{}/li", drop_first_answer(s.addr, "POST"));
    let out = reel(&["list", "append", "--nonce", "7", &url, "c", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("unknown") && err.contains("run the same command again"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("duplicates"));
    let page: serde_json::Value =
        serde_json::from_str(&ok(&["list", "read", &lists, "c"])).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
}

#[test]
fn a_live_stream_resumes_after_a_server_restart() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start_in(root.path(), &[]);
    let addr = s.addr.to_string();
    ok(&["init", &s.dir("ev")]);
    ok(&["write", &s.dir("ev"), "{\"n\":0}"]);
    let mut child = Command::new(bin())
        .args(["stream", "--live", &format!("http://{addr}/ev")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(first, "{\"n\":0}");
    assert!(s.terminate().success());
    let s = Server::start_at(root.path(), &addr, &[]);
    ok(&["write", &s.dir("ev"), "{\"n\":1}"]);
    let next = rx.recv_timeout(Duration::from_secs(20));
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(next.as_deref(), Ok("{\"n\":1}"), "still running: {running}");
    assert!(running);
}

/// A bounded live stream that the server ended twice with nothing new (two restarts
/// in a quiet moment) took the second end for "retention dropped the rest of my range"
/// and exited 0 before its bound.
#[test]
fn a_bounded_live_stream_outlives_two_quiet_restarts() {
    let root = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(root.path(), &[]);
    let addr = s.addr.to_string();
    ok(&["init", &s.dir("ev")]);
    ok(&["write", &s.dir("ev"), "{\"n\":0}"]);
    let mut child = Command::new(bin())
        .args([
            "stream",
            "--live",
            "--lt",
            "2",
            &format!("http://{addr}/ev"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        "{\"n\":0}"
    );
    for _ in 0..2 {
        assert!(s.terminate().success());
        s = Server::start_at(root.path(), &addr, &[]);
        std::thread::sleep(Duration::from_millis(1500));
    }
    let running = child.try_wait().unwrap().is_none();
    ok(&["write", &s.dir("ev"), "{\"n\":1}"]);
    let next = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "the stream ended before its bound");
    assert_eq!(next.as_deref(), Ok("{\"n\":1}"));
}

/// The lines `child` prints, as they come.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Runs `reel ARGS` with `REEL_TIMEOUT=1`; fails the test if it runs over `limit`.
fn run_within(args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .env("REEL_TIMEOUT", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("reel {args:?} still runs after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

#[test]
fn a_server_that_never_answers_fails_the_command_after_the_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming() {
            held.push(c);
        }
    });
    let url = format!("http://{addr}/cfg");
    for args in [
        vec!["kv", "get", &url, "k"],
        vec!["kv", "set", "--if-rev", "3", &url, "k", "1"],
        vec!["status", &url],
    ] {
        let (out, _) = run_within(&args, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("did not answer within 1 s"),
            "{args:?}: {}",
            stderr(&out)
        );
    }

    // Waits by design are not cut short: a long poll and a silent live stream.
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    let url = format!("http://{}/ev", s.addr);
    let (out, took) = run_within(
        &["read", "--reader", "r", "--timeout", "3", &url],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(took >= Duration::from_secs(3), "{took:?}");
    let dir = s.dir("ev");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        ok(&["write", &dir, "{\"n\":1}"]);
    });
    let (out, _) = run_within(
        &["stream", "--live", "--limit", "1", &url],
        Duration::from_secs(30),
    );
    writer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"n\":1}\n");
}
