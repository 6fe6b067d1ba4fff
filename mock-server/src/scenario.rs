//! Scenarios: a job's timeline plus the faults aimed at its requests, read from YAML.
//!
//! A scenario is chosen per upload (the `X-Mock-Scenario` header, else the server's default) and
//! travels with the job, so every later poll of that job sees the same faults. Faults are aimed by
//! route and by the request's number within the job (the 2nd poll) or the scenario (the 1st
//! upload), and optionally by probability. Probability is decided by hashing the server seed with
//! what the fault is aimed at, never by a shared random stream, so the same seed gives the same
//! faults whatever order concurrent requests arrive in.
//!
//! This module is pure: it decides *what* goes wrong; `http` and the providers make it happen.
//! The format is documented in `fixtures/scenarios/README.md`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::fixture::TimelineSpec;
use crate::job::{Outcome, Timeline, TimelineError};
use crate::provider::Provider;

/// The scenarios shipped in `fixtures/scenarios/`, embedded in the binary.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("happy", include_str!("../../fixtures/scenarios/happy.yaml")),
    ("slow", include_str!("../../fixtures/scenarios/slow.yaml")),
    ("stuck", include_str!("../../fixtures/scenarios/stuck.yaml")),
    (
        "fail-while-processing",
        include_str!("../../fixtures/scenarios/fail-while-processing.yaml"),
    ),
    (
        "rejected-by-onlyfans",
        include_str!("../../fixtures/scenarios/rejected-by-onlyfans.yaml"),
    ),
    (
        "fail-then-succeed-on-retry",
        include_str!("../../fixtures/scenarios/fail-then-succeed-on-retry.yaml"),
    ),
    (
        "rate-limited",
        include_str!("../../fixtures/scenarios/rate-limited.yaml"),
    ),
    (
        "flaky-5xx",
        include_str!("../../fixtures/scenarios/flaky-5xx.yaml"),
    ),
    (
        "expired-links",
        include_str!("../../fixtures/scenarios/expired-links.yaml"),
    ),
    (
        "drop-connection",
        include_str!("../../fixtures/scenarios/drop-connection.yaml"),
    ),
    (
        "malformed-body",
        include_str!("../../fixtures/scenarios/malformed-body.yaml"),
    ),
    (
        "slow-upload",
        include_str!("../../fixtures/scenarios/slow-upload.yaml"),
    ),
];

/// Which request a fault is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// Any upload POST.
    Upload,
    /// A status poll.
    Status,
}

/// How a response's delay is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Uniform between two bounds.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Log-normal around a median, as real network latency is.
    LogNormal {
        /// The median delay.
        median: Duration,
        /// The spread of the underlying normal (0.5 is typical).
        sigma: f64,
    },
}

impl Latency {
    /// The delay for two independent uniform draws in `[0, 1)`.
    pub fn sample(&self, roll: f64, second_roll: f64) -> Duration {
        match *self {
            Latency::Fixed(delay) => delay,
            Latency::Uniform { min, max } => min + (max.saturating_sub(min)).mul_f64(roll),
            Latency::LogNormal { median, sigma } => {
                // Box-Muller: one standard normal variate from two uniform draws.
                let normal = (-2.0 * (1.0 - roll).ln()).sqrt()
                    * (2.0 * std::f64::consts::PI * second_roll).cos();
                let factor = (sigma * normal).exp();
                Duration::try_from_secs_f64(median.as_secs_f64() * factor)
                    .unwrap_or(Duration::from_secs(3600))
                    .min(Duration::from_secs(3600))
            }
        }
    }
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer this HTTP status with the provider's own error body; `Retry-After` if given.
    Respond {
        /// 429, 500, 502, 503, ...
        status: u16,
        /// Seconds, sent as `Retry-After` (and `X-RateLimit-Retry-After` on Fansly).
        retry_after: Option<u32>,
    },
    /// Answer normally, after a delay.
    Delay(Latency),
    /// Close the connection without answering.
    Drop,
    /// Answer 200 with an empty body.
    Empty,
    /// Answer the normal status with the JSON cut in half.
    Malformed,
    /// Promise the whole body in `Content-Length`, send half, and close.
    Truncate,
    /// Send the normal body a few bytes at a time.
    Dribble {
        /// Bytes per chunk.
        chunk_bytes: usize,
        /// Pause between chunks.
        every: Duration,
    },
}

impl Action {
    /// A short name for journals and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Respond { .. } => "respond",
            Action::Delay(_) => "latency",
            Action::Drop => "drop",
            Action::Empty => "empty",
            Action::Malformed => "malformed",
            Action::Truncate => "truncate",
            Action::Dribble { .. } => "dribble",
        }
    }

    /// The status and `Retry-After` of a `Respond` fault, which providers render in their own shape.
    pub fn http_error(&self) -> Option<(u16, Option<u32>)> {
        match self {
            Action::Respond {
                status,
                retry_after,
            } => Some((*status, *retry_after)),
            _ => None,
        }
    }
}

/// A job state a fault can be attached to: a step of the timeline, or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateAim {
    /// Fansly `waiting`, OnlyFans `pending`.
    Queued,
    /// Fansly `active`, OnlyFans `processing`.
    Processing,
    /// Completed.
    Completed,
    /// Failed.
    Failed,
}

impl StateAim {
    /// The aim a job state matches.
    pub fn of(state: &crate::job::JobState) -> Self {
        match state {
            crate::job::JobState::Running {
                phase: crate::job::Phase::Queued,
                ..
            } => StateAim::Queued,
            crate::job::JobState::Running { .. } => StateAim::Processing,
            crate::job::JobState::Completed => StateAim::Completed,
            crate::job::JobState::Failed { .. } => StateAim::Failed,
        }
    }
}

/// What a request is, for aiming faults at it.
#[derive(Debug, Clone, Copy)]
pub struct Aim<'a> {
    /// Upload or status poll.
    pub route: Route,
    /// The poll's number within its job, or the upload's number under the scenario, from 1.
    pub nth: u32,
    /// Which provider's API.
    pub provider: Provider,
    /// The account path segment.
    pub account: &'a str,
    /// The job's number under the scenario (its upload's `nth`), from 1.
    pub job: u32,
    /// The state the job is in as this request sees it; none for uploads.
    pub state: Option<StateAim>,
}

/// One fault and what it is aimed at.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Which requests.
    pub route: Route,
    /// Which numbers (1-based: the job's n-th poll, or the scenario's n-th upload); empty is all.
    pub nth: Vec<u32>,
    /// Chance that a matching request is hit, 0–1.
    pub probability: f64,
    /// Account path segments aimed at (glob patterns); empty is every account.
    pub accounts: Vec<glob::Pattern>,
    /// Providers aimed at; empty is both.
    pub providers: Vec<Provider>,
    /// Jobs aimed at, by their upload's number under the scenario (1 = the first job); empty is all.
    pub jobs: Vec<u32>,
    /// Job states aimed at (a poll that sees the job in one of them); empty is any. Uploads have
    /// no state yet, so a fault with states never hits an upload.
    pub states: Vec<StateAim>,
    /// What happens.
    pub action: Action,
}

/// A named timeline-and-faults bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name (the file stem for files).
    pub name: String,
    /// What it reproduces, for listings.
    pub description: String,
    /// The job lifecycle; the provider's fixture timeline when absent.
    pub timeline: Option<Timeline>,
    /// Outcomes by upload attempt within the scenario: the n-th upload takes the n-th (the last
    /// one repeats). Empty keeps the timeline's outcome.
    pub attempts: Vec<Outcome>,
    /// How long links live after completion; the provider's when absent.
    pub link_ttl: Option<Duration>,
    /// How long after completion OnlyFans vault media becomes ready; the fixture's when absent.
    pub vault_ready_after: Option<Duration>,
    /// Faults, checked in order; the first that hits wins.
    pub faults: Vec<Fault>,
    /// What happens to this scenario's OnlyFans webhooks.
    pub webhook: WebhookBehaviour,
}

/// How a scenario bends webhook delivery. Each is something OnlyFansAPI's "Delivery & retries"
/// page says a receiver must survive, except `bad_signature`, which is what a forger sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookBehaviour {
    /// Wait this long (real time) before the first delivery.
    pub delay: Duration,
    /// Deliver every event twice, as at-least-once senders do.
    pub duplicate: bool,
    /// Never deliver (journaled as dropped).
    pub drop: bool,
    /// How long a receiver may take to answer before the attempt counts as failed and is
    /// retried; the provider's 10 s ([`crate::webhook::TIMEOUT`]) when absent. Shorter values let
    /// tests reach a timeout quickly.
    pub timeout: Option<Duration>,
    /// Hold the event until a later event of its session has been answered, so it arrives after
    /// an event that ended later: the provider does not keep order.
    pub out_of_order: bool,
    /// Sign with a key the receiver does not have, so a receiver's signature check can be seen to
    /// refuse it.
    pub bad_signature: bool,
    /// Pause the session's endpoint after this many consecutive failed attempts; while paused,
    /// every event is dropped (not kept for later) until `POST /__admin/webhooks/resume`. The
    /// provider pauses failing endpoints, but no source we hold states its threshold, so none by
    /// default.
    pub pause_after: Option<u32>,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not match the format; the message names the field, line and column.
    #[error("invalid scenario {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_norway::Error,
    },
    /// The timeline's steps cannot all be reached.
    #[error("invalid scenario {path}: timeline: {source}")]
    Timeline {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: TimelineError,
    },
    /// A value the format allows but the meaning does not.
    #[error("invalid scenario {path}: faults[{fault_idx}]: {problem}")]
    Fault {
        /// The file.
        path: PathBuf,
        /// Zero-based index of the fault.
        fault_idx: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// The `webhook:` section has a value the format allows but the meaning does not.
    #[error("invalid scenario {path}: webhook: {problem}")]
    Webhook {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// A rule in a rules file is unusable.
    #[error("invalid scenario rules {path}: rules[{rule_idx}]: {problem}")]
    Rule {
        /// The file.
        path: PathBuf,
        /// Zero-based index of the rule.
        rule_idx: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// A `.json` scenario file is a cassette, and this one is not valid.
    #[error(transparent)]
    Cassette(#[from] crate::cassette::CassetteError),
    /// Neither a built-in name nor a readable file.
    #[error("unknown scenario {name:?}; built-in: {}", known.join(", "))]
    Unknown {
        /// What was asked for.
        name: String,
        /// The built-in names.
        known: Vec<&'static str>,
    },
}

impl Scenario {
    /// The scenario with no faults and the provider's own timeline: `fixtures/scenarios/happy.yaml`.
    pub fn happy() -> Arc<Self> {
        Self::resolve("happy").expect("every built-in scenario parses, as the test suite checks")
    }

    /// A built-in scenario by name, or a scenario file by path.
    pub fn resolve(name_or_path: &str) -> Result<Arc<Self>, ScenarioError> {
        if let Some((name, text)) = BUILT_IN.iter().find(|(name, _)| *name == name_or_path) {
            let path = PathBuf::from(format!("fixtures/scenarios/{name}.yaml"));
            return Self::parse(name, text, &path).map(Arc::new);
        }
        let path = Path::new(name_or_path);
        if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json")
            || path.exists()
        {
            return Self::from_file(path).map(Arc::new);
        }
        Err(ScenarioError::Unknown {
            name: name_or_path.to_owned(),
            known: BUILT_IN.iter().map(|(name, _)| *name).collect(),
        })
    }

    /// Reads a scenario file, or a cassette (`.json`) as the scenario that replays it; its name is
    /// the file stem.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        if path.extension().is_some_and(|ext| ext == "json") {
            let name = path.file_stem().map_or_else(
                || "cassette".to_owned(),
                |stem| stem.to_string_lossy().into_owned(),
            );
            return Ok(crate::cassette::Cassette::from_file(path)?.scenario(&name));
        }
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path.file_stem().map_or_else(
            || "scenario".to_owned(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        Self::parse(&name, &text, path)
    }

    /// Parses scenario YAML; `path` is only used in errors.
    pub fn parse(name: &str, text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let file: ScenarioFile =
            serde_norway::from_str(text).map_err(|source| ScenarioError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let timeline = file
            .timeline
            .map(TimelineSpec::into_timeline)
            .transpose()
            .map_err(|source| ScenarioError::Timeline {
                path: path.to_owned(),
                source,
            })?;
        let mut faults = Vec::with_capacity(file.faults.len());
        for (fault_idx, fault) in file.faults.into_iter().enumerate() {
            let problem = |problem| ScenarioError::Fault {
                path: path.to_owned(),
                fault_idx,
                problem,
            };
            if !(0.0..=1.0).contains(&fault.probability) {
                return Err(problem("probability must be between 0 and 1"));
            }
            if fault.nth.contains(&0) {
                return Err(problem("nth counts from 1"));
            }
            let action = match fault.action {
                ActionFile::Respond {
                    status,
                    retry_after,
                } => {
                    if !(400..=599).contains(&status) {
                        return Err(problem("respond.status must be a 4xx or 5xx"));
                    }
                    Action::Respond {
                        status,
                        retry_after,
                    }
                }
                ActionFile::Latency(latency) => Action::Delay(match latency {
                    LatencyFile::Fixed(delay) => Latency::Fixed(delay.0),
                    LatencyFile::Uniform { min, max } => {
                        if max.0 < min.0 {
                            return Err(problem("latency.uniform.max is below min"));
                        }
                        Latency::Uniform {
                            min: min.0,
                            max: max.0,
                        }
                    }
                    LatencyFile::Lognormal { median, sigma } => {
                        if !(0.0..=5.0).contains(&sigma) {
                            return Err(problem("latency.lognormal.sigma must be between 0 and 5"));
                        }
                        Latency::LogNormal {
                            median: median.0,
                            sigma,
                        }
                    }
                }),
                ActionFile::Drop {} => Action::Drop,
                ActionFile::Empty {} => Action::Empty,
                ActionFile::Malformed {} => Action::Malformed,
                ActionFile::Truncate {} => Action::Truncate,
                ActionFile::Dribble { chunk_bytes, every } => {
                    if chunk_bytes == 0 {
                        return Err(problem("dribble.chunk_bytes must be at least 1"));
                    }
                    Action::Dribble {
                        chunk_bytes,
                        every: every.0,
                    }
                }
            };
            let mut accounts = Vec::with_capacity(fault.accounts.len());
            for pattern in &fault.accounts {
                accounts.push(
                    glob::Pattern::new(pattern)
                        .map_err(|_| problem("accounts holds an invalid glob pattern"))?,
                );
            }
            if fault.jobs.contains(&0) {
                return Err(problem("jobs counts from 1"));
            }
            let providers = fault
                .providers
                .iter()
                .map(|provider| match provider.as_str() {
                    "fansly" => Ok(Provider::Fansly),
                    "onlyfans" => Ok(Provider::OnlyFans),
                    _ => Err(problem(
                        "providers holds something other than fansly or onlyfans",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            faults.push(Fault {
                route: fault.on,
                nth: fault.nth,
                probability: fault.probability,
                accounts,
                providers,
                jobs: fault.jobs,
                states: fault.states,
                action,
            });
        }
        if let Some(webhook) = &file.webhook {
            let problem = |problem| ScenarioError::Webhook {
                path: path.to_owned(),
                problem,
            };
            if webhook.pause_after == Some(0) {
                return Err(problem("pause_after counts failed attempts from 1"));
            }
            if webhook.timeout.is_some_and(|timeout| timeout.0.is_zero()) {
                return Err(problem("timeout must be longer than 0s"));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            description: file.description,
            timeline,
            attempts: file
                .attempts
                .into_iter()
                .map(|attempt| attempt.into_outcome())
                .collect(),
            link_ttl: file.link_ttl.map(|ttl| ttl.0),
            vault_ready_after: file.vault_ready_after.map(|after| after.0),
            faults,
            webhook: file
                .webhook
                .map_or_else(WebhookBehaviour::default, |webhook| WebhookBehaviour {
                    delay: webhook.delay.map_or(Duration::ZERO, |delay| delay.0),
                    duplicate: webhook.duplicate,
                    drop: webhook.drop,
                    timeout: webhook.timeout.map(|timeout| timeout.0),
                    out_of_order: webhook.out_of_order,
                    bad_signature: webhook.bad_signature,
                    pause_after: webhook.pause_after,
                }),
        })
    }

    /// The outcome of the scenario's `attempt`-th upload (1-based), if attempts are scripted.
    pub fn outcome_for_attempt(&self, attempt: u32) -> Option<&Outcome> {
        let idx = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
        self.attempts.get(idx).or_else(|| self.attempts.last())
    }

    /// The first fault that hits the request described by `aim`, given the server `seed` and a
    /// `subject` naming what is aimed at (the job id for polls, the scenario for uploads).
    /// A latency is drawn here, so the action returned is a fixed delay.
    pub fn fault_for(&self, aim: &Aim<'_>, seed: u64, subject: &str) -> Option<Action> {
        let (route, nth) = (aim.route, aim.nth);
        self.faults
            .iter()
            .enumerate()
            .find_map(|(fault_idx, fault)| {
                let aimed = fault.route == route
                    && (fault.nth.is_empty() || fault.nth.contains(&nth))
                    && (fault.accounts.is_empty()
                        || fault
                            .accounts
                            .iter()
                            .any(|pattern| pattern.matches(aim.account)))
                    && (fault.providers.is_empty() || fault.providers.contains(&aim.provider))
                    && (fault.jobs.is_empty() || fault.jobs.contains(&aim.job))
                    && (fault.states.is_empty()
                        || aim.state.is_some_and(|state| fault.states.contains(&state)));
                let hits = aimed
                    && (fault.probability >= 1.0
                        || roll(seed, subject, route, nth, fault_idx, 0) < fault.probability);
                hits.then(|| match &fault.action {
                    Action::Delay(latency) => Action::Delay(Latency::Fixed(latency.sample(
                        roll(seed, subject, route, nth, fault_idx, 1),
                        roll(seed, subject, route, nth, fault_idx, 2),
                    ))),
                    other => other.clone(),
                })
            })
    }
}

/// Which scenario an upload follows, by its account or file name, from a rules file:
///
/// ```yaml
/// rules:
///   - { account: "acct_slow*", scenario: slow }
///   - { file_name: "*.mp4", scenario: fail-while-processing }
///   - { account: "acct_qa", file_name: "big-*", scenario: ./my-scenario.yaml }
/// ```
///
/// The first rule whose patterns all match wins; a scenario is a built-in name or a file path
/// relative to the rules file.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    account: Option<glob::Pattern>,
    file_name: Option<glob::Pattern>,
    scenario: Arc<Scenario>,
}

impl Rules {
    /// Reads a rules file; every scenario it names is loaded now, so a bad one fails start-up.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: RulesFile =
            serde_norway::from_str(&text).map_err(|source| ScenarioError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut rules = Vec::with_capacity(file.rules.len());
        for (rule_idx, rule) in file.rules.into_iter().enumerate() {
            let problem = |problem| ScenarioError::Rule {
                path: path.to_owned(),
                rule_idx,
                problem,
            };
            let pattern = |text: Option<String>| {
                text.map(|text| glob::Pattern::new(&text))
                    .transpose()
                    .map_err(|_| problem("invalid glob pattern"))
            };
            let account = pattern(rule.account)?;
            let file_name = pattern(rule.file_name)?;
            if account.is_none() && file_name.is_none() {
                return Err(problem("a rule needs an account or a file_name pattern"));
            }
            let scenario = if BUILT_IN.iter().any(|(name, _)| *name == rule.scenario) {
                Scenario::resolve(&rule.scenario)?
            } else {
                Arc::new(Scenario::from_file(&base.join(&rule.scenario))?)
            };
            rules.push(Rule {
                account,
                file_name,
                scenario,
            });
        }
        Ok(Self { rules })
    }

    /// The scenario of the first rule that matches `account` (and `file_name`, when the rule has
    /// a file-name pattern; `None` means the file name is not known yet).
    pub fn find(&self, account: &str, file_name: Option<&str>) -> Option<Arc<Scenario>> {
        self.rules
            .iter()
            .find(|rule| {
                rule.account
                    .as_ref()
                    .is_none_or(|pattern| pattern.matches(account))
                    && match (&rule.file_name, file_name) {
                        (None, _) => true,
                        (Some(pattern), Some(name)) => pattern.matches(name),
                        (Some(_), None) => false,
                    }
            })
            .map(|rule| Arc::clone(&rule.scenario))
    }

    /// Whether any rule looks at file names (so a choice made before the body may change).
    pub fn has_file_rules(&self) -> bool {
        self.rules.iter().any(|rule| rule.file_name.is_some())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
    scenario: String,
}

/// A deterministic draw in `[0, 1)` from what a request is: the same inputs always give the same
/// number, whatever else the server is doing.
pub fn roll(seed: u64, subject: &str, route: Route, nth: u32, fault_idx: usize, draw: u8) -> f64 {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(subject.as_bytes());
    hasher.update([route as u8, draw]);
    hasher.update(nth.to_be_bytes());
    hasher.update(fault_idx.to_be_bytes());
    let digest = hasher.finalize();
    let mut top = [0u8; 8];
    top.copy_from_slice(&digest[..8]);
    // 53 random bits make every f64 in [0, 1) reachable at uniform spacing.
    (u64::from_be_bytes(top) >> 11) as f64 / (1u64 << 53) as f64
}

// The file format: private, and converted to the types above on load.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    timeline: Option<TimelineSpec>,
    #[serde(default)]
    attempts: Vec<AttemptFile>,
    #[serde(default)]
    link_ttl: Option<HumanDuration>,
    #[serde(default)]
    vault_ready_after: Option<HumanDuration>,
    #[serde(default)]
    faults: Vec<FaultFile>,
    #[serde(default)]
    webhook: Option<WebhookFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    #[serde(default)]
    delay: Option<HumanDuration>,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    drop: bool,
    #[serde(default)]
    timeout: Option<HumanDuration>,
    #[serde(default)]
    out_of_order: bool,
    #[serde(default)]
    bad_signature: bool,
    #[serde(default)]
    pause_after: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttemptFile {
    #[serde(with = "serde_norway::with::singleton_map")]
    outcome: crate::fixture::OutcomeSpec,
}

impl AttemptFile {
    fn into_outcome(self) -> Outcome {
        self.outcome.into_outcome()
    }
}

// `deny_unknown_fields` does not combine with `flatten`; an unknown key fails as an unknown action.
#[derive(Deserialize)]
struct FaultFile {
    on: Route,
    #[serde(default)]
    nth: Vec<u32>,
    #[serde(default = "always")]
    probability: f64,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    providers: Vec<String>,
    #[serde(default)]
    jobs: Vec<u32>,
    #[serde(default)]
    states: Vec<StateAim>,
    #[serde(flatten)]
    action: ActionFile,
}

fn always() -> f64 {
    1.0
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum ActionFile {
    Respond {
        status: u16,
        #[serde(default)]
        retry_after: Option<u32>,
    },
    Latency(LatencyFile),
    Drop {},
    Empty {},
    Malformed {},
    Truncate {},
    Dribble {
        chunk_bytes: usize,
        every: HumanDuration,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum LatencyFile {
    Fixed(HumanDuration),
    Uniform {
        min: HumanDuration,
        max: HumanDuration,
    },
    Lognormal {
        median: HumanDuration,
        sigma: f64,
    },
}

/// A humantime string ("250ms", "5h") in YAML.
#[derive(Deserialize, Clone, Copy)]
#[serde(transparent)]
struct HumanDuration(#[serde(with = "humantime_serde")] Duration);

#[cfg(test)]
mod tests {
    use super::*;

    fn aim(route: Route, nth: u32, account: &str) -> Aim<'_> {
        Aim {
            route,
            nth,
            provider: Provider::Fansly,
            account,
            job: 1,
            state: None,
        }
    }

    #[test]
    fn every_built_in_parses() {
        for (name, _) in BUILT_IN {
            let scenario = Scenario::resolve(name).unwrap();
            assert_eq!(scenario.name, *name);
            assert!(
                !scenario.description.is_empty(),
                "{name} has no description"
            );
        }
    }

    #[test]
    fn every_built_in_matches_the_editor_schema() {
        let schema: serde_json::Value = serde_json::from_str(include_str!(
            "../../fixtures/scenarios/scenario.schema.json"
        ))
        .unwrap();
        let validator = jsonschema::draft7::new(&schema).unwrap();
        for (name, text) in BUILT_IN {
            let document: serde_json::Value = serde_norway::from_str(text).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&document)
                .map(|err| err.to_string())
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
        let bad: serde_json::Value =
            serde_norway::from_str("faults:\n  - on: status\n    explode: {}\n").unwrap();
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn faults_hit_only_the_aimed_poll() {
        let scenario = Scenario::resolve("rate-limited").unwrap();
        assert_eq!(
            scenario.fault_for(&aim(Route::Status, 1, "acct"), 0, "job"),
            None
        );
        assert!(matches!(
            scenario.fault_for(&aim(Route::Status, 2, "acct"), 0, "job"),
            Some(Action::Respond {
                status: 429,
                retry_after: Some(_)
            })
        ));
        assert_eq!(
            scenario.fault_for(&aim(Route::Upload, 2, "acct"), 0, "job"),
            None
        );
    }

    #[test]
    fn probability_is_a_pure_function_of_seed_and_subject() {
        let text = "description: d\nfaults:\n  - on: status\n    probability: 0.5\n    drop: {}\n";
        let scenario = Scenario::parse("p", text, Path::new("p.yaml")).unwrap();
        let hits = |seed| {
            (1..=200)
                .map(|nth| {
                    scenario
                        .fault_for(&aim(Route::Status, nth, "acct"), seed, "job-1")
                        .is_some()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(hits(7), hits(7));
        assert_ne!(hits(7), hits(8));
        let n_hits = hits(7).into_iter().filter(|hit| *hit).count();
        assert!((60..140).contains(&n_hits), "{n_hits} of 200 at p = 0.5");
    }

    #[test]
    fn lognormal_latency_centres_on_its_median() {
        let latency = Latency::LogNormal {
            median: Duration::from_millis(100),
            sigma: 0.5,
        };
        let mut samples: Vec<Duration> = (0..1_001)
            .map(|nth| {
                latency.sample(
                    roll(1, "s", Route::Status, nth, 0, 0),
                    roll(1, "s", Route::Status, nth, 0, 1),
                )
            })
            .collect();
        samples.sort();
        let median = samples[500].as_millis();
        assert!((85..=115).contains(&median), "median {median} ms");
    }

    #[test]
    fn a_bad_fault_is_named_with_its_file_and_index() {
        let text = "description: d\nfaults:\n  - on: status\n    respond: { status: 200 }\n";
        let err = Scenario::parse("x", text, Path::new("fixtures/scenarios/x.yaml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid scenario fixtures/scenarios/x.yaml: faults[0]: respond.status must be a 4xx or 5xx"
        );
        let text = "description: d\nfaults:\n  - on: status\n    explode: {}\n";
        let err = Scenario::parse("x", text, Path::new("x.yaml")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("x.yaml") && message.contains("line"),
            "{message}"
        );
    }

    #[test]
    fn faults_can_aim_at_accounts_by_glob() {
        let text = "description: d\nfaults:\n  - on: status\n    accounts: [\"acct_flaky*\"]\n    drop: {}\n";
        let scenario = Scenario::parse("a", text, Path::new("a.yaml")).unwrap();
        assert_eq!(
            scenario.fault_for(&aim(Route::Status, 1, "acct_flaky_7"), 0, "j"),
            Some(Action::Drop)
        );
        assert_eq!(
            scenario.fault_for(&aim(Route::Status, 1, "acct_calm"), 0, "j"),
            None
        );
    }

    #[test]
    fn faults_can_aim_at_a_provider_and_a_job() {
        let text = "description: d\nfaults:\n  - on: status\n    providers: [onlyfans]\n    jobs: [2]\n    empty: {}\n";
        let scenario = Scenario::parse("a", text, Path::new("a.yaml")).unwrap();
        let mut target = aim(Route::Status, 1, "acct");
        assert_eq!(scenario.fault_for(&target, 0, "j"), None, "fansly, job 1");
        target.provider = Provider::OnlyFans;
        assert_eq!(scenario.fault_for(&target, 0, "j"), None, "onlyfans, job 1");
        target.job = 2;
        assert_eq!(scenario.fault_for(&target, 0, "j"), Some(Action::Empty));
    }

    #[test]
    fn faults_can_be_attached_to_a_step() {
        let text = "description: d\nfaults:\n  - on: status\n    states: [processing]\n    respond: { status: 500 }\n";
        let scenario = Scenario::parse("a", text, Path::new("a.yaml")).unwrap();
        let mut target = aim(Route::Status, 1, "acct");
        assert_eq!(scenario.fault_for(&target, 0, "j"), None, "no state");
        target.state = Some(StateAim::Queued);
        assert_eq!(scenario.fault_for(&target, 0, "j"), None);
        target.state = Some(StateAim::Processing);
        assert!(scenario.fault_for(&target, 0, "j").is_some());
    }

    #[test]
    fn unknown_names_list_the_built_ins() {
        let err = Scenario::resolve("slow-fail").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown scenario \"slow-fail\"; built-in: happy, slow")
        );
    }

    #[test]
    fn attempts_repeat_their_last_outcome() {
        let scenario = Scenario::resolve("fail-then-succeed-on-retry").unwrap();
        assert!(matches!(
            scenario.outcome_for_attempt(1),
            Some(Outcome::Failed { .. })
        ));
        assert_eq!(scenario.outcome_for_attempt(2), Some(&Outcome::Completed));
        assert_eq!(scenario.outcome_for_attempt(9), Some(&Outcome::Completed));
    }
}
