//! Proxy mode and recording: `--proxy fansly=<origin>` forwards that provider's routes to a real
//! API instead of answering them, and `--record DIR` writes one cassette per upload job.
//!
//! The mock in front of a live API is where a user with keys can see what the API really does
//! across a whole job, so this is a recorder and nothing else: the upstream's answers go back
//! unchanged (OnlyFans' `polling_url` excepted, pointed back through the proxy so that polls are
//! recorded too), and the cassette is written before the answer is returned, so a client that got
//! its answer finds it on disk.
//!
//! An upload is forwarded as it streams in; a copy of each chunk goes through a bounded channel
//! to the same form reader the mock's own uploads use (`flow::read_body_form`), which writes the
//! file to a temporary file and keeps only its shape: memory stays constant whatever the size.
//! API keys, signed-URL parameters and every `--redact` value are replaced in the cassette's JSON
//! before it is serialized, so none of them reaches the disk.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, Method, Request, Response, header};
use hyper::body::Incoming;
use serde_json::Value;

use crate::app::App;
use crate::cassette::{
    self, Answer, Cassette, LinkCheck, Part, Poll, RecordedUpload, Seen, job_id_of, links_in,
};
use crate::http::{Body, RequestCtx, full};
use crate::provider::Provider;

/// What replaces a redacted value.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Upstream answers kept in memory to be recorded; provider answers are small JSON. A longer
/// body is still passed through whole (streamed), but recorded only as a note.
const MAX_RECORDED_BODY: usize = 1024 * 1024;

/// Chunks of an upload in flight to the shape reader at once (each at most hyper's read size):
/// the bound on what forwarding an upload holds besides hyper's and reqwest's own buffers.
const TEE_CHUNKS: usize = 8;

/// Jobs followed at once; past it the oldest is no longer recorded (its cassette stays as it is).
const MAX_OPEN_JOBS: usize = 4096;

/// API keys remembered for redaction; a proxy that saw more distinct keys than this forgets the
/// oldest (each cassette is still redacted with the keys of its own requests).
const MAX_KEYS: usize = 1024;

/// Characters kept of one text field's value in a cassette.
const MAX_FIELD_CHARS: usize = 4096;

/// Query parameters whose values are signatures or credentials, by a substring of their
/// lowercase name: CloudFront's `Signature`, `Policy` and `Key-Pair-Id`, S3's `X-Amz-Signature`
/// and `X-Amz-Credential`, and any `token`.
const SIGNED_PARAMS: &[&str] = &["signature", "policy", "key-pair", "credential", "token"];

/// Headers whose values are credentials wherever they appear.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

/// Where each provider's routes go, and the recorder if recording.
#[derive(Debug)]
pub(crate) struct Proxy {
    client: reqwest::Client,
    upstreams: Vec<(Provider, String)>,
    recorder: Option<Recorder>,
}

/// Proxy settings, as the builder collects them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxyConfig {
    /// Provider and upstream origin (`https://v1.apifansly.com`), no trailing slash.
    pub(crate) upstreams: Vec<(Provider, String)>,
    /// Where cassettes go; forwarding only when `None`.
    pub(crate) record: Option<PathBuf>,
    /// Whether upload bytes are kept beside their cassette.
    pub(crate) record_media: bool,
    /// Values never written to disk.
    pub(crate) redact: Vec<String>,
}

/// Why proxy mode could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The recording directory cannot be created.
    #[error("cannot create the recording directory {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built (no TLS roots).
    #[error("cannot build the upstream HTTP client")]
    Client(#[source] reqwest::Error),
}

impl Proxy {
    pub(crate) fn new(config: ProxyConfig) -> Result<Self, ProxyError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ProxyError::Client)?;
        let recorder = match config.record {
            Some(dir) => {
                std::fs::create_dir_all(&dir).map_err(|source| ProxyError::Dir {
                    path: dir.clone(),
                    source,
                })?;
                let next = first_free_number(&dir);
                Some(Recorder {
                    dir,
                    record_media: config.record_media,
                    listed: config
                        .redact
                        .into_iter()
                        .filter(|value| !value.is_empty())
                        .collect(),
                    keys: std::sync::Mutex::default(),
                    open: std::sync::Mutex::default(),
                    next: AtomicU32::new(next),
                })
            }
            None => None,
        };
        Ok(Self {
            client,
            upstreams: config.upstreams,
            recorder,
        })
    }

    /// The upstream origin `provider`'s routes go to, if they are proxied.
    pub(crate) fn upstream(&self, provider: Provider) -> Option<&str> {
        self.upstreams
            .iter()
            .find(|(proxied, _)| *proxied == provider)
            .map(|(_, origin)| origin.as_str())
    }
}

/// The number after the highest `<provider>-<n>.json` already in `dir`, so a restarted recorder
/// never overwrites a cassette.
fn first_free_number(dir: &Path) -> u32 {
    let highest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".json")?;
            stem.rsplit_once('-')?.1.parse::<u32>().ok()
        })
        .max()
        .unwrap_or(0);
    highest.saturating_add(1)
}

#[derive(Debug)]
struct Recorder {
    dir: PathBuf,
    record_media: bool,
    /// `--redact` values.
    listed: Vec<String>,
    /// API keys seen, newest last.
    keys: std::sync::Mutex<VecDeque<String>>,
    /// Jobs being recorded, by provider and upstream job id, and their order for eviction.
    open: std::sync::Mutex<OpenJobs>,
    next: AtomicU32,
}

#[derive(Debug, Default)]
struct OpenJobs {
    by_id: HashMap<(Provider, String), Arc<tokio::sync::Mutex<Open>>>,
    order: VecDeque<(Provider, String)>,
}

/// A cassette still being written.
#[derive(Debug)]
struct Open {
    name: String,
    started: std::time::SystemTime,
    cassette: Cassette,
    /// Whether the links have been checked (once, at the first terminal answer).
    links_checked: bool,
    /// The API key of the upload, always redacted from this cassette.
    key: Option<String>,
}

/// One proxied exchange, as the recorder needs it.
struct Exchange {
    provider: Provider,
    upstream: String,
    kind: Kind,
    /// The upload's form, being read from the copy of its body.
    shape: Option<tokio::task::JoinHandle<Result<crate::upload::Form, crate::upload::UploadError>>>,
    /// `Content-Type` without parameters.
    content_type: Option<String>,
    path: String,
    answer: Answer,
    key: Option<String>,
    /// When the request arrived, on the mock's clock.
    started: std::time::SystemTime,
}

/// What a proxied request is, for the recorder.
enum Kind {
    Upload,
    Status(String),
    Other,
}

fn classify(provider: Provider, method: &Method, path: &str) -> Kind {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (provider, method, segments.as_slice()) {
        (Provider::Fansly, &Method::POST, ["api", "fansly", _, "media", "upload"])
        | (Provider::OnlyFans, &Method::POST, ["api", _, "media", "upload" | "vault"]) => {
            Kind::Upload
        }
        (Provider::Fansly, &Method::GET, ["api", "fansly", "media", "upload", id, "status"])
        | (Provider::OnlyFans, &Method::GET, ["api", _, "media", "uploads", id, "status"]) => {
            Kind::Status((*id).to_owned())
        }
        _ => Kind::Other,
    }
}

/// The API key a request carries, for redaction.
fn api_key(provider: Provider, headers: &HeaderMap) -> Option<String> {
    let value = match provider {
        Provider::Fansly => headers.get("x-api-key")?.to_str().ok()?,
        Provider::OnlyFans => {
            let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
            value.split_once(' ').map_or(value, |(_, token)| token)
        }
    };
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Request headers not forwarded: hop-by-hop ones, `Host` (the upstream's own is sent), and
/// `Accept-Encoding`, so that the upstream answers plain bytes the recorder can read.
fn is_forwarded(name: &header::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "accept-encoding"
    )
}

/// Forwards one provider request to its upstream and records it when it belongs to an upload
/// job. Every failure to reach the upstream is the provider's own 502.
pub(crate) async fn forward(
    app: &App,
    ctx: &RequestCtx<'_>,
    req: Request<Incoming>,
    provider: Provider,
) -> Response<Body> {
    let Some(proxy) = app.proxy.as_deref() else {
        return crate::provider::upstream_failed(app, provider, 502);
    };
    let Some(upstream) = proxy.upstream(provider) else {
        return crate::provider::upstream_failed(app, provider, 502);
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), ToString::to_string);
    let kind = match &proxy.recorder {
        Some(_) => classify(provider, req.method(), req.uri().path()),
        None => Kind::Other,
    };
    let key = api_key(provider, req.headers());
    if let (Some(recorder), Some(key)) = (&proxy.recorder, &key) {
        recorder.remember_key(key);
    }
    let mut headers = HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        if is_forwarded(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let method = req.method().clone();
    let has_body = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let url = format!("{upstream}{path_and_query}");
    let mut request = proxy.client.request(method.clone(), &url).headers(headers);
    let mut shape = None;
    if has_body {
        let chunks = crate::flow::body_stream(req.into_body(), app.limits.body_timeout);
        match (&kind, &proxy.recorder) {
            (Kind::Upload, Some(recorder)) => {
                let (teed, reading) = tee(
                    app,
                    provider,
                    recorder.record_media,
                    content_type.clone(),
                    chunks,
                );
                request = request.body(reqwest::Body::wrap_stream(teed));
                shape = Some(reading);
            }
            _ => request = request.body(reqwest::Body::wrap_stream(chunks)),
        }
    }
    let now = app.clock.now();
    // What came back (or that nothing did) is recorded the same way either way.
    let (answer, reached) = match request.send().await {
        Ok(response) => {
            let (answer, bytes, rest, headers) = read_answer(response).await;
            (answer, Some((bytes, rest, headers)))
        }
        Err(err) => {
            tracing::warn!(%url, error = %err, "upstream not reached");
            let answer = Answer {
                status: 502,
                headers: BTreeMap::new(),
                body: None,
                body_text: None,
                error: Some(error_chain(&err)),
            };
            (answer, None)
        }
    };
    let is_onlyfans_upload = matches!(kind, Kind::Upload) && provider == Provider::OnlyFans;
    let status = answer.status;
    if let Some(recorder) = &proxy.recorder {
        let exchange = Exchange {
            provider,
            upstream: upstream.to_owned(),
            kind,
            shape,
            content_type: media_type(content_type.as_deref()),
            path: path_and_query,
            answer,
            key,
            started: now,
        };
        recorder.record(app, proxy, exchange).await;
    }
    let Some((mut bytes, rest, response_headers)) = reached else {
        return crate::provider::upstream_failed(app, provider, 502);
    };
    if is_onlyfans_upload {
        bytes = point_polling_url_here(bytes, upstream, &ctx.origin());
    }
    let mut response = match rest {
        None => Response::new(full(bytes)),
        Some(rest) => {
            let first = futures_util::stream::once(async move { Ok(bytes) });
            let chunks = first
                .chain(rest)
                .map(|chunk| chunk.map(hyper::body::Frame::data));
            Response::new(Body::stream(http_body_util::StreamBody::new(chunks)))
        }
    };
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    for (name, value) in &response_headers {
        if is_forwarded(name) && name != header::CONTENT_LENGTH {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// A `Content-Type`'s media type, without parameters (a multipart boundary is noise).
fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .filter(|value| !value.is_empty())
}

/// A stream of upload chunks that sends a copy of each to the form reader, and the reader's task.
/// The reader never slows forwarding by more than [`TEE_CHUNKS`] chunks, and once it gives up
/// (a body it cannot read) forwarding goes on without it.
///
/// Unless the bytes are recorded too (`--record-media`), the reader only measures the file: a 1 GB
/// upload read to disk a second time held the chunks until the disk had them (the proxy peaked
/// at 57-66 MiB against 14 MiB when only forwarding; BENCHMARKS.md).
fn tee(
    app: &App,
    provider: Provider,
    record_media: bool,
    content_type: Option<String>,
    chunks: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> (
    impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    tokio::task::JoinHandle<Result<crate::upload::Form, crate::upload::UploadError>>,
) {
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(TEE_CHUNKS);
    let teed = chunks.then(move |chunk| {
        let sender = sender.clone();
        async move {
            let copy = match &chunk {
                Ok(bytes) => Ok(bytes.clone()),
                Err(err) => Err(std::io::Error::new(err.kind(), err.to_string())),
            };
            // A reader that gave up has dropped its end; forwarding does not depend on it.
            let _ = sender.send(copy).await;
            chunk
        }
    });
    let copies = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let limits = app.limits.clone();
    let storage_dir = app.storage_dir.clone();
    let reading = tokio::spawn(async move {
        let sink = if record_media {
            crate::upload::Sink::Disk(&storage_dir)
        } else {
            crate::upload::Sink::Measure
        };
        crate::flow::read_body_form(
            limits,
            sink,
            provider,
            content_type.as_deref(),
            copies,
            "file",
        )
        .await
    });
    (teed, reading)
}

type Rest = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static>,
>;

/// The upstream's answer: what is recorded, the bytes read (at most [`MAX_RECORDED_BODY`]), the
/// rest still to stream if the body was longer, and its headers.
async fn read_answer(response: reqwest::Response) -> (Answer, Bytes, Option<Rest>, HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut stream = response.bytes_stream();
    let mut bytes = Vec::new();
    let mut error = None;
    let mut is_over = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_RECORDED_BODY {
                    is_over = true;
                    break;
                }
            }
            Err(err) => {
                error = Some(format!(
                    "the upstream's body was cut short: {}",
                    error_chain(&err)
                ));
                break;
            }
        }
    }
    let bytes = Bytes::from(bytes);
    let (body, body_text) = if is_over {
        (
            None,
            Some(format!("[over {MAX_RECORDED_BODY} bytes: not recorded]")),
        )
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(json) => (Some(json), None),
            Err(_) if bytes.is_empty() => (None, None),
            Err(_) => (None, Some(String::from_utf8_lossy(&bytes).into_owned())),
        }
    };
    let answer = Answer {
        status,
        headers: header_map(&headers),
        body,
        body_text,
        error,
    };
    let rest = is_over
        .then(|| -> Rest { Box::pin(stream.map(|chunk| chunk.map_err(std::io::Error::other))) });
    (answer, bytes, rest, headers)
}

/// Header names (lowercase) and values, repeats joined with `, `.
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    map
}

/// An OnlyFans upload answer's `polling_url` names the upstream; the client is pointed back
/// through the proxy instead, or its polls would never be recorded. Replaced as text (both as
/// written and with `\/` escapes, as PHP writes slashes), so every other byte stays as it came.
fn point_polling_url_here(bytes: Bytes, upstream: &str, own_origin: &str) -> Bytes {
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("polling_url") {
        return bytes;
    }
    let escaped_upstream = upstream.replace('/', "\\/");
    let escaped_own = own_origin.replace('/', "\\/");
    Bytes::from(
        text.replace(
            &format!("\"polling_url\":\"{upstream}"),
            &format!("\"polling_url\":\"{own_origin}"),
        )
        .replace(
            &format!("\"polling_url\":\"{escaped_upstream}"),
            &format!("\"polling_url\":\"{escaped_own}"),
        ),
    )
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Recorder {
    fn remember_key(&self, key: &str) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.iter().any(|known| known == key) {
            return;
        }
        if keys.len() >= MAX_KEYS {
            keys.pop_front();
        }
        keys.push_back(key.to_owned());
    }

    /// Every value to redact from a cassette: the listed ones, the keys seen, and `own_key`.
    fn secrets(&self, own_key: Option<&str>) -> Vec<String> {
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut secrets: Vec<String> = self
            .listed
            .iter()
            .chain(keys.iter())
            .cloned()
            .chain(own_key.map(str::to_owned))
            .collect();
        // Longest first, so a key that contains another is replaced whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        secrets
    }

    async fn record(&self, app: &App, proxy: &Proxy, exchange: Exchange) {
        match &exchange.kind {
            Kind::Upload => self.record_upload(app, proxy, exchange).await,
            Kind::Status(id) => {
                let id = id.clone();
                self.record_poll(
                    app,
                    proxy,
                    exchange.provider,
                    &id,
                    exchange.path,
                    exchange.answer,
                )
                .await;
            }
            Kind::Other => {}
        }
    }

    async fn record_upload(&self, app: &App, proxy: &Proxy, exchange: Exchange) {
        let Exchange {
            provider,
            upstream,
            shape,
            content_type,
            path,
            answer,
            key,
            started,
            ..
        } = exchange;
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{number:03}", provider.slug());
        let mut request = cassette::UploadRequest {
            method: "POST".to_owned(),
            path,
            content_type,
            parts: Vec::new(),
            fields: BTreeMap::new(),
            media: None,
            unreadable: None,
        };
        let form = match shape {
            // The upstream has answered, so the body has been sent whole or abandoned; a reader
            // still waiting has a client that stalled, which the body timeout ends.
            Some(reading) => match tokio::time::timeout(
                app.limits.body_timeout + Duration::from_secs(1),
                reading,
            )
            .await
            {
                Ok(Ok(Ok(form))) => Some(form),
                Ok(Ok(Err(err))) => {
                    request.unreadable = Some(err.to_string());
                    None
                }
                Ok(Err(_)) | Err(_) => {
                    request.unreadable = Some("the body could not be read in time".to_owned());
                    None
                }
            },
            None => None,
        };
        if let Some(form) = form {
            // The file part as stored (`--record-media`) or as measured: its name and type.
            let file = form
                .file
                .as_ref()
                .map(|file| (&file.file_name, file.info.mimetype))
                .or_else(|| {
                    form.measured
                        .as_ref()
                        .map(|measured| (&measured.file_name, measured.mimetype))
                });
            request.parts = form
                .parts
                .iter()
                .map(|part| Part {
                    name: part.name.clone(),
                    file_name: part.file_name.clone(),
                    size: part.size,
                    detected_type: file
                        .filter(|(file_name, _)| {
                            part.name == "file" && part.file_name == **file_name
                        })
                        .map(|(_, mimetype)| mimetype.to_owned()),
                })
                .collect();
            request.fields = form
                .fields
                .iter()
                .map(|(name, value)| (name.clone(), value.chars().take(MAX_FIELD_CHARS).collect()))
                .collect();
            if let (true, Some(file)) = (self.record_media, form.file) {
                let media_name = format!("{name}.media");
                let destination = self.dir.join(&media_name);
                let source = file.path;
                let copied =
                    tokio::task::spawn_blocking(move || std::fs::copy(&source, &destination)).await;
                match copied {
                    Ok(Ok(_)) => request.media = Some(media_name),
                    Ok(Err(err)) => tracing::warn!(error = %err, "upload bytes not recorded"),
                    Err(err) => tracing::warn!(error = %err, "upload bytes not recorded"),
                }
            }
        }
        let job_id = (200..300)
            .contains(&answer.status)
            .then(|| {
                answer
                    .body
                    .as_ref()
                    .and_then(|body| job_id_of(provider, body))
            })
            .flatten();
        let mut open = Open {
            name,
            started,
            cassette: Cassette {
                format: cassette::FORMAT.to_owned(),
                provider: provider.slug().to_owned(),
                recorded_at: crate::clock::iso_millis(started),
                upstream,
                upload: RecordedUpload {
                    request,
                    answer: answer.clone(),
                },
                job_id: job_id.clone(),
                polls: Vec::new(),
                polls_not_recorded: 0,
                links: Vec::new(),
            },
            links_checked: false,
            key,
        };
        // A synchronous OnlyFans upload answers the finished media: its links are there now.
        if let Some(body) = &answer.body {
            let links = links_in(body);
            if (200..300).contains(&answer.status) && !links.is_empty() {
                open.cassette.links = check_links(proxy, links).await;
                open.links_checked = true;
            }
        }
        self.write(&open).await;
        if let Some(id) = job_id {
            let mut jobs = self
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if jobs.order.len() >= MAX_OPEN_JOBS {
                if let Some(oldest) = jobs.order.pop_front() {
                    jobs.by_id.remove(&oldest);
                }
            }
            jobs.order.push_back((provider, id.clone()));
            jobs.by_id
                .insert((provider, id), Arc::new(tokio::sync::Mutex::new(open)));
        }
    }

    async fn record_poll(
        &self,
        app: &App,
        proxy: &Proxy,
        provider: Provider,
        id: &str,
        path: String,
        answer: Answer,
    ) {
        let open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_id
            .get(&(provider, id.to_owned()))
            .cloned();
        // A job not uploaded through this proxy is forwarded, not recorded.
        let Some(open) = open else {
            return;
        };
        let mut open = open.lock().await;
        let elapsed = app
            .clock
            .now()
            .duration_since(open.started)
            .unwrap_or_default();
        let poll = u32::try_from(open.cassette.polls.len())
            .unwrap_or(u32::MAX)
            .saturating_add(open.cassette.polls_not_recorded)
            .saturating_add(1);
        let is_terminal = (200..300).contains(&answer.status)
            && answer
                .body
                .as_ref()
                .and_then(|body| Seen::of(provider, body))
                .is_some_and(|seen| seen.is_terminal());
        if is_terminal && !open.links_checked {
            if let Some(body) = &answer.body {
                open.cassette.links = check_links(proxy, links_in(body)).await;
            }
            open.links_checked = true;
        }
        if open.cassette.polls.len() < cassette::MAX_POLLS {
            open.cassette.polls.push(Poll {
                poll,
                elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                path,
                answer,
            });
        } else {
            open.cassette.polls_not_recorded = open.cassette.polls_not_recorded.saturating_add(1);
        }
        self.write(&open).await;
    }

    /// Writes the cassette, redacted, through a temporary file and a rename: a reader never sees
    /// half a cassette, and nothing unredacted is ever written.
    async fn write(&self, open: &Open) {
        let mut json = match serde_json::to_value(&open.cassette) {
            Ok(json) => json,
            Err(err) => {
                tracing::error!(error = %err, "cassette not serialized");
                return;
            }
        };
        redact(&mut json, &self.secrets(open.key.as_deref()));
        let mut text = match serde_json::to_vec_pretty(&json) {
            Ok(text) => text,
            Err(err) => {
                tracing::error!(error = %err, "cassette not serialized");
                return;
            }
        };
        text.push(b'\n');
        let path = self.dir.join(format!("{}.json", open.name));
        let temp = self.dir.join(format!(".{}.json.tmp", open.name));
        let written = async {
            tokio::fs::write(&temp, &text).await?;
            tokio::fs::rename(&temp, &path).await
        };
        if let Err(err) = written.await {
            tracing::error!(path = %path.display(), error = %err, "cassette not written");
        }
    }
}

/// A HEAD of each link, at once, each bounded by ten seconds.
async fn check_links(proxy: &Proxy, links: Vec<String>) -> Vec<LinkCheck> {
    let checks = links.into_iter().map(|url| async move {
        match proxy
            .client
            .head(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(response) => LinkCheck {
                status: response.status().as_u16(),
                headers: header_map(response.headers()),
                url,
                error: None,
            },
            Err(err) => LinkCheck {
                status: 0,
                headers: BTreeMap::new(),
                url,
                error: Some(error_chain(&err)),
            },
        }
    });
    futures_util::future::join_all(checks).await
}

/// Replaces, everywhere in `value` (keys included): each secret, the values of signed-URL
/// parameters, and the values of credential headers.
pub(crate) fn redact(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(text) => *text = redact_text(text, secrets),
        Value::Array(items) => {
            for item in items {
                redact(item, secrets);
            }
        }
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (name, mut inner) in entries {
                if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) && inner.is_string()
                {
                    inner = Value::from(REDACTED);
                } else {
                    redact(&mut inner, secrets);
                }
                map.insert(redact_text(&name, secrets), inner);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn redact_text(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
        }
    }
    if text.contains('?') && text.contains('=') {
        text = redact_signed_params(&text);
    }
    text
}

/// `…?Policy=abc&Signature=def&Expires=1` → `…?Policy=[REDACTED]&Signature=[REDACTED]&Expires=1`.
fn redact_signed_params(text: &str) -> String {
    let Some((before, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let (query, fragment) = query
        .split_once('#')
        .map_or((query, None), |(q, f)| (q, Some(f)));
    let params: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if SIGNED_PARAMS
                    .iter()
                    .any(|signed| name.to_ascii_lowercase().contains(signed)) =>
            {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    let mut redacted = format!("{before}?{}", params.join("&"));
    if let Some(fragment) = fragment {
        redacted.push('#');
        redacted.push_str(fragment);
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_signatures_and_credential_headers_are_redacted_everywhere() {
        let mut value = json!({
            "headers": {"x-api-key": "sk-123", "content-type": "application/json"},
            "body": {"note": "key sk-123 and acct_SECRET", "acct_SECRET": 1,
                     "location": "https://cdn.example/a.jpg?Policy=eyJ&Key-Pair-Id=K2&Signature=abc~&Expires=9"}
        });
        redact(&mut value, &["acct_SECRET".to_owned(), "sk-123".to_owned()]);
        assert_eq!(
            value,
            json!({
                "headers": {"x-api-key": "[REDACTED]", "content-type": "application/json"},
                "body": {"note": "key [REDACTED] and [REDACTED]", "[REDACTED]": 1,
                         "location": "https://cdn.example/a.jpg?Policy=[REDACTED]&Key-Pair-Id=[REDACTED]&Signature=[REDACTED]&Expires=9"}
            })
        );
    }

    #[test]
    fn polling_url_is_pointed_back_through_the_proxy_and_nothing_else_changes() {
        let body = Bytes::from_static(
            br#"{"status":"pending","polling_url":"https:\/\/up.example\/api\/a\/media\/uploads\/x\/status","note":"https://up.example"}"#,
        );
        let rewritten = point_polling_url_here(body, "https://up.example", "http://127.0.0.1:9");
        assert_eq!(
            &rewritten[..],
            br#"{"status":"pending","polling_url":"http:\/\/127.0.0.1:9\/api\/a\/media\/uploads\/x\/status","note":"https://up.example"}"#
        );
    }

    #[test]
    fn routes_are_classified_by_provider() {
        assert!(matches!(
            classify(
                Provider::Fansly,
                &Method::POST,
                "/api/fansly/a/media/upload"
            ),
            Kind::Upload
        ));
        assert!(matches!(
            classify(Provider::OnlyFans, &Method::GET, "/api/a/media/uploads/ofapi_media_1/status"),
            Kind::Status(id) if id == "ofapi_media_1"
        ));
        assert!(matches!(
            classify(Provider::OnlyFans, &Method::GET, "/api/a/media/upload"),
            Kind::Other
        ));
    }
}
