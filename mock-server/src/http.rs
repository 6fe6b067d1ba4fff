//! The hyper glue: accept loop, graceful shutdown, dispatch by path, faults on the wire, and
//! body helpers. What an upload or a poll goes through is `flow.rs`'s.
//!
//! Dispatch is a plain `match` on (method, path segments), as in hyper's `echo` example: the
//! routes are few and fixed by the providers, and a match shows every one of them on one screen.
//! The reserved prefixes are matched first (`/__admin/`, then `/cdn/`), then each provider's
//! `route` answers everything under its own prefix, 404s included, in its own error shape.
//!
//! Every request gets a well-formed response; handlers return `Response`, never `Result`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::clock::Stopwatch;
use crate::journal;
use crate::scenario::Action;
use crate::store::{DEFAULT_SESSION, SessionId};
use crate::{admin, cdn, conn, provider};

/// Every response body: bytes in memory (nearly every answer) or a stream (a file from disk, a
/// dribbling or truncated fault). An enum rather than a `BoxBody` for all: boxing the in-memory
/// answers cost an allocation and dynamic calls on every poll.
#[derive(Debug)]
pub(crate) enum Body {
    /// The whole body, until hyper takes it.
    Full(Option<Bytes>),
    /// Anything streamed.
    Stream(BoxBody<Bytes, std::io::Error>),
}

impl Body {
    /// A streamed body.
    pub(crate) fn stream<B>(body: B) -> Self
    where
        B: hyper::body::Body<Data = Bytes, Error = std::io::Error> + Send + Sync + 'static,
    {
        Self::Stream(body.boxed())
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Body::Full(bytes) => std::task::Poll::Ready(
                bytes
                    .take()
                    .filter(|bytes| !bytes.is_empty())
                    .map(|bytes| Ok(hyper::body::Frame::data(bytes))),
            ),
            Body::Stream(body) => std::pin::Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Body::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Body::Full(bytes) => http_body::SizeHint::with_exact(
                bytes.as_ref().map_or(0, |bytes| bytes.len() as u64),
            ),
            Body::Stream(body) => body.size_hint(),
        }
    }
}

/// A body from bytes in memory.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Body::Full(Some(bytes.into()))
}

/// A JSON response with the given status.
/// A JSON response from bytes already serialized.
pub(crate) fn raw_json(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    // No `reserve`: the first insert makes room for six headers, which a provider's own (rate
    // limits, `Retry-After`) and `Date` fit in; reserving first cost a poll about 200
    // instructions.
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut response = Response::new(full(bytes));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot serialize a response");
            let mut response = Response::new(full(r#"{"error":"internal error"}"#));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

/// Per-request facts handlers need besides the [`App`].
#[derive(Debug)]
pub(crate) struct RequestCtx<'a> {
    /// `--public-url`, which wins over the request's `Host`.
    public_url: Option<&'a str>,
    /// The `Host` the client sent (a clone shares the request's bytes), checked only when a link
    /// is written: [`RequestCtx::host`].
    host: Option<HeaderValue>,
    /// `X-API-Key`, Fansly's credential, as sent.
    pub(crate) api_key: Option<HeaderValue>,
    /// `Authorization`, OnlyFans' bearer token, as sent.
    pub(crate) authorization: Option<HeaderValue>,
    /// The address that accepted the connection, for a request without a usable `Host`.
    local: SocketAddr,
    /// The `X-Mock-Session` the request names, or why it is not a valid name.
    pub(crate) session: Result<SessionId, String>,
    /// The server clock when the request arrived (its journal time).
    pub(crate) server_now: std::time::SystemTime,
    /// What the handler noted for the journal ([`RequestCtx::finish`]): kept here rather than in
    /// the response's extensions, which cost two allocations on every poll.
    note: std::sync::Mutex<journal::Note>,
    /// The time on the request's session clock, in Unix milliseconds, once a provider route has
    /// read it (0 before): the answer's `Date` says the same time as its body.
    now_ms: std::sync::atomic::AtomicU64,
}

/// The header that gives a test its own jobs, clock, scenario and journal.
pub(crate) static SESSION_HEADER: header::HeaderName =
    header::HeaderName::from_static("x-mock-session");

/// The default session's name, allocated once: most requests name no session.
static DEFAULT_SESSION_ID: std::sync::LazyLock<SessionId> =
    std::sync::LazyLock::new(|| SessionId::from(DEFAULT_SESSION));

/// The query parameter that carries a session in the URLs the mock writes (OnlyFans
/// `polling_url`, signed CDN links) for sessions other than the default. A client follows those
/// URLs without adding headers, so a load balancer in front of several mocks can only keep a
/// session on its own mock if the URL itself names it (README, "A fleet").
pub(crate) const SESSION_PARAM: &str = "mock_session";

/// The session a request names, by `X-Mock-Session` or else by the `mock_session` query
/// parameter of a URL the mock wrote: 1 to 128 of `A-Z a-z 0-9 . _ : -`, or the default session.
pub(crate) fn session_of<B>(req: &Request<B>) -> Result<SessionId, String> {
    session_named(req.headers().get(&SESSION_HEADER), req.uri().query())
}

/// [`session_of`] from the `X-Mock-Session` value, if any, and the query.
fn session_named(header: Option<&HeaderValue>, query: Option<&str>) -> Result<SessionId, String> {
    let from_query = || {
        form_urlencoded::parse(query?.as_bytes())
            .find(|(name, _)| name == SESSION_PARAM)
            .map(|(_, value)| value.into_owned())
    };
    match header {
        None => match from_query() {
            None => Ok(Arc::clone(&DEFAULT_SESSION_ID)),
            Some(name) => checked_session(name.as_bytes()),
        },
        Some(value) => checked_session(value.as_bytes()),
    }
}

/// The request headers the mock itself reads, picked out in the one pass over the headers that
/// copies them for the journal: looked up one by one, each lookup hashed its name (about 150
/// instructions), three per poll.
#[derive(Debug, Default)]
pub(crate) struct Picked {
    host: Option<HeaderValue>,
    session: Option<HeaderValue>,
    api_key: Option<HeaderValue>,
    authorization: Option<HeaderValue>,
}

impl Picked {
    /// Keeps `value` if `name` is one the mock reads and none of that name came before: the first
    /// one, as `HeaderMap::get` finds it.
    pub(crate) fn offer(&mut self, name: &header::HeaderName, value: &HeaderValue) {
        let slot = match name.as_str() {
            "host" => &mut self.host,
            "x-mock-session" => &mut self.session,
            "x-api-key" => &mut self.api_key,
            "authorization" => &mut self.authorization,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value.clone());
        }
    }
}

/// `&mock_session=NAME` for a session other than the default, empty for the default.
pub(crate) fn session_suffix(session: &str) -> String {
    if session == DEFAULT_SESSION {
        String::new()
    } else {
        format!("&{SESSION_PARAM}={session}")
    }
}

/// A session name from the header or the query parameter, if it is one.
fn checked_session(name: &[u8]) -> Result<SessionId, String> {
    let is_valid = !name.is_empty()
        && name.len() <= 128
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b));
    match std::str::from_utf8(name) {
        Ok(name) if is_valid => Ok(SessionId::from(name)),
        _ => Err(format!(
            "X-Mock-Session must be 1 to 128 characters of A-Z a-z 0-9 . _ : -, not {:?}",
            String::from_utf8_lossy(name)
        )),
    }
}

impl<'a> RequestCtx<'a> {
    fn new(
        app: &'a App,
        picked: Picked,
        local: SocketAddr,
        session: Result<SessionId, String>,
        server_now: std::time::SystemTime,
    ) -> Self {
        Self {
            public_url: app
                .public_url
                .as_deref()
                .map(|url| url.trim_end_matches('/')),
            host: picked.host,
            api_key: picked.api_key,
            authorization: picked.authorization,
            local,
            session,
            server_now,
            note: std::sync::Mutex::default(),
            now_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Records the time the request's answer is about, on its session's clock (see `Date`).
    pub(crate) fn set_now(&self, now: std::time::SystemTime) {
        let ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        self.now_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The time [`RequestCtx::set_now`] recorded, if a route did.
    fn now(&self) -> Option<std::time::SystemTime> {
        match self.now_ms.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            ms => Some(std::time::UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// Notes `note` for the journal and attaches a connection-level fault (anything but
    /// `Respond`, which providers render themselves) to `response`.
    pub(crate) fn finish(
        &self,
        mut response: Response<Body>,
        fault: Option<Action>,
        note: journal::Note,
    ) -> Response<Body> {
        if let Some(action) = fault.filter(|action| action.http_error().is_none()) {
            response.extensions_mut().insert(Injected(action));
        }
        self.set_note(note);
        response
    }

    /// A poll answered by a `respond` fault: journaled with its job and as the fault it was.
    pub(crate) fn refused(&self, response: Response<Body>, note: journal::Note) -> Response<Body> {
        self.set_note(journal::Note {
            fault: Some("respond"),
            ..note
        });
        response
    }

    fn set_note(&self, note: journal::Note) {
        *self
            .note
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = note;
    }

    /// The note, once the handler is done.
    fn take_note(&self) -> journal::Note {
        std::mem::take(
            &mut *self
                .note
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// `&mock_session=NAME` for URLs written in a session other than the default (empty
    /// otherwise), appended after a URL's own query: see [`SESSION_PARAM`].
    pub(crate) fn session_suffix(&self) -> String {
        self.session
            .as_deref()
            .map_or_else(|_| String::new(), session_suffix)
    }

    /// The `Host` the client sent, if it is fit for a URL.
    fn host(&self) -> Option<&HeaderValue> {
        self.host.as_ref().filter(|host| {
            !host.is_empty()
                && host
                    .as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(b))
        })
    }

    /// `scheme://host[:port]` for links that must come back to this server. Built on demand:
    /// a poll answered from a cached rendering never needs it.
    pub(crate) fn origin(&self) -> String {
        match (self.public_url, self.host()) {
            (Some(url), _) => url.to_owned(),
            (None, Some(host)) => format!("http://{}", String::from_utf8_lossy(host.as_bytes())),
            (None, None) => format!("http://{}", self.local),
        }
    }

    /// The address this request reached the mock on: its own listener.
    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Whether `candidate` is what [`RequestCtx::origin`] would build, without building it.
    ///
    /// A `Host` equal to the candidate's needs no check: the candidate came from `origin`, which
    /// only writes a `Host` fit for a URL.
    pub(crate) fn is_origin(&self, candidate: &str) -> bool {
        match (self.public_url, &self.host) {
            (Some(url), _) => candidate == url,
            (None, Some(host))
                if candidate
                    .strip_prefix("http://")
                    .is_some_and(|rest| rest.as_bytes() == host.as_bytes()) =>
            {
                true
            }
            (None, _) => candidate == self.origin(),
        }
    }
}

/// Accepts connections until `shutdown` turns true, then lets in-flight requests finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let permits = Arc::new(tokio::sync::Semaphore::new(app.connection.max_connections));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    // Over the cap: answer 503 with Retry-After and close, rather than queue.
                    let overloaded_app = Arc::clone(&app);
                    let service = service_fn(move |req: Request<Incoming>| {
                        let app = Arc::clone(&overloaded_app);
                        async move {
                            Ok::<_, Dropped>(crate::provider::overloaded(&app, req.uri().path()))
                        }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(app.connection.header_timeout)
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::spawn(connection);
                    continue;
                };
                let header_timeout = app.connection.header_timeout;
                let this = Arc::new(Connection {
                    app: Arc::clone(&app),
                    watch: conn::Watch::new(),
                    local,
                    peer,
                });
                let service = {
                    let this = Arc::clone(&this);
                    service_fn(move |req| answer(Arc::clone(&this), req))
                };
                // No hyper timer: `conn::Watch` keeps the header timeout for the connection.
                //
                // Half-closes allowed: a client may shut its sending side once its request is
                // out, and still gets its answer. Without this, hyper reads the socket for an EOF
                // after every request head, before the handler has dropped the request; the
                // request's URI and header values still share hyper's read buffer then, so that
                // read reserved a fresh 8 KiB buffer on every poll (about 450 instructions of
                // one). The cost: a client that leaves while its answer is delayed by a fault is
                // noticed when the answer is written, so the delay runs out and the request is
                // journaled, with the answer it was not there to read.
                let connection = hyper::server::conn::http1::Builder::new()
                    .half_close(true)
                    .serve_connection(
                        TokioIo::new(conn::HeadCapped::new(stream, Arc::clone(&this))),
                        service,
                    );
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    tokio::select! {
                        // In this order, not a random one (which costs a draw on every wake-up,
                        // that is every request): the connection is the side that is ever ready.
                        biased;
                        ended = connection => {
                            if let Err(err) = ended {
                                tracing::debug!(error = %err, "connection ended with an error");
                            }
                        }
                        () = this.watch.expired(header_timeout) => {
                            tracing::debug!(peer = %this.peer, "no request head within the header timeout; closed");
                        }
                    }
                    drop(permit);
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    // Event streams never end by themselves; graceful shutdown would wait out its grace period.
    app.events.close();
    if tokio::time::timeout(app.connection.grace_period, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests still running after the grace period; closing them");
    }
    // Everything answered is on disk before `shutdown` returns (or the process exits).
    if let Err(err) = app.store.sync().await {
        tracing::error!(error = %err, "state log could not be synced at shutdown");
    }
}

/// An upload larger than this closes its connection once answered (see [`answer_busy`]).
const BIG_BODY_BYTES: u64 = 64 * 1024;

/// One accepted connection: what each of its requests needs besides the request itself.
#[derive(Debug)]
pub(crate) struct Connection {
    app: Arc<App>,
    /// Whether it is answering or waiting for a head, and since when.
    pub(crate) watch: conn::Watch,
    /// The address that accepted it.
    local: SocketAddr,
    /// The client's address.
    peer: SocketAddr,
}

/// Handles one request, carries out its fault, and journals it (admin requests excepted).
async fn answer(this: Arc<Connection>, req: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    this.watch.busy();
    let response = answer_busy(&this, req).await?;
    Ok(response.map(|body| match body {
        // Busy until hyper is done with the body: a download may stream for minutes.
        Body::Stream(body) => Body::stream(conn::IdleWhenDone::new(body, this)),
        full @ Body::Full(_) => {
            this.watch.idle();
            full
        }
    }))
}

/// [`answer`] while the connection is marked busy.
async fn answer_busy(this: &Connection, req: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let (app, local, peer) = (&*this.app, this.local, this.peer);
    let stopwatch = Stopwatch::start();
    let journaled = !req.uri().path().starts_with("/__admin/");
    // One copy of the path and headers serves both dispatch and the journal, and one pass over
    // the headers picks out those the mock reads.
    let mut picked = Picked::default();
    let request = if journaled {
        journal::request_text(req.uri().path(), req.headers(), |name, value| {
            picked.offer(name, value);
        })
    } else {
        for (name, value) in req.headers() {
            picked.offer(name, value);
        }
        req.uri().path().to_owned()
    };
    let path_len = req.uri().path().len();
    let session = session_named(picked.session.take().as_ref(), req.uri().query());
    // One reading of the server clock per request: the journal's time and the provider's arrival.
    let server_now = app.clock.now();
    let arrived = journaled.then(|| (server_now, req.method().clone()));
    let ctx = RequestCtx::new(app, picked, local, session, server_now);
    let path = request.get(..path_len).unwrap_or_default();
    let method = req.method().clone();
    let mut response = match handle(app, &ctx, req, path, peer) {
        Routed::Ready(response) => response,
        Routed::Later(work) => work.await,
    };
    date_on_the_mocks_clock(
        &mut response,
        ctx.now().unwrap_or_else(|| app.clock.now()),
        app.clock.is_manual(),
    );
    let mut note = ctx.take_note();
    note.fault = note.fault.or_else(|| {
        response
            .extensions()
            .get::<Injected>()
            .map(|Injected(action)| action.name())
    });
    if note.parts.iter().map(|part| part.size).sum::<u64>() > BIG_BODY_BYTES {
        // hyper grows a connection's read buffer (up to ~400 KiB) while a large body streams in
        // and never shrinks it: a client pool that spreads uploads over its keep-alive
        // connections would leave every connection of a fleet holding one. Closing after a large
        // upload frees it, for the price of one reconnect per large upload.
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    let status = response.status().as_u16();
    // Only refusals carry one; a success is not looked up for it.
    let retry_after = (status >= 400)
        .then(|| response.headers().get(hyper::header::RETRY_AFTER))
        .flatten()
        .and_then(|value| value.to_str().ok()?.parse().ok());
    let answered = if response.extensions().get::<Injected>().is_some() {
        // Boxed: most answers carry no fault, and would otherwise carry room for one.
        Box::pin(inject(response)).await
    } else {
        Ok(response)
    };
    // One line per request: with `--log-format json` CI log tools filter on these fields.
    tracing::info!(
        %method,
        %path,
        status = if answered.is_ok() { status } else { 0 },
        session = ctx.session.as_deref().ok(),
        job = note.job_id.as_deref(),
        scenario = note.scenario.as_ref().map(|scenario| scenario.name.as_str()),
        fault = note.fault,
        duration_ms = stopwatch.elapsed_ms(),
        "request"
    );
    if let Some((at, method)) = arrived {
        // The request's own handle, moved into its entry rather than counted up again.
        let session = ctx.session.unwrap_or_else(|_| SessionId::from("invalid"));
        app.journal.record(journal::Entry {
            seq: 0,
            session,
            at,
            method,
            request,
            status: if answered.is_ok() { status } else { 0 },
            duration_ms: stopwatch.elapsed_ms(),
            note,
            repeat_of: None,
            retry_after,
        });
    }
    answered
}

/// Sets `Date` to `at`, the mock's time for this answer, where it differs from the wall clock's
/// second that hyper would write: a client that computes link expiry from `Date` must agree with
/// the body, which is on the mock's (or the session's) clock. RFC 9110 §6.6.1's format, cached per
/// thread for the second it names.
fn date_on_the_mocks_clock(
    response: &mut Response<Body>,
    at: std::time::SystemTime,
    is_manual: bool,
) {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    let second = |time: std::time::SystemTime| {
        time.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    };
    let at_second = second(at);
    if !is_manual {
        // The wall clock on purpose: it is what hyper writes when `Date` is left to it. (A
        // manual clock's reading is set whatever the wall says: it is the test's time.)
        #[allow(clippy::disallowed_methods)]
        let wall = std::time::SystemTime::now();
        if at_second == second(wall) {
            return;
        }
    }
    let value = LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((cached, value)) if *cached == at_second => value.clone(),
            _ => {
                let value = HeaderValue::from_str(&httpdate::fmt_http_date(at))
                    .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
                *last = Some((at_second, value.clone()));
                value
            }
        }
    });
    response.headers_mut().insert(header::DATE, value);
}

/// What a route gives back: the answer at once (a status poll, an error), or the work still to
/// do (an upload's body to read, a file to open), boxed. Most requests are polls, and without the
/// box the future of every request carried room for an upload's.
pub(crate) enum Routed<'a> {
    /// Answered without waiting on anything.
    Ready(Response<Body>),
    /// Answered once this completes.
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send + 'a>>),
}

impl<'a> Routed<'a> {
    /// Work that answers later.
    pub(crate) fn later(
        work: impl std::future::Future<Output = Response<Body>> + Send + 'a,
    ) -> Self {
        Self::Later(Box::pin(work))
    }
}

fn handle<'a>(
    app: &'a App,
    ctx: &'a RequestCtx<'a>,
    req: Request<Incoming>,
    path: &'a str,
    peer: SocketAddr,
) -> Routed<'a> {
    // Every route has fewer segments than this; a longer path is split into a `Vec`. Split by
    // bytes: a `char` pattern sets up a memchr search per segment, and a char set decodes every
    // character, each several times the cost on segments this short. A `/` byte is never inside
    // a multi-byte character, so every cut is at a character boundary.
    let trimmed = path.trim_start_matches('/');
    let mut split = [""; 12];
    let long: Vec<&str>;
    let segments: &[&'a str] = match split_into(trimmed, &mut split) {
        Some(n_segments) => &split[..n_segments],
        None => {
            long = trimmed.split('/').collect();
            &long
        }
    };
    match segments {
        ["__admin", rest @ ..] => {
            let presented = header_text(&req, header::AUTHORIZATION);
            // The page and its event stream may carry the token in the query (see `admin`).
            let in_query = (req.method() == Method::GET && matches!(rest, ["ui"] | ["events"]))
                .then(|| admin::query_token(req.uri().query()))
                .flatten();
            match admin::refusal(
                app.admin_token.as_deref(),
                peer,
                presented,
                in_query.as_deref(),
            ) {
                None => {
                    let rest = rest.to_vec();
                    Routed::later(async move { admin::handle(app, req, &rest).await })
                }
                Some(refused) => Routed::Ready(refused),
            }
        }
        ["cdn", rest @ ..] if req.method() == Method::GET || req.method() == Method::HEAD => {
            let rest = rest.to_vec();
            Routed::later(async move { cdn::serve(app, &req, &rest).await })
        }
        ["api", "fansly", ..] if is_proxied(app, provider::Provider::Fansly) => Routed::later(
            crate::record::forward(app, ctx, req, provider::Provider::Fansly),
        ),
        ["api", "fansly", rest @ ..] => provider::fansly::route(app, ctx, req, rest),
        ["api", ..] if is_proxied(app, provider::Provider::OnlyFans) => Routed::later(
            crate::record::forward(app, ctx, req, provider::Provider::OnlyFans),
        ),
        ["api", rest @ ..] => provider::onlyfans::route(app, ctx, req, rest),
        _ => Routed::Ready(json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": format!("no route for {} {path}", req.method())}),
        )),
    }
}

/// `path`'s `/`-separated segments, as `str::split` gives them, written into `slots`; how many,
/// or None when there are more than `slots` holds.
fn split_into<'p>(path: &'p str, slots: &mut [&'p str]) -> Option<usize> {
    let mut n_segments = 0;
    let mut start = 0;
    for end in path
        .bytes()
        .enumerate()
        .filter_map(|(at, byte)| (byte == b'/').then_some(at))
        .chain([path.len()])
    {
        *slots.get_mut(n_segments)? = path.get(start..end).unwrap_or_default();
        n_segments += 1;
        start = end + 1;
    }
    Some(n_segments)
}

/// Whether `provider`'s routes are forwarded upstream (`--proxy`) rather than answered here.
fn is_proxied(app: &App, provider: provider::Provider) -> bool {
    app.proxy
        .as_ref()
        .is_some_and(|proxy| proxy.upstream(provider).is_some())
}

/// A fault the provider chose for this response, carried out here where the connection is.
#[derive(Debug, Clone)]
pub(crate) struct Injected(pub(crate) Action);

/// Why a connection was closed without an answer: a `drop` fault.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a fault")]
pub(crate) struct Dropped;

/// Carries out the [`Injected`] fault a handler attached to its response, if any.
///
/// A delay is a timer on this task, not a thread: thousands of delayed answers cost their futures.
async fn inject(mut response: Response<Body>) -> Result<Response<Body>, Dropped> {
    let Some(Injected(action)) = response.extensions_mut().remove::<Injected>() else {
        return Ok(response);
    };
    match action {
        Action::Respond { .. } => Ok(response),
        Action::Delay(latency) => {
            // `Scenario::fault_for` has already drawn the delay; a fixed latency returns it as is.
            tokio::time::sleep(latency.sample(0.5, 0.5)).await;
            Ok(response)
        }
        Action::Drop => Err(Dropped),
        Action::Empty => {
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::CONTENT_TYPE);
            Ok(Response::from_parts(parts, full(Bytes::new())))
        }
        Action::Malformed => {
            let (parts, body) = response.into_parts();
            let bytes = collect(body).await;
            Ok(Response::from_parts(
                parts,
                full(bytes.slice(..bytes.len() / 2)),
            ))
        }
        Action::Truncate => {
            let (mut parts, body) = response.into_parts();
            let bytes = collect(body).await;
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let half = bytes.slice(..bytes.len() / 2);
            let first =
                futures_util::stream::once(async move { Ok(hyper::body::Frame::data(half)) });
            // Pending for a moment makes hyper flush the headers and the half body before the
            // error closes the connection; otherwise the client would see nothing at all.
            let cut = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Err(std::io::Error::other("body cut short by a fault"))
            });
            let chunks = first.chain(cut);
            Ok(Response::from_parts(
                parts,
                Body::stream(http_body_util::StreamBody::new(chunks)),
            ))
        }
        Action::Dribble { chunk_bytes, every } => {
            let (mut parts, body) = response.into_parts();
            let bytes = collect(body).await;
            parts.headers.remove(header::CONTENT_LENGTH);
            let chunks: Vec<Bytes> = bytes
                .chunks(chunk_bytes)
                .map(Bytes::copy_from_slice)
                .collect();
            let dribble = futures_util::stream::iter(chunks).then(move |chunk| async move {
                tokio::time::sleep(every).await;
                Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk))
            });
            Ok(Response::from_parts(
                parts,
                Body::stream(http_body_util::StreamBody::new(dribble)),
            ))
        }
    }
}

/// An in-memory body's bytes (fault bodies are small JSON).
async fn collect(body: Body) -> Bytes {
    body.collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default()
}

/// The value of a request header as text, if present and printable.
pub(crate) fn header_text(
    req: &Request<Incoming>,
    name: impl header::AsHeaderName,
) -> Option<&str> {
    req.headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_slots_as_str_split_splits_them() {
        let long = "a/".repeat(12);
        for path in [
            "",
            "a",
            "a/",
            "//",
            "api/fansly/media/upload/1/status",
            "r\u{e9}sum\u{e9}/\u{1f600}/x",
            "1/2/3/4/5/6/7/8/9/10/11/12",
            long.as_str(),
        ] {
            let mut slots = [""; 12];
            let expected: Vec<&str> = path.split('/').collect();
            match split_into(path, &mut slots) {
                Some(n) => assert_eq!(&slots[..n], expected.as_slice(), "{path:?}"),
                None => assert!(expected.len() > 12, "{path:?}"),
            }
        }
        assert_eq!(split_into(&long, &mut [""; 12]), None);
    }

    /// `Picked` stands in for `HeaderMap::get` on the headers the mock reads: the first value of
    /// a repeated header wins, names match whatever case the client wrote them in, and others are
    /// ignored.
    #[test]
    fn picked_headers_are_what_a_lookup_would_find() {
        let raw: &[(&str, &str)] = &[
            ("User-Agent", "test"),
            ("X-API-Key", "first"),
            ("host", "127.0.0.1:1"),
            ("x-api-key", "second"),
            ("Authorization", "Bearer t"),
            ("X-Mock-Session", "s1"),
        ];
        let mut headers = http::HeaderMap::new();
        for (name, value) in raw {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        let mut picked = Picked::default();
        for (name, value) in &headers {
            picked.offer(name, value);
        }
        for (found, name) in [
            (&picked.host, "host"),
            (&picked.api_key, "x-api-key"),
            (&picked.authorization, "authorization"),
            (&picked.session, "x-mock-session"),
        ] {
            assert_eq!(found.as_ref(), headers.get(name), "{name}");
        }
        assert_eq!(picked.api_key, Some(HeaderValue::from_static("first")));
    }
}
