//! How a real S3 server handles racing conditional puts (run by hand against one, with
//! the AWS_* environment set: `cargo test -p reel-tier --test s3_cas -- --ignored`).

use reel_tier::manifest::Manifest;
use reel_tier::object::Put;
use reel_tier::{Tier, WriterInfo};

fn manifest(id: usize, epoch: u64) -> Manifest {
    let mut m = Manifest::new(
        1,
        reel_log::StoreKind::Spool,
        reel_log::Config::default(),
        WriterInfo {
            id: id.to_string(),
            host: "h".into(),
            dir: "d".into(),
            since: 0,
        },
    );
    m.epoch = epoch;
    m
}

#[test]
#[ignore = "needs an S3 server in the environment"]
fn racing_conditional_puts() {
    let url: reel_tier::TierUrl = format!("s3://reel/cas-{}", std::process::id())
        .parse()
        .unwrap();
    let creates: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|i| {
                let url = url.clone();
                s.spawn(move || {
                    let t = Tier::connect(&url).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(3 * i as u64));
                    matches!(
                        t.put_manifest(&manifest(i, 1), None).unwrap(),
                        Put::Stored(_)
                    ) as usize
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let t = Tier::connect(&url).unwrap();
    let v = t.require_manifest().unwrap();
    let updates: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|i| {
                let (url, version) = (url.clone(), v.version.clone());
                s.spawn(move || {
                    let t = Tier::connect(&url).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(3 * i as u64));
                    matches!(
                        t.put_manifest(&manifest(100 + i, 2), Some(&version))
                            .unwrap(),
                        Put::Stored(_)
                    ) as usize
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!("creates won: {creates} of 16; updates won: {updates} of 16");
    assert_eq!((creates, updates), (1, 1));
}
