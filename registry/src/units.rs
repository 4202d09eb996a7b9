//! Human sizes and durations for the CLI and TOML: `64MiB`, `1.5GB`, `5s`, `250ms`.
//!
//! Here rather than in the host because grants spell state quotas in these units (`state:16MiB`); the host
//! re-exports this module as `plughost::units`.

use std::time::Duration;

/// A size or duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read `{0}`")]
pub struct UnitError(pub String);

/// Parses `1024`, `64KiB`, `64MiB`, `2GiB`, `10MB`, `1.5GiB` (case-insensitive) into bytes.
pub fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| UnitError(s.to_string()))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(UnitError(s.to_string())),
    };
    let v = num * mult;
    if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
        return Err(UnitError(s.to_string()));
    }
    Ok(v.round() as u64)
}

/// Formats bytes with a binary unit when exact (`64MiB`), else plain bytes.
pub fn format_bytes(b: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, name) in UNITS {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{name}", b / size);
        }
    }
    format!("{b}B")
}

/// 1234567 → "1,234,567".
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Formats bytes for people, rounded (`1.4 MiB`).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, name) in UNITS {
        if b >= size {
            return format!("{:.1} {name}", b as f64 / size as f64);
        }
    }
    format!("{b} B")
}

/// Parses `5s`, `250ms`, `2m`, `1h`, `1.5s` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| UnitError(s.to_string()))?;
    let secs = match unit.trim() {
        "" | "s" => num,
        "ms" => num / 1000.0,
        "us" | "µs" => num / 1e6,
        "m" | "min" => num * 60.0,
        "h" => num * 3600.0,
        "d" => num * 86_400.0,
        _ => return Err(UnitError(s.to_string())),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| UnitError(s.to_string()))
}

/// Formats a duration for people: `812µs`, `4.3ms`, `2.10s`.
pub fn human_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1e6 {
        format!("{:.1}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// A Unix time (seconds) as UTC to the minute, `2026-11-23 11:38Z`, without a date library.
/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn utc_minute(ts: i64) -> String {
    let (y, m, d, hh, mm, _) = civil(ts);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}Z")
}

/// A Unix time in milliseconds as RFC 3339 UTC to the second, `2026-11-23T11:38:05Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    let (y, m, d, hh, mm, ss) = civil(ms.div_euclid(1000));
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// A date `YYYY-MM-DD` as Unix milliseconds at its start (UTC).
pub fn date_ms(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let mut num = |len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))?
            .parse::<i64>()
            .ok()
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let ms = (era * 146_097 + doe - 719_468) * 86_400_000;
    // A day the month does not have (2026-02-30) comes back as another date.
    (rfc3339_ms(ms).get(..10) == Some(s)).then_some(ms)
}

fn civil(ts: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 { y + 1 } else { y },
        m,
        d,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
    )
}

/// `bytes` bytes from the operating system's secure random source, as lowercase hex: for handles that stand for
/// stored state (task ids), which must not be guessable. `None` if the source fails.
pub fn random_hex(bytes: usize) -> Option<String> {
    let mut b = vec![0u8; bytes.min(64)];
    getrandom::fill(&mut b).ok()?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_back() {
        assert_eq!(date_ms("1970-01-01"), Some(0));
        assert_eq!(date_ms("2026-11-23"), Some(1_795_392_000_000));
        assert_eq!(
            rfc3339_ms(date_ms("2024-02-29").expect("leap")),
            "2024-02-29T00:00:00Z"
        );
        for bad in ["2026-02-30", "2026-13-01", "26-01-01", "2026-1-01", "x"] {
            assert_eq!(date_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_800_000_000_999), "2027-01-15T08:00:00Z");
        assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00Z");
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("64mib"), Ok(64 << 20));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert_eq!(format_bytes(64 << 20), "64MiB");
        assert_eq!(format_bytes(1000), "1000B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
