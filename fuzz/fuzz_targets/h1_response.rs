//! The own HTTP/1.1 client codec (`h1.rs`): an upstream's response, head and body (length,
//! chunked with extensions and trailers, until close, interim 1xx, HEAD), read in pieces
//! of a size the first byte picks. The head is read both ways ficus reads it, as header
//! lines passed on as they came and as a header map: both must agree on the status and
//! deliver the same body bytes.
#![no_main]

use ficus_proxy::h1::fuzzing::{exchange, Outcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let step = 1 + usize::from(flags >> 1) * 64;
    let head_request = flags & 1 == 1;
    let map = exchange(input, step, false, head_request);
    let raw = exchange(input, step, true, head_request);
    match (&map, &raw) {
        (Outcome::Failed, Outcome::Failed) => {}
        (
            Outcome::Response {
                status: a,
                body: x,
                body_failed: f,
            },
            Outcome::Response {
                status: b,
                body: y,
                body_failed: g,
            },
        ) => {
            assert_eq!(a, b, "the same status both ways");
            assert_eq!(f, g, "the body fails both ways or neither");
            assert_eq!(x, y, "the same body both ways");
        }
        _ => panic!("one way failed and the other did not: {map:?} vs {raw:?}"),
    }
    // Reading in other piece sizes changes nothing.
    assert_eq!(exchange(input, usize::MAX, false, head_request), map);
});
