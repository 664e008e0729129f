//! Engine errors as the exceptions of `reel/_errors.py` (`reel.Error` and its
//! subclasses), each carrying the engine's message.
//!
//! The classes are defined in Python because `NotFound` is also a `KeyError` and
//! `InvalidArgument` also a `ValueError`, and multiple bases are plain Python.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use reel::{Error, LogError};

/// An instance of `reel._errors.<class>` with `msg`; a `RuntimeError` if the package's
/// Python half is missing (the module imported on its own).
fn raise(class: &'static str, msg: String) -> PyErr {
    Python::attach(|py| {
        match py
            .import("reel._errors")
            .and_then(|m| m.getattr(class))
            .and_then(|c| c.call1((msg.clone(),)))
        {
            Ok(exc) => PyErr::from_value(exc),
            Err(_) => PyRuntimeError::new_err(msg),
        }
    })
}

/// `reel.Error`.
pub fn error(msg: String) -> PyErr {
    raise("Error", msg)
}

/// `reel.InvalidArgument` (also a `ValueError`).
pub fn invalid(msg: String) -> PyErr {
    raise("InvalidArgument", msg)
}

/// `reel.NotFound` (also a `KeyError`).
pub fn not_found(msg: String) -> PyErr {
    raise("NotFound", msg)
}

/// The exception for an engine error.
pub fn from_reel(e: Error) -> PyErr {
    let class = match &e {
        Error::Conflict { .. } | Error::NonceConflict { .. } => "ConditionFailed",
        Error::NotFound(_) => "NotFound",
        Error::CursorCorrupt { .. } | Error::Decode(_) => "Corrupt",
        Error::InvalidArgument(_) | Error::InvalidName { .. } | Error::Encode(_) => {
            "InvalidArgument"
        }
        Error::Log(log) => match log {
            LogError::Corrupt { .. } => "Corrupt",
            // No store in that directory: what the server answers for one it does not
            // serve (404).
            LogError::NotALog { .. } => "NotFound",
            LogError::Full { .. } | LogError::DiskFull { .. } => "Full",
            LogError::ReadOnly { .. } | LogError::Follower { .. } => "PermissionDenied",
            LogError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                "PermissionDenied"
            }
            // What the server answers with 413/400, so that local and remote agree.
            LogError::InvalidArgument(_)
            | LogError::RecordTooLarge { .. }
            | LogError::BatchTooLarge { .. } => "InvalidArgument",
            _ => "Error",
        },
        _ => "Error",
    };
    raise(class, e.to_string())
}

/// The file that marks a store kept in object storage (`reel init --object-store`).
const TIER_FILE: &str = "reel.tier";

/// True when `dir` is a store kept in object storage.
pub fn is_tiered(dir: &std::path::Path) -> bool {
    dir.join(TIER_FILE).exists()
}

/// The refusal of a write to a store kept in object storage: only the `reel` CLI and
/// server upload what they append, so a record appended from Python would stay in this
/// directory and never reach the store (and a newer writer elsewhere fences this one
/// out without Python noticing).
pub fn tiered_write(dir: &std::path::Path) -> PyErr {
    invalid(format!(
        "{} is kept in object storage (it holds {TIER_FILE}): the Python package cannot \
         upload yet, so a record written here would never reach the store; write with \
         `reel write`, `reel kv set` or `reel list append`, or through `reel serve` \
         (reading works)",
        dir.display()
    ))
}
