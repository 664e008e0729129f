//! `reel bench --replication` runs end to end and reports every figure (the figures
//! themselves are for the README, measured on a release build; here only that the
//! machinery works: a follower process that catches up, a paced writer, four members).

use crate::common::ok;

#[test]
fn the_replication_bench_reports_every_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&[
        "bench",
        "--replication",
        "--json",
        "--records",
        "1",
        tmp.path().to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(r["records"], 100_000, "{r}");
    for key in [
        "copy_per_s",
        "source_cpu_s_per_million",
        "follower_cpu_s_per_million",
        "lag_p50_us",
        "lag_p99_us",
        "group4_per_s",
    ] {
        assert!(r[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {r}");
    }
    // The writer holds its schedule (100 records per millisecond) within a loose margin.
    let rate = r["lag_write_per_s"].as_f64().unwrap();
    assert!(rate > 50_000.0, "{r}");
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "the bench leaves nothing behind"
    );
}
