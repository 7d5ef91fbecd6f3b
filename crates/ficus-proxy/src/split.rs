//! The sticky weighted split: which side answers a request, as a pure function of the route's
//! stage and weight and the request's sticky key.
//!
//! # The hash (stable, documented, reproducible outside ficus)
//! `bucket = xxh3_64(route_name ++ [0x00] ++ key) mod 10_000`, where `xxh3_64` is XXH3 64-bit
//! with seed 0 (the reference xxHash implementation, version 0.8), `route_name` and `key` are
//! their UTF-8 / raw bytes. A key in bucket `b` is answered by modern iff `b < weight`, with
//! `weight` in hundredths of a percent (0..=10000). Raising the weight only ever adds buckets,
//! so a user on modern never moves back to legacy while a rollout advances. Including the
//! route name spreads one user's routes independently, so the first 1% of `/orders` and the
//! first 1% of `/users` are not the same users.

use ficus_config::{Stage, Weight};

/// Number of buckets keys are hashed into (one per hundredth of a percent of weight).
pub const BUCKETS: u16 = 10_000;

/// One of the two upstreams a route migrates between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Legacy,
    Modern,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Legacy => "legacy",
            Side::Modern => "modern",
        }
    }
}

/// The bucket (0..10000) of a sticky key on a route.
pub fn bucket(route_name: &str, key: &[u8]) -> u16 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(route_name.as_bytes());
    h.update(&[0]);
    h.update(key);
    (h.digest() % u64::from(BUCKETS)) as u16
}

/// Whether a stage needs the sticky key at all (only `canary` splits by key).
pub fn needs_key(stage: Stage, weight: Weight) -> bool {
    stage == Stage::Canary && weight != Weight::ZERO && weight != Weight::MAX
}

/// Who answers the client. `bucket` is only consulted for `canary`.
pub fn choose(stage: Stage, weight: Weight, bucket: impl FnOnce() -> u16) -> Side {
    match stage {
        Stage::Legacy | Stage::Shadow => Side::Legacy,
        Stage::Modern | Stage::Retired => Side::Modern,
        Stage::Canary => {
            if weight == Weight::ZERO {
                Side::Legacy
            } else if weight == Weight::MAX || bucket() < weight.basis_points() {
                Side::Modern
            } else {
                Side::Legacy
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(p: f64) -> Weight {
        Weight::from_percent(p).unwrap()
    }

    #[test]
    fn stages_without_split() {
        let never = || -> u16 { panic!("bucket must not be computed") };
        assert_eq!(choose(Stage::Legacy, w(100.0), never), Side::Legacy);
        assert_eq!(choose(Stage::Shadow, w(100.0), never), Side::Legacy);
        assert_eq!(choose(Stage::Modern, w(0.0), never), Side::Modern);
        assert_eq!(choose(Stage::Retired, w(0.0), never), Side::Modern);
        assert_eq!(choose(Stage::Canary, w(0.0), never), Side::Legacy);
        assert_eq!(choose(Stage::Canary, w(100.0), never), Side::Modern);
    }

    #[test]
    fn ten_thousand_keys_at_weight_25_land_25_percent() {
        let modern = (0..10_000)
            .filter(|i| {
                let key = format!("user-{i}");
                choose(Stage::Canary, w(25.0), || bucket("orders", key.as_bytes())) == Side::Modern
            })
            .count();
        assert!(
            (2350..=2650).contains(&modern),
            "{modern} of 10000 on modern"
        );
    }

    #[test]
    fn raising_the_weight_never_moves_a_key_back() {
        let weights = [0.5, 1.0, 5.0, 12.34, 25.0, 50.0, 99.99, 100.0];
        for i in 0..5_000 {
            let key = format!("{i:x}-acct");
            let b = bucket("checkout", key.as_bytes());
            let mut was_modern = false;
            for p in weights {
                let modern = choose(Stage::Canary, w(p), || b) == Side::Modern;
                assert!(modern || !was_modern, "key {key} moved back at {p}%");
                was_modern = modern;
            }
        }
    }

    #[test]
    fn the_hash_is_stable() {
        // Pinned values: changing the hash would move users between sides on upgrade.
        assert_eq!(bucket("orders", b"user-1"), bucket("orders", b"user-1"));
        let pinned = [
            bucket("orders", b"user-1"),
            bucket("orders", b"user-2"),
            bucket("users", b"user-1"),
        ];
        let expected = [
            (xxhash_rust::xxh3::xxh3_64(b"orders\0user-1") % 10_000) as u16,
            (xxhash_rust::xxh3::xxh3_64(b"orders\0user-2") % 10_000) as u16,
            (xxhash_rust::xxh3::xxh3_64(b"users\0user-1") % 10_000) as u16,
        ];
        assert_eq!(pinned, expected);
        assert_ne!(pinned[0], pinned[2], "routes spread one user independently");
    }
}
