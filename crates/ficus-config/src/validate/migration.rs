//! `[[migration]]`: data migration plans (docs/migrations.md). Checked here: the plan's
//! routes exist and can reach modern, its verify jobs exist, its steps come in the order a
//! migration takes (expand, dual_write, backfill, verify, switch_reads, switch_writes,
//! contract; `verify` may come again after any step from backfill on), each kind has the
//! keys it uses (a command where the step's action is another tool's), `dual_write` has
//! `shadow_writes` on every write route, and `[migration.throttle]` has a bound and a way
//! to pause a backfill. Whether the commands work is only known when they run.

use std::collections::HashMap;
use std::time::Duration;

use toml::de::DeValue;

use super::{valid_name, Section, Validator, NAME_HELP};
use crate::model::{
    defaults, Command, Migration, MigrationStep, Route, StepKind, Throttle, VerifyJob, Weight,
};
use crate::raw::{clip, describe, Entry};
use crate::suggest::did_you_mean;

const MIGRATION_KEYS: &[&str] = &[
    "name",
    "routes",
    "write_routes",
    "verify",
    "step",
    "throttle",
];
const STEP_KEYS: &[&str] = &[
    "kind",
    "name",
    "run",
    "back",
    "timeout",
    "manual",
    "min_compared",
    "max_mismatch",
    "fresh",
    "soak",
    "quiet",
];
const THROTTLE_KEYS: &[&str] = &[
    "routes",
    "p99",
    "error_rate",
    "window",
    "min_requests",
    "pause_file",
    "pause_command",
    "resume_command",
];
const KINDS_HELP: &str = "step kinds, in the order a migration takes them: expand, dual_write, \
                          backfill, verify, switch_reads, switch_writes, contract";

/// The keys each kind uses beside `kind`, `name`, `timeout` and `manual`.
fn kind_keys(kind: StepKind) -> &'static [&'static str] {
    match kind {
        StepKind::Expand | StepKind::Backfill => &["run", "back"],
        StepKind::DualWrite => &["min_compared", "max_mismatch"],
        StepKind::Verify => &[],
        StepKind::SwitchReads | StepKind::SwitchWrites => &["soak", "fresh"],
        StepKind::Contract => &["run", "quiet"],
    }
}

/// Where a kind comes in a plan (`verify` may repeat after backfill).
fn rank(kind: StepKind) -> usize {
    StepKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Validator<'_, '_> {
    pub(super) fn migrations(
        &mut self,
        e: &Entry<'_, '_>,
        routes: &[Route],
        verify: &[VerifyJob],
    ) -> Vec<Migration> {
        let tables = self.array_of_tables(e, "migration", "[[migration]]");
        if tables.len() > defaults::MAX_MIGRATIONS {
            self.error(
                &e.span,
                format!(
                    "{} migration plans, more than {}",
                    tables.len(),
                    defaults::MAX_MIGRATIONS
                ),
                Some("remove the plans that are done".into()),
            );
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        // Which plan each route belongs to: a route moves with one plan at a time.
        let mut owners: HashMap<String, String> = HashMap::new();
        let mut out = Vec::new();
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let mut sec = Section::new(format!("migration #{}", i + 1), "", span, table);
            if let Some(m) = self.migration(&mut sec, routes, verify, &mut names) {
                for r in m.routes() {
                    if let Some(other) = owners.insert(r.to_string(), m.name.clone()) {
                        self.error(
                            &sec.span,
                            format!(
                                "{}: route {r:?} is already moved by migration {other:?}",
                                sec.ctx
                            ),
                            Some(
                                "a route moves with one plan at a time; finish (remove) the \
                                 other plan first"
                                    .into(),
                            ),
                        );
                    }
                }
                out.push(m);
            }
        }
        out
    }

    fn migration(
        &mut self,
        sec: &mut Section<'_, '_>,
        routes: &[Route],
        verify: &[VerifyJob],
        names: &mut HashMap<String, usize>,
    ) -> Option<Migration> {
        let name = self.unique_name(
            sec,
            names,
            "migration",
            "migration",
            "name the plan, e.g. name = \"customers-to-people\"",
        );
        self.unknown_keys(sec, MIGRATION_KEYS, &[], "[[migration]]");
        let read_routes = self.plan_routes(sec, "routes", routes);
        if !sec.has("routes") {
            self.error(
                &sec.span,
                format!("{}: no routes", sec.ctx),
                Some(
                    "name the routes whose traffic the plan moves, e.g. routes = \
                     [\"customers\"]; write_routes = [...] when writes go through others"
                        .into(),
                ),
            );
        }
        let write_routes = if sec.has("write_routes") {
            self.plan_routes(sec, "write_routes", routes)
        } else {
            read_routes.clone()
        };
        let jobs = match self.strings(sec, "verify") {
            Some((list, _)) => {
                let mut out = Vec::new();
                for (j, span) in list {
                    if verify.iter().any(|v| v.name == j) {
                        if !out.iter().any(|o: &String| o == j) {
                            out.push(j.to_string());
                        }
                    } else {
                        self.error(
                            &span,
                            format!("{}: unknown verify job {:?}", sec.ctx, clip(j)),
                            Some(format!(
                                "{}the plan's tables are described by [[verify]] jobs (source, \
                                 target, key, expr); known jobs: {}",
                                did_you_mean(j, verify.iter().map(|v| v.name.as_str())),
                                if verify.is_empty() {
                                    "none".to_string()
                                } else {
                                    verify
                                        .iter()
                                        .map(|v| v.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                }
                            )),
                        );
                    }
                }
                out
            }
            None => Vec::new(),
        };
        let steps = self.migration_steps(sec, routes, write_routes.as_deref().unwrap_or(&[]));
        if let Some(steps) = &steps {
            let needs_jobs = steps.iter().find(|s| {
                matches!(
                    s.kind,
                    StepKind::Verify | StepKind::SwitchWrites | StepKind::Contract
                )
            });
            if let (Some(s), true) = (needs_jobs, jobs.is_empty()) {
                self.error(
                    &sec.span,
                    format!(
                        "{}: step {:?} checks the verify jobs, and the plan names none",
                        sec.ctx, s.name
                    ),
                    Some(
                        "add verify = [\"JOB\"], naming the [[verify]] jobs that compare the \
                         old and new tables"
                            .into(),
                    ),
                );
            }
        }
        let throttle = self.throttle(sec, routes, read_routes.as_deref().unwrap_or(&[]));
        if let (Some(t), Some(steps)) = (&throttle, &steps) {
            let backfill = steps.iter().any(|s| s.kind == StepKind::Backfill);
            if backfill && t.pause_file.is_none() && t.pause_command.is_none() {
                self.error(
                    &sec.span,
                    format!(
                        "{}: the throttle cannot pause the backfill: no pause_file or \
                         pause_command",
                        sec.ctx
                    ),
                    Some(
                        "add pause_file = \"/run/backfill.pause\" (created while paused, the \
                         backfill waits while it exists) or pause_command / resume_command"
                            .into(),
                    ),
                );
            }
        }
        let (read_routes, write_routes) = (read_routes?, write_routes?);
        Some(Migration {
            name: name?,
            read_routes,
            write_routes,
            verify: jobs,
            steps: steps?,
            throttle,
        })
    }

    /// An array of the plan's route names: known, not the default route, with a modern
    /// upstream to move to.
    fn plan_routes(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        routes: &[Route],
    ) -> Option<Vec<String>> {
        let (list, span) = self.strings(sec, key)?;
        if list.is_empty() {
            self.error(
                &span,
                format!("{}: {} is empty", sec.ctx, sec.key(key)),
                Some(if key == "routes" && sec.prefix.is_empty() {
                    "name the routes whose traffic the plan moves, e.g. routes = [\"customers\"]"
                        .to_string()
                } else {
                    format!(
                        "name at least one route, or leave {} out for the plan's routes",
                        sec.key(key)
                    )
                }),
            );
            return None;
        }
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for (r, span) in list {
            match routes.iter().find(|x| x.name == r) {
                Some(route) if route.modern.is_none() => {
                    ok = false;
                    self.error(
                        &span,
                        format!("{}: route {:?} has no modern upstream", sec.ctx, clip(r)),
                        Some(format!(
                            "the plan moves the route to modern: add modern = \"NAME\" to \
                             route {r:?}"
                        )),
                    );
                }
                Some(_) => {
                    if !out.iter().any(|o| o == r) {
                        out.push(r.to_string());
                    }
                }
                None => {
                    ok = false;
                    self.error(
                        &span,
                        format!("{}: unknown route {:?}", sec.ctx, clip(r)),
                        Some(format!(
                            "{}known routes: {}",
                            did_you_mean(r, routes.iter().map(|x| x.name.as_str())),
                            routes
                                .iter()
                                .map(|x| x.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    fn migration_steps(
        &mut self,
        sec: &Section<'_, '_>,
        routes: &[Route],
        write_routes: &[String],
    ) -> Option<Vec<MigrationStep>> {
        let Some(e) = sec.get("step") else {
            self.error(
                &sec.span,
                format!("{}: no steps", sec.ctx),
                Some(format!(
                    "add [[migration.step]] tables with kind = \"...\"; {KINDS_HELP}"
                )),
            );
            return None;
        };
        let tables = self.array_of_tables(e, "step", "[[migration.step]]");
        if tables.is_empty() {
            self.error(
                &e.span,
                format!("{}: no steps", sec.ctx),
                Some(KINDS_HELP.into()),
            );
            return None;
        }
        if tables.len() > defaults::MAX_MIGRATION_STEPS {
            self.error(
                &e.span,
                format!(
                    "{}: {} steps, more than {}",
                    sec.ctx,
                    tables.len(),
                    defaults::MAX_MIGRATION_STEPS
                ),
                None,
            );
            return None;
        }
        let mut out: Vec<MigrationStep> = Vec::new();
        let mut ok = true;
        let mut last_rank = 0usize;
        let mut last_kind: Option<StepKind> = None;
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let ctx = format!("{} step #{}", sec.ctx, i + 1);
            let ssec = Section::new(ctx, "", span.clone(), table);
            let Some(step) = self.migration_step(&ssec, routes, write_routes) else {
                ok = false;
                continue;
            };
            if out.iter().any(|s| s.name == step.name) {
                ok = false;
                self.error(
                    &span,
                    format!("{}: two steps named {:?}", sec.ctx, step.name),
                    Some("name one of them: name = \"verify-after-backfill\"".into()),
                );
            }
            if step.kind != StepKind::Verify {
                if out.iter().any(|s| s.kind == step.kind) {
                    ok = false;
                    self.error(
                        &span,
                        format!("{}: a second {} step", sec.ctx, step.kind.as_str()),
                        Some(format!("each kind but verify comes once; {KINDS_HELP}")),
                    );
                }
                let r = rank(step.kind);
                if r < last_rank {
                    ok = false;
                    self.error(
                        &span,
                        format!(
                            "{}: {} after {}",
                            sec.ctx,
                            step.kind.as_str(),
                            last_kind.map_or("", |k| k.as_str())
                        ),
                        Some(KINDS_HELP.into()),
                    );
                }
                last_rank = last_rank.max(r);
                last_kind = Some(step.kind);
            } else if last_rank < rank(StepKind::Backfill) {
                ok = false;
                self.error(
                    &span,
                    format!("{}: verify before the data was moved", sec.ctx),
                    Some(
                        "a verify step comes after the backfill (or later); the verify jobs \
                         also run on their own schedule"
                            .into(),
                    ),
                );
            }
            out.push(step);
        }
        ok.then_some(out)
    }

    fn migration_step(
        &mut self,
        sec: &Section<'_, '_>,
        routes: &[Route],
        write_routes: &[String],
    ) -> Option<MigrationStep> {
        let kind = match self.string(sec, "kind") {
            Some((k, span)) => match StepKind::parse(k) {
                Some(k) => Some(k),
                None => {
                    self.error(
                        &span,
                        format!("{}: unknown kind {:?}", sec.ctx, clip(k)),
                        Some(format!(
                            "{}{KINDS_HELP}",
                            did_you_mean(k, StepKind::ALL.iter().map(|k| k.as_str()))
                        )),
                    );
                    None
                }
            },
            None => {
                if !sec.has("kind") {
                    self.error(
                        &sec.span,
                        format!("{}: missing kind", sec.ctx),
                        Some(KINDS_HELP.into()),
                    );
                }
                None
            }
        };
        let kind = kind?;
        let mut known: Vec<&str> = vec!["kind", "name", "timeout", "manual"];
        known.extend_from_slice(kind_keys(kind));
        for e in STEP_KEYS.iter().filter(|k| !known.contains(k)) {
            if let Some(entry) = sec.get(e) {
                self.error(
                    &entry.span,
                    format!("{}: a {} step takes no {e}", sec.ctx, kind.as_str()),
                    Some(format!(
                        "a {} step takes: {}",
                        kind.as_str(),
                        known.join(", ")
                    )),
                );
            }
        }
        self.unknown_keys(sec, STEP_KEYS, &[], "[[migration.step]]");
        let name = match self.string(sec, "name") {
            Some((n, span)) if !valid_name(n) => {
                self.error(
                    &span,
                    format!("{}: invalid name {:?}", sec.ctx, clip(n)),
                    Some(NAME_HELP.to_string()),
                );
                return None;
            }
            Some((n, _)) => n.to_string(),
            None => kind.as_str().to_string(),
        };
        let run = self.command(sec, "run");
        if run.is_none() && matches!(kind, StepKind::Expand | StepKind::Backfill) {
            self.error(
                &sec.span,
                format!("{}: a {} step needs run", sec.ctx, kind.as_str()),
                Some(format!(
                    "its action is another tool's: run = [\"psql\", \"-f\", \"{}.sql\"] or a \
                     shell line, run = \"./{}.sh\"",
                    kind.as_str(),
                    kind.as_str()
                )),
            );
            return None;
        }
        let back = self.command(sec, "back");
        if kind == StepKind::DualWrite {
            for r in write_routes {
                if let Some(route) = routes.iter().find(|x| &x.name == r) {
                    if !route.shadow_writes {
                        self.error(
                            &sec.span,
                            format!("{}: dual_write needs shadow_writes on route {r:?}", sec.ctx),
                            Some(format!(
                                "add shadow_writes = true to route {r:?}: its writes are \
                                 mirrored to modern while the route is on shadow"
                            )),
                        );
                    }
                }
            }
        }
        let max_mismatch = self.percent(
            sec,
            "max_mismatch",
            Weight::from_percent(defaults::MIGRATION_MAX_MISMATCH * 100.0).unwrap_or(Weight::ZERO),
            "the largest share of compared writes with a real difference, in percent",
        );
        Some(MigrationStep {
            kind,
            name,
            run,
            back,
            timeout: self.duration(sec, "timeout", defaults::MIGRATION_STEP_TIMEOUT),
            manual: self.boolean(sec, "manual", false),
            min_compared: self
                .bounded(
                    sec,
                    "min_compared",
                    1,
                    1_000_000_000,
                    "writes compared before the gate can pass",
                )
                .map_or(defaults::MIGRATION_MIN_COMPARED, |n| n as u64),
            max_mismatch: max_mismatch.percent() / 100.0,
            fresh: self.duration(sec, "fresh", defaults::MIGRATION_FRESH),
            soak: self.duration(sec, "soak", defaults::MIGRATION_SOAK),
            quiet: self.duration(sec, "quiet", defaults::MIGRATION_QUIET),
        })
    }

    /// `key = ["argv", ...]` or `key = "shell line"`.
    fn command(&mut self, sec: &Section<'_, '_>, key: &str) -> Option<Command> {
        let e = sec.get(key)?;
        let span = e.span.clone();
        let help = "a command: an array of its arguments, run = [\"psql\", \"-f\", \"up.sql\"], \
                    or a shell line, run = \"psql -f up.sql\"";
        let argv: Vec<String> = match e.value {
            DeValue::String(s) if !s.trim().is_empty() => {
                vec!["sh".into(), "-c".into(), s.to_string()]
            }
            DeValue::Array(items) => {
                let mut argv = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => argv.push(s.to_string()),
                        other => {
                            self.error(
                                &item.span(),
                                format!(
                                    "{}: {key} must hold strings, found {}",
                                    sec.ctx,
                                    describe(other)
                                ),
                                Some(help.into()),
                            );
                            return None;
                        }
                    }
                }
                argv
            }
            DeValue::String(_) => Vec::new(),
            other => {
                self.error(
                    &span,
                    format!(
                        "{}: {key} must be a command, found {}",
                        sec.ctx,
                        describe(other)
                    ),
                    Some(help.into()),
                );
                return None;
            }
        };
        if argv.first().is_none_or(|a| a.trim().is_empty()) {
            self.error(
                &span,
                format!("{}: {key} is empty", sec.ctx),
                Some(help.into()),
            );
            return None;
        }
        Some(Command { argv })
    }

    fn throttle(
        &mut self,
        sec: &Section<'_, '_>,
        routes: &[Route],
        plan_routes: &[String],
    ) -> Option<Throttle> {
        let (table, span) = self.table(sec, "throttle")?;
        let tsec = Section::new(sec.ctx.clone(), "throttle.", span.clone(), table);
        self.unknown_keys(&tsec, THROTTLE_KEYS, &[], "[migration.throttle]");
        let watched = if tsec.has("routes") {
            self.plan_routes(&tsec, "routes", routes)
                .unwrap_or_default()
        } else {
            plan_routes.to_vec()
        };
        let p99 = tsec
            .has("p99")
            .then(|| self.duration(&tsec, "p99", Duration::from_millis(500)));
        let error_rate = tsec.has("error_rate").then(|| {
            self.percent(
                &tsec,
                "error_rate",
                Weight::from_percent(1.0).unwrap_or(Weight::ZERO),
                "the error rate (in percent) above which backfill and verify pause",
            )
            .percent()
                / 100.0
        });
        if p99.is_none() && error_rate.is_none() {
            self.error(
                &span,
                format!("{}: the throttle has no bound", sec.ctx),
                Some(
                    "add p99 = \"300ms\" and/or error_rate = 1 (percent): backfill and verify \
                     pause while the plan's routes are above either"
                        .into(),
                ),
            );
        }
        let pause_command = self.command(&tsec, "pause_command");
        let resume_command = self.command(&tsec, "resume_command");
        if pause_command.is_some() != resume_command.is_some() {
            self.error(
                &span,
                format!(
                    "{}: pause_command and resume_command come together",
                    sec.ctx
                ),
                Some("what one pauses, the other resumes".into()),
            );
        }
        let pause_file = self.path(&tsec, "pause_file");
        let window = self.duration(&tsec, "window", defaults::THROTTLE_WINDOW);
        if window > Duration::from_secs(900) {
            let at = tsec.get("window").map_or(span.clone(), |e| e.span.clone());
            self.error(
                &at,
                format!("{}: throttle.window is longer than 15m", sec.ctx),
                Some(
                    "the gateway keeps 15 minutes of per-second numbers; a throttle reacts to \
                     what users feel now: 30s to a few minutes"
                        .into(),
                ),
            );
        }
        Some(Throttle {
            routes: watched,
            p99,
            error_rate,
            window,
            min_requests: self
                .bounded(
                    &tsec,
                    "min_requests",
                    0,
                    1_000_000_000,
                    "requests in the window before the throttle can pause",
                )
                .map_or(defaults::THROTTLE_MIN_REQUESTS, |n| n as u64),
            pause_file,
            pause_command,
            resume_command,
        })
    }
}
