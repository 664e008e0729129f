//! What an operator meets: refusals that name the problem, truthful counts and
//! messages, read-only directories, full disks, warnings on stderr.
mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn status_json(d: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&["status", "--json", s(d)])).unwrap()
}

#[test]
fn tee_refuses_a_destination_given_twice_or_equal_to_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    ok(&["init", s(&src)]);
    ok(&["init", s(&dst)]);
    ok(&["write", s(&src), "1", "2"]);
    let dst_again = format!("{}/./", s(&dst));
    let err = fails(&["tee", "--no-wait", s(&src), s(&dst), &dst_again]);
    assert!(err.contains("given twice"), "{err}");
    let err = fails(&["tee", "--no-wait", s(&src), s(&dst), s(&src)]);
    assert!(err.contains("source spool"), "{err}");
    assert_eq!(status_json(&dst)["next_seq"], 0, "nothing was copied");
    ok(&["tee", "--no-wait", s(&src), s(&dst)]);
    assert_eq!(ok(&["stream", s(&dst)]), "1\n2\n");
}

#[test]
fn tee_refuses_a_kv_destination_before_copying_into_any_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, kv) = (
        tmp.path().join("src"),
        tmp.path().join("dst"),
        tmp.path().join("kv"),
    );
    ok(&["init", s(&src)]);
    ok(&["init", s(&dst)]);
    ok(&["init", "--kind", "kv", s(&kv)]);
    ok(&["write", s(&src), "1", "2"]);
    let err = fails(&["tee", "--no-wait", s(&src), s(&dst), s(&kv)]);
    assert!(err.contains("is a kv store, not a spool"), "{err}");
    assert_eq!(status_json(&dst)["next_seq"], 0, "nothing was copied");
    // The refused run moved no reader: fixing the command copies everything.
    ok(&["tee", "--no-wait", s(&src), s(&dst)]);
    assert_eq!(ok(&["stream", s(&dst)]), "1\n2\n");
}

#[test]
fn status_after_compact_counts_only_the_records_that_still_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    ok(&["init", "--size", "256k", "--when-full", "compact", s(&d)]);
    let pad = "p".repeat(200);
    let input: String = (0..1000)
        .map(|i| format!("{{\"v\":{i},\"pad\":\"{pad}\"}}\n"))
        .collect();
    // Three keys overwritten again and again: compaction keeps the latest of each.
    for k in ["a", "b", "c"] {
        let out = reel_stdin(&["write", "--key", k, s(&d)], &input);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok(&["compact", "--grace", "0", s(&d)]);
    let st = status_json(&d);
    let present = ok(&["stream", s(&d)]).lines().count() as u64;
    assert!(
        present < st["next_seq"].as_u64().unwrap() - st["oldest_seq"].as_u64().unwrap(),
        "compaction dropped something"
    );
    assert_eq!(st["records"], present, "{st}");
    let text = ok(&["status", s(&d)]);
    assert!(
        text.contains(&format!("records    {present} retained")),
        "{text}"
    );
}

#[test]
fn verify_names_the_seq_to_skip_to_or_says_no_record_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "64k", s(&d)]);
    let input: String = (0..3000).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    assert!(reel_stdin(&["write", s(&d)], &input).status.success());
    let mut idx: Vec<_> = std::fs::read_dir(d.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    idx.sort();
    let mut b = std::fs::read(&idx[0]).unwrap();
    b[40] ^= 0xff;
    std::fs::write(&idx[0], b).unwrap();
    let out = reel(&["verify", s(&d)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("SEQ"),
        "a placeholder instead of a seq: {err}"
    );
    assert!(err.contains("still readable"), "{err}");

    // Damage in a record: the advice names the seq where reading resumes.
    let mut segs: Vec<_> = std::fs::read_dir(d.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let mut b = std::fs::read(&segs[0]).unwrap();
    b[200] ^= 0xff;
    std::fs::write(&segs[0], b).unwrap();
    let out = reel(&["verify", "--json", s(&d)]);
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let resume = rep["damage"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|d| d["resume_seq"].as_u64())
        .expect("a resume seq for record damage");
    let err = fails(&["verify", s(&d)]);
    assert!(err.contains(&format!("--to-seq {resume} ")), "{err}");
}

/// Runs `reel ARGS` as a user that cannot write the directory: this user when it is
/// not root; `nobody` through setpriv when it is root (root ignores file modes). `None`
/// when neither is possible.
fn as_unprivileged(args: &[&str]) -> Option<std::process::Output> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        return Some(reel(args));
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
        .args(args)
        .output()
        .ok()?;
    // The binary or the directory may be out of nobody's reach on this machine.
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("setpriv:") || (err.contains("Permission denied") && !err.contains("reel:")) {
        return None;
    }
    Some(out)
}

fn chmod_r(p: &Path, writable: bool) {
    let mode = if writable { "u+w" } else { "a-w" };
    assert!(
        Command::new("chmod")
            .args(["-R", mode])
            .arg(p)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn read_only_commands_work_on_a_directory_nobody_may_write() {
    let tmp = tempfile::tempdir().unwrap();
    // Reachable by `nobody` when the test runs as root.
    let base = tmp.path().join("ro");
    std::fs::create_dir(&base).unwrap();
    for p in [tmp.path(), base.as_path()] {
        Command::new("chmod").arg("a+rx").arg(p).status().unwrap();
    }
    let (d, kv, l) = (base.join("s"), base.join("kv"), base.join("l"));
    ok(&["init", s(&d)]);
    ok(&["write", "--key", "k", s(&d), "1", "2"]);
    ok(&["kv", "set", s(&kv), "a.b", "1"]);
    ok(&["list", "append", s(&l), "k", "1"]);
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&base)
        .status()
        .unwrap();
    chmod_r(&base, false);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["status", s(&d)], "2 retained"),
        (vec!["status", "--json", s(&d)], "\"records\":2"),
        (vec!["stream", s(&d)], "1\n2\n"),
        (vec!["verify", s(&d)], "0 problems"),
        (vec!["view", "list", s(&kv)], "kv"),
        (vec!["kv", "get", s(&kv), "a.b"], "\"1\""),
        (vec!["kv", "keys", "-r", s(&kv)], "a.b"),
        (
            vec!["kv", "watch", "--fetch", "--count", "1", s(&kv), ":"],
            "a.b",
        ),
        (vec!["list", "read", s(&l), "k"], "\"offset\":0"),
        (vec!["list", "info", s(&l), "k"], "count        1"),
        (vec!["list", "keys", s(&l)], "k"),
    ];
    let mut ran = 0;
    for (args, want) in &cases {
        let Some(out) = as_unprivileged(args) else {
            break;
        };
        ran += 1;
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "reel {args:?} on a read-only directory: {e}"
        );
        assert!(o.contains(want), "reel {args:?}: {o}");
    }
    // Writing is refused with a clear error.
    if let Some(out) = as_unprivileged(&["write", s(&d), "3"]) {
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains("cannot write"), "{e}");
    }
    chmod_r(&base, true);
    if ran == 0 {
        eprintln!("skipped: cannot run reel as a user without write permission here");
    }
}

#[test]
fn read_only_opens_through_the_library_see_the_data_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), "1", "2", "3"]);
    let listing = |d: &Path| {
        let mut v: Vec<_> = walk(d);
        v.sort();
        v
    };
    let before = listing(&d);
    let spool = reel::Spool::builder(&d)
        .create(false)
        .read_only(true)
        .open()
        .unwrap();
    let st = spool.status().unwrap();
    assert_eq!((st.records, st.next_seq), (3, 3));
    assert!(
        spool.append(json!(4)).is_err(),
        "a read-only handle refuses appends"
    );
    drop(spool);
    assert_eq!(listing(&d), before, "nothing was written");
}

fn walk(d: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push((e.path(), m.len()));
        }
    }
    out
}

#[test]
fn write_says_what_it_stored_when_the_spool_is_full() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "64k", "--when-full", "reject", s(&d)]);
    // A reader that consumes nothing: the reject policy must keep everything.
    ok(&["read", "--no-wait", "-n", "0", s(&d)]);
    let pad = "p".repeat(1000);
    let input: String = (0..200)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{pad}\"}}\n"))
        .collect();
    let out = reel_stdin(&["write", s(&d)], &input);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let next = status_json(&d)["next_seq"].as_u64().unwrap();
    assert!(next > 0);
    assert!(
        err.contains("full")
            && err.contains(&format!(
                "stored {next} records before it (seq 0 to {})",
                next - 1
            )),
        "{err}"
    );
}

/// Runs `script` in a private mount namespace in which `$M` is a 1 MiB tmpfs (`$REEL`
/// the binary, `$P` a 1000-byte pad); `None` where it cannot (not root, no `unshare`),
/// the test then skips. The script must print `marker` once past its setup.
fn on_a_small_disk(script: &str, marker: &str) -> Option<(String, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let script = format!("mount -t tmpfs -o size=1m none \"$M\" || exit 77\n{script}");
    let Ok(out) = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("REEL", bin())
        .env("M", &mnt)
        .env("P", "p".repeat(1000))
        .output()
    else {
        eprintln!("skipped: no unshare");
        return None;
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !stdout.contains(marker) {
        eprintln!("skipped: cannot mount a small file system here");
        return None;
    }
    Some((stdout, String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[test]
fn write_says_what_it_stored_when_the_disk_is_full() {
    let script = r#""$REEL" init --size 64m "$M/s" >/dev/null || exit 78
i=0; while [ $i -lt 3000 ]; do echo "{\"i\":$i,\"pad\":\"$P\"}"; i=$((i+1)); done | "$REEL" write "$M/s"
echo "rc=$?"
"$REEL" status --json "$M/s"
"#;
    let Some((stdout, err)) = on_a_small_disk(script, "rc=") else {
        return;
    };
    assert!(stdout.contains("rc=1"), "{stdout} {err}");
    let st: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let next = st["next_seq"].as_u64().unwrap();
    assert!(next > 0 && next < 3000, "{st}");
    assert!(
        err.contains("disk full")
            && err.contains(&format!(
                "stored {next} records before it (seq 0 to {})",
                next - 1
            )),
        "{err}"
    );
}

#[test]
fn creating_a_store_on_a_nearly_full_disk_is_an_error_not_a_crash() {
    // 12 KiB free: the segment files fit, the shared head's page did not get a block and
    // the first store through its mapping killed the process (SIGBUS, exit 135), as did
    // every later command on the directory, `status` included. Now the head gets its
    // blocks before the metadata is written, so nothing is left behind.
    let script = r#"dd if=/dev/zero of="$M/filler" bs=1k count=1012 2>/dev/null || exit 78
"$REEL" init "$M/n"; echo "init=$?"
[ -e "$M/n" ] && echo "left behind"
rm "$M/filler"
"$REEL" init "$M/n" >/dev/null && "$REEL" status "$M/n" >/dev/null; echo "freed=$?"
"#;
    let Some((stdout, err)) = on_a_small_disk(script, "init=") else {
        return;
    };
    assert!(stdout.contains("init=1"), "{stdout} {err}");
    assert!(!stdout.contains("left behind"), "{stdout} {err}");
    assert!(
        err.contains("disk full") && err.contains("nothing was left behind"),
        "{err}"
    );
    assert!(stdout.contains("freed=0"), "{stdout} {err}");
}

#[test]
fn sizes_accept_exact_decimals_and_explain_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", "--size", "1.5g", s(&d)]);
    assert_eq!(status_json(&d)["capacity"], 1536u64 << 20);
    let err = fails(&["init", "--size", "100.1k", s(&tmp.path().join("x"))]);
    assert!(err.contains("whole number of bytes"), "{err}");
    let err = fails(&["init", "--size", "1k", s(&tmp.path().join("y"))]);
    assert!(err.contains("minimum"), "{err}");
}

#[test]
fn counts_are_pluralised() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), "1"]);
    let st = ok(&["status", s(&d)]);
    assert!(st.contains(" in 1 segment ("), "{st}");
    let v = ok(&["verify", s(&d)]);
    assert!(v.contains("1 segment, 1 record,"), "{v}");
    assert!(v.contains("0 problems"), "{v}");
    let r = ok(&["rewind", s(&d)]);
    assert!(r.contains("(1 record to read)"), "{r}");
}

#[test]
fn init_help_describes_every_policy_and_force() {
    let help = ok(&["init", "--help"]);
    for w in [
        "drop-oldest",
        "reject",
        "compact",
        "latest record of each key",
        "--force",
    ] {
        assert!(help.contains(w), "{w} missing: {help}");
    }
}

#[test]
fn view_list_shows_kv_before_it_was_ever_checkpointed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    ok(&["kv", "set", s(&d), "a", "1"]);
    ok(&["kv", "set", s(&d), "b", "2"]);
    assert!(!d.join("views").join("kv").exists(), "no checkpoint yet");
    let views: serde_json::Value =
        serde_json::from_str(&ok(&["view", "list", "--json", s(&d)])).unwrap();
    assert_eq!(
        views,
        json!([{"name": "kv", "version": 2, "since": null, "lag": 2}])
    );
    // A plain spool has no views.
    let p = tmp.path().join("plain");
    ok(&["init", s(&p)]);
    ok(&["write", s(&p), "1"]);
    assert_eq!(ok(&["view", "list", "--json", s(&p)]).trim(), "[]");
}

#[test]
fn list_read_of_a_missing_key_returns_a_token_that_later_pages_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("l");
    ok(&["list", "append", s(&l), "other", "1"]);
    let page: serde_json::Value =
        serde_json::from_str(&ok(&["list", "read", s(&l), "orders"])).unwrap();
    assert_eq!(page["items"], json!([]));
    let token = page["continuation"]
        .as_str()
        .expect("a forward page promises a token")
        .to_string();
    ok(&["list", "append", s(&l), "orders", "10", "11"]);
    let page: serde_json::Value = serde_json::from_str(&ok(&[
        "list",
        "read",
        "--continue",
        &token,
        s(&l),
        "orders",
    ]))
    .unwrap();
    let values: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].clone())
        .collect();
    assert_eq!(values, [json!(10), json!(11)]);
}

#[test]
fn recovery_warnings_reach_stderr_once_and_rust_log_filters_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), "1", "2"]);
    let tear = || {
        // A torn tail after a crash: garbage after the last record, head distrusted.
        let _ = std::fs::remove_file(d.join("reel.head"));
        let seg = std::fs::read_dir(d.join("segments"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "seg"))
            .unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(seg).unwrap();
        std::io::Write::write_all(&mut f, &[0xab; 40]).unwrap();
    };
    tear();
    let out = Command::new(bin())
        .args(["status", s(&d)])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("recovery cut").count(), 1, "{err}");
    assert!(err.starts_with("reel: warning: "), "{err}");
    tear();
    let out = Command::new(bin())
        .args(["status", s(&d)])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let out = Command::new(bin())
        .args(["status", s(&d)])
        .env("RUST_LOG", "reel_log=notalevel")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ignoring RUST_LOG"));
}

#[test]
fn demo_names_the_binary_to_try_next() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("demo");
    let out = ok(&["demo", s(&d)]);
    let last = out
        .lines()
        .find(|l| l.starts_with("== try:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(last.contains(bin()), "{last}");
    assert!(
        out.contains("cargo install --path crates/reel-cli"),
        "{out}"
    );
}

/// On a copied store (its head is not trusted), a whole last record that fails its
/// check is reported by `verify` (it used to pass as a torn write: "0 problems", exit
/// 0); a frame the file ends inside is a torn write and is not.
#[test]
fn verify_reports_a_damaged_last_record_of_a_copy_but_not_a_torn_write() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("src");
    ok(&["init", s(&d)]);
    ok(&["write", s(&d), "{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]);
    let seg = |dir: &Path| dir.join("segments/00000000000000000000.seg");
    let flipped = tmp.path().join("flipped");
    common::copy_dir(&d, &flipped);
    let mut b = std::fs::read(seg(&flipped)).unwrap();
    let n = b.len();
    b[n - 3] ^= 1;
    std::fs::write(seg(&flipped), b).unwrap();
    let out = reel(&["verify", s(&flipped)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("whole record frame that does not verify"),
        "{text}"
    );
    // Only the last frame's length damaged: it looks like a frame the file ends
    // inside, but its checksum holds with the length that reaches the end.
    let length = tmp.path().join("length");
    common::copy_dir(&d, &length);
    let mut b = std::fs::read(seg(&length)).unwrap();
    let last = b.len() - 32;
    b[last + 4] ^= 0x10;
    std::fs::write(seg(&length), b).unwrap();
    let out = reel(&["verify", s(&length)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let torn = tmp.path().join("torn");
    common::copy_dir(&d, &torn);
    let b = std::fs::read(seg(&torn)).unwrap();
    std::fs::write(seg(&torn), &b[..b.len() - 5]).unwrap();
    assert!(ok(&["verify", s(&torn)]).contains("0 problems"));
}

/// A malformed reader name is a command line that does not parse: exit 2, as for any
/// malformed option (it used to exit 1, from the store).
#[test]
fn a_malformed_reader_name_exits_2_and_names_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("sp");
    ok(&["init", s(&d)]);
    let long = "r".repeat(300);
    for name in ["a/b", "", long.as_str(), ".hidden"] {
        for cmd in ["read", "rewind"] {
            let out = reel(&[cmd, "--reader", name, s(&d)]);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd} --reader {name:?}: {out:?}"
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("invalid reader name"), "{err}");
        }
    }
    assert_eq!(
        status_json(&d)["readers"],
        serde_json::json!([]),
        "no reader was made"
    );
}
