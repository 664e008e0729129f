//! Fills a lists store with N items over 100 lists (unless `--pages-only`), then reads
//! random 10-item pages: a profiling target for list reads.
//! `cargo run --release -p reel --example list_pages -- DIR 10000000`
use reel::list::{ListStore, NewItem, PageRequest, Start};

fn main() -> reel::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: list_pages DIR ITEMS [--pages-only]");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("ITEMS is a number");
    let per_list = n.div_ceil(100);
    if args.next().as_deref() != Some("--pages-only") {
        let lists = ListStore::builder(&dir)
            .capacity((n * 250).max(64 << 20))
            .open()?;
        for round in 0..per_list.div_ceil(10_000) {
            for k in 0..100 {
                let items: Vec<NewItem> = (0..10_000.min(per_list - round * 10_000))
                    .map(|i| NewItem {
                        value: serde_json::json!({ "v": i }),
                        nonce: None,
                        ts: None,
                    })
                    .collect();
                lists.append(&format!("list-{k}"), &items)?;
            }
        }
        lists.view().checkpoint()?;
    }
    let lists = ListStore::open(&dir)?;
    let t = std::time::Instant::now();
    let pages = 200_000u64;
    for i in 0..pages {
        let j = (i.wrapping_mul(7_919_993) + 12_345) % n;
        let p = lists.read(
            &format!("list-{}", j % 100),
            &PageRequest {
                limit: Some(10),
                start: Start::Offset((j / 100) % per_list),
                ..Default::default()
            },
        )?;
        std::hint::black_box(p);
    }
    eprintln!(
        "{:.3} M pages/s",
        pages as f64 / t.elapsed().as_secs_f64() / 1e6
    );
    Ok(())
}
