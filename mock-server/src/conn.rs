//! The header timeout, kept per connection rather than per request.
//!
//! hyper's `header_read_timeout` arms a timer for every request a keep-alive connection reads: a
//! boxed sleep, registered in tokio's timer wheel (behind a lock all workers share) and removed
//! again once the head has arrived. On a status poll that was 7 % of the mock's instructions.
//! Here a connection records when it last became idle instead (two atomic stores per request),
//! and one sleep per connection, re-armed at most once per timeout, closes it once it has waited
//! longer than the timeout for a request head: the same rule, slowloris included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::clock::Stopwatch;

/// `idle_since_ms` while a request is being answered (its response body included).
const BUSY: u64 = u64::MAX;

/// When a connection last started waiting for a request head.
#[derive(Debug)]
pub(crate) struct Watch {
    opened: Stopwatch,
    /// Milliseconds after `opened` when the connection became idle, or [`BUSY`].
    idle_since_ms: AtomicU64,
}

impl Watch {
    /// A connection just accepted: waiting for its first head.
    pub(crate) fn new() -> Self {
        Self {
            opened: Stopwatch::start(),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    /// A request head has arrived: no timeout until its answer is written.
    pub(crate) fn busy(&self) {
        self.idle_since_ms.store(BUSY, Ordering::Relaxed);
    }

    /// The answer is written: the next head is due within the timeout.
    pub(crate) fn idle(&self) {
        self.idle_since_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(BUSY - 1)
    }

    /// Completes once the connection has waited `limit` or longer for a request head.
    pub(crate) async fn expired(&self, limit: Duration) {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(BUSY - 1).max(1);
        loop {
            let since = self.idle_since_ms.load(Ordering::Relaxed);
            let wait_ms = if since == BUSY {
                limit_ms
            } else {
                let waited = self.now_ms().saturating_sub(since);
                if waited >= limit_ms {
                    return;
                }
                limit_ms - waited
            };
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
    }
}

/// A streamed response body that marks its connection idle when hyper is done with it (written
/// to the end, or dropped with the connection): until then the connection is busy, however long a
/// download takes.
pub(crate) struct IdleWhenDone<B> {
    body: B,
    connection: std::sync::Arc<crate::http::Connection>,
}

impl<B> IdleWhenDone<B> {
    pub(crate) fn new(body: B, connection: std::sync::Arc<crate::http::Connection>) -> Self {
        Self { body, connection }
    }
}

impl<B> Drop for IdleWhenDone<B> {
    fn drop(&mut self) {
        self.connection.watch.idle();
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for IdleWhenDone<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
