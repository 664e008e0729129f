//! The engine's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the log engine.
///
/// Variants carry what a person needs to act on the problem: which file, which byte,
/// which limit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What reel was doing, as a verb phrase ("open", "write to", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Stored bytes fail their checksum or are otherwise impossible. Never returned as data.
    #[error("corrupt data in {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged structure inside the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// The directory exists but holds no log.
    #[error(
        "{path} is not a reel spool (no valid reel.meta); create one with `reel init` (in an \
         empty or new directory: if it held a store, its reel.meta was lost or damaged, and a \
         copy of it restores the store)"
    )]
    NotALog {
        /// The directory.
        path: PathBuf,
    },

    /// The directory holds a log written by an unknown format version.
    #[error(
        "{path}: on-disk format version {found} is not supported (this build reads {supported})"
    )]
    UnsupportedVersion {
        /// The file carrying the version.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build understands.
        supported: u32,
    },

    /// A single record exceeds the configured maximum record size.
    #[error("record of {size} bytes exceeds the maximum record size of {max} bytes")]
    RecordTooLarge {
        /// The record's size (key + value).
        size: u64,
        /// The configured maximum.
        max: u64,
    },

    /// One batch holds more bytes than the whole log may: it can never be stored whole.
    #[error(
        "batch of {records} records ({bytes} bytes) exceeds the spool's capacity of {capacity} \
         bytes; append it in smaller batches or raise the capacity with `reel init --size`"
    )]
    BatchTooLarge {
        /// Bytes of the batch's frames.
        bytes: u64,
        /// Records in the batch.
        records: u64,
        /// Configured capacity in bytes.
        capacity: u64,
    },

    /// The append does not fit and the when-full policy forbids dropping what it would take.
    #[error(
        "spool is full: {used} of {capacity} bytes used, {needed} more needed, and the \
         when-full policy is `{policy}` ({}); raise the capacity with `reel init --size`",
        match policy {
            crate::WhenFull::Compact => "compaction keeps every live value and found too little to drop",
            _ => "it keeps every item of a lists store, and every record of a spool that \
                  a reader has not consumed: let readers advance",
        }
    )]
    Full {
        /// Bytes currently used by segments.
        used: u64,
        /// Configured capacity in bytes.
        capacity: u64,
        /// Bytes the refused append needed.
        needed: u64,
        /// The policy that refused.
        policy: crate::WhenFull,
    },

    /// The file system ran out of space; nothing of the failed write was stored (an
    /// append, a checkpoint, a cursor, a configuration change: each is undone or
    /// replaces its file whole), and what was stored before is intact.
    #[error(
        "disk full while writing {path}; nothing of this write was stored and what was stored before is intact"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },

    /// An earlier write or sync failed in a way that leaves the file state unknown.
    #[error("writer refuses appends after an earlier I/O failure ({cause}); reopen the spool")]
    Poisoned {
        /// The original failure.
        cause: String,
    },

    /// The caller may not write to the directory.
    #[error("permission denied: cannot write to {path}")]
    ReadOnly {
        /// The path that could not be written.
        path: PathBuf,
    },

    /// Another process holds an exclusive lock on the resource.
    #[error("{path} is locked by another process")]
    Locked {
        /// The locked file.
        path: PathBuf,
    },

    /// Retention must delete records to make room, but a layer could not first make the
    /// state it derived from them durable (see [`crate::RetentionBarrier`]).
    #[error("cannot drop the oldest records to make room: {reason}; nothing was appended")]
    RetentionBlocked {
        /// Why the derived state could not be saved.
        reason: String,
    },

    /// A caller-supplied argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The log is a follower kept by `reel replicate`: only the replica may append.
    #[error(
        "{} is a follower of {origin} (kept by `reel replicate`): write to the source, or make this store writable with `reel promote`",
        path.display()
    )]
    Follower {
        /// The log directory.
        path: PathBuf,
        /// What it follows.
        origin: String,
    },

    /// Replicated frames do not continue the log.
    #[error("replicated frames start at seq {got} but the log's next seq is {expected}")]
    NotNext {
        /// The log's next seq.
        expected: u64,
        /// The first seq of the frames.
        got: u64,
    },
}

/// Shorthand used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done and to which path, mapping the
    /// kinds that deserve their own variant.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Error::DiskFull { path },
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                if op_writes(op) =>
            {
                Error::ReadOnly { path }
            }
            _ => Error::Io { op, path, source },
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// A copy of this error for another caller that shared the failed operation (one
    /// group append fails for every append in the group). I/O errors keep kind and text.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corrupt {
                path,
                offset,
                reason,
            } => Error::Corrupt {
                path: path.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            Error::NotALog { path } => Error::NotALog { path: path.clone() },
            Error::Follower { path, origin } => Error::Follower {
                path: path.clone(),
                origin: origin.clone(),
            },
            Error::NotNext { expected, got } => Error::NotNext {
                expected: *expected,
                got: *got,
            },
            Error::UnsupportedVersion {
                path,
                found,
                supported,
            } => Error::UnsupportedVersion {
                path: path.clone(),
                found: *found,
                supported: *supported,
            },
            Error::RecordTooLarge { size, max } => Error::RecordTooLarge {
                size: *size,
                max: *max,
            },
            Error::BatchTooLarge {
                bytes,
                records,
                capacity,
            } => Error::BatchTooLarge {
                bytes: *bytes,
                records: *records,
                capacity: *capacity,
            },
            Error::Full {
                used,
                capacity,
                needed,
                policy,
            } => Error::Full {
                used: *used,
                capacity: *capacity,
                needed: *needed,
                policy: *policy,
            },
            Error::DiskFull { path } => Error::DiskFull { path: path.clone() },
            Error::Poisoned { cause } => Error::Poisoned {
                cause: cause.clone(),
            },
            Error::ReadOnly { path } => Error::ReadOnly { path: path.clone() },
            Error::Locked { path } => Error::Locked { path: path.clone() },
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::RetentionBlocked { reason } => Error::RetentionBlocked {
                reason: reason.clone(),
            },
        }
    }

    /// True when the error says the stored bytes are damaged.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}

fn op_writes(op: &str) -> bool {
    !matches!(op, "read" | "open for reading" | "list")
}

/// Attaches an operation and path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
