//! `reel bench` (placeholder until the measurement module lands).
use crate::cli::BenchArgs;
use crate::error::{CliError, CliResult};
pub fn run(_a: BenchArgs) -> CliResult {
    Err(CliError::Failed("bench not built yet".into()))
}
