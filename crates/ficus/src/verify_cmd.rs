//! `ficus verify` (being written).
use std::process::ExitCode;

#[derive(clap::Args, Debug, Clone)]
pub struct VerifyArgs {}

pub fn main(_args: VerifyArgs) -> ExitCode {
    eprintln!("ficus verify: not built yet");
    ExitCode::from(2)
}
