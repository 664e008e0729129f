//! Request and response contracts: records, kv, lists, readers, errors.

use crate::Server;
use crate::client::{get, request};
use crate::common::ok;

#[test]
fn records_append_as_one_batch_and_read_back_with_their_seqs() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/records?key=k1&durability=always",
        &[],
        b"{\"a\":1}\n\n{\"b\":2}\n",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({"first_seq": 0, "count": 2}));
    // The local CLI sees what the server stored.
    let local = ok(&["stream", "--meta", &s.dir("ev")]);
    assert!(local.contains("\"key\":\"k1\""), "{local}");
    let r = get(s.addr, "/v1/stores/ev/records?from_seq=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let lines = r.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["key"], "k1");
    assert_eq!(lines[0]["value"], serde_json::json!({"b": 2}));
    let r = get(s.addr, "/v1/stores/ev/records?limit=1");
    assert_eq!(r.lines().len(), 1);
}

#[test]
fn bad_requests_get_the_right_status_and_store_nothing() {
    let s = Server::start(&["--max-body", "1k"]);
    ok(&["init", &s.dir("ev")]);
    let post = |path: &str, body: &[u8]| request(s.addr, "POST", path, &[], body);
    let r = post("/v1/stores/ev/records", b"{\"a\":1}\n{not json\n");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("line 2"),
        "{}",
        r.body
    );
    let r = post("/v1/stores/ev/records", &vec![b' '; 4096]);
    assert_eq!(r.status, 413, "{}", r.body);
    let r = post("/v1/stores/ev/records?durability=sometimes", b"{}");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post("/v1/stores/nope/records", b"{}");
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("nope"));
    let r = post("/v1/stores/..%2Fetc/records", b"{}");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = get(s.addr, "/v1/stores/ev/records?from_seq=minus");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = get(s.addr, "/v2/whatever");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    // Integers beyond 64 bits would be stored rounded: refused, on every route.
    let big = "{\"n\":18446744073709551616}";
    let r = post("/v1/stores/ev/records", big.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request(s.addr, "PUT", "/v1/stores/cfg/kv/n", &[], big.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    let items = format!("{{\"items\":[{{\"value\":1.5}},{{\"value\":{big}}}]}}");
    let r = post("/v1/stores/orders/lists/k", items.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("64-bit"),
        "{}",
        r.body
    );
    // Nothing of the refused requests was stored.
    assert_eq!(get(s.addr, "/v1/stores/ev").json()["next_seq"], 0);
}

/// A misspelled parameter or two that contradict each other are refused, as the CLI
/// refuses them, instead of being ignored (a typo in `durability` used to store with
/// the default durability and answer 200); every refusal is JSON, a 405 too.
#[test]
fn unknown_and_conflicting_parameters_are_refused_by_name() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    ok(&["init", "--kind", "lists", &s.dir("orders")]);
    ok(&["init", "--kind", "kv", &s.dir("cfg")]);
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/records?durabilty=always",
        &[],
        b"1",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("durabilty"),
        "{}",
        r.body
    );
    let r = get(s.addr, "/v1/stores/ev/records?form_seq=1");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = get(
        s.addr,
        "/v1/stores/orders/lists/cust-1?from_offset=1&from_nonce=1",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("from_nonce"),
        "{}",
        r.body
    );
    let r = get(s.addr, "/v1/stores/cfg/keys?recursiv=true");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("recursiv"));
    // `continue` goes on from its token whatever the start, as in the library.
    let r = get(
        s.addr,
        "/v1/stores/orders/lists/cust-1?from_offset=0&continue=x",
    );
    assert_ne!(r.status, 200, "a bad token is still refused: {}", r.body);
    assert!(
        !r.json()["error"].as_str().unwrap().contains("give one of"),
        "{}",
        r.body
    );
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/readers/bill/rewind",
        &[("content-type", "application/json")],
        b"{\"to_seq\":2,\"to_time\":5}",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request(
        s.addr,
        "PUT",
        "/v1/stores/cfg/kv/app.port",
        &[("If-None-Match", "*"), ("If-Match", "5")],
        b"1",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("not both"),
        "{}",
        r.body
    );
    let r = request(s.addr, "DELETE", "/v1/stores/ev/records", &[], b"");
    assert_eq!(r.status, 405, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("method not allowed"),
        "{}",
        r.body
    );
    assert_eq!(get(s.addr, "/v1/stores/ev").json()["next_seq"], 0);
    let r = get(s.addr, "/v1/stores/cfg/kv/app.port");
    assert_eq!(r.status, 404, "nothing was stored: {}", r.body);
}

#[test]
fn stores_are_listed_and_their_status_is_reel_status_json() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    ok(&["init", "--kind", "kv", &s.dir("cfg")]);
    std::fs::create_dir(s.root.join("not-a-store")).unwrap();
    let r = get(s.addr, "/v1/stores");
    assert_eq!(
        r.json(),
        serde_json::json!({"stores": [
            {"name": "cfg", "kind": "kv"},
            {"name": "ev", "kind": "spool"},
        ]})
    );
    ok(&["write", &s.dir("ev"), "{\"x\":1}"]);
    let remote = get(s.addr, "/v1/stores/ev").json();
    let local: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--json", &s.dir("ev")])).unwrap();
    assert_eq!(remote, local);
    assert_eq!(get(s.addr, "/healthz").body, "ok\n");
}

#[test]
fn kv_get_put_delete_with_compare_and_set() {
    let s = Server::start(&[]);
    let put = |path: &str, headers: &[(&str, &str)], body: &str| {
        request(s.addr, "PUT", path, headers, body.as_bytes())
    };
    // Created on first write, as `reel kv set` does.
    let r = put("/v1/stores/cfg/kv/app.port", &[], "8080");
    assert_eq!(r.status, 200, "{}", r.body);
    let rev = r.json()["rev"].as_u64().unwrap();
    let r = get(s.addr, "/v1/stores/cfg/kv/app.port");
    assert_eq!(r.json()["value"], 8080);
    assert_eq!(r.json()["rev"], rev);
    // The local CLI reads the same store.
    assert_eq!(ok(&["kv", "get", &s.dir("cfg"), "app.port"]), "8080\n");
    // Compare-and-set.
    let r = put("/v1/stores/cfg/kv/app.port", &[("If-Match", "999")], "1");
    assert_eq!(r.status, 412, "{}", r.body);
    let r = put("/v1/stores/cfg/kv/app.port", &[("If-None-Match", "*")], "1");
    assert_eq!(r.status, 412, "{}", r.body);
    let r = put(
        "/v1/stores/cfg/kv/app.port",
        &[("If-Match", &rev.to_string())],
        "9090",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put(
        "/v1/stores/cfg/kv/app.name",
        &[("If-None-Match", "*")],
        "\"x\"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put("/v1/stores/cfg/kv/app.name", &[], "{not json");
    assert_eq!(r.status, 400, "{}", r.body);
    // Keys, the tree, percent-encoded paths.
    assert_eq!(get(s.addr, "/v1/stores/cfg/keys").body, "app\n");
    assert_eq!(
        get(s.addr, "/v1/stores/cfg/keys/app").body,
        "app.name\napp.port\n"
    );
    let tree = get(s.addr, "/v1/stores/cfg/kv/app?recursive=true").json();
    assert_eq!(tree["port"]["_"], 9090, "{tree}");
    let r = put("/v1/stores/cfg/kv/a%20b.c", &[], "true");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ok(&["kv", "get", &s.dir("cfg"), "a b.c"]), "true\n");
    // Deletes.
    let r = request(
        s.addr,
        "DELETE",
        "/v1/stores/cfg/kv/app.name",
        &[("If-Match", "1")],
        b"",
    );
    assert_eq!(r.status, 412, "{}", r.body);
    let r = request(s.addr, "DELETE", "/v1/stores/cfg/kv/app.name", &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(s.addr, "/v1/stores/cfg/kv/app.name").status, 404);
    let r = request(
        s.addr,
        "DELETE",
        "/v1/stores/cfg/kv/app?recursive=true",
        &[],
        b"",
    );
    assert_eq!(r.json()["deleted"], 1, "{}", r.body);
}

#[test]
fn lists_append_exactly_once_and_page_with_tokens() {
    let s = Server::start(&[]);
    let body = r#"{"items":[{"value":{"n":1},"nonce":1},{"value":{"n":2},"nonce":2},{"value":{"n":3},"nonce":3}]}"#;
    let append = || {
        request(
            s.addr,
            "POST",
            "/v1/stores/orders/lists/cust-1",
            &[],
            body.as_bytes(),
        )
    };
    let r = append();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"appended": 3, "duplicates": 0, "next_offset": 3})
    );
    // A retried request stores nothing twice.
    assert_eq!(
        append().json(),
        serde_json::json!({"appended": 0, "duplicates": 3, "next_offset": 3})
    );
    let page = get(s.addr, "/v1/stores/orders/lists/cust-1?limit=2").json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let token = page["continuation"].as_str().unwrap().to_string();
    let rest = get(
        s.addr,
        &format!("/v1/stores/orders/lists/cust-1?limit=2&continue={token}"),
    )
    .json();
    assert_eq!(rest["items"][0]["value"]["n"], 3);
    // The local CLI prints the same page.
    let local: serde_json::Value = serde_json::from_str(&ok(&[
        "list",
        "read",
        "--limit",
        "2",
        &s.dir("orders"),
        "cust-1",
    ]))
    .unwrap();
    assert_eq!(local, page);
    let rev = get(
        s.addr,
        "/v1/stores/orders/lists/cust-1?reverse=true&limit=1",
    )
    .json();
    assert_eq!(rev["items"][0]["offset"], 2);
    let info = get(s.addr, "/v1/stores/orders/lists/cust-1/info").json();
    assert_eq!(info["count"], 3);
    assert_eq!(
        get(s.addr, "/v1/stores/orders/lists").json(),
        serde_json::json!({"keys": ["cust-1"]})
    );
    assert_eq!(
        get(s.addr, "/v1/stores/orders/lists/nobody/info").status,
        404
    );
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/orders/lists/k",
        &[],
        b"{\"items\":[{\"valu\":1}]}",
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

/// Acknowledges reader `billing` of store `ev` up to `seq`.
fn ack(s: &Server, seq: u64) -> crate::client::Response {
    request(
        s.addr,
        "POST",
        "/v1/stores/ev/readers/billing/ack",
        &[("Content-Type", "application/json")],
        format!("{{\"seq\":{seq}}}").as_bytes(),
    )
}

#[test]
fn a_named_reader_moves_only_when_acknowledged() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    ok(&["write", &s.dir("ev"), "{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]);
    let next = |q: &str| {
        request(
            s.addr,
            "POST",
            &format!("/v1/stores/ev/readers/billing/next{q}"),
            &[],
            b"",
        )
    };
    let first = next("?max=2").lines();
    assert_eq!(first.len(), 2);
    assert_eq!(first[1]["seq"], 1);
    // Not acknowledged: the same records again.
    assert_eq!(next("?max=2").lines(), first);
    // A client holding records asks for those after them; the position stays.
    let ahead = next("?max=2&after=1").lines();
    assert_eq!(ahead.len(), 1);
    assert_eq!(ahead[0]["seq"], 2);
    assert_eq!(next("?max=1").lines()[0]["seq"], 0);
    let r = ack(&s, 1);
    assert_eq!(r.json()["position"], 2, "{}", r.body);
    let rest = next("?max=10").lines();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["value"]["n"], 2);
    // The position is the local reader's: `reel read` continues after it.
    let r = ack(&s, 2);
    assert_eq!(r.status, 200);
    ok(&["write", &s.dir("ev"), "{\"n\":3}"]);
    assert_eq!(
        ok(&["read", "--no-wait", "--reader", "billing", &s.dir("ev")]),
        "{\"n\":3}\n"
    );
    // Waiting for a record that another process appends.
    let t = std::time::Instant::now();
    let dir = s.dir("ev");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        ok(&["write", &dir, "{\"n\":4}"]);
    });
    let got = next("?max=10&wait=20").lines();
    writer.join().unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["value"]["n"], 4);
    assert!(
        t.elapsed().as_secs() < 10,
        "woken by the append, not the timeout"
    );
    let r = ack(&s, 99);
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn a_group_ack_of_a_seq_never_appended_is_refused_like_a_readers() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    ok(&["write", &s.dir("ev"), "{\"n\":0}", "{\"n\":1}"]);
    let group_ack = |body: &str| {
        request(
            s.addr,
            "POST",
            "/v1/stores/ev/groups/g/ack",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };
    let r = group_ack(r#"{"seqs":[0,99999]}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("seq 99999"), "{}", r.body);
    assert_eq!(ack(&s, 99999).status, 400);
    // Nothing of the refused ack was taken.
    let r = group_ack(r#"{"seqs":[]}"#);
    assert_eq!(
        (r.status, r.json()["position"].clone()),
        (200, 0.into()),
        "{}",
        r.body
    );
}

#[test]
fn a_remote_read_into_head_consumes_only_what_head_took() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    let records: Vec<String> = (0..100).map(|i| format!("{{\"i\":{i}}}")).collect();
    let mut args = vec!["write".to_string(), s.dir("ev")];
    args.extend(records);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    let url = format!("http://{}/ev", s.addr);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' read --no-wait '{url}' | head -1",
            crate::common::bin()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"i\":0}\n");
    // The next run starts right after what head printed: nothing skipped.
    let rest = ok(&["read", "--no-wait", &url]);
    assert_eq!(rest.lines().next(), Some("{\"i\":1}"), "{rest}");
    assert_eq!(rest.lines().count(), 99);
}

/// A path holding a line break prints as two lines in the text list; `--json` (and
/// `/keys?format=json`) keep it one path, locally and remotely alike.
#[test]
fn kv_keys_as_json_keep_a_path_with_a_line_break_whole() {
    let s = Server::start(&[]);
    let d = s.dir("cfg");
    ok(&["kv", "set", &d, "a\nb", "v"]);
    ok(&["kv", "set", &d, "c", "v"]);
    let url = format!("http://{}/cfg", s.addr);
    let local = ok(&["kv", "keys", "--json", "-r", &d]);
    assert_eq!(ok(&["kv", "keys", "--json", "-r", &url]), local);
    let keys: Vec<String> = serde_json::from_str(&local).unwrap();
    assert_eq!(keys, ["a\nb", "c"]);
    let r = get(s.addr, "/v1/stores/cfg/keys?recursive=true&format=xml");
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn a_reverse_read_sends_the_records_after_damage_then_the_error() {
    let s = Server::start(&[]);
    ok(&["init", &s.dir("ev")]);
    let lines: Vec<String> = (0..1000)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(40)))
        .collect();
    let r = request(
        s.addr,
        "POST",
        "/v1/stores/ev/records",
        &[],
        lines.join("\n").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let seg = format!("{}/segments/00000000000000000000.seg", s.dir("ev"));
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[40_000] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();
    let r = request(
        s.addr,
        "GET",
        "/v1/stores/ev/records?reverse=true",
        &[],
        b"",
    );
    let got: Vec<serde_json::Value> = r.lines();
    let (last, records) = got.split_last().unwrap();
    assert!(last["error"].is_string(), "{last}");
    assert!(
        records.len() > 400,
        "{} records before the error",
        records.len()
    );
    let seqs: Vec<u64> = records.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    let lowest = *seqs.last().unwrap();
    assert_eq!(seqs, (lowest..1000).rev().collect::<Vec<_>>());
}
