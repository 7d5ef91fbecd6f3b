//! Alert state per SLO and severity, its transitions, and the Alertmanager webhook body to
//! send for a transition.
//!
//! # Firing and resolving
//!
//! An alert of a severity fires when any rule of that severity fires
//! ([`Evaluation::page`], [`Evaluation::ticket`]) and resolves at the first evaluation where
//! none does. There is no hysteresis on top: the short window of each rule is the
//! workbook's way of resolving soon after the problem stops (a 5-minute window clears about
//! 5 minutes after a full outage ends) while the long window keeps the alert significant,
//! so an alert flaps only if the error rate really crosses the threshold back and forth.
//!
//! # What the caller must do
//!
//! - Keep one [`AlertState`] per SLO and feed it every evaluation with
//!   [`AlertState::update`]; record every [`Transition`] as an event (and notify).
//! - After a restart or a leader change, [`AlertState::restore`] each severity from the
//!   last recorded transition (`since` of an open firing, `None` otherwise) before the first
//!   update, so that a firing alert is not announced twice nor lost.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::eval::Evaluation;
use crate::spec::{Severity, Spec, Window};
use crate::time::{rfc3339, ZERO_TIME};

/// Whether each severity's alert fires, and since when (unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub page: Option<i64>,
    pub ticket: Option<i64>,
}

/// A change of one severity's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Transition {
    /// The alert started firing at `since` (the evaluation's `at`).
    Firing { severity: Severity, since: i64 },
    /// The alert that fired at `fired_at` stopped at `at`.
    Resolved {
        severity: Severity,
        fired_at: i64,
        at: i64,
    },
}

impl Transition {
    pub fn severity(&self) -> Severity {
        match *self {
            Transition::Firing { severity, .. } | Transition::Resolved { severity, .. } => severity,
        }
    }

    /// `"firing"` or `"resolved"`, as Alertmanager spells them.
    pub fn status(&self) -> &'static str {
        match self {
            Transition::Firing { .. } => "firing",
            Transition::Resolved { .. } => "resolved",
        }
    }
}

impl AlertState {
    /// Nothing firing.
    pub fn new() -> Self {
        AlertState::default()
    }

    /// Applies an evaluation; returns what changed, page before ticket (at most one
    /// transition per severity).
    pub fn update(&mut self, eval: &Evaluation) -> Vec<Transition> {
        let mut out = Vec::new();
        for severity in Severity::ALL {
            let slot = self.slot(severity);
            match (*slot, eval.firing(severity)) {
                (None, true) => {
                    *slot = Some(eval.at);
                    out.push(Transition::Firing {
                        severity,
                        since: eval.at,
                    });
                }
                (Some(fired_at), false) => {
                    *slot = None;
                    out.push(Transition::Resolved {
                        severity,
                        fired_at,
                        at: eval.at,
                    });
                }
                _ => {}
            }
        }
        out
    }

    /// Since when `severity` fires, `None` when it does not.
    pub fn firing(&self, severity: Severity) -> Option<i64> {
        match severity {
            Severity::Page => self.page,
            Severity::Ticket => self.ticket,
        }
    }

    /// Sets one severity's state, to resume after a restart or a leader change from the
    /// last recorded transition.
    pub fn restore(&mut self, severity: Severity, since: Option<i64>) {
        *self.slot(severity) = since;
    }

    fn slot(&mut self, severity: Severity) -> &mut Option<i64> {
        match severity {
            Severity::Page => &mut self.page,
            Severity::Ticket => &mut self.ticket,
        }
    }
}

/// The alert name of a severity: `FicusSLOPage` or `FicusSLOTicket` (the same in the
/// generated Prometheus rules).
pub fn alert_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Page => "FicusSLOPage",
        Severity::Ticket => "FicusSLOTicket",
    }
}

/// The Sloth identity labels of a spec, the same in alerts and generated rules:
/// `sloth_id = "ficus-<route>-<name>"`, `sloth_service = "ficus"`,
/// `sloth_slo = "<route>-<name>"`.
pub fn sloth_labels(spec: &Spec) -> [(&'static str, String); 3] {
    [
        ("sloth_id", format!("ficus-{}-{}", spec.route, spec.name)),
        ("sloth_service", "ficus".to_owned()),
        ("sloth_slo", format!("{}-{}", spec.route, spec.name)),
    ]
}

/// A stable fingerprint of a label set: FNV-1a 64 over the labels sorted by name, each fed
/// as `name=value` followed by a 0xff byte (which cannot occur in UTF-8), as 16 lowercase
/// hex digits. Stable across runs, versions and machines; not Alertmanager's own hash.
pub fn fingerprint<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<(&str, &str)> = labels.into_iter().collect();
    sorted.sort_unstable();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (k, v) in sorted {
        feed(k.as_bytes());
        feed(b"=");
        feed(v.as_bytes());
        feed(&[0xff]);
    }
    format!("{h:016x}")
}

/// The body Alertmanager (version "4" of its webhook format) would POST to a webhook
/// receiver for this transition, so that receivers written for Alertmanager (chat
/// bridges, incident tools) work with ficus directly.
///
/// One alert per body. Labels: `alertname` ([`alert_name`]), `severity`, `slo`
/// ([`Spec::id`]), `route`, `scope`, `sli` and the [`sloth_labels`]; annotations:
/// `summary` and a `description` with the evaluation's numbers. `startsAt` is when the
/// alert started firing, `endsAt` is `0001-01-01T00:00:00Z` while it fires and the
/// resolution time after; times are RFC 3339 UTC. `generatorURL` is
/// `external_url/api/v1/routes/<route>` (the route's page, with its events), the
/// `fingerprint` is [`fingerprint`] of the labels, and the group key groups by alert name
/// and SLO.
pub fn alertmanager_body(
    spec: &Spec,
    t: &Transition,
    eval: &Evaluation,
    receiver: &str,
    external_url: &str,
) -> Value {
    let severity = t.severity();
    let id = spec.id();
    let alertname = alert_name(severity);
    let mut labels: Vec<(&str, String)> = vec![
        ("alertname", alertname.to_owned()),
        ("severity", severity.as_str().to_owned()),
        ("slo", id.clone()),
        ("route", spec.route.clone()),
        ("scope", spec.scope.as_str().to_owned()),
        ("sli", spec.sli.kind().to_owned()),
    ];
    labels.extend(sloth_labels(spec));
    labels.sort();
    let fp = fingerprint(labels.iter().map(|(k, v)| (*k, v.as_str())));
    let labels: Map<String, Value> = labels
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();

    let (starts_at, ends_at) = match *t {
        Transition::Firing { since, .. } => (rfc3339(since), ZERO_TIME.to_owned()),
        Transition::Resolved { fired_at, at, .. } => (rfc3339(fired_at), rfc3339(at)),
    };
    let summary = match t {
        Transition::Firing { .. } => {
            format!(
                "SLO {id} is burning its error budget too fast ({})",
                severity.as_str()
            )
        }
        Transition::Resolved { .. } => format!(
            "SLO {id} is back under its {} burn-rate thresholds",
            severity.as_str()
        ),
    };
    let mut annotations = Map::new();
    annotations.insert("summary".into(), Value::String(summary));
    annotations.insert(
        "description".into(),
        Value::String(describe(spec, severity, eval)),
    );

    let generator_url = format!(
        "{}/api/v1/routes/{}",
        external_url.trim_end_matches('/'),
        percent_encode(&spec.route)
    );
    let group_key = format!("{{}}:{{alertname={:?}, slo={:?}}}", alertname, id);
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": t.status(),
        "receiver": receiver,
        "groupLabels": { "alertname": alertname, "slo": id },
        "commonLabels": labels.clone(),
        "commonAnnotations": annotations.clone(),
        "externalURL": external_url,
        "alerts": [{
            "status": t.status(),
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": generator_url,
            "fingerprint": fp,
        }],
    })
}

/// The numbers of an evaluation in one paragraph.
fn describe(spec: &Spec, severity: Severity, e: &Evaluation) -> String {
    let pct = |r: Option<f64>| match r {
        Some(r) => format!("{:.3} %", r * 100.0),
        None => "no requests".to_owned(),
    };
    let window = match spec.window {
        Window::Rolling { days } => format!("the last {days} days"),
        Window::CalendarMonth => "this calendar month".to_owned(),
    };
    let mut out = format!(
        "Route {} ({} scope), {} SLO {} %: SLI {} over {} ({} of {} requests bad), {} over the last 5 minutes; {:.1} % of the error budget remains",
        spec.route,
        spec.scope.as_str(),
        spec.sli.kind(),
        spec.objective,
        pct(e.sli),
        window,
        e.window.bad,
        e.window.total,
        pct(e.sli_5m),
        e.budget_remaining * 100.0,
    );
    if let Some(b) = e.burn(3600).and_then(|w| w.burn_rate) {
        out.push_str(&format!("; 1h burn rate {b:.2}"));
    }
    match e.time_to_exhaustion_s {
        Some(s) if s <= 0.0 => out.push_str(", budget exhausted"),
        Some(s) => out.push_str(&format!(", exhausted in {} at that rate", duration(s))),
        None => {}
    }
    let rules: Vec<String> = e
        .rules
        .iter()
        .filter(|r| r.severity == severity)
        .map(|r| {
            let b = |w: &crate::WindowBurn| {
                w.burn_rate
                    .map_or_else(|| "-".to_owned(), |b| format!("{b:.2}"))
            };
            format!(
                "{} & {} at {}: {} & {}{}",
                crate::rules::prom_duration(r.long_s),
                crate::rules::prom_duration(r.short_s),
                r.factor,
                b(&r.long),
                b(&r.short),
                if r.firing {
                    " (firing)"
                } else if r.guarded {
                    " (too few requests)"
                } else {
                    ""
                }
            )
        })
        .collect();
    if !rules.is_empty() {
        out.push_str(&format!(
            ". {} rules (long & short window at factor: burn rates): {}",
            severity.as_str(),
            rules.join("; ")
        ));
    }
    out.push('.');
    out
}

/// `12d 3h`, `5h 4m`, `3m 20s`.
fn duration(s: f64) -> String {
    let s = s.round() as u64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {sec}s")
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_order_independent_and_stable() {
        let a = fingerprint([("a", "1"), ("b", "2")]);
        let b = fingerprint([("b", "2"), ("a", "1")]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        assert_ne!(a, fingerprint([("a", "1"), ("b", "3")]));
        // "a=" + "1=" and "a=1" + "=" differ thanks to the separator.
        assert_ne!(
            fingerprint([("a", "1=")]),
            fingerprint([("a", "1"), ("", "")])
        );
        // FNV-1a 64 of the empty input is the offset basis.
        assert_eq!(fingerprint([]), "cbf29ce484222325");
        // Known FNV-1a 64 value: "a" -> af63dc4c8601ec8c; here "a=b\xff".
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in b"a=b\xff" {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!(fingerprint([("a", "b")]), format!("{h:016x}"));
    }

    #[test]
    fn durations_and_encoding() {
        assert_eq!(duration(54_270.0), "15h 4m");
        assert_eq!(duration(200.0), "3m 20s");
        assert_eq!(duration(1_000_000.0), "11d 13h");
        assert_eq!(percent_encode("a b/c-d"), "a%20b%2Fc-d");
    }

    #[test]
    fn restore_and_firing() {
        let mut s = AlertState::new();
        assert_eq!(s.firing(Severity::Page), None);
        s.restore(Severity::Page, Some(42));
        assert_eq!(s.firing(Severity::Page), Some(42));
        assert_eq!(s.firing(Severity::Ticket), None);
        s.restore(Severity::Page, None);
        assert_eq!(s, AlertState::new());
    }
}
