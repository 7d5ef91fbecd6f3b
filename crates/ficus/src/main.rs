//! The `ficus` binary: a thin CLI over the libraries.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod demo;
mod run;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { config } => run::validate(&config),
        Command::Routes { config } => run::routes(&config),
        Command::Reload { config } => run::reload(&config),
        Command::Run { config, log_format } => run::run(&config, &log_format),
        Command::Demo(opts) => demo::main(opts),
        Command::Verify(args) => verify_cmd::main(args),
    }
}
