//! ficus recordings: the exchanges a route served, captured by the gateway (issue 20) and
//! read back by `ficus replay` and `ficus record export`.
//!
//! - [`exchange`]: what one record holds: the request as it reached ficus, the response
//!   that reached the client, on shadow routes modern's response and the comparison's
//!   verdict, and where it went (route, stage, side, fallback, the sticky key's token).
//! - [`format`]: the file. A header (format version, ficus version, the redaction policy's
//!   hash) then blocks, each one zstd frame (with its content checksum) of length-prefixed
//!   records behind its own length (format 2: binary records, [`binary`]; format 1, still
//!   read: JSON records). Append-only; a block is written whole or not at all as
//!   far as the reader is concerned: a torn tail after a crash is detected and skipped.
//! - [`redact`]: applied when writing, never after: `Authorization` keeps its scheme,
//!   cookies their names, configured headers, query parameters and JSON paths become keyed
//!   HMAC-SHA256 tokens (equal values, equal tokens). An exchange a rule cannot be applied
//!   to is refused ([`redact::RedactError`]), so the caller drops it and counts it: nothing
//!   is ever written raw.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod binary;
pub mod exchange;
pub mod format;
pub mod gor;
pub mod har;
pub mod redact;
pub mod schedule;

pub use exchange::{Body, Exchange, Message, Shadow};
pub use format::{
    encode_record, FileHeader, ReadError, Reader, Writer, WriterOptions, FORMAT_VERSION,
    JSON_FORMAT, MAGIC,
};
pub use redact::{Policy, RedactError, Redactor};
pub use schedule::{offsets, Pace};
