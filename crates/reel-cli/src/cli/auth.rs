//! Arguments of `reel user` and `reel acl`: the users and grants of a server root.

use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `reel user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (the password is asked for without echo, or read from stdin).
    #[command(
        after_help = "Examples:\n  reel user add /var/lib/reel alice\n  echo \"$PW\" | reel user add --admin --password-stdin /var/lib/reel ops\n\nOnce any user exists, `reel serve` on ROOT requires credentials on every request."
    )]
    Add {
        /// Allowed everything, on every store.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        password: PasswordInput,
        /// The server's root directory.
        root: PathBuf,
        /// User name (letters, digits, `-`, `_`, `.`, `@`).
        name: String,
    },
    /// List the users (name, and `admin` for admins).
    List {
        /// The server's root directory.
        root: PathBuf,
    },
    /// Remove a user and its grants.
    Del {
        /// The server's root directory.
        root: PathBuf,
        /// User name.
        name: String,
    },
    /// Change a user's password.
    Passwd {
        #[command(flatten)]
        password: PasswordInput,
        /// The server's root directory.
        root: PathBuf,
        /// User name.
        name: String,
    },
}

/// Where a password comes from.
#[derive(Debug, Args)]
pub struct PasswordInput {
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `reel acl ...`.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Give USER the permission letters FLAGS on STORE for paths matching PATTERN.
    #[command(
        after_help = "FLAGS are letters: r read values, x enter and list, w change what exists,\nc create, d delete, a admin. A request needs every letter it uses.\n\nSTORE is a store name or `*`. PATTERN is a DistKV path pattern for kv paths and\nlist keys: `+` is any one element, a final `#` any number (default `#`). Of the\ngrants matching a request, the most specific decides (a named store beats `*`; then,\nelement by element from the left, an exact element beats `+`, which beats `#`).\nNo matching grant means no access.\n\nExamples:\n  reel acl grant /var/lib/reel alice rx cfg\n  reel acl grant /var/lib/reel alice rwc cfg 'app.#'\n  reel acl grant /var/lib/reel writer xc cfg 'wom.#'     # write once, never read back\n  reel acl grant /var/lib/reel feed w events             # append records"
    )]
    Grant {
        /// The server's root directory.
        root: PathBuf,
        /// User name.
        user: String,
        /// Permission letters (rxwcda).
        flags: String,
        /// Store name, or `*` for every store.
        store: String,
        /// Path pattern.
        #[arg(default_value = "#")]
        pattern: String,
    },
    /// Remove USER's grant on STORE for PATTERN.
    Revoke {
        /// The server's root directory.
        root: PathBuf,
        /// User name.
        user: String,
        /// Store name or `*`.
        store: String,
        /// Path pattern.
        #[arg(default_value = "#")]
        pattern: String,
    },
    /// List grants (of one user, or of all): USER FLAGS STORE PATTERN per line.
    List {
        /// The server's root directory.
        root: PathBuf,
        /// Only this user's grants.
        user: Option<String>,
    },
}
