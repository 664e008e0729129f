//! Helpers for the tests of the derived-state commands (stream, kv, list, view).
#![allow(dead_code)]

use super::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const PROMPT: Duration = Duration::from_secs(10);

pub fn parse(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON: {text:?}: {e}"))
}

pub fn status(dir: &Path) -> Value {
    parse(&ok(&["status", "--json", s(dir)]))
}

pub fn next_seq(dir: &Path) -> u64 {
    status(dir)["next_seq"].as_u64().unwrap()
}

/// Runs `reel ARGS`; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = reel(args);
    (
        out.status.code().expect("reel was killed by a signal"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `reel kv set`, returning the printed revision.
pub fn kv_set(dir: &Path, path: &str, value: &str) -> u64 {
    ok(&["kv", "set", s(dir), path, value])
        .trim()
        .parse()
        .expect("kv set prints a revision")
}

/// `reel kv set -e`, returning the printed revision.
pub fn kv_set_json(dir: &Path, path: &str, value: &str) -> u64 {
    ok(&["kv", "set", "-e", s(dir), path, value])
        .trim()
        .parse()
        .expect("kv set prints a revision")
}

pub fn kv_get(dir: &Path, path: &str) -> Value {
    parse(&ok(&["kv", "get", s(dir), path]))
}

pub fn kv_meta(dir: &Path, path: &str) -> Value {
    parse(&ok(&["kv", "get", "--meta", s(dir), path]))
}

pub fn text_lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A `reel` process whose stdout lines are read by a thread, so that a test can wait for
/// each line with a timeout. Killed when dropped.
pub struct Proc {
    pub child: Child,
    pub lines: Receiver<String>,
    pub what: String,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reel");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines: rx,
            what: format!("reel {args:?}"),
        }
    }

    /// The next stdout line, waiting at most `PROMPT`.
    pub fn line(&self) -> String {
        match self.lines.recv_timeout(PROMPT) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("{}: no line within {PROMPT:?}", self.what),
            Err(RecvTimeoutError::Disconnected) => panic!("{}: stdout closed early", self.what),
        }
    }

    pub fn json_line(&self) -> Value {
        parse(&self.line())
    }

    /// Panics if a line arrives within `d`: nothing more is printed for now.
    pub fn assert_quiet_for(&self, d: Duration) {
        if let Ok(l) = self.lines.recv_timeout(d) {
            panic!("{}: unexpected line {l:?}", self.what);
        }
    }

    /// Waits for the process to exit by itself within `PROMPT`; returns its status and
    /// every stdout line not yet taken.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let t = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                t.elapsed() < PROMPT,
                "{}: still running after {PROMPT:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(PROMPT) {
                Ok(l) => rest.push(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("{}: stdout not closed", self.what),
            }
        }
        (status, rest)
    }

    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut e = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut e);
        }
        e
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic, incompressible-looking text of `n` characters.
pub fn noise(seed: u64, n: usize) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ABC[(x % ABC.len() as u64) as usize] as char
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// reel stream
// ---------------------------------------------------------------------------------------

/// A spool holding the records 0..10 whose value equals their seq.
pub fn list_read(d: &Path, key: &str, flags: &[&str]) -> Value {
    let mut args = vec!["list", "read"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[s(d), key]);
    parse(&ok(&args))
}

pub fn offsets(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["offset"].as_u64().unwrap())
        .collect()
}

pub fn token(page: &Value) -> String {
    page["continuation"]
        .as_str()
        .unwrap_or_else(|| panic!("no continuation: {page}"))
        .to_string()
}
