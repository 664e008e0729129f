//! The local CLI and the remote CLI side by side: every store command that does not need
//! the file system, run once with the directory and once with the server URL, must print
//! the same bytes and exit with the same status.

use crate::Server;
use crate::common::{bin, ok, reel_stdin};
use std::process::Command;

/// Runs `reel ARGS` with `{}` replaced by `target`: (stdout, exit status).
fn run(args: &[&str], target: &str) -> (String, i32) {
    let args: Vec<String> = args.iter().map(|a| a.replace("{}", target)).collect();
    let out = Command::new(bin()).args(&args).output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

/// Both forms of `args` on the same store print the same and exit the same.
fn same(s: &Server, store: &str, args: &[&str]) {
    let local = run(args, &s.dir(store));
    let remote = run(args, &format!("http://{}/{store}", s.addr));
    assert_eq!(local, remote, "reel {args:?}: local vs remote");
}

#[test]
fn read_commands_print_the_same_bytes_locally_and_remotely() {
    let s = Server::start(&[]);
    // A spool with keys and a reader's progress.
    ok(&["init", &s.dir("ev")]);
    let input: String = (0..50)
        .map(|i| {
            format!(
                "{{\"i\":{i},\"f\":{}.5,\"s\":\"x\\u00e9\",\"n\":null}}\n",
                i
            )
        })
        .collect();
    assert!(
        reel_stdin(&["write", "--key", "k", &s.dir("ev")], &input)
            .status
            .success()
    );
    ok(&[
        "read",
        "--no-wait",
        "--count",
        "7",
        "--reader",
        "seen",
        &s.dir("ev"),
    ]);
    for args in [
        &["status", "{}"][..],
        &["status", "--json", "{}"],
        &["stream", "{}"],
        &["stream", "--meta", "{}"],
        &["stream", "--gte", "10", "--lt", "20", "{}"],
        &["stream", "--gt", "10", "--lte", "20", "--meta", "{}"],
        &["stream", "--reverse", "--limit", "5", "--meta", "{}"],
        &["stream", "--reverse", "--gte", "45", "{}"],
        &["stream", "--limit", "3", "{}"],
        &["stream", "--gte", "1000", "{}"],
        &["view", "list", "{}"],
        &["verify", "--json", "{}"],
    ] {
        same(&s, "ev", args);
    }
    // A kv store.
    for (p, v) in [
        ("app.port", "8080"),
        ("app.name", "\"web\""),
        ("app.db:.host", "\"db1\""),
        ("app.list", "[1,2,{\"a\":null}]"),
        ("other:12.x", "true"),
        ("top", "1.25"),
    ] {
        ok(&["kv", "set", "-e", &s.dir("cfg"), p, v]);
    }
    ok(&["kv", "del", &s.dir("cfg"), "top"]);
    for args in [
        &["kv", "get", "{}", "app.port"][..],
        &["kv", "get", "{}", "app.list"],
        &["kv", "get", "--meta", "{}", "app.name"],
        &["kv", "get", "-r", "{}", "app"],
        &["kv", "get", "-r", "{}", ":"],
        &["kv", "get", "{}", "app.db:.host"],
        &["kv", "get", "{}", "missing.path"],
        &["kv", "get", "{}", "top"],
        &["kv", "keys", "{}", ":"],
        &["kv", "keys", "{}", "app"],
        &["kv", "keys", "-r", "{}", ":"],
        &["kv", "watch", "--fetch", "--count", "4", "{}", "app"],
        &["kv", "watch", "--from-rev", "0", "--count", "5", "{}", ":"],
        &["stream", "--meta", "{}"],
        &["view", "list", "{}"],
        &["view", "list", "--json", "{}"],
        // (The text form names DIR or the URL it was given.)
        &["verify", "--json", "{}"],
    ] {
        same(&s, "cfg", args);
    }
    // Keyed lists.
    for k in 0..3 {
        let items: Vec<String> = (0..20)
            .map(|i| format!("{{\"k\":{k},\"i\":{i}}}"))
            .collect();
        let mut args = vec!["list", "append", "--nonce", "100", "--ts", "1000"];
        let dir = s.dir("orders");
        let key = format!("cust-{k}");
        args.extend([dir.as_str(), key.as_str()]);
        args.extend(items.iter().map(String::as_str));
        ok(&args);
    }
    let page = run(
        &["list", "read", "--limit", "5", "{}", "cust-1"],
        &s.dir("orders"),
    )
    .0;
    let token: serde_json::Value = serde_json::from_str(&page).unwrap();
    let token = token["continuation"].as_str().unwrap().to_string();
    for args in [
        &["list", "read", "{}", "cust-1"][..],
        &["list", "read", "--limit", "5", "{}", "cust-1"],
        &["list", "read", "--reverse", "--limit", "3", "{}", "cust-2"],
        &["list", "read", "--from-offset", "17", "{}", "cust-0"],
        &[
            "list",
            "read",
            "--from-nonce",
            "110",
            "--limit",
            "2",
            "{}",
            "cust-0",
        ],
        &[
            "list",
            "read",
            "--from-time",
            "1000",
            "--limit",
            "2",
            "{}",
            "cust-0",
        ],
        &[
            "list",
            "read",
            "--limit",
            "5",
            "--continue",
            &token,
            "{}",
            "cust-1",
        ],
        &["list", "read", "--limit", "0", "{}", "cust-1"],
        &["list", "read", "{}", "nobody"],
        &["list", "info", "{}", "cust-2"],
        &["list", "info", "--json", "{}", "cust-2"],
        &["list", "info", "{}", "nobody"],
        &["list", "keys", "{}"],
    ] {
        same(&s, "orders", args);
    }
}

const APPEND_WITH_NONCES: &[&str] = &[
    "list",
    "append",
    "--nonce",
    "5",
    "{}",
    "k",
    "{\"v\":1}",
    "{\"v\":2}",
];

/// A record over the maximum record size of a store created with `--max-record-size 1k`.
static BIG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{{\"pad\":\"{}\"}}", "x".repeat(2000)));

#[test]
fn write_commands_answer_the_same_locally_and_remotely() {
    let s = Server::start(&[]);
    // Two fresh stores of each kind: one written locally, one through the server.
    let pairs = [("kv-l", "kv-r"), ("li-l", "li-r"), ("ev-l", "ev-r")];
    ok(&["init", "--max-record-size", "1k", &s.dir("ev-l")]);
    ok(&["init", "--max-record-size", "1k", &s.dir("ev-r")]);
    let target = |store: &str| {
        if store.ends_with("-l") {
            s.dir(store)
        } else {
            format!("http://{}/{store}", s.addr)
        }
    };
    let steps: &[(&str, &[&str])] = &[
        ("kv", &["kv", "set", "{}", "a.b", "text"]),
        ("kv", &["kv", "set", "-e", "{}", "a.c", "{\"x\":[1,2]}"]),
        ("kv", &["kv", "set", "--if-rev", "0", "{}", "a.b", "second"]),
        ("kv", &["kv", "set", "--if-rev", "0", "{}", "a.b", "third"]),
        ("kv", &["kv", "set", "--if-absent", "{}", "a.b", "x"]),
        ("kv", &["kv", "set", "--if-absent", "{}", "a.new", "x"]),
        ("kv", &["kv", "set", "-e", "{}", "a.bad", "{nope"]),
        ("kv", &["kv", "set", "{}", "bad..path", "x"]),
        ("kv", &["kv", "del", "--if-rev", "9", "{}", "a.b"]),
        ("kv", &["kv", "del", "{}", "a.b"]),
        ("kv", &["kv", "del", "{}", "a.b"]),
        ("kv", &["kv", "del", "-r", "{}", "a"]),
        ("li", APPEND_WITH_NONCES),
        // The same again: stored once.
        ("li", APPEND_WITH_NONCES),
        ("li", &["list", "append", "{}", "k", "{bad"]),
        ("ev", &["write", "{}", "{\"a\":1}", "{\"b\":2}"]),
        ("ev", &["write", "{}", "{\"a\":1}", "{bad"]),
        ("ev", &["write", "{}", "{\"a\":2}", &BIG]),
        ("ev", &["read", "--no-wait", "{}"]),
        ("ev", &["read", "--no-wait", "--meta", "{}"]),
        ("ev", &["rewind", "--to-seq", "1", "{}"]),
        ("ev", &["rewind", "--to-seq", "99", "{}"]),
        ("ev", &["read", "--no-wait", "--count", "1", "{}"]),
        ("ev", &["rewind", "{}"]),
        ("ev", &["read", "--timeout", "0.2", "{}"]),
    ];
    for (kind, args) in steps {
        let (l, r) = pairs.iter().find(|(l, _)| l.starts_with(kind)).unwrap();
        let local = run(args, &target(l));
        let remote = run(args, &target(r));
        assert_eq!(local, remote, "reel {args:?}: local vs remote");
    }
}
