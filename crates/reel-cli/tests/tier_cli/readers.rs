//! Named readers of a store in object storage: the name is locked while a reader uses
//! it, as in a local directory, so two readers of one name never get the same records.

use crate::weed::{self, fails, ok, s, url};
use std::io::BufRead;
use std::process::{Command, Stdio};

#[test]
fn a_reader_name_in_object_storage_is_locked_while_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let u = url("reader-lock");
    ok(&["init", "--object-store", &u, s(&dir)]);
    ok(&["write", s(&dir), "1", "2", "3"]);
    let mut first = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["read", "-r", "c", "--count", "100", "--timeout", "60", &u])
        .envs(weed::env())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(first.stdout.take().unwrap());
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert_eq!(line, "1\n");
    let err = fails(&["read", "-r", "c", "--no-wait", &u]);
    assert!(err.contains("in use by another reader"), "{err}");
    // Other names are free, and the lock is kept while the holder runs (renewed).
    assert_eq!(ok(&["read", "-r", "d", "--no-wait", &u]), "1\n2\n3\n");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let err = fails(&["read", "-r", "c", "--no-wait", &u]);
    assert!(err.contains("in use by another reader"), "{err}");
    // A holder killed on this host frees the name at once; one that exits releases it.
    first.kill().unwrap();
    first.wait().unwrap();
    ok(&["write", s(&dir), "4"]);
    assert!(ok(&["read", "-r", "c", "--no-wait", &u]).ends_with("4\n"));
    assert_eq!(ok(&["read", "-r", "c", "--no-wait", &u]), "");
}
