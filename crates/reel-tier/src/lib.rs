//! reel's object-storage tier: a store's log kept in S3-compatible object storage, so
//! that it outlives its machine and readers anywhere can read it.
//!
//! Layout under `s3://BUCKET/PREFIX/`:
//! - `manifest.json` ([`manifest`]): the store's kind and configuration, the writer's
//!   epoch, and the list of data objects in seq order. It is only ever replaced with a
//!   conditional put on its previous version, so two writers can never both succeed;
//! - `data/<first>-e<epoch>-n<next>.frames` ([`object`]): immutable objects holding record
//!   frames exactly as the log stores them (checksummed, with their seqs), written with
//!   create-only puts. The epoch in the name keeps a fenced writer's late upload from
//!   ever replacing an object a newer writer's manifest names.
//!
//! A writer ([`writer::TierWriter`]) is a local store directory holding `reel.tier`
//! ([`local`]): it claims an epoch in the manifest and uploads what the local log holds
//! beyond the manifest's `next_seq` as one object per upload (a group commit: one object
//! and one manifest update cover every append since the last). A reader
//! ([`reader::sync_cache`]) copies the objects into a local follower store (the cache),
//! verifying every frame's checksum and keeping its seq, so every local read command
//! works on it unchanged.
//!
//! Frames rather than segment files are the unit shipped: they are what replication
//! already ships (DESIGN §9), they carry their own checksums, and they keep the object
//! format independent of the local file layout (segment headers, seals, index files).

pub mod committer;
pub mod local;
pub mod manifest;
pub mod object;
pub mod reader;
mod url;
pub mod writer;

pub use local::TierConfig;
pub use manifest::{Manifest, ObjectRef, WriterInfo};
pub use object::Tier;
pub use url::TierUrl;

use std::path::PathBuf;

/// Everything that can go wrong in the tier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL that is not `s3://BUCKET/PREFIX`.
    #[error("bad object-store URL `{url}`: {why}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },

    /// The object store refused or failed a request (after retries where they are safe).
    #[error("object store {url}: {op} failed: {message}")]
    Store {
        /// The store URL (never credentials).
        url: String,
        /// What was being done.
        op: String,
        /// The store's answer.
        message: String,
    },

    /// An object or the manifest fails its checksum or cannot be parsed.
    #[error("object store {url}: {what} is damaged: {why}")]
    Corrupt {
        /// The store URL.
        url: String,
        /// Which object.
        what: String,
        /// What is wrong.
        why: String,
    },

    /// Another writer claimed the store: this one may no longer append.
    #[error(
        "{url} is now written by {newer} (epoch {epoch}); this directory's writer is fenced and refuses appends (to continue here, `reel init --object-store {url}` a new directory)"
    )]
    Fenced {
        /// The store URL.
        url: String,
        /// The newer writer, described.
        newer: String,
        /// Its epoch.
        epoch: u64,
    },

    /// An object the manifest named is gone (merged into a bigger one since).
    #[error("object store {url}: {name} is gone (the manifest that named it is out of date)")]
    Gone {
        /// The store URL.
        url: String,
        /// The object.
        name: String,
    },

    /// The store holds nothing at that URL.
    #[error(
        "no reel store at {url} (no manifest.json); create one with `reel init --object-store {url} DIR`"
    )]
    NoStore {
        /// The store URL.
        url: String,
    },

    /// A local file of the tier (`reel.tier`) is missing, damaged or of another format.
    #[error("{}: {why}", path.display())]
    Local {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },

    /// The local log refused or failed.
    #[error(transparent)]
    Log(#[from] reel_log::Error),

    /// The local records are not contiguous with what object storage holds.
    #[error("{0}")]
    Gap(String),
}

/// The tier's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
