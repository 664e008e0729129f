//! HTTPS: `reel serve --tls-cert --tls-key`, and the remote CLI on `https://` URLs,
//! trusting a private certificate through `REEL_CA_CERT`.

use crate::Server;
use crate::common::bin;
use std::process::Command;

#[test]
fn the_remote_cli_speaks_https_to_a_server_with_a_private_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let s = Server::start_in(
        &root,
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    let url = format!("https://localhost:{}/cfg", s.addr.port());
    let run = |ca: Option<&std::path::Path>, args: &[&str]| {
        let mut c = Command::new(bin());
        c.args(args).env_remove("REEL_CA_CERT");
        if let Some(ca) = ca {
            c.env("REEL_CA_CERT", ca);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let ca = Some(cert_path.as_path());
    let (code, out, err) = run(ca, &["kv", "set", &url, "a", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "0\n");
    assert_eq!(run(ca, &["kv", "get", &url, "a"]).1, "\"1\"\n");
    // Not trusted without the certificate: refused, nothing sent in clear.
    let (code, _, err) = run(None, &["kv", "get", &url, "a"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot reach") || err.contains("certificate"),
        "{err}"
    );
    // Plain HTTP to the TLS port gets no answer.
    let plain = format!("http://127.0.0.1:{}/cfg", s.addr.port());
    assert_ne!(run(None, &["kv", "get", &plain, "a"]).0, Some(0));
}
