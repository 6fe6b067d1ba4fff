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
    /// Requests started: a reader of the socket sees a new head begin when this moves.
    n_requests: AtomicU64,
}

impl Watch {
    /// A connection just accepted: waiting for its first head.
    pub(crate) fn new() -> Self {
        Self {
            opened: Stopwatch::start(),
            idle_since_ms: AtomicU64::new(0),
            n_requests: AtomicU64::new(0),
        }
    }

    /// A request head has arrived: no timeout until its answer is written.
    pub(crate) fn busy(&self) {
        self.idle_since_ms.store(BUSY, Ordering::Relaxed);
        self.n_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests started on this connection so far.
    fn n_requests(&self) -> u64 {
        self.n_requests.load(Ordering::Relaxed)
    }

    /// Whether a request is being answered (bytes read now are its body, not a head).
    pub(crate) fn is_busy(&self) -> bool {
        self.idle_since_ms.load(Ordering::Relaxed) == BUSY
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

/// The largest request head (request line and headers) the mock reads. hyper's only limit is its
/// read buffer (~400 KiB), which also paces upload bodies: lowering it to 64 KiB cost the 1 GB
/// upload 40 % (BENCHMARKS.md), so heads are counted here instead, as the bytes read while the
/// connection waits for a head. With `--max-connections`, this bounds what unfinished heads can
/// hold (RELIABILITY.md).
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What a client whose head passes [`MAX_HEAD_BYTES`] gets before the connection closes: the head
/// is not parsed, so there is no provider to shape it for.
const HEAD_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\ncontent-length: 40\r\nconnection: close\r\n\r\nrequest head larger than 65536 bytes\r\n\r\n";

/// The same for a request line that alone passes the cap.
const URI_TOO_LONG: &[u8] = b"HTTP/1.1 414 URI Too Long\r\ncontent-type: text/plain\r\ncontent-length: 40\r\nconnection: close\r\n\r\nrequest line longer than 65536 bytes\r\n\r\n";

/// Whether `read` opens like a request line: a method token in capitals, then a space.
fn starts_like_a_request(read: &[u8]) -> bool {
    let method_len = read
        .iter()
        .take(16)
        .take_while(|byte| byte.is_ascii_uppercase())
        .count();
    method_len > 0 && (read.len() == method_len || read.get(method_len) == Some(&b' '))
}

/// A connection's socket, counting the bytes of each request head it reads: the bytes read while
/// the connection waits for a head, up to the head's blank line (bytes after it are the body or a
/// pipelined request, which hyper reads ahead and which are not this head's).
#[derive(Debug)]
pub(crate) struct HeadCapped {
    stream: tokio::net::TcpStream,
    connection: std::sync::Arc<crate::http::Connection>,
    /// The head being read: bytes so far, whether its blank line has been seen, the last three
    /// bytes read (a blank line may straddle two reads), and which request it belongs to.
    head_bytes: usize,
    head_done: bool,
    /// Whether the request line has ended (a longer one is 414, not 431).
    line_done: bool,
    tail: Vec<u8>,
    n_requests: u64,
}

impl HeadCapped {
    pub(crate) fn new(
        stream: tokio::net::TcpStream,
        connection: std::sync::Arc<crate::http::Connection>,
    ) -> Self {
        Self {
            stream,
            connection,
            head_bytes: 0,
            head_done: false,
            line_done: false,
            tail: Vec::with_capacity(6),
            n_requests: 0,
        }
    }

    /// Counts `read` against the current head; false once the head is over [`MAX_HEAD_BYTES`].
    fn count(&mut self, read: &[u8]) -> bool {
        let watch = &self.connection.watch;
        let n_requests = watch.n_requests();
        if n_requests != self.n_requests {
            // hyper has taken a head since the last read: the next one starts from zero.
            self.n_requests = n_requests;
            self.head_bytes = 0;
            self.head_done = false;
            self.line_done = false;
            self.tail.clear();
        }
        if self.head_done || watch.is_busy() || read.is_empty() {
            return true;
        }
        const BLANK_LINE: &[u8] = b"\r\n\r\n";
        if self.head_bytes == 0 && self.tail.is_empty() {
            if !starts_like_a_request(read) {
                // Not a head: the rest of a body hyper discards after an early answer (an upload
                // refused before it was read), which is bounded by the body limits, not this one.
                self.head_done = true;
                return true;
            }
            if read.len() <= MAX_HEAD_BYTES && read.ends_with(BLANK_LINE) {
                // A whole head in one read (a poll, nearly always): under the cap whatever it
                // holds, so there is no need to find where its first blank line is.
                self.head_bytes = read.len();
                self.line_done = true;
                self.head_done = true;
                return true;
            }
        }
        if !self.line_done {
            self.line_done = memchr::memchr(b'\n', read).is_some();
        }
        /// Built once: `memmem::find` builds a searcher on every call, which on a poll's
        /// hundred-byte head cost more than the search.
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(BLANK_LINE));
        // The last bytes of earlier reads, then this read's first: a blank line across the two.
        let carried = self.tail.len();
        self.tail.extend_from_slice(&read[..read.len().min(3)]);
        let end = FINDER
            .find(&self.tail)
            .map(|at| at + BLANK_LINE.len() - carried)
            .or_else(|| FINDER.find(read).map(|at| at + BLANK_LINE.len()));
        match end {
            Some(end) => {
                self.head_bytes += end;
                self.head_done = true;
            }
            None => {
                self.head_bytes += read.len();
                // Keep the last three bytes of everything read so far.
                let rest = &read[read.len().min(3)..];
                self.tail
                    .extend_from_slice(&rest[rest.len().saturating_sub(3)..]);
                let excess = self.tail.len().saturating_sub(3);
                self.tail.drain(..excess);
            }
        }
        self.head_bytes <= MAX_HEAD_BYTES
    }
}

impl tokio::io::AsyncRead for HeadCapped {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        std::task::ready!(std::pin::Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if !this.count(&buf.filled()[before..]) {
            // Best effort: a short answer fits the socket's buffer; hyper then drops the
            // connection on the error.
            let answer = if this.line_done {
                HEAD_TOO_LARGE
            } else {
                URI_TOO_LONG
            };
            let _ = this.stream.try_write(answer);
            return std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head larger than MAX_HEAD_BYTES",
            )));
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for HeadCapped {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
