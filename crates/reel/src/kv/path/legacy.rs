//! The legacy path text codec: reel's own syntax before it adopted DistKV's exactly.
//!
//! Stores written before the switch hold their kv record keys in this canonical text, so
//! it stays readable (and writable, for those stores) byte for byte. Do not change its
//! behaviour: every accepted text and every printed text is part of the on-disk format.
//!
//! Elements are joined by `.`. Inside an element `:.` is a dot, `::` a colon and `:_` a
//! space. A whole element `:e` is the empty string, `:t`/`:f`/`:n` are true/false/null,
//! `:` followed by a decimal integer (`:12`, `:-3`) is an integer, and so are `:x` + hex
//! and `:b` + binary digits (digits only: no sign, no `0x` prefix, no `_`). A bare `:`
//! alone is the root (the empty path). A plain `12` is the string "12". Leading, trailing
//! or doubled dots and any other `:` sequence are syntax errors. Printing gives the
//! canonical form (integers as `:12`, every element after the first preceded by a dot,
//! e.g. `a.:12.:t`). Floats and byte strings do not exist in this syntax.

use super::{Element, Path, syntax};
use crate::error::{Error, Result};
use std::fmt::Write as _;

fn parse_element(raw: &str, text: &str) -> Result<Element> {
    let b = raw.as_bytes();
    if b.first() == Some(&b':') {
        match &raw[1..] {
            "e" => return Ok(Element::Str(String::new())),
            "t" => return Ok(Element::Bool(true)),
            "f" => return Ok(Element::Bool(false)),
            "n" => return Ok(Element::Null),
            "" => {
                return Err(syntax(
                    text,
                    "`:` alone is only valid as the whole path (the root)",
                ));
            }
            _ => {}
        }
        let rest = &raw[1..];
        let int = |digits: &str, radix: u32, what: &str| -> Result<Element> {
            let ok = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
            if !ok {
                return Err(syntax(
                    text,
                    format!("`{raw}` is not a valid {what} integer"),
                ));
            }
            i64::from_str_radix(digits, radix)
                .map(Element::Int)
                .map_err(|_| syntax(text, format!("integer `{raw}` is out of range")))
        };
        if let Some(d) = rest.strip_prefix('x') {
            return int(d, 16, "hexadecimal");
        }
        if let Some(d) = rest.strip_prefix('b') {
            return int(d, 2, "binary");
        }
        if rest.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            let digits = rest.strip_prefix('-').unwrap_or(rest);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(syntax(
                    text,
                    format!("`{raw}` is not a valid decimal integer"),
                ));
            }
            return rest
                .parse()
                .map(Element::Int)
                .map_err(|_| syntax(text, format!("integer `{raw}` is out of range")));
        }
    }
    let mut s = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != ':' {
            s.push(c);
            continue;
        }
        match chars.next() {
            Some('.') => s.push('.'),
            Some(':') => s.push(':'),
            Some('_') => s.push(' '),
            Some(o) => {
                return Err(syntax(
                    text,
                    format!("unknown escape `:{o}` (use `:.` `::` `:_`)"),
                ));
            }
            None => return Err(syntax(text, "an element ends with a lone `:`")),
        }
    }
    Ok(Element::Str(s))
}

/// Parses the legacy text form; see the module documentation.
pub(super) fn parse(text: &str) -> Result<Path> {
    if text == ":" {
        return Ok(Path::root());
    }
    if text.is_empty() {
        return Err(syntax(text, "empty (the root is written `:`)"));
    }
    let mut elements = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars();
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            ':' => {
                cur.push(':');
                // The escaped character belongs to this element, even a dot.
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '.' => {
                if cur.is_empty() {
                    let why = if at_start {
                        "leading dot"
                    } else {
                        "doubled dot"
                    };
                    return Err(syntax(
                        text,
                        format!("{why} (an empty element is written `:e`)"),
                    ));
                }
                elements.push(parse_element(&cur, text)?);
                cur.clear();
            }
            c => cur.push(c),
        }
        at_start = false;
    }
    if cur.is_empty() {
        return Err(syntax(
            text,
            "trailing dot (an empty element is written `:e`)",
        ));
    }
    elements.push(parse_element(&cur, text)?);
    Ok(Path(elements))
}

fn print_element(out: &mut String, e: &Element, path: &Path) -> Result<()> {
    match e {
        Element::Null => out.push_str(":n"),
        Element::Bool(true) => out.push_str(":t"),
        Element::Bool(false) => out.push_str(":f"),
        Element::Int(i) => {
            let _ = write!(out, ":{i}");
        }
        Element::Str(s) if s.is_empty() => out.push_str(":e"),
        Element::Str(s) => {
            for c in s.chars() {
                match c {
                    '.' => out.push_str(":."),
                    ':' => out.push_str("::"),
                    ' ' => out.push_str(":_"),
                    c => out.push(c),
                }
            }
        }
        Element::Float(_) | Element::Bytes(_) => {
            let what = if matches!(e, Element::Float(_)) {
                "a float"
            } else {
                "a byte string"
            };
            return Err(Error::InvalidArgument(format!(
                "path `{path}` cannot be written in the legacy path syntax: element `{e}` is \
                 {what}, which only the DistKV syntax can express"
            )));
        }
    }
    Ok(())
}

/// Prints the legacy canonical text; fails for floats and byte strings.
pub(super) fn print(path: &Path) -> Result<String> {
    if path.0.is_empty() {
        return Ok(":".to_string());
    }
    let mut out = String::new();
    for (i, e) in path.0.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        print_element(&mut out, e, path)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::TotalF64;
    use super::*;
    use Element::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Path {
        Path::parse_legacy(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn show(path: &Path) -> String {
        path.to_legacy_string().unwrap()
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(p(":"), Path::root());
        assert_eq!(
            p("a.b:.c.d"),
            Path(vec![Str("a".into()), Str("b.c".into()), Str("d".into())])
        );
        assert_eq!(
            p("a.b::c.d"),
            Path(vec![Str("a".into()), Str("b:c".into()), Str("d".into())])
        );
        assert_eq!(p("x:_y"), Path(vec![Str("x y".into())]));
        assert_eq!(
            p("a.:e.b"),
            Path(vec![Str("a".into()), Str(String::new()), Str("b".into())])
        );
        assert_eq!(p(":t.:f.:n"), Path(vec![Bool(true), Bool(false), Null]));
        assert_eq!(
            p(":12.:-3.:x1f.:b101"),
            Path(vec![Int(12), Int(-3), Int(31), Int(5)])
        );
        assert_eq!(p("12"), Path(vec![Str("12".into())]));
        assert_eq!(p(":xFF"), Path(vec![Int(255)]));
        assert_eq!(p(":-0"), Path(vec![Int(0)]));
        assert_eq!(
            p(":-9223372036854775808.:9223372036854775807"),
            Path(vec![Int(i64::MIN), Int(i64::MAX)])
        );
        // `_` alone is plain text; an escape may start an element; text after `:e` etc.
        // belongs to a string in this syntax.
        assert_eq!(p("a_b"), Path(vec![Str("a_b".into())]));
        assert_eq!(p(":.x"), Path(vec![Str(".x".into())]));
        assert_eq!(p("a:.::e"), Path(vec![Str("a.:e".into())]));
    }

    #[test]
    fn prints_the_canonical_form() {
        assert_eq!(show(&p(":x10")), ":16");
        assert_eq!(show(&p("a.b:.c")), "a.b:.c");
        assert_eq!(show(&Path(vec![Str("a b:c.d".into())])), "a:_b::c:.d");
        assert_eq!(show(&Path::root()), ":");
        // Unlike the DistKV syntax, every element after the first has its dot.
        assert_eq!(
            show(&Path(vec![
                Str("a".into()),
                Int(2),
                Bool(true),
                Null,
                Str(String::new()),
                Bool(false)
            ])),
            "a.:2.:t.:n.:e.:f"
        );
        assert_eq!(show(&Path(vec![Str("a_b\t".into())])), "a_b\t");
    }

    #[test]
    fn refuses_floats_and_bytes_when_printing() {
        for e in [Float(TotalF64::new(1.5)), Bytes(b"ab".to_vec())] {
            let path = Path(vec![Str("a".into()), e]);
            let err = path.to_legacy_string().unwrap_err().to_string();
            assert!(err.contains("legacy path syntax"), "{err}");
        }
    }

    #[test]
    fn rejects_bad_syntax_with_a_reason() {
        let hex = "is not a valid hexadecimal integer";
        let bin = "is not a valid binary integer";
        let dec = "is not a valid decimal integer";
        for (bad, why) in [
            ("", "empty (the root is written `:`)"),
            (".a", "leading dot"),
            ("a.", "trailing dot"),
            ("a..b", "doubled dot"),
            ("a.:", "`:` alone is only valid as the whole path"),
            (":q", "unknown escape `:q`"),
            ("a:z", "unknown escape `:z`"),
            ("a:", "an element ends with a lone `:`"),
            (":x", hex),
            (":xg", hex),
            (":b2", bin),
            (":1a", dec),
            (":-", dec),
            (
                ":99999999999999999999",
                "integer `:99999999999999999999` is out of range",
            ),
            ("a.:.b.", "trailing dot"),
            // Signs, prefixes and separators that the DistKV syntax accepts are not
            // integers here.
            (":x+1f", hex),
            (":x-1", hex),
            (":b-1", bin),
            (":b+1", bin),
            (":x0x1f", hex),
            (":b0b1", bin),
            (":x1_f", hex),
            (":x 1", hex),
            (":+1", "unknown escape `:+`"),
            (":--1", dec),
            (":1_0", dec),
            (":1:.5", dec),
            (":vab", "unknown escape `:v`"),
            (":y61", "unknown escape `:y`"),
            ("a:2", "unknown escape `:2`"),
            (":t:e", "unknown escape `:t`"),
            (":-9223372036854775809", "out of range"),
            (":x8000000000000000", "out of range"),
        ] {
            let err = Path::parse_legacy(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("bad path `{bad}`: ")), "{bad}: {err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    fn element() -> impl Strategy<Value = Element> {
        prop_oneof![
            Just(Null),
            any::<bool>().prop_map(Bool),
            any::<i64>().prop_map(Int),
            "[a-z .:_0-9-]{0,8}".prop_map(Str),
            any::<String>().prop_map(Str),
        ]
    }

    proptest! {
        #[test]
        fn print_then_parse_is_identity(elements in proptest::collection::vec(element(), 0..6)) {
            let path = Path(elements);
            let text = path.to_legacy_string().unwrap();
            prop_assert_eq!(Path::parse_legacy(&text).unwrap(), path.clone());
            prop_assert_eq!(
                Path::from_key(&text, super::super::PathSyntax::Legacy).unwrap(),
                path
            );
        }

        #[test]
        fn parse_then_print_is_canonical(text in "[a-z.:_0-9tfnexb-]{1,16}") {
            if let Ok(path) = Path::parse_legacy(&text) {
                let canon = path.to_legacy_string().unwrap();
                prop_assert_eq!(Path::parse_legacy(&canon).unwrap(), path.clone());
                let again = Path::parse_legacy(&canon).unwrap();
                prop_assert_eq!(again.to_legacy_string().unwrap(), canon);
            }
        }
    }
}
