//! Parsing and printing sizes and times for people.

/// Parses `SIZE`: bytes with an optional suffix k, m, g or t (powers of 1024, either
/// case, optionally followed by `b`/`ib`): `512`, `64k`, `1g`, `2TiB`. A decimal fraction
/// is exact (`1.5g` is 1536 MiB) and must come to a whole number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, suffix) = lower.split_at(num_end);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() || frac.contains('.') || (num.contains('.') && frac.is_empty()) {
        return Err(format!(
            "invalid size `{s}`: expected a number with an optional k, m, g or t suffix, e.g. 512m or 1.5g"
        ));
    }
    let shift = match suffix.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(format!(
                "invalid size suffix in `{s}`: use k, m, g or t (powers of 1024)"
            ));
        }
    };
    let too_large = || format!("size `{s}` is too large");
    let int: u128 = int.parse().map_err(|_| too_large())?;
    let unit = 1u128 << shift;
    let whole = int.checked_mul(unit).ok_or_else(too_large)?;
    let mut bytes = whole;
    if !frac.is_empty() {
        // At most 20 fractional digits: (10^20 - 1) << 40 still fits in a u128.
        if frac.len() > 20 {
            return Err(format!("invalid size `{s}`: too many decimal places"));
        }
        let digits: u128 = frac.parse().map_err(|_| too_large())?;
        let scale = 10u128.pow(frac.len() as u32);
        let part = digits * unit;
        if !part.is_multiple_of(scale) {
            return Err(format!(
                "size `{s}` is not a whole number of bytes (the nearest below is {})",
                whole + part / scale
            ));
        }
        bytes = whole.checked_add(part / scale).ok_or_else(too_large)?;
    }
    u64::try_from(bytes).map_err(|_| too_large())
}

/// A store's capacity: [`parse_size`], at least [`reel_log::MIN_CAPACITY`] (a smaller
/// one is an option that does not parse: exit 2).
pub fn parse_capacity(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < reel_log::MIN_CAPACITY {
        return Err(format!(
            "capacity {n} bytes is below the minimum of {}k",
            reel_log::MIN_CAPACITY >> 10
        ));
    }
    Ok(n)
}

/// A store's largest record: [`parse_size`], from 1 byte to
/// [`reel_log::MAX_RECORD_SIZE_LIMIT`] (just below 2 GiB).
pub fn parse_record_size(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n == 0 || n > reel_log::MAX_RECORD_SIZE_LIMIT {
        return Err(format!(
            "maximum record size {n} must be at least 1 byte and below 2g"
        ));
    }
    Ok(n)
}

/// Parses `DURATION`: a number with an optional unit ms, s (the default), m or h:
/// `250ms`, `1.5s`, `2m`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration `{s}`: use ms, s, m or h, e.g. 250ms or 2s"
            ));
        }
    };
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid duration `{s}`: expected a number with a unit, e.g. 250ms")
    })?;
    std::time::Duration::try_from_secs_f64(n * scale)
        .map_err(|_| format!("duration `{s}` is out of range"))
}

/// `--timeout SECS`: seconds, fractions allowed, 0 or more (a malformed value is a
/// command line that does not parse: exit 2).
pub fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t >= 0.0 => Ok(t),
        _ => Err(format!("expected seconds, 0 or more, not {s:?}")),
    }
}

/// A count that must be at least 1 (`list read --limit`).
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, not {s:?}")),
    }
}

/// `1 record`, `2 records`.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `1 file is`, `2 files are`: `n` followed by the phrase that agrees with it.
pub fn plural_phrase(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1.5 GiB`-style rendering.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = "KiB";
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Parses an RFC 3339 timestamp (`2026-11-21T18:30:00Z`, `2026-11-21T18:30:00.25+01:00`,
/// or a date alone, meaning midnight UTC) into microseconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid time `{s}`: expected RFC 3339, e.g. 2026-11-21T18:30:00Z");
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = b.get(r).ok_or_else(bad)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        std::str::from_utf8(part)
            .map_err(|_| bad())?
            .parse()
            .map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
    {
        return Err(bad());
    }
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Ok(days * 86_400_000_000);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return Err(bad());
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let frac = b.get(start..i).ok_or_else(bad)?;
        let padded: String = frac
            .iter()
            .map(|&d| char::from(d))
            .chain(std::iter::repeat('0'))
            .take(6)
            .collect();
        micros = padded.parse().map_err(|_| bad())?;
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return Err(bad()),
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Ok(secs * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_default_to_seconds() {
        use std::time::Duration;
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(
            parse_duration("3 days")
                .unwrap_err()
                .contains("use ms, s, m or h")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("3m").unwrap(), 3 << 20);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert!(parse_size("1x").is_err());
        assert!(parse_size("g").is_err());
        assert!(parse_size("99999999999t").is_err());
        assert_eq!(parse_size("1.5g").unwrap(), 1536 << 20);
        assert_eq!(parse_size("0.5k").unwrap(), 512);
        assert_eq!(parse_size("2.25M").unwrap(), (2 << 20) + (1 << 18));
        assert!(parse_size("1.1k").unwrap_err().contains("whole number"));
        // The hint is the exact number of bytes below, never a rounding of the unit.
        assert!(
            parse_size("1.3")
                .unwrap_err()
                .contains("nearest below is 1)")
        );
        assert!(
            parse_size("1.0000001g")
                .unwrap_err()
                .contains("nearest below is 1073741931)")
        );
        assert!(parse_capacity("1").unwrap_err().contains("minimum of 64k"));
        assert_eq!(parse_capacity("64k"), Ok(64 << 10));
        assert!(parse_record_size("0").is_err());
        assert!(parse_record_size("3g").is_err());
        assert_eq!(parse_record_size("1"), Ok(1));
        for bad in ["1.", ".5g", "1..5g", "1.5.5g", "1.5x", ""] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "segment"), "1 segment");
        assert_eq!(plural(0, "segment"), "0 segments");
        assert_eq!(plural(2, "record"), "2 records");
    }

    #[test]
    fn times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z").unwrap(), 1_500_000);
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert_eq!(parse_rfc3339("2000-03-01").unwrap(), 951_868_800_000_000);
        assert_eq!(
            parse_rfc3339("2026-11-21T18:30:00Z").unwrap(),
            1_795_285_800_000_000
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-11-21T18:30",
            "2026-11-21T18:30:00",
            "2026-11-21T18:30:00+99:00",
            "2026-11-21T18:30:00-01:60",
            "yesterday",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn byte_rendering() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1 << 30), "1.0 GiB");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(u64::MAX), "16777216.0 TiB");
    }
}
