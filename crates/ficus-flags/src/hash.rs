//! The two hashes the engine needs, written out so that every node and every release
//! computes the same numbers: MurmurHash3 x86 32-bit (flagd's bucketing hash) and FNV-1a
//! 128-bit (the ETag digest).

/// MurmurHash3 x86 32-bit (Austin Appleby's `MurmurHash3_x86_32`) of `data` with `seed`.
///
/// Blocks are read little-endian whatever the host, so the result is the reference one on
/// every platform; it equals Python's `mmh3.hash(data, seed, signed=False)` and Go's
/// `murmur3.SeedSum32(seed, data)` (flagd's `murmur3.StringSum32(s)` is this with seed 0
/// over the string's UTF-8 bytes).
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, &b) in tail.iter().enumerate() {
            k |= u32::from(b) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    // The reference mixes in the length as a 32-bit int; inputs of 4 GiB or more wrap,
    // as they do there.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// FNV-1a 128-bit offset basis.
pub(crate) const FNV128_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
/// FNV-1a 128-bit prime, 2^88 + 2^8 + 0x3b.
pub(crate) const FNV128_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// Streaming FNV-1a 128-bit (IETF draft-eastlake-fnv): for each byte, `h ^= byte` then
/// `h *= prime` modulo 2^128.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv128(u128);

impl Fnv128 {
    pub(crate) fn new() -> Self {
        Fnv128(FNV128_OFFSET)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(FNV128_PRIME);
        }
    }

    /// Writes `bytes` preceded by their length (8 bytes, little-endian), so that the
    /// concatenation of several fields is unambiguous.
    pub(crate) fn write_framed(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    pub(crate) fn finish(&self) -> u128 {
        self.0
    }
}

/// FNV-1a 128-bit of `data` (exposed for test vectors).
pub fn fnv1a_128(data: &[u8]) -> u128 {
    let mut h = Fnv128::new();
    h.write(data);
    h.finish()
}
