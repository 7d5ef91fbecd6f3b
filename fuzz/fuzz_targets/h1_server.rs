//! The own HTTP/1.1 server loop's parser (`h1server.rs`): request heads and small bodies,
//! pipelined, as the loop reads them. The first byte picks the head limit, so that heads
//! over it (hyper's 431) are reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, input)) = data.split_first() else {
        return;
    };
    // 64 bytes to 16 KiB and more: tiny limits cut heads anywhere.
    let max_head = 64 + usize::from(limit) * 64;
    ficus_proxy::h1server::fuzzing::parse_all(input, max_head);
});
