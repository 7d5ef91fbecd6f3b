//! Noise filtering: deciding whether a field's legacy-vs-modern difference rate is a real
//! regression or the same noise legacy shows against itself (Diffy's approach).
//!
//! For a field (or an endpoint) with
//! - `raw   = differing / compared`, the rate at which legacy and modern differ there, and
//! - `noise = noise_differing / noise_compared`, the rate at which two legacy answers to the
//!   same request differ there (0 when nothing was noise-sampled yet),
//!
//! the difference is **real** iff
//!
//! ```text
//! raw > 0  and  raw - noise > absolute  and  raw - noise > relative * raw
//! ```
//!
//! and **noise** otherwise (when it differs at all). The absolute threshold keeps tiny
//! rates from counting; the relative one asks that most of the observed rate is not
//! explained by legacy's own variability. With the defaults (20 %, 0.03 %): 10 % vs 0 % is
//! real, 100 % vs 100 % is noise (request ids, timestamps), 100 % vs 95 % is noise (the 5 %
//! gap is within a fifth of the raw rate).
//!
//! Until legacy has been noise-sampled, every difference looks real: that errs on the side of
//! showing things.

use serde::{Deserialize, Serialize};

/// Thresholds of the noise filter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// The part of the raw rate that must not be explained by noise (0.20 = 20 %).
    pub relative: f64,
    /// The minimum rate above noise, as a fraction (0.0003 = 0.03 %).
    pub absolute: f64,
}

impl Default for Thresholds {
    /// Diffy's defaults: 20 % relative, 0.03 % absolute.
    fn default() -> Self {
        Thresholds {
            relative: 0.20,
            absolute: 0.0003,
        }
    }
}

/// Counts behind one verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Legacy-vs-modern comparisons.
    pub compared: u64,
    /// ... of which differed here.
    pub differing: u64,
    /// Legacy-vs-legacy comparisons.
    pub noise_compared: u64,
    /// ... of which differed here.
    pub noise_differing: u64,
}

impl Rates {
    /// `differing / compared`, 0 when nothing was compared.
    pub fn raw(&self) -> f64 {
        ratio(self.differing, self.compared)
    }

    /// `noise_differing / noise_compared`, 0 when nothing was noise-sampled.
    pub fn noise(&self) -> f64 {
        ratio(self.noise_differing, self.noise_compared)
    }
}

pub(crate) fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// What a difference rate means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Modern differs from legacy beyond legacy's own noise.
    Real,
    /// Differs, but no more than legacy differs from itself.
    Noise,
    /// Never differed.
    Equal,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Real => "real",
            Verdict::Noise => "noise",
            Verdict::Equal => "equal",
        }
    }
}

/// Classifies a rate against legacy's own noise (formula in the module doc).
pub fn classify(r: &Rates, t: &Thresholds) -> Verdict {
    if r.differing == 0 || r.compared == 0 {
        return Verdict::Equal;
    }
    let raw = r.raw();
    let gap = raw - r.noise();
    if raw > 0.0 && gap > t.absolute && gap > t.relative * raw {
        Verdict::Real
    } else {
        Verdict::Noise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(compared: u64, differing: u64, noise_compared: u64, noise_differing: u64) -> Rates {
        Rates {
            compared,
            differing,
            noise_compared,
            noise_differing,
        }
    }

    #[test]
    fn classify_table() {
        let t = Thresholds::default();
        let table = [
            // 10 % vs 0 %: real
            (rates(1000, 100, 200, 0), Verdict::Real),
            // 100 % in both: noise
            (rates(1000, 1000, 200, 200), Verdict::Noise),
            // 100 % vs 95 %: noise
            (rates(1000, 1000, 200, 190), Verdict::Noise),
            // 100 % vs 70 %: 30 % above noise, more than a fifth of 100 %: real
            (rates(1000, 1000, 200, 140), Verdict::Real),
            // nothing differs
            (rates(1000, 0, 200, 50), Verdict::Equal),
            (rates(0, 0, 0, 0), Verdict::Equal),
            // not noise-sampled yet: counts as real
            (rates(1000, 10, 0, 0), Verdict::Real),
            // 0.02 % is below the absolute threshold
            (rates(10_000, 2, 0, 0), Verdict::Noise),
            // 0.04 % is above it
            (rates(10_000, 4, 0, 0), Verdict::Real),
            // noise above raw
            (rates(1000, 100, 100, 50), Verdict::Noise),
        ];
        for (r, want) in table {
            assert_eq!(classify(&r, &t), want, "{r:?}");
        }
    }

    #[test]
    fn thresholds_are_used() {
        let strict = Thresholds {
            relative: 0.0,
            absolute: 0.0,
        };
        assert_eq!(
            classify(&rates(1000, 1000, 200, 190), &strict),
            Verdict::Real
        );
        let lax = Thresholds {
            relative: 0.95,
            absolute: 0.0,
        };
        assert_eq!(classify(&rates(1000, 100, 200, 0), &lax), Verdict::Real);
        assert_eq!(classify(&rates(1000, 100, 200, 2), &lax), Verdict::Noise);
    }

    #[test]
    fn verdict_serializes_lowercase() {
        assert_eq!(serde_json::to_string(&Verdict::Real).unwrap(), "\"real\"");
        assert_eq!(Verdict::Noise.as_str(), "noise");
    }
}
