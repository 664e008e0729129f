//! Hierarchical paths and their text form (DistKV's, minus its Python evaluation).
//!
//! Elements are joined by `.`. Inside an element `:.` is a dot, `::` a colon and `:_` a
//! space. A whole element `:e` is the empty string, `:t`/`:f`/`:n` are true/false/null,
//! `:` followed by a decimal integer (`:12`, `:-3`) is an integer, and so are `:x` + hex
//! and `:b` + binary digits. A bare `:` alone is the root (the empty path). A plain `12` is
//! the string "12". Leading, trailing or doubled dots and any other `:` sequence are
//! syntax errors. Printing gives the canonical form (integers as `:12`).

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// One element of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Element {
    /// `:n`
    Null,
    /// `:t` / `:f`
    Bool(bool),
    /// `:12`, `:-3`, `:x1f`, `:b101`
    Int(i64),
    /// Anything else.
    Str(String),
}

/// A path: a sequence of elements; the empty path is the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<Element>);

impl Path {
    /// The root (printed `:`).
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// True for the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The elements.
    pub fn elements(&self) -> &[Element] {
        &self.0
    }

    /// This path extended by one element.
    pub fn child(&self, e: Element) -> Path {
        let mut v = self.0.clone();
        v.push(e);
        Path(v)
    }

    /// True when `self` is `other` or below it.
    pub fn starts_with(&self, other: &Path) -> bool {
        self.0.starts_with(&other.0)
    }
}

fn syntax(text: &str, why: impl fmt::Display) -> Error {
    Error::InvalidArgument(format!("bad path `{text}`: {why}"))
}

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

impl FromStr for Path {
    type Err = Error;

    fn from_str(text: &str) -> Result<Path> {
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
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Null => f.write_str(":n"),
            Element::Bool(true) => f.write_str(":t"),
            Element::Bool(false) => f.write_str(":f"),
            Element::Int(i) => write!(f, ":{i}"),
            Element::Str(s) if s.is_empty() => f.write_str(":e"),
            Element::Str(s) => {
                for c in s.chars() {
                    match c {
                        '.' => f.write_str(":.")?,
                        ':' => f.write_str("::")?,
                        ' ' => f.write_str(":_")?,
                        c => write!(f, "{c}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(":");
        }
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Element::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Path {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
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
    }

    #[test]
    fn prints_the_canonical_form() {
        assert_eq!(p(":x10").to_string(), ":16");
        assert_eq!(p("a.b:.c").to_string(), "a.b:.c");
        assert_eq!(Path(vec![Str("a b:c.d".into())]).to_string(), "a:_b::c:.d");
        assert_eq!(Path::root().to_string(), ":");
    }

    #[test]
    fn rejects_bad_syntax_with_a_reason() {
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a.:",
            ":q",
            "a:z",
            "a:",
            ":x",
            ":xg",
            ":b2",
            ":1a",
            ":-",
            ":99999999999999999999",
            "a.:.b.",
        ] {
            let err = bad.parse::<Path>().unwrap_err().to_string();
            assert!(err.contains("bad path"), "{bad}: {err}");
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
            let text = path.to_string();
            prop_assert_eq!(text.parse::<Path>().unwrap(), path);
        }

        #[test]
        fn parse_then_print_is_canonical(text in "[a-z.:_0-9tfnexb-]{1,16}") {
            if let Ok(path) = text.parse::<Path>() {
                let canon = path.to_string();
                prop_assert_eq!(canon.parse::<Path>().unwrap(), path.clone());
                prop_assert_eq!(canon.parse::<Path>().unwrap().to_string(), canon);
            }
        }
    }
}
