//! A fast, non-cryptographic random source for request ids and key-less split decisions.
//!
//! Hand-written (a thread-local SplitMix64 seeded from the clock, the thread and a global
//! counter) because it is one line of arithmetic per call on the request path and needs no
//! crate; nothing here is a secret.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static SEEDS: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let c = SEEDS.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    splitmix(t ^ c ^ (std::process::id() as u64).rotate_left(32))
}

fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(x);
        splitmix(x)
    })
}
