//! Grading a client program: run it against the mock once per built-in scenario, then judge it
//! from its exit status and the mock's journal of what it sent.
//!
//! The mock runs in-process on the system clock (the client lives in real time), one server per
//! scenario, all scenarios at once. The grader owns the timelines: by default ([`TimeScale::Auto`])
//! a timeline longer than [`AUTO_BUDGET`] is compressed to it (the `slow` scenario's 3.5 minutes
//! become 15 s, still ten progress steps), and every job's outcome waits until the job has been
//! polled past the last poll a fault is aimed at, so a 429 on the 3rd poll is reached whatever
//! the time scale and the client's poll interval. `Retry-After` values and delays are never
//! scaled, because honouring them is what is judged. Clients are told how long a job may take in
//! this run (`CONFORMANCE_DEADLINE`), so a client that gives up on a stuck job can do so in
//! seconds.
//!
//! A rule a scenario is built to exercise (Retry-After in `rate-limited`, retries in
//! `flaky-5xx`) that the run did not exercise is [`Outcome::Unexercised`], not a pass; a rule
//! that does not apply to a scenario (Retry-After in `happy`) is skipped with its reason.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mock_server::clock::Clock;
use mock_server::fixture::Fixtures;
use mock_server::job::Timeline;
use mock_server::scenario::{Action, BUILT_IN, Route, Scenario};
use mock_server::{MockServer, Provider};
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::check::{CheckResult, Outcome};

/// How to grade a client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Which provider the client speaks.
    pub provider: Provider,
    /// The program and its arguments; `{base_url}`, `{api_key}`, `{account}`, `{file}` and
    /// `{provider}` are substituted.
    pub command: Vec<String>,
    /// Scenarios to run (built-in names or YAML paths); empty means every built-in one.
    pub scenarios: Vec<String>,
    /// Polls of one job closer together than this break `poll_rate`.
    pub min_poll_interval: Duration,
    /// Retries of one failed request beyond this break `retries_within_limits`.
    pub max_retries: u32,
    /// A client still running after this is killed (and judged as hanging); by default the
    /// run's deadline plus [`TIMEOUT_MARGIN`].
    pub timeout: Option<Duration>,
    /// How scenario timelines are timed.
    pub time_scale: TimeScale,
    /// The file handed to the client; the repository's sample JPEG when absent.
    pub file: Option<PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            provider: Provider::Fansly,
            command: Vec::new(),
            scenarios: Vec::new(),
            min_poll_interval: Duration::from_millis(500),
            max_retries: 10,
            timeout: None,
            time_scale: TimeScale::Auto,
            file: None,
        }
    }
}

/// The longest a scenario's timeline lasts under [`TimeScale::Auto`]: long enough to show a
/// slow job creeping through its progress steps at a one-second poll interval, short enough that
/// grading all twelve scenarios takes well under a minute.
pub const AUTO_BUDGET: Duration = Duration::from_secs(15);

/// What the run's deadline adds to its longest timeline: room for Retry-After waits, retries
/// and the polls a job's outcome waits for.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// What the default `--timeout` adds to the run's deadline: a client that gives up at the
/// deadline has this long to report it before it is killed.
pub const TIMEOUT_MARGIN: Duration = Duration::from_secs(20);

/// How the grader times scenario timelines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeScale {
    /// Timelines longer than [`AUTO_BUDGET`] are compressed to it; shorter ones run as written.
    Auto,
    /// Every timeline is multiplied by this factor (0.1 runs a 3-minute job in 18 s).
    Factor(f64),
}

impl FromStr for TimeScale {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "auto" {
            return Ok(TimeScale::Auto);
        }
        match text.parse::<f64>() {
            Ok(factor) if factor.is_finite() && factor > 0.0 => Ok(TimeScale::Factor(factor)),
            _ => Err(format!(
                "invalid time scale {text:?}: expected \"auto\" or a positive number such as 0.1"
            )),
        }
    }
}

impl std::fmt::Display for TimeScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeScale::Auto => write!(
                f,
                "auto (timelines over {}s compressed)",
                AUTO_BUDGET.as_secs()
            ),
            TimeScale::Factor(factor) => write!(f, "{factor}"),
        }
    }
}

/// `timeline` as the grader runs it: timed by `scale`, and with its outcome held until the job
/// has been polled past every poll `scenario` aims a fault at (at least twice, so `poll_rate`
/// always has a pair of polls to judge).
pub fn graded_timeline(timeline: &Timeline, scenario: &Scenario, scale: TimeScale) -> Timeline {
    let factor = match scale {
        TimeScale::Factor(factor) => factor,
        TimeScale::Auto => match timeline.duration() {
            Some(duration) if duration > AUTO_BUDGET => {
                AUTO_BUDGET.as_secs_f64() / duration.as_secs_f64()
            }
            _ => 1.0,
        },
    };
    let last_aimed_poll = scenario
        .faults
        .iter()
        .filter(|fault| fault.route == Route::Status)
        .flat_map(|fault| fault.nth.iter().copied())
        .max()
        .unwrap_or(0);
    timeline
        .scaled(factor)
        .with_min_polls(last_aimed_poll.max(2))
}

/// Why grading could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No command to run.
    #[error("no client command given (put it after --)")]
    NoCommand,
    /// A scenario did not load.
    #[error(transparent)]
    Scenario(#[from] mock_server::scenario::ScenarioError),
    /// The mock did not start.
    #[error("the mock did not start: {0}")]
    Mock(#[from] mock_server::StartError),
    /// The sample file could not be written.
    #[error("cannot prepare the sample file: {0}")]
    File(#[from] std::io::Error),
    /// The client program cannot be run: nothing to grade.
    #[error("cannot run the client program {program:?}: {reason}")]
    Program {
        /// The program as given.
        program: String,
        /// Why it cannot run.
        reason: String,
    },
}

/// One scenario's verdict: a row per rule.
#[derive(Debug, Clone)]
pub struct Grade {
    /// The scenario.
    pub scenario: String,
    /// The client's exit code (`None` when killed or killed by a signal).
    pub exit_code: Option<i32>,
    /// One row per rule.
    pub results: Vec<CheckResult>,
    /// The last lines of the client's output, for failure reports.
    pub output_tail: String,
    /// How long the client ran.
    pub elapsed: Duration,
    /// Status polls the client sent.
    pub n_polls: usize,
}

impl Grade {
    /// Whether any rule failed.
    pub fn is_failure(&self) -> bool {
        self.results
            .iter()
            .any(|result| result.outcome.is_failure())
    }

    /// The rules this scenario is built to exercise that the run did not.
    pub fn unexercised(&self) -> impl Iterator<Item = &CheckResult> {
        self.results
            .iter()
            .filter(|result| matches!(result.outcome, Outcome::Unexercised { .. }))
    }
}

/// What a grading run tells the clients, and how long it waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// How long a job may take in this run before a client should give up
    /// (`CONFORMANCE_DEADLINE`, whole seconds).
    pub deadline: Duration,
    /// A client still running after this is killed.
    pub timeout: Duration,
}

/// The run's deadline (the longest timeline among `scenarios` after timing, plus
/// [`DEADLINE_MARGIN`]; a stuck job's endless timeline does not count) and timeout.
pub fn budget(options: &ClientOptions, scenarios: &[Arc<Scenario>]) -> Budget {
    let fixtures = Fixtures::embedded();
    let fixture = match options.provider {
        Provider::Fansly => &fixtures.fansly.timeline,
        Provider::OnlyFans => &fixtures.onlyfans.timeline,
    };
    let longest = scenarios
        .iter()
        .filter_map(|scenario| {
            let timeline = scenario.timeline.as_ref().unwrap_or(fixture);
            graded_timeline(timeline, scenario, options.time_scale).duration()
        })
        .max()
        .unwrap_or(Duration::ZERO);
    let deadline = Duration::from_secs((longest + DEADLINE_MARGIN).as_secs_f64().ceil() as u64);
    Budget {
        deadline,
        timeout: options.timeout.unwrap_or(deadline + TIMEOUT_MARGIN),
    }
}

/// What the grader reports while a scenario runs, and once when it ends.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The client is still running.
    Running {
        /// The scenario.
        scenario: &'a str,
        /// Since the client started.
        elapsed: Duration,
        /// Status polls seen so far.
        n_polls: usize,
    },
    /// The scenario is graded.
    Done(&'a Grade),
}

/// The rules, in report order.
pub const RULES: &[(&str, &str)] = &[
    (
        "authenticates",
        "Every request carries a valid API key (no 401).",
    ),
    (
        "multipart_well_formed",
        "Uploads are well-formed multipart with the provider's field names and a file part.",
    ),
    (
        "polls_until_terminal_then_stops",
        "Each job is polled until completed or failed, and never after.",
    ),
    (
        "honours_retry_after",
        "After a Retry-After, the next request waits at least that long.",
    ),
    (
        "poll_rate",
        "Polls of one job are at least the minimum interval apart.",
    ),
    (
        "reports_outcome",
        "Exit 0 when the job completed; non-zero when it failed or never finished.",
    ),
    (
        "retries_within_limits",
        "5xx answers, dropped connections and cut bodies are retried, within the retry limit.",
    ),
    (
        "no_duplicate_upload",
        "The same file is uploaded again only after the earlier attempt failed.",
    ),
];

/// Runs the client against every scenario and grades it; `on_event` hears each scenario's
/// progress and its grade as it lands.
pub async fn grade(
    options: &ClientOptions,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Vec<Grade>, ClientError> {
    let Some(program) = options.command.first() else {
        return Err(ClientError::NoCommand);
    };
    // A program that cannot start would be "graded" with every rule about requests failing;
    // that is bad usage, not a verdict.
    which::which(program).map_err(|err| ClientError::Program {
        program: program.clone(),
        reason: err.to_string(),
    })?;
    let scenarios = scenarios(options)?;
    let budget = budget(options, &scenarios);
    let dir = tempfile::tempdir()?;
    let file = match &options.file {
        Some(file) => file.clone(),
        None => {
            let path = dir.path().join("sample.jpg");
            std::fs::write(&path, crate::run::Sample::jpeg().bytes)?;
            path
        }
    };
    let runs = scenarios.into_iter().map(|scenario| {
        let file = file.clone();
        async move {
            let grade = grade_one(options, budget, scenario, &file, on_event).await?;
            on_event(Event::Done(&grade));
            Ok(grade)
        }
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .collect()
}

/// The scenarios `options` names, or every built-in one.
pub fn scenarios(options: &ClientOptions) -> Result<Vec<Arc<Scenario>>, ClientError> {
    let names: Vec<String> = if options.scenarios.is_empty() {
        BUILT_IN
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect()
    } else {
        options.scenarios.clone()
    };
    Ok(names
        .iter()
        .map(|name| Scenario::resolve(name))
        .collect::<Result<Vec<_>, _>>()?)
}

async fn grade_one(
    options: &ClientOptions,
    budget: Budget,
    scenario: Arc<Scenario>,
    file: &std::path::Path,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Grade, ClientError> {
    let mut fixtures = Fixtures::embedded();
    fixtures.fansly.timeline =
        graded_timeline(&fixtures.fansly.timeline, &scenario, options.time_scale);
    fixtures.onlyfans.timeline =
        graded_timeline(&fixtures.onlyfans.timeline, &scenario, options.time_scale);
    let mut graded = (*scenario).clone();
    graded.timeline = graded
        .timeline
        .map(|timeline| graded_timeline(&timeline, &scenario, options.time_scale));
    let api_key = format!("client-key-{}", scenario.name);
    let server = MockServer::builder()
        .clock(Clock::system())
        .fixtures(fixtures)
        .api_key(api_key.clone())
        .seed(7)
        .scenario(Arc::new(graded))
        .start()
        .await?;
    let base_url = server.base_url();
    let account = match options.provider {
        Provider::Fansly => "client".to_owned(),
        Provider::OnlyFans => "acct_client000000000".to_owned(),
    };
    let file_text = file.display().to_string();
    let deadline = budget.deadline.as_secs().to_string();
    let substitute = |arg: &str| {
        arg.replace("{base_url}", &base_url)
            .replace("{deadline}", &deadline)
            .replace("{api_key}", &api_key)
            .replace("{account}", &account)
            .replace("{file}", &file_text)
            .replace("{provider}", options.provider.slug())
    };
    let mut command = tokio::process::Command::new(substitute(&options.command[0]));
    command
        .args(options.command[1..].iter().map(|arg| substitute(arg)))
        .env("CONFORMANCE_BASE_URL", &base_url)
        .env("CONFORMANCE_API_KEY", &api_key)
        .env("CONFORMANCE_ACCOUNT", &account)
        .env("CONFORMANCE_FILE", &file_text)
        .env("CONFORMANCE_PROVIDER", options.provider.slug())
        .env("CONFORMANCE_SCENARIO", &scenario.name)
        .env("CONFORMANCE_DEADLINE", &deadline)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = mock_server::clock::Stopwatch::start();
    let (exit_code, output_tail, killed) = match command.spawn() {
        Err(err) => (None, format!("could not start the client: {err}"), false),
        Ok(mut child) => {
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            let read = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| async move {
                let mut text = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut text).await;
                }
                text
            };
            let finished = tokio::time::timeout(budget.timeout, async move {
                let (mut out, err, status) = tokio::join!(
                    read(stdout.map(|pipe| Box::new(pipe) as _)),
                    read(stderr.map(|pipe| Box::new(pipe) as _)),
                    child.wait()
                );
                out.extend_from_slice(&err);
                (out, status)
            });
            tokio::pin!(finished);
            // Progress while the client runs: its polls so far, read from the mock's journal.
            let mut tick = tokio::time::interval(PROGRESS_TICK);
            let finished = loop {
                tokio::select! {
                    result = &mut finished => break result,
                    _ = tick.tick() => {
                        let n_polls = journal(&base_url)
                            .await
                            .iter()
                            .filter(|entry| entry.route == "status")
                            .count();
                        on_event(Event::Running {
                            scenario: &scenario.name,
                            elapsed: started.elapsed(),
                            n_polls,
                        });
                    }
                }
            };
            // On timeout the child is dropped inside the future, and `kill_on_drop` ends it.
            match finished {
                Ok((text, status)) => (
                    status.ok().and_then(|status| status.code()),
                    tail(&text),
                    false,
                ),
                Err(_) => (
                    None,
                    format!(
                        "killed: still running after {}",
                        humantime::format_duration(budget.timeout)
                    ),
                    true,
                ),
            }
        }
    };
    let elapsed = started.elapsed();
    let entries = journal(&base_url).await;
    let results = judge(options, budget, &scenario, &entries, exit_code, killed);
    Ok(Grade {
        scenario: scenario.name.clone(),
        exit_code,
        results,
        output_tail,
        elapsed,
        n_polls: entries
            .iter()
            .filter(|entry| entry.route == "status")
            .count(),
    })
}

/// How often a running scenario's progress is refreshed.
const PROGRESS_TICK: Duration = Duration::from_millis(500);

/// Failures listed per rule; the rest are counted.
pub const MAX_FAILURES_LISTED: usize = 10;

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// One journal entry as the admin API shows it (only what the rules read).
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    /// Arrival time, ISO 8601 with milliseconds.
    pub at: String,
    /// `upload`, `status`, `cdn`, ...
    pub route: String,
    /// The status answered (0 when dropped).
    pub status: u16,
    /// The job.
    pub job_id: Option<String>,
    /// The fault injected.
    pub fault: Option<String>,
    /// The state shown.
    pub state: Option<String>,
    /// An earlier upload of the same bytes.
    pub repeat_of: Option<u64>,
    /// Its number.
    pub seq: u64,
    /// `Retry-After` sent.
    pub retry_after: Option<u64>,
    /// Multipart parts.
    #[serde(default)]
    pub parts: Vec<PartEntry>,
}

/// One multipart part in the journal.
#[derive(Debug, Clone, Deserialize)]
pub struct PartEntry {
    /// Its name.
    pub name: String,
    /// Its file name.
    pub file_name: Option<String>,
}

impl Entry {
    fn at_ms(&self) -> i128 {
        time::OffsetDateTime::parse(&self.at, &time::format_description::well_known::Rfc3339)
            .map_or(0, |at| at.unix_timestamp_nanos() / 1_000_000)
    }

    /// Whether the client got this answer whole (a slow one still counts).
    fn is_delivered(&self) -> bool {
        self.status != 0
            && self
                .fault
                .as_deref()
                .is_none_or(|fault| fault == "latency" || fault == "dribble")
    }

    /// Whether this answer was a failure a client should retry.
    fn is_retryable_failure(&self) -> bool {
        self.status == 0
            || self.status >= 500
            || self.status == 429
            || matches!(
                self.fault.as_deref(),
                Some("drop" | "empty" | "malformed" | "truncate")
            )
    }
}

async fn journal(base_url: &str) -> Vec<Entry> {
    #[derive(Deserialize)]
    struct Journal {
        entries: Vec<Entry>,
    }
    let Ok(response) = reqwest::get(format!("{base_url}/__admin/journal")).await else {
        return Vec::new();
    };
    response
        .json::<Journal>()
        .await
        .map(|journal| journal.entries)
        .unwrap_or_default()
}

/// A job id as a report orders it: by number where it is one (1, 2, 10, not 1, 10, 2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct JobKey(Option<u64>, String);

impl JobKey {
    fn of(id: &str) -> Self {
        Self(id.parse().ok(), id.to_owned())
    }
}

impl std::fmt::Display for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

/// What a scenario is built to make a client face, read from its faults.
fn sends_retry_after(scenario: &Scenario) -> bool {
    scenario.faults.iter().any(|fault| {
        matches!(
            fault.action,
            Action::Respond {
                retry_after: Some(_),
                ..
            }
        )
    })
}

fn injects_retryable_failure(scenario: &Scenario) -> bool {
    scenario.faults.iter().any(|fault| match fault.action {
        Action::Respond { status, .. } => status == 429 || status >= 500,
        Action::Drop | Action::Empty | Action::Malformed | Action::Truncate => true,
        Action::Delay(_) | Action::Dribble { .. } => false,
    })
}

/// Applies every rule to one scenario's journal and exit status.
pub fn judge(
    options: &ClientOptions,
    budget: Budget,
    scenario: &Scenario,
    entries: &[Entry],
    exit_code: Option<i32>,
    killed: bool,
) -> Vec<CheckResult> {
    let scenario_def = scenario;
    let scenario = scenario.name.as_str();
    let api: Vec<&Entry> = entries
        .iter()
        .filter(|entry| entry.route == "upload" || entry.route == "status")
        .collect();
    let uploads: Vec<&Entry> = api
        .iter()
        .copied()
        .filter(|e| e.route == "upload")
        .collect();
    let mut polls_by_job: BTreeMap<JobKey, Vec<&Entry>> = BTreeMap::new();
    for entry in api.iter().filter(|entry| entry.route == "status") {
        if let Some(job) = &entry.job_id {
            polls_by_job.entry(JobKey::of(job)).or_default().push(entry);
        }
    }
    let async_jobs: Vec<JobKey> = uploads
        .iter()
        .filter(|upload| upload.status == 201 || upload.status == 202)
        .filter_map(|upload| upload.job_id.as_deref().map(JobKey::of))
        .collect();
    let no_async_job = async_jobs.is_empty() && polls_by_job.is_empty();
    let mut verdicts: BTreeMap<&str, Verdict> = BTreeMap::new();

    verdicts.insert("authenticates", {
        let refused: Vec<String> = api
            .iter()
            .filter(|entry| entry.status == 401)
            .map(|entry| format!("request #{} got 401", entry.seq))
            .collect();
        if api.is_empty() {
            Verdict::Fail(vec!["the client sent no API request".to_owned()])
        } else {
            Verdict::from_failures(refused, api.len())
        }
    });

    verdicts.insert("multipart_well_formed", {
        let allowed: &[&str] = match options.provider {
            Provider::Fansly => &["file", "formInputs"],
            Provider::OnlyFans => &["file", "file_url", "async", "type"],
        };
        let mut failures = Vec::new();
        for upload in &uploads {
            if matches!(upload.status, 400 | 413 | 415 | 422) {
                failures.push(format!(
                    "upload #{} refused with {}",
                    upload.seq, upload.status
                ));
            }
            for part in &upload.parts {
                if !allowed.contains(&part.name.as_str()) {
                    failures.push(format!(
                        "upload #{}: unknown field {:?}",
                        upload.seq, part.name
                    ));
                }
            }
            let has_file = upload
                .parts
                .iter()
                .any(|part| part.name == "file" && part.file_name.is_some())
                || upload.parts.iter().any(|part| part.name == "file_url");
            if upload.status != 0 && !has_file {
                failures.push(format!(
                    "upload #{}: no file part with a filename",
                    upload.seq
                ));
            }
        }
        if uploads.is_empty() {
            Verdict::Fail(vec!["the client never uploaded".to_owned()])
        } else {
            Verdict::from_failures(failures, uploads.len())
        }
    });

    // The state the client last saw for each job, and whether it polled after a terminal one.
    let mut final_states: BTreeMap<JobKey, Option<&str>> = BTreeMap::new();
    verdicts.insert("polls_until_terminal_then_stops", {
        let mut failures = Vec::new();
        for (job, polls) in &polls_by_job {
            let first_terminal = polls.iter().position(|poll| {
                poll.is_delivered() && matches!(poll.state.as_deref(), Some("completed" | "failed"))
            });
            match first_terminal {
                Some(idx) => {
                    final_states.insert(job.clone(), polls[idx].state.as_deref());
                    if polls.len() > idx + 1 {
                        failures.push(format!(
                            "job {job}: {} polls after it was {}",
                            polls.len() - idx - 1,
                            polls[idx].state.as_deref().unwrap_or_default()
                        ));
                    }
                }
                None => {
                    final_states.insert(job.clone(), None);
                    if scenario != "stuck" {
                        failures.push(format!(
                            "job {job}: stopped polling before a terminal state"
                        ));
                    }
                }
            }
        }
        for job in &async_jobs {
            if !polls_by_job.contains_key(job) && options.provider == Provider::Fansly {
                failures.push(format!("job {job}: never polled"));
            }
        }
        if scenario == "stuck" && failures.is_empty() {
            Verdict::NotApplicable("the job never ends in this scenario".to_owned())
        } else if no_async_job && failures.is_empty() {
            Verdict::NotApplicable(
                "no job to poll: every upload was answered synchronously".to_owned(),
            )
        } else {
            Verdict::from_failures(failures, polls_by_job.len())
        }
    });

    verdicts.insert("honours_retry_after", {
        let mut failures = Vec::new();
        let mut cases = 0;
        for (idx, entry) in api.iter().enumerate() {
            let Some(seconds) = entry.retry_after else {
                continue;
            };
            let Some(next) = api[idx + 1..].iter().find(|next| next.route == entry.route) else {
                continue;
            };
            cases += 1;
            let waited = next.at_ms() - entry.at_ms();
            // Journal times are whole milliseconds; allow one either side.
            if waited + 1 < i128::from(seconds) * 1000 {
                failures.push(format!(
                    "request #{} came {waited} ms after a Retry-After of {seconds} s",
                    next.seq
                ));
            }
        }
        if cases == 0 && sends_retry_after(scenario_def) {
            Verdict::Unexercised(format!(
                "{scenario} sends Retry-After, but no request after one reached the mock \
                 (the client stopped before the faulted request, or never made it)"
            ))
        } else if cases == 0 {
            Verdict::NotApplicable("this scenario sends no Retry-After".to_owned())
        } else {
            Verdict::from_failures(failures, cases)
        }
    });

    verdicts.insert("poll_rate", {
        let mut failures = Vec::new();
        let mut cases = 0;
        let min_ms = i128::try_from(options.min_poll_interval.as_millis()).unwrap_or(i128::MAX);
        for (job, polls) in &polls_by_job {
            for pair in polls.windows(2) {
                cases += 1;
                let gap = pair[1].at_ms() - pair[0].at_ms();
                if gap < min_ms {
                    failures.push(format!(
                        "job {job}: polls #{} and #{} {gap} ms apart",
                        pair[0].seq, pair[1].seq
                    ));
                }
            }
        }
        if cases == 0 && no_async_job {
            Verdict::NotApplicable(
                "no job to poll: every upload was answered synchronously".to_owned(),
            )
        } else if cases == 0 {
            Verdict::Unexercised(
                "no job was polled twice, so no interval between polls could be measured"
                    .to_owned(),
            )
        } else {
            Verdict::from_failures(failures, cases)
        }
    });

    verdicts.insert("reports_outcome", {
        let last_job = uploads
            .iter()
            .rev()
            .find_map(|upload| upload.job_id.as_deref())
            .map(JobKey::of);
        let final_state = last_job
            .as_ref()
            .and_then(|job| final_states.get(job).copied().flatten());
        let sync_completed = options.provider == Provider::OnlyFans
            && last_job
                .as_ref()
                .is_some_and(|job| !polls_by_job.contains_key(job))
            && uploads.last().is_some_and(|upload| upload.status == 200);
        let expected_success = match final_state {
            Some("completed") => true,
            Some(_) => false,
            None => sync_completed,
        };
        if killed {
            Verdict::Fail(vec![format!(
                "still running after {} (--timeout); this run told the client \
                 CONFORMANCE_DEADLINE={}: a client that gives up later needs a longer --timeout",
                humantime::format_duration(budget.timeout),
                budget.deadline.as_secs()
            )])
        } else if scenario == "expired-links" {
            Verdict::NotApplicable(
                "a client may rightly fail on links that arrive expired".to_owned(),
            )
        } else {
            let succeeded = exit_code == Some(0);
            let what = final_state.unwrap_or("unfinished");
            if succeeded == expected_success {
                Verdict::Pass(1)
            } else {
                Verdict::Fail(vec![format!(
                    "the last job was {what}, the client exited {}",
                    exit_code.map_or("by a signal".to_owned(), |code| code.to_string())
                )])
            }
        }
    });

    verdicts.insert("retries_within_limits", {
        let mut failures = Vec::new();
        let mut cases = 0;
        let mut consecutive = 0;
        for (idx, entry) in api.iter().enumerate() {
            if !entry.is_retryable_failure() {
                consecutive = 0;
                continue;
            }
            cases += 1;
            consecutive += 1;
            if consecutive > options.max_retries {
                failures.push(format!(
                    "request #{}: {consecutive} failed attempts in a row, limit {}",
                    entry.seq, options.max_retries
                ));
            }
            let retried = api[idx + 1..].iter().any(|next| {
                next.route == entry.route
                    && (entry.route == "upload" || next.job_id == entry.job_id)
            });
            if !retried {
                failures.push(format!(
                    "request #{} ({} {}) was not retried",
                    entry.seq,
                    entry.route,
                    if entry.status == 0 {
                        "dropped".to_owned()
                    } else {
                        entry.status.to_string()
                    }
                ));
            }
        }
        if cases == 0 && injects_retryable_failure(scenario_def) {
            Verdict::Unexercised(format!(
                "{scenario} injects failures, but none reached the client \
                 (it stopped before the faulted request, or never made it)"
            ))
        } else if cases == 0 {
            Verdict::NotApplicable("this scenario injects no failure".to_owned())
        } else {
            Verdict::from_failures(failures, cases)
        }
    });

    verdicts.insert("no_duplicate_upload", {
        let mut failures = Vec::new();
        for upload in &uploads {
            let Some(first) = upload.repeat_of else {
                continue;
            };
            let earlier_failed = entries
                .iter()
                .find(|e| e.seq == first)
                .is_none_or(|earlier| {
                    earlier.is_retryable_failure()
                        || earlier.status >= 400
                        || earlier.job_id.as_deref().is_some_and(|job| {
                            matches!(final_states.get(&JobKey::of(job)), Some(Some("failed")))
                        })
                });
            if !earlier_failed {
                failures.push(format!(
                    "upload #{} sent the same bytes as upload #{first}, which had not failed",
                    upload.seq
                ));
            }
        }
        Verdict::from_failures(failures, uploads.len().max(1))
    });

    RULES
        .iter()
        .map(|(name, description)| {
            let verdict = verdicts
                .remove(name)
                .unwrap_or(Verdict::Unexercised("not judged".to_owned()));
            let (cases, outcome) = verdict.into_outcome();
            CheckResult {
                name,
                description,
                cases,
                outcome,
            }
        })
        .collect()
}

enum Verdict {
    Pass(usize),
    Fail(Vec<String>),
    /// The rule does not apply to this scenario.
    NotApplicable(String),
    /// The scenario is built to exercise the rule and the run did not.
    Unexercised(String),
}

impl Verdict {
    /// Pass, or fail with at most [`MAX_FAILURES_LISTED`] messages and a count of the rest.
    fn from_failures(mut failures: Vec<String>, cases: usize) -> Self {
        if failures.is_empty() {
            return Verdict::Pass(cases);
        }
        if failures.len() > MAX_FAILURES_LISTED {
            let more = failures.len() - MAX_FAILURES_LISTED;
            failures.truncate(MAX_FAILURES_LISTED);
            failures.push(format!("… and {more} more"));
        }
        Verdict::Fail(failures)
    }

    fn into_outcome(self) -> (usize, Outcome) {
        match self {
            Verdict::Pass(cases) => (cases, Outcome::Passed),
            Verdict::Fail(failures) => (failures.len(), Outcome::Failed { failures }),
            Verdict::NotApplicable(reason) => (0, Outcome::Skipped { reason }),
            Verdict::Unexercised(reason) => (0, Outcome::Unexercised { reason }),
        }
    }
}

/// One line on what a grading run will do, for the header people read first.
pub fn describe(options: &ClientOptions, budget: Budget, n_scenarios: usize) -> String {
    format!(
        "{n_scenarios} scenarios, time scale {}, CONFORMANCE_DEADLINE={}s, timeout {}, \
         min poll interval {}",
        options.time_scale,
        budget.deadline.as_secs(),
        humantime::format_duration(budget.timeout),
        humantime::format_duration(options.min_poll_interval),
    )
}
