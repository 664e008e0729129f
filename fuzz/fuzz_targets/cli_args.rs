//! The `reel` command line on arbitrary argument vectors: clap's `try_parse_from` over
//! the real grammar (`crates/reel-cli/src/cli/`, compiled in here unchanged), then the
//! value parsers it uses for sizes and times on every argument.
//!
//! Input: arguments separated by NUL bytes (any bytes: arguments need not be UTF-8).
//! Nothing may panic; a size that parses must be what its digits say.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

#[allow(dead_code)]
#[path = "../../crates/reel-cli/src/cli/mod.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../../crates/reel-cli/src/units.rs"]
mod units;

fuzz_target!(|data: &[u8]| {
    let args: Vec<&OsStr> = data.split(|&b| b == 0).map(OsStr::from_bytes).collect();
    let _ = cli::Cli::try_parse_from(std::iter::once(OsStr::new("reel")).chain(args.iter().copied()));
    for a in &args {
        let Some(text) = a.to_str() else { continue };
        if let Ok(n) = units::parse_size(text) {
            if let Ok(plain) = text.trim().parse::<u64>() {
                assert_eq!(n, plain, "{text}");
            }
            let _ = units::fmt_bytes(n);
        }
        if let Ok(micros) = units::parse_rfc3339(text) {
            // Years 0000-9999: well inside i64 microseconds.
            assert!(micros.unsigned_abs() < 400_000_000_000_000_000, "{text}");
        }
    }
});
