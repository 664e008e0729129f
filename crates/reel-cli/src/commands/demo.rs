//! `reel demo`: a writer (this process) and a reader (a second `reel` process)
//! exchanging records through a spool, then the spool's status.

use crate::cli::DemoArgs;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use reel::{Spool, WhenFull};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(a: DemoArgs, out: &mut Output) -> CliResult {
    let dir = &a.dir;
    let spool = Spool::builder(dir)
        .capacity(64 << 20)
        .when_full(WhenFull::DropOldest)
        .open()?;
    out.line(format_args!(
        "== spool {} (capacity 64 MiB, drop-oldest)",
        dir.display()
    ))?;
    let exe = std::env::current_exe().map_err(CliError::Output)?;
    out.line(format_args!(
        "== starting a reader process: reel read --reader demo --count 5 --meta {}",
        dir.display()
    ))?;
    // The reader process prints to the same stdout: what came before goes out first.
    out.flush()?;
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
    out.line(format_args!(
        "== this process appends 5 records; the blocked reader prints each as it lands:"
    ))?;
    out.flush()?;
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
    out.line(format_args!(
        "== reader received all 5 in {:.0} ms; its position is persisted:",
        t0.elapsed().as_secs_f64() * 1000.0
    ))?;
    let st = spool.status()?;
    for r in &st.readers {
        out.line(format_args!(
            "   reader {:<8} position {}  unread {}  lost {}",
            r.name, r.position, r.unread, r.lost
        ))?;
    }
    out.line(format_args!("== status --json:"))?;
    out.json_line(&st)?;
    // `cargo run` does not put `reel` on PATH: name the binary that is running.
    out.line(format_args!(
        "== try: {} read --no-wait {}   (a new reader starts at the oldest record)",
        shell_word(&exe.display().to_string()),
        shell_word(&dir.display().to_string())
    ))?;
    out.line(format_args!(
        "   (or put reel on your PATH: cargo install --path crates/reel-cli)"
    ))?;
    Ok(())
}

/// `s`, single-quoted for a shell when it holds anything but plain path characters.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
