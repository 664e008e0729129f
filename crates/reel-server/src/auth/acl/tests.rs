//! The access rules as a table: grants × store × path × needed letters → allowed.

use super::*;

fn g(store: &str, pattern: &str, flags: &str) -> Grant {
    Grant {
        store: store.into(),
        pattern: pattern.into(),
        flags: flags.into(),
    }
}

fn path(text: &str) -> Vec<Element> {
    text.parse::<Path>().unwrap().elements().to_vec()
}

fn allowed(grants: &[Grant], store: &str, p: &str, needed: &str) -> bool {
    decide(grants, store, &path(p)).is_some_and(|f| f.allows(Flags::parse(needed).unwrap()))
}

#[test]
fn the_rules_as_a_table() {
    let wom = [g("cfg", "wom.#", "xc")];
    let mixed = [
        g("*", "#", "r"),
        g("cfg", "#", "rx"),
        g("cfg", "app.#", "rwc"),
        g("cfg", "app.+.secret", "x"),
        g("cfg", "app.db.secret", "rwcd"),
        g("logs", ":", "w"),
    ];
    let none: [Grant; 0] = [];
    #[rustfmt::skip]
    let table: &[(&[Grant], &str, &str, &str, bool)] = &[
        // DistKV's write-only example: create, never overwrite or read back.
        (&wom, "cfg", "wom.foo.bar", "c", true),
        (&wom, "cfg", "wom.foo.bar", "w", false),
        (&wom, "cfg", "wom.foo.bar", "r", false),
        (&wom, "cfg", "wom", "x", true),           // `#` matches no element too
        (&wom, "cfg", "other", "c", false),        // no matching rule: no access
        (&wom, "other", "wom.x", "c", false),      // another store
        // A user with no grants can do nothing.
        (&none, "cfg", "a", "r", false),
        (&none, "cfg", ":", "x", false),
        // The named store beats `*`, whatever the patterns.
        (&mixed, "cfg", "zzz", "x", true),
        (&mixed, "other", "zzz", "r", true),
        (&mixed, "other", "zzz", "x", false),
        // Exact beats `+` beats `#`, element by element from the left.
        (&mixed, "cfg", "app.web.port", "w", true),     // app.# (rwc)
        (&mixed, "cfg", "app.web.secret", "r", false),  // app.+.secret (x) beats app.#
        (&mixed, "cfg", "app.web.secret", "x", true),
        (&mixed, "cfg", "app.db.secret", "d", true),    // exact beats app.+.secret
        (&mixed, "cfg", "app", "w", true),              // app.# matches app itself
        (&mixed, "cfg", "apps", "w", false),            // elements, not prefixes of text
        // Several letters: all are needed.
        (&mixed, "cfg", "app.x", "rw", true),
        (&mixed, "cfg", "app.x", "rwd", false),
        // The root pattern `:` matches only the empty path (records of a spool).
        (&mixed, "logs", ":", "w", true),
        (&mixed, "logs", "k", "w", false),
    ];
    for (i, (grants, store, p, needed, expect)) in table.iter().enumerate() {
        assert_eq!(
            allowed(grants, store, p, needed),
            *expect,
            "row {i}: {store} {p} {needed}"
        );
    }
}

#[test]
fn plus_matches_exactly_one_element_and_hash_only_at_the_end() {
    let p = Pattern::parse("a.+.c").unwrap();
    assert!(p.matches(&path("a.b.c")));
    assert!(!p.matches(&path("a.c")));
    assert!(!p.matches(&path("a.b.b.c")));
    let q = Pattern::parse("+").unwrap();
    assert!(q.matches(&path("x")));
    assert!(!q.matches(&path(":")));
    assert!(Pattern::parse("a.#.b").is_err());
    assert!(Pattern::parse("#").unwrap().matches(&path(":")));
    // Typed elements match only their own type.
    let n = Pattern::parse("a:12").unwrap();
    assert!(n.matches(&path("a:12")));
    assert!(!n.matches(&path("a.12")));
}

#[test]
fn flags_parse_and_print_and_refuse_unknown_letters() {
    assert_eq!(Flags::parse("xr").unwrap().to_string(), "rx");
    assert!(Flags::parse("rq").unwrap_err().contains("`q`"));
    assert!(Flags::parse("").is_err());
    let rw = Flags::parse("rw").unwrap();
    assert_eq!(rw.missing(Flags::parse("rwd").unwrap()).to_string(), "d");
}

#[test]
fn a_damaged_grant_matches_nothing() {
    let grants = [g("cfg", "a.#.b", "rwxcda"), g("cfg", "#", "zz")];
    assert_eq!(decide(&grants, "cfg", &path("a.x.b")), None);
}
