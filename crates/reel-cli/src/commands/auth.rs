//! `reel user` and `reel acl`: the users and grants `reel serve` enforces, kept under the
//! server's root (see `reel_server::auth`). They take effect on the server's next request, and
//! on the next chunk of a live stream.

use crate::cli::{AclCommand, PasswordInput, UserCommand};
use crate::error::{CliError, CliResult};
use crate::output::Output;
use reel_server::ApiError;
use reel_server::auth::AuthStore;
use std::path::Path;

fn api(e: ApiError) -> CliError {
    CliError::Input(e.message)
}

/// The auth store of `root`; created only when `create`.
fn open(root: &Path, create: bool) -> CliResult<Option<AuthStore>> {
    if !root.is_dir() {
        return Err(CliError::Input(format!(
            "{} is not a directory (the root that `reel serve` serves)",
            root.display()
        )));
    }
    AuthStore::open(root, create).map_err(api)
}

fn existing(root: &Path) -> CliResult<AuthStore> {
    open(root, false)?.ok_or_else(|| {
        CliError::Input(format!(
            "{} has no users yet (add one with `reel user add`)",
            root.display()
        ))
    })
}

pub fn user(cmd: UserCommand, out: &mut Output) -> CliResult {
    match cmd {
        UserCommand::Add {
            admin,
            password,
            root,
            name,
        } => {
            reel_server::auth::validate_user(&name).map_err(api)?;
            let pw = read_password(&password, &name)?;
            let store =
                open(&root, true)?.ok_or_else(|| CliError::Input("no auth store".into()))?;
            store.add_user(&name, &pw, admin).map_err(api)?;
        }
        UserCommand::List { root } => {
            if let Some(store) = open(&root, false)? {
                for (name, admin) in store.users().map_err(api)? {
                    if admin {
                        out.line(format_args!("{name} admin"))?;
                    } else {
                        out.line(format_args!("{name}"))?;
                    }
                }
            }
        }
        UserCommand::Del { root, name } => existing(&root)?.delete_user(&name).map_err(api)?,
        UserCommand::Passwd {
            password,
            root,
            name,
        } => {
            let store = existing(&root)?;
            if store.user(&name).map_err(api)?.is_none() {
                return Err(CliError::Input(format!("no user named `{name}`")));
            }
            let pw = read_password(&password, &name)?;
            store.set_password(&name, &pw).map_err(api)?;
        }
    }
    Ok(())
}

pub fn acl(cmd: AclCommand, out: &mut Output) -> CliResult {
    match cmd {
        AclCommand::Grant {
            root,
            user,
            flags,
            store,
            pattern,
        } => existing(&root)?
            .grant(&user, &flags, &store, &pattern)
            .map_err(api)?,
        AclCommand::Revoke {
            root,
            user,
            store,
            pattern,
        } => {
            if !existing(&root)?
                .revoke(&user, &store, &pattern)
                .map_err(api)?
            {
                return Err(CliError::Input(format!(
                    "user `{user}` has no grant on `{store}` for `{pattern}`"
                )));
            }
        }
        AclCommand::List { root, user } => {
            let Some(store) = open(&root, false)? else {
                return Ok(());
            };
            let users = match user {
                Some(u) => vec![u],
                None => store
                    .users()
                    .map_err(api)?
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect(),
            };
            for u in users {
                for g in store.grants(&u).map_err(api)? {
                    out.line(format_args!("{u} {} {} {}", g.flags, g.store, g.pattern))?;
                }
            }
        }
    }
    Ok(())
}

/// The password from stdin (`--password-stdin`) or a prompt on the terminal without echo.
fn read_password(input: &PasswordInput, name: &str) -> CliResult<String> {
    let mut line = String::new();
    if input.password_stdin {
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| CliError::Input(format!("cannot read the password from stdin: {e}")))?;
    } else {
        line = prompt_no_echo(&format!("password for {name}: "))?;
    }
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        return Err(CliError::Input("the password is empty".into()));
    }
    Ok(pw)
}

#[cfg(unix)]
fn prompt_no_echo(prompt: &str) -> CliResult<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            CliError::Input(format!(
                "no terminal to ask for the password ({e}); use --password-stdin"
            ))
        })?;
    let saved = tcgetattr(&tty).map_err(|e| CliError::Input(format!("terminal: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&tty, OptionalActions::Now, &quiet)
        .map_err(|e| CliError::Input(format!("terminal: {e}")))?;
    let mut w = &tty;
    let _ = w.write_all(prompt.as_bytes());
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, OptionalActions::Now, &saved);
    let _ = w.write_all(b"\n");
    read.map_err(|e| CliError::Input(format!("cannot read the password: {e}")))?;
    Ok(line)
}

#[cfg(not(unix))]
fn prompt_no_echo(_prompt: &str) -> CliResult<String> {
    Err(CliError::Input(
        "no password prompt on this platform; use --password-stdin".into(),
    ))
}
