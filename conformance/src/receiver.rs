//! Grading a webhook receiver: deliver OnlyFans `media_uploads.completed` / `.failed` events to it
//! as the provider does, with what the provider's "Delivery & retries" page says a receiver must
//! survive, and judge it rule by rule.
//!
//! The deliveries are the mock's own ([`mock_server::webhook`]): each case starts an in-process mock
//! on a manual clock whose webhook points at the receiver and whose scenario's `webhook:` section
//! bends delivery (a duplicate, an event out of order, a forged signature), uploads, and moves the
//! clock until the jobs end. So the envelope, headers and signature a receiver is graded on are the
//! ones the mock sends everywhere else, not a copy of them.
//!
//! What a receiver did is read from the receiver itself, by a contract small enough for any
//! language: `GET <url>` answers a JSON array with one item per event it processed, each carrying
//! the event's `idempotency_key`. What it answered is read from the mock's journal.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use mock_server::clock::Clock;
use mock_server::scenario::Scenario;
use mock_server::webhook::WebhookConfig;
use mock_server::{MockServer, Provider};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};

use crate::check::{CheckResult, Outcome};

/// The rules, in report order, with what each promises.
pub const RULES: &[(&str, &str)] = &[
    (
        "answers_2xx_within_10s",
        "Every correctly signed delivery is answered 2xx within 10 s (otherwise the provider retries it).",
    ),
    (
        "processes_each_event",
        "A media_uploads.completed and a media_uploads.failed event are each processed once.",
    ),
    (
        "refuses_bad_signature",
        "A delivery whose Signature is not the HMAC-SHA256 of its raw body is answered non-2xx and not processed.",
    ),
    (
        "processes_duplicate_once",
        "An event delivered twice with the same X-OFAPI-Idempotency-Key is processed once.",
    ),
    (
        "copes_with_out_of_order",
        "Two jobs' events delivered in the reverse of the order the jobs ended are both processed, once each.",
    ),
    (
        "survives_redelivery",
        "A manual redelivery (same body and key, X-OFAPI-Redelivery-Of) is answered 2xx and not processed again.",
    ),
];

/// How to grade a receiver.
#[derive(Debug, Clone, Default)]
pub struct ReceiverOptions {
    /// The program that starts the receiver and prints its URL as its first stdout line;
    /// `{secret}` is substituted (and set as `CONFORMANCE_WEBHOOK_SECRET`). Empty with `url`.
    pub command: Vec<String>,
    /// An already running receiver, instead of `command`.
    pub url: Option<String>,
    /// The signing secret the receiver verifies with.
    pub secret: String,
}

/// The secret a receiver started by the grader is given, unless one is named.
pub const DEFAULT_SECRET: &str = "whsec_conformance";

/// How long a started receiver has to print its URL.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts per event in grading: enough to see a refusal retried, few enough that a receiver that
/// never answers costs at most three deadlines per event.
const MAX_ATTEMPTS: u32 = 3;

/// The longest a case waits for its deliveries to settle: every attempt at the 10 s deadline,
/// the backoff between them, and room for a second copy.
const SETTLE_LIMIT: Duration = Duration::from_secs(75);

/// Why grading could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverError {
    /// Neither a command nor a URL.
    #[error("no receiver: give a command after -- or --url")]
    NoReceiver,
    /// The receiver program cannot be run.
    #[error("cannot run the receiver program {program:?}: {reason}")]
    Program {
        /// The program as given.
        program: String,
        /// Why it cannot run.
        reason: String,
    },
    /// The program did not print a URL in time.
    #[error(
        "the receiver printed no http:// URL as its first stdout line within {timeout:?}; its output: {output:?}"
    )]
    NoUrl {
        /// How long it had.
        timeout: Duration,
        /// What it printed.
        output: String,
    },
    /// A mock did not start.
    #[error("the mock did not start: {0}")]
    Mock(#[from] mock_server::StartError),
    /// A built-in grading scenario did not parse.
    #[error(transparent)]
    Scenario(#[from] mock_server::scenario::ScenarioError),
    /// The mock's own API failed (upload, clock, journal): a grader bug, not a verdict.
    #[error("the grading mock failed: {0}")]
    Driving(String),
}

/// A receiver's verdict: one row per rule.
#[derive(Debug, Clone)]
pub struct ReceiverGrade {
    /// The URL deliveries went to.
    pub url: String,
    /// One result per [`RULES`] entry, in order.
    pub results: Vec<CheckResult>,
    /// The end of the receiver's output (when the grader started it).
    pub output_tail: String,
    /// Wall time of the grading.
    pub elapsed: Duration,
}

impl ReceiverGrade {
    /// Whether any rule failed or went unexercised.
    pub fn is_failure(&self) -> bool {
        self.results.iter().any(|result| {
            matches!(
                result.outcome,
                Outcome::Failed { .. } | Outcome::Unexercised { .. }
            )
        })
    }
}

/// Starts (or reaches) the receiver, runs every case, and judges it.
pub async fn grade(options: &ReceiverOptions) -> Result<ReceiverGrade, ReceiverError> {
    let started = mock_server::clock::Stopwatch::start();
    let output = Arc::new(Mutex::new(Vec::new()));
    let (url, _child) = match (&options.url, options.command.first()) {
        (Some(url), _) => (url.clone(), None),
        (None, Some(program)) => {
            let (url, child) = start(options, program, &output).await?;
            (url, Some(child))
        }
        (None, None) => return Err(ReceiverError::NoReceiver),
    };
    let config = |seed: u64| {
        let mut config = WebhookConfig::new(url.clone()).signed_with(options.secret.clone());
        config.backoff = Duration::from_millis(100);
        config.max_attempts = MAX_ATTEMPTS;
        (config, seed)
    };
    let plain = run_case(config(1), "{}", Case::Plain).await?;
    let forged = run_case(config(2), "{ bad_signature: true }", Case::Single).await?;
    let duplicated = run_case(config(3), "{ duplicate: true }", Case::Duplicate).await?;
    let reordered = run_case(config(4), "{ out_of_order: true }", Case::OutOfOrder).await?;
    let processed = processed(&url).await;
    let judged = judge(&plain, &forged, &duplicated, &reordered, &processed);
    let output_tail = {
        let bytes = output.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let start = text.len().saturating_sub(2000);
        text.get(start..).unwrap_or_default().to_owned()
    };
    Ok(ReceiverGrade {
        url,
        results: judged,
        output_tail,
        elapsed: started.elapsed(),
    })
}

/// Runs the receiver program and reads its URL; the rest of its output is kept for the report.
async fn start(
    options: &ReceiverOptions,
    program: &str,
    output: &Arc<Mutex<Vec<u8>>>,
) -> Result<(String, tokio::process::Child), ReceiverError> {
    let substitute = |arg: &str| arg.replace("{secret}", &options.secret);
    let mut command = tokio::process::Command::new(substitute(program));
    command
        .args(options.command[1..].iter().map(|arg| substitute(arg)))
        .env("CONFORMANCE_WEBHOOK_SECRET", &options.secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|err| ReceiverError::Program {
        program: program.to_owned(),
        reason: err.to_string(),
    })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    if let Some(mut stderr) = stderr {
        let output = Arc::clone(output);
        tokio::spawn(async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                output
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&chunk[..n]);
            }
        });
    }
    let Some(stdout) = stdout else {
        return Err(ReceiverError::NoUrl {
            timeout: START_TIMEOUT,
            output: String::new(),
        });
    };
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
    let url = match first {
        Ok(Ok(Some(line))) if line.trim().starts_with("http://") => line.trim().to_owned(),
        other => {
            let printed = match other {
                Ok(Ok(Some(line))) => line,
                _ => String::new(),
            };
            let output = output.lock().unwrap_or_else(PoisonError::into_inner);
            return Err(ReceiverError::NoUrl {
                timeout: START_TIMEOUT,
                output: format!("{printed}\n{}", String::from_utf8_lossy(&output)),
            });
        }
    };
    let output = Arc::clone(output);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut output = output.lock().unwrap_or_else(PoisonError::into_inner);
            output.extend_from_slice(line.as_bytes());
            output.push(b'\n');
        }
    });
    Ok((url, child))
}

/// What a case sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// A completed and a failed job, then a redelivery of the completed one's delivery.
    Plain,
    /// One completed job.
    Single,
    /// One completed job, delivered twice.
    Duplicate,
    /// A job whose event is held, then a later job whose event releases it.
    OutOfOrder,
}

/// What a case sent and how each attempt was answered.
#[derive(Debug, Clone, Default)]
struct Sent {
    /// Jobs in upload order: (upload id, idempotency key of its event).
    jobs: Vec<(String, String)>,
    /// The mock's journal of webhook attempts (`route=webhook` entries), in order.
    attempts: Vec<Value>,
    /// The redelivery's answer: (delivery replayed, status).
    redelivery: Option<(u64, u16)>,
    /// What the receiver had processed before the redelivery, so a receiver that processes a
    /// redelivery again fails `survives_redelivery` only.
    before_redelivery: Option<Result<BTreeMap<String, usize>, String>>,
}

impl Sent {
    /// The attempts of one job.
    fn attempts_of<'a>(&'a self, job: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.attempts
            .iter()
            .filter(move |entry| entry["job_id"] == job)
    }
}

/// One case on its own mock: upload, end the jobs on the clock, wait for every delivery to settle.
async fn run_case(
    (config, seed): (WebhookConfig, u64),
    webhook: &str,
    case: Case,
) -> Result<Sent, ReceiverError> {
    let receiver_url = config.url.clone();
    let yaml = format!("description: webhook grading\nwebhook: {webhook}\n");
    let scenario = Scenario::parse("webhook-grading", &yaml, std::path::Path::new("grading"))?;
    let server = MockServer::builder()
        .clock(Clock::manual(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        ))
        .seed(seed)
        .webhook(config)
        .scenario(Arc::new(scenario))
        .start()
        .await?;
    let base = server.base_url();
    let http = reqwest::Client::new();
    let mut uploads = Vec::new();
    let copies = if case == Case::Duplicate { 2 } else { 1 };
    match case {
        Case::Plain => {
            uploads.push(upload(&http, &base, None).await?);
            uploads.push(upload(&http, &base, Some("fail-while-processing")).await?);
            advance(&http, &base).await?;
        }
        Case::Single | Case::Duplicate => {
            uploads.push(upload(&http, &base, None).await?);
            advance(&http, &base).await?;
        }
        Case::OutOfOrder => {
            uploads.push(upload(&http, &base, None).await?);
            advance(&http, &base).await?;
            uploads.push(upload(&http, &base, Some("happy")).await?);
            advance(&http, &base).await?;
        }
    }
    let mut attempts = settle(&http, &base, &uploads, copies).await?;
    let mut redelivery = None;
    let mut before_redelivery = None;
    if case == Case::Plain {
        before_redelivery = Some(processed(&receiver_url).await);
        // The last attempt of the completed job's event, replayed as a user would from the log.
        let replayed = attempts
            .iter()
            .filter(|entry| entry["job_id"] == uploads[0].as_str())
            .filter_map(|entry| entry["delivery"]["id"].as_u64())
            .next_back();
        if let Some(replayed) = replayed {
            let answer: Value = http
                .post(format!("{base}/__admin/webhooks/{replayed}/redeliver"))
                .send()
                .await
                .map_err(driving)?
                .json()
                .await
                .map_err(driving)?;
            let status = answer["status"].as_u64().unwrap_or(0);
            redelivery = Some((replayed, u16::try_from(status).unwrap_or(0)));
            attempts = journal(&http, &base).await?;
        }
    }
    let jobs = uploads
        .iter()
        .map(|job| {
            let first = attempts
                .iter()
                .find(|entry| entry["job_id"] == job.as_str());
            let key = first
                .and_then(|entry| entry["headers"]["x-ofapi-idempotency-key"].as_str())
                .unwrap_or_default()
                .to_owned();
            (job.clone(), key)
        })
        .collect();
    server.shutdown().await;
    Ok(Sent {
        jobs,
        attempts,
        redelivery,
        before_redelivery,
    })
}

fn driving(err: impl std::fmt::Display) -> ReceiverError {
    ReceiverError::Driving(err.to_string())
}

/// An async OnlyFans upload of the sample JPEG; returns its `prefixed_id`.
async fn upload(
    http: &reqwest::Client,
    base: &str,
    scenario: Option<&str>,
) -> Result<String, ReceiverError> {
    let sample = crate::run::Sample::jpeg();
    let part = reqwest::multipart::Part::bytes(sample.bytes.to_vec())
        .file_name(sample.file_name)
        .mime_str(&sample.mime)
        .map_err(driving)?;
    let form = reqwest::multipart::Form::new()
        .part("file", part)
        .text("async", "true");
    let mut request = http
        .post(format!("{base}/api/acct_webhooks/media/upload"))
        .bearer_auth("conformance-webhooks")
        .multipart(form);
    if let Some(scenario) = scenario {
        request = request.header("x-mock-scenario", scenario);
    }
    let body: Value = request
        .send()
        .await
        .map_err(driving)?
        .json()
        .await
        .map_err(driving)?;
    body["prefixed_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| driving(format!("the upload answered no prefixed_id: {body}")))
}

/// Moves the mock's clock past every default timeline, so the jobs uploaded so far end.
async fn advance(http: &reqwest::Client, base: &str) -> Result<(), ReceiverError> {
    let response = http
        .post(format!("{base}/__admin/clock/advance"))
        .json(&serde_json::json!({ "seconds": 10 }))
        .send()
        .await
        .map_err(driving)?;
    if !response.status().is_success() {
        return Err(driving(format!(
            "clock advance answered {}",
            response.status()
        )));
    }
    Ok(())
}

/// The mock's webhook attempts.
async fn journal(http: &reqwest::Client, base: &str) -> Result<Vec<Value>, ReceiverError> {
    let journal: Value = http
        .get(format!("{base}/__admin/journal?route=webhook"))
        .send()
        .await
        .map_err(driving)?
        .json()
        .await
        .map_err(driving)?;
    Ok(journal["entries"].as_array().cloned().unwrap_or_default())
}

/// Waits until every job has `copies` final attempts (a success, or the last one), bounded by
/// [`SETTLE_LIMIT`]; returns the journal as it then is.
async fn settle(
    http: &reqwest::Client,
    base: &str,
    jobs: &[String],
    copies: usize,
) -> Result<Vec<Value>, ReceiverError> {
    let deadline = mock_server::clock::Stopwatch::start();
    loop {
        let attempts = journal(http, base).await?;
        let settled = jobs.iter().all(|job| {
            attempts
                .iter()
                .filter(|entry| {
                    entry["job_id"] == job.as_str() && entry["delivery"]["next_retry_at"].is_null()
                })
                .count()
                >= copies
        });
        if settled || deadline.elapsed() > SETTLE_LIMIT {
            return Ok(attempts);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the receiver says it processed: idempotency key → times. `Err` says why it could not be
/// read, which fails every rule that needs it.
async fn processed(url: &str) -> Result<BTreeMap<String, usize>, String> {
    let response = reqwest::get(url)
        .await
        .map_err(|err| format!("GET {url} failed: {err}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|err| format!("GET {url}: {err}"))?;
    let items: Vec<Value> = serde_json::from_str(&text).map_err(|_| {
        format!(
            "GET {url} answered {status} with no JSON array of processed events (README, \
             \"Grading a webhook receiver\"): {}",
            text.chars().take(200).collect::<String>()
        )
    })?;
    let mut counts = BTreeMap::new();
    for item in items {
        if let Some(key) = item["idempotency_key"].as_str() {
            *counts.entry(key.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// An attempt as a failure line names it.
fn describe(entry: &Value) -> String {
    let status = entry["status"].as_u64().unwrap_or(0);
    let answer = match (status, entry["fault"].as_str()) {
        (0, Some("timeout")) => "no answer within 10 s".to_owned(),
        (0, _) => "no answer (connection failed)".to_owned(),
        (status, _) => format!("{status}"),
    };
    format!(
        "delivery {} (job {}, attempt {}) was answered {answer}",
        entry["delivery"]["id"],
        entry["job_id"].as_str().unwrap_or("?"),
        entry["delivery"]["attempt"]
    )
}

fn is_2xx(entry: &Value) -> bool {
    entry["status"]
        .as_u64()
        .is_some_and(|status| (200..300).contains(&status))
}

fn judge(
    plain: &Sent,
    forged: &Sent,
    duplicated: &Sent,
    reordered: &Sent,
    processed: &Result<BTreeMap<String, usize>, String>,
) -> Vec<CheckResult> {
    let times = |key: &str| -> Result<usize, String> {
        processed
            .as_ref()
            .map(|counts| counts.get(key).copied().unwrap_or(0))
            .map_err(Clone::clone)
    };
    let mut rows: Vec<(Outcome, usize)> = Vec::new();

    // answers_2xx_within_10s: every attempt of a correctly signed event.
    let valid: Vec<&Value> = [plain, duplicated, reordered]
        .iter()
        .flat_map(|sent| sent.attempts.iter())
        .collect();
    let failures: Vec<String> = valid
        .iter()
        .filter(|entry| !is_2xx(entry))
        .map(|entry| describe(entry))
        .collect();
    rows.push((outcome(failures, valid.len()), valid.len()));

    // processes_each_event, as it stood before the redelivery.
    let mut failures = Vec::new();
    let before = plain.before_redelivery.as_ref().unwrap_or(processed);
    for (job, key) in &plain.jobs {
        let times = before
            .as_ref()
            .map(|counts| counts.get(key).copied().unwrap_or(0))
            .map_err(Clone::clone);
        match times {
            Ok(1) => {}
            Ok(n) => failures.push(format!(
                "job {job}: its event ({key}) was processed {n} times"
            )),
            Err(problem) => failures.push(problem),
        }
    }
    rows.push((outcome(failures, plain.jobs.len()), plain.jobs.len()));

    // refuses_bad_signature.
    let mut failures: Vec<String> = forged
        .attempts
        .iter()
        .filter(|entry| is_2xx(entry))
        .map(|entry| {
            format!(
                "{}, though its Signature was made with another key",
                describe(entry)
            )
        })
        .collect();
    for (job, key) in &forged.jobs {
        match times(key) {
            Ok(0) => {}
            Ok(n) => failures.push(format!(
                "job {job}: the forged event ({key}) was processed {n} time(s)"
            )),
            Err(problem) => failures.push(problem),
        }
    }
    rows.push(if forged.attempts.is_empty() {
        (
            Outcome::Unexercised {
                reason: "no forged delivery was attempted".to_owned(),
            },
            0,
        )
    } else {
        (
            outcome(failures, forged.attempts.len()),
            forged.attempts.len(),
        )
    });

    // processes_duplicate_once.
    let mut failures = Vec::new();
    for (job, key) in &duplicated.jobs {
        let copies = duplicated
            .attempts_of(job)
            .filter(|entry| is_2xx(entry))
            .count();
        match times(key) {
            Ok(1) => {}
            Ok(n) => failures.push(format!(
                "job {job}: delivered {copies} time(s) with one key ({key}), processed {n} time(s)"
            )),
            Err(problem) => failures.push(problem),
        }
    }
    rows.push((
        outcome(failures, duplicated.jobs.len()),
        duplicated.jobs.len(),
    ));

    // copes_with_out_of_order: the first job's event must have come after the second's.
    let last_seq = |job: &str| {
        reordered
            .attempts_of(job)
            .filter_map(|entry| entry["seq"].as_u64())
            .max()
    };
    let swapped = match reordered.jobs.as_slice() {
        [(first, _), (second, _)] => {
            last_seq(first) > last_seq(second) && last_seq(second).is_some()
        }
        _ => false,
    };
    rows.push(if swapped {
        let mut failures = Vec::new();
        for (job, key) in &reordered.jobs {
            match times(key) {
                Ok(1) => {}
                Ok(n) => failures.push(format!(
                    "job {job} ({key}), delivered out of order, was processed {n} time(s)"
                )),
                Err(problem) => failures.push(problem),
            }
        }
        (
            outcome(failures, reordered.jobs.len()),
            reordered.jobs.len(),
        )
    } else {
        (
            Outcome::Unexercised {
                reason: "the two events did not arrive in swapped order".to_owned(),
            },
            0,
        )
    });

    // survives_redelivery.
    rows.push(match (plain.redelivery, plain.jobs.first()) {
        (Some((replayed, status)), Some((job, key))) => {
            let mut failures = Vec::new();
            if !(200..300).contains(&status) {
                failures.push(format!(
                    "the redelivery of delivery {replayed} (job {job}) was answered {status}"
                ));
            }
            match times(key) {
                Ok(1) => {}
                Ok(n) => failures.push(format!(
                    "job {job}: processed {n} time(s) after a redelivery of the same event ({key})"
                )),
                Err(problem) => failures.push(problem),
            }
            (outcome(failures, 1), 1)
        }
        _ => (
            Outcome::Unexercised {
                reason: "no delivery was recorded to redeliver".to_owned(),
            },
            0,
        ),
    });

    RULES
        .iter()
        .zip(rows)
        .map(|((name, description), (outcome, cases))| CheckResult {
            name,
            description,
            cases,
            outcome,
        })
        .collect()
}

/// Passed when nothing failed; a rule that met no case is not a pass.
fn outcome(failures: Vec<String>, cases: usize) -> Outcome {
    if !failures.is_empty() {
        Outcome::Failed { failures }
    } else if cases == 0 {
        Outcome::Unexercised {
            reason: "no delivery was made".to_owned(),
        }
    } else {
        Outcome::Passed
    }
}

/// The provider the grader speaks for: only OnlyFansAPI sends upload webhooks.
pub fn supports(provider: Provider) -> bool {
    provider == Provider::OnlyFans
}
