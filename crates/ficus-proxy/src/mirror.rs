//! The mirror (shadow traffic): a copy of each sampled request on a `shadow` route (and, when
//! the route asks, on the legacy-served part of a `canary` route) goes to modern, off the
//! request path, and the two responses are compared.
//!
//! Invariant 2 shapes all of it: the client's response comes from legacy and is never held
//! up. The request path only clones the request head and the body frames it streams anyway
//! (`Bytes` clones: reference counts, no copying), and when legacy's response body has been
//! streamed to the client to the end, it offers the finished exchange to a bounded queue with
//! `try_send`. A full queue, an oversized body or an unfinished exchange drops the copy and
//! counts it. The mirror worker, a thread of its own with its own runtime and upstream pool,
//! takes jobs with at most `max_in_flight` in progress, calls modern (and, for the noise
//! sample, legacy a second time), compares the responses with `ficus-compare` and adds the
//! result to the [`Aggregator`], which the control plane reads and flushes to the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use ficus_compare::{Aggregator, CompiledRules, Exchange};
use ficus_config::{ShadowPolicy, ShadowSettings, Stage, StickyKey, Weight};
use ficus_telemetry::{DropReason, RouteStats};
use http::uri::PathAndQuery;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use tokio::sync::{mpsc, Semaphore};

use crate::body::{RequestBody, ResponseBody};
use crate::split::{self, Side};
use crate::table::sticky_key;
use crate::trace::ShadowTrace;
use crate::upstream::{CallError, HostRewrite, UpstreamClient};

/// Marks a mirrored request (to modern, and the noise copy to legacy), so either service can
/// tell a copy from real traffic.
pub static X_FICUS_SHADOW: HeaderName = HeaderName::from_static("x-ficus-shadow");

/// The gateway's mirror: the queue the request path offers jobs to, the worker thread that
/// runs them, and the comparison aggregates.
pub struct Mirror {
    tx: mpsc::Sender<Job>,
    settings: ShadowSettings,
    aggregator: Arc<Mutex<Aggregator>>,
    stopping: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// Starts the mirror worker thread; its upstream calls use connection pool `pool` of
    /// every upstream (one no request worker uses).
    /// With a `tracer`, each copy of a traced request gets a trace of its own, linked to the
    /// request's.
    pub fn start(
        settings: ShadowSettings,
        pool: usize,
        tracer: Option<Arc<ficus_trace::Tracer>>,
    ) -> std::io::Result<Arc<Mirror>> {
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let aggregator = Arc::new(Mutex::new(Aggregator::new(
            ficus_compare::Limits {
                max_fields: settings.max_fields,
                samples_per_field: settings.samples_per_field,
                ..ficus_compare::Limits::default()
            },
            ficus_compare::Thresholds {
                relative: settings.noise_relative,
                absolute: settings.noise_absolute,
            },
        )));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            aggregator: aggregator.clone(),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            max_body: settings.max_body,
            tracer,
        };
        let thread = std::thread::Builder::new()
            .name("ficus-mirror".into())
            .spawn(move || {
                crate::upstream::set_worker(pool);
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the mirror runtime; mirrored requests will be dropped");
                        return;
                    }
                };
                rt.block_on(worker.run(rx, stop_rx));
            })?;
        Ok(Arc::new(Mirror {
            tx,
            settings,
            aggregator,
            stopping,
            thread: Mutex::new(Some(thread)),
            stop: Mutex::new(Some(stop_tx)),
        }))
    }

    /// The comparison aggregates (read by the control plane, flushed to the store).
    pub fn aggregator(&self) -> &Arc<Mutex<Aggregator>> {
        &self.aggregator
    }

    pub fn settings(&self) -> &ShadowSettings {
        &self.settings
    }

    /// Stops the worker: queued copies are dropped (counted `closed`), exchanges in
    /// progress are abandoned. Client requests are unaffected.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(tx) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }

    fn offer(&self, job: Job) {
        let stats = job.route.stats.clone();
        if self.stopping.load(Ordering::Relaxed) {
            stats.shadow.dropped(DropReason::Closed);
            return;
        }
        match self.tx.try_send(job) {
            Ok(()) => stats.shadow.mirrored(),
            Err(mpsc::error::TrySendError::Full(_)) => stats.shadow.dropped(DropReason::QueueFull),
            Err(mpsc::error::TrySendError::Closed(_)) => stats.shadow.dropped(DropReason::Closed),
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if let Some(tx) = self
            .stop
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = tx.send(());
        }
    }
}

/// A route's mirror settings, compiled with the route.
pub struct MirrorRoute {
    pub name: Arc<str>,
    /// Hash seed of the sampling bucket: not the route name, so which keys are mirrored is
    /// independent of which keys a canary sends to modern.
    seed: String,
    sample: Weight,
    noise_sample: Weight,
    writes: bool,
    sticky: StickyKey,
    rules: CompiledRules,
    redact: Vec<String>,
    /// Query parameters whose values a sample's request target hides.
    redact_query: Vec<String>,
    pub stats: Arc<RouteStats>,
    legacy: Arc<UpstreamClient>,
    modern: Arc<UpstreamClient>,
    mirror: Arc<Mirror>,
}

impl std::fmt::Debug for MirrorRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorRoute")
            .field("name", &self.name)
            .field("sample", &self.sample)
            .finish_non_exhaustive()
    }
}

/// Whether a route in this stage mirrors at all.
pub fn mirrors(stage: Stage, policy: &ShadowPolicy) -> bool {
    policy.sample != Weight::ZERO
        && (stage == Stage::Shadow || (stage == Stage::Canary && policy.canary))
}

impl MirrorRoute {
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: Arc<str>,
        policy: &ShadowPolicy,
        redaction: &ficus_config::Redaction,
        writes: bool,
        sticky: StickyKey,
        stats: Arc<RouteStats>,
        legacy: Arc<UpstreamClient>,
        modern: Arc<UpstreamClient>,
        mirror: Arc<Mirror>,
    ) -> Result<MirrorRoute, ficus_compare::RuleError> {
        let rules = ficus_compare::Rules {
            headers: policy.headers.clone(),
            ignore_headers: policy.ignore_headers.clone(),
            ignore: policy.ignore.clone(),
            tolerance: policy.tolerance.clone(),
            unordered: policy.unordered.clone(),
            text: ficus_compare::TextOptions {
                trim: policy.trim,
                collapse_whitespace: policy.collapse_whitespace,
                ignore_case: policy.ignore_case,
            },
        }
        .compile()?;
        let redact = redaction
            .all_headers()
            .into_iter()
            .chain(policy.redact.iter().cloned())
            .collect();
        let redact_query = redaction.all_query();
        Ok(MirrorRoute {
            seed: format!("{name}#shadow"),
            name,
            sample: policy.sample,
            noise_sample: policy.noise_sample,
            writes,
            sticky,
            rules,
            redact,
            redact_query,
            stats,
            legacy,
            modern,
            mirror,
        })
    }

    /// Starts a copy of this request when it is sampled: the request path's only mirror work
    /// before the legacy call. `body_hint` is the announced body length, if any.
    pub fn tap(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        body_hint: Option<u64>,
        client_ip: &[u8],
        link: Option<ficus_trace::Link>,
    ) -> Option<Box<Tap>> {
        if !(is_safe(&parts.method) || self.writes) {
            return None;
        }
        if self.sample != Weight::MAX {
            let b = match sticky_key(&self.sticky, &parts.headers, parts.uri.query(), client_ip) {
                Some(key) => split::bucket(&self.seed, key),
                None => (crate::rand::next_u64() % u64::from(split::BUCKETS)) as u16,
            };
            if b >= self.sample.basis_points() {
                return None;
            }
        }
        let max = self.mirror.settings.max_body;
        if body_hint.is_some_and(|n| n > max) {
            self.stats.shadow.dropped(DropReason::TooLarge);
            return None;
        }
        // Boxed: a mirrored request's future carries a pointer, not the whole tap.
        Some(Box::new(Tap {
            route: self.clone(),
            method: parts.method.clone(),
            pq: parts.uri.path_and_query().cloned(),
            headers: parts.headers.clone(),
            request: Arc::new(Capture::new(max)),
            response: Capture::new(max),
            status: StatusCode::OK,
            response_headers: HeaderMap::new(),
            at: SystemTime::now(),
            done: false,
            link,
            report: ShadowReport(
                parts
                    .extensions
                    .get::<Arc<crate::record::ShadowSlot>>()
                    .cloned(),
            ),
        }))
    }
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A body being copied as it streams, up to a size limit. The mirror's copy is all or
/// nothing (over the limit, the copy is dropped); a recording's keeps the first `max` bytes
/// ([`Capture::keeping_head`]). One capture can pass every frame on to another
/// ([`Capture::chain`]), so a request both mirrored and recorded is copied once per use.
#[derive(Debug)]
pub struct Capture {
    inner: Mutex<CaptureState>,
    max: u64,
    keep_head: bool,
    next: std::sync::OnceLock<Arc<Capture>>,
}

#[derive(Debug, Default)]
struct CaptureState {
    chunks: Vec<Bytes>,
    /// Bytes seen (all of them, also beyond `max`).
    len: u64,
    /// Bytes kept.
    kept: u64,
    over: bool,
    complete: bool,
}

impl Capture {
    fn new(max: u64) -> Capture {
        Capture {
            inner: Mutex::new(CaptureState::default()),
            max,
            keep_head: false,
            next: std::sync::OnceLock::new(),
        }
    }

    /// A capture that keeps the first `max` bytes of a larger body (and counts all).
    pub fn keeping_head(max: u64) -> Capture {
        Capture {
            keep_head: true,
            ..Capture::new(max)
        }
    }

    /// Passes every later frame, and the end, on to `next` as well.
    pub fn chain(&self, next: Arc<Capture>) {
        let _ = self.next.set(next);
    }

    /// Keeps a frame's data (a reference-counted clone).
    pub fn push(&self, data: &Bytes) {
        {
            let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            s.len += data.len() as u64;
            if !s.over {
                if s.len <= self.max {
                    s.kept = s.len;
                    s.chunks.push(data.clone());
                } else if self.keep_head {
                    let room = (self.max - s.kept) as usize;
                    if room > 0 {
                        s.chunks.push(data.slice(..room.min(data.len())));
                    }
                    s.kept = self.max;
                    s.over = true;
                } else {
                    s.over = true;
                    s.chunks = Vec::new();
                }
            }
        }
        if let Some(n) = self.next.get() {
            n.push(data);
        }
    }

    /// The body ended normally.
    pub fn complete(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .complete = true;
        if let Some(n) = self.next.get() {
            n.complete();
        }
    }

    /// The whole body, or why there is none.
    fn take(&self) -> Result<Bytes, DropReason> {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if s.over {
            return Err(DropReason::TooLarge);
        }
        if !s.complete {
            return Err(DropReason::Incomplete);
        }
        Ok(join(std::mem::take(&mut s.chunks)))
    }

    /// The kept head of the body, its whole length, and whether it ended normally.
    pub fn take_head(&self) -> (Bytes, u64, bool) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (join(std::mem::take(&mut s.chunks)), s.len, s.complete)
    }
}

fn join(chunks: Vec<Bytes>) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.into_iter().next().unwrap_or_default(),
        _ => {
            let mut b = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in chunks {
                b.extend_from_slice(&c);
            }
            b.freeze()
        }
    }
}

/// A mirror copy in the making, carried by the request path until legacy's response has been
/// streamed to the client. Dropped unfinished, it counts as `incomplete`.
pub struct Tap {
    route: Arc<MirrorRoute>,
    method: Method,
    pq: Option<PathAndQuery>,
    headers: HeaderMap,
    /// Shared with the request body being streamed to legacy.
    pub request: Arc<Capture>,
    response: Capture,
    status: StatusCode,
    response_headers: HeaderMap,
    at: SystemTime,
    done: bool,
    /// The request's span, which the copy's trace links to (tracing on).
    link: Option<ficus_trace::Link>,
    /// Where a recording of the same exchange waits for the verdict.
    report: ShadowReport,
}

/// A recorded exchange's wait for the mirror's verdict: filled by the comparison, or with
/// nothing when the copy is dropped on the way (this guard's drop).
#[derive(Debug, Default)]
struct ShadowReport(Option<Arc<crate::record::ShadowSlot>>);

impl Drop for ShadowReport {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.set(None);
        }
    }
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("route", &self.route.name)
            .finish_non_exhaustive()
    }
}

impl Tap {
    /// Legacy's response head, as the client gets it.
    pub fn response_head(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.status = status;
        self.response_headers = headers.clone();
    }

    /// A frame of legacy's response body on its way to the client.
    #[inline]
    pub fn response_data(&self, data: &Bytes) {
        self.response.push(data);
    }

    /// Legacy's response body ended: offer the exchange to the mirror queue.
    pub fn finish(mut self) {
        self.done = true;
        self.response.complete();
        let stats = &self.route.stats;
        let request_body = match self.request.take() {
            Ok(b) => b,
            Err(why) => return stats.shadow.dropped(why),
        };
        let response_body = match self.response.take() {
            Ok(b) => b,
            Err(why) => return stats.shadow.dropped(why),
        };
        let job = Job {
            route: self.route.clone(),
            method: std::mem::take(&mut self.method),
            pq: self.pq.take(),
            headers: std::mem::take(&mut self.headers),
            request_body,
            legacy_status: self.status,
            legacy_headers: std::mem::take(&mut self.response_headers),
            legacy_body: response_body,
            at: self.at,
            link: self.link,
            report: std::mem::take(&mut self.report),
        };
        self.route.mirror.offer(job);
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if !self.done {
            self.route.stats.shadow.dropped(DropReason::Incomplete);
        }
    }
}

/// One finished legacy exchange waiting to be mirrored.
struct Job {
    route: Arc<MirrorRoute>,
    method: Method,
    pq: Option<PathAndQuery>,
    /// The request headers as sent to legacy (X-Forwarded-*, X-Request-Id included).
    headers: HeaderMap,
    request_body: Bytes,
    legacy_status: StatusCode,
    legacy_headers: HeaderMap,
    legacy_body: Bytes,
    at: SystemTime,
    link: Option<ficus_trace::Link>,
    report: ShadowReport,
}

/// Modern's answer and the verdict, as a recording keeps them (at most 20 field paths; the
/// aggregates keep the rest).
fn recorded_shadow(
    modern: &Received,
    primary: &ficus_compare::Comparison,
    failed: bool,
) -> ficus_record::Shadow {
    ficus_record::Shadow {
        status: modern.status.as_u16(),
        response: ficus_record::Message {
            headers: modern
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        ficus_record::Body(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            body: ficus_record::Body(modern.body.to_vec()),
            truncated_from: None,
        },
        verdict: if failed {
            "failed"
        } else if primary.differences.is_empty() {
            "equal"
        } else {
            "different"
        }
        .to_string(),
        differences: primary
            .differences
            .iter()
            .take(20)
            .map(|d| d.path.clone())
            .collect(),
    }
}

/// A response as the mirror received it.
struct Received {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn exchange(&self) -> Exchange<'_> {
        Exchange {
            status: self.status.as_u16(),
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// The mirror worker's state.
struct Worker {
    aggregator: Arc<Mutex<Aggregator>>,
    in_flight: Arc<Semaphore>,
    max_body: u64,
    tracer: Option<Arc<ficus_trace::Tracer>>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Job>, mut stop: tokio::sync::oneshot::Receiver<()>) {
        let me = Arc::new(self);
        loop {
            // A permit first: while every slot is busy, jobs wait in the bounded queue and the
            // request path's try_send drops (and counts) what does not fit.
            let permit = tokio::select! {
                p = me.in_flight.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = &mut stop => break,
            };
            let job = tokio::select! {
                j = rx.recv() => match j {
                    Some(j) => j,
                    None => break,
                },
                _ = &mut stop => break,
            };
            let me = me.clone();
            tokio::spawn(async move {
                me.mirror(job).await;
                drop(permit);
            });
        }
        rx.close();
        while let Ok(job) = rx.try_recv() {
            job.route.stats.shadow.dropped(DropReason::Closed);
        }
    }

    async fn mirror(&self, job: Job) {
        let route = job.route.clone();
        let noise = is_safe(&job.method)
            && route.noise_sample != Weight::ZERO
            && ((crate::rand::next_u64() % u64::from(split::BUCKETS)) as u16)
                < route.noise_sample.basis_points();
        let mut shadow = match (&self.tracer, job.link) {
            (Some(t), Some(link)) => Some(ShadowTrace::new(t, link)),
            _ => None,
        };
        let modern_call = shadow.as_ref().map(ShadowTrace::call);
        let legacy_call = shadow.as_ref().filter(|_| noise).map(ShadowTrace::call);
        let modern = self.call(&route.modern, &job, modern_call.as_ref().map(|c| &c.0));
        let again = async {
            if noise {
                self.call(&route.legacy, &job, legacy_call.as_ref().map(|c| &c.0))
                    .await
                    .ok()
            } else {
                None
            }
        };
        let (modern, again) = tokio::join!(modern, again);
        if let Some(s) = &mut shadow {
            let status = |r: &Result<Received, Failure>| match r {
                Ok(r) => r.status.as_u16(),
                Err(Failure::TooLarge) => 413,
                Err(Failure::Failed(s)) => s.as_u16(),
            };
            let at = modern_call.and_then(|c| c.1);
            s.call_end(
                at,
                &route.modern,
                &job.method,
                Side::Modern,
                status(&modern),
            );
            if let (Some(a), Some((_, at))) = (&again, legacy_call) {
                s.call_end(
                    at,
                    &route.legacy,
                    &job.method,
                    Side::Legacy,
                    a.status.as_u16(),
                );
            }
        }
        let modern_failed = matches!(modern, Err(Failure::Failed(_)));
        let modern = match modern {
            Ok(r) => r,
            Err(Failure::TooLarge) => {
                route.stats.shadow.dropped(DropReason::TooLarge);
                return;
            }
            Err(Failure::Failed(status)) => {
                // What a client would have seen had modern answered it: ficus's own 502/504.
                route.stats.shadow.failed();
                Received {
                    status,
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                }
            }
        };
        let legacy = Received {
            status: job.legacy_status,
            headers: job.legacy_headers.clone(),
            body: job.legacy_body.clone(),
        };
        let primary = ficus_compare::compare(&route.rules, &legacy.exchange(), &modern.exchange());
        let noise_cmp = again
            .as_ref()
            .map(|a| ficus_compare::compare(&route.rules, &legacy.exchange(), &a.exchange()));
        route
            .stats
            .shadow
            .compared(!primary.differences.is_empty(), noise_cmp.is_some());
        if let Some(s) = shadow {
            s.finish(&route.name, &job.method, primary.differences.len());
        }
        if let Some(slot) = &job.report.0 {
            slot.set(Some(recorded_shadow(&modern, &primary, modern_failed)));
        }
        let path = job.pq.as_ref().map_or("/", |pq| pq.path());
        let endpoint = format!("{} {}", job.method, ficus_telemetry::inventory::fold(path));
        let at_ms = job
            .at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let sample = || sample_data(&route.redact, &route.redact_query, &job, &legacy, &modern);
        self.aggregator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(
                &route.name,
                &endpoint,
                at_ms,
                &primary,
                noise_cmp.as_ref(),
                sample,
            );
    }

    /// Sends the job's request to one side and reads the whole response (up to max_body).
    /// `traceparent`: the copy's own (tracing on), in place of the client's.
    async fn call(
        &self,
        up: &UpstreamClient,
        job: &Job,
        traceparent: Option<&HeaderValue>,
    ) -> Result<Received, Failure> {
        let mut headers = job.headers.clone();
        headers.insert(X_FICUS_SHADOW.clone(), HeaderValue::from_static("1"));
        if let Some(tp) = traceparent {
            headers.insert(crate::trace::TRACEPARENT.clone(), tp.clone());
            headers.remove(&crate::trace::TRACESTATE);
        }
        if let HostRewrite::Set(h) = &up.host_rewrite {
            headers.insert(header::HOST, h.clone());
        }
        let body = if job.request_body.is_empty() {
            RequestBody::Empty
        } else {
            RequestBody::Full(Some(job.request_body.clone()))
        };
        let mut req = Request::new(body);
        *req.method_mut() = job.method.clone();
        *req.uri_mut() = Uri::from(up.path_for(job.pq.as_ref()));
        *req.headers_mut() = headers;
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + up.request_timeout());
        let resp = match tokio::time::timeout_at(deadline, up.send(req, started, false)).await {
            Err(_) => return Err(Failure::Failed(StatusCode::GATEWAY_TIMEOUT)),
            Ok(Err(CallError::Connect(_) | CallError::Failed(_))) => {
                return Err(Failure::Failed(StatusCode::BAD_GATEWAY))
            }
            Ok(Ok(r)) => r,
        };
        let (mut parts, body) = resp.response.into_parts();
        crate::headers::strip_hop_by_hop(&mut parts.headers, false);
        let body = ResponseBody::upstream(body);
        let read = Limited::new(body, usize::try_from(self.max_body).unwrap_or(usize::MAX));
        match tokio::time::timeout_at(deadline, read.collect()).await {
            Ok(Ok(b)) => Ok(Received {
                status: parts.status,
                headers: parts.headers,
                body: b.to_bytes(),
            }),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Failure::TooLarge),
            Ok(Err(_)) => Err(Failure::Failed(StatusCode::BAD_GATEWAY)),
            Err(_) => Err(Failure::Failed(StatusCode::GATEWAY_TIMEOUT)),
        }
    }
}

enum Failure {
    TooLarge,
    /// No usable response: the status ficus would have answered with.
    Failed(StatusCode),
}

fn sample_data(
    redact: &[String],
    redact_query: &[String],
    job: &Job,
    legacy: &Received,
    modern: &Received,
) -> ficus_compare::SampleData {
    let max = ficus_compare::Limits::default().max_sample_body;
    let response = |r: &Received| {
        ficus_compare::ResponseSample::capture(r.status.as_u16(), &r.headers, &r.body, redact, max)
    };
    let uri = job
        .pq
        .as_ref()
        .map_or_else(|| "/".to_string(), |pq| pq.to_string());
    ficus_compare::SampleData {
        request: ficus_compare::RequestSample::capture(
            job.method.as_str(),
            &uri,
            &job.headers,
            &job.request_body,
            redact,
            redact_query,
            max,
        ),
        legacy: response(legacy),
        modern: response(modern),
    }
}
