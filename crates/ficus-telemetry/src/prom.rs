//! Prometheus exposition of the per (route, side) totals, through prometheus-client's
//! collector interface (the values live in our sharded atomics, not in its metric types).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::buckets::PROM_BUCKETS_SECONDS;
use crate::{Telemetry, CODE_CLASSES, SIDES};

pub(crate) fn encode(t: Arc<Telemetry>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(t)));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Exposition(Arc<Telemetry>);

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let routes = self.0.routes();
        let totals: Vec<_> = routes
            .iter()
            .flat_map(|r| {
                SIDES
                    .iter()
                    .enumerate()
                    .map(move |(i, side)| (r.name.clone(), *side, r.side(i == 1).totals()))
            })
            .collect();

        let mut m = encoder.encode_descriptor(
            "ficus_requests",
            "Requests answered by each side of each route, by status class (ficus's own 502/504 count for the side it tried).",
            None,
            MetricType::Counter,
        )?;
        for (route, side, t) in &totals {
            for (class, n) in CODE_CLASSES.iter().zip(t.by_class) {
                let labels = [("route", &**route), ("side", side), ("code_class", class)];
                m.encode_family(&labels)?
                    .encode_counter::<[(&str, &str); 0], u64, f64>(&n, None)?;
            }
        }

        let mut m = encoder.encode_descriptor(
            "ficus_fallbacks",
            "Requests whose call to this side failed and that legacy then answered.",
            None,
            MetricType::Counter,
        )?;
        for (route, side, t) in totals.iter().filter(|(_, s, _)| *s == "modern") {
            let labels = [("route", &**route), ("side", *side)];
            m.encode_family(&labels)?
                .encode_counter::<[(&str, &str); 0], u64, f64>(&t.fallbacks, None)?;
        }

        let mut m = encoder.encode_descriptor(
            "ficus_in_flight_requests",
            "Calls to each side of each route waiting for their response head.",
            None,
            MetricType::Gauge,
        )?;
        for (route, side, t) in &totals {
            let labels = [("route", &**route), ("side", *side)];
            m.encode_family(&labels)?.encode_gauge(&t.in_flight)?;
        }

        let mut m = encoder.encode_descriptor(
            "ficus_request_duration_seconds",
            "Time from the request to the response head of each side of each route.",
            None,
            MetricType::Histogram,
        )?;
        for (route, side, t) in &totals {
            let labels = [("route", &**route), ("side", *side)];
            // Per-bucket counts: the encoder makes them cumulative.
            let buckets: Vec<(f64, u64)> = PROM_BUCKETS_SECONDS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(t.prom.iter().copied())
                .collect();
            m.encode_family(&labels)?
                .encode_histogram::<[(&str, &str); 0]>(
                    t.latency_sum_us as f64 / 1e6,
                    t.requests(),
                    &buckets,
                    None,
                )?;
        }

        // Mirror counters, for routes that mirrored (or tried to) at least once.
        let shadow: Vec<_> = routes
            .iter()
            .map(|r| (r.name.clone(), r.shadow.totals()))
            .filter(|(_, t)| *t != crate::ShadowTotals::default())
            .collect();
        type Get = fn(&crate::ShadowTotals) -> u64;
        let counters: [(&str, &str, Get); 5] = [
            ("ficus_shadow_mirrored", "Requests copied to modern by the mirror.", |t| t.mirrored),
            (
                "ficus_shadow_failed",
                "Mirrored requests modern did not answer (connect error, timeout, broken exchange).",
                |t| t.failed,
            ),
            ("ficus_shadow_compared", "Legacy-vs-modern response comparisons.", |t| t.compared),
            (
                "ficus_shadow_differing",
                "Comparisons with at least one difference, noise included.",
                |t| t.differing,
            ),
            (
                "ficus_shadow_noise_compared",
                "Legacy-vs-legacy comparisons (the noise sample).",
                |t| t.noise_compared,
            ),
        ];
        for (name, help, get) in counters {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (route, t) in &shadow {
                let labels = [("route", &**route)];
                m.encode_family(&labels)?
                    .encode_counter::<[(&str, &str); 0], u64, f64>(&get(t), None)?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "ficus_shadow_dropped",
            "Mirror copies dropped so the client is never held up, by reason.",
            None,
            MetricType::Counter,
        )?;
        for (route, t) in &shadow {
            for (reason, n) in [
                ("queue-full", t.dropped_queue_full),
                ("too-large", t.dropped_too_large),
                ("incomplete", t.dropped_incomplete),
                ("closed", t.dropped_closed),
            ] {
                let labels = [("route", &**route), ("reason", reason)];
                m.encode_family(&labels)?
                    .encode_counter::<[(&str, &str); 0], u64, f64>(&n, None)?;
            }
        }

        for f in self.0.extra() {
            let kind = if f.gauge {
                MetricType::Gauge
            } else {
                MetricType::Counter
            };
            let mut m = encoder.encode_descriptor(f.name, f.help, None, kind)?;
            for (labels, v) in &f.samples {
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let mut e = m.encode_family(&labels)?;
                if f.gauge {
                    e.encode_gauge(&(*v as i64))?;
                } else {
                    e.encode_counter::<[(&str, &str); 0], u64, f64>(v, None)?;
                }
            }
        }
        for f in self.0.extra_gauges() {
            let mut m = encoder.encode_descriptor(f.name, f.help, None, MetricType::Gauge)?;
            for (labels, v) in &f.samples {
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                m.encode_family(&labels)?.encode_gauge(v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Telemetry;
    use std::time::Duration;

    #[test]
    fn exposition_has_counters_gauges_and_histograms() {
        let t = Telemetry::new(2);
        let r = t.route("orders");
        r.side(true).record(0, 200, Duration::from_micros(400));
        r.side(true).record(1, 503, Duration::from_millis(30));
        r.side(true).record_fallback(1);
        r.side(false).record(0, 200, Duration::from_millis(2));
        let _g = r.side(false).begin(0);
        r.shadow.mirrored();
        r.shadow.dropped(crate::DropReason::QueueFull);
        r.shadow.compared(true, false);
        let text = t.prometheus();
        for line in [
            "ficus_requests_total{route=\"orders\",side=\"modern\",code_class=\"2xx\"} 1",
            "ficus_requests_total{route=\"orders\",side=\"modern\",code_class=\"5xx\"} 1",
            "ficus_requests_total{route=\"orders\",side=\"legacy\",code_class=\"2xx\"} 1",
            "ficus_fallbacks_total{route=\"orders\",side=\"modern\"} 1",
            "ficus_in_flight_requests{route=\"orders\",side=\"legacy\"} 1",
            "ficus_request_duration_seconds_bucket{le=\"0.0005\",route=\"orders\",side=\"modern\"} 1",
            "ficus_request_duration_seconds_bucket{le=\"0.05\",route=\"orders\",side=\"modern\"} 2",
            "ficus_request_duration_seconds_bucket{le=\"+Inf\",route=\"orders\",side=\"modern\"} 2",
            "ficus_request_duration_seconds_count{route=\"orders\",side=\"modern\"} 2",
            "ficus_request_duration_seconds_sum{route=\"orders\",side=\"modern\"} 0.0304",
            "# TYPE ficus_request_duration_seconds histogram",
            "ficus_shadow_mirrored_total{route=\"orders\"} 1",
            "ficus_shadow_compared_total{route=\"orders\"} 1",
            "ficus_shadow_differing_total{route=\"orders\"} 1",
            "ficus_shadow_dropped_total{route=\"orders\",reason=\"queue-full\"} 1",
            "ficus_shadow_dropped_total{route=\"orders\",reason=\"too-large\"} 0",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn extra_families_come_from_every_producer_once_per_key() {
        let t = Telemetry::new(1);
        let family = |name: &'static str, v: u64| -> crate::ExtraMetrics {
            Box::new(move || {
                vec![crate::Family {
                    name,
                    help: "a test family",
                    gauge: false,
                    samples: vec![(vec![("outcome", "x".to_string())], v)],
                }]
            })
        };
        t.set_extra("a", family("ficus_test_a", 1));
        t.set_extra("b", family("ficus_test_b", 2));
        // A second producer under the same key replaces the first: no duplicate family.
        t.set_extra("a", family("ficus_test_a", 3));
        let text = t.prometheus();
        assert!(
            text.contains("ficus_test_a_total{outcome=\"x\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ficus_test_b_total{outcome=\"x\"} 2"),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE ficus_test_a counter").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn fractional_gauges_keep_their_decimals() {
        let t = Telemetry::new(1);
        let family = |v: f64| -> crate::ExtraGauges {
            Box::new(move || {
                vec![crate::GaugeFamily {
                    name: "ficus_test_weight",
                    help: "a test gauge",
                    samples: vec![(vec![("route", "orders".to_string())], v)],
                }]
            })
        };
        t.set_extra_gauges("w", family(5.25));
        t.set_extra_gauges("w", family(12.5));
        let text = t.prometheus();
        assert!(text.contains("# TYPE ficus_test_weight gauge"), "{text}");
        assert!(
            text.contains("ficus_test_weight{route=\"orders\"} 12.5"),
            "{text}"
        );
        assert_eq!(text.matches("ficus_test_weight{").count(), 1, "{text}");
    }
}
