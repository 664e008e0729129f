//! The pieces of Python that DistKV's path syntax borrows: `str.isspace`, `int(text,
//! radix)`, `bytes.fromhex`, the evaluation of `True`/`False`/`None` and numeric
//! literals, and `repr` of a float. Each follows CPython's behaviour for the inputs
//! DistKV passes it.

use super::{Element, TotalF64};

/// Python's `str.isspace()`: Unicode white space plus the ASCII separators 0x1c..=0x1f.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `int(text, radix)` for radix 2 or 16, within `i64`.
pub(super) fn py_int(text: &str, radix: u32) -> std::result::Result<i64, &'static str> {
    // `int()` maps non-ASCII white space to ASCII before it skips white space, so it
    // skips exactly Unicode's White_Space (Rust's `char::is_whitespace`).
    let t = text.trim_matches(char::is_whitespace);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let prefix: &[&str] = if radix == 16 {
        &["0x", "0X"]
    } else {
        &["0b", "0B"]
    };
    let t = match prefix.iter().find_map(|p| t.strip_prefix(p)) {
        // One underscore may follow the prefix.
        Some(rest) => rest.strip_prefix('_').unwrap_or(rest),
        None => t,
    };
    let mut magnitude: Option<u128> = Some(0);
    let mut digits = 0usize;
    let mut after_underscore = true; // no underscore first, none doubled
    for c in t.chars() {
        if c == '_' {
            if after_underscore {
                return Err("misplaced `_`");
            }
            after_underscore = true;
            continue;
        }
        let d = c.to_digit(radix).ok_or("not a digit")?;
        magnitude = magnitude.and_then(|m| m.checked_mul(u128::from(radix))?.checked_add(d.into()));
        digits += 1;
        after_underscore = false;
    }
    if digits == 0 {
        return Err("no digits");
    }
    if after_underscore {
        return Err("trailing `_`");
    }
    signed(magnitude, neg).ok_or("out of range: reel's integers are 64-bit")
}

/// `magnitude` with a sign, if it fits `i64`.
fn signed(magnitude: Option<u128>, neg: bool) -> Option<i64> {
    let m = i128::try_from(magnitude?).ok()?;
    i64::try_from(if neg { -m } else { m }).ok()
}

/// Python's `bytes.fromhex(text)`: hex digit pairs; ASCII white space between pairs.
pub(super) fn py_fromhex(text: &str) -> std::result::Result<Vec<u8>, &'static str> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let digit = |b: Option<u8>| b.and_then(|b| char::from(b).to_digit(16));
    if !text.is_ascii() {
        return Err("not ASCII");
    }
    let mut bytes = text.bytes();
    let mut out = Vec::with_capacity(text.len() / 2);
    while let Some(b) = bytes.next() {
        if is_space(&b) {
            continue;
        }
        let (Some(hi), Some(lo)) = (digit(Some(b)), digit(bytes.next())) else {
            return Err("not pairs of hex digits");
        };
        out.push((hi * 16 + lo) as u8);
    }
    Ok(out)
}

/// A Python numeric literal's value.
enum Literal {
    /// An integer literal's magnitude (`None`: too large for `u128`).
    Int(Option<u128>),
    Float(f64),
}

/// Reads `digit (["_"] digit)*` at `b[i..]`: the digits without underscores and where
/// they end. An underscore that is not between two digits ends them too (and so is left
/// for the caller, which then finds the literal not wholly read).
fn digit_part(b: &[u8], start: usize) -> (String, usize) {
    let mut digits = String::new();
    let mut end = start;
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b'0'..=b'9' => digits.push(char::from(c)),
            b'_' if !digits.is_empty() && b.get(i + 1).is_some_and(u8::is_ascii_digit) => {}
            _ => break,
        }
        end = i + 1;
    }
    (digits, end)
}

/// Parses a whole Python int or float literal (no sign; not imaginary).
fn py_literal(s: &str) -> Option<Literal> {
    let b = s.as_bytes();
    let radix = match b {
        [b'0', b'x' | b'X', ..] => 16,
        [b'0', b'o' | b'O', ..] => 8,
        [b'0', b'b' | b'B', ..] => 2,
        _ => 10,
    };
    if radix != 10 {
        // "0x" (["_"] hexdigit)+
        let mut magnitude = Some(0u128);
        let mut any = false;
        let mut after_underscore = false;
        for c in s[2..].chars() {
            if c == '_' && !after_underscore {
                after_underscore = true;
                continue;
            }
            let d = c.to_digit(radix)?;
            magnitude =
                magnitude.and_then(|m| m.checked_mul(u128::from(radix))?.checked_add(d.into()));
            any = true;
            after_underscore = false;
        }
        return (any && !after_underscore).then_some(Literal::Int(magnitude));
    }
    let (int_part, mut i) = digit_part(b, 0);
    let mut float = false;
    let mut frac = String::new();
    if b.get(i) == Some(&b'.') {
        (frac, i) = digit_part(b, i + 1);
        if int_part.is_empty() && frac.is_empty() {
            return None;
        }
        float = true;
    } else if int_part.is_empty() {
        return None;
    }
    let mut exp = String::new();
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if let Some(&sign @ (b'+' | b'-')) = b.get(i) {
            exp.push(char::from(sign));
            i += 1;
        }
        let (digits, end) = digit_part(b, i);
        if digits.is_empty() {
            return None;
        }
        exp.push_str(&digits);
        i = end;
        float = true;
    }
    if i != b.len() {
        return None;
    }
    if float {
        let int_part = if int_part.is_empty() { "0" } else { &int_part };
        let frac = if frac.is_empty() { "0" } else { &frac };
        let exp = if exp.is_empty() { "0" } else { &exp };
        return format!("{int_part}.{frac}e{exp}")
            .parse()
            .ok()
            .map(Literal::Float);
    }
    // Python forbids leading zeros in a decimal integer other than zero itself.
    if int_part.starts_with('0') && int_part.bytes().any(|d| d != b'0') {
        return None;
    }
    Some(Literal::Int(int_part.bytes().try_fold(0u128, |m, d| {
        m.checked_mul(10)?.checked_add(u128::from(d - b'0'))
    })))
}

/// The part of Python's evaluation (DistKV's `path_eval`) that reel supports: `True`,
/// `False`, `None`, and int or float literals after unary signs.
pub(super) fn py_eval(src: &str) -> std::result::Result<Element, String> {
    let s = src.trim_matches(py_isspace);
    if s.contains(',') {
        return Err(format!(
            "`:{src}` is a tuple, which reel does not support as a path element"
        ));
    }
    match s {
        "True" => return Ok(Element::Bool(true)),
        "False" => return Ok(Element::Bool(false)),
        "None" => return Ok(Element::Null),
        _ => {}
    }
    let mut neg = false;
    let mut rest = s;
    while let Some(sign @ ('+' | '-')) = rest.chars().next() {
        neg ^= sign == '-';
        // Python's tokenizer skips spaces, tabs and form feeds between tokens.
        rest = rest[1..].trim_start_matches([' ', '\t', '\x0c']);
    }
    match py_literal(rest) {
        Some(Literal::Int(m)) => signed(m, neg).map(Element::Int).ok_or_else(|| {
            format!("the integer `:{src}` is out of range (reel's integers are 64-bit)")
        }),
        Some(Literal::Float(v)) => Ok(Element::Float(TotalF64::new(if neg { -v } else { v }))),
        None => Err(format!(
            "`:{src}` is not an element: after `:` reel expects `e`, `t`, `f`, `n`, \
             `x`/`b` + an integer, `y`/`v` + bytes, a number, `True`, `False` or `None` \
             (DistKV would evaluate other text as Python, which reel does not)"
        )),
    }
}

/// Python's `repr` of a float: the shortest digits that read back, in positional form
/// for 1e-4 <= |v| < 1e16 (with `.0` on whole numbers), otherwise as `1.5e+16`.
pub(super) fn py_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v.is_infinite() {
        return format!("{sign}inf");
    }
    // `{:e}` gives the shortest round-trip digits, `d[.ddd]e[-]N`. When two digit strings
    // of that length read back and are equally close, Python takes the one with an even
    // last digit, as does `{:.Ne}` (exact, ties to even): prefer that when it reads back.
    let a = v.abs();
    let shortest = format!("{a:e}");
    let len = shortest
        .bytes()
        .take_while(|&c| c != b'e')
        .filter(u8::is_ascii_digit)
        .count();
    let rounded = format!("{a:.*e}", len - 1);
    let sci = if rounded.parse::<f64>() == Ok(a) {
        rounded
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    // (No trailing zeros: a shorter string would read back as well.)
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    // The decimal point sits after `point` digits (Python's `decpt`).
    let point = exp + 1;
    if point <= -4 || point > 16 {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        // C's `%+.02d`: a sign, at least two digits.
        return format!("{sign}{first}{dot}{rest}e{exp:+03}");
    }
    let n = digits.len() as i32;
    if point <= 0 {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(point.unsigned_abs() as usize)
        )
    } else if point >= n {
        format!("{sign}{digits}{}.0", "0".repeat((point - n) as usize))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    }
}
