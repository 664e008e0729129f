//! Parsing JSON text from users without changing it: serde_json reads an integer beyond
//! 64 bits as the nearest double (`18446744073709551617` becomes `1.8446744073709552e19`),
//! which would store a different number than was sent, with success. Such text is
//! refused instead, naming the number.

/// Parses `text` as one JSON value; an error says why it is not one, or names an
/// integer outside -2^63 .. 2^64 - 1.
pub fn parse_json(text: &[u8]) -> Result<serde_json::Value, String> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    check_parsed(text, [&value])?;
    Ok(value)
}

/// Refuses `text` when the values parsed from it hold a double that came from an
/// integer literal beyond 64 bits; looks at the text (once) only when one has a double.
pub fn check_parsed<'a>(
    text: &[u8],
    parsed: impl IntoIterator<Item = &'a serde_json::Value>,
) -> Result<(), String> {
    if parsed.into_iter().any(value_may_be_rounded) {
        check_integers(text)?;
    }
    Ok(())
}

/// True when `v` holds a double that could have been a rounded integer literal.
fn value_may_be_rounded(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(value_may_be_rounded),
        serde_json::Value::Object(o) => o.values().any(value_may_be_rounded),
        _ => false,
    }
}

/// Refuses a JSON text holding an integer literal outside -2^63 .. 2^64 - 1 (numbers
/// inside strings are not looked at).
pub fn check_integers(text: &[u8]) -> Result<(), String> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len()
                    && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = &text[start..i];
                let integer = !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
                let digits = token.iter().filter(|b| b.is_ascii_digit()).count();
                let fits = || {
                    std::str::from_utf8(token)
                        .ok()
                        .and_then(|t| t.parse::<i128>().ok())
                        .is_some_and(|n| (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&n))
                };
                if integer && (digits > 20 || !fits()) {
                    return Err(format!(
                        "the integer {} is outside the 64-bit range and would be stored rounded; send it as a string",
                        String::from_utf8_lossy(token)
                    ));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_beyond_64_bits_are_refused_and_the_rest_kept() {
        for bad in [
            "18446744073709551616",
            "-9223372036854775809",
            r#"{"id":12345678901234567890123}"#,
            r#"[1, {"a": [99999999999999999999]}]"#,
        ] {
            let e = parse_json(bad.as_bytes()).unwrap_err();
            assert!(e.contains("outside the 64-bit range"), "{bad}: {e}");
        }
        for good in [
            "18446744073709551615",
            "-9223372036854775808",
            "1.5e300",
            "12345678901234567890123.0",
            r#"{"s":"99999999999999999999999","n":[1,-2,3.5]}"#,
            r#""a \" 99999999999999999999999""#,
        ] {
            assert!(parse_json(good.as_bytes()).is_ok(), "{good}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,60}") {
            let _ = check_integers(s.as_bytes());
            let _ = parse_json(s.as_bytes());
        }

        #[test]
        fn every_64_bit_integer_is_accepted(n in any::<i64>(), m in any::<u64>()) {
            let text = format!("[{n},{m}]");
            prop_assert!(parse_json(text.as_bytes()).is_ok());
        }
    }
}
