//! The migration controller: walks each `[[migration]]` plan through its steps (expand,
//! dual-write, backfill, verify, switch reads, switch writes, contract), each with its
//! action, its gate, its timeout and its way back (docs/migrations.md).
//!
//! One task on the control runtime, on the leader only. Actions that are ficus's own (a
//! route's stage, its rollout, a verify run) go through the control plane's one apply path
//! or the verify scheduler; the others are the file's commands, run by the leader (only on a
//! node whose own file sets `[node] migration_commands = true`) with the step's timeout, their
//! exit status and the tail of their output kept in the step's event.
//!
//! A plan's state (its step, whether the step's action began, its status) is the data of
//! its latest `migration.*` event, so a restart or a new leader resumes it: a step whose
//! command was running is started again (commands must be idempotent, like any schema tool's
//! or backfill's re-run), a gate is judged again from the evidence in the store.
//!
//! Gates only pass on evidence gathered after their step began: verify runs that started
//! after the step asked for them, shadow comparisons counted from the step's start, time on
//! modern measured from the switch. A gate that finds a fault (a verify run that differs, a
//! failed command, a rolled-back rollout, modern's SLO paging) blocks the plan with the
//! evidence named; one that waits (too few comparisons, legacy still serving) holds until
//! the step's timeout, then blocks. Nothing moves past a blocked step until an operator
//! says `advance` (try the step again) or `back` (take its way back).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ficus_config::{Command, Migration, MigrationStep, Stage, StepKind, Throttle, Weight};
use ficus_store::{Event, EventFilter, NewEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::rollout::RolloutController;
use crate::{unix_ms, ControlError, ControlPlane};

/// The actor of the controller's events.
pub const MIGRATION_ACTOR: &str = "migration";
/// How often the controller looks at every plan.
pub const TICK: Duration = Duration::from_secs(1);
/// At most one `migration.gate` event per plan this often while a gate holds for the
/// same reasons; a change of reasons is recorded at once.
pub const HOLD_EVENT_EVERY: Duration = Duration::from_secs(60);
/// How long an operator's command sent to a node that does not lead waits for the leader.
pub const FORWARD_WAIT: Duration = Duration::from_secs(10);
/// Events read per page to find a plan's state and timeline.
const EVENTS_READ: u32 = 500;
/// The most `migration.*` events read back to find one plan's.
const EVENTS_SCANNED: usize = 100_000;
/// A plan's timeline: its latest events.
pub const TIMELINE: usize = 500;

/// Where a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The current step's action runs or its gate is being judged.
    Running,
    /// The current step is manual: it waits for `advance`.
    Waiting,
    /// Paused by an operator: nothing runs until `resume`.
    Paused,
    /// A gate found a fault, a command failed, or the step timed out: waits for `advance`
    /// (try again) or `back`.
    Blocked,
    /// Every step done.
    Completed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Paused => "paused",
            Status::Blocked => "blocked",
            Status::Completed => "completed",
        }
    }
}

/// The persisted part of a plan (in its events' data, under `migration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    /// Index of the current step (`steps.len()` once completed).
    pub step: usize,
    /// The current step's name (a changed plan is matched by step name).
    pub step_name: String,
    pub status: Status,
    /// Whether the current step's action began.
    pub started: bool,
    /// When the current step began (unix ms): its gate wants evidence from after it.
    pub since_ms: i64,
    /// The routes' stages and weights (percent) before the step moved them: its way back.
    #[serde(default)]
    pub before: Vec<(String, String, f64)>,
    /// `dual_write`: each write route's (compared, differing) when the step began.
    #[serde(default)]
    pub baseline: Vec<(String, i64, i64)>,
    /// `verify` and `contract`: when the step asked for the verify runs (unix ms).
    #[serde(default)]
    pub verify_requested_ms: Option<i64>,
    /// `contract`: its command ran (there is no way back after it).
    #[serde(default)]
    pub contracted: bool,
    /// Switch steps: the routes were moved (after the verify jobs were proven fresh).
    #[serde(default)]
    pub switched: bool,
}

/// One piece of a gate's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// What a gate said at its latest look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateView {
    /// The step it judged.
    #[serde(default)]
    pub step: String,
    /// `pass`, `hold` or `fail`.
    pub outcome: String,
    pub checks: Vec<Check>,
    pub at_ms: i64,
}

impl GateView {
    fn new(step: &MigrationStep, outcome: &str, checks: Vec<Check>) -> GateView {
        GateView {
            step: step.name.clone(),
            outcome: outcome.into(),
            checks,
            at_ms: unix_ms(),
        }
    }
}

/// The throttle's state of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThrottleView {
    pub paused: bool,
    /// Why (the bound crossed) while paused, or the latest numbers.
    pub reason: String,
    pub since_ms: Option<i64>,
    /// Times paused since this node leads.
    pub pauses: u64,
}

/// A step as the status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub name: String,
    pub kind: &'static str,
    /// `done`, `current` or `pending`.
    pub state: &'static str,
    pub manual: bool,
    pub timeout_s: f64,
    /// What the step does, and its way back, in words.
    pub action: String,
    pub way_back: String,
}

/// A plan as `ficus migration status` and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationView {
    pub name: String,
    pub status: Status,
    pub step: usize,
    pub step_name: Option<String>,
    pub started: bool,
    pub since_ms: i64,
    pub routes: Vec<String>,
    pub write_routes: Vec<String>,
    pub verify: Vec<String>,
    pub steps: Vec<StepView>,
    /// The latest gate evaluation (this node's when it leads, else the latest recorded).
    pub gate: Option<GateView>,
    pub throttle: Option<ThrottleView>,
    /// Whether this node ran the evaluation (it leads).
    pub live: bool,
}

struct CommandOutcome {
    code: Option<i32>,
    error: Option<String>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    elapsed_ms: u64,
}

impl CommandOutcome {
    fn ok(&self) -> bool {
        self.code == Some(0) && self.error.is_none() && !self.timed_out
    }

    fn summary(&self) -> String {
        if self.timed_out {
            format!("timed out after {} ms", self.elapsed_ms)
        } else if let Some(e) = &self.error {
            format!("could not run: {e}")
        } else {
            match self.code {
                Some(c) => format!("exited {c} after {} ms", self.elapsed_ms),
                None => format!("killed by a signal after {} ms", self.elapsed_ms),
            }
        }
    }

    fn json(&self, cmd: &Command) -> Value {
        json!({
            "command": cmd.display(),
            "exit_code": self.code,
            "error": self.error,
            "timed_out": self.timed_out,
            "elapsed_ms": self.elapsed_ms,
            "stdout": self.stdout,
            "stderr": self.stderr,
        })
    }
}

/// Runs a command to its end or `timeout` (then kills it), keeping the tail of its output.
async fn run_command(
    cmd: &Command,
    dir: Option<PathBuf>,
    env: &[(String, String)],
    timeout: Duration,
) -> CommandOutcome {
    let started = Instant::now();
    let mut c = tokio::process::Command::new(&cmd.argv[0]);
    c.args(&cmd.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => {
            return CommandOutcome {
                code: None,
                error: Some(format!("{}: {e}", cmd.argv[0])),
                timed_out: false,
                stdout: String::new(),
                stderr: String::new(),
                elapsed_ms: 0,
            }
        }
    };
    let out = child.stdout.take();
    let err = child.stderr.take();
    let read = |r: Option<tokio::process::ChildStdout>| async move {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            tail(&mut r, &mut buf).await;
        }
        buf
    };
    let read_err = |r: Option<tokio::process::ChildStderr>| async move {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            tail(&mut r, &mut buf).await;
        }
        buf
    };
    let waited = tokio::time::timeout(timeout, async {
        let (o, e, status) = tokio::join!(read(out), read_err(err), child.wait());
        (o, e, status)
    })
    .await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match waited {
        Ok((o, e, status)) => CommandOutcome {
            code: status.as_ref().ok().and_then(|s| s.code()),
            error: status.err().map(|e| e.to_string()),
            timed_out: false,
            stdout: String::from_utf8_lossy(&o).into_owned(),
            stderr: String::from_utf8_lossy(&e).into_owned(),
            elapsed_ms,
        },
        Err(_) => {
            let _ = child.kill().await;
            CommandOutcome {
                code: None,
                error: None,
                timed_out: true,
                stdout: String::new(),
                stderr: String::new(),
                elapsed_ms,
            }
        }
    }
}

/// Reads a stream to its end, keeping its last `MIGRATION_OUTPUT_BYTES`.
async fn tail<R: tokio::io::AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) {
    let cap = ficus_config::defaults::MIGRATION_OUTPUT_BYTES;
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                // Cut once in a while, not on every read.
                if buf.len() > cap * 2 {
                    buf.drain(..buf.len() - cap);
                }
            }
        }
    }
    if buf.len() > cap {
        buf.drain(..buf.len() - cap);
    }
}

/// Where a `contract` step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContractPhase {
    /// Waiting for the plan's routes to be quiet on legacy.
    Quiet,
    /// The final verify runs were asked for.
    Verifying,
    /// Its command runs.
    Running,
}

struct Live {
    state: State,
    command: Option<(Command, JoinHandle<CommandOutcome>)>,
    gate: Option<GateView>,
    last_hold: Option<(Instant, String)>,
    soak_since: Option<Instant>,
    /// Per route: legacy's request count last seen and since when it has not grown.
    quiet: HashMap<String, (u64, Instant)>,
    contract: ContractPhase,
    throttle: ThrottleView,
}

impl Live {
    fn new(state: State) -> Live {
        Live {
            state,
            command: None,
            gate: None,
            last_hold: None,
            soak_since: None,
            quiet: HashMap::new(),
            contract: ContractPhase::Quiet,
            throttle: ThrottleView::default(),
        }
    }
}

struct Inner {
    control: Arc<ControlPlane>,
    rollout: Option<Arc<RolloutController>>,
    live: Mutex<HashMap<String, Live>>,
    kick: Notify,
    tick: Duration,
    /// Serialises ticks and commands.
    busy: tokio::sync::Mutex<()>,
    /// The last `migration.requested` event looked at (commands sent through other nodes).
    requests_seen: Mutex<Option<i64>>,
}

/// The running controller.
pub struct MigrationController {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl MigrationController {
    /// Starts the controller on the current (control) runtime. With the rollout controller,
    /// switch steps start the routes' `[route.rollout]`s.
    pub fn spawn(
        control: Arc<ControlPlane>,
        rollout: Option<Arc<RolloutController>>,
        tick: Duration,
    ) -> Arc<MigrationController> {
        let inner = Arc::new(Inner {
            control,
            rollout,
            live: Mutex::new(HashMap::new()),
            kick: Notify::new(),
            tick,
            busy: tokio::sync::Mutex::new(()),
            requests_seen: Mutex::new(None),
        });
        let (stop, mut stopped) = watch::channel(false);
        let me = inner.clone();
        let task = tokio::spawn(async move {
            let mut led = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(me.tick) => {}
                    _ = me.kick.notified() => {}
                    _ = stopped.changed() => break,
                }
                let _g = me.busy.lock().await;
                let leads = me.control.leadership().leads();
                if leads != led {
                    me.forget();
                    led = leads;
                }
                if !leads {
                    continue;
                }
                if let Err(e) = me.tick_once().await {
                    tracing::warn!(error = %e, "migration tick failed; trying again next tick");
                }
            }
            me.forget();
        });
        Arc::new(MigrationController {
            inner,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// Stops the controller: a running command is killed (the step starts it again when
    /// the plan resumes), throttle holds are lifted.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// Looks at every plan now (tests, and after a command).
    pub async fn tick_now(&self) -> Result<(), ControlError> {
        let _g = self.inner.busy.lock().await;
        self.inner.tick_once().await
    }

    /// Every plan of the running config and where it is.
    pub async fn view(&self) -> Result<Vec<MigrationView>, ControlError> {
        let snap = self.inner.control.snapshot();
        let mut out = Vec::new();
        for m in &snap.effective.migrations {
            out.push(self.inner.view(m).await?);
        }
        Ok(out)
    }

    /// One plan and its timeline (its events, newest first).
    pub async fn detail(&self, name: &str) -> Result<(MigrationView, Vec<Event>), ControlError> {
        let m = self.inner.plan(name)?;
        let view = self.inner.view(&m).await?;
        let timeline = self.inner.events(name, TIMELINE).await?;
        Ok((view, timeline))
    }

    /// An operator's command: `advance`, `pause`, `resume` or `back`. On a node that does
    /// not lead, it is handed to the leader through the store; the answer is the leader's
    /// event (or, if the leader did not act within [`FORWARD_WAIT`], the request's).
    pub async fn command(
        &self,
        name: &str,
        command: &str,
        actor: &str,
        message: &str,
    ) -> Result<Vec<Event>, ControlError> {
        if !matches!(command, "advance" | "pause" | "resume" | "back") {
            return Err(ControlError::BadRequest(format!(
                "unknown migration command {command:?}; use advance, pause, resume or back"
            )));
        }
        let m = self.inner.plan(name)?;
        if self.inner.control.leadership().leads() {
            let _g = self.inner.busy.lock().await;
            let events = self.inner.command(&m, command, actor, message).await?;
            self.inner.kick.notify_one();
            return Ok(events);
        }
        // Hand it to the leader.
        let req = self
            .inner
            .control
            .record_events(vec![NewEvent::new(
                actor,
                "migration.requested",
                format!("{command} requested: {message}"),
            )
            .with_data(json!({ "request": { "name": name, "command": command, "actor": actor, "message": message } }))])
            .await?;
        let id = req[0].id;
        let deadline = Instant::now() + FORWARD_WAIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let answers = self
                .inner
                .control
                .store()
                .events(EventFilter {
                    kind_prefix: Some("migration.".into()),
                    after_id: Some(id),
                    limit: 100,
                    ..Default::default()
                })
                .await?;
            let mine: Vec<Event> = answers
                .into_iter()
                .filter(|e| e.data.get("request_id").and_then(Value::as_i64) == Some(id))
                .collect();
            if let Some(err) = mine.iter().find(|e| e.kind == "migration.refused") {
                return Err(ControlError::Conflict(err.message.clone()));
            }
            if !mine.is_empty() {
                return Ok(mine);
            }
        }
        Ok(req)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn forget(&self) {
        let mut live = lock(&self.live);
        for (_, l) in live.drain() {
            if let Some((_, h)) = l.command {
                h.abort();
            }
        }
        // Holds belong to the node that leads.
        let snap = self.control.snapshot();
        for m in &snap.effective.migrations {
            for j in &m.verify {
                self.control.verify_requests().hold(j, false);
            }
        }
        *lock(&self.requests_seen) = None;
    }

    fn plan(&self, name: &str) -> Result<Migration, ControlError> {
        let snap = self.control.snapshot();
        snap.effective
            .migrations
            .iter()
            .find(|m| m.name == name)
            .cloned()
            .ok_or_else(|| {
                ControlError::NotFound(format!(
                    "no migration plan named {name:?} in the running config"
                ))
            })
    }

    /// The plan's events, newest first: at most `want`, found by paging back through the
    /// `migration.*` events of every plan (at most [`EVENTS_SCANNED`] of them), so a plan
    /// that sat idle while others wrote is still found.
    async fn events(&self, name: &str, want: usize) -> Result<Vec<Event>, ControlError> {
        let mine = |e: &Event| {
            e.data
                .pointer("/migration/name")
                .or_else(|| e.data.pointer("/request/name"))
                .and_then(Value::as_str)
                == Some(name)
        };
        let mut out = Vec::new();
        let mut before = None;
        let mut scanned = 0usize;
        while out.len() < want && scanned < EVENTS_SCANNED {
            let page = self
                .control
                .store()
                .events(EventFilter {
                    kind_prefix: Some("migration.".into()),
                    before_id: before,
                    limit: EVENTS_READ,
                    ..Default::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            scanned += page.len();
            let full = page.len() < EVENTS_READ as usize;
            out.extend(page.into_iter().filter(|e| mine(e)));
            if full {
                break;
            }
        }
        out.truncate(want);
        Ok(out)
    }

    /// The state in the plan's latest event, if any.
    async fn stored(&self, name: &str) -> Result<Option<(State, Option<GateView>)>, ControlError> {
        // Every event of the plan but a forwarded request carries its state.
        let events = self.events(name, 50).await?;
        let state = events
            .iter()
            .find_map(|e| serde_json::from_value::<State>(e.data.get("migration")?.clone()).ok());
        let gate = events
            .iter()
            .find_map(|e| serde_json::from_value::<GateView>(e.data.get("gate")?.clone()).ok());
        Ok(state.map(|s| (s, gate)))
    }

    async fn view(&self, m: &Migration) -> Result<MigrationView, ControlError> {
        let leads = self.control.leadership().leads();
        let live = if leads {
            let live = lock(&self.live);
            live.get(&m.name)
                .map(|l| (l.state.clone(), l.gate.clone(), l.throttle.clone()))
        } else {
            None
        };
        let is_live = live.is_some();
        let (state, gate, throttle) = match live {
            Some((s, g, t)) => (Some(s), g, Some(t)),
            None => match self.stored(&m.name).await? {
                Some((s, g)) => (Some(s), g, None),
                None => (None, None, None),
            },
        };
        let state = state.unwrap_or_else(|| initial(m));
        let step = state.step.min(m.steps.len());
        let steps = m
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepView {
                name: s.name.clone(),
                kind: s.kind.as_str(),
                state: if i < step || state.status == Status::Completed {
                    "done"
                } else if i == step {
                    "current"
                } else {
                    "pending"
                },
                manual: s.manual,
                timeout_s: s.timeout.as_secs_f64(),
                action: describe_action(m, s),
                way_back: describe_way_back(m, s),
            })
            .collect();
        Ok(MigrationView {
            name: m.name.clone(),
            status: state.status,
            step,
            step_name: m.steps.get(step).map(|s| s.name.clone()),
            started: state.started,
            since_ms: state.since_ms,
            routes: m.read_routes.clone(),
            write_routes: m.write_routes.clone(),
            verify: m.verify.clone(),
            steps,
            gate,
            throttle: throttle.filter(|_| m.throttle.is_some()),
            live: is_live,
        })
    }

    async fn tick_once(&self) -> Result<(), ControlError> {
        self.take_requests().await?;
        let snap = self.control.snapshot();
        let plans = snap.effective.migrations.clone();
        // Plans removed from the config: forget them (and lift their holds).
        {
            let mut live = lock(&self.live);
            live.retain(|name, l| {
                let keep = plans.iter().any(|m| &m.name == name);
                if !keep {
                    if let Some((_, h)) = l.command.take() {
                        h.abort();
                    }
                }
                keep
            });
        }
        for m in &plans {
            let known = lock(&self.live).contains_key(&m.name);
            if !known {
                self.adopt(m).await?;
            }
            if let Err(e) = self.drive(m).await {
                tracing::warn!(plan = %m.name, error = %e, "migration step failed to act");
            }
        }
        Ok(())
    }

    /// Commands other nodes recorded for the leader.
    async fn take_requests(&self) -> Result<(), ControlError> {
        let seen = *lock(&self.requests_seen);
        let Some(after) = seen else {
            // Taking the lead: requests from before are not this leader's to act on.
            let latest = self
                .control
                .store()
                .events(EventFilter {
                    limit: 1,
                    ..Default::default()
                })
                .await?;
            *lock(&self.requests_seen) = Some(latest.first().map_or(0, |e| e.id));
            return Ok(());
        };
        let requests = self
            .control
            .store()
            .events(EventFilter {
                kind: Some("migration.requested".into()),
                after_id: Some(after),
                limit: 100,
                ..Default::default()
            })
            .await?;
        for r in requests {
            *lock(&self.requests_seen) = Some(r.id);
            let get = |k: &str| {
                r.data
                    .pointer(&format!("/request/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let (name, command, actor, message) =
                (get("name"), get("command"), get("actor"), get("message"));
            let result = match self.plan(&name) {
                Ok(m) => {
                    let known = lock(&self.live).contains_key(&m.name);
                    if !known {
                        self.adopt(&m).await?;
                    }
                    self.command_tagged(&m, &command, &actor, &message, Some(r.id))
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.control
                    .record_events_as_leader(vec![NewEvent::new(
                        MIGRATION_ACTOR,
                        "migration.refused",
                        format!("{command} of migration {name:?} refused: {e}"),
                    )
                    .with_data(json!({ "request_id": r.id, "request": { "name": name } }))])
                    .await?;
            }
        }
        Ok(())
    }

    /// First sight of a plan: resume its stored state, or begin at its first step.
    async fn adopt(&self, m: &Migration) -> Result<(), ControlError> {
        let stored = self.stored(&m.name).await?.map(|(s, _)| s);
        let Some(mut state) = stored else {
            let mut state = initial(m);
            let first = &m.steps[0];
            let (kind, message) = if first.manual {
                state.status = Status::Waiting;
                (
                    "migration.waiting",
                    format!(
                        "migration {:?}: step {:?} waits for `ficus migration advance`",
                        m.name, first.name
                    ),
                )
            } else {
                (
                    "migration.started",
                    format!("migration {:?} started", m.name),
                )
            };
            self.record(&state, kind, &message, json!({}), None).await?;
            lock(&self.live).insert(m.name.clone(), Live::new(state.clone()));
            return Ok(());
        };
        // The plan may have changed: find the step by name.
        if state.status != Status::Completed {
            match m.steps.iter().position(|s| s.name == state.step_name) {
                Some(i) => state.step = i,
                None => {
                    let was = state.step_name.clone();
                    state.step = state.step.min(m.steps.len().saturating_sub(1));
                    state.step_name = m.steps[state.step].name.clone();
                    state.status = Status::Blocked;
                    self.record(
                        &state,
                        "migration.blocked",
                        &format!(
                            "migration {:?}: its step {was:?} is no longer in the plan; \
                             advance to run step {:?}, or back",
                            m.name, state.step_name
                        ),
                        json!({}),
                        None,
                    )
                    .await?;
                    lock(&self.live).insert(m.name.clone(), Live::new(state.clone()));
                    return Ok(());
                }
            }
        }
        let resumed = state.status == Status::Running && state.started;
        lock(&self.live).insert(m.name.clone(), Live::new(state.clone()));
        if resumed {
            // A command that was running died with its leader: start the step's action again.
            let step = &m.steps[state.step];
            if step.run.is_some() && !state.contracted && step.kind != StepKind::Contract {
                self.start_command(m, step, step.run.clone().expect("checked"))
                    .await;
            }
        }
        Ok(())
    }

    /// Records an event about the plan carrying its state, by the controller.
    async fn record(
        &self,
        state: &State,
        kind: &str,
        message: &str,
        extra: Value,
        request_id: Option<i64>,
    ) -> Result<Event, ControlError> {
        self.record_by(MIGRATION_ACTOR, state, kind, message, extra, request_id)
            .await
    }

    /// The same, by `actor` (an operator's command).
    async fn record_by(
        &self,
        actor: &str,
        state: &State,
        kind: &str,
        message: &str,
        extra: Value,
        request_id: Option<i64>,
    ) -> Result<Event, ControlError> {
        let mut data = json!({ "migration": state });
        if let (Value::Object(d), Value::Object(x)) = (&mut data, extra) {
            d.extend(x);
        }
        if let Some(id) = request_id {
            data["request_id"] = json!(id);
        }
        let ev = NewEvent::new(actor, kind, message).with_data(data);
        let mut out = self.control.record_events_as_leader(vec![ev]).await?;
        Ok(out.remove(0))
    }

    fn set_state(&self, name: &str, state: &State) {
        if let Some(l) = lock(&self.live).get_mut(name) {
            l.state = state.clone();
        }
    }

    fn state(&self, name: &str) -> Option<State> {
        lock(&self.live).get(name).map(|l| l.state.clone())
    }

    async fn drive(&self, m: &Migration) -> Result<(), ControlError> {
        let Some(state) = self.state(&m.name) else {
            return Ok(());
        };
        if let Some(step) = m.steps.get(state.step) {
            self.throttle(m, step, &state).await;
        }
        if state.status != Status::Running {
            return Ok(());
        }
        let step = m.steps[state.step].clone();
        if !state.started {
            return self.start_step(m, &step, state).await;
        }
        let elapsed = Duration::from_millis(u64::try_from(unix_ms() - state.since_ms).unwrap_or(0));
        let verdict = self.judge(m, &step, &state).await?;
        // Judging may have moved the step on (a switch made, verify runs asked for): what
        // is recorded next must carry the state as it is now, or a new leader would
        // resume from before it (and switch twice).
        let state = self.state(&m.name).unwrap_or(state);
        match verdict {
            Verdict::Pass(checks, output) => self.step_done(m, &step, state, checks, output).await,
            Verdict::Fail(checks, output) => {
                self.block(m, &step, state, "failed", checks, output).await
            }
            Verdict::Hold(checks) if elapsed >= step.timeout => {
                let mut checks = checks;
                checks.push(check(
                    "timeout",
                    false,
                    format!(
                        "the step has run {} of its timeout {}",
                        fmt_d(elapsed),
                        fmt_d(step.timeout)
                    ),
                ));
                if let Some((_, h)) = lock(&self.live)
                    .get_mut(&m.name)
                    .and_then(|l| l.command.take())
                {
                    h.abort();
                }
                self.block(m, &step, state, "timed out", checks, None).await
            }
            Verdict::Hold(checks) => self.hold(m, &step, &state, checks).await,
        }
    }

    /// Starts a step's action and records that it began.
    async fn start_step(
        &self,
        m: &Migration,
        step: &MigrationStep,
        mut state: State,
    ) -> Result<(), ControlError> {
        state.started = true;
        state.since_ms = unix_ms();
        state.before.clear();
        state.baseline.clear();
        state.verify_requested_ms = None;
        state.contracted = false;
        state.switched = false;
        if let Some(l) = lock(&self.live).get_mut(&m.name) {
            l.gate = None;
            l.last_hold = None;
            l.soak_since = None;
            l.quiet.clear();
            l.contract = ContractPhase::Quiet;
        }
        let snap = self.control.snapshot();
        let stage_of = |r: &str| {
            snap.effective.all_routes().find(|x| x.name == r).map(|x| {
                (
                    x.name.clone(),
                    x.stage.as_str().to_string(),
                    x.weight.percent(),
                )
            })
        };
        match step.kind {
            StepKind::Expand | StepKind::Backfill => {
                if let Some(refusal) = self.commands_refused() {
                    self.set_state(&m.name, &state);
                    return self
                        .block(m, step, state, "cannot run", vec![refusal], None)
                        .await;
                }
            }
            StepKind::DualWrite => {
                state.before = m.write_routes.iter().filter_map(|r| stage_of(r)).collect();
                state.baseline = m
                    .write_routes
                    .iter()
                    .map(|r| {
                        let (c, d) = self.shadow_counts(r);
                        (r.clone(), c, d)
                    })
                    .collect();
            }
            StepKind::Verify => {
                state.verify_requested_ms = Some(unix_ms());
            }
            StepKind::SwitchReads | StepKind::SwitchWrites => {
                state.switched = false;
            }
            StepKind::Contract => {
                if step.run.is_some() {
                    if let Some(refusal) = self.commands_refused() {
                        self.set_state(&m.name, &state);
                        return self
                            .block(m, step, state, "cannot run", vec![refusal], None)
                            .await;
                    }
                }
            }
        }
        // The event first: a leader dying right after acting finds the way back recorded.
        self.record(
            &state,
            "migration.step.started",
            &format!(
                "migration {:?}: step {:?} ({}) started: {}",
                m.name,
                step.name,
                step.kind.as_str(),
                describe_action(m, step)
            ),
            json!({ "step": step.name }),
            None,
        )
        .await?;
        self.set_state(&m.name, &state);
        match step.kind {
            StepKind::Expand | StepKind::Backfill => {
                let cmd = step
                    .run
                    .clone()
                    .expect("validated: expand and backfill run");
                self.start_command(m, step, cmd).await;
            }
            StepKind::DualWrite => {
                for r in &m.write_routes {
                    self.move_route(m, step, r, Stage::Shadow, None).await?;
                }
            }
            StepKind::Verify => {
                for j in &m.verify {
                    self.control.verify_requests().run(j);
                }
            }
            // Switched once the verify jobs are proven fresh (`judge_switch`).
            StepKind::SwitchReads | StepKind::SwitchWrites => {}
            StepKind::Contract => {}
        }
        Ok(())
    }

    /// Before a switch: the verify jobs proven equal by a run covering writes until less
    /// than `fresh` ago, else a run asked for now and waited for; then the routes move.
    async fn before_switch(
        &self,
        m: &Migration,
        step: &MigrationStep,
        state: &State,
    ) -> Result<Option<Verdict>, ControlError> {
        if m.verify.is_empty() {
            self.do_switch(m, step, state.clone(), vec![]).await?;
            return Ok(None);
        }
        let (checks, fresh, fail) = match state.verify_requested_ms {
            Some(after) => match self.judge_verify(m, after, false).await? {
                Verdict::Pass(c, _) => (c, true, false),
                Verdict::Fail(c, _) => (c, false, true),
                Verdict::Hold(c) => (c, false, false),
            },
            None => self.fresh_checks(m, step.fresh).await?,
        };
        if fail {
            // Nothing moved: there is nothing to take back.
            return Ok(Some(Verdict::Fail(checks, None)));
        }
        if fresh {
            self.do_switch(m, step, state.clone(), checks).await?;
            return Ok(None);
        }
        if state.verify_requested_ms.is_none() {
            let mut s = state.clone();
            s.verify_requested_ms = Some(unix_ms());
            for j in &m.verify {
                self.control.verify_requests().run(j);
            }
            self.record(
                &s,
                "migration.verify.requested",
                &format!(
                    "migration {:?}: step {:?}: verify {} not proven equal within {}; running it now",
                    m.name,
                    step.name,
                    m.verify.join(", "),
                    fmt_d(step.fresh)
                ),
                json!({ "step": step.name }),
                None,
            )
            .await?;
            self.set_state(&m.name, &s);
        }
        Ok(Some(Verdict::Hold(checks)))
    }

    /// Moves the switch step's routes to modern, with the stages they had as its way back.
    async fn do_switch(
        &self,
        m: &Migration,
        step: &MigrationStep,
        mut state: State,
        checks: Vec<Check>,
    ) -> Result<(), ControlError> {
        let snap = self.control.snapshot();
        let routes = self.switch_routes(m, step.kind);
        state.before = routes
            .iter()
            .filter_map(|r| {
                snap.effective.all_routes().find(|x| &x.name == r).map(|x| {
                    (
                        x.name.clone(),
                        x.stage.as_str().to_string(),
                        x.weight.percent(),
                    )
                })
            })
            .collect();
        state.switched = true;
        self.record(
            &state,
            "migration.switched",
            &format!(
                "migration {:?}: step {:?}: moving {} to modern",
                m.name,
                step.name,
                routes.join(", ")
            ),
            json!({ "step": step.name, "gate": GateView::new(step, "pass", checks) }),
            None,
        )
        .await?;
        self.set_state(&m.name, &state);
        for r in routes {
            self.switch(m, step, &r).await?;
        }
        Ok(())
    }

    /// Why this node may not run the file's commands, if it may not.
    fn commands_refused(&self) -> Option<Check> {
        (!self.control.local().node.migration_commands).then(|| {
            check(
                "commands",
                false,
                format!(
                    "node {} does not run migration commands: its own file needs [node] \
                     migration_commands = true (the leader runs them)",
                    self.control.node().name
                ),
            )
        })
    }

    async fn start_command(&self, m: &Migration, step: &MigrationStep, cmd: Command) {
        let dir = self.control.file().parent().map(PathBuf::from);
        let mut env = vec![
            ("FICUS_MIGRATION".to_string(), m.name.clone()),
            ("FICUS_STEP".to_string(), step.name.clone()),
        ];
        if let Some(f) = m.throttle.as_ref().and_then(|t| t.pause_file.as_ref()) {
            env.push(("FICUS_PAUSE_FILE".into(), f.display().to_string()));
        }
        let timeout = step.timeout;
        let c = cmd.clone();
        let handle = tokio::spawn(async move { run_command(&c, dir, &env, timeout).await });
        if let Some(l) = lock(&self.live).get_mut(&m.name) {
            if let Some((_, old)) = l.command.replace((cmd, handle)) {
                old.abort();
            }
        }
    }

    /// The routes a switch step moves.
    fn switch_routes(&self, m: &Migration, kind: StepKind) -> Vec<String> {
        match kind {
            StepKind::SwitchReads => m.read_routes.clone(),
            _ => m.write_routes.clone(),
        }
    }

    /// Moves a route to modern: its rollout when it has one, else the stage.
    async fn switch(
        &self,
        m: &Migration,
        step: &MigrationStep,
        route: &str,
    ) -> Result<(), ControlError> {
        let has_rollout = self
            .control
            .snapshot()
            .effective
            .all_routes()
            .any(|r| r.name == route && r.rollout.is_some());
        match (&self.rollout, has_rollout) {
            (Some(rollout), true) => {
                let at = self.rollout_status(route);
                if matches!(
                    at.as_deref(),
                    Some("running" | "waiting" | "soaking" | "paused" | "completed")
                ) {
                    return Ok(());
                }
                rollout
                    .command(
                        route,
                        "start",
                        MIGRATION_ACTOR,
                        &format!("migration {:?} step {:?}", m.name, step.name),
                    )
                    .await?;
                Ok(())
            }
            _ => self.move_route(m, step, route, Stage::Modern, None).await,
        }
    }

    fn rollout_status(&self, route: &str) -> Option<String> {
        let rollout = self.rollout.as_ref()?;
        let v = rollout.status().into_iter().find(|v| v.route == route)?;
        serde_json::to_value(v.status)
            .ok()?
            .as_str()
            .map(str::to_string)
    }

    async fn move_route(
        &self,
        m: &Migration,
        step: &MigrationStep,
        route: &str,
        stage: Stage,
        weight: Option<Weight>,
    ) -> Result<(), ControlError> {
        let current = self
            .control
            .snapshot()
            .effective
            .all_routes()
            .find(|r| r.name == route)
            .map(|r| (r.stage, r.weight));
        if current.is_some_and(|(s, w)| s == stage && weight.is_none_or(|x| x == w)) {
            return Ok(());
        }
        self.control
            .change_route(
                route,
                Some(stage),
                weight,
                MIGRATION_ACTOR,
                "route.migration",
                &format!(
                    "migration {:?} step {:?}: route {route:?} to {}",
                    m.name,
                    step.name,
                    stage.as_str()
                ),
                json!({ "migration": { "name": m.name, "step": step.name } }),
                true,
            )
            .await?;
        Ok(())
    }

    /// A route's shadow comparisons so far: (compared, with a difference).
    fn shadow_counts(&self, route: &str) -> (i64, i64) {
        let report = self.control.shadow_report(Some(route));
        report
            .routes
            .iter()
            .find(|r| r.route == route)
            .map_or((0, 0), |r| (r.compared, r.differing))
    }

    /// Legacy's requests on a route so far, fleet-wide.
    fn legacy_requests(&self, route: &str) -> u64 {
        self.control
            .gateway()
            .telemetry()
            .fleet_totals(route, false)
            .requests()
    }

    async fn judge(
        &self,
        m: &Migration,
        step: &MigrationStep,
        state: &State,
    ) -> Result<Verdict, ControlError> {
        match step.kind {
            StepKind::Expand | StepKind::Backfill => Ok(self.judge_command(m, step).await),
            StepKind::DualWrite => Ok(self.judge_dual_write(step, state)),
            StepKind::Verify => {
                self.judge_verify(
                    m,
                    state.verify_requested_ms.unwrap_or(state.since_ms),
                    false,
                )
                .await
            }
            StepKind::SwitchReads | StepKind::SwitchWrites => {
                self.judge_switch(m, step, state).await
            }
            StepKind::Contract => self.judge_contract(m, step, state).await,
        }
    }

    /// A command step: done when its command exited 0.
    async fn judge_command(&self, m: &Migration, step: &MigrationStep) -> Verdict {
        let (cmd, handle) = {
            let mut live = lock(&self.live);
            let Some(l) = live.get_mut(&m.name) else {
                return Verdict::Hold(vec![]);
            };
            let finished = l.command.as_ref().is_some_and(|(_, h)| h.is_finished());
            if !finished {
                let what = l
                    .command
                    .as_ref()
                    .map_or_else(|| "not started".to_string(), |(c, _)| c.display());
                return Verdict::Hold(vec![check("command", false, format!("running: {what}"))]);
            }
            l.command.take().expect("finished")
        };
        // Finished: awaiting it returns at once.
        match handle.await.ok() {
            Some(o) => {
                let c = check(
                    "command",
                    o.ok(),
                    format!("{}: {}", cmd.display(), o.summary()),
                );
                let out = Some(o.json(&cmd));
                if o.ok() {
                    Verdict::Pass(vec![c], out)
                } else {
                    Verdict::Fail(vec![c], out)
                }
            }
            None => Verdict::Fail(
                vec![check(
                    "command",
                    false,
                    format!("{}: the task failed", step.name),
                )],
                None,
            ),
        }
    }

    fn judge_dual_write(&self, step: &MigrationStep, state: &State) -> Verdict {
        let mut checks = Vec::new();
        let mut hold = false;
        let mut fail = false;
        let snap = self.control.snapshot();
        for (route, c0, d0) in &state.baseline {
            let on_shadow = snap
                .effective
                .all_routes()
                .any(|r| &r.name == route && r.stage == Stage::Shadow);
            if !on_shadow {
                fail = true;
                checks.push(check(
                    format!("route {route}"),
                    false,
                    "moved off shadow while dual-writing (by hand or a revert)",
                ));
                continue;
            }
            let (c, d) = self.shadow_counts(route);
            let compared = (c - c0).max(0);
            let differing = (d - d0).max(0);
            let rate = if compared > 0 {
                differing as f64 / compared as f64
            } else {
                0.0
            };
            let enough = compared as u64 >= step.min_compared;
            let ok = rate <= step.max_mismatch + 1e-12;
            let detail = format!(
                "{compared} writes compared since the step began (needs {}), {differing} with a \
                 difference ({:.2}%, at most {:.2}%)",
                step.min_compared,
                rate * 100.0,
                step.max_mismatch * 100.0
            );
            if enough && !ok {
                fail = true;
            } else if !enough {
                hold = true;
            }
            checks.push(check(
                format!("shadow writes {route}"),
                enough && ok,
                detail,
            ));
        }
        if fail {
            Verdict::Fail(checks, None)
        } else if hold {
            Verdict::Hold(checks)
        } else {
            Verdict::Pass(checks, None)
        }
    }

    /// Each of the plan's verify jobs has an equal run that started at or after `after`
    /// (`lagging` counts: every difference resolved when re-checked). With `missing_only`
    /// (the contract's final verify, after writes moved to the new table), only rows of
    /// the old table missing from the new one fail it: rows written since the switch are
    /// expected to differ.
    async fn judge_verify(
        &self,
        m: &Migration,
        after: i64,
        missing_only: bool,
    ) -> Result<Verdict, ControlError> {
        let mut checks = Vec::new();
        let (mut hold, mut fail) = (false, false);
        for j in &m.verify {
            let runs = self.control.store().verify_runs(Some(j), 20).await?;
            let run = runs.iter().find(|r| r.started_at >= after);
            let name = format!("verify {j}");
            match run {
                None => {
                    hold = true;
                    let held = self.control.verify_requests().is_held(j);
                    checks.push(check(
                        name,
                        false,
                        if held {
                            "paused by the throttle".to_string()
                        } else {
                            "running (asked for when the step began)".to_string()
                        },
                    ));
                }
                Some(r) if r.outcome == "equal" || r.outcome == "lagging" => checks.push(check(
                    name,
                    true,
                    format!(
                        "run {}: {}, {} rows compared ({} run)",
                        r.id,
                        if r.outcome == "equal" {
                            "equal"
                        } else {
                            "equal once re-checked (lagging)"
                        },
                        r.rows_compared,
                        r.mode
                    ),
                )),
                Some(r) if missing_only && r.error.is_none() && r.missing == 0 => {
                    checks.push(check(
                        name,
                        true,
                        format!(
                            "run {}: no row of the old table missing from the new one ({} extra, \
                         {} changed since writes moved)",
                            r.id, r.extra, r.changed
                        ),
                    ))
                }
                Some(r) => {
                    fail = true;
                    checks.push(check(name, false, run_counts(r)));
                }
            }
        }
        Ok(if fail {
            Verdict::Fail(checks, None)
        } else if hold {
            Verdict::Hold(checks)
        } else {
            Verdict::Pass(checks, None)
        })
    }

    /// The verify jobs were proven equal recently enough, and nothing contradicts it since.
    async fn fresh_checks(
        &self,
        m: &Migration,
        max_age: Duration,
    ) -> Result<(Vec<Check>, bool, bool), ControlError> {
        let now = unix_ms();
        let mut checks = Vec::new();
        let (mut all, mut fail) = (true, false);
        for j in &m.verify {
            let f = self
                .control
                .store()
                .latest_equal_verify_run(j, None)
                .await?;
            let latest = self.control.store().verify_runs(Some(j), 1).await?;
            // Differences that persisted: a fault, not a matter of age. (`lagging` runs
            // count as equal: every difference resolved when re-checked.)
            if let Some(r) = latest.first().filter(|r| r.outcome == "different") {
                fail = true;
                all = false;
                checks.push(check(
                    format!("verify {j}"),
                    false,
                    format!("latest {}", run_counts(r)),
                ));
                continue;
            }
            match f {
                Some(f) if f.fresh(now, max_age) => checks.push(check(
                    format!("verify {j}"),
                    true,
                    format!(
                        "equal, covering writes until {} ago (run {})",
                        ago(now, f.covers_until),
                        f.run.id
                    ),
                )),
                Some(f) => {
                    all = false;
                    checks.push(check(
                        format!("verify {j}"),
                        false,
                        format!(
                            "last proven equal {} ago (run {}); fresh needs under {}",
                            ago(now, f.covers_until),
                            f.run.id,
                            fmt_d(max_age)
                        ),
                    ));
                }
                None => {
                    all = false;
                    checks.push(check(format!("verify {j}"), false, "never proven equal"));
                }
            }
        }
        Ok((checks, all, fail))
    }

    async fn judge_switch(
        &self,
        m: &Migration,
        step: &MigrationStep,
        state: &State,
    ) -> Result<Verdict, ControlError> {
        if !state.switched {
            if let Some(v) = self.before_switch(m, step, state).await? {
                return Ok(v);
            }
        }
        // The state as the switch left it (its way back).
        let state = &self.state(&m.name).unwrap_or_else(|| state.clone());
        let mut checks = Vec::new();
        let mut on_modern = true;
        let mut fail = false;
        let snap = self.control.snapshot();
        for route in self.switch_routes(m, step.kind) {
            let Some(r) = snap.effective.all_routes().find(|r| r.name == route) else {
                continue;
            };
            if r.rollout.is_some() && self.rollout.is_some() {
                match self.rollout_status(&route).as_deref() {
                    Some("completed") => {
                        checks.push(check(format!("rollout {route}"), true, "completed"))
                    }
                    Some(s @ ("rolled_back" | "aborted")) => {
                        fail = true;
                        checks.push(check(
                            format!("rollout {route}"),
                            false,
                            format!("{s}: the rollout's judge or an operator took the route back"),
                        ));
                    }
                    other => {
                        on_modern = false;
                        checks.push(check(
                            format!("rollout {route}"),
                            false,
                            format!("{} at {} on modern", other.unwrap_or("starting"), r.weight),
                        ));
                    }
                }
            } else if matches!(r.stage, Stage::Modern | Stage::Retired) {
                checks.push(check(
                    format!("route {route}"),
                    true,
                    format!("on {}", r.stage.as_str()),
                ));
            } else {
                fail = true;
                checks.push(check(
                    format!("route {route}"),
                    false,
                    format!(
                        "on {}: moved off modern (by hand or a revert)",
                        r.stage.as_str()
                    ),
                ));
            }
            match self.control.slo_board().gate(&route, 0.0) {
                crate::slo::Gate::Clear => {}
                crate::slo::Gate::Hold { reason, .. } => {
                    on_modern = false;
                    if let Some(l) = lock(&self.live).get_mut(&m.name) {
                        l.soak_since = None;
                    }
                    checks.push(check(format!("slo {route}"), false, reason));
                }
                crate::slo::Gate::Rollback { reason, .. } => {
                    fail = true;
                    checks.push(check(format!("slo {route}"), false, reason));
                }
            }
        }
        if fail {
            // Modern is failing users or the data differs: take the step's way back now.
            if let Err(e) = self.restore(m, step, state).await {
                checks.push(check("way back", false, e.to_string()));
            } else {
                checks.push(check(
                    "way back",
                    true,
                    "routes back where the step found them",
                ));
            }
            return Ok(Verdict::Fail(checks, None));
        }
        if !on_modern {
            if let Some(l) = lock(&self.live).get_mut(&m.name) {
                l.soak_since = None;
            }
            return Ok(Verdict::Hold(checks));
        }
        let soaked = {
            let mut live = lock(&self.live);
            let l = live.get_mut(&m.name).expect("driven plans are live");
            let since = *l.soak_since.get_or_insert_with(Instant::now);
            since.elapsed()
        };
        let ok = soaked >= step.soak;
        checks.push(check(
            "soak",
            ok,
            format!(
                "{} on modern with SLOs clear (needs {})",
                fmt_d(soaked),
                fmt_d(step.soak)
            ),
        ));
        Ok(if ok {
            Verdict::Pass(checks, None)
        } else {
            Verdict::Hold(checks)
        })
    }

    async fn judge_contract(
        &self,
        m: &Migration,
        step: &MigrationStep,
        state: &State,
    ) -> Result<Verdict, ControlError> {
        let phase = lock(&self.live)
            .get(&m.name)
            .map_or(ContractPhase::Quiet, |l| l.contract);
        match phase {
            ContractPhase::Quiet => {
                let mut checks = Vec::new();
                let mut quiet = true;
                for route in m.routes() {
                    let n = self.legacy_requests(route);
                    let since = {
                        let mut live = lock(&self.live);
                        let l = live.get_mut(&m.name).expect("driven plans are live");
                        let e = l
                            .quiet
                            .entry(route.to_string())
                            .or_insert((n, Instant::now()));
                        if n != e.0 {
                            *e = (n, Instant::now());
                        }
                        e.1.elapsed()
                    };
                    let ok = since >= step.quiet;
                    quiet &= ok;
                    checks.push(check(
                        format!("legacy {route}"),
                        ok,
                        if since < Duration::from_secs(2) && n > 0 {
                            format!(
                                "legacy served requests on {route} within the last {} ({n} in all); needs none for {}",
                                fmt_d(since.max(Duration::from_secs(1))),
                                fmt_d(step.quiet)
                            )
                        } else {
                            format!(
                                "no request served by legacy for {} (needs {})",
                                fmt_d(since),
                                fmt_d(step.quiet)
                            )
                        },
                    ));
                }
                if !quiet {
                    return Ok(Verdict::Hold(checks));
                }
                // The final verify, asked for now: it proves the tables as they are at the end.
                let mut s = state.clone();
                s.verify_requested_ms = Some(unix_ms());
                for j in &m.verify {
                    self.control.verify_requests().run(j);
                }
                if let Some(l) = lock(&self.live).get_mut(&m.name) {
                    l.contract = ContractPhase::Verifying;
                    l.state = s;
                }
                checks.push(check("final verify", false, "asked for"));
                Ok(Verdict::Hold(checks))
            }
            ContractPhase::Verifying => {
                let after = state.verify_requested_ms.unwrap_or(state.since_ms);
                match self.judge_verify(m, after, true).await? {
                    Verdict::Pass(checks, _) => {
                        let Some(cmd) = step.run.clone() else {
                            return Ok(Verdict::Pass(checks, None));
                        };
                        let mut s = state.clone();
                        s.contracted = true;
                        // Recorded before it runs: from here there is no way back.
                        self.record(
                            &s,
                            "migration.contract.running",
                            &format!(
                                "migration {:?}: legacy quiet and the final verify equal: running {}",
                                m.name,
                                cmd.display()
                            ),
                            json!({ "step": step.name, "gate": GateView::new(step, "pass", checks) }),
                            None,
                        )
                        .await?;
                        self.set_state(&m.name, &s);
                        if let Some(l) = lock(&self.live).get_mut(&m.name) {
                            l.contract = ContractPhase::Running;
                        }
                        self.start_command(m, step, cmd).await;
                        Ok(Verdict::Hold(vec![check("command", false, "started")]))
                    }
                    other => Ok(other),
                }
            }
            ContractPhase::Running => Ok(self.judge_command(m, step).await),
        }
    }

    async fn hold(
        &self,
        m: &Migration,
        step: &MigrationStep,
        state: &State,
        checks: Vec<Check>,
    ) -> Result<(), ControlError> {
        let reasons: String = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let gate = GateView::new(step, "hold", checks);
        let due = {
            let mut live = lock(&self.live);
            let Some(l) = live.get_mut(&m.name) else {
                return Ok(());
            };
            l.gate = Some(gate.clone());
            let due = match &l.last_hold {
                Some((at, r)) => *r != reasons || at.elapsed() >= HOLD_EVENT_EVERY,
                None => true,
            };
            if due {
                l.last_hold = Some((Instant::now(), reasons));
            }
            due
        };
        if due {
            let waiting: Vec<String> = gate
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            self.record(
                state,
                "migration.gate",
                &format!(
                    "migration {:?}: step {:?} holds: {}",
                    m.name,
                    step.name,
                    waiting.join("; ")
                ),
                json!({ "step": step.name, "gate": gate }),
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn step_done(
        &self,
        m: &Migration,
        step: &MigrationStep,
        mut state: State,
        checks: Vec<Check>,
        output: Option<Value>,
    ) -> Result<(), ControlError> {
        let gate = GateView::new(step, "pass", checks);
        let mut extra = json!({ "step": step.name, "gate": gate });
        if let Some(o) = output {
            extra["output"] = o;
        }
        // Done: the next step, not started.
        state.step += 1;
        state.started = false;
        state.before.clear();
        state.baseline.clear();
        state.verify_requested_ms = None;
        state.contracted = false;
        state.switched = false;
        state.since_ms = unix_ms();
        let (kind, message) = match m.steps.get(state.step) {
            None => {
                state.status = Status::Completed;
                state.step_name = String::new();
                (
                    "migration.completed",
                    format!(
                        "migration {:?}: step {:?} done; the plan is complete",
                        m.name, step.name
                    ),
                )
            }
            Some(next) => {
                state.step_name = next.name.clone();
                if next.manual {
                    state.status = Status::Waiting;
                    (
                        "migration.step.done",
                        format!(
                            "migration {:?}: step {:?} done; step {:?} waits for `ficus migration advance`",
                            m.name, step.name, next.name
                        ),
                    )
                } else {
                    (
                        "migration.step.done",
                        format!(
                            "migration {:?}: step {:?} done; next: {:?}",
                            m.name, step.name, next.name
                        ),
                    )
                }
            }
        };
        self.record(&state, kind, &message, extra, None).await?;
        if let Some(l) = lock(&self.live).get_mut(&m.name) {
            l.state = state.clone();
            l.gate = Some(gate);
            l.last_hold = None;
            l.soak_since = None;
            l.contract = ContractPhase::Quiet;
        }
        // Lift a throttle hold the finished step had.
        self.release_throttle(m, &state, "the step is done").await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn block(
        &self,
        m: &Migration,
        step: &MigrationStep,
        mut state: State,
        why: &str,
        checks: Vec<Check>,
        output: Option<Value>,
    ) -> Result<(), ControlError> {
        state.status = Status::Blocked;
        let failing: Vec<String> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        let gate = GateView::new(step, "fail", checks);
        let mut extra = json!({ "step": step.name, "gate": gate });
        if let Some(o) = output {
            extra["output"] = o;
        }
        self.record(
            &state,
            "migration.blocked",
            &format!(
                "migration {:?}: step {:?} {why}: {}",
                m.name,
                step.name,
                failing.join("; ")
            ),
            extra,
            None,
        )
        .await?;
        if let Some(l) = lock(&self.live).get_mut(&m.name) {
            l.state = state.clone();
            l.gate = Some(gate);
        }
        self.release_throttle(m, &state, "the plan is blocked")
            .await;
        Ok(())
    }

    /// Puts the step's routes back where it found them.
    async fn restore(
        &self,
        m: &Migration,
        step: &MigrationStep,
        state: &State,
    ) -> Result<(), ControlError> {
        for (route, stage, weight) in &state.before {
            if let Some(rollout) = &self.rollout {
                if matches!(
                    self.rollout_status(route).as_deref(),
                    Some("running" | "waiting" | "soaking" | "paused")
                ) {
                    rollout
                        .command(
                            route,
                            "abort",
                            MIGRATION_ACTOR,
                            &format!("migration {:?}: way back of step {:?}", m.name, step.name),
                        )
                        .await?;
                }
            }
            let stage: Stage = Stage::parse(stage).ok_or_else(|| {
                ControlError::BadRequest(format!(
                    "stored stage {stage:?} of route {route:?} is not a stage"
                ))
            })?;
            let w = Weight::from_percent(*weight);
            self.move_route(m, step, route, stage, w).await?;
        }
        Ok(())
    }

    /// An operator's command, with the plan's live state loaded.
    async fn command(
        &self,
        m: &Migration,
        command: &str,
        actor: &str,
        message: &str,
    ) -> Result<Vec<Event>, ControlError> {
        let known = lock(&self.live).contains_key(&m.name);
        if !known {
            self.adopt(m).await?;
        }
        self.command_tagged(m, command, actor, message, None).await
    }

    async fn command_tagged(
        &self,
        m: &Migration,
        command: &str,
        actor: &str,
        message: &str,
        request: Option<i64>,
    ) -> Result<Vec<Event>, ControlError> {
        let state = self.state(&m.name).ok_or_else(|| {
            ControlError::NotFound(format!("migration {:?} is not loaded", m.name))
        })?;
        let wrong = |what: &str| {
            let at = if state.status == Status::Completed {
                String::new()
            } else {
                format!(" at step {:?}", state.step_name)
            };
            Err(ControlError::Conflict(format!(
                "migration {:?} is {}{at}; {what}",
                m.name,
                state.status.as_str(),
            )))
        };
        let mut s = state.clone();
        let (kind, text) = match (command, state.status) {
            ("advance", Status::Waiting | Status::Blocked) => {
                s.status = Status::Running;
                s.started = false;
                (
                    "migration.advanced",
                    format!("step {:?} (re)started by {actor}", state.step_name),
                )
            }
            ("advance", Status::Completed) => return wrong("there is nothing left to do"),
            ("advance", _) => {
                return wrong("its gate decides when it is done (pause it, or take it back)")
            }
            ("pause", Status::Running | Status::Waiting | Status::Blocked) => {
                if let Some((_, h)) = lock(&self.live)
                    .get_mut(&m.name)
                    .and_then(|l| l.command.take())
                {
                    h.abort();
                }
                s.status = Status::Paused;
                s.started = false;
                (
                    "migration.paused",
                    format!("paused by {actor} (the step starts over on resume)"),
                )
            }
            ("pause", _) => return wrong("nothing to pause"),
            ("resume", Status::Paused) => {
                s.status = Status::Running;
                s.started = false;
                ("migration.resumed", format!("resumed by {actor}"))
            }
            ("resume", _) => return wrong("only a paused plan resumes"),
            ("back", Status::Completed) => {
                return wrong("a completed plan has no way back: write a new plan to move again")
            }
            ("back", _) => {
                // The step to undo: the current one if it began, else the one before it.
                let undo = if state.started {
                    Some(state.step)
                } else {
                    state.step.checked_sub(1)
                };
                let Some(i) = undo else {
                    return wrong("no step has run yet");
                };
                let target = m.steps[i].clone();
                if target.kind == StepKind::Contract && (state.contracted || i < state.step) {
                    return wrong("the contract step ran: there is no way back from it");
                }
                if let Some((_, h)) = lock(&self.live)
                    .get_mut(&m.name)
                    .and_then(|l| l.command.take())
                {
                    h.abort();
                }
                let detail = self.way_back(m, &target, &state, i).await?;
                s.step = i;
                s.step_name = target.name.clone();
                s.status = Status::Paused;
                s.started = false;
                s.before.clear();
                s.baseline.clear();
                s.verify_requested_ms = None;
                s.contracted = false;
                s.switched = false;
                s.since_ms = unix_ms();
                if let Some(l) = lock(&self.live).get_mut(&m.name) {
                    l.gate = None;
                    l.last_hold = None;
                }
                let ev = self
                    .record_by(
                        actor,
                        &s,
                        "migration.back",
                        &format!(
                            "migration {:?}: step {:?} taken back by {actor}: {message}",
                            m.name, target.name
                        ),
                        json!({ "step": target.name, "way_back": detail }),
                        request,
                    )
                    .await?;
                self.set_state(&m.name, &s);
                return Ok(vec![ev]);
            }
            (other, _) => {
                return Err(ControlError::BadRequest(format!(
                    "unknown migration command {other:?}"
                )))
            }
        };
        s.since_ms = unix_ms();
        let ev = self
            .record_by(
                actor,
                &s,
                kind,
                &format!("migration {:?}: {text}: {message}", m.name),
                json!({ "actor": actor }),
                request,
            )
            .await?;
        if let Some(l) = lock(&self.live).get_mut(&m.name) {
            l.state = s.clone();
            l.gate = None;
            l.last_hold = None;
        }
        if s.status != Status::Running {
            self.release_throttle(m, &s, "the plan is not running")
                .await;
        }
        Ok(vec![ev])
    }

    /// Takes a step's way back; what it did, for the event.
    async fn way_back(
        &self,
        m: &Migration,
        step: &MigrationStep,
        state: &State,
        index: usize,
    ) -> Result<Value, ControlError> {
        match step.kind {
            StepKind::Expand | StepKind::Backfill => {
                let Some(cmd) = step.back.clone() else {
                    return Ok(
                        json!({ "note": "the step has no back command: nothing was undone" }),
                    );
                };
                if let Some(refusal) = self.commands_refused() {
                    return Err(ControlError::Conflict(refusal.detail));
                }
                let dir = self.control.file().parent().map(PathBuf::from);
                let env = vec![
                    ("FICUS_MIGRATION".to_string(), m.name.clone()),
                    ("FICUS_STEP".to_string(), step.name.clone()),
                ];
                let o = run_command(&cmd, dir, &env, step.timeout).await;
                if !o.ok() {
                    return Err(ControlError::Conflict(format!(
                        "the way back of step {:?} failed: {}: {}",
                        step.name,
                        cmd.display(),
                        o.summary()
                    )));
                }
                Ok(o.json(&cmd))
            }
            StepKind::Verify => Ok(json!({ "note": "a verify step changes nothing" })),
            StepKind::Contract => Ok(json!({ "note": "the contract had not run" })),
            StepKind::DualWrite | StepKind::SwitchReads | StepKind::SwitchWrites => {
                // The stages the step found, from its own start event when it is done.
                let before = if index == state.step && state.started {
                    state.before.clone()
                } else {
                    self.started_before(&m.name, &step.name).await?
                };
                let s = State {
                    before: before.clone(),
                    ..state.clone()
                };
                self.restore(m, step, &s).await?;
                Ok(json!({ "routes": before }))
            }
        }
    }

    /// The `before` of the step's latest start event.
    async fn started_before(
        &self,
        name: &str,
        step: &str,
    ) -> Result<Vec<(String, String, f64)>, ControlError> {
        // A rare operator's command: read back as far as it takes.
        let events = self.events(name, EVENTS_SCANNED).await?;
        Ok(events
            .iter()
            .filter(|e| e.kind == "migration.step.started")
            .filter_map(|e| serde_json::from_value::<State>(e.data.get("migration")?.clone()).ok())
            .find(|s| s.step_name == step)
            .map(|s| s.before)
            .unwrap_or_default())
    }

    // ---- throttle ------------------------------------------------------------------------

    /// Pauses a running throttled step while the plan's routes are above its bounds, and
    /// resumes it after.
    async fn throttle(&self, m: &Migration, step: &MigrationStep, state: &State) {
        let Some(t) = &m.throttle else { return };
        let active = state.status == Status::Running && state.started && step.kind.throttled();
        if !active {
            return;
        }
        let (over, reason) = self.over_bounds(t);
        let paused = lock(&self.live)
            .get(&m.name)
            .is_some_and(|l| l.throttle.paused);
        if over && !paused {
            self.pause_throttled(m, step, t, state, &reason).await;
        } else if !over && paused {
            self.release_throttle(m, state, &reason).await;
        } else if let Some(l) = lock(&self.live).get_mut(&m.name) {
            if !paused {
                l.throttle.reason = reason;
            }
        }
    }

    /// Whether a watched route is above a bound, and the numbers.
    fn over_bounds(&self, t: &Throttle) -> (bool, String) {
        let tel = self.control.gateway().telemetry();
        let secs = u32::try_from(t.window.as_secs().max(1)).unwrap_or(u32::MAX);
        let mut over = Vec::new();
        let mut numbers = Vec::new();
        for r in &t.routes {
            let a = tel.fleet_window(r, false, secs);
            let b = tel.fleet_window(r, true, secs);
            let requests = a.requests + b.requests;
            let errors = a.errors + b.errors;
            let p99 = match (a.p99_ms, b.p99_ms) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
            let rate = if requests > 0 {
                errors as f64 / requests as f64
            } else {
                0.0
            };
            numbers.push(format!(
                "{r}: p99 {} ms, errors {:.2}% of {requests} in {}",
                p99.map_or("-".into(), |p| format!("{p:.1}")),
                rate * 100.0,
                fmt_d(t.window)
            ));
            if requests < t.min_requests {
                continue;
            }
            if let (Some(bound), Some(p)) = (t.p99, p99) {
                if p > bound.as_secs_f64() * 1000.0 {
                    over.push(format!("{r}: p99 {p:.1} ms above {}", fmt_d(bound)));
                }
            }
            if let Some(bound) = t.error_rate {
                if rate > bound {
                    over.push(format!(
                        "{r}: errors {:.2}% above {:.2}%",
                        rate * 100.0,
                        bound * 100.0
                    ));
                }
            }
        }
        if over.is_empty() {
            (false, numbers.join("; "))
        } else {
            (true, over.join("; "))
        }
    }

    async fn pause_throttled(
        &self,
        m: &Migration,
        step: &MigrationStep,
        t: &Throttle,
        state: &State,
        reason: &str,
    ) {
        let mut done = Vec::new();
        if step.kind == StepKind::Verify || step.kind == StepKind::Contract {
            for j in &m.verify {
                self.control.verify_requests().hold(j, true);
            }
            done.push("verify runs held".to_string());
        }
        if step.kind == StepKind::Backfill {
            if let Some(f) = &t.pause_file {
                match std::fs::write(f, format!("paused by ficus: {reason}\n")) {
                    Ok(()) => done.push(format!("created {}", f.display())),
                    Err(e) => done.push(format!("cannot create {}: {e}", f.display())),
                }
            }
            if let Some(c) = &t.pause_command {
                let o = run_command(
                    c,
                    self.control.file().parent().map(PathBuf::from),
                    &[],
                    Duration::from_secs(30),
                )
                .await;
                done.push(format!("{}: {}", c.display(), o.summary()));
            }
        }
        if let Some(l) = lock(&self.live).get_mut(&m.name) {
            l.throttle.paused = true;
            l.throttle.reason = reason.to_string();
            l.throttle.since_ms = Some(unix_ms());
            l.throttle.pauses += 1;
        }
        let _ = self
            .record(
                state,
                "migration.throttled",
                &format!(
                    "migration {:?}: step {:?} paused: {reason} ({})",
                    m.name,
                    step.name,
                    done.join(", ")
                ),
                json!({ "step": step.name, "throttle": { "reason": reason, "actions": done } }),
                None,
            )
            .await;
    }

    async fn release_throttle(&self, m: &Migration, state: &State, reason: &str) {
        let paused = lock(&self.live)
            .get(&m.name)
            .is_some_and(|l| l.throttle.paused);
        if !paused {
            return;
        }
        let mut done = Vec::new();
        for j in &m.verify {
            self.control.verify_requests().hold(j, false);
        }
        if let Some(t) = &m.throttle {
            if let Some(f) = &t.pause_file {
                match std::fs::remove_file(f) {
                    Ok(()) => done.push(format!("removed {}", f.display())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => done.push(format!("cannot remove {}: {e}", f.display())),
                }
            }
            if let Some(c) = &t.resume_command {
                let o = run_command(
                    c,
                    self.control.file().parent().map(PathBuf::from),
                    &[],
                    Duration::from_secs(30),
                )
                .await;
                done.push(format!("{}: {}", c.display(), o.summary()));
            }
        }
        if let Some(l) = lock(&self.live).get_mut(&m.name) {
            l.throttle.paused = false;
            l.throttle.reason = reason.to_string();
            l.throttle.since_ms = None;
        }
        let _ = self
            .record(
                state,
                "migration.unthrottled",
                &format!(
                    "migration {:?}: resumed: {reason} ({})",
                    m.name,
                    done.join(", ")
                ),
                json!({ "throttle": { "reason": reason, "actions": done } }),
                None,
            )
            .await;
    }
}

/// What a gate says; a command's output goes with its step's event.
enum Verdict {
    Pass(Vec<Check>, Option<Value>),
    Hold(Vec<Check>),
    Fail(Vec<Check>, Option<Value>),
}

/// A verify run's outcome and counts (or its error), for a gate's check.
fn run_counts(r: &ficus_store::VerifyRun) -> String {
    match &r.error {
        Some(e) => format!("run {}: error: {e}", r.id),
        None => format!(
            "run {} ({}): {}: {} missing, {} extra, {} changed of {} rows",
            r.id, r.mode, r.outcome, r.missing, r.extra, r.changed, r.rows_compared
        ),
    }
}

/// How long ago unix ms `then` was, `now` being unix ms too.
fn ago(now: i64, then: i64) -> String {
    fmt_d(Duration::from_millis(
        u64::try_from(now - then).unwrap_or(0),
    ))
}

/// A plan before its first event.
fn initial(m: &Migration) -> State {
    State {
        name: m.name.clone(),
        step: 0,
        step_name: m.steps[0].name.clone(),
        status: Status::Running,
        started: false,
        since_ms: unix_ms(),
        before: vec![],
        baseline: vec![],
        verify_requested_ms: None,
        contracted: false,
        switched: false,
    }
}

/// A duration as people read it: whole seconds, or milliseconds under a second.
fn fmt_d(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        ficus_config::units::format_duration(Duration::from_millis(d.as_millis() as u64))
    } else {
        ficus_config::units::format_duration(Duration::from_secs(d.as_secs()))
    }
}

fn describe_action(m: &Migration, s: &MigrationStep) -> String {
    let jobs = m.verify.join(", ");
    match s.kind {
        StepKind::Expand | StepKind::Backfill => format!(
            "run {}; done when it exits 0",
            s.run.as_ref().map_or("-".into(), Command::display)
        ),
        StepKind::DualWrite => format!(
            "write routes {} to shadow (shadow writes); done after {} compared writes with at most {:.2}% differing",
            m.write_routes.join(", "),
            s.min_compared,
            s.max_mismatch * 100.0
        ),
        StepKind::Verify => format!("run verify jobs {jobs} now; done when each is equal"),
        StepKind::SwitchReads => format!(
            "read routes {} to modern (their rollout, else the stage); done after {} with SLOs clear",
            m.read_routes.join(", "),
            fmt_d(s.soak)
        ),
        StepKind::SwitchWrites => format!(
            "write routes {} to modern; done after {} with SLOs clear and verify {jobs} equal within {}",
            m.write_routes.join(", "),
            fmt_d(s.soak),
            fmt_d(s.fresh)
        ),
        StepKind::Contract => format!(
            "once legacy served nothing on {} for {} and a final verify of {jobs} is equal: {}",
            m.routes().join(", "),
            fmt_d(s.quiet),
            s.run.as_ref().map_or("nothing to run".into(), |c| format!("run {}", c.display()))
        ),
    }
}

fn describe_way_back(m: &Migration, s: &MigrationStep) -> String {
    match s.kind {
        StepKind::Expand | StepKind::Backfill => s
            .back
            .as_ref()
            .map_or("none configured (back undoes nothing)".into(), |c| {
                format!("run {}", c.display())
            }),
        StepKind::DualWrite => format!(
            "write routes {} back to their stage before",
            m.write_routes.join(", ")
        ),
        StepKind::Verify => "nothing to undo".into(),
        StepKind::SwitchReads => format!(
            "read routes {} back to their stage before",
            m.read_routes.join(", ")
        ),
        StepKind::SwitchWrites => format!(
            "write routes {} back to their stage before (dual-writing)",
            m.write_routes.join(", ")
        ),
        StepKind::Contract => "none: the contract cannot be undone".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(line: &str) -> Command {
        Command {
            argv: vec!["sh".into(), "-c".into(), line.into()],
        }
    }

    #[tokio::test]
    async fn a_commands_output_keeps_its_last_bytes_and_its_exit_code() {
        let cap = ficus_config::defaults::MIGRATION_OUTPUT_BYTES;
        let o = run_command(
            &sh("i=0; while [ $i -lt 3000 ]; do printf '%05d\\n' $i; i=$((i+1)); done; echo oops >&2; exit 3"),
            None,
            &[],
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(o.code, Some(3));
        assert!(!o.ok() && !o.timed_out);
        assert_eq!(o.stdout.len(), cap, "the last {cap} bytes of 18,000");
        assert!(o.stdout.ends_with("02999\n"), "{}", &o.stdout[cap - 20..]);
        assert_eq!(o.stderr, "oops\n");
        assert_eq!(o.summary().split(" after ").next(), Some("exited 3"));
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_and_one_that_cannot_start_says_why() {
        let started = Instant::now();
        let o = run_command(&sh("sleep 30"), None, &[], Duration::from_millis(200)).await;
        assert!(o.timed_out && !o.ok(), "{}", o.summary());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            o.summary().starts_with("timed out after"),
            "{}",
            o.summary()
        );
        let o = run_command(
            &Command {
                argv: vec!["/nonexistent/schema-tool".into()],
            },
            None,
            &[],
            Duration::from_secs(5),
        )
        .await;
        assert!(!o.ok());
        assert!(
            o.summary()
                .starts_with("could not run: /nonexistent/schema-tool"),
            "{}",
            o.summary()
        );
    }
}
