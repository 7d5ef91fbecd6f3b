//! The `[[verify]]` scheduler: runs each job of the running config every `every`, one job
//! at a time, records every run in the store and appends an event (`verify.equal`,
//! `verify.different`, `verify.lagging`, `verify.error`) only when a job's outcome differs
//! from its previous run, so the audit log says when integrity changed, not that it was
//! checked.
//!
//! It runs as a task on the control runtime (never on the gateway's worker threads) and
//! reads the job list from the control plane's snapshot before every wait, so jobs added,
//! changed or removed by an apply are picked up within a second. A job that fails (a bad
//! URL, a missing table) records the error as its run and keeps its schedule.
//!
//! In a fleet only the leader runs jobs. A node that takes the lead over schedules each job
//! `every` after its last recorded run (the old leader's), so a failover neither skips a
//! run nor runs one again at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ficus_config::VerifyJob;
use ficus_store::{NewEvent, NewVerifyRun, VerifyRun};
use serde_json::json;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::ControlPlane;

/// The actor of the events the scheduler appends.
pub const VERIFY_ACTOR: &str = "verify";
/// How long after start (or after a job appears) its first run waits by default: long
/// enough not to compete with the gateway's start.
pub const FIRST_RUN_DELAY: Duration = Duration::from_secs(5);
/// How often the scheduler looks at the running config for added or removed jobs.
const CONFIG_POLL: Duration = Duration::from_secs(1);

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Delay before a job's first run (after start, or after an apply added it).
    pub first_run_delay: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            first_run_delay: FIRST_RUN_DELAY,
        }
    }
}

/// The running scheduler; [`stop`](Self::stop) it on shutdown.
pub struct VerifyScheduler {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Shared {
    /// Makes every job due at once (`run_now`).
    run_now: Notify,
    /// Runs finished (recorded or not) since start, for tests and waiters.
    runs: watch::Sender<u64>,
}

impl VerifyScheduler {
    /// Starts the scheduler on the current runtime (call it from the control runtime).
    pub fn spawn(control: Arc<ControlPlane>, options: SchedulerOptions) -> VerifyScheduler {
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            run_now: Notify::new(),
            runs: watch::channel(0).0,
        });
        let task = tokio::spawn(run(control, options, shared.clone(), stop_rx));
        VerifyScheduler { shared, stop, task }
    }

    /// Makes every configured job due now; they still run one at a time.
    pub fn run_now(&self) {
        self.shared.run_now.notify_one();
    }

    /// The number of runs finished since start; changes after each run.
    pub fn runs(&self) -> watch::Receiver<u64> {
        self.shared.runs.subscribe()
    }

    /// Stops the scheduler, abandoning a run in progress (it is not recorded).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            tracing::warn!("the verify scheduler did not stop within 5s");
        }
    }
}

struct JobState {
    job: VerifyJob,
    due: Instant,
    /// The outcome of the previous run (from the store at start), to detect changes.
    last: Option<String>,
}

async fn run(
    control: Arc<ControlPlane>,
    options: SchedulerOptions,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut previous = previous_runs(&control).await;
    let mut jobs: HashMap<String, JobState> = HashMap::new();
    let mut leadership = control.watch_leadership();
    // Set once this node has waited for the lead: its jobs follow the old leader's runs.
    let mut took_over = false;
    loop {
        if !leadership.borrow_and_update().leads() {
            jobs.clear();
            took_over = true;
            tokio::select! {
                _ = leadership.changed() => {}
                _ = stop.changed() => return,
            }
            if leadership.borrow().leads() {
                previous = previous_runs(&control).await;
            }
            continue;
        }
        // Follow the running config: new jobs are scheduled, changed ones rescheduled
        // (keeping their last outcome), removed ones forgotten.
        let now = Instant::now();
        let config = control.snapshot().effective.clone();
        jobs.retain(|name, _| config.verify.iter().any(|j| &j.name == name));
        for job in &config.verify {
            match jobs.get_mut(&job.name) {
                Some(state) if state.job == *job => {}
                Some(state) => {
                    state.job = job.clone();
                    state.due = state.due.min(now + options.first_run_delay);
                }
                None => {
                    let last = previous.remove(&job.name);
                    let mut due = now + options.first_run_delay;
                    if let (true, Some((_, finished_at))) = (took_over, &last) {
                        // `every` after the old leader's last run, measured on the wall clock.
                        let next_ms = finished_at.saturating_add(
                            i64::try_from(job.every.as_millis()).unwrap_or(i64::MAX),
                        );
                        let wait = u64::try_from(next_ms.saturating_sub(unix_ms())).unwrap_or(0);
                        due = due.max(now + Duration::from_millis(wait));
                    }
                    jobs.insert(
                        job.name.clone(),
                        JobState {
                            job: job.clone(),
                            due,
                            last: last.map(|(outcome, _)| outcome),
                        },
                    );
                }
            }
        }

        let next = jobs
            .values()
            .min_by_key(|s| (s.due, s.job.name.clone()))
            .map(|s| (s.job.name.clone(), s.due));
        match next {
            Some((name, due)) if due <= now => {
                let state = jobs.get_mut(&name).expect("the job is scheduled");
                let job = state.job.clone();
                let outcome = tokio::select! {
                    r = run_job(&control, &job, state.last.as_deref()) => r,
                    _ = stop.changed() => return,
                };
                // The next run is `every` after this one started (a slow run does not
                // drift the schedule by its own length more than once).
                state.due = now + job.every;
                if let Some(outcome) = outcome {
                    state.last = Some(outcome);
                }
                shared.runs.send_modify(|n| *n += 1);
                continue;
            }
            _ => {}
        }
        let wait = next
            .map(|(_, due)| due.saturating_duration_since(now))
            .unwrap_or(CONFIG_POLL)
            .min(CONFIG_POLL);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.run_now.notified() => {
                let now = Instant::now();
                for s in jobs.values_mut() {
                    s.due = now;
                }
                // Jobs not yet known (the config just changed) are due at once too.
                let config = control.snapshot().effective.clone();
                for job in &config.verify {
                    if let Some(s) = jobs.get_mut(&job.name) {
                        s.job = job.clone();
                    } else {
                        let last = previous.remove(&job.name).map(|(outcome, _)| outcome);
                        jobs.insert(job.name.clone(), JobState { job: job.clone(), due: now, last });
                    }
                }
            }
            _ = leadership.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Each job's latest recorded outcome and when that run finished (unix ms).
async fn previous_runs(control: &ControlPlane) -> HashMap<String, (String, i64)> {
    match control.store().latest_verify_runs().await {
        Ok(runs) => runs
            .into_iter()
            .map(|r| (r.job, (r.outcome, r.finished_at)))
            .collect(),
        Err(e) => {
            tracing::warn!("verify scheduler: cannot read previous runs: {e}");
            HashMap::new()
        }
    }
}

/// The verification a `[[verify]]` job asks for.
pub fn to_job(job: &VerifyJob) -> ficus_verify::Job {
    let endpoint = |url: &str, table: &str| ficus_verify::Endpoint {
        url: url.to_string(),
        table: table.to_string(),
        where_clause: job.where_clause.clone(),
    };
    let mut j = ficus_verify::Job::new(
        endpoint(&job.source, &job.source_table),
        endpoint(&job.target, &job.target_table),
        job.key.clone(),
    );
    j.columns = job.columns.clone();
    j.map = job.map.clone();
    j.tolerance = job.tolerance.clone();
    j.expr = job.expr.clone();
    j.limits.max_connections = job.max_connections;
    j
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs one job, records it, and appends an event when its outcome changed. Returns the
/// outcome, or `None` when the run could not be recorded.
async fn run_job(control: &ControlPlane, job: &VerifyJob, last: Option<&str>) -> Option<String> {
    let started_at = unix_ms();
    let result = ficus_verify::verify(&to_job(job), |_| {}).await;
    let finished_at = unix_ms().max(started_at);
    let mut run = NewVerifyRun {
        job: job.name.clone(),
        route: job.route.clone(),
        source_table: job.source_table.clone(),
        target_table: job.target_table.clone(),
        started_at,
        finished_at,
        outcome: "error".into(),
        rows_compared: 0,
        missing: 0,
        extra: 0,
        changed: 0,
        error: None,
        report: json!({}),
    };
    match result {
        Ok(report) => {
            run.outcome = match report.outcome {
                ficus_verify::Outcome::Equal => "equal",
                ficus_verify::Outcome::Different => "different",
                ficus_verify::Outcome::Lagging => "lagging",
            }
            .into();
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            run.rows_compared = n(report.source.rows);
            run.missing = n(report.summary.missing);
            run.extra = n(report.summary.extra);
            run.changed = n(report.summary.changed);
            run.report = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
        }
        Err(e) => {
            let mut text = e.to_string();
            if text.len() > 4000 {
                let mut cut = 4000;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push('…');
            }
            run.error = Some(text);
        }
    }
    let recorded = match control.store().record_verify(run).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(job = %job.name, "cannot record a verify run: {e}");
            return None;
        }
    };
    match recorded.outcome.as_str() {
        "error" => {
            tracing::warn!(job = %job.name, "verify run failed: {}", recorded.error.as_deref().unwrap_or(""))
        }
        o => {
            tracing::info!(job = %job.name, outcome = o, missing = recorded.missing, extra = recorded.extra, changed = recorded.changed, "verify run")
        }
    }
    if last != Some(recorded.outcome.as_str()) {
        let event = change_event(&recorded, last);
        if let Err(e) = control.record_events(vec![event]).await {
            tracing::error!(job = %job.name, "cannot record the verify outcome change: {e}");
        }
    }
    Some(recorded.outcome)
}

fn change_event(run: &VerifyRun, last: Option<&str>) -> NewEvent {
    let tables = format!("{} → {}", run.source_table, run.target_table);
    let what = match run.outcome.as_str() {
        "error" => format!("failed: {}", run.error.as_deref().unwrap_or("")),
        "equal" => format!("equal ({} rows)", run.rows_compared),
        other => format!(
            "{other}: {} missing, {} extra, {} changed of {} rows",
            run.missing, run.extra, run.changed, run.rows_compared
        ),
    };
    let was = match last {
        Some(l) => format!(" (was {l})"),
        None => String::new(),
    };
    let mut ev = NewEvent::new(
        VERIFY_ACTOR,
        format!("verify.{}", run.outcome),
        format!("verify job {:?} ({tables}): {what}{was}", run.job),
    );
    ev.route = run.route.clone();
    ev.data = json!({
        "job": run.job,
        "run": run.id,
        "source_table": run.source_table,
        "target_table": run.target_table,
        "outcome": run.outcome,
        "previous": last,
        "rows_compared": run.rows_compared,
        "missing": run.missing,
        "extra": run.extra,
        "changed": run.changed,
        "error": run.error,
    });
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_reach_the_verify_job() {
        let job = VerifyJob {
            name: "people".into(),
            route: None,
            source: "postgres://a/b".into(),
            target: "postgres://c/d".into(),
            source_table: "customers".into(),
            target_table: "people".into(),
            key: vec!["id".into()],
            columns: Vec::new(),
            map: Vec::new(),
            where_clause: None,
            tolerance: Vec::new(),
            expr: vec![("email_lower".into(), "lower(email)".into())],
            every: Duration::from_secs(60),
            max_connections: 1,
        };
        let j = to_job(&job);
        assert_eq!(j.expr, job.expr);
        j.validate().unwrap();
    }
}
