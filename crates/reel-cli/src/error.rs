//! The command line's error type and exit statuses.

/// Exit status for a failed command.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status when a compare-and-set condition does not hold.
pub const EXIT_CONFLICT: i32 = 3;
/// Exit status when a server refused the login or the permission.
pub const EXIT_REFUSED: i32 = 4;

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
    /// The server could not be reached, or the connection broke mid-answer: trying
    /// again later may work.
    #[error("{0}")]
    Connection(String),
    /// A Kafka broker could not be reached or refused a request (`reel kafka`).
    #[error("kafka: {0}")]
    Kafka(String),
    /// A server answered with an error status.
    #[error("{}", remote_message(*status, message))]
    Remote {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

/// A server's refusal, saying which kind it is when the status does.
fn remote_message(status: u16, message: &str) -> String {
    match status {
        401 if !message.starts_with("login failed") => format!("login failed: {message}"),
        403 if !message.starts_with("permission missing") => {
            format!("permission missing: {message}")
        }
        _ => message.to_string(),
    }
}

impl From<reel::LogError> for CliError {
    fn from(e: reel::LogError) -> Self {
        CliError::Reel(e.into())
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        CliError::Output(e.into())
    }
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Reel(reel::Error::Conflict { .. } | reel::Error::NonceConflict { .. }) => {
                EXIT_CONFLICT
            }
            CliError::Remote { status: 412, .. } => EXIT_CONFLICT,
            CliError::Remote {
                status: 401 | 403 | 429,
                ..
            } => EXIT_REFUSED,
            _ => EXIT_FAILURE,
        }
    }

    /// True for a network failure (not an answer of the server).
    pub fn is_connection(&self) -> bool {
        matches!(self, CliError::Connection(_))
    }

    /// True when stdout's consumer went away: the end of the output, not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Shorthand for command results.
pub type CliResult<T = ()> = Result<T, CliError>;
