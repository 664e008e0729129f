//! Eight threads appending single records (durability batch): a profiling target for the
//! write-combining path. `cargo run --release -p reel --example threads_append`.
use std::time::Instant;

fn main() -> reel::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        std::env::temp_dir()
            .join("reel-threads-append")
            .display()
            .to_string()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let spool = reel::Spool::builder(&dir)
        .capacity(1 << 30)
        .durability(reel::Durability::Batch)
        .open()?;
    let v =
        reel::Value::json(&serde_json::json!({"id": 1, "user": "someone", "pad": "x".repeat(60)}));
    let per = 50_000u64;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..8 {
            let spool = &spool;
            let v = &v;
            s.spawn(move || {
                for _ in 0..per {
                    spool
                        .append_entries(&[reel::Entry {
                            encoding: 1,
                            value: v.as_bytes(),
                            ..Default::default()
                        }])
                        .unwrap();
                }
            });
        }
    });
    spool.sync()?;
    println!(
        "{:.0} appends/s",
        (per * 8) as f64 / t.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
