//! When each replayed request is due: pure arithmetic over the recorded timestamps.
//!
//! A replay is open loop: request `i` is sent at `start + offsets[i]` whether or not earlier
//! ones have answered, and its latency is measured from that moment, so a slow target shows
//! as latency instead of as a slower send rate (no coordinated omission).
use std::time::Duration;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The recorded gaps (each capped at `max_gap`).
    AsRecorded,
    /// The recorded gaps divided by this factor (2.0: twice as fast).
    Speed(f64),
    /// Evenly spaced at this many requests per second, whatever the recording's timing.
    Rate(f64),
    /// Evenly spaced at a rate rising linearly from `from` to `to` per second over `over`,
    /// then staying at `to`.
    Ramp { from: f64, to: f64, over: Duration },
}

impl Pace {
    /// Parses the CLI's spellings: `as-recorded`, `3x`, `500/s`, `100/s..2000/s over 60s`
    /// (the caller passes the ramp's duration separately as `over`).
    pub fn parse_speed(s: &str) -> Result<Pace, String> {
        let n = s
            .strip_suffix('x')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n > 0.0 && *n <= 1000.0)
            .ok_or_else(|| {
                format!("--speed {s:?}: a factor such as 2x or 0.5x (above 0, at most 1000x)")
            })?;
        Ok(Pace::Speed(n))
    }

    /// `500/s` (or `500`).
    pub fn parse_rate(s: &str) -> Result<f64, String> {
        s.trim()
            .strip_suffix("/s")
            .unwrap_or(s.trim())
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r > 0.0 && *r <= 10_000_000.0)
            .ok_or_else(|| format!("{s:?}: a rate such as 500/s (above 0, at most 10,000,000/s)"))
    }

    /// `100/s..2000/s`.
    pub fn parse_ramp(s: &str, over: Duration) -> Result<Pace, String> {
        let (a, b) = s
            .split_once("..")
            .ok_or_else(|| format!("--ramp {s:?}: FROM/s..TO/s, e.g. 100/s..2000/s"))?;
        if over.is_zero() {
            return Err("--ramp needs --over D (the ramp's length), more than 0".into());
        }
        Ok(Pace::Ramp {
            from: Pace::parse_rate(a)?,
            to: Pace::parse_rate(b)?,
            over,
        })
    }
}

/// The offsets from the replay's start at which the requests recorded at `at_ns` (in
/// recorded order, not necessarily sorted) are due. Recorded gaps longer than `max_gap`
/// count as `max_gap` (an idle night does not stall a replay); a negative gap (records out
/// of order across nodes) counts as 0.
pub fn offsets(at_ns: &[u64], pace: Pace, max_gap: Option<Duration>) -> Vec<Duration> {
    let cap = max_gap.map_or(u64::MAX, |g| g.as_nanos().min(u128::from(u64::MAX)) as u64);
    match pace {
        Pace::AsRecorded | Pace::Speed(_) => {
            let factor = match pace {
                Pace::Speed(f) => f,
                _ => 1.0,
            };
            let mut out = Vec::with_capacity(at_ns.len());
            let mut t: u64 = 0;
            for (i, at) in at_ns.iter().enumerate() {
                if i > 0 {
                    t = t.saturating_add(at.saturating_sub(at_ns[i - 1]).min(cap));
                }
                out.push(Duration::from_nanos((t as f64 / factor) as u64));
            }
            out
        }
        Pace::Rate(r) => (0..at_ns.len())
            .map(|i| Duration::from_secs_f64(i as f64 / r))
            .collect(),
        Pace::Ramp { from, to, over } => {
            let t_ramp = over.as_secs_f64();
            let slope = (to - from) / t_ramp;
            // Requests sent by time t: from*t + slope*t²/2 while ramping.
            let ramped = from * t_ramp + slope * t_ramp * t_ramp / 2.0;
            (0..at_ns.len())
                .map(|i| {
                    let n = i as f64;
                    let t = if n <= ramped {
                        if slope.abs() < 1e-12 {
                            n / from
                        } else {
                            // slope/2 t² + from t - n = 0
                            (-from + (from * from + 2.0 * slope * n).max(0.0).sqrt()) / slope
                        }
                    } else {
                        t_ramp + (n - ramped) / to
                    };
                    Duration::from_secs_f64(t.max(0.0))
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn as_recorded_keeps_gaps_caps_long_ones_and_speed_divides() {
        let at = [10 * S, 10 * S + S / 2, 12 * S, 3600 * S, 3600 * S + S];
        let o = offsets(&at, Pace::AsRecorded, Some(Duration::from_secs(5)));
        let ms: Vec<u128> = o.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 500, 2000, 7000, 8000]);
        let o = offsets(&at, Pace::Speed(2.0), Some(Duration::from_secs(5)));
        let ms: Vec<u128> = o.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 250, 1000, 3500, 4000]);
        // Out of order across nodes: no negative gap.
        let o = offsets(&[5 * S, 4 * S, 6 * S], Pace::AsRecorded, None);
        assert_eq!(o, [Duration::ZERO, Duration::ZERO, Duration::from_secs(2)]);
    }

    #[test]
    fn a_rate_spaces_evenly_and_a_ramp_accelerates() {
        let at = vec![0u64; 1001];
        let o = offsets(&at, Pace::Rate(500.0), None);
        assert_eq!(o[500], Duration::from_secs(1));
        assert_eq!(o[1000], Duration::from_secs(2));
        // 100/s rising to 300/s over 10 s: 2,000 requests in the ramp, then 300/s.
        let at = vec![0u64; 2601];
        let o = offsets(
            &at,
            Pace::Ramp {
                from: 100.0,
                to: 300.0,
                over: Duration::from_secs(10),
            },
            None,
        );
        assert!((o[2000].as_secs_f64() - 10.0).abs() < 1e-6, "{:?}", o[2000]);
        assert!((o[2600].as_secs_f64() - 12.0).abs() < 1e-6, "{:?}", o[2600]);
        // At the start the gap is 1/100 s, at the end of the ramp 1/300 s.
        let first = (o[1] - o[0]).as_secs_f64();
        let last = (o[2000] - o[1999]).as_secs_f64();
        assert!((first - 0.01).abs() < 0.0005, "{first}");
        assert!((last - 1.0 / 300.0).abs() < 0.0002, "{last}");
        // A flat ramp is a rate.
        let o = offsets(
            &[0u64; 11],
            Pace::Ramp {
                from: 10.0,
                to: 10.0,
                over: Duration::from_secs(5),
            },
            None,
        );
        assert_eq!(o[10], Duration::from_secs(1));
    }

    #[test]
    fn the_cli_spellings_parse_or_say_what_they_want() {
        assert_eq!(Pace::parse_speed("3x"), Ok(Pace::Speed(3.0)));
        assert_eq!(Pace::parse_speed("0.5x"), Ok(Pace::Speed(0.5)));
        assert!(Pace::parse_speed("3").unwrap_err().contains("2x"));
        assert!(Pace::parse_speed("0x").is_err());
        assert_eq!(Pace::parse_rate("500/s"), Ok(500.0));
        assert_eq!(Pace::parse_rate("500"), Ok(500.0));
        assert!(Pace::parse_rate("-1/s").is_err());
        assert_eq!(
            Pace::parse_ramp("100/s..2000/s", Duration::from_secs(60)),
            Ok(Pace::Ramp {
                from: 100.0,
                to: 2000.0,
                over: Duration::from_secs(60)
            })
        );
        assert!(Pace::parse_ramp("100/s", Duration::from_secs(1)).is_err());
        assert!(Pace::parse_ramp("1/s..2/s", Duration::ZERO).is_err());
    }
}
