//! The embedded API's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the embedded API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the log engine (I/O, corruption, full spool, ...).
    #[error(transparent)]
    Log(#[from] reel_log::Error),

    /// A value could not be encoded.
    #[error("value cannot be encoded: {0}")]
    Encode(String),

    /// Stored value bytes could not be decoded as the requested type.
    #[error("value cannot be decoded: {0}")]
    Decode(String),

    /// A reader name is not usable as a file name.
    #[error("invalid reader name `{name}`: {why}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why.
        why: &'static str,
    },

    /// Another process has the named reader open.
    #[error("reader `{name}` is in use by another process; stop that reader first")]
    ReaderBusy {
        /// The reader name.
        name: String,
    },

    /// A cursor file fails its checksums.
    #[error(
        "cursor file {path} is damaged ({reason}); reset the reader with `reel rewind --reader NAME DIR`"
    )]
    CursorCorrupt {
        /// The cursor file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A compare-and-set condition did not hold; nothing was stored.
    #[error("condition failed for {path}: expected {expected}, but {}", actual.map_or("the path is absent".to_string(), |r| format!("its revision is {r}")))]
    Conflict {
        /// The path (text form).
        path: String,
        /// What was expected ("revision 12", "absent").
        expected: String,
        /// The actual revision, if the path exists.
        actual: Option<u64>,
    },

    /// No value at the path (or no such list key).
    #[error("not found: {0}")]
    NotFound(String),

    /// A watch read past revisions that compaction removed: it cannot deliver every
    /// change, so it stops rather than skip silently.
    #[error(
        "watch fell behind compaction: revisions {from} to {to} were compacted away; restart the watch with a fresh snapshot (--fetch)"
    )]
    WatchBehind {
        /// First revision missing.
        from: u64,
        /// Last revision missing.
        to: u64,
    },

    /// A caller-supplied argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// The engine error inside, if this is one.
    pub fn as_log(&self) -> Option<&reel_log::Error> {
        match self {
            Error::Log(e) => Some(e),
            _ => None,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
