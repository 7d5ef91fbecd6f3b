//! Per-upstream in-flight limits: at most `max_in_flight` requests at once, a bounded and
//! time-limited queue behind them, and priorities that decide who waits and who is shed.
//!
//! The state is one small `std::sync::Mutex` (in-flight count and the waiters, ordered by
//! priority then arrival) held only for O(log n) bookkeeping, never across an await. A slot is
//! handed from a finishing request straight to the next waiter through a oneshot channel
//! without ever being returned to the pool, so a newcomer cannot overtake the queue and the
//! in-flight count stays exact. tokio's `Semaphore` is FIFO only; priorities and preemption
//! need this structure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::SpecError;

/// How much a request matters when the upstream is saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Priority {
    /// Health checks, control traffic: shed last, may displace the others from a full queue.
    Critical,
    Normal,
    /// Batch and prefetch traffic: shed first.
    Low,
}

impl Priority {
    /// Lower rank waits less: the queue is ordered by (rank, arrival).
    fn rank(self) -> u8 {
        match self {
            Priority::Critical => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }
}

/// Why a request was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ShedReason {
    /// All slots busy and the queue full of requests at least as important.
    QueueFull,
    /// Waited `queue_timeout` without a slot coming free.
    QueueTimeout,
    /// Was waiting, and a more important request took its place in the full queue.
    Preempted,
}

impl ShedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ShedReason::QueueFull => "queue_full",
            ShedReason::QueueTimeout => "queue_timeout",
            ShedReason::Preempted => "preempted",
        }
    }
}

/// A refused request: answer 503 with `Retry-After: retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("upstream saturated ({}); retry after {retry_after:?}", reason.as_str())]
pub struct Shed {
    pub reason: ShedReason,
    pub retry_after: Duration,
}

/// Snapshot of one limiter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConcurrencyCounters {
    /// Requests holding a slot now.
    pub in_flight: u64,
    /// Requests waiting now.
    pub queued: u64,
    /// Slots granted since start (immediately or after waiting).
    pub admitted: u64,
    /// Requests that had to wait since start.
    pub waited: u64,
    pub shed_queue_full: u64,
    pub shed_queue_timeout: u64,
    pub shed_preempted: u64,
}

/// What a finishing request hands to a waiter.
#[derive(Debug)]
enum Grant {
    Slot,
    Preempted,
}

#[derive(Default)]
struct State {
    in_flight: usize,
    /// Keyed by (priority rank, arrival number): the first key is the most important, oldest
    /// waiter; the last is the least important, newest.
    waiters: BTreeMap<(u8, u64), oneshot::Sender<Grant>>,
    arrivals: u64,
}

struct Inner {
    max_in_flight: usize,
    queue_len: usize,
    queue_timeout: Duration,
    retry_after: Duration,
    state: Mutex<State>,
    admitted: AtomicU64,
    waited: AtomicU64,
    shed: [AtomicU64; 3],
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, and the state is consistent between
        // statements anyway, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shed(&self, reason: ShedReason) -> Shed {
        let index = match reason {
            ShedReason::QueueFull => 0,
            ShedReason::QueueTimeout => 1,
            ShedReason::Preempted => 2,
        };
        self.shed[index].fetch_add(1, Ordering::Relaxed);
        Shed {
            reason,
            retry_after: self.retry_after,
        }
    }

    /// Gives a slot back: to the most important, oldest waiter still listening, else to the
    /// pool.
    fn release(&self) {
        let mut state = self.lock();
        while let Some((_, waiter)) = state.waiters.pop_first() {
            if waiter.send(Grant::Slot).is_ok() {
                self.admitted.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        state.in_flight -= 1;
    }
}

/// One upstream's limiter; clones share it.
#[derive(Clone)]
pub struct ConcurrencyLimit {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConcurrencyLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("max_in_flight", &self.inner.max_in_flight)
            .field("queue_len", &self.inner.queue_len)
            .field("queue_timeout", &self.inner.queue_timeout)
            .field("counters", &self.counters())
            .finish()
    }
}

impl ConcurrencyLimit {
    /// `max_in_flight` slots; up to `queue_len` requests wait at most `queue_timeout` each
    /// (`queue_len` 0: no waiting, shed at once). Shed requests are told to retry after 1 s;
    /// see [`ConcurrencyLimit::with_retry_after`].
    pub fn new(
        max_in_flight: usize,
        queue_len: usize,
        queue_timeout: Duration,
    ) -> Result<Self, SpecError> {
        if max_in_flight == 0 {
            return Err(SpecError::new(
                "concurrency.max_in_flight",
                "must be at least 1; to stop traffic to an upstream, route away from it instead",
            ));
        }
        Ok(ConcurrencyLimit {
            inner: Arc::new(Inner {
                max_in_flight,
                queue_len,
                queue_timeout,
                retry_after: Duration::from_secs(1),
                state: Mutex::new(State::default()),
                admitted: AtomicU64::new(0),
                waited: AtomicU64::new(0),
                shed: Default::default(),
            }),
        })
    }

    /// Sets the `retry_after` carried by every [`Shed`]. Call before sharing the limiter.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.retry_after = retry_after,
            None => panic!("with_retry_after called on a shared ConcurrencyLimit"),
        }
        self
    }

    /// Waits for a slot. The returned [`Permit`] gives the slot back when dropped, so keep it
    /// until the response body is finished.
    ///
    /// Cancellation-safe: dropping the future while it waits removes it from the queue, and a
    /// slot granted to it in the meantime is passed on to the next waiter.
    pub async fn acquire(&self, priority: Priority) -> Result<Permit, Shed> {
        let inner = &self.inner;
        let rank = priority.rank();
        let (key, receiver) = {
            let mut state = inner.lock();
            if state.in_flight < inner.max_in_flight {
                // Slots are handed straight to waiters, so a free slot means nobody waits.
                state.in_flight += 1;
                drop(state);
                inner.admitted.fetch_add(1, Ordering::Relaxed);
                return Ok(Permit {
                    inner: Arc::clone(inner),
                });
            }
            if state.waiters.len() >= inner.queue_len {
                match state.waiters.last_key_value() {
                    Some((&last, _)) if last.0 > rank => {
                        let displaced = state.waiters.remove(&last).expect("just seen");
                        // The displaced waiter may already be gone; its future counted nothing.
                        let _ = displaced.send(Grant::Preempted);
                        inner.shed(ShedReason::Preempted);
                    }
                    _ => return Err(inner.shed(ShedReason::QueueFull)),
                }
            }
            state.arrivals += 1;
            let key = (rank, state.arrivals);
            let (sender, receiver) = oneshot::channel();
            state.waiters.insert(key, sender);
            (key, receiver)
        };
        inner.waited.fetch_add(1, Ordering::Relaxed);
        let mut waiting = Waiting {
            inner,
            key,
            receiver,
            settled: false,
        };
        let granted = tokio::time::timeout(inner.queue_timeout, &mut waiting.receiver).await;
        waiting.settled = true;
        let grant = match granted {
            Ok(Ok(grant)) => grant,
            // Senders are only dropped after sending, or by the timeout path below: while
            // this future waits it still owns its queue entry.
            Ok(Err(_)) => return Err(inner.shed(ShedReason::QueueTimeout)),
            Err(_elapsed) => {
                let mut state = inner.lock();
                if state.waiters.remove(&key).is_some() {
                    drop(state);
                    return Err(inner.shed(ShedReason::QueueTimeout));
                }
                drop(state);
                // Someone decided about us between the timer firing and the lock; grants are
                // sent under the lock, so the answer is already in the channel.
                match waiting.receiver.try_recv() {
                    Ok(grant) => grant,
                    Err(_) => return Err(inner.shed(ShedReason::QueueTimeout)),
                }
            }
        };
        match grant {
            Grant::Slot => Ok(Permit {
                inner: Arc::clone(inner),
            }),
            Grant::Preempted => Err(Shed {
                reason: ShedReason::Preempted,
                retry_after: inner.retry_after,
            }),
        }
    }

    /// Takes a slot only if one is free right now and nobody waits.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut state = self.inner.lock();
        if state.in_flight < self.inner.max_in_flight {
            state.in_flight += 1;
            drop(state);
            self.inner.admitted.fetch_add(1, Ordering::Relaxed);
            Some(Permit {
                inner: Arc::clone(&self.inner),
            })
        } else {
            None
        }
    }

    pub fn counters(&self) -> ConcurrencyCounters {
        let (in_flight, queued) = {
            let state = self.inner.lock();
            (state.in_flight as u64, state.waiters.len() as u64)
        };
        let shed = |i: usize| self.inner.shed[i].load(Ordering::Relaxed);
        ConcurrencyCounters {
            in_flight,
            queued,
            admitted: self.inner.admitted.load(Ordering::Relaxed),
            waited: self.inner.waited.load(Ordering::Relaxed),
            shed_queue_full: shed(0),
            shed_queue_timeout: shed(1),
            shed_preempted: shed(2),
        }
    }
}

/// A waiter's queue entry, cleaned up if the `acquire` future is dropped.
struct Waiting<'a> {
    inner: &'a Arc<Inner>,
    key: (u8, u64),
    receiver: oneshot::Receiver<Grant>,
    settled: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let removed = self.inner.lock().waiters.remove(&self.key).is_some();
        if !removed {
            // A slot was sent to a waiter that is gone: pass it on rather than leak it.
            if let Ok(Grant::Slot) = self.receiver.try_recv() {
                self.inner.release();
            }
        }
    }
}

/// A held slot; dropping it frees the slot for the next waiter.
#[must_use = "the slot is released as soon as the permit is dropped"]
pub struct Permit {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.inner.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::task::JoinHandle;

    fn spawn_acquire(
        limit: &ConcurrencyLimit,
        priority: Priority,
    ) -> JoinHandle<Result<Permit, Shed>> {
        let limit = limit.clone();
        tokio::spawn(async move { limit.acquire(priority).await })
    }

    /// Lets spawned tasks run until they block (paused time: no timer advances).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn enforces_max_in_flight_and_releases_on_drop() {
        let limit = ConcurrencyLimit::new(2, 0, Duration::from_secs(1)).unwrap();
        let a = limit.acquire(Priority::Normal).await.unwrap();
        let _b = limit.acquire(Priority::Normal).await.unwrap();
        let shed = limit.acquire(Priority::Critical).await.unwrap_err();
        assert_eq!(shed.reason, ShedReason::QueueFull);
        assert_eq!(shed.retry_after, Duration::from_secs(1));
        assert!(limit.try_acquire().is_none());
        drop(a);
        assert_eq!(limit.counters().in_flight, 1);
        let _c = limit.acquire(Priority::Low).await.unwrap();
        let c = limit.counters();
        assert_eq!((c.in_flight, c.admitted, c.shed_queue_full), (2, 3, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn queued_request_times_out() {
        let limit = ConcurrencyLimit::new(1, 4, Duration::from_millis(200))
            .unwrap()
            .with_retry_after(Duration::from_secs(3));
        let _held = limit.acquire(Priority::Normal).await.unwrap();
        let start = tokio::time::Instant::now();
        let shed = limit.acquire(Priority::Normal).await.unwrap_err();
        assert_eq!(shed.reason, ShedReason::QueueTimeout);
        assert_eq!(shed.retry_after, Duration::from_secs(3));
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        let c = limit.counters();
        assert_eq!((c.queued, c.shed_queue_timeout, c.in_flight), (0, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn queued_request_gets_slot_when_one_frees() {
        let limit = ConcurrencyLimit::new(1, 4, Duration::from_secs(5)).unwrap();
        let held = limit.acquire(Priority::Normal).await.unwrap();
        let waiter = spawn_acquire(&limit, Priority::Normal);
        settle().await;
        assert_eq!(limit.counters().queued, 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
        let permit = waiter.await.unwrap().unwrap();
        let c = limit.counters();
        assert_eq!((c.in_flight, c.queued, c.waited, c.admitted), (1, 0, 1, 2));
        drop(permit);
        assert_eq!(limit.counters().in_flight, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn full_queue_sheds_equal_or_lower_priority() {
        let limit = ConcurrencyLimit::new(1, 2, Duration::from_secs(5)).unwrap();
        let _held = limit.acquire(Priority::Normal).await.unwrap();
        let _w1 = spawn_acquire(&limit, Priority::Normal);
        let _w2 = spawn_acquire(&limit, Priority::Normal);
        settle().await;
        for p in [Priority::Normal, Priority::Low] {
            assert_eq!(
                limit.acquire(p).await.unwrap_err().reason,
                ShedReason::QueueFull
            );
        }
        assert_eq!(limit.counters().shed_queue_full, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn critical_displaces_newest_lowest_priority_waiter() {
        let limit = ConcurrencyLimit::new(1, 3, Duration::from_secs(5)).unwrap();
        let held = limit.acquire(Priority::Normal).await.unwrap();
        let low_old = spawn_acquire(&limit, Priority::Low);
        settle().await;
        let normal = spawn_acquire(&limit, Priority::Normal);
        settle().await;
        let low_new = spawn_acquire(&limit, Priority::Low);
        settle().await;
        let critical = spawn_acquire(&limit, Priority::Critical);
        settle().await;
        let shed = low_new.await.unwrap().unwrap_err();
        assert_eq!(shed.reason, ShedReason::Preempted);
        assert_eq!(limit.counters().shed_preempted, 1);
        // Normal cannot displace Normal, but displaces the remaining Low.
        let normal2 = spawn_acquire(&limit, Priority::Normal);
        settle().await;
        assert_eq!(
            low_old.await.unwrap().unwrap_err().reason,
            ShedReason::Preempted
        );
        // Hand-off order: critical first, then the normals in arrival order.
        drop(held);
        let p1 = critical.await.unwrap().unwrap();
        assert!(!normal.is_finished());
        drop(p1);
        let p2 = normal.await.unwrap().unwrap();
        drop(p2);
        let p3 = normal2.await.unwrap().unwrap();
        drop(p3);
        let c = limit.counters();
        assert_eq!((c.in_flight, c.queued, c.shed_preempted), (0, 0, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn hands_off_fifo_within_a_priority() {
        let limit = ConcurrencyLimit::new(1, 16, Duration::from_secs(60)).unwrap();
        let held = limit.acquire(Priority::Normal).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let limit = limit.clone();
            let order = Arc::clone(&order);
            let priority = if i % 2 == 0 {
                Priority::Normal
            } else {
                Priority::Low
            };
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire(priority).await.unwrap();
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }));
            settle().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 2, 4, 6, 1, 3, 5, 7]);
        assert_eq!(limit.counters().in_flight, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_waiter_leaves_no_leak() {
        let limit = ConcurrencyLimit::new(1, 4, Duration::from_secs(60)).unwrap();
        let held = limit.acquire(Priority::Normal).await.unwrap();
        // Dropped while queued.
        let cancelled = spawn_acquire(&limit, Priority::Normal);
        settle().await;
        assert_eq!(limit.counters().queued, 1);
        cancelled.abort();
        settle().await;
        assert_eq!(limit.counters().queued, 0);

        // Granted a slot, then dropped before it ran: the slot must move on.
        let mut granted_then_dropped = Box::pin(limit.acquire(Priority::Critical));
        assert!(futures_poll_once(granted_then_dropped.as_mut())
            .await
            .is_none());
        let next = spawn_acquire(&limit, Priority::Normal);
        settle().await;
        drop(held); // grants to the critical waiter, which never runs again
        drop(granted_then_dropped);
        let permit = next.await.unwrap().unwrap();
        assert_eq!(limit.counters().in_flight, 1);
        drop(permit);
        let c = limit.counters();
        assert_eq!((c.in_flight, c.queued), (0, 0));
    }

    /// Polls a future once; `None` if it is pending.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stress_never_exceeds_limit() {
        const MAX: usize = 4;
        let limit = ConcurrencyLimit::new(MAX, 16, Duration::from_millis(50)).unwrap();
        let current = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..400u64 {
            let limit = limit.clone();
            let current = Arc::clone(&current);
            let peak = Arc::clone(&peak);
            tasks.push(tokio::spawn(async move {
                let priority =
                    [Priority::Critical, Priority::Normal, Priority::Low][i as usize % 3];
                let acquire = limit.acquire(priority);
                // Every fifth caller gives up early, exercising cancellation.
                let result = if i % 5 == 0 {
                    match tokio::time::timeout(Duration::from_millis(3), acquire).await {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                } else {
                    acquire.await
                };
                if let Ok(permit) = result {
                    let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    assert!(now <= MAX, "{now} in flight");
                    tokio::time::sleep(Duration::from_micros(200 + (i % 7) * 300)).await;
                    current.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let c = limit.counters();
        assert_eq!((c.in_flight, c.queued), (0, 0), "{c:?}");
        assert_eq!(peak.load(Ordering::SeqCst), MAX);
        assert!(c.admitted > 0);
    }
}
