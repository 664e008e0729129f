//! Each store command against a server: the same arguments, output bytes and exit
//! statuses as the local command (the server sends what the local command prints, built
//! by the same library functions).

use super::{Call, Remote, encode};
use crate::cli::{ListCommand, RewindArgs, StreamArgs, WriteArgs};
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
        // The server reads every byte of the store before it answers: as long as a
        // large store takes (a day at most; it was 10 minutes, too short for one).
        waits: Duration::from_secs(86_400),
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
            // JSON's whitespace only, as the local `write` (a line of \v is not JSON).
            let text = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
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
/// after a dropped connection or a server restart, resumes after the last seq printed.
pub fn stream(r: &Remote, a: &StreamArgs, out: &mut Output) -> CliResult {
    let mut after: Option<u64> = None;
    let mut printed = 0u64;
    let mut resumed = false;
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
        let mut printed_now = 0u64;
        let cut = loop {
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
            printed_now += 1;
        };
        // A resumed stream that ended with nothing printed: over only if the log
        // reached the bound (retention dropped the rest of the range), not when the
        // server merely stopped again (a second restart).
        let empty_resume = resumed
            && printed_now == 0
            && !cut
            && status(r)
                .ok()
                .and_then(|st| st["next_seq"].as_u64())
                .is_some_and(|next| {
                    a.lt.or(a.lte.map(|l| l.saturating_add(1)))
                        .is_some_and(|end| next >= end)
                });
        if !cut && live_stream_done(a, after, printed, empty_resume) {
            return Ok(());
        }
        // A followed stream also ends cleanly when the server stops (a restart): only
        // its bounds end it for good.
        let why = if cut {
            "connection lost"
        } else {
            "stream ended by the server"
        };
        crate::output::note(format_args!("reel: {why} ({}); resuming", r.url()));
        resumed = true;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// True when a stream whose body ended cleanly is over: it was not followed, or it
/// printed its `--limit`, or its last record printed (`after`) reaches its upper bound.
/// With an upper bound, a resumed stream that ended again with nothing printed while
/// the log reaches the bound is over too (`empty_resume`): the records up to the bound
/// were dropped by retention.
fn live_stream_done(a: &StreamArgs, after: Option<u64>, printed: u64, empty_resume: bool) -> bool {
    let end = a.lt.or(a.lte.map(|l| l.saturating_add(1)));
    !a.live
        || a.reverse
        || a.limit.is_some_and(|l| printed >= l)
        || end.is_some_and(|e| after.is_some_and(|s| s.saturating_add(1) >= e) || empty_resume)
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
                unsure: Some(if nonce.is_some() {
                    format!(
                        "run the same command again (its nonces keep it from appending twice) \
                         or check with `reel list read {} {key}`",
                        r.url()
                    )
                } else {
                    format!("check with `reel list read {} {key}`", r.url())
                }),
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
