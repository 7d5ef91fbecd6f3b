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

/// The problems of one file, in file order: the first [`MAX_DIAGNOSTICS`] found, and how
/// many more there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The file name as given to the parser (used as the `file` of `file:line:col`).
    pub origin: String,
    pub items: Vec<Diagnostic>,
    /// Problems found beyond [`MAX_DIAGNOSTICS`], counted but not kept.
    pub omitted: usize,
}

/// Problems reported for one text at most; the rest are counted (a file of typos would
/// otherwise print a line or two for every line it has).
pub const MAX_DIAGNOSTICS: usize = 50;

impl Diagnostics {
    /// Every problem found, the omitted ones included.
    pub fn count(&self) -> usize {
        self.items.len() + self.omitted
    }
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
        if self.omitted > 0 {
            write!(
                f,
                "\n{}: ... and {} more error(s) not shown (at most {MAX_DIAGNOSTICS} are \
                 reported: fix these and check again)",
                self.origin, self.omitted
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The cause is part of the message (and so not also a `source()`, which printers of
    /// error chains would print a second time).
    #[error("cannot read config file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Parses and validates a config text. `origin` names the file in diagnostics; relative paths
/// in the file (TLS files, CA files, pid file, access log) are resolved against `base_dir`.
pub fn parse_str(text: &str, origin: &str, base_dir: &Path) -> Result<Config, Diagnostics> {
    validate::parse(text, origin, base_dir, validate::Scope::File)
}

/// Refuses a config text over [`defaults::MAX_CONFIG_BYTES`], at 1:1 of `origin`, naming the
/// limit. Validation checks every text it reads with it; the control plane checks the
/// fleet-wide part it stores too, which normalising can make a little longer than the text
/// it came from (a blank line before each table, a final newline).
pub fn check_size(text: &str, origin: &str) -> Result<(), Diagnostics> {
    validate::check_size(text.len(), origin)
}

/// Reads, parses and validates a config file: at most [`defaults::MAX_CONFIG_BYTES`] of
/// UTF-8 text (a larger file is not read beyond the limit; a byte that is not UTF-8, as in
/// a binary file, is reported at its line and column).
pub fn load(path: &Path) -> Result<Config, LoadError> {
    use std::io::Read;
    let io = |error| LoadError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(defaults::MAX_CONFIG_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(io)?;
    let origin = path.display().to_string();
    let text = validate::text(bytes, &origin).map_err(LoadError::Invalid)?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse_str(&text, &origin, base).map_err(LoadError::Invalid)
}
