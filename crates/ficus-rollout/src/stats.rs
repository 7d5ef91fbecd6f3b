//! Statistics for the judge: always-valid bounds on a proportion, the Mann-Whitney U test and
//! quantiles on bucketed latency histograms. Plain `f64` arithmetic that returns finite
//! numbers for every input (counts arrive as `f64` so that sums of huge `u64`s cannot
//! overflow).
//!
//! # Always-valid bounds on a proportion (Robbins' beta-binomial mixture)
//!
//! The judge is asked again at every controller tick, so a fixed-sample confidence interval
//! (Wilson, Clopper-Pearson) would be checked dozens of times per step and its false-alarm
//! rate would grow with every look. A *confidence sequence* is valid at every sample size at
//! once: with probability at least `1 - alpha` it contains the true rate at **all** times, so
//! it may be checked as often as one likes and the moment it excludes the limit is a valid
//! stopping time.
//!
//! After `n` trials with `s` successes (errors) and `f = n - s`, the mixture of the
//! likelihood ratios against every alternative rate, weighted by a Beta(a, a) prior, is
//!
//! ```text
//! M_n(q) = B(a + s, a + f) / B(a, a) / (q^s (1 - q)^f)
//! ```
//!
//! For the true rate `q = p`, `M_n(p)` is a nonnegative martingale with `M_0 = 1`, so by
//! Ville's inequality `P(exists n: M_n(p) >= 1/alpha) <= alpha`. The confidence sequence is
//! `{q : M_n(q) < 1/alpha}`, an interval around `s/n` because `ln M_n` is convex in `q`; its
//! ends are found by bisection. We use the Jeffreys prior `a = 1/2`: it is symmetric (so the
//! upper bound is the mirrored lower bound) and keeps enough mass near 0 for the small rates
//! the judge mostly sees.
//!
//! The statistic depends on `(n, s)` only, so a stateless judge computes it exactly from the
//! cumulative counts of the step; the controller does not have to remember anything.
//!
//! Why not Wald's SPRT: it needs a fixed null rate and a chosen alternative, but our null
//! (the limit) is itself estimated from legacy and moves every tick, and an alternative far
//! from the true rate detects slowly. The mixture adapts to whatever the rate is, and its
//! bounds can be combined with legacy's own bound by a union bound (see `judge`).
//!
//! # Mann-Whitney U on histograms
//!
//! All values in one bucket are tied. With `m_b` modern and `l_b` legacy counts in bucket `b`
//! (ascending latency), `n1 = sum m`, `n2 = sum l`, `N = n1 + n2`, `t_b = m_b + l_b`:
//!
//! ```text
//! U     = sum_b m_b * (legacy count below b + l_b / 2)      pairs where modern is slower
//! mu    = n1 n2 / 2
//! sigma = sqrt(n1 n2 / 12 * ((N + 1) - sum_b (t_b^3 - t_b) / (N (N - 1))))
//! z     = sign(U - mu) * max(|U - mu| - 1/2, 0) / sigma      (continuity correction)
//! p     = P(Z >= z)                                          one-sided: modern slower
//! ```
//!
//! which is the mid-rank form with the usual tie correction. Identical histograms give
//! `U = mu`, `z = 0`, `p = 1/2`; a zero `sigma` (every value in one bucket) means no
//! evidence either way and gives the same.

use std::f64::consts::{PI, SQRT_2};

/// Parameter `a` of the Beta(a, a) mixing prior (Jeffreys).
const PRIOR: f64 = 0.5;

/// Bisection steps for the bounds: 2^-80 of the search interval, far below any rate that
/// matters.
const BISECTION_STEPS: u32 = 80;

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms, relative error about 1e-15).
///
/// Hand-written because `f64::ln_gamma` is not stable and none of the workspace's crates
/// offers it; this is the textbook approximation.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let series = C
        .iter()
        .enumerate()
        .skip(1)
        .fold(C[0], |acc, (i, c)| acc + c / (x + i as f64));
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// `ln M_n(q)` without the constant part `c = ln B(a+s, a+f) - ln B(a, a)`; terms with a
/// zero count are skipped so that `0 * ln 0` never makes a NaN.
fn ln_mixture(c: f64, s: f64, f: f64, q: f64) -> f64 {
    let mut v = c;
    if s > 0.0 {
        v -= s * q.ln();
    }
    if f > 0.0 {
        v -= f * (-q).ln_1p();
    }
    v
}

/// Lower end of the always-valid `1 - alpha` confidence sequence for a proportion after
/// `successes` of `trials` (module doc). 0 without successes, and 0 (the conservative answer)
/// whenever the inputs or the arithmetic are not finite.
pub(crate) fn lower_bound(successes: f64, trials: f64, alpha: f64) -> f64 {
    if !(trials > 0.0 && trials.is_finite() && successes > 0.0 && alpha > 0.0 && alpha < 1.0) {
        return 0.0;
    }
    let s = successes.min(trials);
    let f = trials - s;
    let c = ln_beta(PRIOR + s, PRIOR + f) - ln_beta(PRIOR, PRIOR);
    let threshold = -alpha.ln();
    let estimate = s / trials;
    if !c.is_finite() || ln_mixture(c, s, f, estimate) >= threshold {
        return 0.0;
    }
    // ln M decreases on (0, estimate]: keep `lo` outside the sequence, `hi` inside.
    let (mut lo, mut hi) = (0.0f64, estimate);
    for _ in 0..BISECTION_STEPS {
        let mid = lo + (hi - lo) / 2.0;
        if ln_mixture(c, s, f, mid) >= threshold {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // `lo` is excluded by the sequence, so it is never above the exact bound.
    lo
}

/// Upper end of the same sequence: the mirror of the lower end (the prior is symmetric).
/// 1 without trials.
pub(crate) fn upper_bound(successes: f64, trials: f64, alpha: f64) -> f64 {
    if !(trials > 0.0 && trials.is_finite()) {
        return 1.0;
    }
    let s = successes.clamp(0.0, trials);
    1.0 - lower_bound(trials - s, trials, alpha)
}

/// `P(Z >= z)` for a standard normal `Z`.
pub(crate) fn normal_upper_tail(z: f64) -> f64 {
    // Exactly one half at 0 (the fit is off by 1.5e-8 there), so that a tie reads as one.
    if z.is_nan() || z == 0.0 {
        return 0.5;
    }
    (0.5 * erfc(z / SQRT_2)).clamp(0.0, 1.0)
}

/// Complementary error function, fractional error below 1.2e-7 everywhere (the Chebyshev
/// fit from Numerical Recipes, `erfcc`): ample for comparing p-values with alpha.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Result of the one-sided Mann-Whitney test "modern is slower than legacy".
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RankTest {
    /// Modern sample size.
    pub n1: f64,
    /// Legacy sample size.
    pub n2: f64,
    /// Pairs (modern, legacy) where modern is slower, ties counting one half.
    pub u: f64,
    pub z: f64,
    pub p_value: f64,
}

/// Mann-Whitney U of two histograms with the same bucket layout (module doc). Buckets
/// missing from the shorter histogram count as empty.
#[cfg(test)]
pub(crate) fn mann_whitney(modern: &[u64], legacy: &[u64]) -> RankTest {
    let legacy: Vec<f64> = legacy.iter().map(|c| *c as f64).collect();
    mann_whitney_raised(modern, &legacy)
}

/// [`mann_whitney`] against a legacy histogram with fractional counts (from [`raised`]).
/// A bucket holding less than one value in all contributes no tie correction (`t^3 - t`
/// would be negative).
pub(crate) fn mann_whitney_raised(modern: &[u64], legacy: &[f64]) -> RankTest {
    let len = modern.len().max(legacy.len());
    let (mut u, mut legacy_below, mut n1, mut n2, mut ties) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..len {
        let m = modern.get(i).copied().unwrap_or(0) as f64;
        let l = legacy.get(i).copied().unwrap_or(0.0);
        u += m * (legacy_below + l / 2.0);
        legacy_below += l;
        n1 += m;
        n2 += l;
        let t = m + l;
        ties += (t * t * t - t).max(0.0);
    }
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let var = if n > 1.0 {
        n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))
    } else {
        0.0
    };
    let d = u - mu;
    let z = if var > 0.0 && var.is_finite() && d.is_finite() {
        d.signum() * (d.abs() - 0.5).max(0.0) / var.sqrt()
    } else {
        0.0
    };
    let z = if z.is_finite() { z } else { 0.0 };
    RankTest {
        n1,
        n2,
        u: if u.is_finite() { u } else { mu },
        z,
        p_value: normal_upper_tail(z),
    }
}

/// The histogram of `x -> max(x * factor, x + delta_us)` applied to every value of `counts`,
/// on the same layout, with fractional counts: the values of a bucket are taken as spread
/// evenly over it (the rank test's assumption too), so its count is shared among the
/// buckets its image `[h(lo), h(hi))` overlaps, in proportion. The open last bucket, whose
/// values are only known to be at least its lower bound `lo`, moves whole to the bucket of
/// `h(lo)`. `factor = 1, delta_us = 0` gives `counts` back. The caller checks that
/// `lower_us` ascends and is at least as long as `counts`, `factor >= 1` and `delta_us >= 0`.
///
/// Moving each bucket whole to the bucket of its midpoint's image would be simpler, but
/// biased: with a fixed delta the image of every midpoint lands at the same place in its
/// target bucket (near its top, for 5 ms on ficus-telemetry's layout around 20 ms), and the
/// tie with modern's values then reads as "modern slower" about 1.3 % more often than it is,
/// enough to take the rank test far past its alpha at the edge of its null hypothesis
/// (`tests/simulation.rs`, `a_modern_exactly_at_the_practical_limit_rarely_rolls_back`).
pub(crate) fn raised(counts: &[u64], lower_us: &[u64], factor: f64, delta_us: f64) -> Vec<f64> {
    let len = lower_us.len();
    let mut out = vec![0.0f64; len];
    let image = |x: f64| (x * factor).max(x + delta_us);
    // `h` is linear on each side of the point where its two branches meet.
    let kink = if factor > 1.0 {
        delta_us / (factor - 1.0)
    } else {
        f64::INFINITY
    };
    let bucket_of = |y: f64| {
        lower_us
            .partition_point(|b| (*b as f64) <= y)
            .saturating_sub(1)
    };
    for (i, c) in counts.iter().enumerate().take(len) {
        let c = *c as f64;
        if c == 0.0 {
            continue;
        }
        let lo = lower_us[i] as f64;
        let Some(hi) = lower_us.get(i + 1).map(|v| *v as f64) else {
            out[bucket_of(image(lo)).max(i)] += c;
            continue;
        };
        let whole = [(lo, hi)];
        let split = [(lo, kink), (kink, hi)];
        let pieces: &[(f64, f64)] = if lo < kink && kink < hi {
            &split
        } else {
            &whole
        };
        for &(x0, x1) in pieces {
            let share = c * (x1 - x0) / (hi - lo);
            let (y0, y1) = (image(x0), image(x1));
            if !(y1 > y0 && y1.is_finite()) {
                // An image beyond what f64 holds is beyond the layout: the open last bucket.
                out[bucket_of(y0).max(i)] += share;
                continue;
            }
            let mut j = bucket_of(y0);
            loop {
                let b_lo = lower_us[j] as f64;
                let b_hi = lower_us.get(j + 1).map_or(f64::INFINITY, |v| *v as f64);
                let overlap = y1.min(b_hi) - y0.max(b_lo);
                if overlap > 0.0 {
                    // The fraction first: `share * overlap` can overflow.
                    out[j] += share * (overlap / (y1 - y0));
                }
                if b_hi >= y1 || j + 1 >= len {
                    break;
                }
                j += 1;
            }
        }
    }
    out
}

/// The `q` quantile (0..=1) of a histogram in microseconds, interpolating linearly inside
/// the bucket that holds it; `lower_us[i]` is the lower bound of bucket `i` and the last
/// bucket is open-ended, so a quantile that lands there is reported as its lower bound.
/// `None` without samples. The caller checks that `lower_us` ascends and is at least as
/// long as `counts`.
pub(crate) fn quantile_us(counts: &[u64], lower_us: &[u64], q: f64) -> Option<f64> {
    let total: f64 = counts.iter().map(|c| *c as f64).sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut below = 0.0;
    for (i, c) in counts.iter().enumerate() {
        let c = *c as f64;
        if c == 0.0 {
            continue;
        }
        if below + c >= rank {
            let lo = *lower_us.get(i)? as f64;
            let Some(hi) = lower_us.get(i + 1) else {
                return Some(lo);
            };
            let within = ((rank - below) / c).clamp(0.0, 1.0);
            return Some(lo + (*hi as f64 - lo) * within);
        }
        below += c;
    }
    // Only rounding can get here: the highest non-empty bucket holds the top rank.
    let last = counts.iter().rposition(|c| *c > 0)?;
    lower_us.get(last).map(|lo| *lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0f64;
        for n in 1..30u32 {
            // Γ(n + 1) = n!
            fact *= f64::from(n);
            let got = ln_gamma(f64::from(n) + 1.0);
            assert!((got - fact.ln()).abs() < 1e-10 * fact.ln().max(1.0), "{n}");
        }
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-12);
        assert!(ln_gamma(1e15).is_finite());
    }

    #[test]
    fn bounds_hold_the_estimate_and_narrow_with_data() {
        let (lo, hi) = (
            lower_bound(10.0, 100.0, 0.01),
            upper_bound(10.0, 100.0, 0.01),
        );
        assert!(lo < 0.1 && 0.1 < hi, "{lo} {hi}");
        assert!(lo > 0.02 && hi < 0.25, "not absurdly wide: {lo} {hi}");
        let (lo2, hi2) = (
            lower_bound(1000.0, 10_000.0, 0.01),
            upper_bound(1000.0, 10_000.0, 0.01),
        );
        assert!(lo < lo2 && lo2 < 0.1 && 0.1 < hi2 && hi2 < hi);
        // A smaller alpha widens.
        assert!(lower_bound(10.0, 100.0, 0.001) < lo);
    }

    #[test]
    fn bound_is_the_edge_of_the_sequence() {
        let (s, n, alpha) = (7.0, 40.0, 0.05);
        let lo = lower_bound(s, n, alpha);
        let c = ln_beta(PRIOR + s, PRIOR + n - s) - ln_beta(PRIOR, PRIOR);
        let m = |q: f64| ln_mixture(c, s, n - s, q);
        let threshold = -alpha.ln();
        assert!(m(lo) >= threshold, "lo is excluded");
        assert!(m(lo + 1e-9) < threshold, "just above lo is inside");
    }

    #[test]
    fn bounds_are_conservative_without_data() {
        assert_eq!(lower_bound(0.0, 0.0, 0.01), 0.0);
        assert_eq!(lower_bound(0.0, 1000.0, 0.01), 0.0);
        assert_eq!(upper_bound(0.0, 0.0, 0.01), 1.0);
        assert_eq!(upper_bound(5.0, 5.0, 0.01), 1.0);
        assert_eq!(lower_bound(f64::NAN, 10.0, 0.01), 0.0);
        assert_eq!(lower_bound(3.0, f64::INFINITY, 0.01), 0.0);
        assert!(upper_bound(0.0, 1000.0, 0.01) < 0.01);
        // Huge counts stay finite.
        let lo = lower_bound(1e18, 1e19, 0.01);
        assert!(lo.is_finite() && (0.0..=0.1).contains(&lo), "{lo}");
    }

    #[test]
    fn normal_tail() {
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_upper_tail(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_upper_tail(-2.326_348) - 0.99).abs() < 1e-6);
        assert_eq!(normal_upper_tail(f64::INFINITY), 0.0);
        assert_eq!(normal_upper_tail(f64::NEG_INFINITY), 1.0);
        assert_eq!(normal_upper_tail(f64::NAN), 0.5);
    }

    #[test]
    fn mann_whitney_hand_computed() {
        // Buckets 0..4. Modern: one value in bucket 1, two in bucket 2, one in bucket 3.
        // Legacy: one in bucket 0, one in bucket 1, one in bucket 2.
        // Pairs (modern, legacy), 1 when modern is slower, 1/2 on a tie:
        //   m=1: vs 0 -> 1, vs 1 -> 1/2, vs 2 -> 0          = 1.5
        //   m=2 (twice): vs 0 -> 1, vs 1 -> 1, vs 2 -> 1/2   = 2.5 each
        //   m=3: slower than all three                       = 3
        // U = 1.5 + 5 + 3 = 9.5 of n1 n2 = 12; mu = 6.
        // Mid-ranks of the 7 values: b0 -> 1; b1 (2 tied) -> 2.5; b2 (3 tied) -> 5; b3 -> 7.
        // Modern rank sum = 2.5 + 5 + 5 + 7 = 19.5; U = 19.5 - 4*5/2 = 9.5. Same.
        // Ties: t = 2 and 3 -> sum(t^3 - t) = 6 + 24 = 30.
        // var = 4*3/12 * (8 - 30/42) = 7.285714..., sigma = 2.699206...
        // z = (3.5 - 0.5) / sigma = 1.111438..., p = 0.13319...
        let t = mann_whitney(&[0, 1, 2, 1], &[1, 1, 1, 0]);
        assert_eq!((t.n1, t.n2, t.u), (4.0, 3.0, 9.5));
        assert!((t.z - 3.0 / (7.285_714_285_714_286f64).sqrt()).abs() < 1e-12);
        assert!((t.z - 1.111_438).abs() < 1e-6, "{}", t.z);
        assert!((t.p_value - 0.133_19).abs() < 1e-4, "{}", t.p_value);
    }

    #[test]
    fn mann_whitney_ties_and_empty() {
        let h = [0, 5, 10, 3, 0, 1];
        let t = mann_whitney(&h, &h);
        assert_eq!(t.u, t.n1 * t.n2 / 2.0);
        assert_eq!((t.z, t.p_value), (0.0, 0.5));
        // Everything in one bucket: sigma is zero, no evidence.
        let t = mann_whitney(&[0, 7], &[0, 9]);
        assert_eq!((t.u, t.z, t.p_value), (31.5, 0.0, 0.5));
        let t = mann_whitney(&[], &[]);
        assert_eq!((t.u, t.z, t.p_value), (0.0, 0.0, 0.5));
        let t = mann_whitney(&[3], &[]);
        assert_eq!((t.u, t.z, t.p_value), (0.0, 0.0, 0.5));
        // Different lengths: missing buckets are empty.
        assert_eq!(mann_whitney(&[1, 1], &[1]), mann_whitney(&[1, 1], &[1, 0]));
    }

    #[test]
    fn mann_whitney_direction() {
        let slow = mann_whitney(&[0, 0, 0, 50], &[50, 0, 0, 0]);
        assert_eq!(slow.u, 2500.0);
        assert!(slow.z > 8.0 && slow.p_value < 1e-12);
        let fast = mann_whitney(&[50, 0, 0, 0], &[0, 0, 0, 50]);
        assert_eq!(fast.u, 0.0);
        assert!(fast.z < -8.0 && fast.p_value > 1.0 - 1e-12);
    }

    #[test]
    fn raising_spreads_each_bucket_over_its_image() {
        let lower = [0, 10, 20, 40, 80];
        let h = [1, 2, 3, 4, 5];
        // Identity: nothing moves (padded to the layout).
        assert_eq!(raised(&h, &lower, 1.0, 0.0), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(raised(&[1, 2], &lower, 1.0, 0.0), [1.0, 2.0, 0.0, 0.0, 0.0]);
        // +10 us: [0, 10) -> [10, 20); [10, 20) -> [20, 30); [20, 40) -> [30, 50), half in
        // [20, 40), half in [40, 80); [40, 80) -> [50, 90), 3/4 in [40, 80), 1/4 in the open
        // bucket; the open bucket's lower bound 80 -> 90.
        assert_eq!(raised(&h, &lower, 1.0, 10.0), [0.0, 1.0, 3.5, 4.5, 6.0]);
        // x2 or +5, whichever is larger: they meet at 5, so [0, 5) -> [5, 10) and [5, 10) ->
        // [10, 20): half of bucket 0 stays, half moves up.
        assert_eq!(raised(&[2], &lower, 2.0, 5.0), [1.0, 1.0, 0.0, 0.0, 0.0]);
        // x3 with a small delta: the ratio wins above 0.5 us.
        let r = raised(&[0, 0, 4], &lower, 3.0, 1.0);
        // [20, 40) -> [60, 120): 20/60 in [40, 80), 40/60 in the open bucket.
        assert!(
            (r[3] - 4.0 / 3.0).abs() < 1e-12 && (r[4] - 8.0 / 3.0).abs() < 1e-12,
            "{r:?}"
        );
        // Every count is kept, and huge shifts land in the open last bucket.
        assert_eq!(raised(&h, &lower, 1.0, 1e12), [0.0, 0.0, 0.0, 0.0, 15.0]);
        assert_eq!(raised(&[], &lower, 1.5, 5.0), [0.0; 5]);
        // Absurd but valid limits stay finite: nothing overflows into a NaN.
        for (factor, delta) in [(9e303, 0.0), (1.0, 1e308), (f64::MAX, f64::MAX)] {
            let r = raised(&[3, 0, 0, 0, 7], &lower, factor, delta);
            let total: f64 = r.iter().sum();
            assert_eq!(total, 10.0, "{factor} {delta}: {r:?}");
        }
        let total: f64 = raised(&h, &lower, 1.37, 13.0).iter().sum();
        assert!((total - 15.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn the_rank_test_against_identity_is_the_plain_one() {
        let lower = [0, 10, 20, 40, 80];
        let (m, l) = ([0, 1, 2, 1, 0], [1, 1, 1, 0, 0]);
        assert_eq!(
            mann_whitney_raised(&m, &raised(&l, &lower, 1.0, 0.0)),
            mann_whitney(&m, &l)
        );
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let lower = [0, 10, 20, 40];
        // 100 samples: 50 in [10, 20), 50 in [20, 40).
        let h = [0, 50, 50, 0];
        assert_eq!(quantile_us(&h, &lower, 0.5), Some(20.0));
        assert_eq!(quantile_us(&h, &lower, 0.25), Some(15.0));
        assert_eq!(quantile_us(&h, &lower, 0.99), Some(20.0 + 20.0 * 0.98));
        assert_eq!(quantile_us(&h, &lower, 0.0), Some(10.0));
        // The open last bucket reports its lower bound.
        assert_eq!(quantile_us(&[0, 0, 0, 9], &lower, 0.99), Some(40.0));
        assert_eq!(quantile_us(&[0, 0, 0, 0], &lower, 0.5), None);
        assert_eq!(quantile_us(&[], &lower, 0.5), None);
    }
}
