//! `reel`: the command line over the embedded API. Every command maps to calls of the
//! `reel` crate; this binary adds argument parsing, NDJSON in and out, and exit statuses.

mod bench;
mod cli;
mod commands;
mod error;
mod units;

use clap::Parser;
use error::CliError;

fn main() {
    let cli = cli::Cli::parse();
    let result = commands::run(cli.command);
    if let Err(e) = result {
        if !matches!(e, CliError::Failed(_)) {
            eprintln!("reel: {}", one_line(&e.to_string()));
        }
        std::process::exit(e.exit_code());
    }
}

/// Errors are printed as one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
