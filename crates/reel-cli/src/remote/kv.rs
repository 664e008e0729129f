//! `reel kv ... URL ...`: the kv routes, with the local command's output and exit
//! statuses; a watch resumes after a dropped connection.

use super::{Call, Remote, encode};
use crate::cli::KvCommand;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use serde_json::Value;
use std::io::BufRead;
use std::time::Duration;

/// `reel kv ... URL ...`.
pub fn kv(r: &Remote, cmd: &KvCommand, out: &mut Output) -> CliResult {
    let kv_path = |p: &str| format!("/kv/{}", encode(p));
    match cmd {
        KvCommand::Set {
            eval,
            if_rev,
            if_absent,
            path,
            value,
            ..
        } => {
            let body = if *eval {
                let v: Value = serde_json::from_str(value)
                    .map_err(|e| CliError::Input(format!("VALUE is not valid JSON (-e): {e}")))?;
                v.to_string()
            } else {
                Value::String(value.clone()).to_string()
            };
            let mut headers = Vec::new();
            if let Some(rev) = if_rev {
                headers.push(("If-Match", rev.to_string()));
            } else if *if_absent {
                headers.push(("If-None-Match", "*".to_string()));
            }
            let v = r.json(&Call {
                method: "PUT",
                path: kv_path(path),
                headers,
                body: Some(body.into_bytes()),
                unsure: Some(format!(
                    "check with `reel kv get --meta {} {path}`",
                    r.url()
                )),
                ..Default::default()
            })?;
            out.line(format_args!("{}", v["rev"]))?;
        }
        KvCommand::Get {
            meta,
            recursive,
            path,
            ..
        } => {
            let mut query = Vec::new();
            if *recursive {
                query.push(("recursive", "true".to_string()));
            }
            let call = Call {
                method: "GET",
                path: kv_path(path),
                query,
                idempotent: true,
                ..Default::default()
            };
            if *recursive {
                // Printed as sent, the bytes the local command prints: parsing it would
                // refuse a subtree nested deeper than serde_json's limit (128 levels,
                // which a deep path plus a nested value can pass).
                let text = r.text(&call)?;
                out.bytes(text.trim_end().as_bytes())?;
                out.bytes(b"\n")?;
                return Ok(());
            }
            let v = r.json(&call)?;
            if *meta {
                out.json_line(&v)?;
            } else {
                out.json_line(&v["value"])?;
            }
        }
        KvCommand::Del {
            recursive,
            if_rev,
            path,
            ..
        } => {
            let mut call = Call {
                method: "DELETE",
                path: kv_path(path),
                unsure: Some(format!(
                    "check with `reel kv get --meta {} {path}`",
                    r.url()
                )),
                ..Default::default()
            };
            if *recursive {
                call.query.push(("recursive", "true".into()));
            }
            if let Some(rev) = if_rev {
                call.headers.push(("If-Match", rev.to_string()));
            }
            let v = r.json(&call)?;
            match v.get("deleted") {
                Some(n) => out.line(format_args!("{n}"))?,
                None => out.line(format_args!("{}", v["rev"]))?,
            }
        }
        KvCommand::Keys {
            recursive,
            json,
            path,
            ..
        } => {
            let mut call = Call {
                method: "GET",
                path: format!("/keys/{}", encode(path)),
                idempotent: true,
                ..Default::default()
            };
            if *recursive {
                call.query.push(("recursive", "true".into()));
            }
            if *json {
                call.query.push(("format", "json".into()));
                let keys = r.json(&call)?;
                out.json_line(&keys["keys"])?;
            } else {
                let text = r.text(&call)?;
                out.bytes(text.as_bytes())?;
            }
        }
        KvCommand::Watch {
            fetch,
            from_rev,
            count,
            path,
            ..
        } => watch(
            r,
            &format!("/watch/{}", encode(path)),
            *fetch,
            *from_rev,
            *count,
            out,
        )?,
    }
    Ok(())
}

/// A kv watch; after a dropped connection it resumes after the last revision printed
/// (or, in the middle of a `--fetch` snapshot, fetches again and skips what it printed).
fn watch(
    r: &Remote,
    path: &str,
    fetch: bool,
    from_rev: Option<u64>,
    count: Option<u64>,
    out: &mut Output,
) -> CliResult {
    let mut events = 0u64;
    let mut last_rev = from_rev;
    let mut synced = !fetch;
    let mut snapshot_printed = 0u64;
    loop {
        let mut query = Vec::new();
        if !synced {
            query.push(("fetch", "true".to_string()));
        } else if let Some(rev) = last_rev {
            query.push(("from_rev", rev.to_string()));
        }
        let mut body = r.lines(path, query)?;
        let mut line = String::new();
        let mut skip = if synced { 0 } else { snapshot_printed };
        loop {
            if count.is_some_and(|c| events >= c) {
                return Ok(());
            }
            line.clear();
            match body.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let e: Value = serde_json::from_str(line.trim_end())
                .map_err(|e| CliError::Input(format!("the server sent a bad event ({e})")))?;
            if let Some(msg) = e.get("error").and_then(Value::as_str) {
                return Err(CliError::Input(msg.to_string()));
            }
            if e.get("synced").is_some() {
                synced = true;
            } else {
                if !synced && skip > 0 {
                    skip -= 1;
                    continue;
                }
                if !synced {
                    snapshot_printed += 1;
                }
                events += 1;
                if let Some(rev) = e["rev"].as_u64() {
                    last_rev = Some(last_rev.map_or(rev, |l| l.max(rev)));
                }
            }
            out.json_line(&e)?;
            out.flush()?;
        }
        crate::output::note(format_args!(
            "reel: connection to {} lost; resuming",
            r.url()
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
}
