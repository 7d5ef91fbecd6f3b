//! The canonical form in Rust: the row encoding and checksum that the SQL of `sql.rs`
//! computes inside PostgreSQL and MySQL, and the normalization of SQLite values (SQLite has
//! no md5 and its values are dynamically typed, so its rows are normalized and hashed here,
//! in the process that holds the file: no network is saved by doing it in SQL).
use md5::{Digest, Md5};

use crate::civil;
use crate::db::Cell;
use crate::plan::{ColumnPlan, Kind};
use crate::schema::{Family, UuidRepr};

/// Which canonical text a statement produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The hashed form: floats quantized by their tolerance, all forms engine-independent.
    Hash,
    /// The downloaded form that rows are compared and shown with.
    Value,
}

/// Per-segment checksum: row count and two 64-bit sums of per-row hash halves (mod 2^64),
/// order-independent, 128 bits in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checksum {
    pub count: u64,
    pub sums: [u64; 2],
}

impl Checksum {
    /// Adds one encoded row, hashed with md5 (the first and second 8 bytes, big-endian, are
    /// what `('x' || substr(md5, 1, 16))::bit(64)` and `CONV(SUBSTRING(md5, 1, 16), 16, 10)`
    /// read in SQL).
    pub fn add_md5(&mut self, encoded: &[u8]) {
        let digest = Md5::digest(encoded);
        let hi = u64::from_be_bytes(digest[0..8].try_into().expect("8 bytes"));
        let lo = u64::from_be_bytes(digest[8..16].try_into().expect("8 bytes"));
        self.count += 1;
        self.sums[0] = self.sums[0].wrapping_add(hi);
        self.sums[1] = self.sums[1].wrapping_add(lo);
    }

    /// Builds a checksum from the decimal text of SQL sums (PostgreSQL sums signed halves,
    /// MySQL unsigned ones; both agree modulo 2^64).
    pub fn from_sql(count: &str, a: &str, b: &str) -> Option<Checksum> {
        let m = |s: &str| -> Option<u64> {
            let v: i128 = s.trim().parse().ok()?;
            Some(v.rem_euclid(1i128 << 64) as u64)
        };
        Some(Checksum {
            count: count.trim().parse().ok()?,
            sums: [m(a)?, m(b)?],
        })
    }
}

/// Appends one field to the row encoding: restricted-alphabet kinds as `text,`, text kinds
/// as `bytelen:text`, NULL as `N,` (a length prefix never starts with `N`, and no
/// restricted canonical form is exactly `N`), so distinct rows encode differently.
pub fn encode_field(out: &mut Vec<u8>, kind: Kind, value: Option<&str>) {
    match value {
        None => out.extend_from_slice(b"N,"),
        Some(v) if kind.restricted_alphabet() => {
            out.extend_from_slice(v.as_bytes());
            out.push(b',');
        }
        Some(v) => {
            out.extend_from_slice(v.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
    }
}

/// Trims a plain decimal to canonical form: no `+`, no leading zeros, no trailing
/// fractional zeros, no trailing point, no negative zero.
pub fn trim_decimal(s: &str) -> String {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut out = String::with_capacity(body.len() + 1);
    if neg && !(int == "0" && frac.is_empty()) {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// Rounds a plain decimal to `scale` fractional digits, half away from zero (what
/// PostgreSQL's `round(numeric, s)` and MySQL's `ROUND(decimal, s)` do), then trims.
pub fn round_decimal(s: &str, scale: u32) -> String {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let scale = scale as usize;
    if frac.len() <= scale {
        return trim_decimal(s);
    }
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes().take(scale)).collect();
    if frac.as_bytes()[scale] >= b'5' {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - scale;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&digits[..split]).unwrap_or("0"));
    if scale > 0 {
        out.push('.');
        out.push_str(std::str::from_utf8(&digits[split..]).unwrap_or("0"));
    }
    trim_decimal(&out)
}

/// Whether `s` is a plain decimal (`-12.50`, `.5`, `7`).
fn is_plain_decimal(s: &str) -> bool {
    let b = s.trim().trim_start_matches(['-', '+']);
    let (i, f) = b.split_once('.').unwrap_or((b, ""));
    !(i.is_empty() && f.is_empty())
        && i.bytes().all(|c| c.is_ascii_digit())
        && f.bytes().all(|c| c.is_ascii_digit())
}

/// A double as the hashed canonical text: its shortest round-trip digits written as a plain
/// decimal (Rust's `Display` does exactly that), `-0` as `0`, and PostgreSQL's spellings of
/// the non-finite values.
pub fn float_hash_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if x == 0.0 {
        "0".into()
    } else {
        format!("{x}")
    }
}

/// The double a value stands for, narrowed to single precision when the pair is.
fn to_double(x: f64, single: bool) -> f64 {
    if single {
        x as f32 as f64
    } else {
        x
    }
}

/// The hashed text of a numeric value under a tolerance: `floor(x / tol)`. Two values more
/// than `tol` apart always land in different buckets, so such a difference always changes
/// the segment checksum; values within `tol` may still differ in bucket, which only costs
/// a row-level look where the tolerance decides.
pub fn tolerance_bucket(x: f64, tol: f64) -> String {
    float_hash_text((x / tol).floor())
}

/// Reads a cell as a double (SQLite numbers may arrive as integer, real or text).
fn cell_f64(cell: &Cell) -> Result<f64, String> {
    match cell {
        Cell::Int(i) => Ok(*i as f64),
        Cell::Real(f) => Ok(*f),
        Cell::Text(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{s}` is not a number")),
        Cell::Blob(_) => Err("a blob where a number was expected".into()),
        Cell::Null => Err("NULL".into()),
    }
}

fn cell_text(cell: &Cell) -> Result<String, String> {
    match cell {
        Cell::Int(i) => Ok(i.to_string()),
        Cell::Real(f) => Ok(format!("{f}")),
        Cell::Text(s) => Ok(s.clone()),
        Cell::Blob(b) => {
            String::from_utf8(b.clone()).map_err(|_| "a blob that is not UTF-8 text".into())
        }
        Cell::Null => Err("NULL".into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn uuid_from_hex(h: &str) -> String {
    if h.len() != 32 {
        return h.to_string();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The decimal text of a SQLite numeric cell.
fn cell_decimal(cell: &Cell) -> Result<String, String> {
    match cell {
        Cell::Int(i) => Ok(i.to_string()),
        Cell::Real(f) if f.is_finite() => Ok(float_hash_text(*f)),
        Cell::Text(s) if is_plain_decimal(s) => Ok(s.trim().to_string()),
        Cell::Text(s) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(float_hash_text(f)),
            _ => Err(format!("`{s}` is not a decimal number")),
        },
        other => Err(format!("{other:?} is not a decimal number")),
    }
}

/// Normalizes one SQLite cell of column `col` (source or target side) under `plan`; the
/// same canonical text that `sql::canon` produces in SQL for the other engines.
pub fn sqlite_canon(
    cell: &Cell,
    plan: &ColumnPlan,
    family: &Family,
    purpose: Purpose,
) -> Result<Option<String>, String> {
    if *cell == Cell::Null {
        return Ok(None);
    }
    let v = match plan.kind {
        Kind::Integer | Kind::Decimal { .. } | Kind::Float { .. }
            if plan.tolerance.is_some() && purpose == Purpose::Hash =>
        {
            let single = matches!(plan.kind, Kind::Float { single: true });
            let tol = plan.tolerance.unwrap_or(1.0);
            tolerance_bucket(to_double(cell_f64(cell)?, single), tol)
        }
        Kind::Integer => match cell {
            Cell::Real(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => (*f as i64).to_string(),
            other => trim_decimal(&cell_text(other)?),
        },
        Kind::Decimal { scale } => {
            let d = cell_decimal(cell)?;
            match scale {
                Some(s) => round_decimal(&d, s),
                None => trim_decimal(&d),
            }
        }
        Kind::Float { single } => {
            let x = to_double(cell_f64(cell)?, single);
            float_hash_text(x)
        }
        Kind::Bool => match cell {
            Cell::Int(i) => if *i != 0 { "t" } else { "f" }.into(),
            Cell::Real(f) => if *f != 0.0 { "t" } else { "f" }.into(),
            Cell::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "1" | "yes" | "y" | "on" => "t".into(),
                "f" | "false" | "0" | "no" | "n" | "off" => "f".into(),
                _ => return Err(format!("`{s}` is not a boolean")),
            },
            _ => return Err("a blob is not a boolean".into()),
        },
        Kind::Text | Kind::Json => cell_text(cell)?,
        Kind::Bytes => match cell {
            Cell::Blob(b) => hex(b),
            other => hex(cell_text(other)?.as_bytes()),
        },
        Kind::Uuid => match (cell, family) {
            (Cell::Blob(b), _) if b.len() == 16 => uuid_from_hex(&hex(b)),
            (Cell::Blob(b), Family::Uuid(UuidRepr::Binary)) => uuid_from_hex(&hex(b)),
            (other, _) => cell_text(other)?.trim().to_ascii_lowercase(),
        },
        Kind::Date => {
            let s = cell_text(cell)?;
            let day = civil::parse_date(s.trim().get(..10).unwrap_or(&s))
                .ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD)"))?;
            civil::format_date(day)
        }
        Kind::Time { precision } => {
            let s = cell_text(cell)?;
            let u =
                civil::parse_time(&s).ok_or_else(|| format!("`{s}` is not a time (HH:MM:SS)"))?;
            civil::round_micros(u, precision).to_string()
        }
        Kind::Timestamp { precision } => {
            let u = match cell {
                // Unix seconds, as SQLite's `unixepoch()` stores them.
                Cell::Int(i) => i.saturating_mul(1_000_000),
                // A Julian day number, as SQLite's `julianday()` stores them.
                Cell::Real(f) => ((f - 2_440_587.5) * 86_400_000_000.0).round() as i64,
                other => {
                    let s = cell_text(other)?;
                    civil::parse_timestamp(&s).ok_or_else(|| {
                        format!("`{s}` is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][Z|±HH:MM])")
                    })?
                }
            };
            civil::round_micros(u, precision).to_string()
        }
    };
    Ok(Some(v))
}

/// The text a person (and the repair SQL) sees for a downloaded canonical value.
pub fn display(kind: Kind, value: &str) -> String {
    let micros = || value.parse::<i64>().ok();
    match kind {
        Kind::Timestamp { precision } => micros()
            .map(|u| civil::format_timestamp(u, precision))
            .unwrap_or_else(|| value.to_string()),
        Kind::Time { precision } => micros()
            .map(|u| civil::format_time(u, precision))
            .unwrap_or_else(|| value.to_string()),
        _ => value.to_string(),
    }
}

/// Whether two downloaded values are equal under the column's kind and tolerance: floats as
/// doubles (`-0 == 0`, NaN equal to NaN), tolerant numerics within `tol` inclusive, JSON as
/// parsed values, everything else as canonical text.
pub fn values_equal(plan: &ColumnPlan, a: Option<&str>, b: Option<&str>) -> bool {
    let (a, b) = match (a, b) {
        (None, None) => return true,
        (Some(a), Some(b)) => (a, b),
        _ => return false,
    };
    let float = |s: &str| s.trim().parse::<f64>().ok();
    match (plan.kind, plan.tolerance) {
        (k, Some(tol)) if k.numeric() => match (float(a), float(b)) {
            (Some(x), Some(y)) => {
                let single = matches!(k, Kind::Float { single: true });
                let (x, y) = (to_double(x, single), to_double(y, single));
                (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol
            }
            _ => a == b,
        },
        (Kind::Float { single }, None) => match (float(a), float(b)) {
            (Some(x), Some(y)) => {
                let (x, y) = (to_double(x, single), to_double(y, single));
                x == y || (x.is_nan() && y.is_nan())
            }
            _ => a == b,
        },
        (Kind::Json, _) => match (
            serde_json::from_str::<serde_json::Value>(a),
            serde_json::from_str::<serde_json::Value>(b),
        ) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    #[test]
    fn checksum_halves_match_the_sql_reading_of_md5() {
        // md5('abc') = 900150983cd24fb0 d6963f7d28e17f72; PostgreSQL read the first half as
        // the signed bigint -8070080442485551184 and MariaDB as 10376663631224000432.
        let mut c = Checksum::default();
        c.add_md5(b"abc");
        assert_eq!(c.sums[0], 10_376_663_631_224_000_432);
        assert_eq!(c.sums[0] as i64, -8_070_080_442_485_551_184);
        let pg = Checksum::from_sql("1", "-8070080442485551184", &(c.sums[1] as i64).to_string())
            .unwrap();
        let my = Checksum::from_sql("1", "10376663631224000432", &c.sums[1].to_string()).unwrap();
        assert_eq!(pg, c);
        assert_eq!(my, c);
        // Sums past 2^64 reduce the same way on both readings.
        let big = Checksum::from_sql("2", "-36893488147419103232", "36893488147419103233").unwrap();
        assert_eq!(big.sums, [0, 1]);
    }

    #[test]
    fn encoding_is_unambiguous() {
        let enc = |vals: &[(Kind, Option<&str>)]| {
            let mut out = Vec::new();
            for (k, v) in vals {
                encode_field(&mut out, *k, *v);
            }
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            enc(&[(Kind::Integer, Some("12")), (Kind::Text, Some("a,b"))]),
            "12,3:a,b"
        );
        assert_ne!(enc(&[(Kind::Text, None)]), enc(&[(Kind::Text, Some(""))]));
        assert_eq!(enc(&[(Kind::Text, Some(""))]), "0:");
        assert_ne!(
            enc(&[(Kind::Text, Some("ab")), (Kind::Text, Some("c"))]),
            enc(&[(Kind::Text, Some("a")), (Kind::Text, Some("bc"))])
        );
        assert_eq!(
            enc(&[(Kind::Text, Some("é"))]),
            "2:é",
            "lengths count UTF-8 bytes"
        );
    }

    #[test]
    fn decimals_trim_and_round_like_the_databases() {
        assert_eq!(trim_decimal("1.500"), "1.5");
        assert_eq!(trim_decimal("100"), "100");
        assert_eq!(trim_decimal("-0.00"), "0");
        assert_eq!(trim_decimal("+007.50"), "7.5");
        assert_eq!(trim_decimal(".5"), "0.5");
        assert_eq!(round_decimal("1.2345", 2), "1.23");
        assert_eq!(round_decimal("1.235", 2), "1.24");
        assert_eq!(round_decimal("-1.235", 2), "-1.24");
        assert_eq!(round_decimal("9.995", 2), "10");
        assert_eq!(round_decimal("-0.001", 2), "0");
        assert_eq!(round_decimal("0.5", 0), "1");
        assert_eq!(round_decimal("12", 2), "12");
    }

    #[test]
    fn floats_hash_as_postgres_prints_their_numeric_form() {
        // PostgreSQL: trim_scale(x::text::numeric)::text
        assert_eq!(float_hash_text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float_hash_text(1e20), "100000000000000000000");
        assert_eq!(float_hash_text(1.5e-7), "0.00000015");
        assert_eq!(float_hash_text(-0.0), "0");
        assert_eq!(
            float_hash_text(1.2345678901234568e20),
            "123456789012345680000"
        );
        assert_eq!(float_hash_text(f64::NAN), "NaN");
        assert_eq!(float_hash_text(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(tolerance_bucket(-0.0001, 0.001), "-1");
        assert_eq!(tolerance_bucket(0.0001, 0.001), "0");
    }

    fn plan(kind: Kind, tolerance: Option<f64>) -> ColumnPlan {
        let c = Column {
            name: "c".into(),
            declared: "x".into(),
            base: String::new(),
            family: Family::Text,
            bytewise: true,
        };
        ColumnPlan {
            source: c.clone(),
            target: c,
            kind,
            tolerance,
            expr: None,
        }
    }

    #[test]
    fn a_tolerance_bucket_always_separates_values_further_apart_than_the_tolerance() {
        let tol = 0.01;
        let mut x = -3.0;
        while x < 3.0 {
            for d in [0.0100001, 0.02, 0.5] {
                assert_ne!(
                    tolerance_bucket(x, tol),
                    tolerance_bucket(x + d, tol),
                    "{x} {d}"
                );
            }
            x += 0.00137;
        }
        let p = plan(Kind::Float { single: false }, Some(tol));
        assert!(values_equal(&p, Some("1.004"), Some("0.996")));
        assert!(!values_equal(&p, Some("1.02"), Some("1")));
    }

    #[test]
    fn values_compare_by_kind() {
        let f = plan(Kind::Float { single: false }, None);
        assert!(values_equal(&f, Some("-0"), Some("0")));
        assert!(values_equal(&f, Some("1e+20"), Some("1e20")));
        assert!(!values_equal(&f, Some("0.30000000000000004"), Some("0.3")));
        assert!(values_equal(&f, Some("NaN"), Some("NaN")));
        let single = plan(Kind::Float { single: true }, None);
        assert!(values_equal(
            &single,
            Some("0.1"),
            Some("0.10000000149011612")
        ));
        let j = plan(Kind::Json, None);
        assert!(values_equal(
            &j,
            Some(r#"{"a": 1, "b": [2]}"#),
            Some(r#"{"b":[2],"a":1}"#)
        ));
        let t = plan(Kind::Text, None);
        assert!(!values_equal(&t, Some(""), None));
        assert!(values_equal(&t, None, None));
    }

    #[test]
    fn sqlite_cells_normalize() {
        let c = |kind, cell: Cell| {
            sqlite_canon(&cell, &plan(kind, None), &Family::Text, Purpose::Hash).unwrap()
        };
        assert_eq!(
            c(Kind::Decimal { scale: Some(2) }, Cell::Real(1.5)),
            Some("1.5".into())
        );
        assert_eq!(
            c(Kind::Decimal { scale: Some(2) }, Cell::Text("2.005".into())),
            Some("2.01".into())
        );
        assert_eq!(c(Kind::Bool, Cell::Int(1)), Some("t".into()));
        assert_eq!(c(Kind::Bool, Cell::Text("false".into())), Some("f".into()));
        assert_eq!(c(Kind::Text, Cell::Null), None);
        assert_eq!(c(Kind::Text, Cell::Text("".into())), Some("".into()));
        assert_eq!(
            c(Kind::Bytes, Cell::Blob(vec![0, 255])),
            Some("00ff".into())
        );
        assert_eq!(
            c(
                Kind::Uuid,
                Cell::Text("AB3E0D6A-1F2B-4C3D-8E9F-0A1B2C3D4E5F".into())
            ),
            Some("ab3e0d6a-1f2b-4c3d-8e9f-0a1b2c3d4e5f".into())
        );
        assert_eq!(
            c(
                Kind::Timestamp { precision: 6 },
                Cell::Text("2024-01-02T01:04:05.123456Z".into())
            ),
            Some("1704157445123456".into())
        );
        assert_eq!(
            c(
                Kind::Timestamp { precision: 0 },
                Cell::Text("2024-01-02 01:04:05.5".into())
            ),
            Some("1704157446000000".into())
        );
        assert_eq!(
            c(Kind::Float { single: false }, Cell::Int(3)),
            Some("3".into())
        );
        assert!(sqlite_canon(
            &Cell::Text("x".into()),
            &plan(Kind::Date, None),
            &Family::Date,
            Purpose::Hash
        )
        .is_err());
        assert_eq!(
            display(Kind::Timestamp { precision: 3 }, "1704157445123000"),
            "2024-01-02 01:04:05.123"
        );
    }
}
