//! Calendar arithmetic for the canonical time forms (microseconds since the Unix epoch or
//! since midnight): parsing SQLite's text timestamps and printing values for people.
//!
//! Hand-written rather than pulling in a date crate: verify needs only the proleptic
//! Gregorian day count (Howard Hinnant's `days_from_civil`) and a strict ISO-8601 parser.

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` to a day count.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() != 10 || &s[4..5] != "-" || &s[7..8] != "-" {
        return None;
    }
    let (y, m, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    // Reject 2023-02-30 and the like: they would not survive the round trip.
    (civil_from_days(days) == (y, m as u32, d as u32)).then_some(days)
}

/// `HH:MM[:SS[.ffffff]]` to microseconds since midnight; digits past the sixth are rounded.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let mut parts = s.splitn(3, ':');
    let h = digits(parts.next()?)?;
    let m = digits(parts.next()?)?;
    let (sec, frac) = match parts.next() {
        None => (0, 0),
        Some(rest) => match rest.split_once('.') {
            Some((sec, frac)) => (digits(sec)?, parse_fraction(frac)?),
            None => (digits(rest)?, 0),
        },
    };
    if m > 59 || sec > 60 {
        return None;
    }
    Some((h * 3600 + m * 60 + sec) * 1_000_000 + frac)
}

/// Fractional-second digits to microseconds, rounding half up past the sixth digit.
fn parse_fraction(frac: &str) -> Option<i64> {
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros: i64 = 0;
    for i in 0..6 {
        micros = micros * 10 + frac.as_bytes().get(i).map_or(0, |b| (b - b'0') as i64);
    }
    if frac.as_bytes().get(6).is_some_and(|b| *b >= b'5') {
        micros += 1;
    }
    Some(micros)
}

/// An ISO-8601 timestamp (`YYYY-MM-DD[ T]HH:MM[:SS[.f]][Z|±HH[:MM]]`, or a bare date) to
/// microseconds since the epoch, in UTC when an offset is given and as written otherwise.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 10 {
        return None;
    }
    let days = parse_date(&s[..10])?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(days * MICROS_PER_DAY);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset) = split_offset(rest)?;
    let time = parse_time(clock)?;
    Some(days * MICROS_PER_DAY + time - offset)
}

/// Splits a trailing `Z` / `±HH[:MM]` off a clock time; the offset in microseconds.
fn split_offset(s: &str) -> Option<(&str, i64)> {
    if let Some(clock) = s.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    let Some(i) = s.rfind(['+', '-']) else {
        return Some((s, 0));
    };
    let (clock, off) = s.split_at(i);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let off = &off[1..];
    let (h, m) = match off.split_once(':') {
        Some((h, m)) => (digits(h)?, digits(m)?),
        None if off.len() == 4 => (digits(&off[..2])?, digits(&off[2..])?),
        None => (digits(off)?, 0),
    };
    Some((clock.trim_end(), sign * (h * 3600 + m * 60) * 1_000_000))
}

/// Rounds microseconds to `precision` fractional digits, half up (toward +inf), exactly as
/// the SQL of every engine does it (`v - ((v % g) + g) % g` with `v = u + g/2`).
pub fn round_micros(u: i64, precision: u32) -> i64 {
    if precision >= 6 {
        return u;
    }
    let g = 10i64.pow(6 - precision);
    let v = u + g / 2;
    v - v.rem_euclid(g)
}

fn fraction(micros: i64, precision: u32) -> String {
    if precision == 0 {
        return String::new();
    }
    let f = format!("{:06}", micros);
    format!(".{}", &f[..precision.min(6) as usize])
}

/// Microseconds since the epoch as `YYYY-MM-DD HH:MM:SS[.f]` with `precision` digits.
pub fn format_timestamp(u: i64, precision: u32) -> String {
    let days = u.div_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let t = u.rem_euclid(MICROS_PER_DAY);
    let secs = t / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}{}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        fraction(t % 1_000_000, precision)
    )
}

/// Microseconds since midnight as `HH:MM:SS[.f]` (negative and > 24 h as MySQL allows).
pub fn format_time(u: i64, precision: u32) -> String {
    let sign = if u < 0 { "-" } else { "" };
    let a = u.unsigned_abs() as i64;
    let secs = a / 1_000_000;
    format!(
        "{sign}{:02}:{:02}:{:02}{}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        fraction(a % 1_000_000, precision)
    )
}

/// A day count as `YYYY-MM-DD`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for days in [-800_000, -1, 0, 1, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2024, 1, 2), 19_724);
        assert_eq!(parse_date("2024-02-30"), None);
    }

    #[test]
    fn timestamps_parse_like_the_databases_compute_them() {
        // Values computed by PostgreSQL: extract(epoch from ...) * 1e6.
        assert_eq!(
            parse_timestamp("2024-01-02 03:04:05.123456+02"),
            Some(1_704_157_445_123_456)
        );
        assert_eq!(
            parse_timestamp("2024-01-02T01:04:05.123456Z"),
            Some(1_704_157_445_123_456)
        );
        assert_eq!(
            parse_timestamp("1960-01-02 03:04:05.5"),
            Some(-315_521_754_500_000)
        );
        assert_eq!(parse_timestamp("2024-01-02"), Some(19_724 * MICROS_PER_DAY));
        assert_eq!(
            parse_timestamp("2024-01-02 03:04"),
            Some(19_724 * MICROS_PER_DAY + 11_040_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-01-02 03:04:05.1234565"),
            parse_timestamp("2024-01-02 03:04:05.123457")
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn rounding_is_half_up_for_negative_values_too() {
        assert_eq!(round_micros(1_500_000, 0), 2_000_000);
        assert_eq!(round_micros(1_499_999, 0), 1_000_000);
        assert_eq!(round_micros(-1_500_000, 0), -1_000_000);
        assert_eq!(round_micros(-1_500_001, 0), -2_000_000);
        assert_eq!(round_micros(123_456, 3), 123_000);
        assert_eq!(round_micros(123_456, 6), 123_456);
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(
            format_timestamp(1_704_157_445_123_456, 6),
            "2024-01-02 01:04:05.123456"
        );
        assert_eq!(
            format_timestamp(-315_521_754_500_000, 1),
            "1960-01-02 03:04:05.5"
        );
        assert_eq!(format_time(3_723_500_000, 0), "01:02:03");
        assert_eq!(format_time(-3_600_000_000, 0), "-01:00:00");
        assert_eq!(parse_time("01:02:03.5"), Some(3_723_500_000));
        assert_eq!(format_date(19_724), "2024-01-02");
    }
}
