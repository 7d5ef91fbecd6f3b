//! Calendar arithmetic in UTC from unix seconds, without a date library: Howard Hinnant's
//! `days_from_civil` / `civil_from_days` (proleptic Gregorian calendar, exact for every
//! `i64` day count this crate can meet), month boundaries and RFC 3339 timestamps.

const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of the civil date `y-m-d` (`m` in 1..=12, `d` in 1..=31).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month 1..=12, day 1..=31)` of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Unix seconds of the first of the month (00:00:00 UTC) that contains `unix_s`.
///
/// ```
/// // 2024-02-29T12:00:00Z -> 2024-02-01T00:00:00Z
/// assert_eq!(ficus_slo::month_start(1_709_208_000), 1_706_745_600);
/// ```
pub fn month_start(unix_s: i64) -> i64 {
    let (y, m, _) = civil_from_days(unix_s.div_euclid(SECONDS_PER_DAY));
    days_from_civil(y, m, 1) * SECONDS_PER_DAY
}

/// Unix seconds of the first of the month after the one that contains `unix_s` (December
/// rolls over to January of the next year).
pub fn next_month_start(unix_s: i64) -> i64 {
    let (y, m, _) = civil_from_days(unix_s.div_euclid(SECONDS_PER_DAY));
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1) * SECONDS_PER_DAY
}

/// `unix_s` as an RFC 3339 UTC timestamp with second precision, `2023-11-14T22:13:20Z`.
/// Years outside 0..=9999 are printed with as many digits as they need (RFC 3339 has no
/// form for them; they never occur for real clocks).
pub fn rfc3339(unix_s: i64) -> String {
    let days = unix_s.div_euclid(SECONDS_PER_DAY);
    let secs = unix_s.rem_euclid(SECONDS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Alertmanager's zero time, the `endsAt` of an alert that is still firing.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_over_many_centuries() {
        let mut z = -800_000;
        while z < 800_000 {
            let (y, m, d) = civil_from_days(z);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(days_from_civil(y, m, d), z, "{y}-{m}-{d}");
            z += 1;
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2023, 11, 14), 19_675);
    }

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(-62_135_596_800), ZERO_TIME);
    }

    #[test]
    fn month_boundaries() {
        // 2024 is a leap year: February has 29 days.
        let feb_29_noon = days_from_civil(2024, 2, 29) * 86_400 + 12 * 3600;
        assert_eq!(
            month_start(feb_29_noon),
            days_from_civil(2024, 2, 1) * 86_400
        );
        assert_eq!(
            next_month_start(feb_29_noon),
            days_from_civil(2024, 3, 1) * 86_400
        );
        assert_eq!(
            rfc3339(next_month_start(feb_29_noon)),
            "2024-03-01T00:00:00Z"
        );
        // 2023 is not, 1900 is not, 2000 is.
        for (y, days) in [(2023, 28), (1900, 28), (2000, 29), (2100, 28)] {
            let feb = days_from_civil(y, 2, 1) * 86_400;
            assert_eq!((next_month_start(feb) - feb) / 86_400, days, "{y}");
        }
        // December rolls over into January of the next year.
        let dec_31_late = days_from_civil(2023, 12, 31) * 86_400 + 86_399;
        assert_eq!(rfc3339(month_start(dec_31_late)), "2023-12-01T00:00:00Z");
        assert_eq!(
            rfc3339(next_month_start(dec_31_late)),
            "2024-01-01T00:00:00Z"
        );
        // The first second of a month belongs to it; the last second before to the previous.
        let jan_1 = days_from_civil(2024, 1, 1) * 86_400;
        assert_eq!(month_start(jan_1), jan_1);
        assert_eq!(rfc3339(month_start(jan_1 - 1)), "2023-12-01T00:00:00Z");
        // Before 1970.
        assert_eq!(rfc3339(month_start(-1)), "1969-12-01T00:00:00Z");
        assert_eq!(next_month_start(-1), 0);
    }
}
