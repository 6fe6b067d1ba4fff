//! Receiving a file: multipart parsing (multer) and `file_url` downloads, streamed to disk.
//!
//! An upload is never held in memory: each chunk is hashed (SHA-256), written to a temp file in the
//! server's storage directory, and only the first [`media::HEAD_LEN`] bytes are kept for sniffing.
//! The temp file is a [`tempfile::TempPath`], deleted when dropped; a client that disconnects
//! mid-upload drops the handler's future, and with it the half-written file, so nothing is left
//! behind and no job is created. A job keeps the path alive once the upload is complete.
//!
//! Field names and file names from the client are data, never paths: stored files get names of
//! our own.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};

use crate::media::{self, MediaInfo};

/// A file received in full and stored on disk.
#[derive(Debug)]
pub(crate) struct Received {
    /// The stored bytes; deleted when this (or the media it becomes) is dropped.
    pub(crate) path: tempfile::TempPath,
    /// The client's file name, verbatim (metadata only).
    pub(crate) file_name: Option<String>,
    /// Byte count.
    pub(crate) size: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// What the bytes are.
    pub(crate) info: MediaInfo,
    /// The bytes held against the disk quota.
    pub(crate) reservation: Reservation,
}

/// A multipart form: the file part (if any) and the text fields, in order.
#[derive(Debug, Default)]
pub(crate) struct Form {
    /// The part named as the file field, sent with a `filename`, stored ([`Sink::Disk`]).
    pub(crate) file: Option<Received>,
    /// The same part only measured ([`Sink::Measure`]).
    pub(crate) measured: Option<Measured>,
    /// Every other part as text (lossy UTF-8).
    pub(crate) fields: Vec<(String, String)>,
    /// Every part's name, file name and size, in order, for the journal.
    pub(crate) parts: Vec<crate::journal::PartSummary>,
}

/// Where a form's file goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sink<'a> {
    /// Written to a file in this directory, as an upload is.
    Disk(&'a Path),
    /// Only measured (size, detected type) and dropped as it streams: the recording proxy's copy
    /// of an upload it forwards, which would otherwise write every byte to disk a second time and
    /// hold the chunks until it had.
    Measure,
}

/// The file part of a form read with [`Sink::Measure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Measured {
    /// Its `filename`.
    pub(crate) file_name: Option<String>,
    /// Bytes received.
    pub(crate) size: u64,
    /// The type its first bytes show, as [`media::probe`] would detect it.
    pub(crate) mimetype: &'static str,
}

impl Form {
    /// The first text field with that name.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Whether storing failed because the disk (or the user's disk quota) is full: answered as the
/// storage quota is, with the provider's 507, not a generic 500.
impl UploadError {
    /// Whether the mock's own storage is what failed (its quota or a full disk): the provider's
    /// 507, whichever way the bytes came in, rather than a fault of the request or its origin.
    pub(crate) fn is_storage_full(&self) -> bool {
        match self {
            UploadError::StorageFull { .. } => true,
            UploadError::Storage(source) => is_disk_full(source),
            _ => false,
        }
    }
}

pub(crate) fn is_disk_full(err: &std::io::Error) -> bool {
    /// ENOSPC and EDQUOT on Linux.
    const NO_SPACE: i32 = 28;
    const QUOTA: i32 = 122;
    matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(err.raw_os_error(), Some(NO_SPACE | QUOTA))
}

/// Why a form or a download could not be received. Providers map each to their own error body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum UploadError {
    /// The request is not `multipart/form-data`.
    #[error("content type {content_type:?} is not multipart/form-data")]
    NotMultipart {
        /// The `Content-Type` sent, if any.
        content_type: Option<String>,
    },
    /// `multipart/form-data` without a `boundary` parameter.
    #[error("multipart content type has no boundary")]
    MissingBoundary,
    /// The body does not parse as multipart (truncated, bad boundary, bad headers).
    #[error("malformed multipart body: {0}")]
    Malformed(multer::Error),
    /// A JSON upload body that is not one readable JSON object.
    #[error("JSON upload body: {0}")]
    BadJson(&'static str),
    /// More than [`MAX_HEADER_SCAN`] bytes read while looking for one part's headers: a part
    /// header line of megabytes, which multer would otherwise buffer whole.
    #[error("a part's headers run past {limit} bytes")]
    PartHeadersTooLarge {
        /// The bound.
        limit: usize,
    },
    /// The file (or the whole body) is over the limit.
    #[error("upload is over the {limit} byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// More parts than the mock reads in one form.
    #[error("more than {limit} parts in one form")]
    TooManyParts {
        /// The limit.
        limit: usize,
    },
    /// Storing the file would go over the `--max-storage-bytes` quota.
    #[error("the storage quota of {limit} bytes is full")]
    StorageFull {
        /// The quota.
        limit: u64,
    },
    /// The client stopped sending the body for longer than the body timeout.
    #[error("the body stalled for longer than {0:?}")]
    Stalled(std::time::Duration),
    /// Two file parts under the file field's name.
    #[error("more than one {0:?} part")]
    DuplicateFile(&'static str),
    /// The storage directory failed us.
    #[error("cannot store the upload")]
    Storage(#[source] std::io::Error),
}

/// The disk quota shared by every stored upload: bytes are reserved as they arrive, so a full
/// disk is refused in the provider's shape instead of failing half-way through a write.
#[derive(Debug)]
pub(crate) struct Quota {
    /// Bytes allowed.
    pub(crate) limit: u64,
    /// Bytes held by stored (and arriving) files.
    used: std::sync::atomic::AtomicU64,
}

impl Quota {
    /// A quota of `limit` bytes, none used.
    pub(crate) fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

/// Bytes held against the [`Quota`] until dropped (with the file they stand for).
#[derive(Debug)]
pub(crate) struct Reservation {
    quota: Arc<Quota>,
    bytes: u64,
}

impl Reservation {
    /// An empty reservation to grow as chunks arrive.
    pub(crate) fn new(quota: &Arc<Quota>) -> Self {
        Self {
            quota: Arc::clone(quota),
            bytes: 0,
        }
    }

    /// Holds `bytes` more, unless that would go over the limit.
    pub(crate) fn grow(&mut self, bytes: u64) -> Result<(), UploadError> {
        use std::sync::atomic::Ordering;
        let previous = self.quota.used.fetch_add(bytes, Ordering::Relaxed);
        if previous.saturating_add(bytes) > self.quota.limit {
            self.quota.used.fetch_sub(bytes, Ordering::Relaxed);
            return Err(UploadError::StorageFull {
                limit: self.quota.limit,
            });
        }
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.quota
            .used
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Size limits for one form.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Largest file accepted, in bytes.
    pub(crate) max_file_bytes: u64,
    /// Largest text field accepted, in bytes.
    pub(crate) max_field_bytes: u64,
    /// Most parts read from one form: a body of ten thousand tiny parts is refused early.
    pub(crate) max_parts: usize,
    /// Longest wait for the next body chunk before the upload is refused with 408.
    pub(crate) body_timeout: std::time::Duration,
    /// Whether stored files outlive the process (`--state-dir`): then a file nobody claims is
    /// removed when the state is next loaded, not when its handle is dropped.
    pub(crate) keep_files: bool,
    /// The disk quota every stored file counts against.
    pub(crate) quota: Arc<Quota>,
}

impl Limits {
    /// Room for the parts' headers and the text fields around the file.
    fn max_body_bytes(&self) -> u64 {
        self.max_file_bytes
            .saturating_add(self.max_field_bytes)
            .saturating_add(64 * 1024)
    }

    /// Whether a declared `Content-Length` is too big to be worth reading.
    pub(crate) fn is_body_too_large(&self, content_length: u64) -> bool {
        content_length > self.max_body_bytes()
    }
}

/// The `boundary` of a `multipart/form-data` content type.
pub(crate) fn boundary(content_type: Option<&str>) -> Result<String, UploadError> {
    let not_multipart = || UploadError::NotMultipart {
        content_type: content_type.map(str::to_owned),
    };
    let content_type = content_type.ok_or_else(not_multipart)?;
    let mime: &str = content_type.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err(not_multipart());
    }
    multer::parse_boundary(content_type).map_err(|_| UploadError::MissingBoundary)
}

/// Reads a whole multipart body, storing the part named `file_field` in `dir`.
pub(crate) async fn read_form<S>(
    body: S,
    boundary: String,
    file_field: &'static str,
    limits: Limits,
    sink: Sink<'_>,
) -> Result<Form, UploadError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limits.max_body_bytes())
            .per_field(limits.max_field_bytes)
            .for_field(file_field, limits.max_file_bytes),
    );
    // multer buffers a part's headers until their blank line, bounded only by the whole body:
    // while it looks for them, the body it may pull is capped, so a megabyte header line costs at
    // most this bound (plus the read in hand), not the upload limit.
    let scan = Arc::new(HeaderScan::default());
    let body = {
        let scan = Arc::clone(&scan);
        body.map(move |chunk| {
            let chunk = chunk?;
            if scan.awaiting.load(Ordering::Relaxed) {
                let pulled = scan.pulled.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
                if pulled > MAX_HEADER_SCAN {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        HeadersTooLarge,
                    ));
                }
            }
            Ok(chunk)
        })
    };
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
    let mut form = Form::default();
    let too_large = |err: multer::Error| match err {
        multer::Error::StreamReadFailed(source)
            if source
                .downcast_ref::<std::io::Error>()
                .and_then(|err| err.get_ref())
                .is_some_and(|inner| inner.is::<HeadersTooLarge>()) =>
        {
            UploadError::PartHeadersTooLarge {
                limit: MAX_HEADER_SCAN,
            }
        }
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            UploadError::TooLarge {
                limit: limits.max_file_bytes,
            }
        }
        multer::Error::StreamReadFailed(source)
            if source
                .downcast_ref::<std::io::Error>()
                .is_some_and(|err| err.kind() == std::io::ErrorKind::TimedOut) =>
        {
            UploadError::Stalled(limits.body_timeout)
        }
        other => UploadError::Malformed(other),
    };
    let mut n_parts = 0;
    loop {
        scan.pulled.store(0, Ordering::Relaxed);
        scan.awaiting.store(true, Ordering::Relaxed);
        let next = multipart.next_field().await.map_err(too_large)?;
        scan.awaiting.store(false, Ordering::Relaxed);
        let Some(mut field) = next else {
            break;
        };
        n_parts += 1;
        if n_parts > limits.max_parts {
            return Err(UploadError::TooManyParts {
                limit: limits.max_parts,
            });
        }
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field
            .file_name()
            .map(str::to_owned)
            .or_else(|| lossy_file_name(field.headers()));
        if name == file_field && file_name.is_some() {
            if form.file.is_some() || form.measured.is_some() {
                return Err(UploadError::DuplicateFile(file_field));
            }
            match sink {
                Sink::Disk(dir) => {
                    let chunks = field.map(|chunk| chunk.map_err(too_large));
                    let received = store(chunks, file_name.clone(), dir, &limits).await?;
                    form.parts.push(crate::journal::PartSummary {
                        name,
                        file_name,
                        size: received.size,
                    });
                    form.file = Some(received);
                }
                Sink::Measure => {
                    let mut size: u64 = 0;
                    let mut head = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(too_large)? {
                        size += chunk.len() as u64;
                        let room = media::HEAD_LEN.saturating_sub(head.len());
                        head.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                    form.parts.push(crate::journal::PartSummary {
                        name,
                        file_name: file_name.clone(),
                        size,
                    });
                    form.measured = Some(Measured {
                        file_name,
                        size,
                        mimetype: media::mimetype(&head),
                    });
                }
            }
        } else {
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(too_large)? {
                value.extend_from_slice(&chunk);
            }
            form.parts.push(crate::journal::PartSummary {
                name: name.clone(),
                file_name,
                size: value.len() as u64,
            });
            form.fields
                .push((name, String::from_utf8_lossy(&value).into_owned()));
        }
    }
    Ok(form)
}

/// How much of a body may be read while looking for one part's headers. Every field is read to
/// its end before the next is looked for, so what is read then is the delimiter, the headers and
/// read-ahead of the part's content: a legitimate part stays far below this even when a read
/// brings hundreds of KiB of content along.
pub(crate) const MAX_HEADER_SCAN: usize = 1024 * 1024;

/// Whether multer is looking for a part's headers, and how much of the body it pulled meanwhile.
#[derive(Debug, Default)]
struct HeaderScan {
    awaiting: AtomicBool,
    pulled: AtomicUsize,
}

/// The marker error that stops the body stream when [`MAX_HEADER_SCAN`] is passed.
#[derive(Debug, thiserror::Error)]
#[error("part headers longer than the scan limit")]
struct HeadersTooLarge;

/// The `filename` of a part whose name is not valid UTF-8 (multer only reads UTF-8 ones), decoded
/// lossily: clients send whatever bytes their file system has, and the name is only metadata.
fn lossy_file_name(headers: &http::HeaderMap) -> Option<String> {
    let disposition = headers.get(http::header::CONTENT_DISPOSITION)?;
    let text = String::from_utf8_lossy(disposition.as_bytes());
    let start = text.find("filename=\"")? + "filename=\"".len();
    let end = text[start..].find('"')? + start;
    Some(text[start..end].to_owned())
}

/// Streams chunks into a new temp file in `dir`, hashing as it goes, then probes the result.
///
/// Chunks are gathered into batches of [`BATCH_BYTES`]; each full batch is hashed and written by a
/// blocking task while the next one arrives, so a large upload keeps both cores busy (multer here,
/// SHA-256 and `write` there), memory holds two batches at most, and no thread waits on the
/// network. A small file is one batch: written, hashed and probed by a single blocking task.
pub(crate) async fn store<S>(
    chunks: S,
    file_name: Option<String>,
    dir: &Path,
    limits: &Limits,
) -> Result<Received, UploadError>
where
    S: Stream<Item = Result<Bytes, UploadError>>,
{
    let temp = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(dir)
        .map_err(UploadError::Storage)?;
    let (file, mut path) = temp.into_parts();
    let mut disk = DiskState::Idle(Disk {
        file,
        hasher: Sha256::new(),
    });
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0;
    let mut head = Vec::new();
    let mut size: u64 = 0;
    let mut reservation = Reservation::new(&limits.quota);
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        reservation.grow(chunk.len() as u64)?;
        if head.len() < media::HEAD_LEN {
            let room = media::HEAD_LEN - head.len();
            head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        size += chunk.len() as u64;
        batch_len += chunk.len();
        batch.push(chunk);
        if batch_len >= BATCH_BYTES {
            let previous = disk.ready().await?;
            let full = std::mem::take(&mut batch);
            batch_len = 0;
            disk = DiskState::Writing(tokio::task::spawn_blocking(move || previous.write(full)));
        }
    }
    let last = disk.ready().await?;
    let must_sync = limits.keep_files;
    let probe_path = path.to_path_buf();
    let (sha256, info) = tokio::task::spawn_blocking(move || {
        let disk = last.write(batch)?;
        if must_sync {
            disk.file.sync_data()?;
        }
        let info = media::probe(&probe_path, &head);
        Ok::<_, std::io::Error>((disk.hasher.finalize().into(), info))
    })
    .await
    .map_err(|join| UploadError::Storage(std::io::Error::other(join)))?
    .map_err(UploadError::Storage)?;
    path.disable_cleanup(limits.keep_files);
    Ok(Received {
        path,
        file_name,
        size,
        sha256,
        info,
        reservation,
    })
}

/// Bytes gathered before a batch is handed to a blocking task: large enough that the hand-off
/// costs little per byte, small enough that a few hundred uploads at once hold little memory.
const BATCH_BYTES: usize = 256 * 1024;

/// An upload's file and the digest of what has been written to it, passed from one blocking
/// task to the next.
#[derive(Debug)]
struct Disk {
    file: std::fs::File,
    hasher: Sha256,
}

impl Disk {
    /// Hashes and writes `chunks`, in order. Only a file that must outlive the process
    /// (`--state-dir`) is synced, by the caller; in memory mode the page cache is as durable as
    /// the process.
    fn write(mut self, chunks: Vec<Bytes>) -> std::io::Result<Self> {
        use std::io::Write as _;
        for chunk in chunks {
            self.hasher.update(&chunk);
            self.file.write_all(&chunk)?;
        }
        Ok(self)
    }
}

/// An upload's [`Disk`]: free for the next batch, or with a batch being written.
#[derive(Debug)]
enum DiskState {
    Idle(Disk),
    Writing(tokio::task::JoinHandle<std::io::Result<Disk>>),
}

impl DiskState {
    /// The [`Disk`] once the batch in flight (if any) is written: the one to write the next batch.
    async fn ready(self) -> Result<Disk, UploadError> {
        match self {
            DiskState::Idle(disk) => Ok(disk),
            DiskState::Writing(writing) => writing
                .await
                .map_err(|join| UploadError::Storage(std::io::Error::other(join)))?
                .map_err(UploadError::Storage),
        }
    }
}

/// Why a `file_url` could not be fetched. The client only ever sees the provider's fixed text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DownloadError {
    /// Not an `http://` or `file://` URL.
    #[error("unsupported URL {0:?}")]
    BadUrl(String),
    /// The mock is offline by design: only loopback hosts are fetched.
    #[error(
        "host {0:?} is not loopback; the mock only fetches from 127.0.0.0/8, ::1 and localhost"
    )]
    NotLoopback(String),
    /// The mock's own listener, for anything but its CDN: `file_url` must not become a way to
    /// read the loopback-only admin API (or the provider API) from outside.
    #[error("{0:?} is this mock's own listener, which file_url may reach only for /cdn/ links")]
    OwnListener(String),
    /// An origin the user did not allow with `--file-url-allow`: by default no other local
    /// service is fetched, so an upload cannot probe which ports are open.
    #[error(
        "{0} is not allowed: start the mock with --file-url-allow {0} (or '*' for any loopback origin)"
    )]
    NotAllowed(String),
    /// `file://` outside the media root, or no media root configured.
    #[error("path {0:?} is outside the allowed media directory")]
    OutsideMediaRoot(String),
    /// The origin answered with a non-2xx status.
    #[error("origin answered {0}")]
    Status(http::StatusCode),
    /// The connection or the read failed.
    #[error("fetch failed: {0}")]
    Fetch(String),
    /// The origin did not finish in time.
    #[error("fetch timed out")]
    Timeout,
    /// Storing or sizing the body failed.
    #[error(transparent)]
    Upload(#[from] UploadError),
}

/// The `--file-url-allow` entry that lets an `http://` `file_url` name any loopback origin (the
/// mock's own listener still only for its `/cdn/` links).
pub(crate) const ANY_LOOPBACK_ORIGIN: &str = "*";

/// Fetches `url` (loopback `http://`, or `file://` under `media_root`) into a temp file in `dir`.
/// Over HTTP only origins in `allowed_hosts` are fetched (all loopback ones with
/// [`ANY_LOOPBACK_ORIGIN`]), besides the mock's own `/cdn/` links.
/// `own` is the address the request reached the mock on: its own listener is refused except for
/// the signed links it serves under `/cdn/` (a client may upload a link it was given).
pub(crate) async fn download(
    url: &str,
    limits: Limits,
    dir: &Path,
    media_root: Option<&Path>,
    own: std::net::SocketAddr,
    allowed_hosts: &[String],
) -> Result<Received, DownloadError> {
    let file_name = url
        .rsplit('/')
        .next()
        .map(|name| name.split(['?', '#']).next().unwrap_or(name).to_owned())
        .filter(|name| !name.is_empty());
    let fetch = async {
        if let Some(path) = url.strip_prefix("file://") {
            let root =
                media_root.ok_or_else(|| DownloadError::OutsideMediaRoot(path.to_owned()))?;
            let outside = || DownloadError::OutsideMediaRoot(path.to_owned());
            let root = tokio::fs::canonicalize(root).await.map_err(|_| outside())?;
            let wanted = tokio::fs::canonicalize(path).await.map_err(|_| outside())?;
            if !wanted.starts_with(&root) {
                return Err(outside());
            }
            let file = tokio::fs::File::open(&wanted)
                .await
                .map_err(|err| DownloadError::Fetch(err.to_string()))?;
            let chunks = tokio_util::io::ReaderStream::new(file);
            Ok(store(
                capped(chunks, limits.max_file_bytes),
                file_name,
                dir,
                &limits,
            )
            .await?)
        } else {
            let uri: http::Uri = url
                .parse()
                .map_err(|_| DownloadError::BadUrl(url.to_owned()))?;
            if uri.scheme_str() != Some("http") {
                return Err(DownloadError::BadUrl(url.to_owned()));
            }
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            let is_loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !is_loopback {
                return Err(DownloadError::NotLoopback(host.to_owned()));
            }
            let port = uri.port_u16().unwrap_or(80);
            if port == own.port() && !uri.path().starts_with("/cdn/") {
                return Err(DownloadError::OwnListener(url.to_owned()));
            }
            let host_port = format!("{}:{port}", host.to_ascii_lowercase());
            if port != own.port()
                && !allowed_hosts
                    .iter()
                    .any(|allowed| allowed == ANY_LOOPBACK_ORIGIN || *allowed == host_port)
            {
                return Err(DownloadError::NotAllowed(host_port));
            }
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Empty<Bytes>>();
            let response = client
                .get(uri)
                .await
                .map_err(|err| DownloadError::Fetch(err.to_string()))?;
            if !response.status().is_success() {
                return Err(DownloadError::Status(response.status()));
            }
            let chunks = http_body_util::BodyDataStream::new(response.into_body())
                .map(|chunk| chunk.map_err(std::io::Error::other));
            Ok(store(
                capped(chunks, limits.max_file_bytes),
                file_name,
                dir,
                &limits,
            )
            .await?)
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), fetch)
        .await
        .map_err(|_| DownloadError::Timeout)?
}

/// Turns an I/O stream into upload chunks that stop with `TooLarge` past `limit` bytes.
fn capped<S>(chunks: S, limit: u64) -> impl Stream<Item = Result<Bytes, UploadError>>
where
    S: Stream<Item = Result<Bytes, std::io::Error>>,
{
    let mut seen: u64 = 0;
    chunks.map(move |chunk| {
        let chunk = chunk.map_err(UploadError::Storage)?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(UploadError::TooLarge { limit });
        }
        Ok(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::is_disk_full;

    #[test]
    fn a_full_disk_or_quota_is_told_apart_from_other_storage_errors() {
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(28)));
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(122)));
        assert!(is_disk_full(&std::io::Error::from(
            std::io::ErrorKind::StorageFull
        )));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(13)));
        assert!(!is_disk_full(&std::io::Error::other("join failed")));
    }
}
