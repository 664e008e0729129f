//! Fills a kv store with N keys (`user.u<i>` = `{"i": i}`) in batches, for measuring
//! how `reel kv get` / `kv set` costs grow with the store:
//! `cargo run --release --example kv_fill -- DIR 1000000`, then
//! `time reel kv get DIR user.u123`. `--get-only` skips the filling, `--fill-only`
//! the gets.
use reel::kv::{KvStore, Path};

fn main() -> reel::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: kv_fill DIR KEYS");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("KEYS is a number");
    let mode = args.next();
    let get_only = mode.as_deref() == Some("--get-only");
    let fill_only = mode.as_deref() == Some("--fill-only");
    let kv = KvStore::open(&dir)?;
    let start = std::time::Instant::now();
    if !get_only {
        let mut i = 0;
        while i < n && !get_only {
            let end = (i + 10_000).min(n);
            let paths: Vec<Path> = (i..end)
                .map(|j| format!("user.u{j}").parse())
                .collect::<reel::Result<_>>()?;
            let values: Vec<reel::Value> = (i..end)
                .map(|j| reel::Value::encode(&serde_json::json!({ "i": j })))
                .collect::<reel::Result<_>>()?;
            kv.set_batch(paths.iter().zip(values))?;
            i = end;
        }
        let wrote = start.elapsed();
        kv.view().checkpoint()?;
        eprintln!(
            "{n} keys: written in {:.2?}, view applied and checkpointed in {:.2?}",
            wrote,
            start.elapsed() - wrote
        );
    }
    drop(kv);
    if fill_only {
        return Ok(());
    }
    let t = std::time::Instant::now();
    let kv = KvStore::open(&dir)?;
    let first = kv.get(&"user.u1".parse()?)?;
    eprintln!(
        "open + first get: {:.2?} ({})",
        t.elapsed(),
        first.is_some()
    );
    let keys: Vec<String> = (0..2_000_000u64)
        .map(|i| {
            kv.key(&format!("user.u{}", (i * 7_919_993) % n).parse().unwrap())
                .unwrap()
        })
        .collect();
    // The first pass touches every page for the first time in this process (faults,
    // checksums); the later ones are warm.
    for pass in ["cold", "warm", "warm"] {
        let t = std::time::Instant::now();
        let mut found = 0;
        for k in &keys {
            found += kv.get_with(k, |e| e.is_some() as u64)?;
        }
        let el = t.elapsed();
        eprintln!(
            "random get, {pass}: {:.2} M/s ({found} found)",
            keys.len() as f64 / el.as_secs_f64() / 1e6
        );
    }
    Ok(())
}
