//! `reel serve` driven from outside: a real server process on a free port, spoken to over
//! TCP as any HTTP client would, with local `reel` processes using the same stores.

mod auth;
mod bench;
mod client;
#[path = "../common/mod.rs"]
mod common;
mod faults;
mod groups;
mod limits;
mod live;
mod parity;
mod proxy;
mod remote_faults;
mod replica_status;
mod replicate;
mod replicate_group;
mod replicate_stress;
mod shutdown;
mod stores;
mod tls;

use common::bin;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `reel serve` on a free loopback port; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server over a fresh root directory.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Server::start_in(tmp.path(), extra);
        s._tmp = Some(tmp);
        s
    }

    /// A server over `root`.
    pub fn start_in(root: &Path, extra: &[&str]) -> Server {
        Server::start_at(root, "127.0.0.1:0", extra)
    }

    /// A server over `root` listening on `listen` (retrying while the port is still
    /// held by a server just killed).
    pub fn start_at(root: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .arg("serve")
            .args(["--listen", listen])
            .args(extra)
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reel serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            let n = stderr.read_line(&mut line).unwrap();
            if n == 0 && listen != "127.0.0.1:0" {
                // The address may still be in use for a moment: try again.
                let _ = child.wait();
                std::thread::sleep(std::time::Duration::from_millis(100));
                return Server::start_at(root, listen, extra);
            }
            assert!(n > 0, "reel serve exited before listening: {line}");
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // Keep draining the log so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        Server {
            child,
            addr,
            root: root.to_path_buf(),
            _tmp: None,
        }
    }

    /// The directory of store `name`.
    pub fn dir(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        self.child.wait().unwrap()
    }

    /// Sends SIGTERM; the exit status when the server exits within `limit`, else `None`
    /// (and the server is killed).
    pub fn terminate_within(
        mut self,
        limit: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
