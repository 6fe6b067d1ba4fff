//! `bench`: measures the mock where clients lean on it (status polls, uploads, many live jobs,
//! delayed answers, start-up) against a bare hyper server answering the same bytes from memory,
//! side by side in one run, and prints a Markdown table. Loopback only, bounded in time.
//!
//! `cargo run --release -p bench -- all` (README, "Benchmarks"); results go in BENCHMARKS.md.

mod load;
mod peers;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use mock_server::clock::Stopwatch;

const SAMPLE_JPEG: &[u8] = include_bytes!("../../fixtures/media/sample.jpg");
const TINY_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";

#[derive(Debug, Parser)]
#[command(about = "Benchmark the mock against a bare hyper server")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every measurement below except the soak, then the table.
    All(Settings),
    /// Start-up time to the first 200, and idle RSS.
    Startup,
    /// Status polls: the mock against the baseline.
    Polls(Settings),
    /// Uploads: 20 × 10 MB, and one 1 GB upload with the server's peak RSS.
    Uploads(UploadSettings),
    /// 100,000 live jobs: RSS and poll speed before and after.
    Jobs(Settings),
    /// 10,000 concurrent polls delayed by a latency scenario: memory while they wait.
    Delayed,
    /// Small uploads acknowledged per second with `--state-dir` (each on disk before its answer)
    /// against the same uploads without it, one at a time and 16 at once.
    Durable,
    /// Memory at the per-connection caps: connections holding an unfinished request head just
    /// under its cap, and uploads holding a part header at its scan cap.
    Caps,
    /// Uploads and pollers under faults for a while: nothing lost, duplicated or corrupted.
    Soak(SoakSettings),
    /// (internal) The baseline: answers every request with the bytes of FILE.
    #[command(hide = true)]
    Baseline { bind: SocketAddr, body: PathBuf },
}

#[derive(Debug, Clone, clap::Args)]
struct Settings {
    /// Length of each load run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Runs per server (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Live jobs for the `jobs` measurement.
    #[arg(long, default_value_t = 100_000)]
    jobs: usize,
    /// Also measure Prism, Mockoon and WireMock on the poll path (installed from npm into
    /// `target/bench-peers/` on first use; WireMock needs `java`).
    #[arg(long)]
    peers: bool,
}

#[derive(Debug, Clone, clap::Args)]
struct UploadSettings {
    /// Also upload 20 × 10 MB and one 500 MB file to Prism, Mockoon and WireMock, and the same
    /// to the mock, as issue 6 measured the peers.
    #[arg(long)]
    peers: bool,
}

#[derive(Debug, Clone, clap::Args)]
struct SoakSettings {
    /// How long the soak runs.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent uploaders.
    #[arg(long, default_value_t = 200)]
    uploaders: usize,
    /// Concurrent pollers.
    #[arg(long, default_value_t = 2000)]
    pollers: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Baseline { bind, body } => baseline(bind, &body).await,
            Cmd::Startup => startup().await.map(|rows| print(&rows)),
            Cmd::Polls(settings) => polls(&settings).await.map(|rows| print(&rows)),
            Cmd::Uploads(settings) => uploads(settings.peers).await.map(|rows| print(&rows)),
            Cmd::Jobs(settings) => jobs(&settings).await.map(|rows| print(&rows)),
            Cmd::Delayed => delayed().await.map(|rows| print(&rows)),
            Cmd::Durable => durable().await.map(|rows| print(&rows)),
            Cmd::Caps => caps().await.map(|rows| print(&rows)),
            Cmd::Soak(settings) => soak(&settings).await.map(|rows| print(&rows)),
            Cmd::All(settings) => {
                let mut rows = startup().await?;
                rows.extend(polls(&settings).await?);
                rows.extend(jobs(&settings).await?);
                rows.extend(uploads(settings.peers).await?);
                rows.extend(delayed().await?);
                rows.extend(durable().await?);
                rows.extend(caps().await?);
                print(&rows);
                Ok(())
            }
        }
    })
}

/// One line of the results table.
struct Row {
    what: String,
    value: String,
    target: &'static str,
}

fn row(what: impl Into<String>, value: impl Into<String>, target: &'static str) -> Row {
    Row {
        what: what.into(),
        value: value.into(),
        target,
    }
}

fn print(rows: &[Row]) {
    println!("| measurement | result | target |");
    println!("|---|--:|---|");
    for row in rows {
        println!("| {} | {} | {} |", row.what, row.value, row.target);
    }
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Kept alive for the server's storage.
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The release `mock-server` binary beside this one, built if missing.
fn mock_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no directory for the bench binary")?;
    let binary = dir.join("mock-server");
    if !binary.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                "mock-server",
                "--bin",
                "mock-server",
            ])
            .status()
            .context("building mock-server")?;
        if !status.success() {
            bail!("cargo build --release -p mock-server failed");
        }
    }
    Ok(binary)
}

/// Starts the mock (manual clock, jobs that finish at once, unless `extra` says otherwise).
fn start_mock(extra: &[&str]) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let mut defaults = Vec::new();
    for (flag, value) in [
        ("--clock", "manual"),
        ("--queue-time", "0s"),
        ("--processing-time", "0s"),
    ] {
        if !extra.contains(&flag) {
            defaults.extend([flag, value]);
        }
    }
    let mut child = Command::new(mock_binary()?)
        .args(["--bind", "127.0.0.1:0", "--seed", "7"])
        .args(defaults)
        .arg("--storage-dir")
        .arg(dir.path())
        .args(extra)
        .env("MOCK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let addr = read_address(&mut child, "mock-server listening on http://")?;
    Ok(Server {
        child,
        addr,
        _dir: Some(dir),
    })
}

fn start_baseline(body: &Path) -> anyhow::Result<Server> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["baseline", "127.0.0.1:0"])
        .arg(body)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let addr = read_address(&mut child, "baseline listening on http://")?;
    Ok(Server {
        child,
        addr,
        _dir: None,
    })
}

/// Reads the first stdout line for the address, then keeps draining stdout in a thread.
fn read_address(child: &mut Child, prefix: &str) -> anyhow::Result<SocketAddr> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().context("server printed nothing")??;
    std::thread::spawn(move || lines.for_each(drop));
    Ok(first
        .strip_prefix(prefix)
        .with_context(|| format!("unexpected first line {first:?}"))?
        .trim()
        .parse()?)
}

/// (current, peak) resident memory of `pid` in MiB, from /proc.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn baseline(bind: SocketAddr, body: &Path) -> anyhow::Result<()> {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let bytes = Bytes::from(std::fs::read(body)?);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("baseline listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let bytes = bytes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let bytes = bytes.clone();
                async move {
                    let mut response = hyper::Response::new(Full::new(bytes));
                    response.headers_mut().insert(
                        "content-type",
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn startup() -> anyhow::Result<Vec<Row>> {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    let mut idle = 0.0;
    for _ in 0..5 {
        let watch = Stopwatch::start();
        let server = start_mock(&[])?;
        loop {
            let health = client
                .get(format!("{}/__admin/health", server.base()))
                .send()
                .await;
            if health.is_ok_and(|response| response.status() == 200) {
                break;
            }
        }
        times.push(watch.elapsed_ms());
        idle = rss_mib(server.pid()).0;
    }
    Ok(vec![
        row(
            "start-up to first 200 (median of 5)",
            format!("{:.1} ms", median(&mut times)),
            "< 50 ms",
        ),
        row("idle RSS", format!("{idle:.1} MiB"), "< 20 MiB"),
    ])
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Uploads `form` to the mock's Fansly endpoint; anything but 201 ends the measurement.
async fn upload(
    client: &reqwest::Client,
    server: &Server,
    form: reqwest::multipart::Form,
    what: &str,
) -> anyhow::Result<()> {
    let reply = client
        .post(format!("{}/api/fansly/acct/media/upload", server.base()))
        .header("x-api-key", "bench")
        .multipart(form)
        .send()
        .await?;
    if reply.status() != 201 {
        bail!("{what} answered {}", reply.status());
    }
    Ok(())
}

/// Uploads the sample and returns the completed status body of job 1.
async fn completed_status(server: &Server) -> anyhow::Result<Bytes> {
    let client = reqwest::Client::new();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(SAMPLE_JPEG).file_name("sample.jpg"),
    );
    upload(&client, server, form, "sample upload").await?;
    let status = client
        .get(format!(
            "{}/api/fansly/media/upload/1/status",
            server.base()
        ))
        .header("x-api-key", "bench")
        .send()
        .await?
        .bytes()
        .await?;
    Ok(status)
}

const STATUS_PATH: &str = "/api/fansly/media/upload/1/status";

/// A poll target: the path and the headers its requests carry.
#[derive(Debug, Clone)]
struct Poll {
    path: String,
    headers: Vec<(&'static str, String)>,
}

impl Poll {
    /// The completed Fansly job every poll measurement reads.
    fn fansly() -> Self {
        Self {
            path: STATUS_PATH.to_owned(),
            headers: vec![("x-api-key", "bench".to_owned())],
        }
    }
}

/// CPU seconds (user and system) `pid` has used, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15; clock ticks are 100 a second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// One server's median run, and its answers per CPU second over all its runs.
#[derive(Debug, Clone, Copy)]
struct Measured {
    median: load::LoadResult,
    per_core: f64,
}

/// Polls `poll` on `first` and `second` in alternating runs (so drift in the machine's state hits
/// both alike), each run after `warm_up` on the same server, and returns the two median runs.
async fn alternating_polls(
    servers: [&Server; 2],
    poll: &Poll,
    connections: usize,
    runs: usize,
    duration: Duration,
    warm_up: Duration,
) -> anyhow::Result<[Measured; 2]> {
    let mut results = [Vec::new(), Vec::new()];
    let mut used = [(0.0, 0_u64); 2];
    for _ in 0..runs {
        for (index, server) in servers.into_iter().enumerate() {
            if !warm_up.is_zero() {
                load::run(server.addr, &poll.path, &poll.headers, connections, warm_up).await?;
            }
            let before = cpu_secs(server.pid());
            let result = load::run(
                server.addr,
                &poll.path,
                &poll.headers,
                connections,
                duration,
            )
            .await?;
            used[index].0 += cpu_secs(server.pid()) - before;
            used[index].1 += result.ok;
            results[index].push(result);
        }
    }
    let measured = |index: usize| Measured {
        median: median_result(&results[index]),
        per_core: if used[index].0 > 0.0 {
            used[index].1 as f64 / used[index].0
        } else {
            0.0
        },
    };
    Ok([measured(0), measured(1)])
}

fn median_result(results: &[load::LoadResult]) -> load::LoadResult {
    let mut sorted = results.to_vec();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    sorted[sorted.len() / 2]
}

/// An OnlyFans async upload of the sample, completed at once: its status path and answer.
async fn onlyfans_completed_status(server: &Server) -> anyhow::Result<(Poll, Bytes)> {
    let client = reqwest::Client::new();
    let form = reqwest::multipart::Form::new().text("async", "true").part(
        "file",
        reqwest::multipart::Part::bytes(SAMPLE_JPEG)
            .file_name("sample.jpg")
            .mime_str("image/jpeg")?,
    );
    let accepted: serde_json::Value = client
        .post(format!("{}/api/acct_1/media/upload", server.base()))
        .bearer_auth("bench")
        .multipart(form)
        .send()
        .await?
        .json()
        .await?;
    let id = accepted["prefixed_id"]
        .as_str()
        .context("no prefixed_id in the OnlyFans upload answer")?;
    let poll = Poll {
        path: format!("/api/acct_1/media/uploads/{id}/status"),
        headers: vec![("authorization", "Bearer bench".to_owned())],
    };
    let body = client
        .get(format!("{}{}", server.base(), poll.path))
        .bearer_auth("bench")
        .send()
        .await?
        .bytes()
        .await?;
    Ok((poll, body))
}

/// The rows of one provider's poll comparison.
fn poll_rows(
    what: &str,
    body_len: usize,
    settings: &Settings,
    [baseline, mock]: [Measured; 2],
) -> Vec<Row> {
    vec![
        row(
            format!(
                "{what} status polls, mock ({body_len} B body, wrk -t2 -c{}, {} × {})",
                settings.connections,
                settings.runs,
                humantime::format_duration(settings.duration)
            ),
            format!(
                "{:.0} req/s, p50 {} µs, p99 {} µs, {} answered, {} errors; {:.0} req/s per CPU second",
                mock.median.rate,
                mock.median.p50_us,
                mock.median.p99_us,
                mock.median.ok,
                mock.median.errors,
                mock.per_core
            ),
            "p99 < 5 ms",
        ),
        row(
            format!("{what} status polls, bare hyper, same bytes"),
            format!(
                "{:.0} req/s, p50 {} µs, p99 {} µs; {:.0} req/s per CPU second",
                baseline.median.rate,
                baseline.median.p50_us,
                baseline.median.p99_us,
                baseline.per_core
            ),
            "(the ceiling)",
        ),
        row(
            format!("{what}: mock / bare hyper (wrk)"),
            format!(
                "{:.1} % of its requests per second; {:.1} % per CPU second",
                100.0 * mock.median.rate / baseline.median.rate,
                100.0 * mock.per_core / baseline.per_core.max(f64::MIN_POSITIVE)
            ),
            "≥ 80 %",
        ),
    ]
}

async fn polls(settings: &Settings) -> anyhow::Result<Vec<Row>> {
    load::ensure_wrk()?;
    let mock = start_mock(&[])?;
    let body = completed_status(&mock).await?;
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), &body)?;
    let baseline = start_baseline(file.path())?;
    let fansly = alternating_polls(
        [&baseline, &mock],
        &Poll::fansly(),
        settings.connections,
        settings.runs,
        settings.duration,
        Duration::from_secs(1),
    )
    .await?;
    let (onlyfans_poll, onlyfans_body) = onlyfans_completed_status(&mock).await?;
    let onlyfans_file = tempfile::NamedTempFile::new()?;
    std::fs::write(onlyfans_file.path(), &onlyfans_body)?;
    let onlyfans_baseline = start_baseline(onlyfans_file.path())?;
    let onlyfans = alternating_polls(
        [&onlyfans_baseline, &mock],
        &onlyfans_poll,
        settings.connections,
        settings.runs,
        settings.duration,
        Duration::from_secs(1),
    )
    .await?;
    let (rss, _) = rss_mib(mock.pid());
    let mut rows = poll_rows("Fansly", body.len(), settings, fansly);
    rows.extend(poll_rows(
        "OnlyFans",
        onlyfans_body.len(),
        settings,
        onlyfans,
    ));
    rows.push(row(
        "mock RSS after the poll runs",
        format!("{rss:.1} MiB"),
        "",
    ));
    if settings.peers {
        rows.extend(peer_polls(settings, &baseline, &body).await?);
    }
    Ok(rows)
}

/// Each peer's start-up, idle RSS and poll rate, against the same baseline in alternating runs.
async fn peer_polls(
    settings: &Settings,
    baseline: &Server,
    body: &[u8],
) -> anyhow::Result<Vec<Row>> {
    let installed = peers::install()?;
    let mut rows = Vec::new();
    for peer in peers::Peer::ALL {
        let (server, startup_ms) = peers::start(peer, &installed, body).await?;
        let idle = peers::tree_rss_mib(server.pid());
        let [measured_peer, base] = alternating_polls(
            [&server, baseline],
            &Poll::fansly(),
            settings.connections,
            settings.runs,
            settings.duration,
            Duration::from_secs(1),
        )
        .await?;
        let (peer_median, baseline_median) = (measured_peer.median, base.median);
        let busy = peers::tree_rss_mib(server.pid());
        peers::stop(server);
        rows.push(row(
            format!("{}: start-up to first 200, idle RSS", peer.name()),
            format!("{startup_ms:.0} ms, {idle:.1} MiB"),
            "(peer)",
        ));
        rows.push(row(
            format!("{}: status polls", peer.name()),
            format!(
                "{:.0} req/s, p99 {} µs, {} errors; {:.1} % of bare hyper ({:.0} req/s); RSS {busy:.1} MiB",
                peer_median.rate,
                peer_median.p99_us,
                peer_median.errors,
                100.0 * peer_median.rate / baseline_median.rate,
                baseline_median.rate
            ),
            "(peer)",
        ));
    }
    Ok(rows)
}

async fn jobs(settings: &Settings) -> anyhow::Result<Vec<Row>> {
    // Two mocks side by side: one holding a single job, one holding `settings.jobs`; their polls
    // are measured in alternating runs, so drift in the machine's state hits both alike.
    let one = start_mock(&[])?;
    completed_status(&one).await?;
    let many = start_mock(&["--max-storage-bytes", "100000000000"])?;
    completed_status(&many).await?;
    load::ensure_wrk()?;
    let headers = [("x-api-key", "bench".to_owned())];
    let short = Duration::from_secs(3).min(settings.duration);
    // The same warm-up as the poll runs, so connection buffers and a full journal are counted
    // before the jobs are, not as their cost.
    load::run(
        many.addr,
        STATUS_PATH,
        &headers,
        settings.connections,
        short,
    )
    .await?;
    let (rss_before, _) = rss_mib(many.pid());
    let client = reqwest::Client::new();
    let remaining = Arc::new(AtomicU64::new(settings.jobs as u64));
    let watch = Stopwatch::start();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, base, remaining) = (client.clone(), many.base(), Arc::clone(&remaining));
        tasks.push(tokio::spawn(async move {
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
            {
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(TINY_GIF).file_name("t.gif"),
                );
                let _ = client
                    .post(format!("{base}/api/fansly/acct/media/upload"))
                    .header("x-api-key", "bench")
                    .multipart(form)
                    .send()
                    .await;
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let upload_secs = watch.elapsed().as_secs_f64();
    let (rss_after, _) = rss_mib(many.pid());
    let [before, after] = alternating_polls(
        [&one, &many],
        &Poll::fansly(),
        settings.connections,
        settings.runs,
        short,
        Duration::ZERO,
    )
    .await?;
    let (before, after) = (before.median, after.median);
    Ok(vec![
        row(
            format!("{} live jobs: RSS growth", settings.jobs),
            format!(
                "{:.1} MiB ({rss_before:.1} → {rss_after:.1}), created in {upload_secs:.1} s",
                rss_after - rss_before
            ),
            "< 100 MiB",
        ),
        row(
            format!(
                "polls with {} live jobs vs with 1 (medians of {} alternating runs of {})",
                settings.jobs,
                settings.runs,
                humantime::format_duration(short)
            ),
            format!(
                "{:.0} vs {:.0} req/s ({:+.1} %)",
                after.rate,
                before.rate,
                100.0 * (after.rate - before.rate) / before.rate
            ),
            "no more than 10 % slower",
        ),
    ])
}

async fn uploads(with_peers: bool) -> anyhow::Result<Vec<Row>> {
    let mut rows = mock_uploads().await?;
    if with_peers {
        rows.extend(peer_uploads().await?);
    }
    Ok(rows)
}

/// How long one upload may take in the peer comparison before it counts as unanswered.
const PEER_UPLOAD_BOUND: Duration = Duration::from_secs(30);

/// The same uploads to the mock and to each peer, one server at a time: 20 × 10 MB one after
/// another, then one 500 MB file with the server's memory (its whole process tree) sampled every
/// 100 ms while it streams in.
async fn peer_uploads() -> anyhow::Result<Vec<Row>> {
    let installed = peers::install()?;
    let mock = start_mock(&["--max-upload-bytes", "2000000000"])?;
    let body = completed_status(&mock).await?;
    let mut rows = upload_profile("upload-mock", &mock).await?;
    drop(mock);
    for peer in peers::Peer::ALL {
        let (server, _) = peers::start(peer, &installed, &body).await?;
        rows.extend(upload_profile(peer.name(), &server).await?);
        peers::stop(server);
    }
    Ok(rows)
}

/// One multipart upload of `size` bytes streamed in 1 MB chunks; what came of it, in words.
async fn send_upload(client: &reqwest::Client, server: &Server, size: usize) -> Result<(), String> {
    let chunk = Bytes::from(vec![0x5a; 1000 * 1000]);
    let n_chunks = size / chunk.len();
    let chunks = futures_util::stream::iter(
        (0..n_chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(chunks),
            (n_chunks * 1000 * 1000) as u64,
        )
        .file_name("upload.bin")
        // As clients send it (curl does): Prism 5.14 crashes (its process exits) on a file part
        // without a type.
        .mime_str("application/octet-stream")
        .map_err(|err| err.to_string())?,
    );
    let answer = client
        .post(format!("{}/api/fansly/acct/media/upload", server.base()))
        .header("x-api-key", "bench")
        .multipart(form)
        .send()
        .await;
    match answer {
        Ok(answer) if answer.status().is_success() => answer
            .bytes()
            .await
            .map(drop)
            .map_err(|err| err.to_string()),
        Ok(answer) => Err(format!("refused: {}", answer.status())),
        Err(err) if err.is_timeout() => Err(format!(
            "no answer in {}",
            humantime::format_duration(PEER_UPLOAD_BOUND)
        )),
        Err(err) => {
            // reqwest's own message is generic; the cause is in its sources.
            let mut why = format!("failed: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                why.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            Err(why)
        }
    }
}

async fn upload_profile(name: &str, server: &Server) -> anyhow::Result<Vec<Row>> {
    let client = reqwest::Client::builder()
        .timeout(PEER_UPLOAD_BOUND)
        .build()?;
    let watch = Stopwatch::start();
    let mut ten = Ok(());
    for _ in 0..20 {
        ten = send_upload(&client, server, 10 * 1000 * 1000).await;
        if ten.is_err() {
            break;
        }
    }
    let ten = ten.map(|()| format!("{:.1} MB/s", 200.0 / watch.elapsed().as_secs_f64()));
    let pid = server.pid();
    let mut peak = peers::tree_rss_mib(pid);
    let watch = Stopwatch::start();
    let big = send_upload(&client, server, 500 * 1000 * 1000);
    tokio::pin!(big);
    let big = loop {
        tokio::select! {
            done = &mut big => break done,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                peak = peak.max(peers::tree_rss_mib(pid));
            }
        }
    };
    peak = peak.max(peers::tree_rss_mib(pid));
    let secs = watch.elapsed().as_secs_f64();
    let big = big.map(|()| format!("ok in {secs:.1} s ({:.0} MB/s)", 500.0 / secs));
    Ok(vec![
        row(
            format!("{name}: 20 × 10 MB uploads, one at a time"),
            ten.unwrap_or_else(|why| why),
            "(peers)",
        ),
        row(
            format!("{name}: one 500 MB upload; peak RSS while it ran"),
            format!("{}; {peak:.1} MiB", big.unwrap_or_else(|why| why)),
            "(peers)",
        ),
    ])
}

async fn mock_uploads() -> anyhow::Result<Vec<Row>> {
    let client = reqwest::Client::new();
    let mock = start_mock(&["--max-upload-bytes", "2000000000"])?;
    let ten_mb = Bytes::from(vec![0x5a; 10 * 1000 * 1000]);
    let watch = Stopwatch::start();
    for _ in 0..20 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::stream(ten_mb.clone()).file_name("ten.bin"),
        );
        upload(&client, &mock, form, "10 MB upload").await?;
    }
    let ten_rate = 200.0 / watch.elapsed().as_secs_f64();
    drop(mock);
    // What the disk takes by itself: the same 20 × 10 MB written to files in the same kind of
    // temp directory, with no HTTP, no multipart and no hashing.
    let disk = tempfile::tempdir()?;
    let watch = Stopwatch::start();
    for idx in 0..20 {
        std::fs::write(disk.path().join(format!("ten-{idx}.bin")), &ten_mb)?;
    }
    let disk_rate = 200.0 / watch.elapsed().as_secs_f64();
    drop(disk);

    // Three 1 GB uploads, each to a fresh mock (its peak RSS is the upload's alone); the median
    // rate and the highest peak are reported.
    let mut rates = Vec::new();
    let mut peak: f64 = 0.0;
    for _ in 0..3 {
        let mock = start_mock(&["--max-upload-bytes", "2000000000"])?;
        let chunk = Bytes::from(vec![0xa5; 1000 * 1000]);
        let chunks = futures_util::stream::iter(
            (0..1000).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
        );
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::stream_with_length(
                reqwest::Body::wrap_stream(chunks),
                1000 * 1000 * 1000,
            )
            .file_name("big.bin"),
        );
        let watch = Stopwatch::start();
        upload(&client, &mock, form, "1 GB upload").await?;
        let secs = watch.elapsed().as_secs_f64();
        rates.push(1000.0 / secs);
        peak = peak.max(rss_mib(mock.pid()).1);
    }
    let gb_rate = median(&mut rates);
    Ok(vec![
        row(
            "20 × 10 MB uploads, one at a time",
            format!("{ten_rate:.0} MB/s (the disk alone: {disk_rate:.0} MB/s)"),
            "disk speed",
        ),
        row(
            "1 GB upload (median of 3)",
            format!("{gb_rate:.0} MB/s ({:.1} s)", 1000.0 / gb_rate),
            "≥ 500 MB/s",
        ),
        row(
            "server peak RSS during a 1 GB upload (highest of 3)",
            format!("{peak:.1} MiB"),
            "< 64 MiB",
        ),
        proxied_upload(&client).await?,
    ])
}

/// One 1 GB upload through a recording proxy (`--proxy fansly=... --record DIR`) to a second
/// mock: the proxy's rate and peak RSS, which must stay within the direct upload's bound.
async fn proxied_upload(client: &reqwest::Client) -> anyhow::Result<Row> {
    let upstream = start_mock(&["--max-upload-bytes", "2000000000"])?;
    let recordings = tempfile::tempdir()?;
    let proxy_to = format!("fansly={}", upstream.base());
    let record = recordings.path().to_string_lossy().into_owned();
    let proxy = start_mock(&[
        "--max-upload-bytes",
        "2000000000",
        "--proxy",
        &proxy_to,
        "--record",
        &record,
    ])?;
    let chunk = Bytes::from(vec![0xa5; 1000 * 1000]);
    let chunks =
        futures_util::stream::iter((0..1000).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(chunks),
            1000 * 1000 * 1000,
        )
        .file_name("big.bin"),
    );
    let watch = Stopwatch::start();
    upload(
        client,
        &proxy,
        form,
        "1 GB upload through the recording proxy",
    )
    .await?;
    let secs = watch.elapsed().as_secs_f64();
    let (_, proxy_peak) = rss_mib(proxy.pid());
    let (_, upstream_peak) = rss_mib(upstream.pid());
    Ok(row(
        "1 GB upload through a recording proxy to a second mock",
        format!(
            "{:.0} MB/s ({secs:.1} s); proxy peak RSS {proxy_peak:.1} MiB, upstream {upstream_peak:.1} MiB",
            1000.0 / secs
        ),
        "proxy < 64 MiB, as a direct upload",
    ))
}

/// Uploads of the 22.9 KB sample per second on `mock`, `concurrency` at a time, `total` in all.
async fn upload_rate(mock: &Server, concurrency: usize, total: u64) -> anyhow::Result<f64> {
    let sample = Bytes::from_static(SAMPLE_JPEG);
    let client = reqwest::Client::new();
    let remaining = Arc::new(AtomicU64::new(total));
    let watch = Stopwatch::start();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, base, remaining, sample) = (
            client.clone(),
            mock.base(),
            Arc::clone(&remaining),
            sample.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
            {
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::stream(sample.clone())
                        .file_name("sample.jpg")
                        .mime_str("image/jpeg")?,
                );
                let reply = client
                    .post(format!("{base}/api/fansly/acct/media/upload"))
                    .header("x-api-key", "bench")
                    .multipart(form)
                    .send()
                    .await?;
                if reply.status() != 201 {
                    bail!("upload answered {}", reply.status());
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(total as f64 / watch.elapsed().as_secs_f64())
}

/// Durable uploads: each is answered only once its file and its job's record are `fsync`ed; the
/// record's `fsync` is shared by the uploads queued together (group commit). Alternating runs with
/// and without `--state-dir`, medians of 3.
async fn durable() -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (concurrency, total) in [(1_usize, 300_u64), (16, 2_000)] {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let state = tempfile::tempdir()?;
            let state_dir = state.path().to_string_lossy().into_owned();
            let mock = start_mock(&["--state-dir", &state_dir])?;
            with.push(upload_rate(&mock, concurrency, total).await?);
            drop(mock);
            let mock = start_mock(&[])?;
            without.push(upload_rate(&mock, concurrency, total).await?);
        }
        let (with, without) = (median(&mut with), median(&mut without));
        rows.push(row(
            format!(
                "22.9 KB uploads, {concurrency} at a time ({total} per run, median of 3 alternating)"
            ),
            format!(
                "{with:.0}/s with --state-dir, {without:.0}/s without ({:.0} %)",
                100.0 * with / without
            ),
            "",
        ));
    }
    Ok(rows)
}

/// What a client can make the server hold at the per-connection caps, measured: `n` connections
/// each sending a request head of 60 KiB (under the 64 KiB cap) and stopping before its end, then
/// 8 uploads each stuck in a part header at the 1 MiB scan cap.
async fn caps() -> anyhow::Result<Vec<Row>> {
    use tokio::io::AsyncWriteExt as _;
    let n: usize = 2_000;
    let mock = start_mock(&["--max-connections", "5000", "--header-timeout", "60s"])?;
    completed_status(&mock).await?;
    let (rss_before, _) = rss_mib(mock.pid());
    let mut held = Vec::new();
    let filler = format!("x-filler: {}\r\n", "a".repeat(1000));
    let mut head =
        String::from("GET /api/fansly/media/upload/1/status HTTP/1.1\r\nhost: bench\r\n");
    while head.len() + filler.len() < 60 * 1024 {
        head.push_str(&filler);
    }
    for _ in 0..n {
        let mut stream = tokio::net::TcpStream::connect(mock.addr).await?;
        stream.write_all(head.as_bytes()).await?;
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_heads, _) = rss_mib(mock.pid());
    drop(held);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after_heads, _) = rss_mib(mock.pid());
    // Uploads whose file part's header runs on without end: the scan stops at 1 MiB.
    let mut uploads = Vec::new();
    let part_header = "a".repeat(1024 * 1024 + 4096);
    for _ in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(mock.addr).await?;
        let body = format!(
            "--b\r\ncontent-disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\nx-long: {part_header}"
        );
        let request = format!(
            "POST /api/fansly/acct/media/upload HTTP/1.1\r\nhost: bench\r\nx-api-key: bench\r\ncontent-type: multipart/form-data; boundary=b\r\ncontent-length: {}\r\n\r\n{body}",
            body.len() + 1000
        );
        // The mock refuses the part (400) once the scan cap is passed and may close before the
        // rest is sent: a failed write is that, not a failed measurement.
        let _ = stream.write_all(request.as_bytes()).await;
        uploads.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_parts, _) = rss_mib(mock.pid());
    let per_head = (rss_heads - rss_before) * 1024.0 / n as f64;
    Ok(vec![
        row(
            format!("{n} connections each holding an unfinished 60 KiB request head"),
            format!(
                "RSS {rss_before:.1} → {rss_heads:.1} MiB: {per_head:.0} KiB each, so {:.0} MiB at the default 4,096-connection cap; {rss_after_heads:.1} MiB once they closed",
                per_head * 4096.0 / 1024.0
            ),
            "bounded by the caps",
        ),
        row(
            "8 uploads each stuck in a part header past the 1 MiB scan cap",
            format!(
                "RSS {rss_after_heads:.1} → {rss_parts:.1} MiB ({:.1} MiB each)",
                (rss_parts - rss_after_heads) / 8.0
            ),
            "bounded by the caps",
        ),
    ])
}

async fn delayed() -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let scenario = dir.path().join("delayed.yaml");
    std::fs::write(
        &scenario,
        "description: every poll answered 5 s late\nfaults:\n  - on: status\n    latency: { fixed: 5s }\n",
    )?;
    let scenario = scenario.to_string_lossy().into_owned();
    let mock = start_mock(&["--scenario", &scenario, "--max-connections", "20000"])?;
    completed_status(&mock).await?;
    let (rss_before, _) = rss_mib(mock.pid());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut tasks = Vec::new();
    for _ in 0..10_000 {
        let (client, base) = (client.clone(), mock.base());
        tasks.push(tokio::spawn(async move {
            client
                .get(format!("{base}{STATUS_PATH}"))
                .header("x-api-key", "bench")
                .send()
                .await
                .is_ok_and(|response| response.status() == 200)
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_waiting, _) = rss_mib(mock.pid());
    let mut ok = 0;
    for task in tasks {
        ok += usize::from(task.await.unwrap_or(false));
    }
    Ok(vec![row(
        "10,000 concurrent polls delayed 5 s",
        format!("{ok} answered; RSS {rss_before:.1} → {rss_waiting:.1} MiB while waiting"),
        "a timer each, not a thread",
    )])
}

/// An upload the mock answered 201: its job id and the SHA-256 of what was sent.
type Acknowledged = (String, [u8; 32]);

/// How long, in seconds, a job may sit untouched in the soak before the mock forgets it
/// (`--idle-expiry`): each client is done with its job once it has checked the CDN bytes, so the
/// mock's memory and disk measure what serving costs, not a day of kept jobs (the `jobs`
/// measurement prices those). A job queued longer than this before any poller reached it was
/// forgotten by design, and is counted apart from lost jobs.
const SOAK_IDLE_EXPIRY_SECS: u64 = 5;

/// What the soak's clients counted.
#[derive(Debug, Default)]
struct SoakTally {
    acknowledged: AtomicU64,
    duplicated: AtomicU64,
    polls: AtomicU64,
    intact: AtomicU64,
    corrupted: AtomicU64,
    /// Jobs that waited in the queue past the idle expiry (too few pollers for the uploads).
    unreached: AtomicU64,
}

/// Uploaders hand each acknowledged job to the next free poller, which follows it as a client
/// would (polling every 500 ms, waiting out `Retry-After`) until it completes, then checks its CDN
/// bytes against the upload's SHA-256.
async fn soak(settings: &SoakSettings) -> anyhow::Result<Vec<Row>> {
    let mock = start_mock(&[
        "--clock",
        "system",
        "--processing-time",
        "1s",
        "--idle-expiry",
        &format!("{SOAK_IDLE_EXPIRY_SECS}s"),
    ])?;
    let client = reqwest::Client::new();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let uploads_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let queue: Arc<std::sync::Mutex<std::collections::VecDeque<(Acknowledged, Stopwatch)>>> =
        Arc::default();
    let ids: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    let tally = Arc::new(SoakTally::default());
    let mut uploaders = Vec::new();
    for uploader in 0..settings.uploaders {
        let (client, base, stop, queue, ids, tally) = (
            client.clone(),
            mock.base(),
            Arc::clone(&stop),
            Arc::clone(&queue),
            Arc::clone(&ids),
            Arc::clone(&tally),
        );
        uploaders.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let mut bytes = SAMPLE_JPEG.to_vec();
                let extra = ((uploader as u64 * 7919 + n * 104_729) % 300_000) as usize;
                bytes.extend((0..extra).map(|idx| (idx as u64 ^ n ^ uploader as u64) as u8));
                let digest = sha256(&bytes);
                let scenario = ["happy", "flaky-5xx", "rate-limited"][(n as usize + uploader) % 3];
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(bytes).file_name("soak.jpg"),
                );
                let Ok(reply) = client
                    .post(format!("{base}/api/fansly/acct/media/upload"))
                    .header("x-api-key", "bench")
                    .header("x-mock-scenario", scenario)
                    .multipart(form)
                    .send()
                    .await
                else {
                    continue;
                };
                if reply.status() != 201 {
                    continue;
                }
                let Ok(body) = reply.json::<serde_json::Value>().await else {
                    continue;
                };
                let Some(id) = body["data"]["jobId"].as_str() else {
                    continue;
                };
                tally.acknowledged.fetch_add(1, Ordering::Relaxed);
                let fresh = ids.lock().is_ok_and(|mut ids| ids.insert(id.to_owned()));
                if !fresh {
                    tally.duplicated.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut queue) = queue.lock() {
                    queue.push_back(((id.to_owned(), digest), Stopwatch::start()));
                }
            }
        }));
    }
    let mut pollers = Vec::new();
    for _ in 0..settings.pollers {
        let (client, base, uploads_done, queue, tally) = (
            client.clone(),
            mock.base(),
            Arc::clone(&uploads_done),
            Arc::clone(&queue),
            Arc::clone(&tally),
        );
        pollers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut queue| queue.pop_front());
                let Some(((id, digest), queued)) = next else {
                    if uploads_done.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if queued.elapsed() >= Duration::from_secs(SOAK_IDLE_EXPIRY_SECS) {
                    tally.unreached.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                match follow(&client, &base, &id, digest, &tally.polls).await {
                    Verdict::Intact => tally.intact.fetch_add(1, Ordering::Relaxed),
                    Verdict::Corrupted => tally.corrupted.fetch_add(1, Ordering::Relaxed),
                    // Counted at the end, with the jobs no poller got to.
                    Verdict::Lost => 0,
                };
            }
        }));
    }
    let storage = mock._dir.as_ref().map(|dir| dir.path().to_owned());
    let count_files = || {
        storage
            .as_ref()
            .and_then(|dir| std::fs::read_dir(dir).ok())
            .map_or(0, Iterator::count)
    };
    let mut rss = Vec::new();
    let mut files = Vec::new();
    let seconds = settings.duration.as_secs().max(1);
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(rss_mib(mock.pid()).0);
        files.push(count_files());
    }
    stop.store(true, Ordering::Relaxed);
    for task in uploaders {
        let _ = task.await;
    }
    uploads_done.store(true, Ordering::Relaxed);
    // Pollers finish the jobs in hand and the queue; a job still unfinished after this is lost.
    let _ = tokio::time::timeout(Duration::from_secs(90), async {
        for task in pollers {
            let _ = task.await;
        }
    })
    .await;
    let (intact, corrupted, unreached) = (
        tally.intact.load(Ordering::Relaxed),
        tally.corrupted.load(Ordering::Relaxed),
        tally.unreached.load(Ordering::Relaxed),
    );
    // Whatever was acknowledged, reached in time and never served its bytes is lost.
    let lost = tally.acknowledged.load(Ordering::Relaxed) - intact - corrupted - unreached;
    let (rss_low, rss_high) = low_high(rss.iter().skip(10).copied());
    // Flat means the last ten seconds hold no more than the ten after the warm-up.
    let mean = |samples: &[f64]| samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    let rss_early = mean(rss.get(10..rss.len().min(20)).unwrap_or_default());
    let rss_late = mean(&rss[rss.len().saturating_sub(10)..]);
    // The mean of each 30 s after the warm-up: a leak climbs window after window, an allocator
    // settling in levels off.
    let windows: Vec<String> = rss
        .get(10..)
        .unwrap_or_default()
        .chunks(30)
        .filter(|window| window.len() >= 10)
        .map(|window| format!("{:.1}", mean(window)))
        .collect();
    let (files_low, files_high) = low_high(files.iter().skip(10).map(|n| *n as f64));
    let peak_rss = rss_mib(mock.pid()).1;
    // A graceful stop, as CI would: SIGTERM, then count what the server left behind.
    let mut mock = mock;
    let _ = Command::new("kill")
        .args(["-TERM", &mock.pid().to_string()])
        .status();
    let _ = mock.child.wait();
    let left = count_files();
    Ok(vec![row(
        format!(
            "soak: {} uploaders, {} pollers, {} s, a third each happy / flaky-5xx / rate-limited (jobs forgotten {SOAK_IDLE_EXPIRY_SECS} s after their client is done)",
            settings.uploaders, settings.pollers, seconds
        ),
        format!(
            "{} jobs acknowledged, {} polls; intact {intact}, lost {lost}, duplicated {}, corrupted {corrupted}, not reached before the expiry {unreached}; after the first 10 s: RSS {rss_low:.1}–{rss_high:.1} MiB (mean of s 10–20 {rss_early:.1}, of the last 10 s {rss_late:.1}; by 30 s from s 10: {}; peak {peak_rss:.1}), stored files {files_low:.0}–{files_high:.0}; {left} files left after SIGTERM",
            tally.acknowledged.load(Ordering::Relaxed),
            tally.polls.load(Ordering::Relaxed),
            tally.duplicated.load(Ordering::Relaxed),
            windows.join(" → "),
        ),
        "0 lost, 0 duplicated, 0 corrupted, flat RSS, 0 files",
    )])
}

/// The lowest and highest of `samples` (zeros when there are none).
fn low_high(samples: impl Iterator<Item = f64>) -> (f64, f64) {
    samples
        .fold(None, |range: Option<(f64, f64)>, sample| {
            Some(range.map_or((sample, sample), |(low, high)| {
                (low.min(sample), high.max(sample))
            }))
        })
        .unwrap_or((0.0, 0.0))
}

/// What following one acknowledged soak upload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Completed, and its link served exactly the uploaded bytes.
    Intact,
    /// Never answered as completed.
    Lost,
    /// Completed, but the link served other bytes.
    Corrupted,
}

/// Polls one job as a client would, every 500 ms and after each `Retry-After`, until it completes
/// (for at most about a minute), then compares its CDN bytes with the upload's digest.
async fn follow(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    digest: [u8; 32],
    polls: &AtomicU64,
) -> Verdict {
    let url = format!("{base}/api/fansly/media/upload/{id}/status");
    for _ in 0..120 {
        polls.fetch_add(1, Ordering::Relaxed);
        let mut wait = Duration::from_millis(500);
        let body = match client.get(&url).header("x-api-key", "bench").send().await {
            Ok(reply) if reply.status().is_success() => {
                reply.json::<serde_json::Value>().await.ok()
            }
            Ok(reply) => {
                if let Some(secs) = reply
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
                {
                    wait = Duration::from_secs(secs.min(10));
                }
                None
            }
            Err(_) => None,
        };
        let Some(body) = body.filter(|body| body["data"]["state"] == "completed") else {
            tokio::time::sleep(wait).await;
            continue;
        };
        let link = body
            .pointer("/data/result/accountMedia/0/media/locations/0/location")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let served = match client.get(link).send().await {
            Ok(response) => response.bytes().await.unwrap_or_default(),
            Err(_) => Bytes::new(),
        };
        return if sha256(&served) == digest {
            Verdict::Intact
        } else {
            Verdict::Corrupted
        };
    }
    Verdict::Lost
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}
