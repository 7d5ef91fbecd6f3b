//! Incremental verification over a watermark column (`--watermark COL --changed-since X`):
//! only the rows whose watermark (an `updated_at` timestamp, or a version or sequence
//! number) is at or after a bound are compared, on both sides, and the rows that either
//! side has in that window but the other does not are looked up by key on the other side
//! without the window, so a row changed on one side only is found as changed, missing or
//! extra. A run with a watermark also reads the highest watermark of both tables before it
//! scans: the bound of the next incremental run.
//!
//! What an incremental run cannot see: a row deleted on the source (it has no watermark any
//! more), and a row whose watermark was not advanced by the write that changed it. Full
//! runs find those (docs/verify.md, "Incremental runs").
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::civil;
use crate::db::{Engine, ServerInfo};
use crate::error::{Side, VerifyError};
use crate::job::{defaults, Job};
use crate::plan::{ColumnPlan, Kind};
use crate::schema::{Column, Family};
use crate::sql::{self, quote_ident};

/// A value of a watermark column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatermarkValue {
    /// An instant of a timestamp watermark: microseconds since the Unix epoch, UTC (naive
    /// timestamps are taken as UTC, as everywhere in verify).
    Time(i64),
    /// A value of an integer watermark (a version or sequence number).
    Integer(i64),
}

impl WatermarkValue {
    /// `timestamp` or `integer`.
    pub fn kind(self) -> &'static str {
        match self {
            WatermarkValue::Time(_) => "timestamp",
            WatermarkValue::Integer(_) => "integer",
        }
    }

    /// The value minus an overlap of the matching kind (a count of 0 fits both).
    pub fn minus(self, overlap: Overlap) -> Result<WatermarkValue, String> {
        match (self, overlap) {
            (v, Overlap::Count(0)) => Ok(v),
            (WatermarkValue::Time(u), Overlap::Time(d)) => Ok(WatermarkValue::Time(
                u.saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            )),
            (WatermarkValue::Integer(n), Overlap::Count(c)) => Ok(WatermarkValue::Integer(
                n.saturating_sub(i64::try_from(c).unwrap_or(i64::MAX)),
            )),
            (WatermarkValue::Time(_), Overlap::Count(c)) => Err(format!(
                "the overlap {c} is a count, but the watermark is a timestamp: give a duration \
                 (e.g. 5s), or 0 for none"
            )),
            (WatermarkValue::Integer(_), Overlap::Time(d)) => Err(format!(
                "the overlap {} is a duration, but the watermark is an integer: give a count \
                 of versions (e.g. 100), or 0 for none",
                Overlap::Time(d)
            )),
        }
    }
}

/// Timestamps as RFC 3339 in UTC (`2026-12-07T10:00:00Z`, microseconds when there are
/// any), integers as their digits: what `--changed-since` accepts back.
impl fmt::Display for WatermarkValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatermarkValue::Integer(n) => write!(f, "{n}"),
            WatermarkValue::Time(u) => {
                let precision = if u.rem_euclid(1_000_000) == 0 { 0 } else { 6 };
                let text = civil::format_timestamp(*u, precision);
                write!(f, "{}Z", text.replacen(' ', "T", 1))
            }
        }
    }
}

impl FromStr for WatermarkValue {
    type Err = String;

    /// An integer (`12345`, `-3`), or an ISO-8601 timestamp (`2026-12-07T10:00:00Z`,
    /// `2026-12-07 10:00:00.5+01:00`, `2026-12-07`; without an offset it is UTC).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t.strip_prefix('-').unwrap_or(t);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse()
                .map(WatermarkValue::Integer)
                .map_err(|_| format!("{t} does not fit a 64-bit integer"));
        }
        civil::parse_timestamp(t)
            .map(WatermarkValue::Time)
            .ok_or_else(|| {
                format!(
                    "`{t}` is neither an integer nor a timestamp (2026-12-07T10:00:00Z, \
                 2026-12-07 10:00:00+01:00)"
                )
            })
    }
}

impl Serialize for WatermarkValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WatermarkValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How far before the bound an incremental run starts: writes that commit after a run read
/// the highest watermark but carry an earlier one (a long transaction, a clock behind the
/// other side's) are still checked by the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// For timestamp watermarks.
    Time(Duration),
    /// For integer watermarks; `0` means no overlap on either kind.
    Count(u64),
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overlap::Count(n) => write!(f, "{n}"),
            Overlap::Time(d) => {
                let ms = d.as_millis();
                if d.subsec_nanos() % 1_000_000 != 0 {
                    write!(f, "{}us", d.as_micros())
                } else if ms == 0 {
                    f.write_str("0")
                } else if ms % 3_600_000 == 0 {
                    write!(f, "{}h", ms / 3_600_000)
                } else if ms % 60_000 == 0 {
                    write!(f, "{}m", ms / 60_000)
                } else if ms % 1000 == 0 {
                    write!(f, "{}s", ms / 1000)
                } else {
                    write!(f, "{ms}ms")
                }
            }
        }
    }
}

impl FromStr for Overlap {
    type Err = String;

    /// A count (`100`, `0`) or a duration (`500ms`, `5s`, `2m`, `1h`, `250us`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let bad = || {
            format!(
                "`{t}` is not an overlap: a duration such as 5s, 500ms or 2m for a timestamp \
                 watermark, a count such as 100 for an integer one, or 0"
            )
        };
        let n: u64 = n.parse().map_err(|_| bad())?;
        let d = match unit {
            "" => return Ok(Overlap::Count(n)),
            "us" => Duration::from_micros(n),
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        Ok(Overlap::Time(d))
    }
}

impl Serialize for Overlap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Overlap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `--watermark COL [--changed-since X] [--watermark-overlap O]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watermark {
    /// The watermark column by its source name; on the target, the same name or its
    /// `--map` name. An integer or a timestamp on both sides.
    pub column: String,
    /// Compare only the rows whose watermark is at or after this (minus the overlap), on
    /// both sides. None: every row (a full run that still reads the highest watermark).
    #[serde(default)]
    pub since: Option<WatermarkValue>,
    /// Subtracted from `since`. None: `defaults::WATERMARK_OVERLAP` for a timestamp
    /// watermark, no overlap for an integer one.
    #[serde(default)]
    pub overlap: Option<Overlap>,
}

/// The watermark as planned: both columns, the kind, and the bound actually applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Source and target column; `kind` is `Integer` or `Timestamp { precision: 6 }`.
    pub column: ColumnPlan,
    pub since: Option<WatermarkValue>,
    pub overlap: Overlap,
    /// `since` minus the overlap: the inclusive lower bound of an incremental run.
    pub bound: Option<WatermarkValue>,
}

const SOURCE_FIX: &str =
    "--watermark names a source column (an integer version or an updated-at timestamp)";
const TARGET_FIX: &str = "the target's watermark column has the source's name or its --map name";

fn bad(column: &str, reason: String) -> VerifyError {
    VerifyError::BadWatermark {
        column: column.to_string(),
        reason,
    }
}

fn family_name(f: &Family) -> &'static str {
    match f {
        Family::Integer { .. } => "an integer",
        Family::Decimal { .. } => "a decimal",
        Family::Float { .. } => "a float",
        Family::Bool => "a boolean",
        Family::Text => "text",
        Family::Bytes => "bytes",
        Family::Uuid(_) => "a UUID",
        Family::Date => "a date",
        Family::Time { .. } => "a time of day",
        Family::Timestamp { .. } => "a timestamp",
        Family::Json => "JSON",
        Family::Other => "a type verify does not read",
    }
}

/// Plans the job's watermark (None without one), or the error that names what to change.
pub fn resolve(
    job: &Job,
    src_cols: &[Column],
    tgt_cols: &[Column],
    engines: (Engine, Engine),
) -> Result<Option<Window>, VerifyError> {
    let Some(w) = &job.watermark else {
        return Ok(None);
    };
    let name = w.column.as_str();
    let list = |cols: &[Column]| {
        cols.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing =
        |side: Side, column: &str, table: &str, cols: &[Column], fix| VerifyError::ColumnNotFound {
            side,
            table: table.to_string(),
            column: column.to_string(),
            role: "--watermark",
            available: list(cols),
            fix,
        };
    let src = src_cols
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| missing(Side::Source, name, &job.source.table, src_cols, SOURCE_FIX))?;
    let tname = job.target_name(name);
    let tgt = tgt_cols
        .iter()
        .find(|c| c.name == tname)
        .ok_or_else(|| missing(Side::Target, tname, &job.target.table, tgt_cols, TARGET_FIX))?;
    let kind = match (&src.family, &tgt.family) {
        (Family::Integer { .. }, Family::Integer { .. }) => Kind::Integer,
        (Family::Timestamp { .. }, Family::Timestamp { .. }) => Kind::Timestamp { precision: 6 },
        (s, t) => {
            let (which, side_col, f) =
                if matches!(s, Family::Integer { .. } | Family::Timestamp { .. }) {
                    ("target", tgt, t)
                } else {
                    ("source", src, s)
                };
            let reason = if s != t
                && matches!(s, Family::Integer { .. } | Family::Timestamp { .. })
                && matches!(t, Family::Integer { .. } | Family::Timestamp { .. })
            {
                format!(
                    "it is {} on the source ({}) and {} on the target ({}); both sides must \
                     hold the same kind of watermark",
                    family_name(s),
                    src.declared,
                    family_name(t),
                    tgt.declared
                )
            } else {
                format!(
                    "the {which} column `{}` is {} ({}), which cannot order writes in time; a \
                     watermark is an integer (a version or sequence number) or a timestamp \
                     (updated_at) on both sides",
                    side_col.name,
                    family_name(f),
                    side_col.declared
                )
            };
            return Err(bad(name, reason));
        }
    };
    if kind != Kind::Integer {
        for (side, engine, col) in [
            (Side::Source, engines.0, src),
            (Side::Target, engines.1, tgt),
        ] {
            if engine == Engine::Sqlite {
                return Err(bad(
                    name,
                    format!(
                        "the {side} is SQLite, whose `{}` ({}) stores timestamps as text or \
                         numbers that SQL cannot compare exactly; a SQLite watermark must be an \
                         INTEGER column (a version, or unix microseconds)",
                        col.name, col.declared
                    ),
                ));
            }
        }
    }
    let overlap = w.overlap.unwrap_or(match kind {
        Kind::Integer => Overlap::Count(0),
        _ => Overlap::Time(defaults::WATERMARK_OVERLAP),
    });
    let sample = match kind {
        Kind::Integer => WatermarkValue::Integer(0),
        _ => WatermarkValue::Time(0),
    };
    sample.minus(overlap).map_err(|m| bad(name, m))?;
    if let Some(since) = w.since {
        if since.kind() != sample.kind() {
            return Err(bad(
                name,
                format!(
                    "--changed-since {since} is {} {}, but the watermark `{name}` is {} ({}): \
                     give {}",
                    if since.kind() == "integer" { "an" } else { "a" },
                    since.kind(),
                    family_name(&src.family),
                    src.declared,
                    match kind {
                        Kind::Integer => "an integer (e.g. --changed-since 120345)",
                        _ => "a time (2026-12-07T10:00:00Z) or a duration (15m)",
                    }
                ),
            ));
        }
    }
    let bound = match w.since {
        Some(since) => Some(since.minus(overlap).map_err(|m| bad(name, m))?),
        None => None,
    };
    Ok(Some(Window {
        column: ColumnPlan {
            source: src.clone(),
            target: tgt.clone(),
            kind,
            tolerance: None,
            expr: None,
        },
        since: w.since,
        overlap,
        bound,
    }))
}

impl Window {
    /// The condition `column >= bound` on one side, with the bound as a literal of the
    /// column's own type (so that an index on the column serves it). None in a full run.
    pub fn predicate(&self, side: Side, engine: Engine) -> Option<String> {
        let bound = self.bound?;
        let col = self.column.column(side);
        let ident = quote_ident(engine, &col.name);
        let literal = match bound {
            WatermarkValue::Integer(n) => n.to_string(),
            WatermarkValue::Time(u) => {
                let text = civil::format_timestamp(u, 6);
                match (engine, &col.family) {
                    (Engine::Postgres, Family::Timestamp { tz: true, .. }) => {
                        format!("TIMESTAMPTZ '{text}+00'")
                    }
                    (Engine::Postgres, _) => format!("TIMESTAMP '{text}'"),
                    // Sessions run with time_zone '+00:00': a TIMESTAMP column compares in UTC.
                    _ => format!("CAST('{text}' AS DATETIME(6))"),
                }
            }
        };
        Some(format!("{ident} >= {literal}"))
    }

    /// The canonical text of the column's highest value on one side (integer digits, or
    /// microseconds since the epoch), as a select-list expression.
    pub fn high_expr(&self, side: Side, engine: Engine, info: &ServerInfo) -> String {
        let col = self.column.column(side);
        let max = format!("max({})", quote_ident(engine, &col.name));
        match engine {
            Engine::Sqlite => max,
            _ => sql::canon(
                engine,
                info,
                col,
                &self.column,
                crate::canon::Purpose::Value,
                &max,
            ),
        }
    }

    /// Reads the canonical text of a side's highest value back.
    pub fn parse_high(
        &self,
        side: Side,
        text: Option<&str>,
    ) -> Result<Option<WatermarkValue>, VerifyError> {
        let Some(text) = text else { return Ok(None) };
        let n: i64 = text.trim().parse().map_err(|_| VerifyError::BadWatermark {
            column: self.column.source.name.clone(),
            reason: format!(
                "the {side}'s highest value of `{}` is `{text}`, not a finite {}",
                self.column.column(side).name,
                match self.column.kind {
                    Kind::Integer => "integer",
                    _ => "timestamp",
                }
            ),
        })?;
        Ok(Some(match self.column.kind {
            Kind::Integer => WatermarkValue::Integer(n),
            _ => WatermarkValue::Time(n),
        }))
    }

    /// The next run's watermark from each side's highest value: the lower of the two (a
    /// side whose clock or writes lag decides, so nothing written on it is skipped), never
    /// below what this run started from.
    pub fn next(
        &self,
        src: Option<WatermarkValue>,
        tgt: Option<WatermarkValue>,
    ) -> Option<WatermarkValue> {
        let seen = match (src, tgt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (seen, self.since) {
            (Some(s), Some(since)) => Some(s.max(since)),
            (s, since) => s.or(since),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_and_parse_back() {
        let t: WatermarkValue = "2026-12-07T10:00:00Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-12-07T10:00:00Z");
        let t2: WatermarkValue = "2026-12-07 11:00:00.25+01:00".parse().unwrap();
        assert_eq!(t2.to_string(), "2026-12-07T10:00:00.250000Z");
        assert_eq!(t2.to_string().parse::<WatermarkValue>().unwrap(), t2);
        assert_eq!("120345".parse(), Ok(WatermarkValue::Integer(120_345)));
        assert_eq!("-3".parse(), Ok(WatermarkValue::Integer(-3)));
        assert!("15m".parse::<WatermarkValue>().is_err());
        assert!("99999999999999999999".parse::<WatermarkValue>().is_err());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-12-07T10:00:00Z\"");
        assert_eq!(serde_json::from_str::<WatermarkValue>(&json).unwrap(), t);
    }

    #[test]
    fn overlaps_match_their_watermark() {
        assert_eq!("5s".parse(), Ok(Overlap::Time(Duration::from_secs(5))));
        assert_eq!("100".parse(), Ok(Overlap::Count(100)));
        assert_eq!("1500ms".parse::<Overlap>().unwrap().to_string(), "1500ms");
        assert_eq!(Overlap::Time(Duration::from_secs(120)).to_string(), "2m");
        assert!("5 s".parse::<Overlap>().is_err() && "5d".parse::<Overlap>().is_err());
        let t = WatermarkValue::Time(10_000_000);
        assert_eq!(
            t.minus(Overlap::Time(Duration::from_secs(5))),
            Ok(WatermarkValue::Time(5_000_000))
        );
        assert_eq!(t.minus(Overlap::Count(0)), Ok(t));
        assert!(t.minus(Overlap::Count(3)).unwrap_err().contains("duration"));
        let n = WatermarkValue::Integer(10);
        assert_eq!(n.minus(Overlap::Count(3)), Ok(WatermarkValue::Integer(7)));
        assert!(n
            .minus(Overlap::Time(Duration::from_secs(1)))
            .unwrap_err()
            .contains("count"));
    }
}
