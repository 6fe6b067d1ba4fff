//! Grading a client program: run it against the mock once per built-in scenario, then judge it
//! from its exit status and the mock's journal of what it sent.
//!
//! The mock runs in-process on the system clock (the client lives in real time), one server per
//! scenario, all scenarios at once. Scenario timelines can be compressed with `time_scale`;
//! `Retry-After` values and delays are never scaled, because honouring them is what is judged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mock_server::clock::Clock;
use mock_server::fixture::Fixtures;
use mock_server::scenario::{BUILT_IN, Scenario};
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
    /// A client still running after this is killed (and judged as hanging).
    pub timeout: Duration,
    /// Multiplies every scenario's timeline (0.1 runs a 3-minute job in 18 s).
    pub time_scale: f64,
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
            timeout: Duration::from_secs(240),
            time_scale: 1.0,
            file: None,
        }
    }
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

/// Runs the client against every scenario and grades it.
pub async fn grade(options: &ClientOptions) -> Result<Vec<Grade>, ClientError> {
    if options.command.is_empty() {
        return Err(ClientError::NoCommand);
    }
    let names: Vec<String> = if options.scenarios.is_empty() {
        BUILT_IN
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect()
    } else {
        options.scenarios.clone()
    };
    let scenarios = names
        .iter()
        .map(|name| Scenario::resolve(name))
        .collect::<Result<Vec<_>, _>>()?;
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
        async move { grade_one(options, scenario, &file).await }
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .collect()
}

async fn grade_one(
    options: &ClientOptions,
    scenario: Arc<Scenario>,
    file: &std::path::Path,
) -> Result<Grade, ClientError> {
    let mut fixtures = Fixtures::embedded();
    fixtures.fansly.timeline = fixtures.fansly.timeline.scaled(options.time_scale);
    fixtures.onlyfans.timeline = fixtures.onlyfans.timeline.scaled(options.time_scale);
    let mut scaled = (*scenario).clone();
    scaled.timeline = scaled
        .timeline
        .map(|timeline| timeline.scaled(options.time_scale));
    let api_key = format!("client-key-{}", scenario.name);
    let server = MockServer::builder()
        .clock(Clock::system())
        .fixtures(fixtures)
        .api_key(api_key.clone())
        .seed(7)
        .scenario(Arc::new(scaled))
        .start()
        .await?;
    let base_url = server.base_url();
    let account = match options.provider {
        Provider::Fansly => "client".to_owned(),
        Provider::OnlyFans => "acct_client000000000".to_owned(),
    };
    let file_text = file.display().to_string();
    let substitute = |arg: &str| {
        arg.replace("{base_url}", &base_url)
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
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
            let finished = tokio::time::timeout(options.timeout, async move {
                let (mut out, err, status) = tokio::join!(
                    read(stdout.map(|pipe| Box::new(pipe) as _)),
                    read(stderr.map(|pipe| Box::new(pipe) as _)),
                    child.wait()
                );
                out.extend_from_slice(&err);
                (out, status)
            })
            .await;
            // On timeout the child is dropped inside the future, and `kill_on_drop` ends it.
            match finished {
                Ok((text, status)) => (
                    status.ok().and_then(|status| status.code()),
                    tail(&text),
                    false,
                ),
                Err(_) => (
                    None,
                    "killed: still running at the timeout".to_owned(),
                    true,
                ),
            }
        }
    };
    let entries = journal(&base_url).await;
    let results = judge(options, &scenario.name, &entries, exit_code, killed);
    Ok(Grade {
        scenario: scenario.name.clone(),
        exit_code,
        results,
        output_tail,
    })
}

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

/// Applies every rule to one scenario's journal and exit status.
pub fn judge(
    options: &ClientOptions,
    scenario: &str,
    entries: &[Entry],
    exit_code: Option<i32>,
    killed: bool,
) -> Vec<CheckResult> {
    let api: Vec<&Entry> = entries
        .iter()
        .filter(|entry| entry.route == "upload" || entry.route == "status")
        .collect();
    let uploads: Vec<&Entry> = api
        .iter()
        .copied()
        .filter(|e| e.route == "upload")
        .collect();
    let mut polls_by_job: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for entry in api.iter().filter(|entry| entry.route == "status") {
        if let Some(job) = &entry.job_id {
            polls_by_job.entry(job.clone()).or_default().push(entry);
        }
    }
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
    let mut final_states: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    verdicts.insert("polls_until_terminal_then_stops", {
        let mut failures = Vec::new();
        for (job, polls) in &polls_by_job {
            let first_terminal = polls.iter().position(|poll| {
                poll.is_delivered() && matches!(poll.state.as_deref(), Some("completed" | "failed"))
            });
            match first_terminal {
                Some(idx) => {
                    final_states.insert(job, polls[idx].state.as_deref());
                    if polls.len() > idx + 1 {
                        failures.push(format!(
                            "job {job}: {} polls after it was {}",
                            polls.len() - idx - 1,
                            polls[idx].state.as_deref().unwrap_or_default()
                        ));
                    }
                }
                None => {
                    final_states.insert(job, None);
                    if scenario != "stuck" {
                        failures.push(format!(
                            "job {job}: stopped polling before a terminal state"
                        ));
                    }
                }
            }
        }
        let async_uploads = uploads
            .iter()
            .filter(|u| u.status == 201 || u.status == 202);
        for upload in async_uploads {
            if let Some(job) = &upload.job_id {
                if !polls_by_job.contains_key(job) && options.provider == Provider::Fansly {
                    failures.push(format!("job {job}: never polled"));
                }
            }
        }
        if scenario == "stuck" && failures.is_empty() {
            Verdict::Skip("the job never ends in this scenario".to_owned())
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
        if cases == 0 {
            Verdict::Skip("no Retry-After was sent in this scenario".to_owned())
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
        if cases == 0 {
            Verdict::Skip("fewer than two polls of any job".to_owned())
        } else {
            Verdict::summarised(failures, cases)
        }
    });

    verdicts.insert("reports_outcome", {
        let last_job = uploads
            .iter()
            .rev()
            .find_map(|upload| upload.job_id.as_deref());
        let final_state = last_job.and_then(|job| final_states.get(job).copied().flatten());
        let sync_completed = options.provider == Provider::OnlyFans
            && last_job.is_some_and(|job| !polls_by_job.contains_key(job))
            && uploads.last().is_some_and(|upload| upload.status == 200);
        let expected_success = match final_state {
            Some("completed") => true,
            Some(_) => false,
            None => sync_completed,
        };
        if killed {
            Verdict::Fail(vec![format!(
                "still running after {}",
                humantime::format_duration(options.timeout)
            )])
        } else if scenario == "expired-links" {
            Verdict::Skip("a client may rightly fail on links that arrive expired".to_owned())
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
        if cases == 0 {
            Verdict::Skip("no request failed in this scenario".to_owned())
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
                            matches!(final_states.get(job), Some(Some("failed")))
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
                .unwrap_or(Verdict::Skip("not judged".to_owned()));
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
    Skip(String),
}

impl Verdict {
    fn from_failures(failures: Vec<String>, cases: usize) -> Self {
        if failures.is_empty() {
            Verdict::Pass(cases)
        } else {
            Verdict::Fail(failures)
        }
    }

    /// Like `from_failures`, but a flood of the same failure is reported as a count.
    fn summarised(mut failures: Vec<String>, cases: usize) -> Self {
        if failures.len() > 5 {
            let more = failures.len() - 5;
            failures.truncate(5);
            failures.push(format!("… and {more} more of {cases}"));
        }
        Self::from_failures(failures, cases)
    }

    fn into_outcome(self) -> (usize, Outcome) {
        match self {
            Verdict::Pass(cases) => (cases, Outcome::Passed),
            Verdict::Fail(failures) => (failures.len(), Outcome::Failed { failures }),
            Verdict::Skip(reason) => (0, Outcome::Skipped { reason }),
        }
    }
}

/// The `Duration` of a whole client grading run's timeout, for messages.
pub fn describe(options: &ClientOptions) -> String {
    format!(
        "{} scenarios, min poll interval {}, timeout {}, time scale {}",
        if options.scenarios.is_empty() {
            BUILT_IN.len()
        } else {
            options.scenarios.len()
        },
        humantime::format_duration(options.min_poll_interval),
        humantime::format_duration(options.timeout),
        options.time_scale
    )
}
