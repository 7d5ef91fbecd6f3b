//! Latency buckets: fine log-linear buckets for quantiles (8 per power of two, so any value
//! is within 12.5% of its bucket's bounds) and the classic Prometheus `le` buckets, both
//! found with a few integer instructions.

/// Values below this many microseconds have a bucket each.
const LINEAR: u64 = 16;
/// Sub-buckets per power of two.
const SUB_BITS: u32 = 3;
/// Largest exponent covered: 2^36 us is about 19 hours; slower calls share the last bucket.
const MAX_EXP: u32 = 36;

/// Number of fine buckets.
pub const FINE_BUCKETS: usize = LINEAR as usize + ((MAX_EXP - 4 + 1) << SUB_BITS) as usize;

/// Upper bounds (seconds, inclusive) of the Prometheus histogram buckets; `+Inf` follows.
pub const PROM_BUCKETS_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const PROM_BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// The fine bucket of a latency in microseconds.
#[inline]
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

/// The smallest latency (us) in a fine bucket.
pub fn fine_lower_us(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let k = (i - LINEAR as usize) as u32;
    let exp = (k >> SUB_BITS) + 4;
    let sub = u64::from(k & ((1 << SUB_BITS) - 1));
    ((1 << SUB_BITS) + sub) << (exp - SUB_BITS)
}

/// One past the largest latency (us) in a fine bucket.
pub fn fine_upper_us(i: usize) -> u64 {
    if i + 1 >= FINE_BUCKETS {
        return u64::MAX;
    }
    fine_lower_us(i + 1)
}

/// The Prometheus bucket of a latency: the first whose bound is not below it (the last is
/// `+Inf`). Bounds are inclusive, as Prometheus's `le` says.
#[inline]
pub(crate) fn prom_index(us: u64) -> usize {
    PROM_BUCKETS_US
        .iter()
        .position(|b| us <= *b)
        .unwrap_or(PROM_BUCKETS_US.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_inside_its_bucket() {
        let mut v = 0u64;
        while v < (1u64 << 38) {
            let i = fine_index(v);
            assert!(i < FINE_BUCKETS, "{v}");
            assert!(fine_lower_us(i) <= v, "{v} below bucket {i}");
            assert!(
                v < fine_upper_us(i) || i == FINE_BUCKETS - 1,
                "{v} above bucket {i}"
            );
            v = v + 1 + v / 7;
        }
        assert_eq!(fine_index(u64::MAX), FINE_BUCKETS - 1);
    }

    #[test]
    fn buckets_are_contiguous_and_narrow() {
        for i in 0..FINE_BUCKETS - 1 {
            assert_eq!(fine_upper_us(i), fine_lower_us(i + 1));
            let (lo, hi) = (fine_lower_us(i), fine_upper_us(i));
            assert!(hi > lo);
            if lo >= 16 {
                assert!(
                    (hi - lo) as f64 / lo as f64 <= 0.125 + 1e-9,
                    "bucket {i} too wide"
                );
            }
        }
    }

    #[test]
    fn prometheus_bounds_are_inclusive() {
        assert_eq!(prom_index(0), 0);
        assert_eq!(prom_index(500), 0);
        assert_eq!(prom_index(501), 1);
        assert_eq!(prom_index(10_000_000), 13);
        assert_eq!(prom_index(10_000_001), 14);
        for (s, us) in PROM_BUCKETS_SECONDS.iter().zip(PROM_BUCKETS_US) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }
}
