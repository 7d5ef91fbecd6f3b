//! `[[migration]]`: a plan's routes, verify jobs, steps and throttle as parsed, the defaults,
//! and every mistake reported at its line with a way out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ficus_config::*;

fn parse(text: &str) -> Result<Config, Diagnostics> {
    parse_str(text, "ficus.toml", Path::new("/etc/ficus"))
}

const BASE: &str = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001"
[upstream.modern]
url = "http://127.0.0.1:9002"

[[route]]
name = "customers"
path_prefix = "/customers"
methods = ["GET"]
legacy = "legacy"
modern = "modern"

[[route]]
name = "customers-write"
path_prefix = "/customers"
legacy = "legacy"
modern = "modern"
shadow_writes = true

[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"

[default]
legacy = "legacy"

[[verify]]
name = "people"
source = "postgres://db/legacy"
target = "postgres://db/modern"
source_table = "customers"
target_table = "people"
key = ["id"]
"#;

const PLAN: &str = r#"
[[migration]]
name = "customers-to-people"
routes = ["customers"]
write_routes = ["customers-write"]
verify = ["people"]
[[migration.step]]
kind = "expand"
run = ["psql", "-f", "expand.sql"]
back = "psql -f unexpand.sql"
[[migration.step]]
kind = "dual_write"
min_compared = 500
max_mismatch = 0.5
[[migration.step]]
kind = "backfill"
run = "./backfill.sh"
timeout = "2h"
[[migration.step]]
kind = "verify"
[[migration.step]]
kind = "switch_reads"
manual = true
soak = "10m"
[[migration.step]]
kind = "switch_writes"
fresh = "1m"
[[migration.step]]
kind = "contract"
quiet = "1h"
run = "psql -f contract.sql"
[migration.throttle]
p99 = "300ms"
error_rate = 2
pause_file = "run/backfill.pause"
"#;

/// The messages of a text that must not validate.
fn errors(text: &str) -> String {
    let e = parse(text).expect_err("must not validate");
    e.items
        .iter()
        .map(|d| {
            format!(
                "{}: {} | {}",
                d.line,
                d.message,
                d.help.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_plan_is_parsed_with_its_defaults() {
    let cfg = parse(&format!("{BASE}{PLAN}")).unwrap();
    let m = &cfg.migrations[0];
    assert_eq!(m.name, "customers-to-people");
    assert_eq!(m.read_routes, ["customers"]);
    assert_eq!(m.write_routes, ["customers-write"]);
    assert_eq!(m.routes(), ["customers", "customers-write"]);
    assert_eq!(m.verify, ["people"]);
    let kinds: Vec<StepKind> = m.steps.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, StepKind::ALL);
    let expand = &m.steps[0];
    assert_eq!(expand.name, "expand");
    assert_eq!(
        expand.run.as_ref().unwrap().argv,
        ["psql", "-f", "expand.sql"]
    );
    assert_eq!(
        expand.back.as_ref().unwrap().argv,
        ["sh", "-c", "psql -f unexpand.sql"]
    );
    assert_eq!(
        expand.back.as_ref().unwrap().display(),
        "psql -f unexpand.sql"
    );
    assert_eq!(expand.timeout, defaults::MIGRATION_STEP_TIMEOUT);
    assert!(!expand.manual);
    let dual = &m.steps[1];
    assert_eq!(dual.min_compared, 500);
    assert!((dual.max_mismatch - 0.005).abs() < 1e-12);
    assert_eq!(m.steps[2].timeout, Duration::from_secs(7200));
    let reads = &m.steps[4];
    assert!(reads.manual);
    assert_eq!(reads.soak, Duration::from_secs(600));
    assert_eq!(reads.fresh, defaults::MIGRATION_FRESH);
    assert_eq!(m.steps[5].fresh, Duration::from_secs(60));
    assert_eq!(m.steps[5].soak, defaults::MIGRATION_SOAK);
    assert_eq!(m.steps[6].quiet, Duration::from_secs(3600));
    let t = m.throttle.as_ref().unwrap();
    assert_eq!(t.routes, ["customers"]);
    assert_eq!(t.p99, Some(Duration::from_millis(300)));
    assert!((t.error_rate.unwrap() - 0.02).abs() < 1e-12);
    assert_eq!(t.window, defaults::THROTTLE_WINDOW);
    assert_eq!(t.min_requests, defaults::THROTTLE_MIN_REQUESTS);
    assert_eq!(
        t.pause_file.as_deref(),
        Some(Path::new("/etc/ficus/run/backfill.pause"))
    );
    // Without write_routes the read routes take the writes too; nodes opt in to commands.
    let cfg = parse(&format!(
        "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"customers-write\"]\n\
         [[migration.step]]\nkind = \"dual_write\"\n"
    ))
    .unwrap();
    assert_eq!(cfg.migrations[0].write_routes, ["customers-write"]);
    assert_eq!(
        cfg.migrations[0].steps[0].min_compared,
        defaults::MIGRATION_MIN_COMPARED
    );
    assert_eq!(cfg.migrations[0].steps[0].max_mismatch, 0.0);
    assert!(!cfg.node.migration_commands);
    let cfg = parse(&format!(
        "{BASE}{PLAN}\n[node]\nmigration_commands = true\n"
    ))
    .unwrap();
    assert!(cfg.node.migration_commands);
    let _ = PathBuf::new();
}

#[test]
fn the_plan_is_fleet_wide_and_the_commands_switch_node_local() {
    let text = format!("{BASE}{PLAN}\n[node]\nmigration_commands = true\n");
    let fleet = fleet_text(&text).unwrap();
    assert!(fleet.contains("[[migration]]"));
    assert!(!fleet.contains("migration_commands"));
}

#[test]
fn routes_and_jobs_must_exist_and_reach_modern() {
    let e = errors(&format!(
        "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"customer\"]\nverify = [\"peeple\"]\n\
         [[migration.step]]\nkind = \"verify\"\n"
    ));
    assert!(e.contains("unknown route \"customer\""), "{e}");
    assert!(e.contains("did you mean \"customers\"?"), "{e}");
    assert!(e.contains("unknown verify job \"peeple\""), "{e}");
    assert!(e.contains("did you mean \"people\"?"), "{e}");
    let e = errors(&format!(
        "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"orders\"]\n[[migration.step]]\nkind = \"switch_reads\"\n"
    ));
    assert!(e.contains("route \"orders\" has no modern upstream"), "{e}");
    assert!(e.contains("add modern = \"NAME\""), "{e}");
    let e = errors(&format!(
        "{BASE}\n[[migration]]\nname = \"m\"\n[[migration.step]]\nkind = \"switch_reads\"\n"
    ));
    assert!(e.contains("migration \"m\": no routes"), "{e}");
    // A step that checks the tables needs the plan's verify jobs.
    let e = errors(&format!(
        "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"customers\"]\n\
         [[migration.step]]\nkind = \"backfill\"\nrun = \"x\"\n[[migration.step]]\nkind = \"verify\"\n"
    ));
    assert!(
        e.contains("checks the verify jobs, and the plan names none"),
        "{e}"
    );
}

#[test]
fn route_lists_are_not_empty_and_plans_and_steps_have_a_limit() {
    let plan = |keys: &str| {
        format!(
            "{BASE}\n[[migration]]\nname = \"m\"\n{keys}\n[[migration.step]]\nkind = \"switch_reads\"\n"
        )
    };
    let e = errors(&plan("routes = []"));
    assert!(e.contains("migration \"m\": routes is empty"), "{e}");
    let e = errors(&plan("routes = [\"customers\"]\nwrite_routes = []"));
    assert!(e.contains("write_routes is empty"), "{e}");
    assert!(
        e.contains("leave write_routes out for the plan's routes"),
        "{e}"
    );
    let e = errors(&plan(
        "routes = [\"customers\"]\n[migration.throttle]\np99 = \"1s\"\nroutes = []",
    ));
    assert!(e.contains("throttle.routes is empty"), "{e}");
    let steps = "[[migration.step]]\nkind = \"verify\"\n".repeat(33);
    let e = errors(&format!(
        "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"customers\"]\nverify = [\"people\"]\n{steps}"
    ));
    assert!(e.contains("33 steps, more than 32"), "{e}");
    let plans: String = (0..65)
        .map(|i| format!("\n[[migration]]\nname = \"m{i}\"\nroutes = [\"customers\"]\n[[migration.step]]\nkind = \"switch_reads\"\n"))
        .collect();
    let e = errors(&format!("{BASE}{plans}"));
    assert!(e.contains("65 migration plans, more than 64"), "{e}");
}

#[test]
fn steps_come_in_a_migrations_order_with_the_keys_their_kind_takes() {
    let plan = |steps: &str| {
        format!(
            "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"customers\"]\nwrite_routes = \
             [\"customers-write\"]\nverify = [\"people\"]\n{steps}"
        )
    };
    let e = errors(&plan(
        "[[migration.step]]\nkind = \"switch_reads\"\n[[migration.step]]\nkind = \"expand\"\nrun = \"x\"\n",
    ));
    assert!(e.contains("expand after switch_reads"), "{e}");
    assert!(e.contains("in the order a migration takes them"), "{e}");
    let e = errors(&plan(
        "[[migration.step]]\nkind = \"expand\"\nrun = \"x\"\n[[migration.step]]\nkind = \"expand\"\nname = \"again\"\nrun = \"y\"\n",
    ));
    assert!(e.contains("a second expand step"), "{e}");
    let e = errors(&plan("[[migration.step]]\nkind = \"verify\"\n"));
    assert!(e.contains("verify before the data was moved"), "{e}");
    let e = errors(&plan(
        "[[migration.step]]\nkind = \"backfill\"\nrun = \"x\"\n[[migration.step]]\nkind = \"verify\"\n\
         [[migration.step]]\nkind = \"verify\"\n",
    ));
    assert!(e.contains("two steps named \"verify\""), "{e}");
    // Two verify steps with their own names are fine.
    parse(&plan(
        "[[migration.step]]\nkind = \"backfill\"\nrun = \"x\"\n[[migration.step]]\nkind = \"verify\"\n\
         [[migration.step]]\nkind = \"switch_reads\"\n[[migration.step]]\nkind = \"verify\"\nname = \"again\"\n",
    ))
    .unwrap();
    let e = errors(&plan("[[migration.step]]\nkind = \"backfil\"\n"));
    assert!(e.contains("unknown kind \"backfil\""), "{e}");
    assert!(e.contains("did you mean \"backfill\"?"), "{e}");
    let e = errors(&plan("[[migration.step]]\nkind = \"backfill\"\n"));
    assert!(e.contains("a backfill step needs run"), "{e}");
    let e = errors(&plan(
        "[[migration.step]]\nkind = \"dual_write\"\nrun = \"x\"\nquiet = \"1m\"\n",
    ));
    assert!(e.contains("a dual_write step takes no run"), "{e}");
    assert!(e.contains("a dual_write step takes no quiet"), "{e}");
    assert!(
        e.contains("kind, name, timeout, manual, min_compared, max_mismatch"),
        "{e}"
    );
    let e = errors(&plan("[[migration.step]]\nkind = \"expand\"\nrun = []\n"));
    assert!(e.contains("run is empty"), "{e}");
    let e = errors(&plan(
        "[[migration.step]]\nkind = \"expand\"\nrun = [\"psql\", 1]\n",
    ));
    assert!(e.contains("run must hold strings"), "{e}");
    let e = errors(&plan(
        "[[migration.step]]\nkind = \"expand\"\nrun = \"x\"\ntimeout = \"0s\"\n",
    ));
    assert!(
        e.contains("timeout \"0s\" must be greater than zero"),
        "{e}"
    );
    let e = errors(&plan(
        "[[migration.step]]\nkind = \"dual_write\"\nmax_mismatch = 120\n",
    ));
    assert!(e.contains("max_mismatch 120 is out of range"), "{e}");
    let e = errors(&plan(
        "[[migration.step]]\nkind = \"verify\"\nsoak = \"1m\"\nbogus = 1\n",
    ));
    assert!(e.contains("a verify step takes no soak"), "{e}");
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn dual_write_needs_shadow_writes_on_the_write_routes() {
    let e = errors(&format!(
        "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"customers\"]\n\
         [[migration.step]]\nkind = \"dual_write\"\n"
    ));
    assert!(
        e.contains("dual_write needs shadow_writes on route \"customers\""),
        "{e}"
    );
    assert!(e.contains("add shadow_writes = true"), "{e}");
}

#[test]
fn plans_are_named_once_and_a_route_moves_with_one_plan() {
    let one = "\n[[migration]]\nname = \"m\"\nroutes = [\"customers\"]\n[[migration.step]]\nkind = \"switch_reads\"\n";
    let e = errors(&format!("{BASE}{one}{one}"));
    assert!(e.contains("duplicate migration name \"m\""), "{e}");
    let other = "\n[[migration]]\nname = \"n\"\nroutes = [\"customers\"]\n[[migration.step]]\nkind = \"switch_reads\"\n";
    let e = errors(&format!("{BASE}{one}{other}"));
    assert!(
        e.contains("route \"customers\" is already moved by migration \"m\""),
        "{e}"
    );
    let e = errors(&format!(
        "{BASE}\n[[migration]]\nname = \"bad name\"\nroutes = [\"customers\"]\n[[migration.step]]\nkind = \"switch_reads\"\n"
    ));
    assert!(e.contains("invalid name \"bad name\""), "{e}");
    let e = errors(&format!(
        "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"customers\"]\n"
    ));
    assert!(e.contains("no steps"), "{e}");
}

#[test]
fn a_throttle_needs_a_bound_and_a_way_to_pause_the_backfill() {
    let plan = |throttle: &str| {
        format!(
            "{BASE}\n[[migration]]\nname = \"m\"\nroutes = [\"customers\"]\nverify = [\"people\"]\n\
             [[migration.step]]\nkind = \"backfill\"\nrun = \"x\"\n[migration.throttle]\n{throttle}"
        )
    };
    let e = errors(&plan("pause_file = \"/run/p\"\n"));
    assert!(e.contains("the throttle has no bound"), "{e}");
    let e = errors(&plan("p99 = \"300ms\"\n"));
    assert!(e.contains("cannot pause the backfill"), "{e}");
    let e = errors(&plan("p99 = \"300ms\"\npause_command = \"x\"\n"));
    assert!(
        e.contains("pause_command and resume_command come together"),
        "{e}"
    );
    let e = errors(&plan(
        "p99 = \"300ms\"\npause_file = \"/p\"\nroutes = [\"nope\"]\n",
    ));
    assert!(e.contains("unknown route \"nope\""), "{e}");
    let e = errors(&plan(
        "p99 = \"300ms\"\npause_file = \"/p\"\nwindow = \"1h\"\n",
    ));
    assert!(e.contains("throttle.window is longer than 15m"), "{e}");
    let cfg = parse(&plan(
        "error_rate = 1\npause_command = \"kill -STOP x\"\nresume_command = \"kill -CONT x\"\nwindow = \"1m\"\nmin_requests = 5\n",
    ))
    .unwrap();
    let t = cfg.migrations[0].throttle.as_ref().unwrap();
    assert_eq!(t.p99, None);
    assert_eq!(t.window, Duration::from_secs(60));
    assert_eq!(t.min_requests, 5);
    assert_eq!(t.pause_command.as_ref().unwrap().display(), "kill -STOP x");
}

#[test]
fn a_verify_job_can_recheck_its_differences() {
    let cfg = parse(&format!("{BASE}recheck = \"5s\"\n")).unwrap();
    assert_eq!(cfg.verify[0].recheck, Some(Duration::from_secs(5)));
    let e = errors(&format!("{BASE}recheck = \"0s\"\n"));
    assert!(
        e.contains("recheck \"0s\" must be greater than zero"),
        "{e}"
    );
    let e = errors(&format!("{BASE}recheck = \"11m\"\n"));
    assert!(e.contains("recheck is longer than 10m"), "{e}");
}
