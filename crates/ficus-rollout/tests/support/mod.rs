//! Test support: ficus-telemetry's fine bucket layout, histograms built from latencies, a
//! seeded xorshift generator (no rand crate needed) and a check that evidence holds no NaN.
#![allow(dead_code)]

use ficus_rollout::{Observed, SideWindow, Verdict, Window};
use std::time::Duration;

/// ficus-telemetry's fine buckets (16 linear, then 8 per power of two up to 2^36 us),
/// copied rather than depended on: the judge takes any ascending layout, and the tests
/// should use the one it will really see.
const LINEAR: u64 = 16;
const SUB_BITS: u32 = 3;
const MAX_EXP: u32 = 36;
pub const FINE_BUCKETS: usize = LINEAR as usize + ((MAX_EXP - 4 + 1) << SUB_BITS) as usize;

pub fn fine_lower_us(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let k = (i - LINEAR as usize) as u32;
    let exp = (k >> SUB_BITS) + 4;
    let sub = u64::from(k & ((1 << SUB_BITS) - 1));
    ((1 << SUB_BITS) + sub) << (exp - SUB_BITS)
}

pub fn fine_index(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = (63 - us.leading_zeros()).min(MAX_EXP);
    if exp == MAX_EXP && us >= (1u64 << (MAX_EXP + 1)) {
        return FINE_BUCKETS - 1;
    }
    let sub = (us >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + (((exp - 4) << SUB_BITS) as usize) + sub as usize
}

pub fn layout() -> Vec<u64> {
    (0..FINE_BUCKETS).map(fine_lower_us).collect()
}

/// A dense histogram of latencies in microseconds.
pub fn histogram(latencies_us: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut h = vec![0; FINE_BUCKETS];
    for us in latencies_us {
        h[fine_index(us)] += 1;
    }
    h
}

/// `n` latencies spread evenly over `[from_us, to_us)`.
pub fn spread(n: u64, from_us: u64, to_us: u64) -> Vec<u64> {
    (0..n)
        .map(|i| from_us + (to_us - from_us) * i / n.max(1))
        .collect()
}

pub fn side(requests: u64, errors: u64, latencies_us: &[u64]) -> SideWindow {
    SideWindow {
        requests,
        errors,
        latency: histogram(latencies_us.iter().copied()),
    }
}

pub fn window(legacy: SideWindow, modern: SideWindow, elapsed_s: u64) -> Window {
    Window {
        legacy,
        modern,
        shadow: None,
        elapsed_in_step: Duration::from_secs(elapsed_s),
        bucket_lower_us: layout(),
    }
}

/// xorshift64* (Vigna): tiny, seeded, good enough for Bernoulli trials and latencies.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// A log-normal latency in microseconds with the given median and shape.
    pub fn latency_us(&mut self, median_us: f64, sigma: f64) -> u64 {
        let (u1, u2) = (self.uniform().max(1e-300), self.uniform());
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (median_us * (sigma * normal).exp()) as u64
    }
}

/// Every number in the verdict's evidence, for finiteness checks (serde_json would turn a
/// NaN into `null` and hide it).
pub fn numbers(v: &Verdict) -> Vec<f64> {
    let mut out = Vec::new();
    for g in &v.gates {
        match &g.observed {
            Observed::ErrorRate(e) => {
                out.extend(e.modern_rate);
                out.extend(e.legacy_rate);
                out.extend(e.limit);
                out.extend([
                    e.modern_lower_bound,
                    e.legacy_upper_bound,
                    e.confirm_limit,
                    e.alpha,
                ]);
            }
            Observed::LatencyP99(p) => {
                out.extend(p.modern_p99_ms);
                out.extend(p.legacy_p99_ms);
                out.extend(p.ratio);
                out.push(p.max_ratio);
                out.extend(p.delta_ms);
                out.push(p.min_delta_ms);
                out.extend(p.limit_ms);
                out.extend(p.max_p99_ms);
            }
            Observed::LatencyRank(r) => {
                out.extend([r.u, r.u_expected, r.z, r.p_value, r.alpha, r.confirm_alpha]);
                out.extend(r.modern_median_ms);
                out.extend(r.legacy_median_ms);
                out.extend(r.median_ratio);
                out.push(r.min_effect);
                out.extend(r.median_delta_ms);
                out.push(r.min_delta_ms);
                out.extend(r.max_p99_ms);
            }
            Observed::ShadowDiff(s) => {
                out.extend([s.differing_rate, s.max_rate, s.lower_bound, s.alpha]);
            }
            Observed::Slo { .. } | Observed::Unavailable { .. } => {}
        }
    }
    out
}
