//! Cassettes: one recorded upload job, as the recording proxy (`--proxy ... --record DIR`) wrote
//! it, and the scenario that replays it.
//!
//! A cassette is a file format, so its types derive serde here, as the scenario and fixture
//! formats do; the format is documented in `fixtures/cassettes/README.md` and checked by
//! `fixtures/cassettes/cassette.schema.json`. Replaying keeps what the recording says about the
//! job's life (states, progress, when each began on the clock, error texts, which poll got a 429
//! and its `Retry-After`) and leaves everything the mock owns (ids, links, bytes) to the mock, so
//! a replayed job's links are served and expire like any other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::{Outcome, Phase, Step, Timeline, Until};
use crate::provider::Provider;
use crate::scenario::{Action, Fault, Route, Scenario, WebhookBehaviour};

/// The `format` every cassette this version writes carries; a reader refuses others, so a future
/// change of meaning cannot be replayed as this one.
pub const FORMAT: &str = "upload-mock-cassette/1";

/// One recorded upload job: the request's shape, the upload's answer, every status answer, and
/// what a HEAD of each link the job returned got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    /// Always [`FORMAT`].
    pub format: String,
    /// `fansly` or `onlyfans`.
    pub provider: String,
    /// When the upload was recorded (ISO 8601, on the recording mock's clock): parity reports
    /// print it, because a months-old cassette may describe an API that has since changed.
    pub recorded_at: String,
    /// The origin the recording proxy forwarded to.
    pub upstream: String,
    /// The upload request and its answer.
    pub upload: RecordedUpload,
    /// The job id the upstream answered, if it answered one.
    #[serde(default)]
    pub job_id: Option<String>,
    /// Every status answer for the job, in order.
    #[serde(default)]
    pub polls: Vec<Poll>,
    /// Status answers not kept because the cassette already held [`MAX_POLLS`].
    #[serde(default)]
    pub polls_not_recorded: u32,
    /// A HEAD of each link the job's answers carried, once it was terminal.
    #[serde(default)]
    pub links: Vec<LinkCheck>,
}

/// Status answers one cassette keeps: a client polling a stuck job every second for a day must
/// not grow a file without bound. Later polls are only counted.
pub const MAX_POLLS: usize = 1_000;

/// The upload request (its shape, not its bytes) and the answer it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedUpload {
    /// What was sent.
    pub request: UploadRequest,
    /// What came back.
    pub answer: Answer,
}

/// An upload request's shape: enough to send an equivalent one again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// `POST`.
    pub method: String,
    /// The path (and query) as sent, account included.
    pub path: String,
    /// The `Content-Type` without its boundary (`multipart/form-data`, `application/json`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Every part (or JSON member), in order.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// Text fields and their values (redacted where listed).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The file's bytes, relative to the cassette, when recorded with `--record-media`.
    #[serde(default)]
    pub media: Option<String>,
    /// Why the shape is incomplete (a body the recorder could not read whole), if it is.
    #[serde(default)]
    pub unreadable: Option<String>,
}

/// One part of an upload form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// The part's name (`file`, `async`, ...).
    pub name: String,
    /// Its file name, for a file part.
    #[serde(default)]
    pub file_name: Option<String>,
    /// Bytes.
    pub size: u64,
    /// The type sniffed from the file's bytes, for the file part.
    #[serde(default)]
    pub detected_type: Option<String>,
}

/// One HTTP answer as the client got it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The status code; 502 when the upstream could not be reached (see `error`).
    pub status: u16,
    /// Header names (lowercase) and values, repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body when it is JSON.
    #[serde(default)]
    pub body: Option<Value>,
    /// The body when it is not JSON (or too long to keep: then only a note).
    #[serde(default)]
    pub body_text: Option<String>,
    /// Why the upstream gave no answer, when it did not.
    #[serde(default)]
    pub error: Option<String>,
}

impl Answer {
    /// `Retry-After` in whole seconds, if the answer carries one.
    pub fn retry_after(&self) -> Option<u32> {
        self.headers.get("retry-after")?.trim().parse().ok()
    }
}

/// One status poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    /// Its number within the job, from 1: the same count faults aim at.
    pub poll: u32,
    /// Milliseconds since the upload was answered, on the recording mock's clock.
    pub elapsed_ms: u64,
    /// The path polled.
    pub path: String,
    /// What came back.
    pub answer: Answer,
}

/// A HEAD of one link a job returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkCheck {
    /// The link, with signatures redacted.
    pub url: String,
    /// What the HEAD got; 0 when it got no answer (see `error`).
    pub status: u16,
    /// Its headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Why there was no answer.
    #[serde(default)]
    pub error: Option<String>,
}

/// What a status answer says about its job, in the mock's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Queued or processing, with the progress shown (0 when the provider shows none).
    Running {
        /// Which phase.
        phase: Phase,
        /// Progress 0–100.
        progress: u8,
        /// The provider's word for it (`waiting`, `processing`, or one the mock does not know).
        state: String,
    },
    /// Completed.
    Completed,
    /// Failed, with the provider's text.
    Failed {
        /// The error text, verbatim.
        reason: String,
        /// The progress shown, if any.
        progress: u8,
    },
}

impl Seen {
    /// The state a provider's 2xx status body shows; `None` for a body that shows none.
    pub fn of(provider: Provider, body: &Value) -> Option<Self> {
        let (state, progress, reason) = match provider {
            Provider::Fansly => {
                let data = body.get("data")?;
                (
                    data.get("state")?.as_str()?,
                    data.get("progress").and_then(Value::as_u64).unwrap_or(0),
                    data.get("failedReason").and_then(Value::as_str),
                )
            }
            Provider::OnlyFans => (
                body.get("status")?.as_str()?,
                body.get("progress").and_then(Value::as_u64).unwrap_or(0),
                body.get("error").and_then(Value::as_str),
            ),
        };
        let progress = u8::try_from(progress.min(100)).unwrap_or(100);
        Some(match state {
            "completed" => Seen::Completed,
            "failed" => Seen::Failed {
                reason: reason.unwrap_or_default().to_owned(),
                progress,
            },
            "waiting" | "pending" => Seen::Running {
                phase: Phase::Queued,
                progress,
                state: state.to_owned(),
            },
            // Clients keep polling on a state they do not know; so does the replay.
            other => Seen::Running {
                phase: Phase::Processing,
                progress,
                state: other.to_owned(),
            },
        })
    }

    /// The provider's state name, for reports.
    pub fn name(&self) -> &str {
        match self {
            Seen::Running { state, .. } => state,
            Seen::Completed => "completed",
            Seen::Failed { .. } => "failed",
        }
    }

    /// Whether the job will not change again.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Seen::Running { .. })
    }
}

/// Why a cassette could not be read or replayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CassetteError {
    /// The file could not be read.
    #[error("cannot read cassette {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a cassette: bad JSON or a field the format does not have.
    #[error("invalid cassette {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A value the format allows but replay cannot use.
    #[error("invalid cassette {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Cassette {
    /// Reads and checks a cassette file.
    pub fn from_file(path: &Path) -> Result<Self, CassetteError> {
        let text = std::fs::read_to_string(path).map_err(|source| CassetteError::Read {
            path: path.to_owned(),
            source,
        })?;
        let cassette: Cassette =
            serde_json::from_str(&text).map_err(|source| CassetteError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let invalid = |problem: String| CassetteError::Invalid {
            path: path.to_owned(),
            problem,
        };
        if cassette.format != FORMAT {
            return Err(invalid(format!(
                "format {:?} is not {FORMAT:?}",
                cassette.format
            )));
        }
        cassette.provider().ok_or_else(|| {
            invalid(format!(
                "provider {:?} is neither fansly nor onlyfans",
                cassette.provider
            ))
        })?;
        Ok(cassette)
    }

    /// The provider it was recorded from.
    pub fn provider(&self) -> Option<Provider> {
        match self.provider.as_str() {
            "fansly" => Some(Provider::Fansly),
            "onlyfans" => Some(Provider::OnlyFans),
            _ => None,
        }
    }

    /// What each answered 2xx poll showed, with its poll number and time since the upload.
    pub fn states(&self) -> Vec<(u32, Duration, Seen)> {
        let Some(provider) = self.provider() else {
            return Vec::new();
        };
        self.polls
            .iter()
            .filter(|poll| (200..300).contains(&poll.answer.status))
            .filter_map(|poll| {
                let seen = Seen::of(provider, poll.answer.body.as_ref()?)?;
                Some((poll.poll, Duration::from_millis(poll.elapsed_ms), seen))
            })
            .collect()
    }

    /// The scenario that replays this recording, named `name` (the file stem).
    ///
    /// Each run of equal states becomes a step that ends when the first poll showing the next
    /// state was answered, on the clock; when two states were seen at the same instant (a
    /// recording clock that stood still while the upstream moved on by polls), the step ends by
    /// poll count instead. A non-2xx poll becomes a `respond` fault at that poll number, with its
    /// `Retry-After`; a non-2xx upload, a fault on every upload.
    pub fn scenario(&self, name: &str) -> Scenario {
        let states = self.states();
        let mut steps: Vec<Step> = Vec::new();
        let mut outcome = None;
        let mut idx = 0;
        while let Some((_, _, seen)) = states.get(idx) {
            let run_end = states[idx..]
                .iter()
                .position(|(_, _, other)| other != seen)
                .map_or(states.len(), |offset| idx + offset);
            match seen {
                Seen::Completed => {
                    outcome = Some(Outcome::Completed);
                    break;
                }
                Seen::Failed { reason, .. } => {
                    outcome = Some(Outcome::Failed {
                        reason: Arc::from(reason.as_str()),
                    });
                    break;
                }
                Seen::Running {
                    phase, progress, ..
                } => {
                    let until = match (states.get(run_end), states.get(run_end - 1)) {
                        (Some((_, next_at, _)), Some((last_poll, last_at, _))) => {
                            if next_at > last_at {
                                Until {
                                    elapsed: Some(*next_at),
                                    polls: None,
                                }
                            } else {
                                Until {
                                    elapsed: None,
                                    polls: Some(*last_poll),
                                }
                            }
                        }
                        // The recording ended while the job ran: it runs on, as it was left.
                        _ => Until::default(),
                    };
                    steps.push(Step {
                        phase: *phase,
                        progress: *progress,
                        until,
                    });
                }
            }
            idx = run_end;
        }
        let timeline = if steps.is_empty() && outcome.is_none() {
            // No state was ever seen (a refused upload, a sync upload): the provider's own.
            None
        } else {
            let outcome = outcome.unwrap_or(Outcome::Completed);
            Some(
                Timeline::new(steps.clone(), outcome.clone()).unwrap_or_else(|_| {
                    // Limits that go back (a clock set backwards while recording): keep the order of
                    // states, each lasting one poll.
                    let by_polls = steps
                        .iter()
                        .enumerate()
                        .map(|(step_idx, step)| Step {
                            until: Until {
                                elapsed: None,
                                polls: Some(u32::try_from(step_idx + 1).unwrap_or(u32::MAX)),
                            },
                            ..*step
                        })
                        .collect();
                    Timeline::new(by_polls, outcome.clone())
                        .unwrap_or_else(|_| Timeline::immediate(outcome))
                }),
            )
        };
        let mut faults = Vec::new();
        let upload_status = self.upload.answer.status;
        if !(200..300).contains(&upload_status) && (400..=599).contains(&upload_status) {
            faults.push(respond_fault(
                Route::Upload,
                Vec::new(),
                upload_status,
                self.upload.answer.retry_after(),
            ));
        }
        for poll in &self.polls {
            let status = poll.answer.status;
            if (400..=599).contains(&status) && poll.poll > 0 {
                faults.push(respond_fault(
                    Route::Status,
                    vec![poll.poll],
                    status,
                    poll.answer.retry_after(),
                ));
            }
        }
        Scenario {
            name: name.to_owned(),
            description: format!(
                "Replays {} upload recorded {} from {}",
                self.provider, self.recorded_at, self.upstream
            ),
            timeline,
            attempts: Vec::new(),
            link_ttl: None,
            vault_ready_after: None,
            faults,
            webhook: WebhookBehaviour::default(),
        }
    }
}

fn respond_fault(route: Route, nth: Vec<u32>, status: u16, retry_after: Option<u32>) -> Fault {
    Fault {
        route,
        nth,
        probability: 1.0,
        accounts: Vec::new(),
        providers: Vec::new(),
        jobs: Vec::new(),
        states: Vec::new(),
        action: Action::Respond {
            status,
            retry_after,
        },
    }
}

/// Every cassette in `dir` (`*.json`, not hidden), by file stem, sorted by it: what the replaying
/// mock (`--recordings DIR`) and `conformance parity` both read, so they agree on which files
/// are recordings. A file that is not a cassette is an error, not skipped.
pub fn cassettes_in(dir: &Path) -> Result<Vec<(String, Cassette)>, CassetteError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CassetteError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CassetteError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        if stem.starts_with('.') || path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let cassette = Cassette::from_file(&path)?;
        found.push((stem.to_owned(), cassette));
    }
    found.sort_by(|(a, _), (b, _)| a.cmp(b));
    Ok(found)
}

/// Every cassette in `dir` as a scenario named by its file stem: what `--recordings DIR` lets
/// `X-Mock-Scenario` name. A file that is not a cassette fails start-up.
pub fn scenarios_in(dir: &Path) -> Result<BTreeMap<String, Arc<Scenario>>, CassetteError> {
    Ok(cassettes_in(dir)?
        .into_iter()
        .map(|(stem, cassette)| {
            let scenario = Arc::new(cassette.scenario(&stem));
            (stem, scenario)
        })
        .collect())
}

/// Links a cassette keeps per job (each is checked with a HEAD when recorded).
pub const MAX_LINKS: usize = 32;

/// The job id an upload answer names: Fansly's `data.jobId`, OnlyFans' `prefixed_id` (or a
/// vault answer's `data.id`). The recorder and `conformance parity` must find the same job.
pub fn job_id_of(provider: Provider, body: &Value) -> Option<String> {
    let id = match provider {
        Provider::Fansly => body.pointer("/data/jobId")?,
        Provider::OnlyFans => body
            .get("prefixed_id")
            .or_else(|| body.pointer("/data/id"))?,
    };
    match id {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// Every distinct `http(s)://` string in a body but `polling_url`, at most [`MAX_LINKS`]: the
/// links a job returned, as the recorder checks them and `conformance parity` compares them.
pub fn links_in(body: &Value) -> Vec<String> {
    fn walk(value: &Value, key: Option<&str>, found: &mut std::collections::BTreeSet<String>) {
        match value {
            Value::String(text)
                if key != Some("polling_url")
                    && (text.starts_with("https://") || text.starts_with("http://")) =>
            {
                found.insert(text.clone());
            }
            Value::Object(map) => {
                for (name, inner) in map {
                    walk(inner, Some(name), found);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, key, found);
                }
            }
            _ => {}
        }
    }
    let mut found = std::collections::BTreeSet::new();
    walk(body, None, &mut found);
    found.into_iter().take(MAX_LINKS).collect()
}
