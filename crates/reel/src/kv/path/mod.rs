//! Hierarchical paths and their text form, which is DistKV's path syntax, exactly.
//!
//! DistKV (smurfix's Python kv store, later MoaT-KV) writes a path as text in which the
//! colon is special. This module implements its parser and printer (`Path.from_str` and
//! `Path.__str__` in `_path.py` of the `distkv.util` package, at the version DistKV's last
//! release pins; its tests are DistKV's `tests/test_path.py`, ported below) without its
//! Python evaluation: where DistKV would hand text to a Python evaluator, only the results
//! that reel can hold (numbers, `True`, `False`, `None`) are accepted and anything else is
//! refused with a reason. Later additions of MoaT's `moat.util.Path` (`:i…`, `:s…`
//! base64 bytes, `:m…` marks, `:R` roots, slashed paths) are not DistKV's and are
//! refused.
//!
//! # Elements and how they print
//!
//! | element | canonical text | notes |
//! |---|---|---|
//! | string `abc` | `abc` | `:` → `::`, `.` → `:.`, space → `:_`; nothing else is escaped |
//! | empty string | `:e` | |
//! | true / false / null | `:t` / `:f` / `:n` | |
//! | integer | `:12`, `:-3` | decimal |
//! | float | `:1:.23`, `:1e+16`, `:1e-05` | Python's `repr` (shortest round-trip digits; exponent form below 1e-4 and from 1e16; at least two exponent digits; `.0` on whole numbers), its dot escaped |
//! | bytes, all of them 0x20..=0x7e | `:vabc`, `:va:_b`, `:v` (empty) | escaped like a string |
//! | other bytes | `:y616299` | lower-case hex |
//!
//! A string element after another element is preceded by a dot; every other element
//! follows the previous one directly, its colon being the separator: ("a", 2, "c") is
//! `a:2.c`, ("a", "", "b") is `a:e.b`, (1.23, "c") is `:1:.23.c`, (31, 5) is `:31:5`. The
//! empty path (the root) is `:`; a path of one empty string is `:e`.
//!
//! # Parsing
//!
//! The text is read left to right. A `.` ends the current element and must be followed by
//! a string (`a..b`, `.a`, `a.` and `a.:t` are errors; but see the quirks below). A `:`
//! looks at what follows:
//!
//! * `::`, `:.`, `:_` are a colon, a dot and a space *inside* the current element (which
//!   may be a string, but also the text of a number or bytes element: `:1:.5` is 1.5,
//!   `:va:_b` is b"a b");
//! * otherwise the maximal run of characters other than `:`, `.`, `_` after the colon
//!   starts a new element: exactly `e`, `t`, `f`, `n` are the constants above; a run
//!   starting with `x` or `b` is an integer in hex or binary, one with `y` bytes in hex,
//!   one with `v` bytes as ASCII text; any other run (`:12`, `:-3`, `:1e5`, `:True`) is
//!   an expression that DistKV evaluates as Python.
//!
//! Plain text after a number or bytes element, before the next separator, is part of that
//! element (`:1_000` is 1000). The rest of an element's text is then read as DistKV's
//! Python does:
//!
//! * `:x`/`:b`: Python's `int(text, 16 / 2)`: surrounding (Unicode) white space, one
//!   optional sign, an optional `0x`/`0b` prefix (one `_` may follow it), digits with
//!   single `_` between them. So `:x-1` is -1, `:x+1f` and `:x0x1f` and `:x1_f` are
//!   31, `:x0b1` is 177 (hex digits), `:b0b101` is 5; `:x`, `:x1g`, `:x_1`, `:b2` are
//!   errors.
//! * `:y`: Python's `bytes.fromhex`: pairs of hex digits (either case), ASCII white space
//!   allowed around pairs but not inside one: `:y` is b"", `:y61:_62` is b"ab", `:y616`
//!   and `:y6:_1` are errors.
//! * `:v`: the text must be ASCII; its bytes are the element.
//! * anything else: after stripping surrounding white space, it must be `True`, `False`,
//!   `None`, or a Python int or float literal (`12`, `0x1f`, `0o17`, `0b101`, `1_000`,
//!   `00`, but not `01`; `1.5`, `1e5`, `1.` written `:1:.`) after any number of unary
//!   `+`/`-` (spaces allowed between them; `:-:.5` is -0.5, while `:.5` is the string
//!   ".5"). A float literal too large for a float is infinite, as in Python.
//!
//! `:` alone is the root; the empty text is an error.
//!
//! # Where reel is narrower than DistKV (each refused with a reason)
//!
//! * Tuples (`:1,2.c`; DistKV's documentation advises against them), strings, bytes and
//!   arithmetic in Python expressions (`:'a'`, `:1+2`, `:(1)`, `:-True`), complex numbers
//!   (`:1j`), comments and statements (`:1#x`, `:1;2`).
//! * Integers outside `i64` (Python's are unbounded).
//! * Non-ASCII decimal digits in `:x`/`:b` (Python's `int` would accept `:x١٠`).
//!
//! # DistKV quirks that are reproduced on purpose
//!
//! * A dot before `:x`, `:b`, `:y`, `:v` is accepted (`a.:x10` is ("a", 16)) although a
//!   dot before `:12` or `:t` is not.
//! * After `:e`/`:t`/`:f`/`:n`, an escape starts a new string element without a dot
//!   (`:t::x` is (true, ":x")), while plain text there is an error (`:t_`).
//!
//! # Values, equality and order
//!
//! Floats are held as [`TotalF64`], which normalises `-0.0` to `0.0` (DistKV, being
//! Python, treats them as the same key) and every NaN to one NaN, and orders by
//! [`f64::total_cmp`]. Unlike Python, `true`, `1` and `1.0` are three different elements.
//! Elements order by kind first — null < bool < int < float < string < bytes — then by
//! value. Infinite and NaN floats print as DistKV prints them (`:inf`, `:-inf`, `:nan`),
//! but DistKV cannot read those back and neither can reel, so [`Path::to_key`] refuses
//! them.
//!
//! # The legacy syntax
//!
//! Before adopting DistKV's syntax, reel wrote kv record keys in a syntax of its own,
//! which differs in how non-string elements are separated (`a.:2.c` instead of `a:2.c`)
//! and has no floats or bytes. Stores on disk still hold keys in that text, so its codec
//! remains, unchanged, as [`Path::parse_legacy`] and [`Path::to_legacy_string`]; a store
//! picks one with [`PathSyntax`] through [`Path::to_key`] and [`Path::from_key`].

mod legacy;
mod python;

use python::{py_eval, py_float_repr, py_fromhex, py_int};

use crate::error::{Error, Result};
use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// A float usable as a key: total order ([`f64::total_cmp`]), hashed by its bits.
///
/// Construction normalises `-0.0` to `0.0` and any NaN to [`f64::NAN`], so that equal,
/// ordered and hashed values agree with each other (and -0.0 and 0.0 are one key, as in
/// DistKV). NaN sorts after `+inf`.
#[derive(Clone, Copy)]
pub struct TotalF64(f64);

impl TotalF64 {
    /// Wraps `v`, normalising `-0.0` and NaN.
    pub fn new(v: f64) -> TotalF64 {
        if v.is_nan() {
            TotalF64(f64::NAN)
        } else if v == 0.0 {
            TotalF64(0.0)
        } else {
            TotalF64(v)
        }
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl From<f64> for TotalF64 {
    fn from(v: f64) -> TotalF64 {
        TotalF64::new(v)
    }
}

impl From<TotalF64> for f64 {
    fn from(v: TotalF64) -> f64 {
        v.0
    }
}

impl PartialEq for TotalF64 {
    fn eq(&self, other: &TotalF64) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for TotalF64 {}

impl PartialOrd for TotalF64 {
    fn partial_cmp(&self, other: &TotalF64) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TotalF64 {
    fn cmp(&self, other: &TotalF64) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Hash for TotalF64 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl fmt::Debug for TotalF64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// One element of a path. Elements order by kind in declaration order, then by value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Element {
    /// `:n`
    Null,
    /// `:t` / `:f`
    Bool(bool),
    /// `:12`, `:-3` (also read: `:x1f`, `:b101`, `:0x1f`, ...)
    Int(i64),
    /// `:1:.5`, `:1e+16` (Python's `repr`, its dot escaped)
    Float(TotalF64),
    /// Any string: `abc`, `a:.b`, `:e` (empty).
    Str(String),
    /// `:vabc` when every byte is printable ASCII, else `:y` and hex.
    Bytes(Vec<u8>),
}

/// A path: a sequence of elements; the empty path is the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<Element>);

/// Which text syntax a store's keys are in; see [`Path::to_key`] and [`Path::from_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PathSyntax {
    /// reel's syntax before DistKV's (`a.:2.c`); no floats or bytes. See
    /// [`Path::parse_legacy`].
    Legacy,
    /// DistKV's syntax (`a:2.c`), the one of [`FromStr`] and [`Display`](fmt::Display).
    #[default]
    DistKv,
}

/// Tests the rest of a key after one of [`PathSyntax::descendant_prefixes`].
pub type RestTest = fn(&str) -> bool;

impl PathSyntax {
    /// The key prefixes of the descendants of the canonical key `parent` (not `parent`
    /// itself), each with a test the rest of a key must pass: the root's descendants are
    /// every key; in the legacy syntax they all start with `parent.`; in DistKV's a
    /// string child starts with `parent.` and any other child with `parent:` followed by
    /// an element letter or digit (`parent::`, `parent:.`, `parent:_` are escapes that
    /// continue `parent`'s own last element instead).
    pub fn descendant_prefixes(self, parent: &str) -> Vec<(String, RestTest)> {
        fn any(_: &str) -> bool {
            true
        }
        fn element_start(rest: &str) -> bool {
            !rest.starts_with([':', '.', '_'])
        }
        if parent == ":" {
            return vec![(String::new(), any)];
        }
        match self {
            PathSyntax::Legacy => vec![(format!("{parent}."), any)],
            PathSyntax::DistKv => vec![
                (format!("{parent}."), any),
                (format!("{parent}:"), element_start),
            ],
        }
    }

    /// True when the canonical key `key` is `parent` or one of its descendants.
    pub fn is_within(self, key: &str, parent: &str) -> bool {
        key == parent
            || self
                .descendant_prefixes(parent)
                .iter()
                .any(|(prefix, rest_ok)| key.strip_prefix(prefix.as_str()).is_some_and(rest_ok))
    }
}

impl From<reel_log::KvPathSyntax> for PathSyntax {
    /// The syntax a kv store's `reel.meta` records.
    fn from(s: reel_log::KvPathSyntax) -> PathSyntax {
        match s {
            reel_log::KvPathSyntax::Legacy => PathSyntax::Legacy,
            reel_log::KvPathSyntax::DistKv => PathSyntax::DistKv,
        }
    }
}

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

    /// Parses reel's legacy path text (the syntax of stores written before the switch to
    /// DistKV's syntax; see the module documentation of `legacy`): elements joined by
    /// `.`, `:12`/`:-3`/`:x1f`/`:b101` integers, `:t`/`:f`/`:n`/`:e`, `:.`/`::`/`:_`
    /// escapes, `:` for the root. No floats or bytes.
    pub fn parse_legacy(text: &str) -> Result<Path> {
        legacy::parse(text)
    }

    /// The legacy canonical text (`a.:2.:t`), exactly as reel wrote keys before the
    /// switch to DistKV's syntax. Fails (`InvalidArgument`) when the path holds a float
    /// or a byte string, which that syntax cannot express.
    pub fn to_legacy_string(&self) -> Result<String> {
        legacy::print(self)
    }

    /// The canonical text in `syntax`, for use as a stored key. Fails when the path cannot
    /// be written so that it reads back as itself: a float or bytes in
    /// [`PathSyntax::Legacy`], an infinite or NaN float in [`PathSyntax::DistKv`].
    pub fn to_key(&self, syntax: PathSyntax) -> Result<String> {
        match syntax {
            PathSyntax::Legacy => self.to_legacy_string(),
            PathSyntax::DistKv => {
                if let Some(e) = self
                    .0
                    .iter()
                    .find(|e| matches!(e, Element::Float(v) if !v.get().is_finite()))
                {
                    return Err(Error::InvalidArgument(format!(
                        "path `{self}` cannot be written as a key: the float `{e}` has no \
                         DistKV text that reads back (a float literal beyond the 64-bit \
                         range, such as `:1e400`, reads as infinity, as in Python)"
                    )));
                }
                Ok(self.to_string())
            }
        }
    }

    /// Parses `text` in `syntax` (the inverse of [`Path::to_key`]).
    pub fn from_key(text: &str, syntax: PathSyntax) -> Result<Path> {
        match syntax {
            PathSyntax::Legacy => Path::parse_legacy(text),
            PathSyntax::DistKv => text.parse(),
        }
    }
}

fn syntax(text: &str, why: impl fmt::Display) -> Error {
    Error::InvalidArgument(format!("bad path `{text}`: {why}"))
}

/// How the text of an open element is read when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Plain (unescaped) string.
    Str,
    /// `:x`: Python `int(text, 16)`.
    Hex,
    /// `:b`: Python `int(text, 2)`.
    Bin,
    /// `:y`: Python `bytes.fromhex(text)`.
    HexBytes,
    /// `:v`: the text's ASCII bytes.
    AsciiBytes,
    /// Anything else after `:`: a Python expression (of which a number subset).
    Expr,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Str | Kind::Expr => "",
            Kind::Hex => "x",
            Kind::Bin => "b",
            Kind::HexBytes => "y",
            Kind::AsciiBytes => "v",
        }
    }
}

/// Where the parser is between characters.
enum State {
    /// Nothing read yet.
    Start,
    /// Right after a separating dot: a string must follow.
    AfterDot,
    /// Right after `:e`, `:t`, `:f`, `:n`: a dot or a colon must follow.
    AfterConst,
    /// Collecting the text of an element.
    Open(Kind, String),
}

/// Ends an open element: reads its text according to its kind.
fn finish(kind: Kind, buf: String, text: &str) -> Result<Element> {
    let bad = |what: &str, why: &str| {
        let p = kind.prefix();
        syntax(text, format!("`:{p}{buf}` is not {what} ({why})"))
    };
    match kind {
        Kind::Str => Ok(Element::Str(buf)),
        Kind::Hex => py_int(&buf, 16)
            .map(Element::Int)
            .map_err(|why| bad("a hexadecimal integer", why)),
        Kind::Bin => py_int(&buf, 2)
            .map(Element::Int)
            .map_err(|why| bad("a binary integer", why)),
        Kind::HexBytes => py_fromhex(&buf)
            .map(Element::Bytes)
            .map_err(|why| bad("hex bytes", why)),
        Kind::AsciiBytes if buf.is_ascii() => Ok(Element::Bytes(buf.into_bytes())),
        Kind::AsciiBytes => Err(bad(
            "ASCII bytes",
            "non-ASCII text; write such bytes as `:y` and hex",
        )),
        Kind::Expr => py_eval(&buf).map_err(|why| syntax(text, why)),
    }
}

/// Parses DistKV's path text; see the module documentation.
fn parse(text: &str) -> Result<Path> {
    if text == ":" {
        return Ok(Path::root());
    }
    if text.is_empty() {
        return Err(syntax(text, "empty (the root is written `:`)"));
    }
    let mut out = Vec::new();
    let mut state = State::Start;
    // Ends the open element, if any.
    let close = |state: State, out: &mut Vec<Element>| -> Result<()> {
        if let State::Open(kind, buf) = state {
            out.push(finish(kind, buf, text)?);
        }
        Ok(())
    };
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '.' => match state {
                State::Start => {
                    return Err(syntax(
                        text,
                        "leading dot (an empty string element is written `:e`)",
                    ));
                }
                State::AfterDot => {
                    return Err(syntax(
                        text,
                        "doubled dot (an empty string element is written `:e`, as in `a:e.b`)",
                    ));
                }
                s => {
                    close(s, &mut out)?;
                    state = State::AfterDot;
                }
            },
            ':' => {
                let Some(&(_, n)) = chars.peek() else {
                    return Err(syntax(
                        text,
                        "ends with a lone `:` (a colon is written `::`)",
                    ));
                };
                if matches!(n, ':' | '.' | '_') {
                    // An escape inside the current element (or starting a string one).
                    chars.next();
                    let lit = if n == '_' { ' ' } else { n };
                    match &mut state {
                        State::Open(_, buf) => buf.push(lit),
                        s => *s = State::Open(Kind::Str, lit.to_string()),
                    }
                    continue;
                }
                let start = i + 1;
                let mut end = start;
                while let Some(&(j, d)) = chars.peek() {
                    if matches!(d, ':' | '.' | '_') {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                let run = &text[start..end];
                let constant = match run {
                    "e" => Some(Element::Str(String::new())),
                    "t" => Some(Element::Bool(true)),
                    "f" => Some(Element::Bool(false)),
                    "n" => Some(Element::Null),
                    _ => None,
                };
                let kind = match run.as_bytes()[0] {
                    b'x' => Kind::Hex,
                    b'b' => Kind::Bin,
                    b'y' => Kind::HexBytes,
                    b'v' => Kind::AsciiBytes,
                    _ => Kind::Expr,
                };
                // DistKV refuses a dot before a constant or an expression, but not before
                // the prefixed forms.
                if matches!(state, State::AfterDot) && (constant.is_some() || kind == Kind::Expr) {
                    return Err(syntax(
                        text,
                        format!(
                            "a dot before `:{run}` (an element other than a string follows \
                             the previous one without a dot, as in `a:{run}`)"
                        ),
                    ));
                }
                close(std::mem::replace(&mut state, State::AfterConst), &mut out)?;
                match constant {
                    Some(e) => out.push(e),
                    None => {
                        let body = if kind == Kind::Expr { run } else { &run[1..] };
                        state = State::Open(kind, body.to_string());
                    }
                }
            }
            c => match &mut state {
                State::AfterConst => {
                    return Err(syntax(
                        text,
                        format!(
                            "`{c}` right after `:e`, `:t`, `:f` or `:n` (start the next \
                             element with `.`)"
                        ),
                    ));
                }
                State::Open(_, buf) => buf.push(c),
                s => *s = State::Open(Kind::Str, c.to_string()),
            },
        }
    }
    if matches!(state, State::AfterDot) {
        return Err(syntax(
            text,
            "trailing dot (an empty string element is written `:e`)",
        ));
    }
    close(state, &mut out)?;
    Ok(Path(out))
}

impl FromStr for Path {
    type Err = Error;

    /// Parses DistKV's path text; see the module documentation.
    fn from_str(text: &str) -> Result<Path> {
        parse(text)
    }
}

/// Writes `s` with DistKV's in-element escapes: `::`, `:.`, `:_`.
fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            ':' => f.write_str("::")?,
            '.' => f.write_str(":.")?,
            ' ' => f.write_str(":_")?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

impl fmt::Display for Element {
    /// The element as a one-element path in DistKV's syntax (`a`, `:e`, `:12`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Null => f.write_str(":n"),
            Element::Bool(true) => f.write_str(":t"),
            Element::Bool(false) => f.write_str(":f"),
            Element::Int(i) => write!(f, ":{i}"),
            Element::Float(v) => {
                f.write_char(':')?;
                write_escaped(f, &py_float_repr(v.get()))
            }
            Element::Str(s) if s.is_empty() => f.write_str(":e"),
            Element::Str(s) => write_escaped(f, s),
            Element::Bytes(b) if b.iter().all(|&c| (0x20..0x7f).contains(&c)) => {
                f.write_str(":v")?;
                // All printable ASCII, hence UTF-8.
                write_escaped(f, std::str::from_utf8(b).map_err(|_| fmt::Error)?)
            }
            Element::Bytes(b) => {
                f.write_str(":y")?;
                b.iter().try_for_each(|c| write!(f, "{c:02x}"))
            }
        }
    }
}

impl fmt::Display for Path {
    /// DistKV's canonical text: a dot before each string element but the first, no dot
    /// before other elements; `:` for the root.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(":");
        }
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 && matches!(e, Element::Str(s) if !s.is_empty()) {
                f.write_char('.')?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
