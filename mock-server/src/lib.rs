//! An offline stand-in for the media upload and upload-status endpoints of apifansly's Fansly API
//! and OnlyFansAPI, for contract tests.
//!
//! Each upload becomes a job that moves through its provider's real lifecycle (Fansly
//! `waiting → active → completed | failed`, OnlyFans `pending → processing → completed | failed`)
//! on a [`Clock`] the test controls. Completed jobs carry CloudFront-style signed links that this
//! server serves and that really expire.
//!
//! # Layout
//!
//! - [`clock`]: the only source of time; manual clocks are moved by tests.
//! - [`job`]: the lifecycle as a pure function of (timeline, elapsed time, polls answered).
//! - [`signing`]: CloudFront canned and custom-policy links, signed with HMAC-SHA256.
//! - [`media`]: type, dimensions and duration read from uploaded bytes.
//! - [`fixture`]: provider constants and default timelines from `fixtures/defaults.yaml`.
//! - [`spec`]: the OpenAPI documents of `specs/`, and response validation against them.
//! - `provider::{fansly, onlyfans}`: routes, wire types and error envelopes of each API.
//! - [`webhook`]: OnlyFans upload webhooks, signed and retried.
//! - [`cassette`]: recorded upload jobs (`--proxy ... --record`) and the scenarios that replay
//!   them; `record` is the proxy that writes them.
//! - `http`, `cdn`, `admin`, `store`, `upload`, `journal`: hyper glue, the link-serving CDN, the `/__admin/`
//!   API, shared state, multipart streaming to disk, and the request journal.
//! - `events`, `ui`: the stream of state changes (`/__admin/events`) and the QA dashboard
//!   (`/__admin/ui`) that follows it.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::{Duration, UNIX_EPOCH};
//! use mock_server::{MockServer, clock::Clock};
//!
//! let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_770_000_000));
//! let server = MockServer::builder().clock(clock.clone()).start().await.unwrap();
//! assert!(server.base_url().starts_with("http://127.0.0.1:"));
//! // Point a client at server.base_url(); move time with clock.advance(..).
//! server.shutdown().await;
//! # }
//! ```

pub mod cassette;
pub mod clock;
pub mod fixture;
pub mod job;
pub mod media;
pub mod scenario;
pub mod signing;
pub mod spec;

mod admin;
mod app;
mod cdn;
mod conn;
mod events;
mod flow;
#[cfg(test)]
mod fuzz;
mod http;
mod journal;
mod persist;
mod provider;
mod record;
mod s3;
mod store;
mod ui;
mod upload;
pub mod webhook;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::fixture::Fixtures;
pub use crate::provider::Provider;
pub use crate::record::ProxyError;
use crate::scenario::{Rules, Scenario};
use crate::signing::SigningKey;
use crate::webhook::WebhookConfig;

/// The OnlyFansAPI limit: 100 MB, as Laravel's `max:102400` (kilobytes) counts it.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 102_400 * 1024;

/// How many requests the journal keeps unless configured.
pub const DEFAULT_JOURNAL_CAPACITY: usize = 10_000;

/// The `Key-Pair-Id` in every signed link unless configured.
pub const DEFAULT_KEY_PAIR_ID: &str = "K2MOCKSERVERKEYPAIR";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The storage directory cannot be created.
    #[error("cannot create the storage directory")]
    Storage(#[source] std::io::Error),
    /// No randomness for the signing key.
    #[error("cannot generate a signing key")]
    Random(#[source] getrandom::Error),
    /// The state directory cannot be read or written.
    #[error(transparent)]
    State(#[from] persist::PersistError),
    /// Proxy mode could not start (the recording directory, the HTTP client).
    #[error(transparent)]
    Proxy(#[from] record::ProxyError),
    /// A file in the recordings directory is not a cassette.
    #[error(transparent)]
    Recordings(#[from] cassette::CassetteError),
}

/// Configures a [`MockServer`]; every setting has a default that works offline.
#[derive(Debug)]
pub struct Builder {
    bind: SocketAddr,
    clock: Clock,
    fixtures: Option<Fixtures>,
    api_keys: Vec<String>,
    max_upload_bytes: u64,
    signing_key: Option<SigningKey>,
    public_url: Option<String>,
    media_root: Option<PathBuf>,
    file_url_hosts: Vec<String>,
    storage_dir: Option<PathBuf>,
    seed: Option<u64>,
    scenario: Option<Arc<Scenario>>,
    journal_capacity: usize,
    enforce_rate_limits: bool,
    rules: Rules,
    webhook: Option<WebhookConfig>,
    connection: ConnectionLimits,
    max_parts: usize,
    admin_token: Option<String>,
    state_dir: Option<PathBuf>,
    max_storage_bytes: u64,
    idle_expiry: Duration,
    proxy: record::ProxyConfig,
    recordings: Option<PathBuf>,
}

/// Per-connection protections against slow and greedy clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Longest a client may take to send the request headers (slowloris).
    pub(crate) header_timeout: Duration,
    /// Longest wait for the next chunk of an upload body.
    pub(crate) body_timeout: Duration,
    /// Connections served at once; more get 503 with `Retry-After` and are closed.
    pub(crate) max_connections: usize,
    /// How long in-flight requests may run after shutdown is asked for.
    pub(crate) grace_period: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            grace_period: Duration::from_secs(10),
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            clock: Clock::system(),
            fixtures: None,
            api_keys: Vec::new(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            signing_key: None,
            public_url: None,
            media_root: None,
            file_url_hosts: Vec::new(),
            storage_dir: None,
            seed: None,
            scenario: None,
            journal_capacity: DEFAULT_JOURNAL_CAPACITY,
            enforce_rate_limits: false,
            rules: Rules::default(),
            webhook: None,
            connection: ConnectionLimits::default(),
            max_parts: 64,
            admin_token: None,
            state_dir: None,
            max_storage_bytes: 10 * 1024 * 1024 * 1024,
            idle_expiry: Duration::from_secs(24 * 3600),
            proxy: record::ProxyConfig::default(),
            recordings: None,
        }
    }
}

impl Builder {
    /// Where to listen; `127.0.0.1:0` (a free loopback port) by default, as tests want.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The clock every job and link reads; pass a [`Clock::manual`] to control time.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Provider constants and timelines; the embedded `fixtures/defaults.yaml` by default.
    pub fn fixtures(mut self, fixtures: Fixtures) -> Self {
        self.fixtures = Some(fixtures);
        self
    }

    /// Accepts only this key (repeatable); by default any non-empty key is accepted.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    /// The largest file accepted, in bytes; bigger uploads get the provider's 413.
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = bytes;
        self
    }

    /// Signs links with a fixed key, so they survive restarts; a random key by default.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// The origin written into links and `polling_url` (for a mock behind a proxy); by default
    /// the `Host` the client used.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// The directory `file://` upload URLs may read from; none by default.
    pub fn media_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.media_root = Some(dir.into());
        self
    }

    /// Allows `http://` `file_url` downloads from `host:port` (repeatable), or from any loopback
    /// origin with `"*"`. With none, only the mock's own `/cdn/` links are fetched over HTTP: a
    /// client of a shared mock cannot use it to probe which local ports are open, and a refusal
    /// answers exactly as a closed port does.
    pub fn file_url_host(mut self, host_port: impl Into<String>) -> Self {
        self.file_url_hosts
            .push(host_port.into().to_ascii_lowercase());
        self
    }

    /// Where uploads are stored; a temp directory removed on shutdown by default.
    pub fn storage_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage_dir = Some(dir.into());
        self
    }

    /// The one seed behind every id and every probabilistic fault, so a run can be replayed
    /// exactly; random (and logged) by default.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The scenario uploads follow unless a request names another with `X-Mock-Scenario`;
    /// `happy` (the fixtures' timelines, no faults) by default.
    pub fn scenario(mut self, scenario: Arc<Scenario>) -> Self {
        self.scenario = Some(scenario);
        self
    }

    /// Scenario choice by account or file name (see [`Rules`]); none by default.
    pub fn scenario_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// Sends OnlyFans `media_uploads.completed` / `.failed` webhooks for async uploads; none by default.
    pub fn webhook(mut self, config: WebhookConfig) -> Self {
        self.webhook = Some(config);
        self
    }

    /// How many requests the journal keeps (the oldest go first); 10,000 by default.
    pub fn journal_capacity(mut self, entries: usize) -> Self {
        self.journal_capacity = entries;
        self
    }

    /// Answers 429 (with `Retry-After`) once a key goes over its provider's per-minute limit from
    /// the fixtures; by default the limit is only counted down in headers and `_meta`.
    pub fn enforce_rate_limits(mut self, enforce: bool) -> Self {
        self.enforce_rate_limits = enforce;
        self
    }

    /// How long a client may take to send its request headers (30 s): slowloris protection.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.connection.header_timeout = timeout;
        self
    }

    /// How long an upload body may stall between chunks (30 s) before a 408.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.connection.body_timeout = timeout;
        self
    }

    /// Connections served at once (4096); the next ones get 503 with `Retry-After` and are closed.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.connection.max_connections = connections.max(1);
        self
    }

    /// How long in-flight requests may finish after shutdown (10 s); then they are cut.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.connection.grace_period = grace;
        self
    }

    /// Most multipart parts read from one upload (64).
    pub fn max_parts(mut self, parts: usize) -> Self {
        self.max_parts = parts.max(1);
        self
    }

    /// Requires `Authorization: Bearer <token>` on every `/__admin/` request. Without a token the
    /// admin API answers loopback clients only, so a mock bound to `0.0.0.0` cannot be steered by
    /// whoever reaches it.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into()).filter(|token| !token.is_empty());
        self
    }

    /// Bytes of uploaded media kept at once (10 GiB); an upload past it gets a provider-shaped 507.
    pub fn max_storage_bytes(mut self, bytes: u64) -> Self {
        self.max_storage_bytes = bytes;
        self
    }

    /// Jobs (with their media) and sessions untouched for this long on the server's clock are
    /// forgotten (24 h), so a mock that runs for weeks stays small.
    pub fn idle_expiry(mut self, idle: Duration) -> Self {
        self.idle_expiry = idle;
        self
    }

    /// Keeps sessions, jobs, the manual clock and uploaded media in `dir`, so a restarted server
    /// answers every earlier job id and serves every earlier link with the same bytes. The seed
    /// and signing key are kept there too (and win over `seed` and `signing_key`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Forwards `provider`'s routes to `origin` (`https://v1.apifansly.com`) instead of answering
    /// them: how a user with keys brings the live API's answers back as cassettes ([`Builder::record`]).
    /// The CDN and `/__admin/` stay the mock's own.
    pub fn proxy(mut self, provider: Provider, origin: impl Into<String>) -> Self {
        let origin = origin.into().trim_end_matches('/').to_owned();
        self.proxy.upstreams.retain(|(known, _)| *known != provider);
        self.proxy.upstreams.push((provider, origin));
        self
    }

    /// Writes one cassette per upload job forwarded by [`Builder::proxy`] into `dir`
    /// (`fixtures/cassettes/README.md` has the format).
    pub fn record(mut self, dir: impl Into<PathBuf>) -> Self {
        self.proxy.record = Some(dir.into());
        self
    }

    /// Keeps each recorded upload's bytes beside its cassette; off by default, since a user's
    /// media may be private and are rarely needed to replay a job.
    pub fn record_media(mut self, record: bool) -> Self {
        self.proxy.record_media = record;
        self
    }

    /// A value never written into a cassette (an account id, a user name); API keys and
    /// signed-URL parameters are redacted without being listed.
    pub fn redact(mut self, value: impl Into<String>) -> Self {
        self.proxy.redact.push(value.into());
        self
    }

    /// Cassettes an upload may name with `X-Mock-Scenario: <file stem>`; each is read now, so a
    /// bad one fails start-up.
    pub fn recordings(mut self, dir: impl Into<PathBuf>) -> Self {
        self.recordings = Some(dir.into());
        self
    }

    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(self) -> Result<MockServer, StartError> {
        let listener = tokio::net::TcpListener::bind(self.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: self.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: self.bind,
            source,
        })?;
        let (temp_dir, storage_dir) = match (&self.state_dir, self.storage_dir) {
            (Some(state), _) => (None, persist::media_dir(state)),
            (None, Some(dir)) => {
                std::fs::create_dir_all(&dir).map_err(StartError::Storage)?;
                (None, dir)
            }
            (None, None) => {
                let temp = tempfile::Builder::new()
                    .prefix("mock-server-")
                    .tempdir()
                    .map_err(StartError::Storage)?;
                let path = temp.path().to_owned();
                (Some(temp), path)
            }
        };
        let key = match self.signing_key {
            Some(key) => key,
            None => SigningKey::random(DEFAULT_KEY_PAIR_ID).map_err(StartError::Random)?,
        };
        let seed = match self.seed {
            Some(seed) => seed,
            None => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).map_err(StartError::Random)?;
                let seed = u64::from_be_bytes(bytes);
                tracing::info!(seed, "random seed; pass it as --seed to replay this run");
                seed
            }
        };
        let (seed, key) = match &self.state_dir {
            Some(dir) => {
                let meta = persist::meta(
                    dir,
                    persist::Meta {
                        seed,
                        signing_key: hex::encode(key.secret()),
                        key_pair_id: key.key_pair_id().to_owned(),
                    },
                )?;
                let mut secret = [0u8; 32];
                hex::decode_to_slice(&meta.signing_key, &mut secret).map_err(|err| {
                    persist::PersistError::Meta {
                        path: dir.join("meta.json"),
                        message: err.to_string(),
                    }
                })?;
                (meta.seed, SigningKey::new(secret, meta.key_pair_id))
            }
            None => (seed, key),
        };
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&seed.to_be_bytes());
        let default_scenario = self.scenario.unwrap_or_else(Scenario::happy);
        let quota = upload::Quota::new(self.max_storage_bytes);
        let events = events::Events::default();
        let recordings = match &self.recordings {
            Some(dir) => cassette::scenarios_in(dir)?,
            None => std::collections::BTreeMap::new(),
        };
        let scenarios = app::Scenarios::new(default_scenario, recordings);
        let store = match &self.state_dir {
            Some(dir) => restore(dir, nonce, &self.clock, &scenarios, &quota)?,
            None => store::Store::new(nonce),
        }
        .with_idle_expiry(self.idle_expiry)
        .with_events(events.clone());
        let fixtures = self.fixtures.unwrap_or_else(Fixtures::embedded);
        let proxy = if self.proxy.upstreams.is_empty() {
            None
        } else {
            Some(Arc::new(record::Proxy::new(self.proxy)?))
        };
        let app = Arc::new(app::App {
            clock: self.clock.clone(),
            fansly_headers: app::FanslyHeaders::new(&fixtures.fansly),
            fixtures,
            key,
            store,
            seed,
            scenarios,
            journal: journal::Journal::new(self.journal_capacity).with_events(events.clone()),
            events,
            enforce_rate_limits: self.enforce_rate_limits,
            rules: self.rules,
            webhook: self.webhook.map(Arc::new),
            webhook_state: webhook::State::default(),
            webhook_wake: tokio::sync::Notify::new(),
            origin: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}")),
            storage_dir: storage_dir.clone(),
            limits: upload::Limits {
                max_file_bytes: self.max_upload_bytes,
                max_field_bytes: 1024 * 1024,
                max_parts: self.max_parts,
                body_timeout: self.connection.body_timeout,
                keep_files: self.state_dir.is_some(),
                quota,
            },
            connection: self.connection,
            admin_token: self.admin_token,
            api_keys: self.api_keys,
            public_url: self.public_url,
            media_root: self.media_root,
            file_url_hosts: self.file_url_hosts,
            proxy,
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        if let Some(config) = app.webhook.clone() {
            tokio::spawn(webhook::run(Arc::clone(&app), config, shutdown_rx.clone()));
        }
        let task = tokio::spawn(http::serve(listener, app, shutdown_rx));
        Ok(MockServer {
            addr,
            clock: self.clock,
            storage_dir,
            shutdown: shutdown_tx,
            task,
            _temp_dir: temp_dir,
        })
    }
}

/// Rebuilds the store from `dir`, moves a manual clock to where it was, compacts the log and
/// deletes media files no job refers to (half-written or abandoned uploads).
fn restore(
    dir: &Path,
    nonce: [u8; 16],
    clock: &Clock,
    scenarios: &app::Scenarios,
    quota: &Arc<upload::Quota>,
) -> Result<store::Store, StartError> {
    let records = persist::read(dir)?;
    let n_records = records.len();
    // By the names requests may use (the startup default's, a recording's, a built-in's); a name
    // that no longer resolves (a scenario file since renamed) falls back to the startup default.
    let resolve = |name: &str| {
        scenarios
            .by_name(name)
            .unwrap_or_else(|_| scenarios.startup_default())
    };
    let media_dir = persist::media_dir(dir);
    let lost_media = std::cell::Cell::new((0, 0));
    let (store, clock_at) = store::Store::restore(
        nonce,
        records,
        &store::Restore {
            media_dir: &media_dir,
            scenario: &resolve,
            quota,
            lost_media: &lost_media,
        },
    );
    let (missing_files, altered_files) = lost_media.get();
    if missing_files + altered_files > 0 {
        tracing::warn!(
            dir = %dir.display(),
            missing_files,
            altered_files,
            "stored media missing or altered since the last run: those jobs now answer as failed"
        );
    }
    if let Some(at) = clock_at.filter(|_| clock.is_manual()) {
        // A clock that was moved past `at` since (a later --clock-start) keeps its reading.
        let _ = clock.set(at);
    }
    let keep = store.media_files();
    let mut n_removed = 0;
    if let Ok(entries) = std::fs::read_dir(&media_dir) {
        for entry in entries.flatten() {
            if !keep.contains(&entry.file_name()) && std::fs::remove_file(entry.path()).is_ok() {
                n_removed += 1;
            }
        }
    }
    let log = persist::Log::compact(dir, &store.records(clock.is_manual().then(|| clock.now())))?;
    tracing::info!(
        dir = %dir.display(),
        records = n_records,
        media_files = keep.len(),
        removed_files = n_removed,
        missing_files,
        altered_files,
        "state restored"
    );
    Ok(store.with_log(log))
}

/// A running mock server. Dropping it stops accepting connections; [`MockServer::shutdown`] also
/// waits for in-flight requests.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    clock: Clock,
    storage_dir: PathBuf,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Removes the default storage directory when the server goes away.
    _temp_dir: Option<tempfile::TempDir>,
}

impl MockServer {
    /// A builder with offline defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `http://127.0.0.1:PORT`, the base both providers are served under.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// The clock the server reads; advance it if it is manual.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Where uploads are stored; tests check it holds nothing unexpected.
    pub fn storage_dir(&self) -> &Path {
        &self.storage_dir
    }

    /// Stops accepting, lets in-flight requests finish (up to a grace period), then returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
