//! The validated configuration model: what the rest of ficus consumes after parsing succeeded.
//!
//! Every value here has already been checked; consumers never re-validate. Defaults live in
//! [`defaults`] so the documentation and the code name the same numbers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};

/// Documented defaults for every limit and knob. `docs/configuration.md` lists the same values.
pub mod defaults {
    use std::time::Duration;

    /// How long a client may take to send a complete request head (slow-client protection).
    /// An idle HTTP/1.1 keep-alive connection is waiting for a head too, so it is closed
    /// after the same time.
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Largest request head (request line + headers) accepted before answering 431.
    pub const MAX_HEADER_BYTES: u64 = 32 * 1024;
    /// Smallest `max_header_bytes` hyper's HTTP/1 parser supports.
    pub const MIN_HEADER_BYTES: u64 = 8 * 1024;
    /// Connections served at once across all listeners; more are answered 503 and closed.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// How long SIGTERM/SIGINT waits for in-flight requests before closing connections.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// How long a request body ficus reads before sending it (a body kept for a re-send to
    /// legacy, an HTTP/2 `content-length: 0` body's end) may go without a byte (then 408),
    /// as nginx's `client_body_timeout`.
    pub const CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
    /// How long a client may leave a response unread (no byte of it accepted by the
    /// connection) before its connection is closed, as nginx's `send_timeout`.
    pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Time from sending the request upstream until the response head arrives (then 504).
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    pub const MAX_IDLE_CONNECTIONS: usize = 64;
    pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
    /// How long an upstream may send nothing while ficus waits for the next bytes of its
    /// response body (then the client's connection is closed, the response being cut
    /// short), as nginx's `proxy_read_timeout`.
    pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

    /// Largest request body a route accepts (413 above it).
    pub const MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
    /// Request bodies up to this size are kept in memory so a failed modern call can be re-sent
    /// to legacy; larger (or unknown-length) bodies stream and are only re-sent when nothing was
    /// sent upstream yet.
    pub const MAX_BUFFERED_BODY: u64 = 64 * 1024;
    /// The longest client `X-Request-Id` ficus accepts (and forwards and logs); a longer one,
    /// or one with a character outside `A-Z a-z 0-9 - _ . : + / =`, is replaced by a
    /// generated id (32 hex digits).
    pub const REQUEST_ID_MAX_LEN: usize = 128;
    /// Records queued for the access-log writer; when full, records are dropped and counted.
    pub const ACCESS_LOG_QUEUE: usize = 8192;
    /// The largest config text, in bytes, anywhere: a file `ficus run`, `validate` or
    /// `reload` reads, a text the admin API plans or applies, a version the state store
    /// keeps (its own `limits::MAX_CONFIG_BYTES` is the same number). Validation refuses a
    /// larger one.
    pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;
    /// Where the admin API, `/metrics` and the dashboard listen.
    pub const ADMIN_BIND: &str = "127.0.0.1:9901";
    /// The state store when the config names none: a SQLite file beside the config file.
    pub const STORE_FILE: &str = "ficus.db";
    /// How often a `[[verify]]` job runs.
    pub const VERIFY_EVERY: Duration = Duration::from_secs(3600);
    /// The shortest `every` a `[[verify]]` job accepts: each run reads both tables.
    pub const VERIFY_MIN_EVERY: Duration = Duration::from_secs(10);
    /// Connections per database of a `[[verify]]` job (ficus-verify's own default).
    pub const VERIFY_MAX_CONNECTIONS: u32 = 4;
    /// How often a `[[verify]]` job with a `watermark` runs in full (its other runs are
    /// incremental): full runs find what incremental ones cannot (deleted source rows,
    /// writes that did not advance the watermark).
    pub const VERIFY_FULL_EVERY: Duration = Duration::from_secs(24 * 3600);

    /// A migration step's timeout (action and gate together).
    pub const MIGRATION_STEP_TIMEOUT: Duration = Duration::from_secs(3600);
    /// `dual_write`: writes compared before its gate can pass.
    pub const MIGRATION_MIN_COMPARED: u64 = 100;
    /// `dual_write`: the largest share of compared writes with a real difference.
    pub const MIGRATION_MAX_MISMATCH: f64 = 0.0;
    /// Switch steps: how old the verify jobs' proof of equality may be before they switch.
    pub const MIGRATION_FRESH: Duration = Duration::from_secs(300);
    /// `switch_reads`, `switch_writes`: time on modern with SLOs clear.
    pub const MIGRATION_SOAK: Duration = Duration::from_secs(60);
    /// `contract`: time without a request served by legacy.
    pub const MIGRATION_QUIET: Duration = Duration::from_secs(600);
    /// `[migration.throttle]`: the window of its p99 and error rate.
    pub const THROTTLE_WINDOW: Duration = Duration::from_secs(30);
    /// `[migration.throttle]`: fewer requests in the window never throttle.
    pub const THROTTLE_MIN_REQUESTS: u64 = 20;
    /// At most this many steps in a plan, and plans in a config.
    pub const MAX_MIGRATION_STEPS: usize = 32;
    pub const MAX_MIGRATIONS: usize = 64;
    /// A command's output kept in its step's event (stdout and stderr each, the tail).
    pub const MIGRATION_OUTPUT_BYTES: usize = 8 * 1024;

    /// Mirrored requests waiting for the mirror worker; when full, copies are dropped and
    /// counted (the client's request is never held up).
    pub const SHADOW_QUEUE: usize = 1024;
    /// Mirror exchanges (modern call, noise call, comparison) in progress at once.
    pub const SHADOW_MAX_IN_FLIGHT: usize = 64;
    /// Largest request or response body the mirror keeps for a comparison; a larger one drops
    /// the copy (counted as `too-large`).
    pub const SHADOW_MAX_BODY: u64 = 1024 * 1024;
    /// Sample exchanges kept per (endpoint, field path, kind).
    pub const SHADOW_SAMPLES_PER_FIELD: usize = 5;
    /// Distinct (route, endpoint, field path, kind) keys tracked; new ones beyond are counted
    /// and dropped.
    pub const SHADOW_MAX_FIELDS: usize = 10_000;
    /// Noise filter thresholds (Diffy's defaults): a field is a real difference only when its
    /// legacy-vs-modern rate exceeds its legacy-vs-legacy rate by more than 20 % of itself and
    /// by more than 0.03 percentage points.
    pub const SHADOW_NOISE_RELATIVE: f64 = 0.20;
    pub const SHADOW_NOISE_ABSOLUTE: f64 = 0.0003;
    /// How often comparison aggregates are written to the store.
    pub const SHADOW_FLUSH_INTERVAL: Duration = Duration::from_secs(2);
    /// Share of a shadow route's sticky keys that are mirrored.
    pub const SHADOW_SAMPLE_PERCENT: f64 = 100.0;
    /// Share of mirrored safe requests also sent to legacy a second time, to learn the noise.
    pub const SHADOW_NOISE_SAMPLE_PERCENT: f64 = 10.0;

    /// Keys a route's rate limiter tracks at once; beyond, the most replenished are dropped.
    pub const RATE_MAX_KEYS: usize = 100_000;
    /// Requests waiting for an upstream slot when `max_in_flight` is set.
    pub const UPSTREAM_QUEUE: usize = 100;
    /// How long a request waits for an upstream slot before it is shed (503).
    pub const UPSTREAM_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
    /// Circuit breaker: failures in a row that open it.
    pub const BREAKER_CONSECUTIVE_FAILURES: u32 = 5;
    /// Circuit breaker: share of failed requests in the window that opens it (fraction)...
    pub const BREAKER_FAILURE_RATE: f64 = 0.5;
    /// ...with at least this many requests in the window.
    pub const BREAKER_MIN_REQUESTS: u32 = 20;
    pub const BREAKER_WINDOW: Duration = Duration::from_secs(10);
    /// How long an open breaker rejects before probing (doubles on a failed probe, to 5 min).
    pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(10);
    pub const BREAKER_MAX_OPEN_FOR: Duration = Duration::from_secs(300);
    /// Probes let through half-open; that many successes close the breaker.
    pub const BREAKER_HALF_OPEN_PROBES: u32 = 3;
    /// Retries of one request after the first attempt.
    pub const RETRY_ATTEMPTS: u32 = 2;
    /// Retries allowed per original request over the last 10 s (fraction)...
    pub const RETRY_BUDGET: f64 = 0.2;
    /// ...plus this many per second regardless.
    pub const RETRY_MIN_PER_SECOND: u32 = 10;
    /// First backoff cap; doubles per attempt (full jitter), up to `RETRY_MAX_BACKOFF`.
    pub const RETRY_BACKOFF: Duration = Duration::from_millis(25);
    pub const RETRY_MAX_BACKOFF: Duration = Duration::from_millis(250);
    /// A route's response cache: stored bytes (status, headers, bodies, every variant).
    pub const CACHE_MAX_BYTES: u64 = 64 * 1024 * 1024;
    /// Larger responses are served but not stored.
    pub const CACHE_MAX_ENTRY_BYTES: u64 = 1024 * 1024;
    /// `Vary` variants kept per URL.
    pub const CACHE_MAX_VARIANTS: usize = 8;
    /// Rollout: the weights walked, in percent.
    pub const ROLLOUT_STEPS: [f64; 5] = [1.0, 5.0, 25.0, 50.0, 100.0];
    /// Rollout: time in a step before it may promote.
    pub const ROLLOUT_INTERVAL: Duration = Duration::from_secs(60);
    /// Rollout: requests each side needs in a step before it may promote.
    pub const ROLLOUT_MIN_REQUESTS: u64 = 100;
    /// Rollout: a step holding this long pauses the rollout for an operator.
    pub const ROLLOUT_MAX_STEP_TIME: Duration = Duration::from_secs(30 * 60);
    /// A webhook POST that takes longer is abandoned (and retried).
    pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(2);
    /// Tries after the first failed POST of an event.
    pub const WEBHOOK_RETRIES: u32 = 3;

    /// Fleet: how often a node reads the store's revision, in case a notification was lost.
    pub const FLEET_POLL_INTERVAL: Duration = Duration::from_secs(2);
    /// Fleet: how often a node records that it is alive (and renews the lease if it leads).
    pub const FLEET_HEARTBEAT: Duration = Duration::from_secs(1);
    /// Fleet: a node silent for this long shows as down.
    pub const FLEET_DEAD_AFTER: Duration = Duration::from_secs(10);
    /// Fleet: a node silent for this long is removed from the registry.
    pub const FLEET_PRUNE_AFTER: Duration = Duration::from_secs(3600);
    /// Fleet: the leader lease; a leader that stops renewing is replaced after it.
    pub const FLEET_LEASE: Duration = Duration::from_secs(5);
    /// Fleet: how often a node writes its closed seconds of traffic to the store.
    pub const FLEET_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
    /// Fleet: per-second traffic rows kept in the store.
    pub const FLEET_SECONDS_KEPT: Duration = Duration::from_secs(15 * 60);
    /// Fleet: per-minute traffic rows kept in the store.
    pub const FLEET_MINUTES_KEPT: Duration = Duration::from_secs(35 * 24 * 3600);
    /// Fleet: the shortest poll_interval, heartbeat and flush_interval accepted.
    pub const FLEET_MIN_INTERVAL: Duration = Duration::from_millis(100);
    /// Fleet: the longest poll_interval, heartbeat and flush_interval accepted.
    pub const FLEET_MAX_INTERVAL: Duration = Duration::from_secs(60);

    /// Tracing: the share of new traces (no sampled parent) that are recorded. OpenTelemetry's
    /// default sampler records every trace; lower it for heavy traffic.
    pub const TRACING_SAMPLE_RATIO: f64 = 1.0;
    /// Tracing: the service name spans carry (`service.name`).
    pub const TRACING_SERVICE_NAME: &str = "ficus";
    /// Tracing: finished spans waiting for export; more are dropped and counted (the
    /// OpenTelemetry batch processor's default).
    pub const TRACING_QUEUE: usize = 2048;
    /// Tracing: the most spans in one export request.
    pub const TRACING_BATCH: usize = 512;
    /// Tracing: the longest a finished span waits before its batch is sent.
    pub const TRACING_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
    /// Tracing: how long one export request may take (OpenTelemetry's default).
    pub const TRACING_TIMEOUT: Duration = Duration::from_secs(10);
    /// Tracing: the largest `queue` and `batch` accepted.
    pub const TRACING_MAX_QUEUE: usize = 1_000_000;

    /// SLOs: how often the leader evaluates every SLO's burn rates.
    pub const SLO_EVALUATE_EVERY: Duration = Duration::from_secs(5);
    /// SLOs: a burn-rate rule fires only when both its windows hold at least this many
    /// requests (the minimum-traffic guard).
    pub const SLO_MIN_REQUESTS: u64 = 100;
    /// SLOs: a rollout does not promote while a route's SLO has less of its error budget left
    /// than this share (0: only an exhausted budget holds it).
    pub const SLO_ROLLOUT_MIN_BUDGET: f64 = 0.0;
    /// SLOs: latency thresholds counted per scope (route, legacy, modern) of a route.
    pub const SLO_MAX_THRESHOLDS: usize = 4;
    /// SLOs: per-minute SLI counts older than this are rolled up into hours (the evaluator
    /// reads whole hours beyond its 3 days of minutes).
    pub const SLO_MINUTES_KEPT: Duration = Duration::from_secs((3 * 24 + 2) * 3600);
    /// SLOs: hourly SLI counts kept, for past months' compliance.
    pub const SLO_HOURS_KEPT: Duration = Duration::from_secs(400 * 24 * 3600);
    /// OFREP: the largest request body (a context of a few hundred attributes fits).
    pub const OFREP_MAX_BODY: u64 = 64 * 1024;
    /// OFREP: the most attributes, at any depth, of one evaluation context.
    pub const OFREP_MAX_CONTEXT_ATTRIBUTES: usize = 256;
    /// OFREP: evaluations per second per key (or client address), sustained.
    pub const OFREP_PER_SECOND: f64 = 1000.0;
    /// OFREP: evaluations a key may make back to back.
    pub const OFREP_BURST: u32 = 2000;
    /// OFREP: event streams open at once on one node.
    pub const OFREP_MAX_STREAMS: usize = 10_000;
    /// The header a route's `forward_flags` sends its evaluated flags in.
    pub const FORWARD_FLAGS_HEADER: &str = "x-ficus-flags";
    /// The most flags one route forwards (each is evaluated for every request).
    pub const MAX_FORWARD_FLAGS: usize = 64;
    /// Recording: bytes of each body kept.
    pub const RECORD_MAX_BODY: u64 = 64 * 1024;
    /// Recording: one route's recording on one node, at most.
    pub const RECORD_MAX_SIZE: u64 = 1024 * 1024 * 1024;
    /// Recording: exchanges waiting for the writer thread.
    pub const RECORD_QUEUE: usize = 4096;
    /// Recording: a file is rotated at this size.
    pub const RECORD_ROTATE_BYTES: u64 = 256 * 1024 * 1024;
    /// Recording: a file is rotated at this age.
    pub const RECORD_ROTATE_EVERY: Duration = Duration::from_secs(3600);
    /// Recording: every recording of a node together.
    pub const RECORD_MAX_TOTAL: u64 = 10 * 1024 * 1024 * 1024;
    /// Recording: the folder, beside the config file.
    pub const RECORD_DIR: &str = "recordings";
    /// Flags: the most flags in one config.
    pub const MAX_FLAGS: usize = 10_000;
    /// SLOs: the rolling window when none is given.
    pub const SLO_WINDOW_DAYS: u32 = 30;
}

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub gateway: Gateway,
    pub listeners: Vec<Listener>,
    /// In file order; names are unique.
    pub upstreams: Vec<Upstream>,
    /// In file order: first match wins.
    pub routes: Vec<Route>,
    /// Catches every request no route matched. Its `matcher` matches everything and its name
    /// is `default`.
    pub default_route: Route,
    pub access_log: AccessLog,
    pub telemetry: Telemetry,
    pub admin: Admin,
    /// The state store URL: `sqlite://PATH` (default: `ficus.db` beside the config file) or
    /// `postgres://...`.
    pub store: String,
    /// `[[verify]]`: data-integrity jobs the gateway runs on a schedule; names are unique.
    pub verify: Vec<VerifyJob>,
    /// `[shadow]`: mirror bounds and the noise filter.
    pub shadow: ShadowSettings,
    /// `[[webhook]]`: where events are POSTed as JSON.
    pub webhooks: Vec<Webhook>,
    /// `[node]`: this process's name in a fleet (node-local).
    pub node: Node,
    /// `[fleet]`: how this process takes part in a fleet (node-local).
    pub fleet: FleetSettings,
    /// `[redact]`: names whose values never leave ficus, beside the built-in ones.
    pub redact: Redaction,
    /// `[tracing]`: W3C trace context and spans exported over OTLP (node-local).
    pub tracing: Tracing,
    /// `[slo]`: the burn-rate table, the SLOs of every route, evaluation settings.
    pub slo: SloSettings,
    /// `[[flag]]`: feature flags, by key (unique), in file order.
    pub flags: Vec<ficus_flags::Flag>,
    /// `[ofrep]`: where and how flags are served over OFREP (node-local).
    pub ofrep: Ofrep,
    /// `[record]`: where this node writes recordings (node-local).
    pub recording: Recording,
    /// `[[migration]]`: data migration plans, names unique, in file order.
    pub migrations: Vec<Migration>,
}

/// `[ofrep]`: the OpenFeature Remote Evaluation Protocol listener (node-local).
#[derive(Debug, Clone, PartialEq)]
pub struct Ofrep {
    /// Where OFREP is served; `None`: not served.
    pub bind: Option<SocketAddr>,
    /// A file of evaluation keys (one per line, `#` comments); `None`: no key needed (only
    /// allowed on a loopback bind).
    pub keys_file: Option<PathBuf>,
    /// The largest request body.
    pub max_body: u64,
    /// The most attributes (at any depth) an evaluation context may hold.
    pub max_context_attributes: usize,
    /// Evaluations per second per key (or per client address without keys), and the burst.
    pub per_second: f64,
    pub burst: u32,
    /// Event streams open at once; more are refused with `503`.
    pub max_streams: usize,
}

impl Default for Ofrep {
    fn default() -> Self {
        Ofrep {
            bind: None,
            keys_file: None,
            max_body: defaults::OFREP_MAX_BODY,
            max_context_attributes: defaults::OFREP_MAX_CONTEXT_ATTRIBUTES,
            per_second: defaults::OFREP_PER_SECOND,
            burst: defaults::OFREP_BURST,
            max_streams: defaults::OFREP_MAX_STREAMS,
        }
    }
}

/// `[slo]`: settings every SLO shares, and the SLOs of every route that has none of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SloSettings {
    /// How often the leader evaluates.
    pub evaluate_every: Duration,
    /// The minimum-traffic guard of SLOs that give none.
    pub min_requests: u64,
    /// A rollout does not promote while the route's budget left is under this share.
    pub rollout_min_budget: f64,
    /// `[[slo.burn_rate]]`: the multi-window, multi-burn-rate table (default: the SRE
    /// workbook's).
    pub burn_rates: Vec<ficus_slo::BurnRule>,
    /// `[[slo.default]]`: the SLOs of every route (the default route included) without
    /// `[[route.slo]]` of its own.
    pub defaults: Vec<SloDef>,
}

impl Default for SloSettings {
    fn default() -> Self {
        SloSettings {
            evaluate_every: defaults::SLO_EVALUATE_EVERY,
            min_requests: defaults::SLO_MIN_REQUESTS,
            rollout_min_budget: defaults::SLO_ROLLOUT_MIN_BUDGET,
            burn_rates: ficus_slo::default_burn_rules(),
            defaults: Vec::new(),
        }
    }
}

/// One SLO as the file writes it (`[[route.slo]]` or `[[slo.default]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SloDef {
    /// Unique among the route's SLOs.
    pub name: String,
    pub scope: ficus_slo::Scope,
    pub sli: ficus_slo::Sli,
    /// Percent of good requests, e.g. 99.9.
    pub objective: f64,
    pub window: ficus_slo::Window,
    /// The minimum-traffic guard (`None`: `[slo] min_requests`).
    pub min_requests: Option<u64>,
}

impl Config {
    /// Every route's SLOs as the evaluator takes them: a route's own `[[route.slo]]`, else
    /// `[[slo.default]]`, with the shared burn-rate table and guard.
    pub fn slo_specs(&self) -> Vec<ficus_slo::Spec> {
        let mut out = Vec::new();
        for r in self
            .routes
            .iter()
            .chain(std::iter::once(&self.default_route))
        {
            let defs = if r.slos.is_empty() {
                &self.slo.defaults
            } else {
                &r.slos
            };
            for d in defs {
                out.push(ficus_slo::Spec {
                    name: d.name.clone(),
                    route: r.name.clone(),
                    scope: d.scope,
                    sli: d.sli.clone(),
                    objective: d.objective,
                    window: d.window,
                    rules: self.slo.burn_rates.clone(),
                    min_requests: d.min_requests.unwrap_or(self.slo.min_requests),
                });
            }
        }
        out
    }
}

/// `[tracing]`: trace context (W3C `traceparent`) and spans exported over OTLP/HTTP. Every
/// setting left out may come from the standard `OTEL_*` environment variables, read when
/// the gateway starts (`ficus_trace::Settings::resolve`); a setting in the file wins.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tracing {
    /// `Some(false)`: off, whatever the environment says. `None`: on when an endpoint is set
    /// here or in `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    pub enabled: Option<bool>,
    /// The collector's OTLP/HTTP base URL (`/v1/traces` is appended), e.g.
    /// `http://127.0.0.1:4318`.
    pub endpoint: Option<Uri>,
    /// Extra headers on each export request (an API key, say).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The share of new traces recorded, 0 to 1.
    pub sample_ratio: Option<f64>,
    /// Follow the caller's sampling decision when a request carries a `traceparent`
    /// (default true).
    pub parent_based: Option<bool>,
    pub service_name: Option<String>,
    /// More resource attributes (`deployment.environment`, ...).
    pub resource: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    pub queue: Option<usize>,
    pub batch: Option<usize>,
    pub flush_interval: Option<Duration>,
    /// Extra trusted roots (PEM) for an `https://` collector.
    pub ca_file: Option<PathBuf>,
}

/// `[redact]`: header and query parameter names (lower case) whose values are replaced by
/// `[redacted]` in shadow samples, the access log and the logs, added to
/// `ficus_compare::DEFAULT_SENSITIVE` and `DEFAULT_SENSITIVE_QUERY`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redaction {
    pub headers: Vec<String>,
    pub query: Vec<String>,
}

impl Redaction {
    /// Every sensitive header name: the built-in list and these.
    pub fn all_headers(&self) -> Vec<String> {
        ficus_compare::DEFAULT_SENSITIVE
            .iter()
            .map(|s| s.to_string())
            .chain(self.headers.iter().cloned())
            .collect()
    }

    /// Every sensitive query parameter name: the built-in list and these.
    pub fn all_query(&self) -> Vec<String> {
        ficus_compare::sensitive_query(&self.query)
    }
}

impl Config {
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// Routes in evaluation order, the default route last.
    pub fn all_routes(&self) -> impl Iterator<Item = &Route> {
        self.routes
            .iter()
            .chain(std::iter::once(&self.default_route))
    }
}

/// `[node]`: this process's identity among the nodes sharing a store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// Shown by `ficus fleet` and the dashboard (default: the host name).
    pub name: Option<String>,
    /// The admin API URL other people reach this node at (default: from `[admin] bind`).
    pub admin_url: Option<String>,
    /// Whether this node, as leader, runs the commands of `[[migration]]` steps (the file
    /// is fleet-wide and can be applied through the admin API: each node opts in).
    pub migration_commands: bool,
}

/// `[fleet]`: the timings of this node's part in a fleet (see docs/fleet.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSettings {
    /// LISTEN for changes (PostgreSQL NOTIFY); off behind a pooler that cannot, such as
    /// PgBouncer in transaction mode: then changes arrive by polling alone.
    pub listen: bool,
    pub poll_interval: Duration,
    pub heartbeat: Duration,
    pub dead_after: Duration,
    pub prune_after: Duration,
    pub lease: Duration,
    pub flush_interval: Duration,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            listen: true,
            poll_interval: defaults::FLEET_POLL_INTERVAL,
            heartbeat: defaults::FLEET_HEARTBEAT,
            dead_after: defaults::FLEET_DEAD_AFTER,
            prune_after: defaults::FLEET_PRUNE_AFTER,
            lease: defaults::FLEET_LEASE,
            flush_interval: defaults::FLEET_FLUSH_INTERVAL,
        }
    }
}

/// `[gateway]`: process-wide limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub header_read_timeout: Duration,
    pub max_header_bytes: u64,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Where `ficus run` writes its process id (used by `ficus reload`).
    pub pid_file: Option<PathBuf>,
    /// Idle time allowed between two reads of a request body ficus reads before sending.
    pub client_body_timeout: Duration,
    /// Idle time allowed between two writes to a client that does not read.
    pub send_timeout: Duration,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            header_read_timeout: defaults::HEADER_READ_TIMEOUT,
            max_header_bytes: defaults::MAX_HEADER_BYTES,
            max_connections: defaults::MAX_CONNECTIONS,
            shutdown_grace: defaults::SHUTDOWN_GRACE,
            pid_file: None,
            client_body_timeout: defaults::CLIENT_BODY_TIMEOUT,
            send_timeout: defaults::SEND_TIMEOUT,
        }
    }
}

/// `[[listener]]`: one socket clients connect to.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    pub tls: Option<TlsFiles>,
}

/// PEM files for a TLS listener (paths resolved against the config file's folder).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[upstream.NAME]`: a backend service.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: String,
    /// `http://` or `https://`, an authority, optionally a path prefix (no query). The prefix,
    /// without a trailing slash, is prepended to every request path sent to this upstream.
    pub url: Uri,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_idle_connections: usize,
    pub pool_idle_timeout: Duration,
    /// Idle time allowed between two reads of a response body from this upstream.
    pub read_timeout: Duration,
    /// Speak HTTP/2 to this upstream (prior knowledge for http://, ALPN for https://).
    pub http2: bool,
    pub host: HostHeader,
    /// Extra trusted root certificates (PEM) for an https upstream, besides the web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// Concurrency limit and wait queue (`None`: unlimited).
    pub limit: Option<ConcurrencyPolicy>,
    /// `[upstream.NAME.breaker]` (`None`: no circuit breaker).
    pub breaker: Option<BreakerPolicy>,
}

/// `max_in_flight`, `queue`, `queue_timeout` of an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcurrencyPolicy {
    pub max_in_flight: usize,
    pub queue: usize,
    pub queue_timeout: Duration,
}

/// `[upstream.NAME.breaker]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerPolicy {
    /// 0 disables this trigger.
    pub consecutive_failures: u32,
    /// Fraction 0..=1 (the file says percent).
    pub failure_rate: f64,
    pub min_requests: u32,
    pub window: Duration,
    pub open_for: Duration,
    pub half_open_probes: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            consecutive_failures: defaults::BREAKER_CONSECUTIVE_FAILURES,
            failure_rate: defaults::BREAKER_FAILURE_RATE,
            min_requests: defaults::BREAKER_MIN_REQUESTS,
            window: defaults::BREAKER_WINDOW,
            open_for: defaults::BREAKER_OPEN_FOR,
            half_open_probes: defaults::BREAKER_HALF_OPEN_PROBES,
        }
    }
}

/// Which requests of a route are shed first when an upstream is at its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Shed last.
    Critical,
    #[default]
    Normal,
    /// Shed first.
    Low,
}

impl Priority {
    pub fn parse(s: &str) -> Option<Priority> {
        match s {
            "critical" => Some(Priority::Critical),
            "normal" => Some(Priority::Normal),
            "low" => Some(Priority::Low),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// `[route.rate_limit]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    pub key: RateKey,
    pub max_keys: usize,
}

/// What a rate limit counts per.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    ClientIp,
    Header(HeaderName),
    /// The route's sticky key.
    Sticky,
    /// One budget for the whole route.
    Route,
}

impl std::fmt::Display for RateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateKey::ClientIp => f.write_str("client-ip"),
            RateKey::Header(h) => write!(f, "header:{h}"),
            RateKey::Sticky => f.write_str("sticky"),
            RateKey::Route => f.write_str("route"),
        }
    }
}

impl Upstream {
    /// The path prefix prepended to every request path sent to this upstream: the url's path
    /// without its trailing slash, so `""` for `http://host:port` or `http://host:port/` and
    /// `"/api"` for `http://host/api/`.
    pub fn path_prefix(&self) -> &str {
        self.url.path().trim_end_matches('/')
    }
}

/// What `Host` (HTTP/1) or `:authority` (HTTP/2) the upstream receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// The client's Host, unchanged (the default: the services see what the client asked for).
    Preserve,
    /// The authority of the upstream's URL.
    Upstream,
    /// A fixed value.
    Fixed(String),
}

/// The strangler-fig lifecycle of a route (see DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Legacy,
    Shadow,
    Canary,
    Modern,
    Retired,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Legacy,
        Stage::Shadow,
        Stage::Canary,
        Stage::Modern,
        Stage::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Legacy => "legacy",
            Stage::Shadow => "shadow",
            Stage::Canary => "canary",
            Stage::Modern => "modern",
            Stage::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether this stage ever calls the modern upstream (and so needs one).
    pub fn uses_modern(self) -> bool {
        !matches!(self, Stage::Legacy)
    }

    /// The share of sticky keys modern answers on this stage with `weight`: none on legacy
    /// and shadow, the weight on canary, all on modern and retired (where the weight is
    /// kept but not used).
    pub fn modern_keys(self, weight: Weight) -> Weight {
        match self {
            Stage::Legacy | Stage::Shadow => Weight::ZERO,
            Stage::Canary => weight,
            Stage::Modern | Stage::Retired => Weight::MAX,
        }
    }
}

impl serde::Serialize for Stage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Serialized as the percentage (`25.5`).
impl serde::Serialize for Weight {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.percent())
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Share of sticky keys answered by modern, in hundredths of a percent (0..=10000), so that
/// `25.5%` is `Weight(2550)` and bucket `b` goes to modern iff `b < weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Weight(u16);

impl Weight {
    pub const MAX: Weight = Weight(10_000);
    pub const ZERO: Weight = Weight(0);

    /// From hundredths of a percent; `None` above 10000.
    pub fn from_basis_points(bp: u16) -> Option<Weight> {
        (bp <= 10_000).then_some(Weight(bp))
    }

    /// From a percentage with at most two decimals (`25`, `0.5`, `12.34`); `None` when out of
    /// range, not finite, or more precise than two decimals.
    pub fn from_percent(p: f64) -> Option<Weight> {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return None;
        }
        let bp = (p * 100.0).round();
        if ((p * 100.0) - bp).abs() > 1e-6 {
            return None;
        }
        Weight::from_basis_points(bp as u16)
    }

    pub fn basis_points(self) -> u16 {
        self.0
    }

    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl std::fmt::Display for Weight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_multiple_of(100) {
            write!(f, "{}%", self.0 / 100)
        } else {
            write!(f, "{}.{:02}%", self.0 / 100, self.0 % 100)
        }
    }
}

/// What keeps a user on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyKey {
    /// `header:X-User-Id`
    Header(HeaderName),
    /// `cookie:session`
    Cookie(String),
    /// `query:account`
    Query(String),
    /// `client-ip` (the default)
    ClientIp,
}

impl std::fmt::Display for StickyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StickyKey::Header(h) => write!(f, "header:{h}"),
            StickyKey::Cookie(c) => write!(f, "cookie:{c}"),
            StickyKey::Query(q) => write!(f, "query:{q}"),
            StickyKey::ClientIp => f.write_str("client-ip"),
        }
    }
}

/// `[route.fallback]`: when a modern failure is answered by legacy instead.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackPolicy {
    /// `false` turns fallback off entirely (modern errors reach the client).
    pub enabled: bool,
    /// Methods whose request may be re-sent to legacy after it reached modern (timeout or a
    /// status in `on_status`). A connect failure falls back for every method: nothing was sent.
    pub methods: Vec<Method>,
    /// Modern response statuses that trigger fallback (default 502, 503, 504).
    pub on_status: Vec<u16>,
    /// Whether a modern timeout (no response head within `request_timeout`) falls back.
    pub on_timeout: bool,
    /// Bodies up to this many bytes are buffered so they can be re-sent.
    pub max_buffered_body: u64,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        FallbackPolicy {
            enabled: true,
            methods: vec![Method::GET, Method::HEAD, Method::OPTIONS],
            on_status: vec![502, 503, 504],
            on_timeout: true,
            max_buffered_body: defaults::MAX_BUFFERED_BODY,
        }
    }
}

/// `[[route]]` (and `[default]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    /// Name of the legacy upstream (always present).
    pub legacy: String,
    /// Name of the modern upstream; present whenever `stage.uses_modern()`.
    pub modern: Option<String>,
    pub stage: Stage,
    pub weight: Weight,
    pub sticky: StickyKey,
    pub fallback: FallbackPolicy,
    pub max_body_bytes: u64,
    /// Add `x-ficus-upstream: legacy|modern|legacy-fallback` to responses.
    pub debug_header: bool,
    /// Mirror unsafe methods (POST, PUT, PATCH, DELETE...) too: the modern service writes to
    /// its own store (shadow writing). Off by default: a mirrored write must be intended.
    pub shadow_writes: bool,
    /// `[route.shadow]`: what is mirrored and how responses are compared.
    pub shadow: ShadowPolicy,
    /// Shedding order at an upstream's concurrency limit.
    pub priority: Priority,
    /// `[route.rate_limit]` (`None`: no limit).
    pub rate_limit: Option<RateLimit>,
    /// `[route.retry]` (`None`: no retries).
    pub retry: Option<RetryPolicy>,
    /// `[route.cache]` (`None`: nothing cached).
    pub cache: Option<CachePolicy>,
    /// `[route.rollout]` (`None`: the weight only changes by hand).
    pub rollout: Option<RolloutPolicy>,
    /// `[[route.slo]]`: the route's SLOs (empty: `[[slo.default]]` applies).
    pub slos: Vec<SloDef>,
    /// `flag = { key, modern, context }`: on the canary stage, modern answers the requests
    /// for which this flag evaluates to the `modern` variant (instead of the weight).
    pub flag: Option<RouteFlag>,
    /// `forward_flags = { flags = [...], header, context }`: these flags, evaluated for each
    /// request, sent to the upstreams in one header.
    pub forward_flags: Option<ForwardFlags>,
    /// `[route.record]`: the route's exchanges written to recordings (see `ficus-record`).
    pub record: Option<RecordPolicy>,
}

/// `[route.record]`: which of a route's exchanges are recorded, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPolicy {
    /// Share of sticky keys whose exchanges are recorded.
    pub sample: Weight,
    /// Bytes of each body kept.
    pub max_body: u64,
    /// A body over `max_body`: kept cut (`truncate`, the default) or the exchange dropped.
    pub over_cap: OverCap,
    /// This route's recording stops taking exchanges at this many bytes on disk (per node).
    pub max_size: u64,
    /// Replaced by keyed tokens, besides `[redact]` and the built-in rules.
    pub redact_headers: Vec<String>,
    pub redact_query: Vec<String>,
    /// Dotted JSON paths, `*` for any key or element.
    pub redact_json: Vec<String>,
}

/// What a recording does with a body over its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverCap {
    Truncate,
    Drop,
}

/// `[record]`: where and how this node writes recordings (node-local).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The folder recordings go to (relative: to the config file's folder).
    pub dir: PathBuf,
    /// The redaction key (16 bytes or more); `None`: `<dir>/redaction.key`, created with
    /// random bytes on first use. Give every node the same file for fleet-wide tokens.
    pub key_file: Option<PathBuf>,
    /// Exchanges waiting for the writer; more are dropped (`queue_full`).
    pub queue: usize,
    /// A file is closed and a new one opened at this size...
    pub rotate_bytes: u64,
    /// ...or this age.
    pub rotate_every: Duration,
    /// All recordings of this node together: beyond, exchanges are dropped (`disk_full`).
    pub max_total: u64,
}

/// A route's evaluated flags forwarded to its upstreams: `header: key=variant, ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardFlags {
    /// The `[[flag]]` keys, in the header's order.
    pub flags: Vec<String>,
    /// The header (default [`defaults::FORWARD_FLAGS_HEADER`]); a client's own is dropped.
    pub header: http::HeaderName,
    /// Request headers put into the evaluation context, under their (lower-case) names;
    /// the targeting key is the route's sticky key.
    pub context: Vec<http::HeaderName>,
}

/// A route's canary split following a feature flag.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteFlag {
    /// The `[[flag]]` key.
    pub key: String,
    /// The variant that sends a request to modern.
    pub modern: String,
    /// Request headers put into the evaluation context, under their (lower-case) names;
    /// the targeting key is the route's sticky key.
    pub context: Vec<http::HeaderName>,
}

/// `[[webhook]]`: events whose kind starts with one of `events` are POSTed to `url` as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// `http://` or `https://`.
    pub url: Uri,
    /// Extra trusted roots (PEM) for an `https://` receiver, beside the web PKI's.
    pub ca_file: Option<PathBuf>,
    /// A file holding the key each POST is signed with (HMAC-SHA256 of the body).
    pub secret_file: Option<PathBuf>,
    /// Kind prefixes, e.g. `rollout.` or `breaker.`; default `["rollout."]`.
    pub events: Vec<String>,
    pub timeout: Duration,
    pub retries: u32,
    /// What each POST carries.
    pub format: WebhookFormat,
}

/// `[[webhook]] format`: what each POST carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// The event as JSON (id, at, actor, kind, route, message, data).
    #[default]
    Ficus,
    /// For SLO alerts only (`slo.firing`, `slo.resolved`): the body Alertmanager sends to
    /// webhook receivers (version 4), so receivers built for Alertmanager take ficus's alerts.
    Alertmanager,
}

/// `[route.rollout]`: an automated progressive rollout of the route.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutPolicy {
    /// Steps, per-step minimums and gates, as the judge takes them.
    pub spec: ficus_rollout::RolloutSpec,
    /// Steps (weights) that wait for `ficus rollout promote` before they start.
    pub manual: Vec<f64>,
    /// The stage after the last step: `modern` (default) or `retired`.
    pub after: Stage,
    /// With `after = "modern"`: retire legacy after this long on modern.
    pub retire_after: Option<Duration>,
    /// The stage a rollback sends the route to: `shadow` (default) or `legacy`.
    pub on_rollback: Stage,
    /// A step holding this long pauses the rollout for an operator (never promotes).
    pub max_step_time: Duration,
}

/// `[route.cache]`: a response cache for the route's GETs.
#[derive(Debug, Clone, PartialEq)]
pub struct CachePolicy {
    pub max_bytes: u64,
    pub max_entry_bytes: u64,
    /// Lifetime of cacheable responses that state none (`None`: only those that do are kept).
    pub ttl: Option<Duration>,
    /// Serve a stale response this long after it expired while one request refreshes it.
    pub stale_while_revalidate: Option<Duration>,
    pub max_variants: usize,
    pub allow_authorization: bool,
    pub allow_set_cookie: bool,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            max_bytes: defaults::CACHE_MAX_BYTES,
            max_entry_bytes: defaults::CACHE_MAX_ENTRY_BYTES,
            ttl: None,
            stale_while_revalidate: None,
            max_variants: defaults::CACHE_MAX_VARIANTS,
            allow_authorization: false,
            allow_set_cookie: false,
        }
    }
}

/// `[route.retry]`: retries of safe requests after a connect error or a 502/503/504, within a
/// budget.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// Fraction (the file says percent).
    pub budget: f64,
    pub min_per_second: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: defaults::RETRY_ATTEMPTS,
            budget: defaults::RETRY_BUDGET,
            min_per_second: defaults::RETRY_MIN_PER_SECOND,
            backoff: defaults::RETRY_BACKOFF,
            max_backoff: defaults::RETRY_MAX_BACKOFF,
        }
    }
}

/// `[route.shadow]`: the mirror and comparison settings of one route.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowPolicy {
    /// Share of sticky keys mirrored (stage `shadow`, and `canary` when `canary` is set).
    pub sample: Weight,
    /// Also mirror the legacy-served part of a `canary` route.
    pub canary: bool,
    /// Share of mirrored safe requests sent to legacy twice, to measure legacy's own noise.
    pub noise_sample: Weight,
    /// Response headers compared (empty: ficus-compare's defaults).
    pub headers: Vec<String>,
    /// Headers never compared.
    pub ignore_headers: Vec<String>,
    /// JSON paths never reported, e.g. `$.meta.request_id`, `$.items[*].updated_at`.
    pub ignore: Vec<String>,
    /// Numeric absolute tolerance per JSON path.
    pub tolerance: Vec<(String, f64)>,
    /// JSON array paths whose element order does not matter.
    pub unordered: Vec<String>,
    /// Text normalisation for non-JSON bodies.
    pub trim: bool,
    pub collapse_whitespace: bool,
    pub ignore_case: bool,
    /// Headers whose values are replaced by `[redacted]` in stored samples, on top of
    /// Authorization, Proxy-Authorization, Cookie, Set-Cookie and X-Api-Key.
    pub redact: Vec<String>,
}

impl Default for ShadowPolicy {
    fn default() -> Self {
        ShadowPolicy {
            sample: Weight::from_percent(defaults::SHADOW_SAMPLE_PERCENT).unwrap_or(Weight::MAX),
            canary: false,
            noise_sample: Weight::from_percent(defaults::SHADOW_NOISE_SAMPLE_PERCENT)
                .unwrap_or(Weight::ZERO),
            headers: Vec::new(),
            ignore_headers: Vec::new(),
            ignore: Vec::new(),
            tolerance: Vec::new(),
            unordered: Vec::new(),
            trim: false,
            collapse_whitespace: false,
            ignore_case: false,
            redact: Vec::new(),
        }
    }
}

/// `[shadow]`: gateway-wide mirror bounds and the noise filter (fixed at start).
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowSettings {
    pub queue: usize,
    pub max_in_flight: usize,
    pub max_body: u64,
    pub samples_per_field: usize,
    pub max_fields: usize,
    /// Fractions (the file says percent).
    pub noise_relative: f64,
    pub noise_absolute: f64,
    pub flush_interval: Duration,
}

impl Default for ShadowSettings {
    fn default() -> Self {
        ShadowSettings {
            queue: defaults::SHADOW_QUEUE,
            max_in_flight: defaults::SHADOW_MAX_IN_FLIGHT,
            max_body: defaults::SHADOW_MAX_BODY,
            samples_per_field: defaults::SHADOW_SAMPLES_PER_FIELD,
            max_fields: defaults::SHADOW_MAX_FIELDS,
            noise_relative: defaults::SHADOW_NOISE_RELATIVE,
            noise_absolute: defaults::SHADOW_NOISE_ABSOLUTE,
            flush_interval: defaults::SHADOW_FLUSH_INTERVAL,
        }
    }
}

/// What a request must look like for a route to take it; every present condition must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteMatch {
    /// Lower-case host without port; a leading `*.` matches any subdomain (not the apex).
    pub host: Option<String>,
    /// Empty means any method.
    pub methods: Vec<Method>,
    pub path: PathMatch,
    /// Each header must be present with exactly this value.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Short form for tables and the dashboard: `host=api.test GET,HEAD /orders/* x-tenant=a`,
/// or `*` for a matcher that takes everything.
impl std::fmt::Display for RouteMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host={h}"));
        }
        if !self.methods.is_empty() {
            let m: Vec<&str> = self.methods.iter().map(|m| m.as_str()).collect();
            parts.push(m.join(","));
        }
        match &self.path {
            PathMatch::Any => {}
            PathMatch::Prefix(p) => parts.push(format!("{}/*", p.trim_end_matches('/'))),
            PathMatch::Exact(p) => parts.push(format!("={p}")),
            PathMatch::Template(t) => parts.push(t.clone()),
        }
        for (k, v) in &self.headers {
            parts.push(format!("{k}={}", v.to_str().unwrap_or("?")));
        }
        if parts.is_empty() {
            f.write_str("*")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PathMatch {
    #[default]
    Any,
    /// Segment-aware prefix: `/orders` matches `/orders`, `/orders/`, `/orders/7`, not `/ordersx`.
    Prefix(String),
    /// The whole path, byte for byte.
    Exact(String),
    /// `/orders/{id}/items`: literal segments equal, `{name}` segments match any one non-empty
    /// segment; the number of segments must be equal.
    Template(String),
}

/// `[access_log]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    pub enabled: bool,
    pub format: LogFormat,
    /// `None` writes to standard output.
    pub path: Option<PathBuf>,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            enabled: true,
            format: LogFormat::Text,
            path: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    /// Per (route, side) counters and latency histograms (on by default; off only to measure
    /// what they cost).
    pub enabled: bool,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry { enabled: true }
    }
}

/// `[admin]`: the admin API, `/metrics` and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub enabled: bool,
    pub bind: SocketAddr,
    /// A file holding the bearer token for mutations (`FICUS_ADMIN_TOKEN` wins when set).
    pub token_file: Option<PathBuf>,
    /// A file holding a read-only token (`FICUS_ADMIN_READ_TOKEN` wins when set): it reads
    /// the API and `/metrics`, and changes nothing.
    pub read_token_file: Option<PathBuf>,
    /// Whether reads need a token: `None` means the default, open on a loopback bind and
    /// token-only otherwise.
    pub reads: Option<ReadAccess>,
    /// The `Host` names the admin listener answers (lower case, without port); `["*"]`
    /// answers any. `None`: loopback names and the bind address (any, when the bind is the
    /// unspecified address, since reads then need a token).
    pub allowed_hosts: Option<Vec<String>>,
}

/// `[admin] reads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAccess {
    /// Reads need no token.
    Open,
    /// Reads need the admin token or the read-only token.
    Token,
}

impl Admin {
    /// Whether reads of the API and `/metrics` need a token here.
    pub fn reads_need_token(&self) -> bool {
        match self.reads {
            Some(ReadAccess::Open) => false,
            Some(ReadAccess::Token) => true,
            None => !self.bind.ip().is_loopback(),
        }
    }
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            enabled: true,
            bind: defaults::ADMIN_BIND
                .parse()
                .expect("the default admin address parses"),
            token_file: None,
            read_token_file: None,
            reads: None,
            allowed_hosts: None,
        }
    }
}

/// `[[verify]]`: a table comparison the gateway runs every `every` (see `docs/verify.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyJob {
    pub name: String,
    /// The route whose data these tables hold (shown on the dashboard), when given.
    pub route: Option<String>,
    /// Database URLs: `postgres://`, `mysql://` / `mariadb://` or `sqlite://` (a relative
    /// SQLite path is resolved against the config file's folder).
    pub source: String,
    pub target: String,
    pub source_table: String,
    pub target_table: String,
    /// Key columns (source names); unique on both sides.
    pub key: Vec<String>,
    /// Columns to compare besides the key (source names); empty: every shared column.
    pub columns: Vec<String>,
    /// Renamed columns: (source name, target name), in file order.
    pub map: Vec<(String, String)>,
    /// A SQL condition ANDed to every statement on both sides.
    pub where_clause: Option<String>,
    /// Absolute tolerances of numeric columns: (source name, tolerance), in file order.
    pub tolerance: Vec<(String, f64)>,
    /// Expression columns: (target column, SQL expression over the source table's columns,
    /// evaluated in the source database), in file order.
    pub expr: Vec<(String, String)>,
    pub every: Duration,
    pub max_connections: u32,
    /// `watermark`: a column every write advances (an updated-at timestamp or an integer
    /// version), by its source name. With it, runs after an equal full run compare only the
    /// rows written since the highest watermark the last equal run read.
    pub watermark: Option<String>,
    /// `watermark_overlap`: subtracted from that watermark (a duration for a timestamp
    /// watermark, a count for an integer one); None: ficus-verify's default (60s for
    /// timestamps, 0 for integers).
    pub watermark_overlap: Option<VerifyOverlap>,
    /// `full_every`: with a watermark, a full run when the last one started this long ago
    /// (default `defaults::VERIFY_FULL_EVERY`); None without a watermark (every run is full).
    pub full_every: Option<Duration>,
    /// `recheck`: differing rows are read again after this delay; differences that resolved
    /// were lag (outcome `lagging`), not divergence. For tables under live dual-writes.
    pub recheck: Option<Duration>,
}

/// `[[migration]]`: a data migration plan coupling the plan's routes' traffic stages to
/// the data steps under them (docs/migrations.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    pub name: String,
    /// `routes`: the routes whose reads move (switch reads).
    pub read_routes: Vec<String>,
    /// `write_routes`: the routes whose writes move (dual-write, switch writes); default:
    /// the read routes.
    pub write_routes: Vec<String>,
    /// `verify`: the `[[verify]]` jobs that describe the tables (source and target, key,
    /// column expressions) and prove them equal.
    pub verify: Vec<String>,
    /// In order; a step starts once the one before it is done.
    pub steps: Vec<MigrationStep>,
    /// `[migration.throttle]`: pause backfill and verify while users feel it.
    pub throttle: Option<Throttle>,
}

impl Migration {
    /// Every route of the plan (reads first), each once.
    pub fn routes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in self.read_routes.iter().chain(&self.write_routes) {
            if !out.contains(&r.as_str()) {
                out.push(r);
            }
        }
        out
    }
}

/// What a migration step is for; each kind has its own action, gate and way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Run the schema tool's expand (`run`); done when it exits 0. Back: `back`.
    Expand,
    /// Write routes to `shadow` with `shadow_writes`: modern writes its own store too; done
    /// when enough writes were compared and few enough differ. Back: write routes to legacy.
    DualWrite,
    /// Run the backfill (`run`), throttled; done when it exits 0. Back: `back`.
    Backfill,
    /// Run the plan's verify jobs now (throttled); done when each is equal, after the step
    /// began. Back: nothing to undo.
    Verify,
    /// Once the verify jobs are proven equal by a run covering writes until less than
    /// `fresh` ago (else a run is asked for and waited for): read routes to modern (their
    /// `[route.rollout]`, else the stage); done when they are on modern and their SLOs
    /// stayed clear for `soak`. Back: the routes to the stages they had.
    SwitchReads,
    /// Write routes to modern, the same way. Back: the stages they had (dual-writing).
    SwitchWrites,
    /// Checked first: no request served by legacy on the plan's routes for `quiet`, and a
    /// final verify equal; then `run` (dropping the old schema). No way back.
    Contract,
}

impl StepKind {
    pub const ALL: [StepKind; 7] = [
        StepKind::Expand,
        StepKind::DualWrite,
        StepKind::Backfill,
        StepKind::Verify,
        StepKind::SwitchReads,
        StepKind::SwitchWrites,
        StepKind::Contract,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Expand => "expand",
            StepKind::DualWrite => "dual_write",
            StepKind::Backfill => "backfill",
            StepKind::Verify => "verify",
            StepKind::SwitchReads => "switch_reads",
            StepKind::SwitchWrites => "switch_writes",
            StepKind::Contract => "contract",
        }
    }

    pub fn parse(s: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the step's action is a command of the file (`run`).
    pub fn runs_command(self) -> bool {
        matches!(
            self,
            StepKind::Expand | StepKind::Backfill | StepKind::Contract
        )
    }

    /// Whether `[migration.throttle]` applies to the step.
    pub fn throttled(self) -> bool {
        matches!(self, StepKind::Backfill | StepKind::Verify)
    }
}

/// A command of a migration step: an argv (`run = ["psql", "-f", "x.sql"]`) or a shell line
/// (`run = "psql -f x.sql"`, run as `sh -c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
}

impl Command {
    /// The command as people read it.
    pub fn display(&self) -> String {
        match self.argv.as_slice() {
            [sh, c, line] if sh == "sh" && c == "-c" => line.clone(),
            argv => argv.join(" "),
        }
    }
}

/// `[[migration.step]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationStep {
    pub kind: StepKind,
    /// Unique in the plan; default: the kind.
    pub name: String,
    /// The action of `expand`, `backfill` and `contract`.
    pub run: Option<Command>,
    /// The way back of `expand` and `backfill` (ficus's own steps know theirs).
    pub back: Option<Command>,
    /// The step fails (the plan is blocked) when its action and gate take longer.
    pub timeout: Duration,
    /// Wait for `ficus migration advance` before starting the step.
    pub manual: bool,
    /// `dual_write`: writes compared before the gate can pass.
    pub min_compared: u64,
    /// `dual_write`: the largest share of compared writes with a real difference.
    pub max_mismatch: f64,
    /// Switch steps: before moving the routes, the verify jobs' latest equal run must cover
    /// writes until less than this ago; otherwise the step runs them and waits.
    pub fresh: Duration,
    /// `switch_reads` and `switch_writes`: how long the routes stay on modern with their
    /// SLOs clear before the step is done.
    pub soak: Duration,
    /// `contract`: how long no request may have been served by legacy.
    pub quiet: Duration,
}

/// `[migration.throttle]`: while a plan route's p99 or error rate is above its bound, the
/// throttled steps (backfill, verify) are paused.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttle {
    /// The routes watched; default: the plan's.
    pub routes: Vec<String>,
    /// p99 latency bound (as clients saw it), if any.
    pub p99: Option<Duration>,
    /// Error-rate bound (5xx and failures over requests), if any.
    pub error_rate: Option<f64>,
    /// The window the p99 and error rate are measured over.
    pub window: Duration,
    /// Fewer requests than this in the window never throttle.
    pub min_requests: u64,
    /// Created while paused, removed on resume: the flag file a backfill honours.
    pub pause_file: Option<PathBuf>,
    /// Run when pausing and when resuming a backfill.
    pub pause_command: Option<Command>,
    pub resume_command: Option<Command>,
}

/// `watermark_overlap` of a `[[verify]]` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOverlap {
    /// `"5s"`: for a timestamp watermark.
    Duration(Duration),
    /// `100`: for an integer watermark; `0` is no overlap for either kind.
    Count(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_of_keys_on_modern_follows_the_stage() {
        let w = Weight::from_percent(30.0).unwrap();
        let table = [
            (Stage::Legacy, Weight::ZERO),
            (Stage::Shadow, Weight::ZERO),
            (Stage::Canary, w),
            (Stage::Modern, Weight::MAX),
            (Stage::Retired, Weight::MAX),
        ];
        for (stage, keys) in table {
            assert_eq!(stage.modern_keys(w), keys, "{stage:?}");
        }
        assert_eq!(Stage::Modern.modern_keys(Weight::ZERO).to_string(), "100%");
    }
}
