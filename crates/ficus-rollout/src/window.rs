//! What the judge looks at: both sides' counts and latency histograms since the step
//! started, the shadow comparison rate, and the time spent in the step. Plain data; the
//! controller fills it from ficus-telemetry.
//!
//! The windows must be **cumulative since the step started** (current totals minus the
//! totals at the start of the step), not a sliding "last N seconds": the error bounds are
//! valid under continuous monitoring of one growing sequence of requests, and a sliding
//! window would forget the requests that cleared modern and re-test fresh ones forever.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One side's traffic in the step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideWindow {
    /// Requests answered (all status classes).
    pub requests: u64,
    /// ... of which 5xx, ficus's own 502/504 for failed calls included. Values above
    /// `requests` are read as `requests`.
    pub errors: u64,
    /// Latency counts per bucket of [`Window::bucket_lower_us`] (index = bucket); may be
    /// shorter than the layout (missing buckets are empty) or empty (no latency data).
    pub latency: Vec<u64>,
}

/// The shadow comparisons of the step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowWindow {
    /// Legacy-vs-modern comparisons made.
    pub compared: u64,
    /// Rate (0..=1) of comparisons with a real difference, after noise filtering.
    pub differing_rate: f64,
}

/// Everything the judge sees at one tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub legacy: SideWindow,
    pub modern: SideWindow,
    /// `None` when the canary is not shadowed.
    pub shadow: Option<ShadowWindow>,
    /// Time since the step started (seconds in serialized form).
    #[serde(with = "crate::secs")]
    pub elapsed_in_step: Duration,
    /// Lower bound (microseconds) of each latency bucket, strictly ascending, shared by both
    /// sides: bucket `i` holds latencies in `[bucket_lower_us[i], bucket_lower_us[i + 1])`
    /// and the last bucket is open-ended. From ficus-telemetry:
    /// `(0..FINE_BUCKETS).map(fine_lower_us).collect()`.
    ///
    /// One layout for both sides, rather than bounds inside each histogram, makes "the same
    /// bucket" (a tie in the rank test) a matter of index equality.
    pub bucket_lower_us: Vec<u64>,
}
