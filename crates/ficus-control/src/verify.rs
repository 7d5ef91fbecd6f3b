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
//!
//! A job with a `watermark` runs in full first; after an equal full run, its runs are
//! incremental from the highest watermark the last equal run read (kept with the run in the
//! store), minus `watermark_overlap`, until `full_every` after the last full run, when a
//! full run comes back. A run that finds differences does not move the watermark: the next
//! run checks the same rows again, and more. Full runs save a checkpoint in the store after
//! each finished segment; a full run the process did not finish (killed, stopped, failed)
//! is resumed by the job's next run, without scanning its finished segments again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ficus_config::{VerifyJob, VerifyOverlap};
use ficus_store::{
    NewEvent, NewVerifyRun, Store, StoreError, VerifyFreshness, VerifyProgress, VerifyRun,
    VerifyRunScope,
};
use ficus_verify::{Checkpoint, Mode, Overlap, RunOptions, WatermarkValue};
use serde::Serialize;
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
    /// Limits for every run instead of ficus-verify's defaults (each job's
    /// `max_connections` still applies): small segments and pacing for tests.
    pub limits: Option<ficus_verify::Limits>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            first_run_delay: FIRST_RUN_DELAY,
            limits: None,
        }
    }
}

/// What the migration controller asks of the scheduler (through
/// [`ControlPlane::verify_requests`]): run a job now, or hold it (a throttled plan). A
/// held job does not start, and a run of it in progress is abandoned at once; a full run
/// resumes from its last checkpoint when the hold is lifted.
pub struct Requests {
    wanted: Mutex<HashSet<String>>,
    wake: Notify,
    held: watch::Sender<HashSet<String>>,
}

impl Default for Requests {
    fn default() -> Self {
        Requests {
            wanted: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            held: watch::channel(HashSet::new()).0,
        }
    }
}

impl Requests {
    /// Makes the job due now (once it is not held).
    pub fn run(&self, job: &str) {
        self.wanted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.to_string());
        self.wake.notify_one();
    }

    /// Holds the job (`true`) or lets it run again (`false`).
    pub fn hold(&self, job: &str, held: bool) {
        self.held.send_if_modified(|set| {
            if held {
                set.insert(job.to_string())
            } else {
                set.remove(job)
            }
        });
    }

    pub fn is_held(&self, job: &str) -> bool {
        self.held.borrow().contains(job)
    }

    fn take_wanted(&self) -> HashSet<String> {
        std::mem::take(&mut *self.wanted.lock().unwrap_or_else(|p| p.into_inner()))
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

        // Jobs a migration asked for are due now.
        let requests = control.verify_requests();
        for name in requests.take_wanted() {
            match jobs.get_mut(&name) {
                Some(s) => s.due = now,
                None => {
                    if let Some(job) = config.verify.iter().find(|j| j.name == name) {
                        let last = previous.remove(&name).map(|(outcome, _)| outcome);
                        jobs.insert(
                            name,
                            JobState {
                                job: job.clone(),
                                due: now,
                                last,
                            },
                        );
                    }
                }
            }
        }
        let mut held = requests.held.subscribe();
        let next = jobs
            .values()
            .filter(|s| !requests.is_held(&s.job.name))
            .min_by_key(|s| (s.due, s.job.name.clone()))
            .map(|s| (s.job.name.clone(), s.due));
        match next {
            Some((name, due)) if due <= now => {
                let state = jobs.get_mut(&name).expect("the job is scheduled");
                let job = state.job.clone();
                let abandoned = async {
                    loop {
                        if held.borrow_and_update().contains(&job.name) {
                            return;
                        }
                        if held.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                };
                let outcome = tokio::select! {
                    r = run_job(&control, &job, state.last.as_deref(), &options) => r,
                    _ = abandoned => {
                        // Held by a throttled migration: due again as soon as it is let go
                        // (a full run resumes from its checkpoint).
                        tracing::info!(job = %job.name, "verify run paused by a migration's throttle");
                        state.due = now;
                        continue;
                    }
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
            _ = requests.wake.notified() => {}
            _ = held.changed() => {}
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
    j.watermark = job
        .watermark
        .as_ref()
        .map(|column| ficus_verify::Watermark {
            column: column.clone(),
            since: None,
            overlap: job.watermark_overlap.map(overlap),
        });
    j.limits.max_connections = job.max_connections;
    j.recheck = job.recheck;
    j
}

fn overlap(o: VerifyOverlap) -> Overlap {
    match o {
        VerifyOverlap::Duration(d) => Overlap::Time(d),
        VerifyOverlap::Count(n) => Overlap::Count(n),
    }
}

/// What a job's next run will be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunPlan {
    /// `full` or `incremental`.
    pub mode: Mode,
    /// An incremental run: the watermark it starts from (before `watermark_overlap`), the
    /// highest one the last equal run read.
    pub since: Option<WatermarkValue>,
    /// Why this mode, for logs and the status.
    pub reason: String,
    /// A full run the process did not finish: resumed from its checkpoint.
    #[serde(skip)]
    pub resume: Option<Checkpoint>,
    /// Its finished segments.
    pub resumes_segments: Option<u64>,
}

impl RunPlan {
    fn full(reason: impl Into<String>) -> RunPlan {
        RunPlan {
            mode: Mode::Full,
            since: None,
            reason: reason.into(),
            resume: None,
            resumes_segments: None,
        }
    }
}

/// Decides a job's next run from the store: a full run to resume (same fingerprint), a
/// full run (no watermark, none yet for this fingerprint, `full_every` elapsed, or the last
/// full run found differences), or an incremental run from the last equal run's watermark.
pub async fn plan_run(store: &Store, job: &VerifyJob) -> Result<RunPlan, StoreError> {
    let fingerprint = to_job(job).fingerprint();
    if let Some(p) = store.verify_progress(&job.name).await? {
        match serde_json::from_value::<Checkpoint>(p.checkpoint) {
            Ok(cp) if p.fingerprint == fingerprint && p.mode == "full" => {
                let done = cp.segments_done();
                return Ok(RunPlan {
                    resumes_segments: Some(done),
                    resume: Some(cp),
                    ..RunPlan::full(format!(
                        "resuming the full run started at {} ({done} segments finished)",
                        p.started_at
                    ))
                });
            }
            _ => {}
        }
    }
    let Some(full_every) = job.full_every.filter(|_| job.watermark.is_some()) else {
        return Ok(RunPlan::full("no watermark: every run is full"));
    };
    let Some(last_full) = store.latest_full_verify_run(&job.name).await? else {
        return Ok(RunPlan::full("no full run yet"));
    };
    if last_full.fingerprint.as_deref() != Some(fingerprint.as_str()) {
        return Ok(RunPlan::full(
            "the job changed since its last full run (tables, key, columns, expressions or \
             watermark)",
        ));
    }
    let age = unix_ms().saturating_sub(last_full.started_at);
    if age >= i64::try_from(full_every.as_millis()).unwrap_or(i64::MAX) {
        return Ok(RunPlan::full(format!(
            "full_every ({}) elapsed since the last full run",
            ficus_config::units::format_duration(full_every)
        )));
    }
    let basis = store
        .latest_equal_verify_run(&job.name, None)
        .await?
        .filter(|f| f.full_run_id == last_full.id);
    let Some(basis) = basis else {
        return Ok(RunPlan::full(
            "the last full run found differences: only a full run can prove the tables equal",
        ));
    };
    match basis
        .run
        .watermark
        .as_deref()
        .map(str::parse::<WatermarkValue>)
    {
        Some(Ok(since)) => Ok(RunPlan {
            mode: Mode::Incremental,
            since: Some(since),
            reason: format!(
                "incremental from the watermark of run {} ({since})",
                basis.run.id
            ),
            resume: None,
            resumes_segments: None,
        }),
        _ => Ok(RunPlan::full(
            "the last equal run read no watermark (no rows with one)",
        )),
    }
}

/// A job as the status shows it: its latest run, the evidence that its tables are equal,
/// and what its next run will be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub latest: Option<VerifyRun>,
    /// The latest equal run (full, or incremental after an equal full run): what a gate
    /// that demands "verified equal less than N ago" reads (`VerifyFreshness::fresh`).
    pub freshness: Option<VerifyFreshness>,
    pub next: RunPlan,
}

/// The status of one configured job.
pub async fn job_status(store: &Store, job: &VerifyJob) -> Result<JobStatus, StoreError> {
    Ok(JobStatus {
        job: job.name.clone(),
        latest: store
            .verify_runs(Some(&job.name), 1)
            .await?
            .into_iter()
            .next(),
        freshness: store.latest_equal_verify_run(&job.name, None).await?,
        next: plan_run(store, job).await?,
    })
}

/// Keeps the latest checkpoint of a full run in the store, off the run's task (a slow
/// store never holds the scan up; checkpoints that arrive while one is written are
/// coalesced). Ends once the run drops its sender, after storing the last one.
async fn save_progress(
    store: Store,
    job: String,
    fingerprint: String,
    mut rx: watch::Receiver<Option<Checkpoint>>,
) {
    while rx.changed().await.is_ok() {
        let Some(cp) = rx.borrow_and_update().clone() else {
            continue;
        };
        let progress = VerifyProgress {
            job: job.clone(),
            fingerprint: fingerprint.clone(),
            mode: "full".into(),
            started_at: cp.started_at_ms,
            updated_at: unix_ms().max(cp.started_at_ms),
            segments_done: i64::try_from(cp.segments_done()).unwrap_or(i64::MAX),
            checkpoint: serde_json::to_value(&cp).unwrap_or_else(|_| json!({})),
        };
        if let Err(e) = store.save_verify_progress(&progress).await {
            tracing::warn!(job = %job, "cannot save a verify checkpoint: {e}");
        }
    }
}

/// The lowest watermark an incremental run from `since` compares (its overlap subtracted,
/// ficus-verify's default when the job gives none).
fn bound_of(since: WatermarkValue, o: Option<VerifyOverlap>) -> WatermarkValue {
    let o = o.map(overlap).unwrap_or(match since {
        WatermarkValue::Time(_) => Overlap::Time(ficus_verify::defaults::WATERMARK_OVERLAP),
        WatermarkValue::Integer(_) => Overlap::Count(0),
    });
    since.minus(o).unwrap_or(since)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs one job, records it, and appends an event when its outcome changed. Returns the
/// outcome, or `None` when the run could not be recorded.
async fn run_job(
    control: &ControlPlane,
    job: &VerifyJob,
    last: Option<&str>,
    options: &SchedulerOptions,
) -> Option<String> {
    let store = control.store().clone();
    let plan = match plan_run(&store, job).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(job = %job.name, "verify: cannot read the job's earlier runs ({e}); running in full");
            RunPlan::full("the store could not say")
        }
    };
    tracing::info!(job = %job.name, mode = plan.mode.as_str(), "verify run: {}", plan.reason);
    let mut vjob = to_job(job);
    if let Some(limits) = &options.limits {
        vjob.limits = ficus_verify::Limits {
            max_connections: vjob.limits.max_connections,
            ..limits.clone()
        };
    }
    if let Some(w) = vjob.watermark.as_mut() {
        w.since = plan.since;
    }
    let fingerprint = vjob.fingerprint();
    let full = plan.mode == Mode::Full;
    let started_at = unix_ms();
    let (tx, rx) = watch::channel(None);
    let writer = full.then(|| {
        tokio::spawn(save_progress(
            store.clone(),
            job.name.clone(),
            fingerprint.clone(),
            rx,
        ))
    });
    let mut sink = move |cp: &Checkpoint| {
        tx.send_replace(Some(cp.clone()));
        Ok(())
    };
    let run_options = RunOptions {
        resume: plan.resume.clone(),
        // A checkpoint of another plan (the tables changed under it): start over.
        restart_other_plan: true,
        on_checkpoint: if full { Some(&mut sink) } else { None },
    };
    let result = ficus_verify::verify_with(&vjob, run_options, |_| {}).await;
    drop(sink);
    if let Some(writer) = writer {
        // The last checkpoint is stored before the run is recorded (which removes it).
        let _ = writer.await;
    }
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
    let mut scope = VerifyRunScope {
        mode: plan.mode.as_str().into(),
        fingerprint: Some(fingerprint),
        bound: plan
            .since
            .map(|s| bound_of(s, job.watermark_overlap).to_string()),
        watermark: None,
    };
    match result {
        Ok(report) => {
            run.outcome = match report.outcome {
                ficus_verify::Outcome::Equal => "equal",
                ficus_verify::Outcome::Different => "different",
                ficus_verify::Outcome::Lagging => "lagging",
            }
            .into();
            // A resumed run started when its first segments were read.
            if let Some(r) = &report.resumed {
                run.started_at = r.started_at_ms.min(started_at);
            }
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            run.rows_compared = n(report.source.rows);
            run.missing = n(report.summary.missing);
            run.extra = n(report.summary.extra);
            run.changed = n(report.summary.changed);
            scope.mode = report.mode.as_str().into();
            if let Some(w) = &report.watermark {
                scope.bound = w.bound.map(|b| b.to_string());
                scope.watermark = w.next.map(|v| v.to_string());
            }
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
    let recorded = match store.record_verify_run(run, scope).await {
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
            tracing::info!(job = %job.name, outcome = o, mode = %recorded.mode, missing = recorded.missing, extra = recorded.extra, changed = recorded.changed, "verify run")
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
    let rows = match (run.mode.as_str(), &run.bound) {
        ("incremental", Some(bound)) => format!("{} rows written since {bound}", run.rows_compared),
        _ => format!("{} rows", run.rows_compared),
    };
    let what = match run.outcome.as_str() {
        "error" => format!("failed: {}", run.error.as_deref().unwrap_or("")),
        "equal" => format!("equal ({rows})"),
        other => format!(
            "{other}: {} missing, {} extra, {} changed of {rows}",
            run.missing, run.extra, run.changed
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
        "mode": run.mode,
        "bound": run.bound,
        "watermark": run.watermark,
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
            watermark: None,
            watermark_overlap: None,
            full_every: None,
            recheck: None,
        };
        let j = to_job(&job);
        assert_eq!(j.expr, job.expr);
        assert_eq!(j.watermark, None);
        j.validate().unwrap();
        let mut inc = job.clone();
        inc.watermark = Some("updated_at".into());
        inc.watermark_overlap = Some(VerifyOverlap::Duration(Duration::from_secs(5)));
        inc.full_every = Some(Duration::from_secs(3600));
        let j = to_job(&inc);
        let w = j.watermark.as_ref().unwrap();
        assert_eq!(w.column, "updated_at");
        assert_eq!(w.overlap, Some(Overlap::Time(Duration::from_secs(5))));
        assert_eq!(w.since, None);
        // The watermark column is part of what the job compares; the schedule is not.
        assert_ne!(j.fingerprint(), to_job(&job).fingerprint());
        let mut later = inc.clone();
        later.every = Duration::from_secs(600);
        later.full_every = None;
        assert_eq!(to_job(&later).fingerprint(), j.fingerprint());
    }

    #[test]
    fn incremental_bounds_subtract_the_overlap() {
        let t: WatermarkValue = "2026-12-07T10:00:00Z".parse().unwrap();
        assert_eq!(bound_of(t, None).to_string(), "2026-12-07T09:59:00Z");
        assert_eq!(
            bound_of(t, Some(VerifyOverlap::Duration(Duration::from_secs(5)))).to_string(),
            "2026-12-07T09:59:55Z"
        );
        let n = WatermarkValue::Integer(500);
        assert_eq!(bound_of(n, None), n);
        assert_eq!(
            bound_of(n, Some(VerifyOverlap::Count(10))),
            WatermarkValue::Integer(490)
        );
    }
}
