//! Each store command against a server: the same arguments, output bytes and exit
//! statuses as the local command (the server sends what the local command prints, built
//! by the same library functions).

use super::{Call, Remote, encode};
use crate::cli::{KvCommand, ListCommand, RewindArgs, StreamArgs, WriteArgs};
use crate::error::{CliError, CliResult};
use crate::output::Output;
use serde_json::Value;
use std::io::BufRead;
use std::time::Duration;

/// `GET /v1/stores/NAME`: the `reel status --json` object.
pub fn status(r: &Remote) -> CliResult<Value> {
    r.json(&Call {
        method: "GET",
        idempotent: true,
        ..Default::default()
    })
}

/// The store's kind as `GET /v1/stores` names it (`spool`, `kv`, `lists`).
pub fn kind(r: &Remote) -> CliResult<String> {
    let list = r.root_json("/v1/stores")?;
    let name = r.store_name();
    list["stores"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["name"] == name))
        .and_then(|x| x["kind"].as_str())
        .map(str::to_string)
        .ok_or_else(|| CliError::Input(format!("{} is not listed by its server", r.url())))
}

/// `GET /v1/stores/NAME/views`: `reel view list --json`'s array.
pub fn views(r: &Remote) -> CliResult<Value> {
    r.json(&Call {
        method: "GET",
        path: "/views".into(),
        idempotent: true,
        ..Default::default()
    })
}

/// `GET /v1/stores/NAME/verify`: `reel verify --json`'s object.
pub fn verify(r: &Remote) -> CliResult<Value> {
    r.json(&Call {
        method: "GET",
        path: "/verify".into(),
        idempotent: true,
        ..Default::default()
    })
}

/// Lines per append request.
const WRITE_BATCH: usize = 1000;
const WRITE_BATCH_BYTES: usize = 4 << 20;

/// `reel write URL`: NDJSON in requests of up to 1,000 records, each stored whole.
pub fn write(r: &Remote, a: &WriteArgs) -> CliResult {
    let max = status(r)?["max_record_size"].as_u64().unwrap_or(u64::MAX);
    let mut w = Writer {
        r,
        a,
        body: Vec::new(),
        lines: 0,
        stored: None,
        max,
    };
    let result = w.all();
    result.map_err(|e| match e {
        CliError::Input(msg) => CliError::Input(format!(
            "{msg}; {}",
            crate::commands::write::stored_summary(&w.stored)
        )),
        CliError::Remote { status, message } => CliError::Remote {
            status,
            message: format!(
                "{message}; {}",
                crate::commands::write::stored_summary(&w.stored)
            ),
        },
        other => other,
    })
}

struct Writer<'a> {
    r: &'a Remote,
    a: &'a WriteArgs,
    body: Vec<u8>,
    lines: usize,
    stored: Option<(std::ops::Range<u64>, u64)>,
    /// The store's maximum record size (key + value), checked line by line as locally.
    max: u64,
}

impl Writer<'_> {
    fn all(&mut self) -> CliResult {
        if !self.a.json.is_empty() {
            for (i, arg) in self.a.json.clone().iter().enumerate() {
                self.push(arg, &format!("argument {}", i + 1))?;
            }
            return self.flush();
        }
        let mut input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock());
        let mut line = String::new();
        let mut lineno = 0u64;
        loop {
            line.clear();
            let n = input.read_line(&mut line).map_err(|e| {
                let _ = self.flush();
                CliError::Input(format!("line {}: cannot read stdin: {e}", lineno + 1))
            })?;
            if n == 0 {
                break;
            }
            lineno += 1;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            self.push(text, &format!("line {lineno}"))?;
            if self.lines >= WRITE_BATCH
                || self.body.len() >= WRITE_BATCH_BYTES
                || input.buffer().is_empty()
            {
                self.flush()?;
            }
        }
        self.flush()
    }

    fn push(&mut self, text: &str, what: &str) -> CliResult {
        // Checked here so that a bad line stores what came before it, as locally.
        let value = match serde_json::from_str::<Value>(text) {
            Ok(v) => v,
            Err(e) => {
                self.flush()?;
                return Err(CliError::Input(format!(
                    "{what}: invalid JSON: {e}; none after it was stored"
                )));
            }
        };
        // Sized as stored (MessagePack), as the local `write` does.
        let size =
            reel::Value::json(&value).as_bytes().len() + self.a.key.as_deref().map_or(0, str::len);
        if size as u64 > self.max {
            self.flush()?;
            return Err(CliError::Input(format!(
                "{what}: record of {size} bytes exceeds the maximum record size of {} bytes; none after it was stored",
                self.max
            )));
        }
        self.body.extend_from_slice(text.as_bytes());
        self.body.push(b'\n');
        self.lines += 1;
        Ok(())
    }

    fn flush(&mut self) -> CliResult {
        if self.lines == 0 {
            return Ok(());
        }
        let mut query = vec![("durability", self.a.durability.clone())];
        if let Some(k) = &self.a.key {
            query.push(("key", k.clone()));
        }
        let lines = self.lines;
        let v = self
            .r
            .json(&Call {
                method: "POST",
                path: "/records".into(),
                query,
                body: Some(std::mem::take(&mut self.body)),
                ..Default::default()
            })
            .map_err(|e| match e {
                // The server answered: nothing of this request was stored.
                CliError::Remote { .. } => e,
                // The answer was lost: the request may have been stored whole (a batch is
                // all or nothing). Say so rather than count it either way.
                other => CliError::Input(format!(
                    "{other}; whether the last request ({lines} records) was stored is unknown: check with `reel stream --meta`"
                )),
            })?;
        self.lines = 0;
        let (first, count) = (
            v["first_seq"].as_u64().unwrap_or(0),
            v["count"].as_u64().unwrap_or(0),
        );
        let range = first..first + count;
        self.stored = Some(match self.stored.take() {
            Some((s, n)) => (s.start..range.end, n + count),
            None => (range, count),
        });
        Ok(())
    }
}

/// `reel rewind URL`.
pub fn rewind(r: &Remote, a: &RewindArgs, out: &mut Output) -> CliResult {
    let body = match (a.to_seq, a.to_time) {
        (Some(s), _) => serde_json::json!({ "to_seq": s }),
        (None, Some(t)) => serde_json::json!({ "to_time": t }),
        (None, None) => serde_json::json!({}),
    };
    let v = r.json(&Call {
        method: "POST",
        path: format!("/readers/{}/rewind", encode(&a.reader)),
        headers: vec![("Content-Type", "application/json".into())],
        body: Some(body.to_string().into_bytes()),
        idempotent: true,
        ..Default::default()
    })?;
    out.line(format_args!(
        "reader {} now at seq {} ({} to read)",
        a.reader,
        v["position"].as_u64().unwrap_or(0),
        crate::units::plural(v["unread"].as_u64().unwrap_or(0), "record")
    ))?;
    Ok(())
}

/// `reel stream URL`: the records route with the same bounds; `--live` follows and,
/// after a dropped connection, resumes after the last seq printed.
pub fn stream(r: &Remote, a: &StreamArgs, out: &mut Output) -> CliResult {
    let mut after: Option<u64> = None;
    let mut printed = 0u64;
    loop {
        let mut query = Vec::new();
        let push = |q: &mut Vec<(&'static str, String)>, k, v: Option<u64>| {
            if let Some(v) = v {
                q.push((k, v.to_string()));
            }
        };
        push(&mut query, "gt", after.or(a.gt));
        push(&mut query, "gte", a.gte);
        push(&mut query, "lt", a.lt);
        push(&mut query, "lte", a.lte);
        push(&mut query, "limit", a.limit.map(|l| l - printed));
        if a.reverse {
            query.push(("reverse", "true".into()));
        }
        if a.live {
            query.push(("follow", "true".into()));
        }
        let mut body = r.lines("/records", query)?;
        let mut line = String::new();
        let dropped = loop {
            line.clear();
            match body.read_line(&mut line) {
                Ok(0) => break false,
                Ok(_) => {}
                Err(_) if a.live => break true,
                Err(e) => return Err(r.broken(e)),
            }
            let rec: Value = serde_json::from_str(line.trim_end())
                .map_err(|e| CliError::Input(format!("the server sent a bad record ({e})")))?;
            if let Some(msg) = rec.get("error").and_then(Value::as_str) {
                return Err(CliError::Input(msg.to_string()));
            }
            if a.meta {
                out.json_line(&rec)?;
            } else {
                out.json_line(&rec["value"])?;
            }
            if a.live {
                out.flush()?;
            }
            after = rec["seq"].as_u64();
            printed += 1;
        };
        if !dropped {
            return Ok(());
        }
        crate::output::note(format_args!(
            "reel: connection to {} lost; resuming",
            r.url()
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
}

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
                idempotent: if_rev.is_some() || *if_absent,
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
            let v = r.json(&Call {
                method: "GET",
                path: kv_path(path),
                query,
                idempotent: true,
                ..Default::default()
            })?;
            if *meta || *recursive {
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
                idempotent: if_rev.is_some(),
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

/// `reel list ... URL ...`.
pub fn list(r: &Remote, cmd: &ListCommand, out: &mut Output) -> CliResult<Option<Value>> {
    match cmd {
        ListCommand::Append {
            nonce,
            ts,
            key,
            json,
            ..
        } => {
            let texts = crate::commands::list::item_texts(json)?;
            let mut items = Vec::with_capacity(texts.len());
            for (i, (what, text)) in texts.iter().enumerate() {
                let value: Value = serde_json::from_str(text).map_err(|e| {
                    CliError::Input(format!("{what}: invalid JSON: {e}; nothing was stored"))
                })?;
                let mut item = serde_json::json!({ "value": value });
                if let Some(n) = nonce {
                    item["nonce"] = reel::nonce_json(crate::commands::list::nth_nonce(*n, i)?);
                }
                if let Some(t) = ts {
                    item["ts"] = (*t).into();
                }
                items.push(item);
            }
            let v = r.json(&Call {
                method: "POST",
                path: format!("/lists/{}", encode(key)),
                body: Some(
                    serde_json::json!({ "items": items })
                        .to_string()
                        .into_bytes(),
                ),
                idempotent: nonce.is_some(),
                ..Default::default()
            })?;
            out.json_line(&v)?;
            Ok(None)
        }
        ListCommand::Read {
            reverse,
            limit,
            from_offset,
            from_time,
            from_nonce,
            continuation,
            key,
            ..
        } => {
            if *limit == Some(0) {
                return Err(CliError::Input("--limit must be at least 1".into()));
            }
            let mut query = Vec::new();
            if *reverse {
                query.push(("reverse", "true".to_string()));
            }
            let opts = [
                ("limit", limit.map(|v| v.to_string())),
                ("from_offset", from_offset.map(|v| v.to_string())),
                ("from_time", from_time.map(|v| v.to_string())),
                ("from_nonce", from_nonce.map(|v| v.to_string())),
                ("continue", continuation.clone()),
            ];
            query.extend(opts.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
            let v = r.json(&Call {
                method: "GET",
                path: format!("/lists/{}", encode(key)),
                query,
                idempotent: true,
                ..Default::default()
            })?;
            out.json_line(&v)?;
            Ok(None)
        }
        ListCommand::Info { key, .. } => Ok(Some(r.json(&Call {
            method: "GET",
            path: format!("/lists/{}/info", encode(key)),
            idempotent: true,
            ..Default::default()
        })?)),
        ListCommand::Keys { json, .. } => {
            let v = r.json(&Call {
                method: "GET",
                path: "/lists".into(),
                idempotent: true,
                ..Default::default()
            })?;
            let keys: Vec<String> = v["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect();
            crate::commands::list::print_keys(&keys, *json, out)?;
            Ok(None)
        }
    }
}
