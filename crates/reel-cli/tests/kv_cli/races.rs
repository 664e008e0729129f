//! Racing compare-and-set across processes.

use super::*;

fn spawn_quiet(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reel")
}

#[test]
fn racing_conditional_sets_on_one_path_exactly_one_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("kv");
    for round in 0..6 {
        let path = format!("race.r{round}");
        let cond: Vec<String> = if round == 5 {
            vec!["--if-absent".into()]
        } else {
            let r = kv_set(&d, &path, "start");
            vec!["--if-rev".into(), r.to_string()]
        };
        let children: Vec<(String, Child)> = ["A", "B"]
            .iter()
            .map(|who| {
                let mut args: Vec<&str> = vec!["kv", "set"];
                args.extend(cond.iter().map(String::as_str));
                args.extend([s(&d), path.as_str(), who]);
                (who.to_string(), spawn_quiet(&args))
            })
            .collect();
        let results: Vec<(String, i32, String, String)> = children
            .into_iter()
            .map(|(who, c)| {
                let out = c.wait_with_output().unwrap();
                (
                    who,
                    out.status.code().unwrap(),
                    String::from_utf8(out.stdout).unwrap(),
                    String::from_utf8(out.stderr).unwrap(),
                )
            })
            .collect();
        let mut codes: Vec<i32> = results.iter().map(|r| r.1).collect();
        codes.sort();
        assert_eq!(codes, [0, 3], "round {round}: {results:?}");
        let winner = results.iter().find(|r| r.1 == 0).unwrap();
        let loser = results.iter().find(|r| r.1 == 3).unwrap();
        assert!(loser.2.is_empty(), "{loser:?}");
        assert!(loser.3.contains(&path), "{loser:?}");
        let m = kv_meta(&d, &path);
        assert_eq!(m["value"], winner.0.as_str(), "round {round}");
        assert_eq!(m["rev"].to_string(), winner.2.trim(), "round {round}");
    }
}

// ---------------------------------------------------------------------------------------
// reel list
// ---------------------------------------------------------------------------------------
