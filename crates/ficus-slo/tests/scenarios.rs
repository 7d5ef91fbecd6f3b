//! Simulated traffic against the evaluator and the alert state, with an injected clock: the
//! behaviours the SLO issue asks for (fast pages on outages, silence on a healthy service,
//! tickets on slow burns, the traffic guard, calendar resets, exact numbers).

use ficus_slo::{
    alertmanager_body, default_burn_rules, evaluate, month_start, next_month_start, AlertState,
    Counts, Evaluation, History, Scope, Severity, Sli, Spec, Transition, Window,
};

/// 2023-11-14T22:00:00Z, on the hour.
const T0: i64 = 1_699_999_200;

fn spec(window: Window) -> Spec {
    Spec {
        name: "availability".into(),
        route: "orders".into(),
        scope: Scope::Route,
        sli: Sli::Availability {
            bad_429: false,
            bad_4xx: false,
        },
        objective: 99.9,
        window,
        rules: default_burn_rules(),
        min_requests: 0,
    }
}

fn c(total: u64, bad: u64) -> Counts {
    Counts { total, bad }
}

/// Simulates `good_s` seconds of good traffic at 1,000 requests a minute, then a full
/// outage, evaluating every 5 s with the current minute filling up (its requests in
/// proportion to the seconds elapsed) and the previous one rewritten whole when a minute
/// starts. Returns the seconds from the outage to the page and the rules firing then.
fn outage_page_delay(good_s: i64) -> (i64, Vec<(u32, u32)>) {
    let s = spec(Window::Rolling { days: 30 });
    let mut h = History::new();
    let outage = T0 + 17; // mid-minute
    let start = T0 - good_s;
    let rate = 1000u64;
    // Bad requests of a minute at `now` (seconds since the minute started: `elapsed`).
    let counts = |minute_start: i64, elapsed: i64| {
        let total = rate * elapsed as u64 / 60;
        let good = (outage - minute_start).clamp(0, elapsed) as u64;
        c(total, total - rate * good / 60)
    };
    // All but the last hour before the outage as whole minutes, quickly.
    let ticking_from = (T0 - 3600).max(start);
    for m in start.div_euclid(60)..ticking_from.div_euclid(60) {
        h.set_minute(m, counts(m * 60, 60));
    }
    let mut alerts = AlertState::new();
    let mut now = ticking_from;
    while now <= outage + 300 {
        let minute = now.div_euclid(60);
        let elapsed = now - minute * 60;
        h.set_minute(minute, counts(minute * 60, elapsed));
        if elapsed == 0 {
            h.set_minute(minute - 1, counts((minute - 1) * 60, 60));
        }
        let e = evaluate(&s, &h, now);
        if now < outage {
            assert!(!e.page, "paged before the outage, at {now}");
            assert_eq!(e.window.bad, 0);
        }
        for t in alerts.update(&e) {
            if let Transition::Firing {
                severity: Severity::Page,
                since,
            } = t
            {
                let rules = e
                    .rules
                    .iter()
                    .filter(|r| r.firing && r.severity == Severity::Page)
                    .map(|r| (r.long_s, r.short_s))
                    .collect();
                assert_eq!(alerts.firing(Severity::Page), Some(since));
                return (since - outage, rules);
            }
        }
        now += 5;
    }
    panic!("the outage never paged");
}

/// A full outage at 99.9 % pages within about a minute and not before the outage.
#[test]
fn full_outage_pages_within_about_a_minute() {
    // After an hour of good traffic the 6h window holds that hour only, so the 6h & 30m
    // rule (factor 6: 0.6 % of ~60,000 requests, ~22 s of outage) pages first.
    let (delay, rules) = outage_page_delay(3600);
    assert!(delay > 0 && delay <= 70, "paged {delay} s into the outage");
    assert!((18..=30).contains(&delay), "{delay}");
    assert_eq!(rules, vec![(21_600, 1800)]);
    // After a day of good traffic: the 1h & 5m rule (14.4 * 0.1 % of 60,000 requests is
    // about 864 bad ones, ~52 s of outage).
    let (delay, rules) = outage_page_delay(86_400);
    assert!(
        (45..=70).contains(&delay),
        "paged {delay} s into the outage"
    );
    assert_eq!(rules, vec![(3600, 300)]);
}

/// A steady 0.05 % error rate (half the budget) over 30 simulated days never pages nor
/// tickets, whether the errors are spread evenly or come in small bursts.
#[test]
fn steady_half_budget_burn_never_alerts() {
    for bursty in [false, true] {
        let s = spec(Window::Rolling { days: 30 });
        let mut h = History::new();
        let mut alerts = AlertState::new();
        let first = T0 / 60;
        let minutes = 30 * 1440;
        for i in 0..minutes {
            let m = first + i;
            // 2,000 requests a minute; 1 bad a minute, or 10 bad every 10 minutes.
            let bad = if bursty {
                u64::from(i % 10 == 5) * 10
            } else {
                1
            };
            h.set_minute(m, c(2000, bad));
            if i % 7 == 0 {
                let e = evaluate(&s, &h, m * 60 + 59);
                assert!(!e.page && !e.ticket, "alert on day {}", i / 1440);
                assert!(alerts.update(&e).is_empty());
            }
        }
        let e = evaluate(&s, &h, (first + minutes - 1) * 60 + 59);
        assert!((e.sli.unwrap() - 0.9995).abs() < 1e-9);
        assert!((e.budget_remaining - 0.5).abs() < 1e-6);
        let burn_3d = e.burn(259_200).unwrap().burn_rate.unwrap();
        assert!((burn_3d - 0.5).abs() < 1e-6);
    }
}

/// A 0.4 % error rate (burn rate 4) opens a ticket (1d & 2h at 3) but never a page (the
/// page factors are 14.4 and 6).
#[test]
fn slow_burn_tickets_but_does_not_page() {
    let s = spec(Window::Rolling { days: 30 });
    let mut h = History::new();
    let mut alerts = AlertState::new();
    let first = T0 / 60;
    let mut ticket_since = None;
    for i in 0..2 * 1440 {
        let m = first + i;
        h.set_minute(m, c(1000, 4));
        if i % 5 == 0 {
            let e = evaluate(&s, &h, m * 60 + 59);
            assert!(!e.page);
            let burn_1h = e.burn(3600).unwrap().burn_rate.unwrap();
            assert!((burn_1h - 4.0).abs() < 1e-6);
            for t in alerts.update(&e) {
                match t {
                    Transition::Firing {
                        severity: Severity::Ticket,
                        since,
                    } => ticket_since = Some(since),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }
    // The burn is 4 from the first minute, so the ticket opens at the first evaluation.
    assert_eq!(ticket_since, Some(first * 60 + 59));
    assert_eq!(alerts.firing(Severity::Ticket), ticket_since);
    assert_eq!(alerts.firing(Severity::Page), None);
    let e = evaluate(&s, &h, (first + 2 * 1440 - 1) * 60 + 59);
    let fired: Vec<(u32, u32)> = e
        .rules
        .iter()
        .filter(|r| r.firing)
        .map(|r| (r.long_s, r.short_s))
        .collect();
    assert_eq!(fired, vec![(86_400, 7200), (259_200, 21_600)]);
}

/// Three requests an hour with one error is a burn rate of 333, but with `min_requests`
/// the route does not page; without the guard it would.
#[test]
fn minimum_traffic_guard() {
    let mut guarded = spec(Window::Rolling { days: 30 });
    guarded.min_requests = 50;
    let unguarded = spec(Window::Rolling { days: 30 });
    let mut h = History::new();
    let first = T0 / 60;
    // Requests at minutes 0, 20 and 40 of each hour for a day; the one at minute 40 of
    // the last hour is bad.
    for hour in 0..24 {
        for k in 0..3 {
            let m = first + hour * 60 + k * 20;
            let bad = u64::from(hour == 23 && k == 2);
            h.set_minute(m, c(1, bad));
        }
    }
    let now = (first + 23 * 60 + 42) * 60;
    let e = evaluate(&guarded, &h, now);
    assert!(!e.page && !e.ticket);
    assert!(e.rules.iter().all(|r| r.guarded && !r.firing));
    assert_eq!(e.burn(3600).unwrap().counts, c(3, 1));
    let e = evaluate(&unguarded, &h, now);
    assert!(e.page, "without the guard one error in three pages");
    assert!(e.rules.iter().all(|r| !r.guarded));
}

/// A calendar-month SLO starts the month with its whole budget, whatever happened in the
/// previous month.
#[test]
fn calendar_window_resets_on_the_first() {
    let s = spec(Window::CalendarMonth);
    let feb_1 = next_month_start(T0 + 60 * 86_400); // T0 + 60 days is in January 2024
    assert_eq!(ficus_slo::rfc3339(feb_1), "2024-02-01T00:00:00Z");
    let mut h = History::new();
    // The last 10 days of January at 1 % errors: the budget is overspent.
    for m in (feb_1 - 10 * 86_400) / 60..feb_1 / 60 {
        h.set_minute(m, c(100, 1));
    }
    let before = evaluate(&s, &h, feb_1 - 1);
    assert!(before.budget_remaining < 0.0);
    assert_eq!(before.window_start, month_start(feb_1 - 1));
    assert_eq!(
        ficus_slo::rfc3339(before.window_start),
        "2024-01-01T00:00:00Z"
    );
    assert_eq!(before.period_s, 31 * 86_400);
    // Just after midnight on the 1st, nothing yet this month.
    let after = evaluate(&s, &h, feb_1 + 5);
    assert_eq!(after.window_start, feb_1);
    assert_eq!(after.window, c(0, 0));
    assert_eq!(after.budget_remaining, 1.0);
    assert_eq!(after.period_s, 29 * 86_400); // 2024 is a leap year
                                             // With good traffic in the first minute, still the whole budget; the fast windows
                                             // still see January's errors, as they should.
    h.set_minute(feb_1 / 60, c(50, 0));
    let after = evaluate(&s, &h, feb_1 + 30);
    assert_eq!(after.window, c(50, 0));
    assert_eq!(after.budget_remaining, 1.0);
    assert_eq!(after.sli, Some(1.0));
    assert_eq!(after.burn(3600).unwrap().counts, c(59 * 100 + 50, 59));
    // December into January.
    let jan_1 = month_start(feb_1 - 1);
    let mut h = History::new();
    for m in (jan_1 - 86_400) / 60..jan_1 / 60 {
        h.set_minute(m, c(10, 10));
    }
    assert!(evaluate(&s, &h, jan_1 - 1).budget_remaining < 0.0);
    assert_eq!(evaluate(&s, &h, jan_1).budget_remaining, 1.0);
    assert_eq!(evaluate(&s, &h, jan_1).window_start, jan_1);
}

/// Budget remaining and time to exhaustion against a hand computation.
#[test]
fn budget_numbers_by_hand() {
    let s = spec(Window::Rolling { days: 28 });
    let mut h = History::new();
    let now_min = T0 / 60 + 30;
    // 5 days at 1,000 a minute with 1 error every other minute (0.05 %), then a last hour
    // with 5 errors a minute (0.5 %: burn 5).
    for m in now_min - 5 * 1440 + 1..=now_min - 60 {
        h.set_minute(m, c(1000, u64::from(m % 2 == 0)));
    }
    for m in now_min - 59..=now_min {
        h.set_minute(m, c(1000, 5));
    }
    let e = evaluate(&s, &h, now_min * 60 + 59);
    // total = 7,200 minutes * 1,000 = 7,200,000; bad = 7,140 / 2 + 300 = 3,870.
    assert_eq!(e.window, c(7_200_000, 3_870));
    // budget = 0.1 % of 7,200,000 = 7,200 requests; remaining = 1 - 3,870 / 7,200.
    let remaining = 1.0 - 3_870.0 / 7_200.0; // 0.4625
    assert!((e.budget_remaining - remaining).abs() < 1e-9);
    // 1h burn 5; time to exhaustion = 0.4625 * 28 days / 5 = 223,776 s (2.59 days).
    assert!((e.burn(3600).unwrap().burn_rate.unwrap() - 5.0).abs() < 1e-9);
    let tte = e.time_to_exhaustion_s.unwrap();
    assert!((tte - 0.4625 * 28.0 * 86_400.0 / 5.0).abs() < 1e-3, "{tte}");
    assert!((tte - 223_776.0).abs() < 1e-3);
    // The SLI over the window and over the last 5 minutes.
    assert!((e.sli.unwrap() - (1.0 - 3_870.0 / 7_200_000.0)).abs() < 1e-12);
    assert!((e.sli_5m.unwrap() - 0.995).abs() < 1e-12);
    // 5 is under every page factor and over neither ticket pair: 1d holds
    // (1,440 - 60) / 2 + 300 = 990 bad of 1,440,000, burn 0.6875.
    let burn_1d = e.burn(86_400).unwrap().burn_rate.unwrap();
    assert!((burn_1d - 0.6875).abs() < 1e-9);
    assert!(!e.page && !e.ticket);
}

/// An outage fires the page once, then it resolves once after recovery, with the firing
/// time carried into the resolution; the ticket follows its own rules.
#[test]
fn alert_transitions_fire_once_and_resolve_once() {
    let s = spec(Window::Rolling { days: 30 });
    let mut h = History::new();
    let mut alerts = AlertState::new();
    let first = T0 / 60;
    let mut log: Vec<Transition> = Vec::new();
    let mut last: Option<Evaluation> = None;
    // 6 h good, 10 min outage, 6 h good; a full minute at a time, evaluated every minute.
    for i in 0..(12 * 60 + 10) {
        let m = first + i;
        let outage = (360..370).contains(&i);
        h.set_minute(m, c(1000, if outage { 1000 } else { 0 }));
        let e = evaluate(&s, &h, m * 60 + 59);
        log.extend(alerts.update(&e));
        last = Some(e);
    }
    let pages: Vec<&Transition> = log
        .iter()
        .filter(|t| t.severity() == Severity::Page)
        .collect();
    assert_eq!(pages.len(), 2, "{log:?}");
    let fired = (first + 360) * 60 + 59; // the first outage minute pages at once
    assert_eq!(
        *pages[0],
        Transition::Firing {
            severity: Severity::Page,
            since: fired
        }
    );
    match *pages[1] {
        Transition::Resolved {
            severity: Severity::Page,
            fired_at,
            at,
        } => {
            assert_eq!(fired_at, fired);
            // Resolves when the 5-minute window (1h & 5m rule) and the 30-minute one
            // (6h & 30m rule) have cleared: 30 minutes after the outage ended.
            assert_eq!(at, (first + 369 + 30) * 60 + 59);
        }
        other => panic!("expected a resolution, got {other:?}"),
    }
    assert_eq!(alerts.firing(Severity::Page), None);
    // The ticket: the first outage minute is a burn of 2.8 over both 3d and 6h (factor 1),
    // so it opens with the page; it resolves once the 6-hour window has cleared, 6 hours
    // after the outage, in the last evaluation.
    let tickets: Vec<&Transition> = log
        .iter()
        .filter(|t| t.severity() == Severity::Ticket)
        .collect();
    assert_eq!(
        tickets,
        vec![
            &Transition::Firing {
                severity: Severity::Ticket,
                since: fired
            },
            &Transition::Resolved {
                severity: Severity::Ticket,
                fired_at: fired,
                at: (first + 369 + 360) * 60 + 59
            }
        ]
    );
    // The same evaluation again changes nothing.
    assert!(alerts.update(&last.unwrap()).is_empty());
}

/// Restoring a firing alert after a restart: no second Firing, and the resolution carries
/// the restored time.
#[test]
fn restored_alert_resolves_with_its_original_time() {
    let s = spec(Window::Rolling { days: 30 });
    let mut alerts = AlertState::new();
    alerts.restore(Severity::Page, Some(T0 - 600));
    let mut h = History::new();
    h.set_minute(T0 / 60, c(1000, 1000));
    let e = evaluate(&s, &h, T0 + 59);
    assert!(e.page);
    assert!(!alerts.update(&e).iter().any(|t| matches!(
        t,
        Transition::Firing {
            severity: Severity::Page,
            ..
        }
    )));
    let mut h = History::new();
    h.set_minute(T0 / 60, c(1000, 0));
    let e = evaluate(&s, &h, T0 + 59);
    assert_eq!(
        alerts.update(&e),
        vec![
            Transition::Resolved {
                severity: Severity::Page,
                fired_at: T0 - 600,
                at: T0 + 59
            },
            Transition::Resolved {
                severity: Severity::Ticket,
                fired_at: T0 + 59,
                at: T0 + 59
            }
        ]
    );
}

/// The Alertmanager webhook body: shape, status, labels and RFC 3339 times.
#[test]
fn alertmanager_body_shape() {
    let s = spec(Window::Rolling { days: 30 });
    let mut h = History::new();
    h.set_minute(1_700_000_000 / 60, c(1000, 500));
    let e = evaluate(&s, &h, 1_700_000_000);
    let firing = Transition::Firing {
        severity: Severity::Page,
        since: 1_700_000_000,
    };
    let b = alertmanager_body(&s, &firing, &e, "oncall", "https://ficus.example/");
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "oncall");
    assert_eq!(b["externalURL"], "https://ficus.example/");
    assert_eq!(b["truncatedAlerts"], 0);
    assert_eq!(
        b["groupKey"],
        "{}:{alertname=\"FicusSLOPage\", slo=\"orders/availability\"}"
    );
    assert_eq!(b["groupLabels"]["alertname"], "FicusSLOPage");
    assert_eq!(b["groupLabels"]["slo"], "orders/availability");
    let a = &b["alerts"][0];
    assert_eq!(b["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(a["status"], "firing");
    assert_eq!(a["startsAt"], "2023-11-14T22:13:20Z");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        a["generatorURL"],
        "https://ficus.example/api/v1/routes/orders"
    );
    let l = &a["labels"];
    assert_eq!(l["alertname"], "FicusSLOPage");
    assert_eq!(l["severity"], "page");
    assert_eq!(l["slo"], "orders/availability");
    assert_eq!(l["route"], "orders");
    assert_eq!(l["scope"], "route");
    assert_eq!(l["sloth_id"], "ficus-orders-availability");
    assert_eq!(l["sloth_service"], "ficus");
    assert_eq!(l["sloth_slo"], "orders-availability");
    assert_eq!(b["commonLabels"], *l);
    assert_eq!(b["commonAnnotations"], a["annotations"]);
    let fp = a["fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 16);
    assert!(fp.chars().all(|c| c.is_ascii_hexdigit()));
    let summary = a["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("orders/availability") && summary.contains("page"));
    let description = a["annotations"]["description"].as_str().unwrap();
    assert!(description.contains("50.000 %"), "{description}"); // SLI
    assert!(description.contains("1h & 5m at 14.4"), "{description}");
    assert!(description.contains("500.00"), "{description}"); // burn rate of 50 % errors

    let resolved = Transition::Resolved {
        severity: Severity::Page,
        fired_at: 0,
        at: 1_700_000_000,
    };
    let b2 = alertmanager_body(&s, &resolved, &e, "oncall", "https://ficus.example");
    assert_eq!(b2["status"], "resolved");
    assert_eq!(b2["alerts"][0]["status"], "resolved");
    assert_eq!(b2["alerts"][0]["startsAt"], "1970-01-01T00:00:00Z");
    assert_eq!(b2["alerts"][0]["endsAt"], "2023-11-14T22:13:20Z");
    // Same labels, same fingerprint: Alertmanager-style receivers pair them up.
    assert_eq!(b2["alerts"][0]["fingerprint"], a["fingerprint"]);
    // A ticket is another alert.
    let ticket = Transition::Firing {
        severity: Severity::Ticket,
        since: 1_700_000_000,
    };
    let b3 = alertmanager_body(&s, &ticket, &e, "oncall", "");
    assert_eq!(b3["alerts"][0]["labels"]["alertname"], "FicusSLOTicket");
    assert_ne!(b3["alerts"][0]["fingerprint"], a["fingerprint"]);
    assert_eq!(b3["alerts"][0]["generatorURL"], "/api/v1/routes/orders");
}

/// A latency SLO works the same way over its own counts.
#[test]
fn latency_slo_evaluates_like_availability() {
    let mut s = spec(Window::Rolling { days: 7 });
    s.name = "latency".into();
    s.sli = Sli::Latency {
        threshold_us: 300_000,
    };
    s.objective = 99.0;
    let mut h = History::new();
    for m in T0 / 60 - 120..=T0 / 60 {
        h.set_minute(m, c(100, 20)); // 20 % slow: burn 20 at 99 %
    }
    let e = evaluate(&s, &h, T0 + 59);
    assert_eq!(e.slo, "orders/latency");
    assert!((e.burn(3600).unwrap().burn_rate.unwrap() - 20.0).abs() < 1e-9);
    assert!(e.page);
}
