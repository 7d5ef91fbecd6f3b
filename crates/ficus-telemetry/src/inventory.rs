//! The traffic inventory ("map what you actually have"): every distinct endpoint seen, as
//! method + path template with ids folded to `{id}` ([`is_id`]: numbers, UUIDs, prefixed ids
//! such as `sku-1001`, long tokens), with its route,
//! counts per side and when it was last seen. Bounded: at most [`MAX_ENDPOINTS`] endpoints
//! are tracked; requests to endpoints beyond the cap are counted as overflow.
//!
//! On the request path: the path is folded and hashed without allocating, then one
//! per-worker (uncontended) lock guards a map lookup and two additions. The template string
//! is built only the first time an endpoint is seen.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Endpoints tracked at most (over all workers). The default; beyond it, new endpoints are
/// counted in `overflow` only.
pub const MAX_ENDPOINTS: usize = 10_000;

/// One endpoint as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub route: String,
    pub method: String,
    /// The path with ids folded: `/orders/{id}/items`.
    pub template: String,
    pub legacy: u64,
    pub modern: u64,
    /// Unix seconds.
    pub last_seen: u64,
    /// Every request so far went to legacy: this endpoint has not moved yet.
    pub legacy_only: bool,
}

struct Entry {
    route: Arc<str>,
    method: String,
    template: String,
    legacy: u64,
    modern: u64,
    last_seen: u64,
}

/// The inventory, one shard per worker.
/// The map's keys are already hashes: hashing them again would only cost time.
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, Entry, BuildHasherDefault<KeyIsHash>>;

pub struct Inventory {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    overflow: AtomicU64,
    /// A random seed per process, so nobody can aim paths at one bucket of the maps.
    seed: u64,
    /// Unix seconds, advanced by the telemetry ticker (no clock read per request).
    now: AtomicU64,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory").finish_non_exhaustive()
    }
}

/// The inventory as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryView {
    pub endpoints: Vec<Endpoint>,
    /// Requests to endpoints beyond the cap.
    pub overflow: u64,
    pub cap: usize,
}

impl Inventory {
    pub fn new(shards: usize, cap: usize) -> Inventory {
        let shards = shards.max(1);
        Inventory {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: cap.div_ceil(shards),
            overflow: AtomicU64::new(0),
            seed: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
            },
            now: AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
        }
    }

    pub(crate) fn set_now(&self, now_s: u64) {
        self.now.store(now_s, Ordering::Relaxed);
    }

    /// Counts one request to `path` answered by legacy or modern on `route`.
    pub fn observe(&self, worker: usize, route: &Arc<str>, method: &str, path: &str, modern: bool) {
        let key = endpoint_hash(self.seed, route, method, path);
        let now = self.now.load(Ordering::Relaxed);
        let mut shard = self.shards[worker % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let len = shard.len();
        match shard.get_mut(&key) {
            Some(e) => {
                if modern {
                    e.modern += 1;
                } else {
                    e.legacy += 1;
                }
                e.last_seen = now;
            }
            None if len < self.per_shard => {
                shard.insert(
                    key,
                    Entry {
                        route: route.clone(),
                        method: method.to_string(),
                        template: fold(path),
                        legacy: u64::from(!modern),
                        modern: u64::from(modern),
                        last_seen: now,
                    },
                );
            }
            None => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every endpoint, merged over workers, busiest first.
    pub fn view(&self) -> InventoryView {
        let mut merged: HashMap<(String, String, String), Endpoint> = HashMap::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for e in shard.values() {
                let k = (e.route.to_string(), e.method.clone(), e.template.clone());
                let m = merged.entry(k).or_insert_with(|| Endpoint {
                    route: e.route.to_string(),
                    method: e.method.clone(),
                    template: e.template.clone(),
                    legacy: 0,
                    modern: 0,
                    last_seen: 0,
                    legacy_only: true,
                });
                m.legacy += e.legacy;
                m.modern += e.modern;
                m.last_seen = m.last_seen.max(e.last_seen);
            }
        }
        let mut endpoints: Vec<Endpoint> = merged
            .into_values()
            .map(|mut e| {
                e.legacy_only = e.modern == 0;
                e
            })
            .collect();
        endpoints.sort_by(|a, b| {
            (b.legacy + b.modern)
                .cmp(&(a.legacy + a.modern))
                .then_with(|| a.template.cmp(&b.template))
                .then_with(|| a.method.cmp(&b.method))
        });
        InventoryView {
            endpoints,
            overflow: self.overflow.load(Ordering::Relaxed),
            cap: self.per_shard * self.shards.len(),
        }
    }
}

/// Whether a path segment is an id, folded to `{id}` so that one endpoint is counted (and,
/// in the shadow comparison, noise-sampled) once rather than once per record. An id is:
/// - all digits: `42`, `20240601`;
/// - a UUID: 8-4-4-4-12 hex digits;
/// - letters and digits with a prefix, in groups joined by `-` or `_` whose last group is
///   all digits or a [token](is_token) of 8 or more characters: `sku-1001`, `INV-2024-0001`,
///   `user_42`, `2024-06-01`, `cus_Nffrf1Kx2M3d`;
/// - one token of 16 or more characters: `507f1f77bcf86cd799439011` (an ObjectId),
///   `01ARZ3NDEKTSV4RRFFQ69G5FAV` (a ULID).
///
/// Words stay as they are (`orders`, `v2`, `daily`, `order-items`, `report_q3`), and so do
/// names with a dot (`main.3f2a9c1b.js`). Allocation-free: it runs on the request path.
pub fn is_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if uuid || (b.len() >= 16 && is_token(b)) {
        return true;
    }
    let mut groups = 0;
    let mut last: &[u8] = &[];
    for g in b.split(|c| *c == b'-' || *c == b'_') {
        if g.is_empty() || !g.iter().all(u8::is_ascii_alphanumeric) {
            return false;
        }
        groups += 1;
        last = g;
    }
    groups >= 2 && (last.iter().all(u8::is_ascii_digit) || (last.len() >= 8 && is_token(last)))
}

/// Letters and digits only, with at least one of each.
fn is_token(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_alphanumeric)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

/// The path with id segments replaced by `{id}`.
pub fn fold(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_id(seg) { "{id}" } else { seg });
    }
    out
}

/// A hash of (route, method, folded path), computed without building the folded string:
/// XXH3 with the process's random seed (fast, and not predictable from outside).
fn endpoint_hash(seed: u64, route: &str, method: &str, path: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::with_seed(seed);
    h.update(route.as_bytes());
    h.update(&[0]);
    h.update(method.as_bytes());
    h.update(&[0]);
    for seg in path.split('/') {
        if is_id(seg) {
            h.update(b"{id}");
        } else {
            h.update(seg.as_bytes());
        }
        h.update(b"/");
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_uuids_fold() {
        assert_eq!(fold("/orders/123/items/9"), "/orders/{id}/items/{id}");
        assert_eq!(
            fold("/users/3f2b8c1e-9d4a-4b7e-8f00-1234567890ab"),
            "/users/{id}"
        );
        assert_eq!(fold("/v2/orders"), "/v2/orders");
        assert_eq!(fold("/"), "/");
        assert!(!is_id("12a"));
        assert!(!is_id(""));
        // Not a UUID (a `z`), but an id all the same: groups of letters and digits.
        assert!(is_id("3f2b8c1e-9d4a-4b7e-8f00-1234567890az"));
    }

    #[test]
    fn id_like_segments_fold_and_words_do_not() {
        assert_eq!(fold("/catalog/sku-1001"), "/catalog/{id}");
        assert_eq!(fold("/stock/sku-1039/levels"), "/stock/{id}/levels");
        for id in [
            "sku-1001",
            "SKU_7",
            "INV-2024-0001",
            "user_42",
            "2024-06-01",
            "cus_Nffrf1Kx2M3d",
            "507f1f77bcf86cd799439011",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ] {
            assert!(is_id(id), "{id} is an id");
        }
        for word in [
            "orders",
            "v2",
            "daily",
            "order-items",
            "report_q3",
            "sku-",
            "-1001",
            "sku--1001",
            "main.3f2a9c1b.js",
            "12a",
            "oauth2",
            "internationalization",
        ] {
            assert!(!is_id(word), "{word} is not an id");
        }
    }

    #[test]
    fn records_with_prefixed_ids_are_one_endpoint_in_the_inventory() {
        let inv = Inventory::new(1, 100);
        let catalog: Arc<str> = Arc::from("catalog");
        for i in 0..40 {
            inv.observe(
                0,
                &catalog,
                "GET",
                &format!("/catalog/sku-{}", 1000 + i),
                false,
            );
        }
        let v = inv.view();
        assert_eq!(v.endpoints.len(), 1, "{:?}", v.endpoints);
        assert_eq!(v.endpoints[0].template, "/catalog/{id}");
        assert_eq!(v.endpoints[0].legacy, 40);
    }

    #[test]
    fn endpoints_merge_over_workers_and_flag_legacy_only() {
        let inv = Inventory::new(2, 100);
        inv.set_now(1_000);
        let orders: Arc<str> = Arc::from("orders");
        let users: Arc<str> = Arc::from("users");
        inv.observe(0, &orders, "GET", "/orders/1", false);
        inv.observe(1, &orders, "GET", "/orders/2", true);
        inv.observe(1, &orders, "GET", "/orders/3", false);
        inv.observe(0, &orders, "POST", "/orders", false);
        inv.set_now(1_005);
        inv.observe(0, &users, "GET", "/users/7", true);
        let v = inv.view();
        assert_eq!(v.overflow, 0);
        let list: Vec<_> = v
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.method.as_str(),
                    e.template.as_str(),
                    e.legacy,
                    e.modern,
                    e.legacy_only,
                )
            })
            .collect();
        assert_eq!(
            list,
            [
                ("GET", "/orders/{id}", 2, 1, false),
                ("POST", "/orders", 1, 0, true),
                ("GET", "/users/{id}", 0, 1, false),
            ]
        );
        assert_eq!(v.endpoints[2].last_seen, 1_005);
    }

    #[test]
    fn the_cap_bounds_memory_and_counts_overflow() {
        let inv = Inventory::new(1, 10);
        let r: Arc<str> = Arc::from("r");
        for i in 0..25 {
            inv.observe(0, &r, "GET", &format!("/p{i}"), false);
        }
        let v = inv.view();
        assert_eq!(v.endpoints.len(), 10);
        assert_eq!(v.overflow, 15);
        // Known endpoints keep counting after the cap is reached.
        inv.observe(0, &r, "GET", "/p0", true);
        assert_eq!(
            inv.view()
                .endpoints
                .iter()
                .map(|e| e.legacy + e.modern)
                .sum::<u64>(),
            11
        );
    }
}
