//! `reel list`: keyed lists from the command line.

use crate::cli::ListCommand;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use reel::list::{ListStore, NewItem, PageRequest, Start};
use std::io::BufRead;

/// Opens the lists store in `dir`: to append (creating it if needed: only `list append`
/// creates one), or only to read it (also on read-only media and snapshots).
fn open(dir: &std::path::Path, append: bool) -> CliResult<ListStore> {
    if append {
        return Ok(ListStore::builder(dir).create(true).open()?);
    }
    match ListStore::builder(dir).create(false).open() {
        Err(e) if matches!(e.as_log(), Some(reel::LogError::ReadOnly { .. })) => {
            Ok(ListStore::builder(dir)
                .create(false)
                .read_only(true)
                .open()?)
        }
        other => Ok(other?),
    }
}

/// The nonce of the `i`th item of a `list append --nonce N`: N + i.
pub fn nth_nonce(n: u128, i: usize) -> CliResult<u128> {
    u128::try_from(i)
        .ok()
        .and_then(|i| n.checked_add(i))
        .ok_or_else(|| CliError::Input("nonce overflows u128".into()))
}

/// The JSON texts of `list append`: its arguments, or the non-empty lines of stdin;
/// each with what to call it in an error ("argument 2", "line 7").
pub fn item_texts(json: &[String]) -> CliResult<Vec<(String, String)>> {
    let mut texts: Vec<(String, String)> = json
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("argument {}", i + 1), t.clone()))
        .collect();
    if texts.is_empty() {
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.map_err(|e| CliError::Input(format!("line {}: {e}", i + 1)))?;
            if !line.trim().is_empty() {
                texts.push((format!("line {}", i + 1), line));
            }
        }
    }
    Ok(texts)
}

pub fn run(cmd: ListCommand, out: &mut Output) -> CliResult {
    let (ListCommand::Append { dir, .. }
    | ListCommand::Read { dir, .. }
    | ListCommand::Info { dir, .. }
    | ListCommand::Keys { dir, .. }) = &cmd;
    if let Some(r) = crate::remote::target(dir)? {
        let info = crate::remote::list(&r, &cmd, out)?;
        if let (Some(info), ListCommand::Info { json, .. }) = (info, &cmd) {
            return print_info(&info, *json, out);
        }
        return Ok(());
    }
    match cmd {
        ListCommand::Append {
            nonce,
            ts,
            dir,
            key,
            json,
        } => {
            let texts = item_texts(&json)?;
            // Parse everything first: a bad value stores nothing of this call.
            let mut items = Vec::with_capacity(texts.len());
            for (i, (what, text)) in texts.iter().enumerate() {
                let value = reel::parse_json(text.as_bytes()).map_err(|e| {
                    CliError::Input(format!("{what}: invalid JSON: {e}; nothing was stored"))
                })?;
                let nonce = nonce.map(|n| nth_nonce(n, i)).transpose()?;
                items.push(NewItem { value, nonce, ts });
            }
            let tier = crate::tier::writer(&dir)?;
            let lists = open(&dir, true)?;
            let r = lists.append(&key, &items)?;
            if let Some(w) = &tier {
                crate::tier::upload(w, lists.spool().log())?;
            }
            out.json_line(&r)?;
        }
        ListCommand::Read {
            reverse,
            limit,
            from_offset,
            from_time,
            from_nonce,
            continuation,
            dir,
            key,
        } => {
            let start = match (from_offset, from_time, from_nonce) {
                (Some(o), _, _) => Start::Offset(o),
                (_, Some(t), _) => Start::Time(t),
                (_, _, Some(n)) => Start::Nonce(n),
                _ => Start::End,
            };
            if limit == Some(0) {
                return Err(CliError::Input("--limit must be at least 1".into()));
            }
            let lists = open(&dir, false)?;
            let page = lists.read(
                &key,
                &PageRequest {
                    reverse,
                    limit,
                    start,
                    continuation,
                },
            )?;
            out.json_line(&page)?;
        }
        ListCommand::Info { json, dir, key } => {
            let lists = open(&dir, false)?;
            let info = lists
                .info(&key)?
                .ok_or_else(|| reel::Error::NotFound(format!("list {key}")))?;
            print_info(&serde_json::to_value(info)?, json, out)?;
        }
        ListCommand::Keys { dir, json } => {
            let lists = open(&dir, false)?;
            print_keys(&lists.keys()?, json, out)?;
        }
    }
    Ok(())
}

/// `list info`'s output from `ListInfo`'s JSON (local or from a server: one printer).
fn print_info(info: &serde_json::Value, json: bool, out: &mut Output) -> CliResult {
    if json {
        out.json_line(info)?;
        return Ok(());
    }
    let opt = |k: &str| match &info[k] {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let n = |k: &str| info[k].as_u64().unwrap_or(0);
    out.line(format_args!(
        "key          {}",
        info["key"].as_str().unwrap_or("")
    ))?;
    out.line(format_args!("count        {}", n("count")))?;
    if n("count") == 0 {
        out.line(format_args!(
            "offsets      none retained (next {})",
            n("next_offset")
        ))?;
    } else {
        out.line(format_args!(
            "offsets      {} to {} (next {})",
            n("first_offset"),
            n("next_offset").saturating_sub(1),
            n("next_offset")
        ))?;
    }
    out.line(format_args!("first time   {}", opt("first_ts")))?;
    out.line(format_args!("last time    {}", opt("last_ts")))?;
    out.line(format_args!("last nonce   {}", opt("last_nonce")))?;
    Ok(())
}

/// The list keys, one per line or (`json`) as one JSON array.
pub(crate) fn print_keys(keys: &[String], json: bool, out: &mut Output) -> CliResult {
    if json {
        out.json_line(&keys)?;
    } else {
        for k in keys {
            out.line(format_args!("{k}"))?;
        }
    }
    Ok(())
}
