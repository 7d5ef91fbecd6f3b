#!/usr/bin/env python3
"""Test vectors for ficus-flags, computed independently of the Rust code.

    python3 -m venv /tmp/flags-venv && /tmp/flags-venv/bin/pip install mmh3
    /tmp/flags-venv/bin/python crates/ficus-flags/tests/vectors/gen_vectors.py

prints Rust constants pasted into tests/vectors.rs:

- MURMUR: mmh3.hash(s, seed, signed=False), the reference MurmurHash3_x86_32 (mmh3 wraps
  Appleby's C code) over the UTF-8 bytes of s.
- BUCKETS: flagd's fractional bucketing, re-implemented here from flagd's Go source
  (open-feature/flagd core/pkg/evaluator/fractional.go, commit bbb05d4b):
    Evaluate():  hashValue := uint32(murmur3.StringSum32(valueToDistribute))
                 valueToDistribute = flagKey + targetingKey when no bucketing expression
                 (parseFractionalEvaluationData: fmt.Sprintf("%s%s", flagKey, targetingKey))
    distributeValue(): bucket := (uint64(hashValue) * uint64(totalWeight)) >> 32
                 rangeEnd += weight for each variant in order; first with bucket < rangeEnd
- FNV: FNV-1a 128-bit (offset 0x6c62272e07bb014262b821756295c58d, prime 2**88 + 0x13b).
- ETAG: the ETag construction documented on ficus_flags::etag, from canonical JSON
  written by hand here (sorted keys, no whitespace).
"""
import mmh3

STRINGS = [
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "abcde",
    "abcdef",
    "abcdefg",
    "abcdefgh",
    "hello",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog",
    "user-123",
    "headerColorrachel@faas.com",
    "é",
    "日本語",
    "emoji 🚀 rocket",
    "\x00",
    "\x00\x00\x00\x00",
    "\xff\u0100",
    "x" * 1000,
    "0123456789" * 37 + "abc",
]
SEEDS = [0, 1, 0x9747B28C]


def bucket(flag_key, targeting_key, split):
    h = mmh3.hash(flag_key + targeting_key, 0, signed=False)
    total = sum(w for _, w in split)
    b = (h * total) >> 32
    end = 0
    for variant, w in split:
        end += w
        if b < end:
            return variant
    raise AssertionError("unreachable")


SPLITS = {
    "RED_BLUE": [("red", 50), ("blue", 50)],
    "ABC": [("a", 25), ("b", 25), ("c", 50)],
    "CANARY": [("canary", 1), ("control", 999_999)],
}
PAIRS = [
    ("new-checkout", "user-1"),
    ("new-checkout", "user-2"),
    ("new-checkout", "user-3"),
    ("new-checkout", "user-4"),
    ("new-checkout", "user-5"),
    ("new-checkout", "alice@example.com"),
    ("new-checkout", "bob@example.com"),
    ("new-checkout", ""),
    ("headerColor", "foo@foo.com"),
    ("headerColor", "rachel@faas.com"),
    ("headerColor", "monica@faas.com"),
    ("search-v2", "session-0001"),
    ("search-v2", "session-0002"),
    ("search-v2", "session-0003"),
    ("search-v2", "日本語"),
    ("search-v2", "🚀"),
    ("a", "b"),
    ("ab", ""),
    ("flag", "x" * 100),
    ("migrate-orders", "tenant-42"),
    ("migrate-orders", "tenant-43"),
]


def fnv1a_128(data):
    h = 0x6C62272E07BB014262B821756295C58D
    p = (1 << 88) + 0x13B
    for b in data:
        h ^= b
        h = (h * p) % (1 << 128)
    return h


def rust_str(s):
    """A Rust string literal for s (control characters as \\u{..} escapes)."""
    out = []
    for c in s:
        if c in "\\\"":
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\u{%x}" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


print("// (input, seed, mmh3.hash(input, seed, signed=False))")
print("const MURMUR: &[(&str, u32, u32)] = &[")
for s in STRINGS:
    for seed in SEEDS:
        print(f"    ({rust_str(s)}, {seed:#x}, {mmh3.hash(s, seed, signed=False):#010x}),")
print("];")
print()
print("// (flag key, targeting key, split name, expected variant)")
print("const BUCKETS: &[(&str, &str, &str, &str)] = &[")
for name, split in SPLITS.items():
    for fk, tk in PAIRS:
        print(f"    ({rust_str(fk)}, {rust_str(tk)}, {rust_str(name)}, {rust_str(bucket(fk, tk, split))}),")
print("];")
print()
print("// (input, FNV-1a 128)")
print("const FNV: &[(&str, u128)] = &[")
for s in ["", "a", "foobar", "ficus-flags etag v1"]:
    print(f"    ({rust_str(s)}, {fnv1a_128(s.encode()):#034x}),")
print("];")


def frame(b):
    return len(b).to_bytes(8, "little") + b


def etag(flags, ctx_canonical, revision):
    """flags: (key, canonical JSON) pairs, hashed sorted by key, then by the JSON bytes."""
    data = frame(b"ficus-flags etag v1") + frame(revision.encode())
    data += len(flags).to_bytes(8, "little")
    for _, f in sorted((k.encode(), f.encode()) for k, f in flags):
        data += frame(f)
    data += frame(ctx_canonical.encode())
    return '"%032x"' % fnv1a_128(data)


FLAG_K = '{"defaultVariant":"a","enabled":true,"key":"k","variants":{"a":true,"b":false}}'
FLAG_J = (
    '{"defaultVariant":"x","enabled":false,"key":"j","metadata":{"team":"t\\u0001"},'
    '"rules":[{"then":{"fractional":{"hash":"flagd","split":[["x",1],["y",3]]}},'
    '"when":[{"attribute":"v","op":{"sem_ver":[">=","1.2.3"]}}]}],'
    '"variants":{"x":2.5,"y":-3}}'
)
print()
print("// (case, ETag)")
print("const ETAG: &[(&str, &str)] = &[")
print('    ("empty", %s),' % rust_str(etag([], '{"attrs":{},"targetingKey":null}', "")))
print('    ("k+j", %s),' % rust_str(etag([("k", FLAG_K), ("j", FLAG_J)], '{"attrs":{"plan":"pro"},"targetingKey":"u"}', "rev-1")))
print("];")
