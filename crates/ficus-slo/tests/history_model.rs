//! `History` against a naive model: a `BTreeMap` of minutes with the documented semantics
//! (replace within the minute ring, add before it, whole hours before the ring, nothing
//! older than the hour ring).

use std::collections::BTreeMap;

use ficus_slo::{Counts, History, MINUTE_SPAN};
use proptest::prelude::*;

const SPAN: i64 = MINUTE_SPAN as i64;
/// Minute numbers start here (not on the hour), far from 0.
const BASE: i64 = 28_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// Set a minute relative to the newest one (or to BASE when empty).
    Set { offset: i64, total: u64, bad: u64 },
    /// Advance time by a number of minutes and set that minute.
    Jump { minutes: i64, total: u64, bad: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (-6000i64..40, 0u64..1000, 0u64..1200)
            .prop_map(|(offset, total, bad)| Op::Set { offset, total, bad }),
        1 => (1i64..3000, 0u64..1000, 0u64..1000)
            .prop_map(|(minutes, total, bad)| Op::Jump { minutes, total, bad }),
        1 => (3000i64..60_000, 0u64..1000, 0u64..1000)
            .prop_map(|(minutes, total, bad)| Op::Jump { minutes, total, bad }),
    ]
}

#[derive(Default)]
struct Model {
    newest: Option<i64>,
    minutes: BTreeMap<i64, Counts>,
    hour_span: i64,
}

impl Model {
    fn set(&mut self, minute: i64, c: Counts) {
        let c = Counts::new(c.total, c.bad);
        let newest = *self.newest.get_or_insert(minute);
        let newest = newest.max(minute);
        self.newest = Some(newest);
        if minute > newest - SPAN {
            self.minutes.insert(minute, c);
        } else if minute.div_euclid(60) > newest.div_euclid(60) - self.hour_span {
            let e = self.minutes.entry(minute).or_default();
            e.total += c.total;
            e.bad += c.bad;
        }
    }

    fn sum(&self, from: i64, to: i64) -> Counts {
        let Some(newest) = self.newest else {
            return Counts::default();
        };
        let ring_start = newest - SPAN + 1;
        let oldest_hour = newest.div_euclid(60) - self.hour_span + 1;
        let mut out = Counts::default();
        for (&m, c) in &self.minutes {
            let counted = if m >= ring_start {
                m >= from && m < to && m <= newest
            } else {
                let hour_start = m.div_euclid(60) * 60;
                m.div_euclid(60) >= oldest_hour && hour_start >= from && hour_start < to
            };
            if counted {
                out.total += c.total;
                out.bad += c.bad;
            }
        }
        out
    }
}

fn apply(ops: &[Op], hour_span: usize) -> (History, Model) {
    let mut h = History::with_hour_span(hour_span);
    let mut model = Model {
        hour_span: hour_span as i64,
        ..Model::default()
    };
    for op in ops {
        let (minute, total, bad) = match *op {
            Op::Set { offset, total, bad } => (model.newest.unwrap_or(BASE) + offset, total, bad),
            Op::Jump {
                minutes,
                total,
                bad,
            } => (model.newest.unwrap_or(BASE) + minutes, total, bad),
        };
        let c = Counts { total, bad };
        h.set_minute(minute, c);
        model.set(minute, c);
    }
    (h, model)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any range inside the minute ring is exact, with replace semantics.
    #[test]
    fn ring_part_matches_the_model(
        ops in prop::collection::vec(op(), 1..120),
        ranges in prop::collection::vec((0i64..4500, 0i64..4500), 1..20),
    ) {
        let (h, model) = apply(&ops, 32 * 24);
        let newest = model.newest.unwrap();
        prop_assert_eq!(h.newest_minute(), Some(newest));
        let ring_start = newest - SPAN + 1;
        for (a, b) in ranges {
            // Both ends within the ring (or just after the newest minute).
            let from = ring_start + a.min(SPAN);
            let to = ring_start + b.min(SPAN + 60);
            prop_assert_eq!(h.sum(from, to), model.sum(from, to), "{}..{}", from, to);
        }
    }

    /// Any range at all matches the model, hour rounding included; `sums` matches `sum`.
    #[test]
    fn every_range_matches_the_model(
        ops in prop::collection::vec(op(), 1..120),
        ranges in prop::collection::vec((0i64..60_000, 0i64..60_000), 1..20),
        short_hours in any::<bool>(),
    ) {
        let hour_span = if short_hours { 80 } else { 32 * 24 };
        let (h, model) = apply(&ops, hour_span);
        let newest = model.newest.unwrap();
        let mut froms = Vec::new();
        let to = newest + 1;
        for (a, b) in ranges {
            let from = newest - a;
            let end = newest + 1 - b;
            prop_assert_eq!(h.sum(from, end), model.sum(from, end), "{}..{}", from, end);
            froms.push(from);
        }
        let sums = h.sums(to, &froms);
        for (from, got) in froms.iter().zip(sums) {
            prop_assert_eq!(got, model.sum(*from, to));
        }
    }
}
