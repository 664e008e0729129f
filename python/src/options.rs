//! Constructor options as Python passes them: sizes as ints or text (`"512m"`), and the
//! CLI's spellings of durability and the when-full policy.

use crate::errors;
use pyo3::prelude::*;
use pyo3::types::PyString;
use reel::{Durability, WhenFull};

/// A size in bytes: an int, or text with an optional k/m/g/t suffix (powers of 1024),
/// as `reel init --capacity` takes it.
pub fn size(v: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(s) = v.cast::<PyString>() {
        let text = s.to_cow()?;
        return parse_size(&text).ok_or_else(|| {
            errors::invalid(format!(
                "invalid {what} {text:?}: expected a number of bytes with an optional k, m, g \
                 or t suffix, e.g. \"512m\""
            ))
        });
    }
    v.extract::<u64>().map_err(|_| {
        errors::invalid(format!(
            "{what} must be a number of bytes (int >= 0) or text such as \"512m\""
        ))
    })
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (num, shift) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 10),
        'm' => (&t[..t.len() - 1], 20),
        'g' => (&t[..t.len() - 1], 30),
        't' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: f64 = num.trim().parse().ok()?;
    let bytes = n * (1u64 << shift) as f64;
    (n.is_finite() && n >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `"none"`, `"batch"` or `"always"`.
pub fn durability(text: &str) -> PyResult<Durability> {
    text.parse::<Durability>()
        .map_err(|e| errors::invalid(e.to_string()))
}

/// `"drop-oldest"` or `"reject"`.
pub fn when_full(text: &str) -> PyResult<WhenFull> {
    text.parse::<WhenFull>()
        .map_err(|e| errors::invalid(e.to_string()))
}
