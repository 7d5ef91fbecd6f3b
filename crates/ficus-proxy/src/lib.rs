//! ficus data plane: listeners, router, sticky split, upstream pools, fallback to legacy.
//!
//! The request path lives in [`proxy`]; the pure decisions it makes (which route, which side)
//! in [`router`] and [`split`], tested without I/O.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod access_log;
pub mod body;
mod cached;
pub mod events;
pub mod flags;
pub mod h1;
pub mod h1server;
pub mod headers;
pub mod mirror;
pub mod problem;
pub mod proxy;
pub(crate) mod rand;
pub mod record;
pub mod router;
pub mod server;
pub mod split;
pub mod table;
pub mod trace;
pub mod upstream;

pub use server::{Gateway, GatewayError};
pub use split::Side;
pub use table::RouteTable;
