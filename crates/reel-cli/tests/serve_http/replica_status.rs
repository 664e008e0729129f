//! What `reel status` says of a follower: its source, last seq and lag (records and
//! time) while a stalled stream keeps it behind and after it catches up.

use crate::Server;
use crate::common::{bin, ok, reel_stdin};
use crate::proxy::Proxy;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Appends `n` records numbered from `from` to the store at `dir`.
pub fn write_n(dir: &str, from: u64, n: u64) {
    let body: String = (from..from + n)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "p".repeat(40)))
        .collect();
    let out = reel_stdin(&["write", dir], &body);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn replication(dir: &str) -> Value {
    let st: Value = serde_json::from_str(&ok(&["status", "--json", dir])).unwrap();
    st["replication"].clone()
}

/// Polls the follower's status until `done` holds (10 s at most).
fn status_until(dir: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::path::Path::new(dir).join("reel.meta").exists() {
            let r = replication(dir);
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{what}: never; last status {r}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn follow(src: &str, dst: &str) -> Follower {
    Follower(
        Command::new(bin())
            .args(["replicate", src, dst])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn status_shows_a_followers_lag_in_records_and_time_while_its_stream_is_stalled() {
    let s = Server::start(&[]);
    let src = s.dir("ev");
    ok(&["init", &src]);
    write_n(&src, 0, 1000);
    let proxy = Proxy::start(s.addr);
    let url = format!("http://{}/ev", proxy.addr);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f").display().to_string();
    let _follower = follow(&url, &f);
    let r = status_until(&f, "caught up", |r| {
        r["last_seq"] == 999 && r["source_next_seq"] == 1000
    });
    assert_eq!(
        (r["lag_records"].as_u64(), r["lag_seconds"].as_f64()),
        (Some(0), Some(0.0))
    );
    assert!(ok(&["status", &f]).contains("replica    last seq 999, caught up"));

    // The frames stream stalls; the source goes on.
    proxy.hold_frames(true);
    write_n(&src, 1000, 500);
    let r = status_until(&f, "lag seen", |r| r["lag_records"] == 500);
    assert_eq!(r["last_seq"], 999);
    assert_eq!(r["source_next_seq"], 1500);
    let first_lag = r["lag_seconds"].as_f64().unwrap();
    assert!(first_lag > 0.0, "{r}");
    // Nothing arrives: the oldest missing record only gets older.
    std::thread::sleep(Duration::from_millis(1200));
    let r = replication(&f);
    assert_eq!(r["lag_records"], 500);
    assert!(r["lag_seconds"].as_f64().unwrap() >= first_lag + 1.0, "{r}");
    let text = ok(&["status", &f]);
    assert!(text.contains(&format!("follows    {url}")), "{text}");
    assert!(
        text.contains("replica    last seq 999, behind by 500 records"),
        "{text}"
    );

    // Released: it catches up and says so.
    proxy.hold_frames(false);
    let r = status_until(&f, "caught up again", |r| {
        r["last_seq"] == 1499 && r["lag_records"] == 0
    });
    assert_eq!(r["lag_seconds"].as_f64(), Some(0.0));
    assert_eq!(r["gaps"], serde_json::json!([]));
}
