//! ficus configuration: the `ficus.toml` model, parsing and validation with file:line:col
//! diagnostics that say what is wrong and how to fix it.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod model;
pub mod plan;
mod raw;
pub mod scope;
pub mod secrets;
mod suggest;
pub mod units;
mod validate;

pub use model::*;
pub use scope::{fleet_text, is_node_local, parse_fleet_str, NODE_LOCAL};

use std::path::{Path, PathBuf};

/// One problem found in a config file, located at a line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    /// What is wrong, one line.
    pub message: String,
    /// How to fix it, when there is something to say.
    pub help: Option<String>,
}

/// Every problem in one file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The file name as given to the parser (used as the `file` of `file:line:col`).
    pub origin: String,
    pub items: Vec<Diagnostic>,
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.origin, d.line, d.col, d.message
            )?;
            if let Some(help) = &d.help {
                write!(f, "\n  help: {help}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Parses and validates a config text. `origin` names the file in diagnostics; relative paths
/// in the file (TLS files, CA files, pid file, access log) are resolved against `base_dir`.
pub fn parse_str(text: &str, origin: &str, base_dir: &Path) -> Result<Config, Diagnostics> {
    validate::parse(text, origin, base_dir, validate::Scope::File)
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse_str(&text, &path.display().to_string(), base).map_err(LoadError::Invalid)
}
