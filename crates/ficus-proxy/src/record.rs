//! Recording (issue 20): a route's sampled exchanges written to recordings, off the request
//! path like the mirror.
//!
//! The request path's part, only for a sampled request of a route that records: clone the
//! request head, copy the body frames it streams anyway into a [`Capture`] (reference
//! counts, no copying; the first `max_body` bytes kept), wrap the response body so its frames
//! are copied the same way, and when the response has reached the client whole, offer the
//! finished exchange to a bounded queue with `try_send`. Everything else (redaction, the
//! sticky key's token, encoding, compression, files, rotation) happens on the writer thread.
//!
//! Every request of a recording route is accounted for once: `recorded` (in a block written
//! to disk), `sampled_out`, or `dropped` by reason ([`DropReason`]); while recording,
//! `requests = recorded + sampled_out + dropped + in progress` (in flight, queued, or in the
//! writer's open block, at most a second).
//!
//! On a shadow route a recorded exchange that is also mirrored carries a [`ShadowSlot`] in the
//! request's extensions; the mirror fills it with modern's response and the comparison's
//! verdict, and the writer waits for it (at most [`SHADOW_WAIT`]) before writing.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use ficus_config::{OverCap, RecordPolicy, Recording, Redaction, Stage, StickyKey, Weight};
use ficus_record::{Body, Exchange, Message, Redactor, Shadow, Writer, WriterOptions};
use http::{HeaderMap, StatusCode};

use crate::mirror::Capture;
use crate::proxy::{Answered, Inbound};
use crate::split;
use crate::table::sticky_key;

/// How long the writer holds a mirrored exchange for the mirror's verdict.
pub const SHADOW_WAIT: Duration = Duration::from_secs(10);
/// How often the writer closes its open blocks (so a crash loses at most this much).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the writer lets exchanges gather before taking them, once one arrived.
const BATCH: Duration = Duration::from_millis(10);

/// Why an exchange of a recording route was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The writer's queue was full.
    QueueFull,
    /// A body was over the cap and the route says `over_cap = "drop"`.
    BodyOverCap,
    /// A write failed (the disk is full, or `[record] max_total` reached).
    DiskFull,
    /// The route's recording reached its `max_size`.
    MaxSize,
    /// A redaction rule could not be applied (never written raw).
    RedactionFailed,
    /// The client did not receive the whole response (it left, or the upstream failed
    /// mid-body), or the request was an upgrade (a tunnel has no exchange to record).
    Incomplete,
}

impl DropReason {
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::BodyOverCap,
        DropReason::DiskFull,
        DropReason::MaxSize,
        DropReason::RedactionFailed,
        DropReason::Incomplete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::BodyOverCap => "body_over_cap",
            DropReason::DiskFull => "disk_full",
            DropReason::MaxSize => "max_size",
            DropReason::RedactionFailed => "redaction_failed",
            DropReason::Incomplete => "incomplete",
        }
    }

    fn index(self) -> usize {
        DropReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// One route's recording counts on this node (since it started).
#[derive(Debug, Default)]
pub struct RecordStats {
    pub requests: AtomicU64,
    pub recorded: AtomicU64,
    pub sampled_out: AtomicU64,
    dropped: [AtomicU64; 6],
    /// Bytes of this route's recordings on disk (this session).
    pub bytes: AtomicU64,
    /// Files written (this session).
    pub files: AtomicU64,
}

impl RecordStats {
    pub fn dropped(&self, why: DropReason) -> u64 {
        self.dropped[why.index()].load(Ordering::Relaxed)
    }

    fn drop_one(&self, why: DropReason) {
        self.dropped[why.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

/// What a route records now: the policy, and its redaction with this node's key.
#[derive(Debug)]
pub struct Session {
    /// Unique per process: a new session writes new files.
    pub id: u64,
    pub policy: RecordPolicy,
    redactor: Redactor,
    sticky: StickyKey,
    seed: String,
    /// When this session started (unix ms), for the status.
    pub started_ms: u64,
    /// Where it comes from: the route's `[route.record]`, or `ficus record start`.
    pub runtime: Option<Runtime>,
}

impl Session {
    /// Whether a runtime session's time is up.
    pub fn expired(&self) -> bool {
        self.runtime
            .as_ref()
            .and_then(|r| r.until)
            .is_some_and(|u| SystemTime::now() >= u)
    }
}

/// A recording started at runtime (`ficus record start`): it wins over the route's
/// `[route.record]` (whose redaction rules it keeps), until it ends or is stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    pub sample: Weight,
    pub until: Option<SystemTime>,
    pub max_size: Option<u64>,
    /// The `record.started` event that started it.
    pub event_id: i64,
}

/// What `ficus record start|stop` last said about a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeState {
    Started(Runtime),
    /// Stopped: no recording, whatever `[route.record]` says, until started again.
    Stopped,
}

/// A route's recording state, kept across table recompiles (by route name).
#[derive(Debug)]
pub struct RecordSlot {
    pub route: Arc<str>,
    active: ArcSwapOption<Session>,
    pub stats: Arc<RecordStats>,
    tx: mpsc::SyncSender<Msg>,
}

/// Filled by the mirror with modern's answer and the verdict for a recorded exchange.
#[derive(Debug, Default)]
pub struct ShadowSlot(OnceLock<Option<Shadow>>);

impl ShadowSlot {
    /// The mirror's result (`None`: the copy was dropped or failed before a comparison).
    pub fn set(&self, s: Option<Shadow>) {
        let _ = self.0.set(s);
    }
}

impl RecordSlot {
    /// The route's recording session, if it records now.
    pub fn session(&self) -> Option<Arc<Session>> {
        self.active.load_full()
    }

    /// Starts a tap for this request when the route records and the request is sampled
    /// (each request of a recording route is counted here once).
    pub(crate) fn begin(
        self: &Arc<Self>,
        parts: &mut http::request::Parts,
        client_ip: &[u8],
        stage: Stage,
        upgrade: bool,
    ) -> Option<Box<RecordTap>> {
        let session = self.active.load();
        let session = session.as_ref()?;
        if session.runtime.is_some() && session.expired() {
            return None;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let key = sticky_key(
            &session.sticky,
            &parts.headers,
            parts.uri.query(),
            client_ip,
        );
        if session.policy.sample != Weight::MAX {
            let b = match key {
                Some(k) => split::bucket(&session.seed, k),
                None => (crate::rand::next_u64() % u64::from(split::BUCKETS)) as u16,
            };
            if b >= session.policy.sample.basis_points() {
                self.stats.sampled_out.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        if upgrade {
            self.stats.drop_one(DropReason::Incomplete);
            return None;
        }
        let shadow = if stage == Stage::Shadow || stage == Stage::Canary {
            let s = Arc::new(ShadowSlot::default());
            parts.extensions.insert(s.clone());
            Some(s)
        } else {
            None
        };
        Some(Box::new(RecordTap {
            slot: self.clone(),
            session: session.clone(),
            at: SystemTime::now(),
            started: Instant::now(),
            version: parts.version,
            method: parts.method.clone(),
            target: parts.uri.path_and_query().cloned(),
            headers: pack(&parts.headers),
            key: key.map(<[u8]>::to_vec),
            stage,
            request: Arc::new(Capture::keeping_head(session.policy.max_body)),
            response: Capture::keeping_head(session.policy.max_body),
            status: StatusCode::OK,
            response_headers: Vec::new(),
            answered: Answered::Gateway,
            shadow,
            done: false,
        }))
    }
}

/// An exchange being recorded, carried by the request path until the response has reached
/// the client whole. Dropped unfinished, it counts as `incomplete`.
pub struct RecordTap {
    slot: Arc<RecordSlot>,
    session: Arc<Session>,
    at: SystemTime,
    started: Instant,
    version: http::Version,
    method: http::Method,
    target: Option<http::uri::PathAndQuery>,
    /// The request's header fields, copied ([`pack`]).
    headers: Vec<u8>,
    key: Option<Vec<u8>>,
    stage: Stage,
    request: Arc<Capture>,
    response: Capture,
    status: StatusCode,
    response_headers: Vec<u8>,
    answered: Answered,
    shadow: Option<Arc<ShadowSlot>>,
    done: bool,
}

impl std::fmt::Debug for RecordTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordTap")
            .field("route", &self.slot.route)
            .finish_non_exhaustive()
    }
}

impl RecordTap {
    /// The request body as the request path takes it, copied into the recording as it goes.
    pub(crate) fn tee_request(&self, body: Inbound) -> Inbound {
        match body {
            Inbound::Empty => {
                self.request.complete();
                Inbound::Empty
            }
            Inbound::Full(b) => {
                self.request.push(&b);
                self.request.complete();
                Inbound::Full(b)
            }
            Inbound::Body(b) => Inbound::Teed(b, self.request.clone()),
            Inbound::Teed(b, other) => {
                other.chain(self.request.clone());
                Inbound::Teed(b, other)
            }
        }
    }

    /// The response head as the client gets it, and who answered: the upstream's header
    /// lines as they came (`raw`, when the response was read that way: then the map holds
    /// only what ficus adds), then the map's fields.
    pub(crate) fn response_head(
        &mut self,
        status: StatusCode,
        raw: Option<&[u8]>,
        headers: &HeaderMap,
        answered: Answered,
    ) {
        self.status = status;
        let mut packed = Vec::new();
        if let Some(lines) = raw {
            pack_lines(lines, &mut packed);
        }
        pack_into(headers, &mut packed);
        self.response_headers = packed;
        self.answered = answered;
    }

    /// A frame of the response body on its way to the client.
    #[inline]
    pub(crate) fn response_data(&self, data: &Bytes) {
        self.response.push(data);
    }

    /// The response reached the client whole: offer the exchange to the writer.
    pub(crate) fn finish(mut self) {
        self.done = true;
        self.response.complete();
        let (req_body, req_len, req_complete) = self.request.take_head();
        let (resp_body, resp_len, _) = self.response.take_head();
        let max = self.session.policy.max_body;
        let over = req_len > max || resp_len > max;
        let stats = self.slot.stats.clone();
        if !req_complete {
            return stats.drop_one(DropReason::Incomplete);
        }
        if over && self.session.policy.over_cap == OverCap::Drop {
            return stats.drop_one(DropReason::BodyOverCap);
        }
        // Only moves here: turning the exchange into text is the writer thread's work.
        let raw = Raw {
            at: self.at,
            duration: self.started.elapsed(),
            stage: self.stage,
            answered: self.answered,
            version: self.version,
            method: std::mem::take(&mut self.method),
            target: self.target.take(),
            request_headers: std::mem::take(&mut self.headers),
            request_body: (req_body.to_vec(), req_len),
            status: self.status,
            response_headers: std::mem::take(&mut self.response_headers),
            response_body: (resp_body.to_vec(), resp_len),
        };
        let job = Pending {
            slot: self.slot.clone(),
            session: self.session.clone(),
            raw,
            key: self.key.take(),
            shadow: self.shadow.take(),
            queued: Instant::now(),
        };
        if let Err(mpsc::TrySendError::Full(_) | mpsc::TrySendError::Disconnected(_)) =
            self.slot.tx.try_send(Msg::Exchange(Box::new(job)))
        {
            stats.drop_one(DropReason::QueueFull);
        }
    }
}

impl Drop for RecordTap {
    fn drop(&mut self) {
        if !self.done {
            self.slot.stats.drop_one(DropReason::Incomplete);
        }
    }
}

/// A finished exchange as the request path hands it over: moved parts, no text yet.
struct Raw {
    at: SystemTime,
    duration: Duration,
    stage: Stage,
    answered: Answered,
    version: http::Version,
    method: http::Method,
    target: Option<http::uri::PathAndQuery>,
    /// Header fields as [`pack`] copies them.
    request_headers: Vec<u8>,
    /// The kept head of the body (copied) and the body's whole length.
    request_body: (Vec<u8>, u64),
    status: StatusCode,
    response_headers: Vec<u8>,
    response_body: (Vec<u8>, u64),
}

impl Raw {
    /// The exchange as a recording holds it (on the writer thread).
    fn exchange(self, route: &str) -> Exchange {
        let (side, fallback) = match self.answered {
            Answered::Legacy => ("legacy", false),
            Answered::Modern => ("modern", false),
            Answered::LegacyFallback => ("legacy", true),
            Answered::Cache => ("cache", false),
            Answered::Gateway => ("gateway", false),
        };
        Exchange {
            at_ns: self
                .at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            duration_ns: self.duration.as_nanos() as u64,
            route: route.to_string(),
            stage: self.stage.as_str().to_string(),
            side: side.to_string(),
            fallback,
            key: None,
            version: version(self.version).to_string(),
            method: self.method.to_string(),
            target: self
                .target
                .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string()),
            request: message(
                &self.request_headers,
                self.request_body.0,
                self.request_body.1,
            ),
            status: self.status.as_u16(),
            response: message(
                &self.response_headers,
                self.response_body.0,
                self.response_body.1,
            ),
            shadow: None,
        }
    }
}

fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn message(headers: &[u8], body: Vec<u8>, len: u64) -> Message {
    Message {
        headers: unpack(headers),
        truncated_from: (len > body.len() as u64).then_some(len),
        body: Body(body),
    }
}

/// Copies header fields into one buffer: per field, the name's length (u16 LE), the value's
/// (u32 LE), the name, the value. The request path copies rather than keeping the map's
/// values: those share the connections' read buffers, and a recording holding them until the
/// writer thread is done made every connection allocate (and zero) a new read buffer per
/// request, and free the old ones on the writer thread.
fn pack(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    pack_into(headers, &mut out);
    out
}

fn pack_into(headers: &HeaderMap, out: &mut Vec<u8>) {
    let size: usize = headers
        .iter()
        .map(|(n, v)| 6 + n.as_str().len() + v.len())
        .sum();
    out.reserve(size);
    for (n, v) in headers {
        pack_field(n.as_str().as_bytes(), v.as_bytes(), out);
    }
}

fn pack_field(n: &[u8], v: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(n.len() as u16).to_le_bytes());
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    out.extend_from_slice(n);
    out.extend_from_slice(v);
}

/// Header lines as an upstream sent them (`Name: value` each ending in CRLF, already
/// parsed by the codec), packed like a map's fields, names lower-cased as a map has them.
fn pack_lines(lines: &[u8], out: &mut Vec<u8>) {
    out.reserve(lines.len() + 6 * 16);
    let mut name = Vec::with_capacity(32);
    for line in lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        name.clear();
        name.extend(line[..colon].iter().map(u8::to_ascii_lowercase));
        pack_field(&name, value, out);
    }
}

/// The fields [`pack`] copied, as a recording holds them.
fn unpack(mut b: &[u8]) -> Vec<(String, Body)> {
    let mut out = Vec::new();
    while b.len() >= 6 {
        let n = u16::from_le_bytes([b[0], b[1]]) as usize;
        let v = u32::from_le_bytes([b[2], b[3], b[4], b[5]]) as usize;
        let Some(field) = b.get(6..6 + n + v) else {
            break;
        };
        out.push((
            String::from_utf8_lossy(&field[..n]).into_owned(),
            Body(field[n..].to_vec()),
        ));
        b = &b[6 + n + v..];
    }
    out
}

/// A finished exchange on its way to the writer.
struct Pending {
    slot: Arc<RecordSlot>,
    session: Arc<Session>,
    raw: Raw,
    key: Option<Vec<u8>>,
    shadow: Option<Arc<ShadowSlot>>,
    queued: Instant,
}

enum Msg {
    Exchange(Box<Pending>),
    Flush(mpsc::SyncSender<()>),
    Stop,
}

/// This node's recorder: the route slots, the queue and the writer thread.
pub struct Recorder {
    settings: Recording,
    redaction: Mutex<Redaction>,
    node: String,
    key: OnceLock<Result<Vec<u8>, String>>,
    tx: mpsc::SyncSender<Msg>,
    slots: Mutex<HashMap<String, Arc<RecordSlot>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    total: Arc<AtomicU64>,
    /// `ficus record start|stop`, by route.
    runtime: Mutex<HashMap<String, RuntimeState>>,
    /// The config last applied, to apply runtime changes against.
    config: Mutex<Option<Arc<ficus_config::Config>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.settings.dir)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the writer thread.
    pub fn start(settings: Recording, node: &str) -> std::io::Result<Arc<Recorder>> {
        let (tx, rx) = mpsc::sync_channel(settings.queue.max(1));
        let total = Arc::new(AtomicU64::new(0));
        let writer = WriterThread {
            dir: settings.dir.clone(),
            node: sanitize(node),
            rotate_bytes: settings.rotate_bytes,
            rotate_every: settings.rotate_every,
            max_total: settings.max_total,
            total: total.clone(),
            files: HashMap::new(),
            waiting: VecDeque::new(),
            scratch: Vec::new(),
            tokens: (0, HashMap::new()),
        };
        let thread = std::thread::Builder::new()
            .name("ficus-recorder".into())
            .spawn(move || writer.run(rx))?;
        Ok(Arc::new(Recorder {
            settings,
            redaction: Mutex::new(Redaction::default()),
            node: node.to_string(),
            key: OnceLock::new(),
            tx,
            slots: Mutex::new(HashMap::new()),
            thread: Mutex::new(Some(thread)),
            total,
            runtime: Mutex::new(HashMap::new()),
            config: Mutex::new(None),
        }))
    }

    pub fn settings(&self) -> &Recording {
        &self.settings
    }

    /// Bytes of every recording this node wrote since it started.
    pub fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The route's slot (made on first use, kept for the process's life).
    pub fn slot(&self, route: &str) -> Arc<RecordSlot> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route.to_string())
            .or_insert_with(|| {
                Arc::new(RecordSlot {
                    route: Arc::from(route),
                    active: ArcSwapOption::empty(),
                    stats: Arc::new(RecordStats::default()),
                    tx: self.tx.clone(),
                })
            })
            .clone()
    }

    /// Every route slot, by name.
    pub fn slots(&self) -> Vec<Arc<RecordSlot>> {
        let mut v: Vec<_> = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.route.cmp(&b.route));
        v
    }

    /// Whether recording can start: the redaction key is there (or could be made).
    pub fn ready(&self) -> Result<(), String> {
        self.key().map(|_| ())
    }

    /// The redaction key: `[record] key_file`, or `<dir>/redaction.key` made with random
    /// bytes (mode 0600) on first use.
    fn key(&self) -> Result<Vec<u8>, String> {
        self.key
            .get_or_init(|| load_or_make_key(&self.settings))
            .clone()
    }

    /// Makes each route of `config` record as its `[route.record]` says: a route whose
    /// policy changed starts a new session (new files); one without stops. The global
    /// `[redact]` lists join every route's rules.
    pub fn configure(&self, config: &Arc<ficus_config::Config>) -> Result<(), String> {
        *self.redaction.lock().unwrap_or_else(|p| p.into_inner()) = config.redact.clone();
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config.clone());
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for r in config.all_routes() {
            let slot = self.slot(&r.name);
            let current = slot.session();
            // What the route should record: a runtime start or stop wins over the file.
            let wanted: Option<(RecordPolicy, Option<Runtime>)> = match runtime.get(&r.name) {
                Some(RuntimeState::Stopped) => None,
                Some(RuntimeState::Started(rt)) => {
                    let mut p = r.record.clone().unwrap_or_else(default_policy);
                    p.sample = rt.sample;
                    if let Some(m) = rt.max_size {
                        p.max_size = m;
                    }
                    Some((p, Some(rt.clone())))
                }
                None => r.record.clone().map(|p| (p, None)),
            };
            match (wanted, current) {
                (None, None) => {}
                (None, Some(_)) => slot.active.store(None),
                (Some((p, rt)), Some(s))
                    if s.policy == p && s.sticky == r.sticky && s.runtime == rt => {}
                (Some((p, rt)), _) => {
                    let session = self.session(&r.name, &p, &r.sticky, &config.redact, rt)?;
                    slot.active.store(Some(Arc::new(session)));
                }
            }
        }
        Ok(())
    }

    /// Applies `ficus record start|stop` for a route (`None`: forget it, back to the file).
    pub fn set_runtime(&self, route: &str, state: Option<RuntimeState>) -> Result<(), String> {
        {
            let mut rt = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
            match state {
                Some(s) => {
                    rt.insert(route.to_string(), s);
                }
                None => {
                    rt.remove(route);
                }
            }
        }
        if matches!(
            self.runtime
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(route),
            Some(RuntimeState::Started(_))
        ) {
            self.ready()?;
        }
        let config = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match config {
            Some(c) => self.configure(&c),
            None => Ok(()),
        }
    }

    /// What `ficus record start|stop` last said about `route`.
    pub fn runtime(&self, route: &str) -> Option<RuntimeState> {
        self.runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(route)
            .cloned()
    }

    fn session(
        &self,
        route: &str,
        p: &RecordPolicy,
        sticky: &StickyKey,
        redact: &Redaction,
        runtime: Option<Runtime>,
    ) -> Result<Session, String> {
        let key = self.key()?;
        let policy = ficus_record::Policy {
            headers: redact
                .all_headers()
                .into_iter()
                .chain(p.redact_headers.iter().cloned())
                .collect(),
            query: redact
                .all_query()
                .into_iter()
                .chain(p.redact_query.iter().cloned())
                .collect(),
            json: p.redact_json.clone(),
        };
        let redactor = Redactor::new(&policy, &key).map_err(|e| e.to_string())?;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Ok(Session {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            policy: p.clone(),
            redactor,
            sticky: sticky.clone(),
            seed: format!("{route}#record"),
            started_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            runtime,
        })
    }

    /// Waits (at most `timeout`) until the writer has written everything queued so far.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }

    /// Writes what is pending and stops the writer (at shutdown).
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }

    /// The node name recordings carry.
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// `[route.record]`'s defaults, for a route recorded only at runtime.
pub fn default_policy() -> RecordPolicy {
    use ficus_config::defaults;
    RecordPolicy {
        sample: Weight::MAX,
        max_body: defaults::RECORD_MAX_BODY,
        over_cap: OverCap::Truncate,
        max_size: defaults::RECORD_MAX_SIZE,
        redact_headers: Vec::new(),
        redact_query: Vec::new(),
        redact_json: Vec::new(),
    }
}

fn load_or_make_key(s: &Recording) -> Result<Vec<u8>, String> {
    let path = s
        .key_file
        .clone()
        .unwrap_or_else(|| s.dir.join("redaction.key"));
    match std::fs::read(&path) {
        Ok(k) => {
            let k: Vec<u8> = k.trim_ascii().to_vec();
            if k.len() < ficus_record::redact::MIN_KEY_BYTES {
                return Err(format!(
                    "{}: the redaction key is {} bytes; use at least {} random bytes",
                    path.display(),
                    k.len(),
                    ficus_record::redact::MIN_KEY_BYTES
                ));
            }
            Ok(k)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && s.key_file.is_none() => {
            std::fs::create_dir_all(&s.dir)
                .map_err(|e| format!("cannot create {}: {e}", s.dir.display()))?;
            let mut key = Vec::with_capacity(32);
            for _ in 0..4 {
                key.extend_from_slice(&crate::rand::next_u64().to_le_bytes());
            }
            let hex = hex_encode(&key);
            write_private(&path, hex.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(hex.into_bytes())
        }
        Err(e) => Err(format!(
            "cannot read the redaction key {}: {e}",
            path.display()
        )),
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// The machine's host name (recordings name their node with it when `[node] name` is not
/// set), or `node`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string())
}

/// A route name as a file name part.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One route's open file.
struct OpenFile {
    writer: Writer<std::fs::File>,
    /// The session whose exchanges it holds.
    session: u64,
    opened: Instant,
    path: PathBuf,
}

struct WriterThread {
    dir: PathBuf,
    node: String,
    rotate_bytes: u64,
    rotate_every: Duration,
    max_total: u64,
    total: Arc<AtomicU64>,
    files: HashMap<Arc<str>, (Arc<RecordSlot>, OpenFile)>,
    waiting: VecDeque<Box<Pending>>,
    /// The record being encoded (its allocation kept from one to the next).
    scratch: Vec<u8>,
    /// Sticky keys' tokens of one session (its id), at most [`TOKEN_CACHE`].
    tokens: (u64, HashMap<Vec<u8>, String>),
}

/// Sticky keys whose tokens the writer remembers.
const TOKEN_CACHE: usize = 65_536;

impl WriterThread {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut last_flush = Instant::now();
        loop {
            let wait = if self.waiting.is_empty() {
                FLUSH_EVERY
            } else {
                BATCH
            };
            // Parked only while nothing is queued: under load the request path hands over
            // exchanges without waking this thread (one wake-up per batch, not per
            // exchange, which cost more than the recording itself).
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => Some(Msg::Stop),
            };
            if let Some(m) = first {
                if self.handle(m) {
                    return;
                }
                // Let a batch gather, then take all of it.
                std::thread::sleep(BATCH);
                loop {
                    match rx.try_recv() {
                        Ok(m) => {
                            if self.handle(m) {
                                return;
                            }
                        }
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            self.handle(Msg::Stop);
                            return;
                        }
                    }
                }
            }
            self.drain(false);
            if last_flush.elapsed() >= FLUSH_EVERY {
                self.flush_all();
                last_flush = Instant::now();
            }
        }
    }

    /// One message; `true` when the writer is to stop.
    fn handle(&mut self, m: Msg) -> bool {
        match m {
            Msg::Exchange(p) => {
                self.waiting.push_back(p);
                false
            }
            Msg::Flush(done) => {
                self.drain(true);
                self.flush_all();
                let _ = done.send(());
                false
            }
            Msg::Stop => {
                self.drain(true);
                self.flush_all();
                true
            }
        }
    }

    /// Writes the waiting exchanges in order, each once its shadow verdict is in (or it
    /// waited long enough, or `all`).
    fn drain(&mut self, all: bool) {
        while let Some(front) = self.waiting.front() {
            // Resolved, or nobody left to resolve it (the mirror never took this request).
            let ready = match &front.shadow {
                None => true,
                Some(s) => {
                    s.0.get().is_some()
                        || Arc::strong_count(s) == 1
                        || all
                        || front.queued.elapsed() >= SHADOW_WAIT
                }
            };
            if !ready {
                return;
            }
            if let Some(p) = self.waiting.pop_front() {
                self.write(*p);
            }
        }
    }

    fn write(&mut self, p: Pending) {
        let Pending {
            slot,
            session,
            raw,
            key,
            shadow,
            ..
        } = p;
        let mut exchange = raw.exchange(&slot.route);
        let stats = slot.stats.clone();
        // The session ended (or changed) since: it belongs to no file any more.
        if !slot.session().is_some_and(|s| Arc::ptr_eq(&s, &session)) {
            stats.drop_one(DropReason::Incomplete);
            return;
        }
        if let Some(s) = shadow.and_then(|s| s.0.get().cloned()).flatten() {
            exchange.shadow = Some(s);
        }
        exchange.key = key.map(|k| self.token(&session, k));
        if session.redactor.redact(&mut exchange).is_err() {
            stats.drop_one(DropReason::RedactionFailed);
            return;
        }
        let mut record = std::mem::take(&mut self.scratch);
        record.clear();
        if ficus_record::encode_record(&exchange, &mut record).is_err() {
            self.scratch = record;
            stats.drop_one(DropReason::RedactionFailed);
            return;
        }
        self.write_record(&slot, &session, &record);
        self.scratch = record;
    }

    /// The sticky key's token: remembered per session (keys repeat: a user sends many
    /// requests), so the HMAC is computed once per key and session.
    fn token(&mut self, session: &Arc<Session>, key: Vec<u8>) -> String {
        if self.tokens.0 != session.id {
            self.tokens = (session.id, HashMap::new());
        }
        if let Some(t) = self.tokens.1.get(&key) {
            return t.clone();
        }
        let t = session.redactor.token(&key);
        if self.tokens.1.len() >= TOKEN_CACHE {
            self.tokens.1.clear();
        }
        self.tokens.1.insert(key, t.clone());
        t
    }

    /// Appends an encoded record to the route's file (opening or rotating it), counting it.
    fn write_record(&mut self, slot: &Arc<RecordSlot>, session: &Arc<Session>, record: &[u8]) {
        let stats = &slot.stats;
        // Written bytes, plus the open block's (not yet compressed: an overestimate).
        let open = self
            .files
            .get(&slot.route)
            .filter(|(_, f)| f.session == session.id)
            .map_or(0, |(_, f)| f.writer.pending().1 as u64);
        if stats.bytes.load(Ordering::Relaxed) + open + record.len() as u64
            > session.policy.max_size
        {
            stats.drop_one(DropReason::MaxSize);
            return;
        }
        if self.total.load(Ordering::Relaxed) + record.len() as u64 > self.max_total {
            stats.drop_one(DropReason::DiskFull);
            return;
        }
        let route = slot.route.clone();
        let needs_new = match self.files.get(&route) {
            None => true,
            Some((_, f)) => {
                f.session != session.id
                    || f.writer.written() >= self.rotate_bytes
                    || f.opened.elapsed() >= self.rotate_every
            }
        };
        if needs_new {
            if let Some((s, f)) = self.files.remove(&route) {
                self.close(&s, f);
            }
            match self.open(&route, session) {
                Ok(f) => {
                    stats.files.fetch_add(1, Ordering::Relaxed);
                    self.files.insert(route.clone(), (slot.clone(), f));
                }
                Err(e) => {
                    tracing::warn!(route = %route, error = %e, "cannot open a recording file");
                    stats.drop_one(DropReason::DiskFull);
                    return;
                }
            }
        }
        let Some((_, f)) = self.files.get_mut(&route) else {
            return;
        };
        let before = f.writer.written();
        let (pending_before, _) = f.writer.pending();
        match f.writer.append_encoded(record) {
            Ok(()) => {
                let (pending_after, _) = f.writer.pending();
                if pending_after < pending_before + 1 {
                    // A block was written: it held the earlier pending records and this one.
                    let wrote = f.writer.written() - before;
                    stats
                        .recorded
                        .fetch_add(pending_before + 1 - pending_after, Ordering::Relaxed);
                    stats.bytes.fetch_add(wrote, Ordering::Relaxed);
                    self.total.fetch_add(wrote, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::warn!(route = %route, error = %e, "a recording block could not be written");
                let (lost, _) = f.writer.pending();
                for _ in 0..lost.max(pending_before + 1) {
                    stats.drop_one(DropReason::DiskFull);
                }
                // The file may hold a torn block now: start a new one next time.
                if let Some((s, f)) = self.files.remove(&route) {
                    self.close(&s, f);
                }
            }
        }
    }

    fn open(&self, route: &str, session: &Arc<Session>) -> std::io::Result<OpenFile> {
        let dir = self.dir.join(sanitize(route));
        std::fs::create_dir_all(&dir)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "{}-{}-{}-{:09}.ficusrec",
            sanitize(route),
            self.node,
            now.as_secs(),
            now.subsec_nanos()
        );
        let path = dir.join(name);
        let header = ficus_record::FileHeader {
            format: ficus_record::FORMAT_VERSION,
            ficus: env!("CARGO_PKG_VERSION").to_string(),
            policy: session.redactor.policy_hash().to_string(),
            route: Some(route.to_string()),
            node: Some(self.node.clone()),
            created_ns: now.as_nanos() as u64,
            source: "ficus".into(),
        };
        let writer = Writer::create(&path, &header, WriterOptions::default())?;
        self.total.fetch_add(writer.written(), Ordering::Relaxed);
        Ok(OpenFile {
            writer,
            session: session.id,
            opened: Instant::now(),
            path,
        })
    }

    /// Writes every open file's pending block.
    fn flush_all(&mut self) {
        let routes: Vec<Arc<str>> = self.files.keys().cloned().collect();
        for r in routes {
            let Some((slot, f)) = self.files.get_mut(&r) else {
                continue;
            };
            let (n, _) = f.writer.pending();
            if n == 0 {
                continue;
            }
            let before = f.writer.written();
            match f.writer.flush() {
                Ok(()) => {
                    let wrote = f.writer.written() - before;
                    slot.stats.recorded.fetch_add(n, Ordering::Relaxed);
                    slot.stats.bytes.fetch_add(wrote, Ordering::Relaxed);
                    self.total.fetch_add(wrote, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(route = %r, error = %e, "a recording block could not be written");
                    for _ in 0..n {
                        slot.stats.drop_one(DropReason::DiskFull);
                    }
                    if let Some((s, f)) = self.files.remove(&r) {
                        self.close(&s, f);
                    }
                }
            }
        }
    }

    fn close(&self, slot: &Arc<RecordSlot>, f: OpenFile) {
        let (n, _) = f.writer.pending();
        let before = f.writer.written();
        let path = f.path.clone();
        match f.writer.finish() {
            Ok(file) => {
                let wrote = file
                    .metadata()
                    .map_or(before, |m| m.len())
                    .saturating_sub(before);
                slot.stats.recorded.fetch_add(n, Ordering::Relaxed);
                slot.stats.bytes.fetch_add(wrote, Ordering::Relaxed);
                self.total.fetch_add(wrote, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "closing a recording failed");
                for _ in 0..n {
                    slot.stats.drop_one(DropReason::DiskFull);
                }
            }
        }
    }
}

/// `/metrics`: per route, `ficus_record_requests_total`, `ficus_record_recorded_total`,
/// `ficus_record_sampled_out_total`, `ficus_record_dropped_total{reason}` (so that
/// requests = recorded + sampled out + dropped + in progress), `ficus_record_bytes` and
/// `ficus_record_active` (1 while the route records).
pub fn metrics(recorder: std::sync::Weak<Recorder>) -> ficus_telemetry::ExtraMetrics {
    Box::new(move || {
        let Some(rec) = recorder.upgrade() else {
            return Vec::new();
        };
        // Routes that record or have recorded.
        let slots: Vec<_> = rec
            .slots()
            .into_iter()
            .filter(|s| s.session().is_some() || s.stats.requests.load(Ordering::Relaxed) > 0)
            .collect();
        let per = |f: &dyn Fn(&RecordStats) -> u64| -> Vec<(Vec<(&'static str, String)>, u64)> {
            slots
                .iter()
                .map(|s| (vec![("route", s.route.to_string())], f(&s.stats)))
                .collect()
        };
        let mut dropped = Vec::new();
        for s in &slots {
            for r in DropReason::ALL {
                dropped.push((
                    vec![
                        ("route", s.route.to_string()),
                        ("reason", r.as_str().to_string()),
                    ],
                    s.stats.dropped(r),
                ));
            }
        }
        vec![
            ficus_telemetry::Family {
                name: "ficus_record_requests",
                help: "Requests of a route while it recorded (each counted once below as recorded, sampled out or dropped).",
                gauge: false,
                samples: per(&|s| s.requests.load(Ordering::Relaxed)),
            },
            ficus_telemetry::Family {
                name: "ficus_record_recorded",
                help: "Exchanges written to a recording (in a block on disk).",
                gauge: false,
                samples: per(&|s| s.recorded.load(Ordering::Relaxed)),
            },
            ficus_telemetry::Family {
                name: "ficus_record_sampled_out",
                help: "Requests of a recording route left out by its sample.",
                gauge: false,
                samples: per(&|s| s.sampled_out.load(Ordering::Relaxed)),
            },
            ficus_telemetry::Family {
                name: "ficus_record_dropped",
                help: "Exchanges not recorded, by reason: queue_full, body_over_cap, disk_full, max_size, redaction_failed, incomplete.",
                gauge: false,
                samples: dropped,
            },
            ficus_telemetry::Family {
                name: "ficus_record_bytes",
                help: "Bytes of the route's current recording on disk.",
                gauge: true,
                samples: per(&|s| s.bytes.load(Ordering::Relaxed)),
            },
            ficus_telemetry::Family {
                name: "ficus_record_active",
                help: "1 while the route records on this node.",
                gauge: true,
                samples: slots
                    .iter()
                    .map(|s| {
                        let on = s.session().is_some_and(|x| !x.expired());
                        (vec![("route", s.route.to_string())], u64::from(on))
                    })
                    .collect(),
            },
        ]
    })
}
