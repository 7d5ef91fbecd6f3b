//! ficus's state store: config versions, the audit log of events, the runtime route
//! overrides, the runs of `[[verify]]` jobs and the shadow-comparison aggregates, on SQLite
//! (default, one file) or PostgreSQL.
//!
//! The control plane's `apply` ends in one [`Store::commit`]: an optimistic version check,
//! the new config version, the override change and the events, all in one transaction.
//! The request path never touches the store (invariant 1): it reads the route table that
//! the control plane compiled from what the store returned.
//!
//! `docs/store.md` describes the schema, the URL forms, the limits and the guarantees.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

#[macro_use]
mod macros;
mod error;
pub mod fleet;
mod options;
pub mod replay;
mod store;
mod target;
mod types;
mod validate;

pub use error::StoreError;
pub use fleet::{
    Fence, FleetState, LeaderRow, NodeBeat, NodeRegistration, NodeRow, Notice, Pruned,
    RevisionListener, RolloutStatusRow, SliRow, SloStatusRow, SyncState, TelemetrySlot,
};
pub use options::{
    limits, StoreOptions, DEFAULT_BUSY_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PG_CONNECTIONS,
    DEFAULT_SQLITE_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT,
};
pub use replay::{NewReplayRun, ReplayRun};
pub use store::Store;
pub use types::{
    Change, Committed, ConfigVersion, ConfigVersionSummary, Event, EventFilter, FlagOverrideChange,
    FlagOverrideRow, FlagOverrideSet, NewEvent, NewVerifyRun, NewVersion, OverrideChange,
    OverrideSet, RouteOverride, ShadowBatch, ShadowEndpoint, ShadowField, ShadowSample,
    VerifyFreshness, VerifyProgress, VerifyRun, VerifyRunScope, VersionRef, SHADOW_RESET_KIND,
    VERIFY_MODES, VERIFY_OUTCOMES,
};
