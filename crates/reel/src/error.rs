//! The embedded API's one error type.

use reel_log::StoreKind;
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

    /// Another handle (in this process or another) has the named reader open.
    #[error(
        "reader `{name}` is in use by another reader (in this or another process); close or stop it first"
    )]
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

    /// A list's last accepted nonce was not the one a batch expected; nothing of the
    /// batch was stored (see [`crate::list::ListStore::append_batch`]).
    #[error("condition failed for list {key}: expected its last nonce to be {}, but it is {}", nonce_text(*expected), nonce_text(*actual))]
    NonceConflict {
        /// The list key.
        key: String,
        /// The last nonce the batch expected (`None`: no nonce accepted yet).
        expected: Option<u128>,
        /// The list's actual last nonce.
        actual: Option<u128>,
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

    /// A rebuild would lose state that the log no longer holds; it runs only when asked
    /// to anyway.
    #[error("{0}")]
    RebuildLoses(String),

    /// The store holds another kind of data than the operation is for.
    #[error("{} is a {kind}, not a {wanted} ({})", dir.display(), kind_hint(*kind))]
    WrongKind {
        /// The store.
        dir: PathBuf,
        /// What it holds.
        kind: StoreKind,
        /// What the operation needs.
        wanted: StoreKind,
    },

    /// A store created before kinds cannot take the kind it is being used as.
    #[error(
        "{} was created before stores had kinds and cannot become a {wanted}: {reason}",
        dir.display()
    )]
    CannotAdopt {
        /// The store.
        dir: PathBuf,
        /// The kind asked for.
        wanted: StoreKind,
        /// Why not, and what to do.
        reason: String,
    },

    /// A store is not created in a directory holding files that are not reel's.
    #[error(
        "{} is not empty and holds `{file}`, which is not reel's; refusing to create a store \
         there (use an empty or new directory)",
        dir.display()
    )]
    ForeignFiles {
        /// The directory.
        dir: PathBuf,
        /// One of the foreign names.
        file: String,
    },

    /// Creating a store failed; says what, if anything, is left of the attempt.
    #[error("could not create the store in {}: {cause}; {}", dir.display(), left_note(dir, left, *store_written))]
    CreateFailed {
        /// The directory.
        dir: PathBuf,
        /// What failed, in words true of a store that does not exist yet.
        cause: String,
        /// The error itself.
        #[source]
        source: Box<Error>,
        /// Files and directories the attempt created that are still there.
        left: Vec<PathBuf>,
        /// True when `reel.meta` was written: the directory holds the new store.
        store_written: bool,
    },
}

/// Which commands a kind of store is used with.
fn kind_hint(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Spool => "use reel write/read on it",
        StoreKind::Kv(_) => "use reel kv on it; reel read, stream and status also read it",
        StoreKind::Lists => "use reel list on it; reel read, stream and status also read it",
        StoreKind::Untyped => "it was created before stores had kinds",
    }
}

fn left_note(dir: &std::path::Path, left: &[PathBuf], store_written: bool) -> String {
    let names: Vec<String> = left
        .iter()
        .map(|p| match p.strip_prefix(dir) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
            _ => p.display().to_string(),
        })
        .collect();
    if store_written {
        format!(
            "its files were written ({}) but it could not be opened; remove them or retry",
            names.join(", ")
        )
    } else if names.is_empty() {
        "nothing was left behind".into()
    } else {
        format!("left behind: {} (remove them by hand)", names.join(", "))
    }
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

/// A last nonce in an error message.
fn nonce_text(n: Option<u128>) -> String {
    n.map_or_else(
        || "none (no nonce accepted yet)".to_string(),
        |n| n.to_string(),
    )
}
