//! `mock-server`: serves both providers' upload endpoints on loopback with embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use mock_server::clock::{Clock, saturating_add};
use mock_server::fixture::Fixtures;
use mock_server::scenario::{Rules, Scenario};
use mock_server::signing::SigningKey;
use mock_server::webhook::WebhookConfig;
use mock_server::{DEFAULT_KEY_PAIR_ID, DEFAULT_MAX_UPLOAD_BYTES, MockServer, Provider};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// For people: one readable line per event.
    Text,
    /// For log tools: one JSON object per line (`fields.method`, `fields.status`, ...).
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ClockKind {
    /// Follow the machine's wall time.
    System,
    /// Stand still until `POST /__admin/clock/advance` moves it.
    Manual,
}

/// Offline mock of the Fansly (apifansly) and OnlyFans (OnlyFansAPI) media upload APIs.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "MOCK_BIND", default_value = "127.0.0.1:8765")]
    bind: SocketAddr,

    /// Log format on stderr: `text`, or `json` (one object per line: every request with its
    /// method, path, status, session, job, scenario, fault and duration; start-up and shutdown).
    #[arg(long, env = "MOCK_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    /// Clock: `system`, or `manual` to move time only through the admin API.
    #[arg(long, env = "MOCK_CLOCK", value_enum, default_value = "system")]
    clock: ClockKind,

    /// Start of a manual clock, as Unix seconds (default: now).
    #[arg(long, env = "MOCK_CLOCK_START")]
    clock_start: Option<u64>,

    /// Accept only this API key (repeatable; comma-separated in the env var). Default: any non-empty key.
    #[arg(long = "api-key", env = "MOCK_API_KEYS", value_delimiter = ',')]
    api_keys: Vec<String>,

    /// Directory holding `defaults.yaml` to use instead of the embedded fixtures.
    #[arg(long, env = "MOCK_FIXTURES")]
    fixtures: Option<PathBuf>,

    /// Time every async job spends queued (overrides the fixtures' timelines, e.g. `0s`).
    #[arg(long, env = "MOCK_QUEUE_TIME", value_parser = humantime::parse_duration)]
    queue_time: Option<Duration>,

    /// Time every async job spends processing before its outcome (overrides the fixtures', e.g. `10s`).
    #[arg(long, env = "MOCK_PROCESSING_TIME", value_parser = humantime::parse_duration)]
    processing_time: Option<Duration>,

    /// Scenario for uploads that name none: a built-in name (`rate-limited`, ...) or a YAML file.
    #[arg(long, env = "MOCK_SCENARIO")]
    scenario: Option<String>,

    /// YAML rules choosing a scenario by account id or file-name glob (fixtures/scenarios/README.md).
    #[arg(long, env = "MOCK_SCENARIO_RULES")]
    scenario_rules: Option<PathBuf>,

    /// Send OnlyFans media_uploads.completed/.failed webhooks for async uploads to this URL.
    #[arg(long, env = "MOCK_WEBHOOK_URL")]
    webhook_url: Option<String>,

    /// The webhook's signing secret: each delivery then carries `Signature` (hex HMAC-SHA256 of
    /// the body). Without one, none, as the provider sends none for a webhook without a secret.
    #[arg(long, env = "MOCK_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,

    /// The one seed behind ids and probabilistic faults (default: random, logged at start).
    #[arg(long, env = "MOCK_SEED")]
    seed: Option<u64>,

    /// Answer 429 once a key exceeds its per-minute limit (Fansly plan, OnlyFans limit_minute).
    #[arg(long, env = "MOCK_ENFORCE_RATE_LIMITS")]
    enforce_rate_limits: bool,

    /// Bearer token every /__admin/ request must carry; without one the admin API answers
    /// loopback clients only.
    #[arg(long, env = "MOCK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,

    /// Longest a client may take to send its request headers (slowloris protection).
    #[arg(long, env = "MOCK_HEADER_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    header_timeout: std::time::Duration,

    /// Longest an upload body may stall between chunks before a 408.
    #[arg(long, env = "MOCK_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    body_timeout: std::time::Duration,

    /// How long in-flight requests may finish after SIGTERM/SIGINT before they are cut.
    #[arg(long, env = "MOCK_GRACE_PERIOD", default_value = "10s", value_parser = humantime::parse_duration)]
    grace_period: std::time::Duration,

    /// Connections served at once; more get 503 with Retry-After and are closed.
    #[arg(long, env = "MOCK_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,

    /// Bytes of uploaded media kept at once; uploads past it get a provider-shaped 507.
    #[arg(long, env = "MOCK_MAX_STORAGE_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    max_storage_bytes: u64,

    /// Jobs and sessions untouched (no upload, no poll) this long on the mock's clock are forgotten.
    #[arg(long, env = "MOCK_IDLE_EXPIRY", default_value = "24h", value_parser = humantime::parse_duration)]
    idle_expiry: std::time::Duration,

    /// Requests the journal keeps (a ring buffer: the oldest go first).
    #[arg(long, env = "MOCK_JOURNAL_CAPACITY", default_value_t = 10_000)]
    journal_capacity: usize,

    /// Most multipart parts read from one upload.
    #[arg(long, env = "MOCK_MAX_PARTS", default_value_t = 64)]
    max_parts: usize,

    /// Largest upload accepted, in bytes.
    #[arg(long, env = "MOCK_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    max_upload_bytes: u64,

    /// Hex-encoded 32-byte key for signing CDN links (default: random per run).
    #[arg(long, env = "MOCK_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,

    /// Origin to write into links and polling URLs (default: the Host the client used).
    #[arg(long, env = "MOCK_PUBLIC_URL")]
    public_url: Option<String>,

    /// Directory `file://` upload URLs may read from (default: `fixtures/media` under the working
    /// directory when there is one, as in a checkout; otherwise `file://` URLs are refused).
    #[arg(long, env = "MOCK_MEDIA_ROOT")]
    media_root: Option<PathBuf>,

    /// `host:port` an `http://` file_url may name (repeatable; comma-separated in the env var),
    /// or `*` for any loopback origin. Default: none, only this mock's own `/cdn/` links.
    #[arg(
        long = "file-url-allow",
        env = "MOCK_FILE_URL_ALLOW",
        value_delimiter = ','
    )]
    file_url_allow: Vec<String>,

    /// Directory to store uploads in (default: a temp directory removed on exit).
    #[arg(long, env = "MOCK_STORAGE_DIR")]
    storage_dir: Option<PathBuf>,

    /// Keep sessions, jobs, the manual clock and media here, and restore them on start.
    #[arg(long, env = "MOCK_STATE_DIR")]
    state_dir: Option<PathBuf>,

    /// Forward a provider's routes to a real API instead of answering them, as
    /// `fansly=<origin>` or `onlyfans=<origin>` (repeatable; comma-separated in the env var).
    #[arg(long = "proxy", env = "MOCK_PROXY", value_delimiter = ',', value_parser = parse_proxy)]
    proxies: Vec<(Provider, String)>,

    /// Write one cassette per upload job forwarded by --proxy into this directory.
    #[arg(long, env = "MOCK_RECORD")]
    record: Option<PathBuf>,

    /// Keep each recorded upload's bytes beside its cassette (`<name>.media`).
    #[arg(long, env = "MOCK_RECORD_MEDIA")]
    record_media: bool,

    /// A value never written into a cassette, e.g. an account id (repeatable; comma-separated in
    /// the env var). API keys and link signatures are always redacted.
    #[arg(
        long = "redact",
        env = "MOCK_REDACT",
        value_delimiter = ',',
        hide_env_values = true
    )]
    redact: Vec<String>,

    /// Cassettes (`*.json`) that uploads may replay with `X-Mock-Scenario: <file stem>`.
    #[arg(long, env = "MOCK_RECORDINGS")]
    recordings: Option<PathBuf>,
}

/// `fansly=https://v1.apifansly.com` → the provider and its origin.
fn parse_proxy(text: &str) -> Result<(Provider, String), String> {
    let (name, origin) = text
        .split_once('=')
        .ok_or_else(|| format!("--proxy {text:?} is not PROVIDER=ORIGIN"))?;
    let provider = match name.trim() {
        "fansly" => Provider::Fansly,
        "onlyfans" => Provider::OnlyFans,
        other => {
            return Err(format!(
                "--proxy provider {other:?} is neither fansly nor onlyfans"
            ));
        }
    };
    let origin = origin.trim();
    if !(origin.starts_with("http://") || origin.starts_with("https://")) {
        return Err(format!(
            "--proxy origin {origin:?} is not an http:// or https:// URL"
        ));
    }
    Ok((provider, origin.to_owned()))
}

/// Threads for blocking work (writing and hashing upload batches, probing files). Each task is
/// short and none waits on the network, so a few threads per core keep the disk busy; without a
/// cap, hundreds of concurrent uploads grew the pool to hundreds of threads, each with its own
/// allocator heap, and the soak's RSS with them.
const MAX_BLOCKING_THREADS: usize = 16;

/// jemalloc rather than glibc's malloc: under the soak's mix of 2,000 pollers and 200 concurrent
/// uploads, glibc's per-thread arenas kept RSS climbing for a minute or more (+8 to +9 MiB
/// after the first 10 s), where jemalloc holds it level; it also halves what 10,000 waiting
/// connections cost (200.7 → 129.5 MiB) and lowers 100,000 live jobs (85.9 → 72.9 MiB).
/// BENCHMARKS.md has the runs.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve()),
        Err(err) => {
            eprintln!("mock-server: cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    }
}

async fn serve() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("mock_server=info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    let log_format = args.log_format;
    if let Err(err) = run(args).await {
        match log_format {
            LogFormat::Json => tracing::error!(error = format!("{err:#}"), "cannot run"),
            LogFormat::Text => eprintln!("mock-server: {err:#}"),
        }
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let clock = match args.clock {
        ClockKind::System => Clock::system(),
        ClockKind::Manual => {
            let start = match args.clock_start {
                Some(secs) => saturating_add(UNIX_EPOCH, Duration::from_secs(secs)),
                None => Clock::system().now(),
            };
            Clock::manual(start)
        }
    };
    let mut builder = MockServer::builder()
        .bind(args.bind)
        .clock(clock)
        .max_upload_bytes(args.max_upload_bytes);
    let mut fixtures = match &args.fixtures {
        Some(dir) => Fixtures::from_dir(dir)?,
        None => Fixtures::embedded(),
    };
    if args.queue_time.is_some() || args.processing_time.is_some() {
        let queued = args.queue_time.unwrap_or(Duration::from_millis(500));
        let processing = args.processing_time.unwrap_or(Duration::from_secs(2));
        fixtures.fansly.timeline = fixtures.fansly.timeline.retimed(queued, processing);
        fixtures.onlyfans.timeline = fixtures.onlyfans.timeline.retimed(queued, processing);
    }
    builder = builder.fixtures(fixtures);
    if let Some(scenario) = &args.scenario {
        builder = builder.scenario(Scenario::resolve(scenario)?);
    }
    builder = builder
        .enforce_rate_limits(args.enforce_rate_limits)
        .header_timeout(args.header_timeout)
        .body_timeout(args.body_timeout)
        .max_connections(args.max_connections)
        .max_parts(args.max_parts)
        .journal_capacity(args.journal_capacity)
        .grace_period(args.grace_period)
        .max_storage_bytes(args.max_storage_bytes)
        .idle_expiry(args.idle_expiry);
    match &args.admin_token {
        Some(token) => builder = builder.admin_token(token.clone()),
        None if !args.bind.ip().is_loopback() => tracing::warn!(
            bind = %args.bind,
            "no --admin-token: the admin API answers loopback clients only"
        ),
        None => {}
    }
    if let Some(path) = &args.scenario_rules {
        builder = builder.scenario_rules(Rules::from_file(path)?);
    }
    if let Some(url) = &args.webhook_url {
        let mut config = WebhookConfig::new(url);
        if let Some(secret) = &args.webhook_secret {
            config = config.signed_with(secret);
        }
        builder = builder.webhook(config);
    }
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    for key in args.api_keys.into_iter().filter(|key| !key.is_empty()) {
        builder = builder.api_key(key);
    }
    if let Some(hex_key) = &args.signing_key {
        let bytes = hex::decode(hex_key).context("--signing-key is not hex")?;
        let Ok(secret) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            bail!(
                "--signing-key must be 32 bytes (64 hex digits), not {}",
                bytes.len()
            );
        };
        builder = builder.signing_key(SigningKey::new(secret, DEFAULT_KEY_PAIR_ID));
    }
    if let Some(url) = args.public_url {
        builder = builder.public_url(url);
    }
    // Never a compile-time path: a binary copied to another machine must not point into a source
    // tree that is not there. Started in a checkout, README's `file://$PWD/fixtures/media/...`
    // examples work as they are; anywhere else the embedded samples are used from a directory
    // shared by every start (`fixture::shared_sample_media_dir`), or, when that cannot be used,
    // written to one of this process's own (removed on exit), so the banner's commands work from
    // any directory.
    let mut _samples_dir = None;
    let media_root = match args.media_root {
        Some(dir) => dir,
        None if PathBuf::from("fixtures/media").is_dir() => PathBuf::from("fixtures/media"),
        None => match mock_server::fixture::shared_sample_media_dir() {
            Ok(shared) => shared,
            Err(err) => {
                tracing::info!(error = %err, "shared sample directory unusable; using a private one");
                let dir = tempfile::Builder::new()
                    .prefix("mock-server-samples-")
                    .tempdir()
                    .context("cannot create a directory for the sample media")?;
                mock_server::fixture::write_sample_media(dir.path())
                    .context("cannot write the sample media")?;
                let path = dir.path().to_owned();
                _samples_dir = Some(dir);
                path
            }
        },
    };
    tracing::info!(media_root = %media_root.display(), "file:// upload URLs may read here");
    let sample_jpg = std::path::absolute(media_root.join("sample.jpg"))
        .unwrap_or_else(|_| media_root.join("sample.jpg"));
    builder = builder.media_root(media_root);
    for host_port in args.file_url_allow.iter().filter(|host| !host.is_empty()) {
        builder = builder.file_url_host(host_port.clone());
    }
    if let Some(dir) = args.storage_dir {
        builder = builder.storage_dir(dir);
    }
    if let Some(dir) = args.state_dir {
        builder = builder.state_dir(dir);
    }
    if args.record.is_some() && args.proxies.is_empty() {
        bail!(
            "--record records what --proxy forwards: give --proxy fansly=<origin> or onlyfans=<origin>"
        );
    }
    for (provider, origin) in args.proxies {
        tracing::info!(provider = provider.slug(), %origin, "forwarding upstream");
        builder = builder.proxy(provider, origin);
    }
    if let Some(dir) = args.record {
        tracing::info!(dir = %dir.display(), media = args.record_media, "recording cassettes");
        builder = builder.record(dir).record_media(args.record_media);
    }
    for value in args.redact.into_iter().filter(|value| !value.is_empty()) {
        builder = builder.redact(value);
    }
    if let Some(dir) = args.recordings {
        builder = builder.recordings(dir);
    }
    let server = builder
        .start()
        .await
        .with_context(|| format!("cannot start on {}", args.bind))?;
    let base = server.base_url();
    tracing::info!(base_url = %base, version = env!("CARGO_PKG_VERSION"), "listening");
    // The banner is a courtesy: a closed stdout (a supervisor that read the first line and went
    // away) must not take the server down, so write errors are ignored rather than panicking.
    let banner = format!(
        "mock-server listening on {base}\n  Fansly (apifansly):    {base}/api/fansly/...\n  OnlyFans (OnlyFansAPI): {base}/api/...\n  admin:                 {base}/__admin/ (clock, jobs, specs)\n\nTry:\n  curl -s -H 'x-api-key: test' -F file=@{sample} {base}/api/fansly/acct1/media/upload\n  curl -s -H 'x-api-key: test' {base}/api/fansly/media/upload/1/status\n  curl -s -H 'Authorization: Bearer test' -F file=@{sample} -F async=true {base}/api/acct_1/media/upload\n",
        sample = sample_jpg.display()
    );
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(banner.as_bytes())
            .and_then(|()| stdout.flush());
    }
    shutdown.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the SIGINT/SIGTERM handlers now, so a signal that arrives while starting up is not
/// lost to the default action, and returns a future that resolves on the first one.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
