//! The `ficus` binary: a thin CLI over the libraries.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod client;
mod demo;
mod record_cmd;
mod replay_cmd;
mod run;
mod safe;
mod verify_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// mimalloc's thread-local free lists suit the request path's many small, short-lived
// allocations (headers, URIs) better than glibc malloc; see bench/README.md for the figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ficus",
    version,
    about = "A strangler-fig migration gateway: move a legacy HTTP service to a new one, route by route"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// The config file.
        #[arg(short, long, default_value = "ficus.toml")]
        config: PathBuf,
        /// Log format of ficus's own diagnostics (not the access log): text or json.
        #[arg(long, default_value = "text")]
        log_format: String,
        /// On a PostgreSQL store shared by a fleet: store this file as the fleet's next
        /// version when its fleet-wide part differs from the store's latest (at start and on
        /// SIGHUP). Without it the node runs the store's version and reports the drift.
        #[arg(long)]
        apply_file: bool,
    },
    /// Check a config file; print every error as file:line:col with how to fix it (exit 1).
    Validate {
        #[arg(short, long, default_value = "ficus.toml")]
        config: PathBuf,
    },
    /// Show the compiled route table: match order and which side each stage sends to.
    Routes {
        #[arg(short, long, default_value = "ficus.toml")]
        config: PathBuf,
    },
    /// Validate the config file, then ask the running gateway (its pid_file) to reload it.
    Reload {
        #[arg(short, long, default_value = "ficus.toml")]
        config: PathBuf,
    },
    /// Run a self-contained demo: sample legacy and modern services, the gateway, a client.
    Demo(demo::DemoOptions),
    /// Compare a table in the new service's database with the legacy one (exit 0 equal,
    /// 1 different, 2 error).
    Verify(verify_cmd::VerifyArgs),
    /// Send a recording's requests to a target, open loop: as recorded, faster (--speed 3x),
    /// at a rate (--rate 500/s) or ramped (--ramp 100/s..2000/s --over 60s); latency from
    /// each request's due time, a report of answers, errors, status mismatches and lateness.
    Replay(Box<replay_cmd::ReplayArgs>),
    /// Recordings: `ficus record export FILE --har`, `ficus record import FILE.har|FILE.gor
    /// -o OUT` (HAR 1.2, GoReplay captures).
    Record {
        #[command(subcommand)]
        cmd: record_cmd::RecordCmd,
    },
    /// Replay runs kept with `ficus replay --save`: the list, or one with its ranked fields.
    Replays {
        id: Option<i64>,
        #[command(flatten)]
        target: client::Target,
    },
    /// The migration map: every route's stage, weight, file state and live numbers.
    Status(client::Target),
    /// Every gateway sharing the store: state, leader, revision, lag, rate, drift.
    Fleet(client::Target),
    /// The route-level changes applying the config file would make to what runs.
    Plan(client::Target),
    /// Apply the config file as the next version.
    Apply {
        #[command(flatten)]
        target: client::Target,
        /// Why (recorded in the audit log).
        #[arg(short, long)]
        message: String,
        /// Refuse (409) unless the running version is this one.
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Config versions, newest first.
    History {
        #[command(flatten)]
        target: client::Target,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Apply an older config version's text as the next version.
    Revert {
        version: i64,
        #[command(flatten)]
        target: client::Target,
        #[arg(short, long)]
        message: String,
    },
    /// Send a route (or --all) back to legacy, effective for the very next request.
    Rollback {
        /// The route; omit with --all.
        route: Option<String>,
        /// Every route that uses modern.
        #[arg(long, conflicts_with = "route")]
        all: bool,
        #[command(flatten)]
        target: client::Target,
        #[arg(short, long)]
        message: String,
    },
    /// Set a route's stage and/or weight at runtime.
    Set {
        route: String,
        #[arg(long)]
        stage: Option<String>,
        /// Percent of sticky keys on modern (two decimals allowed).
        #[arg(long)]
        weight: Option<f64>,
        #[command(flatten)]
        target: client::Target,
        #[arg(short, long)]
        message: String,
    },
    /// Every endpoint seen (method + path template), its route and counts per side.
    Inventory {
        /// Only endpoints that have never reached modern.
        #[arg(long)]
        legacy_only: bool,
        #[command(flatten)]
        target: client::Target,
    },
    /// Shadow comparisons. `ficus diffs [ROUTE]`: endpoints and field paths ranked by
    /// difference rate, noise shown apart; `ficus diffs show ID`: one sample side by side;
    /// `ficus diffs reset ROUTE -m WHY`: forget a route's comparisons.
    Diffs {
        /// [ROUTE] | show ID | reset ROUTE
        #[arg(value_name = "ARGS")]
        args: Vec<String>,
        /// Why (for reset; recorded in the audit log).
        #[arg(short, long)]
        message: Option<String>,
        /// Show every field, noise included, and up to this many per endpoint.
        #[arg(long, default_value_t = 10)]
        fields: usize,
        #[command(flatten)]
        target: client::Target,
    },
    /// Automated rollouts: `ficus rollout status`, or `ficus rollout pause|resume|promote|abort|start
    /// ROUTE -m WHY`.
    Rollout {
        /// status | pause | resume | promote | abort | start
        command: String,
        route: Option<String>,
        #[arg(short, long)]
        message: Option<String>,
        #[command(flatten)]
        target: client::Target,
    },
    /// Data migration plans (`[[migration]]`): `ficus migration status [NAME]` (every plan,
    /// or one with its timeline), `ficus migration advance|pause|resume|back NAME -m WHY`.
    Migration {
        /// status | advance | pause | resume | back
        command: String,
        name: Option<String>,
        #[arg(short, long)]
        message: Option<String>,
        #[command(flatten)]
        target: client::Target,
    },
    /// SLOs and error budgets: `ficus slo` (every SLO), `ficus slo ROUTE` (one route's, with
    /// burn rates per window, alerts and past months), `ficus slo rules` (a Prometheus rule
    /// file from the config file, for teams that alert from Prometheus).
    Slo {
        /// [ROUTE] | rules
        #[arg(value_name = "ARGS")]
        args: Vec<String>,
        #[command(flatten)]
        target: client::Target,
    },
    /// Feature flags as they run (served over OFREP): `ficus flag list`, `ficus flag show
    /// KEY`, `ficus flag set KEY --variant off -m WHY` (everyone gets that variant: the kill
    /// switch; `--enable` / `--disable` set its switch), `ficus flag reset KEY -m WHY` (back
    /// to the file's rules). Runtime changes reach every node and are recorded as events.
    Flag {
        /// list | show KEY | set KEY | reset KEY
        #[arg(value_name = "ARGS")]
        args: Vec<String>,
        /// For set: the variant every context gets, whatever the rules say.
        #[arg(long)]
        variant: Option<String>,
        /// For set: turn the flag on.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// For set: turn the flag off (SDKs get no value and use their code default).
        #[arg(long)]
        disable: bool,
        /// Why (for set and reset; recorded in the audit log).
        #[arg(short, long)]
        message: Option<String>,
        #[command(flatten)]
        target: client::Target,
    },
    /// Empty a route's response cache, or one path's entries.
    Purge {
        route: String,
        /// The path and query as clients send them, e.g. /orders/1?expand=items.
        #[arg(long)]
        path: Option<String>,
        #[command(flatten)]
        target: client::Target,
        #[arg(short, long)]
        message: String,
    },
    /// The audit log, oldest first.
    Events {
        #[arg(long)]
        route: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        target: client::Target,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { config } => run::validate(&config),
        Command::Routes { config } => run::routes(&config),
        Command::Reload { config } => run::reload(&config),
        Command::Run {
            config,
            log_format,
            apply_file,
        } => run::run(&config, &log_format, apply_file),
        Command::Demo(opts) => demo::main(opts),
        Command::Verify(args) => verify_cmd::main(args),
        Command::Replay(args) => replay_cmd::main(*args),
        Command::Record { cmd } => record_cmd::main(cmd),
        Command::Replays { id, target } => client::replays(target, id),
        Command::Status(t) => client::status(t),
        Command::Fleet(t) => client::fleet(t),
        Command::Plan(t) => client::plan(t),
        Command::Apply {
            target,
            message,
            expected_version,
        } => client::apply(target, message, expected_version),
        Command::History { target, limit } => client::history(target, limit),
        Command::Revert {
            version,
            target,
            message,
        } => client::revert(target, version, message),
        Command::Rollback {
            route,
            all,
            target,
            message,
        } => {
            if route.is_none() && !all {
                eprintln!(
                    "ficus rollback: name a route, or pass --all for every route that uses modern"
                );
                return ExitCode::from(2);
            }
            client::rollback(target, route, message)
        }
        Command::Set {
            route,
            stage,
            weight,
            target,
            message,
        } => client::set(target, route, stage, weight, message),
        Command::Inventory {
            legacy_only,
            target,
        } => client::inventory(target, legacy_only),
        Command::Events {
            route,
            limit,
            target,
        } => client::events(target, route, limit),
        Command::Rollout {
            command,
            route,
            message,
            target,
        } => match (command.as_str(), route, message) {
            ("status", route, _) => client::rollout_status(target, route),
            (_, None, _) => {
                eprintln!("ficus rollout {command}: name the route");
                ExitCode::from(2)
            }
            (_, Some(_), None) => {
                eprintln!("ficus rollout {command}: say why with -m \"...\" (it is recorded in the audit log)");
                ExitCode::from(2)
            }
            (_, Some(route), Some(m)) => client::rollout_command(target, &route, &command, m),
        },
        Command::Migration {
            command,
            name,
            message,
            target,
        } => match (command.as_str(), name, message) {
            ("status", name, _) => client::migration_status(target, name),
            (_, None, _) => {
                eprintln!("ficus migration {command}: name the plan");
                ExitCode::from(2)
            }
            (_, Some(_), None) => {
                eprintln!("ficus migration {command}: say why with -m \"...\" (it is recorded in the audit log)");
                ExitCode::from(2)
            }
            (_, Some(name), Some(m)) => client::migration_command(target, &name, &command, m),
        },
        Command::Flag {
            args,
            variant,
            enable,
            disable,
            message,
            target,
        } => {
            let enabled = match (enable, disable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            match (args.as_slice(), message) {
                ([], _) => client::flags(target, None),
                ([l], _) if l == "list" => client::flags(target, None),
                ([s, key], _) if s == "show" => client::flags(target, Some(key.clone())),
                ([s, _], _) if s == "set" && variant.is_none() && enabled.is_none() => {
                    eprintln!("ficus flag set: give --variant NAME, --enable or --disable");
                    ExitCode::from(2)
                }
                ([s, _], None) if s == "set" || s == "reset" => {
                    eprintln!(
                        "ficus flag {s}: say why with -m \"...\" (it is recorded in the audit log)"
                    );
                    ExitCode::from(2)
                }
                ([s, key], Some(m)) if s == "set" => {
                    client::flag_set(target, key, variant, enabled, m)
                }
                ([s, key], Some(m)) if s == "reset" => client::flag_reset(target, key, m),
                _ => {
                    eprintln!("ficus flag: list, show KEY, set KEY, or reset KEY");
                    ExitCode::from(2)
                }
            }
        }
        Command::Slo { args, target } => match args.as_slice() {
            [] => client::slo(target, None),
            [r] if r == "rules" => run::slo_rules(&target.config),
            [route] => client::slo(target, Some(route.clone())),
            _ => {
                eprintln!("ficus slo: takes a route, or `rules`");
                ExitCode::from(2)
            }
        },
        Command::Purge {
            route,
            path,
            target,
            message,
        } => client::purge(target, &route, path, message),
        Command::Diffs {
            args,
            message,
            fields,
            target,
        } => {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match args.as_slice() {
                [] => client::diffs(target, None, fields),
                ["show", id] => client::diff_sample(target, id),
                ["reset", route] => match message {
                    Some(m) => client::reset_diffs(target, route, m),
                    None => {
                        eprintln!("ficus diffs reset: say why with -m \"...\" (it is recorded in the audit log)");
                        ExitCode::from(2)
                    }
                },
                [route] if *route != "show" && *route != "reset" => {
                    client::diffs(target, Some(route.to_string()), fields)
                }
                _ => {
                    eprintln!("usage: ficus diffs [ROUTE] | ficus diffs show ID | ficus diffs reset ROUTE -m WHY");
                    ExitCode::from(2)
                }
            }
        }
    }
}
