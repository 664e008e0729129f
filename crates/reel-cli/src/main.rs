//! `reel`: the command line over the embedded API. Every command maps to calls of the
//! `reel` crate; this binary adds argument parsing, NDJSON in and out, and exit statuses.
//!
//! Cross-cutting behaviour lives here, once: every command writes through one
//! [`output::Output`]; a closed stdout (`reel ... | head`) ends the command quietly with
//! status 0; every other error is printed as one line on stderr with its exit status.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod cli;
mod commands;
mod error;
mod logging;
mod output;
mod remote;
mod tier;
mod units;

use clap::Parser;
use error::CliError;
use output::Output;

fn main() {
    let cli = cli::Cli::parse();
    logging::init(match cli.command {
        cli::Command::Serve(_) => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    });
    let mut out = Output::stdout();
    let result = run(cli, &mut out);
    // What a command printed before it failed still goes out, before the error.
    let flushed = out.flush();
    let err = match (result, flushed) {
        (Err(e), _) => e,
        (Ok(()), Err(e)) => CliError::Output(e),
        (Ok(()), Ok(())) => return,
    };
    if err.is_broken_pipe() {
        // The consumer has what it wanted (`reel ... | head`): not an error.
        return;
    }
    if !matches!(err, CliError::Failed(_)) {
        output::note(format_args!("reel: {}", one_line(&err.to_string())));
    }
    std::process::exit(err.exit_code());
}

/// Runs the command, on a local copy when it names a store in object storage.
fn run(cli: cli::Cli, out: &mut Output) -> error::CliResult {
    let mut cmd = cli.command;
    let mut tiered = tier::redirect(&mut cmd, cli.cache.as_deref())?;
    // `reel read s3://...`: the reader's position lives in object storage.
    let reader = match (&cmd, &tiered) {
        (cli::Command::Read(a), Some((cache, url))) => {
            tier::restore_reader(url, cache.dir(), &a.reader)?;
            cache.track_reader(url, &a.reader);
            Some((a.reader.clone(), url.clone(), cache.dir().to_path_buf()))
        }
        _ => None,
    };
    let result = commands::run(cmd, out);
    if let Some((name, url, dir)) = reader {
        // The poller saves positions too: stopped first, so that none of its saves can
        // land after the last one (moving the position back).
        if let Some((cache, _)) = tiered.as_mut() {
            cache.stop_polling();
        }
        let saved = tier::save_reader(&url, &dir, &name);
        result.as_ref().ok().map(|_| saved).transpose()?;
    }
    drop(tiered);
    result
}

/// Errors are printed as one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
