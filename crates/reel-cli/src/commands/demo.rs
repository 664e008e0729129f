//! `reel demo`: a writer (this process) and a reader (a second `reel` process)
//! exchanging records through a spool, then the spool's status.

use crate::cli::DemoArgs;
use crate::error::{CliError, CliResult};
use reel::{Spool, WhenFull};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(a: DemoArgs) -> CliResult {
    let dir = &a.dir;
    let spool = Spool::builder(dir)
        .capacity(64 << 20)
        .when_full(WhenFull::DropOldest)
        .open()?;
    println!("== spool {} (capacity 64 MiB, drop-oldest)", dir.display());
    let exe = std::env::current_exe().map_err(CliError::Output)?;
    println!(
        "== starting a reader process: reel read --reader demo --count 5 --meta {}",
        dir.display()
    );
    let mut child = Command::new(&exe)
        .args([
            "read",
            "--reader",
            "demo",
            "--count",
            "5",
            "--timeout",
            "10",
            "--meta",
        ])
        .arg(dir)
        .stdout(Stdio::inherit())
        .spawn()
        .map_err(CliError::Output)?;
    // Let the reader block, caught up, before anything is written.
    std::thread::sleep(Duration::from_millis(300));
    println!("== this process appends 5 records; the blocked reader prints each as it lands:");
    let t0 = Instant::now();
    for n in 1..=5 {
        spool.append(serde_json::json!({"n": n, "msg": "hello from reel", "day": "Sat"}))?;
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().map_err(CliError::Output)?;
    if !status.success() {
        return Err(CliError::Failed(format!(
            "the reader process failed: {status}"
        )));
    }
    println!(
        "== reader received all 5 in {:.0} ms; its position is persisted:",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let st = spool.status()?;
    for r in &st.readers {
        println!(
            "   reader {:<8} position {}  unread {}  lost {}",
            r.name, r.position, r.unread, r.lost
        );
    }
    println!("== status --json:");
    println!(
        "{}",
        serde_json::to_string(&st).map_err(std::io::Error::from)?
    );
    println!(
        "== try: reel read --no-wait {0}   (nothing new for `default`? it starts at the oldest record)",
        dir.display()
    );
    Ok(())
}
