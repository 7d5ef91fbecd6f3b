//! Body types of the request path: what is sent upstream (possibly kept for a re-send) and
//! what is streamed back to the client. Enums rather than boxed trait objects, so the common
//! path allocates nothing for them.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::mirror::{Capture, Tap};
use crate::upstream::UpstreamBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client sent more body than the route's `max_body` allows.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the route's limit of {limit} bytes")]
pub struct BodyTooLarge {
    pub limit: u64,
}

/// What a client did wrong with its request body: its own fault, never the upstream's (no
/// breaker failure, no 5xx in the upstream's telemetry, no fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFault {
    /// The body is not valid HTTP framing (a bad chunk size, a DATA frame beyond an HTTP/2
    /// `content-length`): 400.
    Malformed,
    /// The client went away before its body was complete: logged as 499, as nginx does.
    Gone,
    /// The client stopped sending its body: 408.
    Slow,
}

impl ClientFault {
    /// The status ficus answers (and logs) for this fault.
    pub fn status(self) -> u16 {
        match self {
            ClientFault::Malformed => 400,
            ClientFault::Gone => 499,
            ClientFault::Slow => 408,
        }
    }

    /// What a failed read of a client's body (hyper's error) says about the client.
    pub fn of(err: &(dyn std::error::Error + 'static)) -> ClientFault {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(h) = e.downcast_ref::<hyper::Error>() {
                if h.is_incomplete_message() || h.is_canceled() {
                    return ClientFault::Gone;
                }
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                if matches!(
                    io.kind(),
                    UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
                ) {
                    return ClientFault::Gone;
                }
            }
            // HTTP/2: the client reset its stream (h2's own error type is not ours to name).
            if e.to_string().starts_with("stream error received") {
                return ClientFault::Gone;
            }
            cur = e.source();
        }
        ClientFault::Malformed
    }
}

/// Reading the client's request body failed: the client's fault.
#[derive(Debug, thiserror::Error)]
#[error("reading the client's request body failed: {source}")]
pub struct ClientBodyError {
    pub fault: ClientFault,
    #[source]
    pub source: BoxError,
}

impl ClientBodyError {
    pub fn new(source: BoxError) -> ClientBodyError {
        ClientBodyError {
            fault: ClientFault::of(&*source),
            source,
        }
    }
}

/// Whether an error (or anything in its source chain) is the client's body failing, and how.
pub fn client_fault(err: &(dyn std::error::Error + 'static)) -> Option<ClientFault> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<ClientBodyError>() {
            return Some(c.fault);
        }
        cur = e.source();
    }
    None
}

/// Where a streamed client body is, for a request that timed out: was ficus waiting for the
/// client's next bytes (the client is slow), or for the upstream (which was slow to read)?
#[derive(Debug, Default)]
pub struct BodyProgress(AtomicU8);

const SENDING: u8 = 0;
const WAITING_FOR_CLIENT: u8 = 1;
const ENDED: u8 = 2;

impl BodyProgress {
    /// The last read of the body found nothing from the client yet.
    pub fn waiting_for_client(&self) -> bool {
        self.0.load(Ordering::Relaxed) == WAITING_FOR_CLIENT
    }

    fn set(&self, v: u8) {
        self.0.store(v, Ordering::Relaxed);
    }
}

/// A client body that fails once more than `limit` bytes went through it (for bodies whose
/// length was not announced, so the limit cannot be checked up front).
#[derive(Debug)]
pub struct Capped {
    inner: Incoming,
    seen: u64,
    limit: u64,
    /// The mirror's copy of the body, when this request is mirrored.
    tee: Option<Arc<Capture>>,
    /// Where the body is, when someone asked ([`RequestBody::progress`]).
    progress: Option<Arc<BodyProgress>>,
}

impl Capped {
    pub fn new(inner: Incoming, limit: u64) -> Capped {
        Capped {
            inner,
            seen: 0,
            limit,
            tee: None,
            progress: None,
        }
    }

    /// Also copies the body into `tee` as it streams (for the mirror).
    pub fn teed(inner: Incoming, limit: u64, tee: Arc<Capture>) -> Capped {
        if inner.is_end_stream() {
            tee.complete();
        }
        Capped {
            tee: Some(tee),
            ..Capped::new(inner, limit)
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = self.poll_inner(cx);
        if let Some(p) = &self.progress {
            p.set(match &polled {
                Poll::Pending => WAITING_FOR_CLIENT,
                Poll::Ready(Some(Ok(_))) if !self.inner.is_end_stream() => SENDING,
                _ => ENDED,
            });
        }
        polled
    }

    /// Where this body is, from now on.
    fn progress(&mut self) -> Arc<BodyProgress> {
        self.progress
            .get_or_insert_with(|| Arc::new(BodyProgress::default()))
            .clone()
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    if self.seen > self.limit {
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                            limit: self.limit,
                        }))));
                    }
                    if let Some(t) = &self.tee {
                        t.push(data);
                        if self.inner.is_end_stream() {
                            t.complete();
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(Box::new(ClientBodyError::new(Box::new(e))))))
            }
            Poll::Ready(None) => {
                if let Some(t) = &self.tee {
                    t.complete();
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A streamed body that can be taken back if the upstream call failed before polling it
/// (a connect failure): then nothing was sent and the same body can go to legacy.
#[derive(Debug, Clone)]
pub struct Reclaimable {
    slot: Arc<Mutex<Option<Capped>>>,
    touched: Arc<AtomicBool>,
}

impl Reclaimable {
    pub fn new(body: Capped) -> Reclaimable {
        Reclaimable {
            slot: Arc::new(Mutex::new(Some(body))),
            touched: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The body, if no byte of it was ever read.
    pub fn reclaim(&self) -> Option<Capped> {
        if self.touched.load(Ordering::Acquire) {
            return None;
        }
        self.slot.lock().ok()?.take()
    }
}

/// What ficus sends upstream.
#[derive(Debug)]
pub enum RequestBody {
    Empty,
    /// Fully buffered: can be sent again.
    Full(Option<Bytes>),
    /// Held whole (read by the server loop) but larger than the route keeps for a re-send:
    /// sent once, like a stream, and only sent again when nothing of it went out.
    Once(Option<Bytes>),
    Stream(Capped),
    Shared(Reclaimable),
}

impl RequestBody {
    /// The same body, as `Empty` when it is a stream already at its end (a GET's), so that it
    /// can be sent again.
    pub fn settled(self) -> RequestBody {
        match self {
            RequestBody::Stream(c) if c.inner.is_end_stream() => RequestBody::Empty,
            other => other,
        }
    }

    /// For a body streamed from the client: where it is while it is being sent (`None` for
    /// a body held whole, which never waits for the client).
    pub fn progress(&mut self) -> Option<Arc<BodyProgress>> {
        match self {
            RequestBody::Stream(c) => Some(c.progress()),
            RequestBody::Shared(r) => r.slot.lock().ok()?.as_mut().map(Capped::progress),
            _ => None,
        }
    }

    /// A copy for a second send, when this body can be sent again.
    pub fn try_clone(&self) -> Option<RequestBody> {
        match self {
            RequestBody::Empty => Some(RequestBody::Empty),
            RequestBody::Full(b) => Some(RequestBody::Full(b.clone())),
            RequestBody::Once(_) | RequestBody::Stream(_) | RequestBody::Shared(_) => None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Full(b) | RequestBody::Once(b) => {
                Poll::Ready(b.take().map(|d| Ok(Frame::data(d))))
            }
            RequestBody::Stream(c) => c.poll_frame(cx),
            RequestBody::Shared(r) => {
                r.touched.store(true, Ordering::Release);
                let mut slot = match r.slot.lock() {
                    Ok(s) => s,
                    Err(_) => return Poll::Ready(Some(Err("request body lock poisoned".into()))),
                };
                match slot.as_mut() {
                    Some(c) => c.poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Full(b) | RequestBody::Once(b) => b.is_none(),
            RequestBody::Stream(c) => c.inner.is_end_stream(),
            RequestBody::Shared(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Full(b) | RequestBody::Once(b) => {
                SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            RequestBody::Stream(c) => c.inner.size_hint(),
            RequestBody::Shared(r) => r
                .slot
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(|c| c.inner.size_hint()))
                .unwrap_or_default(),
        }
    }
}

/// What ficus streams back to the client.
#[derive(Debug)]
pub enum ResponseBody {
    /// An upstream's body (which puts its connection back into the pool at the end).
    Upstream {
        body: UpstreamBody,
        /// The mirror's copy of legacy's response, offered to the mirror at the end.
        tap: Option<Box<Tap>>,
        /// The upstream's concurrency slot, freed when the body ends or is dropped.
        permit: Option<ficus_protect::Permit>,
        /// The upstream's `read_timeout` while waiting for its next bytes.
        idle: ReadTimer,
    },
    Full(Option<Bytes>),
    /// Bytes already read, then the rest (a response too large for the cache).
    Chain {
        head: Option<Bytes>,
        rest: Box<ResponseBody>,
    },
    /// Any response, its frames copied into a recording, offered to the recorder at the end.
    Recorded {
        inner: Box<ResponseBody>,
        tap: Option<Box<crate::record::RecordTap>>,
    },
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // A mirror copy (or a recording) goes out only for a response the client received
        // whole.
        match self {
            ResponseBody::Upstream { body, tap, .. } if body.is_end_stream() => {
                if let Some(t) = tap.take() {
                    t.finish();
                }
            }
            ResponseBody::Recorded { inner, tap } if inner.is_end_stream() => {
                if let Some(t) = tap.take() {
                    t.finish();
                }
            }
            _ => {}
        }
    }
}

impl ResponseBody {
    pub fn upstream(body: UpstreamBody) -> ResponseBody {
        ResponseBody::Upstream {
            body,
            tap: None,
            permit: None,
            idle: ReadTimer::default(),
        }
    }

    /// An upstream body holding its concurrency slot, and whose frames may also be copied
    /// for the mirror.
    pub fn held(
        body: UpstreamBody,
        permit: Option<ficus_protect::Permit>,
        tap: Option<Box<Tap>>,
        read_timeout: Duration,
    ) -> ResponseBody {
        ResponseBody::Upstream {
            body,
            tap,
            permit,
            idle: ReadTimer::new(read_timeout),
        }
    }

    pub fn chain(head: Bytes, rest: ResponseBody) -> ResponseBody {
        ResponseBody::Chain {
            head: Some(head).filter(|h| !h.is_empty()),
            rest: Box::new(rest),
        }
    }

    pub fn empty() -> ResponseBody {
        ResponseBody::Full(None)
    }

    /// This body, copied into a recording as it streams.
    pub fn recorded(inner: ResponseBody, tap: Box<crate::record::RecordTap>) -> ResponseBody {
        ResponseBody::Recorded {
            inner: Box::new(inner),
            tap: Some(tap),
        }
    }

    /// An upstream head's header lines as they came, when the response was read that way
    /// (see [`crate::h1::RawHead`]): they go out before the response's own header map.
    pub fn take_raw(&mut self) -> Option<crate::h1::RawHead> {
        match self {
            ResponseBody::Upstream { body, .. } => body.take_raw(),
            ResponseBody::Recorded { inner, .. } => inner.take_raw(),
            _ => None,
        }
    }

    /// The same, left in place (a recording copies the lines).
    pub fn raw_head(&self) -> Option<&crate::h1::RawHead> {
        match self {
            ResponseBody::Upstream { body, .. } => body.raw(),
            ResponseBody::Recorded { inner, .. } => inner.raw_head(),
            _ => None,
        }
    }

    pub fn full(b: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Full(Some(b.into()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Upstream {
                body,
                tap,
                permit,
                idle,
            } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                if polled.is_pending() {
                    if idle.expired(cx) {
                        drop(tap.take());
                        drop(permit.take());
                        return Poll::Ready(Some(Err(Box::new(UpstreamIdle {
                            timeout: idle.timeout.unwrap_or_default(),
                        }))));
                    }
                } else {
                    idle.progress();
                }
                match &polled {
                    Poll::Ready(None) => {
                        finish(tap);
                        drop(permit.take());
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        if let (Some(t), Some(d)) = (tap.as_deref(), frame.data_ref()) {
                            t.response_data(d);
                        }
                        if body.is_end_stream() {
                            finish(tap);
                            drop(permit.take());
                        }
                    }
                    Poll::Ready(Some(Err(_))) => {
                        drop(tap.take());
                    }
                    _ => {}
                }
                polled
            }
            ResponseBody::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
            ResponseBody::Chain { head, rest } => match head.take() {
                Some(h) => Poll::Ready(Some(Ok(Frame::data(h)))),
                None => Pin::new(rest.as_mut()).poll_frame(cx),
            },
            ResponseBody::Recorded { inner, tap } => {
                let polled = Pin::new(inner.as_mut()).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => {
                        if let Some(t) = tap.take() {
                            t.finish();
                        }
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        if let (Some(t), Some(d)) = (tap.as_deref(), frame.data_ref()) {
                            t.response_data(d);
                        }
                        if inner.is_end_stream() {
                            if let Some(t) = tap.take() {
                                t.finish();
                            }
                        }
                    }
                    Poll::Ready(Some(Err(_))) => drop(tap.take()),
                    Poll::Pending => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream { body, .. } => body.is_end_stream(),
            ResponseBody::Full(b) => b.is_none(),
            ResponseBody::Chain { head, rest } => head.is_none() && rest.is_end_stream(),
            ResponseBody::Recorded { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream { body, .. } => body.size_hint(),
            ResponseBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ResponseBody::Chain { head, rest } => {
                let n = head.as_ref().map_or(0, |h| h.len() as u64);
                let r = rest.size_hint();
                let mut h = SizeHint::new();
                h.set_lower(r.lower() + n);
                if let Some(u) = r.upper() {
                    h.set_upper(u + n);
                }
                h
            }
            ResponseBody::Recorded { inner, .. } => inner.size_hint(),
        }
    }
}

/// The upstream sent nothing for its `read_timeout` while its response body was awaited.
#[derive(Debug, thiserror::Error)]
#[error(
    "the upstream sent nothing for {timeout:?} in the middle of its response body (read_timeout)"
)]
pub struct UpstreamIdle {
    pub timeout: Duration,
}

/// An upstream's `read_timeout` over its response body: armed when a read finds nothing
/// (not before: a response whose bytes are all there never touches the timer), re-armed
/// after each read that brought something, so only time spent waiting for the upstream
/// counts, never the time the client takes to read what it was sent.
#[derive(Debug, Default)]
pub struct ReadTimer {
    timeout: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl ReadTimer {
    fn new(timeout: Duration) -> ReadTimer {
        ReadTimer {
            timeout: Some(timeout),
            sleep: None,
            armed: false,
        }
    }

    /// A read found nothing: whether the upstream has now been silent for too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = self.timeout else {
            return false;
        };
        if !self.armed {
            let deadline = tokio::time::Instant::now() + timeout;
            match &mut self.sleep {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        self.sleep
            .as_mut()
            .is_some_and(|s| std::future::Future::poll(s.as_mut(), cx).is_ready())
    }

    /// A read brought something (or the end).
    fn progress(&mut self) {
        self.armed = false;
    }
}

fn finish(tap: &mut Option<Box<Tap>>) {
    if let Some(t) = tap.take() {
        t.finish();
    }
}

/// Whether an error (or anything in its source chain) is a [`BodyTooLarge`].
pub fn is_body_too_large(err: &(dyn std::error::Error + 'static)) -> Option<u64> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<BodyTooLarge>() {
            return Some(t.limit);
        }
        cur = e.source();
    }
    None
}
