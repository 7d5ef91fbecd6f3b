//! Durations (`"250ms"`, `"10s"`, `"5m"`, `"1h"`) and sizes (`65536`, `"64KiB"`, `"10MiB"`) as
//! written in `ficus.toml`, and their canonical rendering.

use std::time::Duration;

/// How to write the duration `key`; the `help` of duration errors.
pub fn duration_help(key: &str) -> String {
    format!(
        "write {key} = \"10s\": a whole number and a unit (ms, s, m or h), e.g. \"250ms\", \
         \"10s\", \"5m\""
    )
}

/// How to write the size `key`; the `help` of size errors.
pub fn size_help(key: &str) -> String {
    format!(
        "write {key} = 65536 (bytes), or a whole number and a binary unit (B, KiB, MiB or GiB) \
         in quotes, e.g. {key} = \"64KiB\""
    )
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Why a duration or size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    Empty,
    /// It does not start with a digit.
    MissingNumber,
    /// `1.5s`: only whole numbers are accepted.
    Fraction,
    /// `10`: a duration needs a unit.
    MissingUnit,
    /// The unit is not one of the accepted ones. `suggestion` is the full corrected value when
    /// the intent is clear (`"10sec"` → `"10s"`, `"10MB"` → `"10MiB"`).
    UnknownUnit {
        unit: String,
        suggestion: Option<String>,
    },
    /// A duration of zero.
    Zero,
    /// Does not fit in 64 bits.
    TooLarge,
}

impl std::fmt::Display for UnitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitError::Empty => f.write_str("is empty"),
            UnitError::MissingNumber => f.write_str("does not start with a number"),
            UnitError::Fraction => f.write_str("is not a whole number"),
            UnitError::MissingUnit => f.write_str("has no unit"),
            UnitError::UnknownUnit { unit, .. } => write!(f, "has an unknown unit {unit:?}"),
            UnitError::Zero => f.write_str("must be greater than zero"),
            UnitError::TooLarge => f.write_str("is too large"),
        }
    }
}

impl std::error::Error for UnitError {}

impl UnitError {
    /// The corrected value, when there is an obvious one.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            UnitError::UnknownUnit { suggestion, .. } => suggestion.as_deref(),
            _ => None,
        }
    }
}

/// Splits `"10 s"` into `(10, "s")`; the unit may be empty.
fn split_number(s: &str) -> Result<(u64, &str), UnitError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits_end == 0 {
        return Err(UnitError::MissingNumber);
    }
    let rest = &s[digits_end..];
    if rest.starts_with(['.', ',']) && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return Err(UnitError::Fraction);
    }
    let n = s[..digits_end]
        .parse::<u64>()
        .map_err(|_| UnitError::TooLarge)?;
    Ok((n, rest.trim_start()))
}

/// Parses a duration: a whole number and a unit, `ms`, `s`, `m` or `h` (`"250ms"`, `"10s"`,
/// `"5m"`, `"1h"`; a space before the unit is allowed). Zero is rejected: every duration in the
/// config is a timeout or an interval.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let (n, unit) = split_number(s)?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60 * 1000,
        "h" => 60 * 60 * 1000,
        "" => return Err(UnitError::MissingUnit),
        other => {
            let fixed = match other.to_ascii_lowercase().as_str() {
                "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => Some("ms"),
                "sec" | "secs" | "second" | "seconds" => Some("s"),
                "min" | "mins" | "minute" | "minutes" => Some("m"),
                "hr" | "hrs" | "hour" | "hours" => Some("h"),
                "ms" => Some("ms"),
                "s" => Some("s"),
                "h" => Some("h"),
                _ => None,
            };
            return Err(UnitError::UnknownUnit {
                unit: other.to_string(),
                suggestion: fixed.map(|u| format!("{n}{u}")),
            });
        }
    };
    if n == 0 {
        return Err(UnitError::Zero);
    }
    let millis = n.checked_mul(millis_per_unit).ok_or(UnitError::TooLarge)?;
    Ok(Duration::from_millis(millis))
}

/// Parses a size written as a string: plain bytes (`"65536"`) or a whole number and a binary
/// unit, `B`, `KiB`, `MiB` or `GiB` (`"64KiB"`). Decimal units (`KB`, `MB`, `GB`) are rejected
/// so that nobody has to wonder whether `1MB` is 1000000 or 1048576 bytes.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let (n, unit) = split_number(s)?;
    let mult = match unit {
        "" | "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        other => {
            let fixed = match other.to_ascii_lowercase().as_str() {
                "b" | "byte" | "bytes" => Some("B"),
                "k" | "kb" | "kib" => Some("KiB"),
                "m" | "mb" | "mib" => Some("MiB"),
                "g" | "gb" | "gib" => Some("GiB"),
                _ => None,
            };
            return Err(UnitError::UnknownUnit {
                unit: other.to_string(),
                suggestion: fixed.map(|u| format!("{n}{u}")),
            });
        }
    };
    n.checked_mul(mult).ok_or(UnitError::TooLarge)
}

/// Renders a size the way it is best written in the config: `"64KiB"`, `"10MiB"`, `"1000B"`.
pub fn format_size(bytes: u64) -> String {
    for (unit, mult) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes >= mult && bytes.is_multiple_of(mult) {
            return format!("{}{unit}", bytes / mult);
        }
    }
    format!("{bytes}B")
}

/// Renders a duration in the config's syntax, with the largest exact unit: `"90s"`, `"5m"`,
/// `"250ms"`. Sub-millisecond parts are dropped (the config cannot express them).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, mult) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1000)] {
        if ms >= mult && ms.is_multiple_of(mult) {
            return format!("{}{unit}", ms / mult);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 10 s "), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn duration_errors() {
        assert_eq!(parse_duration(""), Err(UnitError::Empty));
        assert_eq!(parse_duration("s"), Err(UnitError::MissingNumber));
        assert_eq!(parse_duration("-1s"), Err(UnitError::MissingNumber));
        assert_eq!(parse_duration("1.5s"), Err(UnitError::Fraction));
        assert_eq!(parse_duration("10"), Err(UnitError::MissingUnit));
        assert_eq!(parse_duration("0s"), Err(UnitError::Zero));
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(UnitError::TooLarge)
        );
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err(UnitError::TooLarge)
        );
        let e = parse_duration("10 parsecs").unwrap_err();
        assert_eq!(e.to_string(), "has an unknown unit \"parsecs\"");
        assert_eq!(e.suggestion(), None);
        assert_eq!(
            parse_duration("10sec").unwrap_err().suggestion(),
            Some("10s")
        );
        assert_eq!(
            parse_duration("5 minutes").unwrap_err().suggestion(),
            Some("5m")
        );
        assert_eq!(parse_duration("10S").unwrap_err().suggestion(), Some("10s"));
        assert_eq!(parse_duration("1M").unwrap_err().suggestion(), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("10 MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("2GiB"), Ok(2 * 1024 * 1024 * 1024));
    }

    #[test]
    fn size_errors() {
        assert_eq!(parse_size(""), Err(UnitError::Empty));
        assert_eq!(parse_size("KiB"), Err(UnitError::MissingNumber));
        assert_eq!(parse_size("1.5MiB"), Err(UnitError::Fraction));
        assert_eq!(parse_size("99999999999GiB"), Err(UnitError::TooLarge));
        assert_eq!(parse_size("10MB").unwrap_err().suggestion(), Some("10MiB"));
        assert_eq!(parse_size("64kb").unwrap_err().suggestion(), Some("64KiB"));
        assert_eq!(parse_size("64kib").unwrap_err().suggestion(), Some("64KiB"));
        assert_eq!(parse_size("1 TB").unwrap_err().suggestion(), None);
        assert_eq!(
            parse_size("1 TB").unwrap_err().to_string(),
            "has an unknown unit \"TB\""
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(8 * 1024), "8KiB");
        assert_eq!(format_size(10 * 1024 * 1024), "10MiB");
        assert_eq!(format_size(1024 * 1024 * 1024), "1GiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        for s in ["250ms", "10s", "5m", "1h", "1500ms"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
