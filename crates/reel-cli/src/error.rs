//! The command line's error type and exit statuses.

/// Exit status for a failed command.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status when a compare-and-set condition does not hold.
pub const EXIT_CONFLICT: i32 = 3;

/// Everything a command can fail with; printed as one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the embedded API.
    #[error(transparent)]
    Reel(#[from] reel::Error),
    /// Bad input on the command line or stdin.
    #[error("{0}")]
    Input(String),
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// A check found problems (already printed); exit non-zero.
    #[error("{0}")]
    Failed(String),
}

impl From<reel_log::Error> for CliError {
    fn from(e: reel_log::Error) -> Self {
        CliError::Reel(e.into())
    }
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Reel(reel::Error::Conflict { .. }) => EXIT_CONFLICT,
            _ => EXIT_FAILURE,
        }
    }
}

/// Shorthand for command results.
pub type CliResult<T = ()> = Result<T, CliError>;
