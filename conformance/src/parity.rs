//! Parity: how close a target's answers are to what a live API answered in recorded cassettes
//! (`mock-server --proxy ... --record DIR`).
//!
//! Each cassette's upload is sent again (same path, parts, file names, fields; the recorded
//! bytes with `--record-media`, else a sample of the recorded type), and each recorded poll is
//! sent at the same time after the upload (the mock's clock is moved; a live target is waited
//! for) and in the same order, so poll numbers match. On a mock the upload names the cassette
//! with `X-Mock-Scenario`, so the mock plays the recorded lifecycle and only how it renders each
//! answer is judged. Each answer is compared with the recorded one as drift compares snapshots
//! (`snapshot::normalize`, `snapshot::diff`, `snapshot::fixed_pointers`): status code, header
//! names, field names, JSON types and nesting always, a value only where `specs/` fixes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use mock_server::Provider;
use mock_server::cassette::{Answer, Cassette, Seen, job_id_of, links_in};
use mock_server::spec::{Document, Spec};
use serde_json::Value;

use crate::snapshot::{Difference, diff, fixed_pointers, normalize};
use crate::target::Target;

/// Response headers never compared: connection framing, and what only the mock sends.
const IGNORED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
];

/// What one exchange (or one row of them) came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Items (status code, header names, body fields) that are the same.
    pub matches: usize,
    /// Items present on both sides with a different type or fixed value.
    pub differs: usize,
    /// Items the recording has and the target's answer lacks.
    pub missing: usize,
    /// Items the target's answer has and the recording lacks.
    pub extra: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.matches += other.matches;
        self.differs += other.differs;
        self.missing += other.missing;
        self.extra += other.extra;
    }
}

/// One difference, keyed so that a reviewed file can accept it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// `<endpoint> <state> <what>`, e.g. `status active /data/percent: field added (integer)`:
    /// the same whichever cassette or poll showed it.
    pub key: String,
    /// Where it was seen, e.g. `poll 3`.
    pub at: String,
    /// The reviewed reason, when the difference is accepted.
    pub accepted: Option<String>,
}

/// One endpoint and state of one cassette (`status waiting`, `upload 201`, `cdn HEAD`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// `upload`, `status` or `cdn`.
    pub endpoint: &'static str,
    /// The recorded state name, or the status code of a non-2xx answer.
    pub state: String,
    /// Exchanges compared.
    pub exchanges: usize,
    /// Their items, summed.
    pub counts: Counts,
    /// Every difference, accepted or not.
    pub findings: Vec<Finding>,
}

impl Row {
    /// Whether every difference in this row is accepted.
    pub fn is_success(&self) -> bool {
        self.findings
            .iter()
            .all(|finding| finding.accepted.is_some())
    }
}

/// One cassette's comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CassetteParity {
    /// The cassette's file stem: a stable name for reports.
    pub name: String,
    /// When it was recorded.
    pub recorded_at: String,
    /// Its rows, in the order first met.
    pub rows: Vec<Row>,
}

/// Differences accepted after review, each with its reason.
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    reasons: BTreeMap<String, String>,
}

impl Accepted {
    /// Parses `KEY # REASON` lines (blank lines and lines starting with `#` are skipped). A line
    /// without a reason is an error naming its number: an accepted difference nobody explained
    /// is not reviewed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reasons = BTreeMap::new();
        for (line_idx, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.rsplit_once(" # ") {
                Some((key, reason)) if !key.trim().is_empty() && !reason.trim().is_empty() => {
                    reasons.insert(key.trim().to_owned(), reason.trim().to_owned());
                }
                _ => {
                    return Err(format!(
                        "line {}: {line:?} has no reason; write it as `KEY # why this difference is accepted`",
                        line_idx + 1
                    ));
                }
            }
        }
        Ok(Self { reasons })
    }

    fn reason(&self, key: &str) -> Option<String> {
        self.reasons.get(key).cloned()
    }
}

/// Why parity could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParityError {
    /// The specs did not load.
    #[error("cannot load the specs: {0}")]
    Spec(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Every cassette of `provider` in `dir`, by name, sorted.
pub fn cassettes_in(
    dir: &Path,
    provider: Provider,
) -> Result<Vec<(String, Cassette)>, mock_server::cassette::CassetteError> {
    let mut found = mock_server::cassette::cassettes_in(dir)?;
    found.retain(|(_, cassette)| cassette.provider() == Some(provider));
    Ok(found)
}

/// Replays every cassette against `target` and compares each answer with the recorded one.
/// `dir` is where the cassettes (and any `--record-media` bytes) are.
pub async fn parity(
    target: &Target,
    dir: &Path,
    cassettes: &[(String, Cassette)],
    accepted: &Accepted,
) -> Result<Vec<CassetteParity>, ParityError> {
    let spec = Spec::load(match target.provider {
        Provider::Fansly => Document::Fansly,
        Provider::OnlyFans => Document::OnlyFans,
    })
    .map_err(|err| ParityError::Spec(err.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| ParityError::Client(err.to_string()))?;
    let mut results = Vec::new();
    for (name, cassette) in cassettes {
        let replay = Replay {
            target,
            client: &client,
            spec: &spec,
            accepted,
            session: target
                .session
                .as_ref()
                .map(|session| format!("{session}-{name}")),
        };
        results.push(CassetteParity {
            name: name.clone(),
            recorded_at: cassette.recorded_at.clone(),
            rows: replay.run(dir, name, cassette).await,
        });
    }
    Ok(results)
}

struct Replay<'a> {
    target: &'a Target,
    client: &'a reqwest::Client,
    spec: &'a Spec,
    accepted: &'a Accepted,
    /// Each cassette gets its own session on a mock: its own clock and poll counts.
    session: Option<String>,
}

/// An answer as the target gave it.
struct Got {
    status: u16,
    headers: BTreeSet<String>,
    json: Option<Value>,
    text: String,
}

impl Replay<'_> {
    async fn run(&self, dir: &Path, name: &str, cassette: &Cassette) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        let provider = self.target.provider;
        let path = self.upload_path(&cassette.upload.request.path);
        let uploaded = self.upload(dir, name, cassette, &path).await;
        let recorded = &cassette.upload.answer;
        let state = recorded.status.to_string();
        self.judge(
            &mut rows,
            "upload",
            &state,
            "upload",
            "POST",
            &path,
            recorded,
            uploaded.as_ref(),
        );
        let job_id = uploaded
            .as_ref()
            .ok()
            .and_then(|got| got.json.as_ref())
            .and_then(|body| job_id_of(provider, body));
        let account = path.trim_start_matches('/').split('/').nth(match provider {
            Provider::Fansly => 2,
            Provider::OnlyFans => 1,
        });
        let mut previous = Duration::ZERO;
        let mut last_body = uploaded.ok().and_then(|got| got.json);
        for poll in &cassette.polls {
            let elapsed = Duration::from_millis(poll.elapsed_ms);
            self.wait(elapsed.saturating_sub(previous)).await;
            previous = previous.max(elapsed);
            let state = answer_state(provider, &poll.answer);
            let at = format!("poll {}", poll.poll);
            let Some(job_id) = &job_id else {
                let row = row_of(&mut rows, "status", &state);
                row.exchanges += 1;
                row.counts.missing += 1;
                self.find(
                    row,
                    "status",
                    &state,
                    "no job to poll: the upload answered no job id",
                    &at,
                );
                continue;
            };
            let status_path = match provider {
                Provider::Fansly => format!("/api/fansly/media/upload/{job_id}/status"),
                Provider::OnlyFans => format!(
                    "/api/{}/media/uploads/{job_id}/status",
                    account.unwrap_or_default()
                ),
            };
            let got = self
                .send(self.request(reqwest::Method::GET, &status_path))
                .await;
            if let Ok(got) = &got {
                if got.json.is_some() && (200..300).contains(&got.status) {
                    last_body.clone_from(&got.json);
                }
            }
            self.judge(
                &mut rows,
                "status",
                &state,
                &at,
                "GET",
                &status_path,
                &poll.answer,
                got.as_ref(),
            );
        }
        if !cassette.links.is_empty() {
            self.judge_links(&mut rows, cassette, last_body.as_ref())
                .await;
        }
        rows
    }

    /// The recorded path, with the target's account where the recording's was redacted or the
    /// target is live (its own account).
    fn upload_path(&self, recorded: &str) -> String {
        let account_idx = match self.target.provider {
            Provider::Fansly => 3,
            Provider::OnlyFans => 2,
        };
        let mut segments: Vec<String> = recorded.split('/').map(str::to_owned).collect();
        if let Some(account) = segments.get_mut(account_idx) {
            if !self.target.admin || account.contains("[REDACTED]") {
                account.clone_from(&self.target.account);
            }
        }
        segments.join("/")
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let (name, value) = self.target.auth_header();
        let mut request = self
            .client
            .request(method, self.target.url(path))
            .header(name, value);
        if let Some(session) = &self.session {
            request = request.header("x-mock-session", session);
        }
        request
    }

    async fn upload(
        &self,
        dir: &Path,
        name: &str,
        cassette: &Cassette,
        path: &str,
    ) -> Result<Got, String> {
        let shape = &cassette.upload.request;
        let mut request = self.request(reqwest::Method::POST, path);
        if self.target.admin {
            request = request.header("x-mock-scenario", name);
        }
        if shape.content_type.as_deref() == Some("application/json") {
            let fields: serde_json::Map<String, Value> = shape
                .fields
                .iter()
                .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
                .collect();
            request = request.json(&fields);
        } else {
            let mut form = reqwest::multipart::Form::new();
            for part in &shape.parts {
                form = match (&part.file_name, shape.fields.get(&part.name)) {
                    (Some(file_name), _) => {
                        let bytes = shape
                            .media
                            .as_ref()
                            .and_then(|media| std::fs::read(dir.join(media)).ok())
                            .unwrap_or_else(|| sample_of(part.detected_type.as_deref()));
                        form.part(
                            part.name.clone(),
                            reqwest::multipart::Part::bytes(bytes).file_name(file_name.clone()),
                        )
                    }
                    (None, Some(value)) => form.text(part.name.clone(), value.clone()),
                    (None, None) => form.text(part.name.clone(), String::new()),
                };
            }
            request = request.multipart(form);
        }
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Got, String> {
        let response = request.send().await.map_err(|err| err.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .keys()
            .map(|name| name.as_str().to_owned())
            .collect();
        let bytes = response.bytes().await.map_err(|err| err.to_string())?;
        Ok(Got {
            status,
            headers,
            json: serde_json::from_slice(&bytes).ok(),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// Lets `by` pass on the target: the session's clock on a mock, real time on a live API.
    async fn wait(&self, by: Duration) {
        if by.is_zero() {
            return;
        }
        if self.target.admin {
            let request = self
                .client
                .post(self.target.url("/__admin/clock/advance"))
                .json(&serde_json::json!({ "by": format!("{}ms", by.as_millis()) }));
            let request = match &self.session {
                Some(session) => request.header("x-mock-session", session),
                None => request,
            };
            if let Err(err) = request.send().await {
                tracing::warn!(error = %err, "clock not moved");
            }
        } else {
            tokio::time::sleep(by).await;
        }
    }

    #[allow(clippy::too_many_arguments)] // Each is a distinct fact of the exchange.
    fn judge(
        &self,
        rows: &mut Vec<Row>,
        endpoint: &'static str,
        state: &str,
        at: &str,
        method: &str,
        path: &str,
        recorded: &Answer,
        got: Result<&Got, &String>,
    ) {
        let (counts, differences) = match got {
            Ok(got) => compare(self.spec, method, path, recorded, got),
            Err(err) => (
                Counts {
                    missing: 1,
                    ..Counts::default()
                },
                vec![format!("no answer: {err}")],
            ),
        };
        let row = row_of(rows, endpoint, state);
        row.exchanges += 1;
        row.counts.add(&counts);
        for difference in differences {
            self.find(row, endpoint, state, &difference, at);
        }
    }

    fn find(&self, row: &mut Row, endpoint: &str, state: &str, difference: &str, at: &str) {
        let key = format!("{endpoint} {state} {difference}");
        if row.findings.iter().any(|finding| finding.key == key) {
            return;
        }
        row.findings.push(Finding {
            accepted: self.accepted.reason(&key),
            key,
            at: at.to_owned(),
        });
    }

    /// HEAD of each link of the target's terminal answer: the statuses it gets must be the ones
    /// the recording's links got.
    async fn judge_links(&self, rows: &mut Vec<Row>, cassette: &Cassette, body: Option<&Value>) {
        let recorded: BTreeSet<u16> = cassette.links.iter().map(|link| link.status).collect();
        let mut got = BTreeSet::new();
        for link in body.map(links_in).unwrap_or_default() {
            let status = match self.client.head(&link).send().await {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            };
            got.insert(status);
        }
        let row = row_of(rows, "cdn", "HEAD");
        row.exchanges += 1;
        row.counts.matches += recorded.intersection(&got).count();
        let missing: Vec<u16> = recorded.difference(&got).copied().collect();
        let extra: Vec<u16> = got.difference(&recorded).copied().collect();
        row.counts.missing += missing.len();
        row.counts.extra += extra.len();
        for status in missing {
            self.find(
                row,
                "cdn",
                "HEAD",
                &format!("links answering {status}: missing"),
                "links",
            );
        }
        for status in extra {
            self.find(
                row,
                "cdn",
                "HEAD",
                &format!("links answering {status}: extra"),
                "links",
            );
        }
    }
}

fn row_of<'r>(rows: &'r mut Vec<Row>, endpoint: &'static str, state: &str) -> &'r mut Row {
    let idx = match rows
        .iter()
        .position(|row| row.endpoint == endpoint && row.state == state)
    {
        Some(idx) => idx,
        None => {
            rows.push(Row {
                endpoint,
                state: state.to_owned(),
                exchanges: 0,
                counts: Counts::default(),
                findings: Vec::new(),
            });
            rows.len() - 1
        }
    };
    &mut rows[idx]
}

/// The recorded answer's state name (`waiting`, `completed`), or its status code when it is not
/// a 2xx status body.
fn answer_state(provider: Provider, answer: &Answer) -> String {
    answer
        .body
        .as_ref()
        .filter(|_| (200..300).contains(&answer.status))
        .and_then(|body| Seen::of(provider, body))
        .map_or_else(|| answer.status.to_string(), |seen| seen.name().to_owned())
}

/// Compares one answer with its recording: status code, header names, body.
fn compare(
    spec: &Spec,
    method: &str,
    path: &str,
    recorded: &Answer,
    got: &Got,
) -> (Counts, Vec<String>) {
    let mut counts = Counts::default();
    let mut differences = Vec::new();
    if recorded.status == got.status {
        counts.matches += 1;
    } else {
        counts.differs += 1;
        differences.push(format!(
            "status code: recorded {}, answered {}",
            recorded.status, got.status
        ));
    }
    let compared =
        |name: &String| !IGNORED_HEADERS.contains(&name.as_str()) && !name.starts_with("x-mock-");
    let recorded_headers: BTreeSet<String> = recorded
        .headers
        .keys()
        .filter(|name| compared(name))
        .cloned()
        .collect();
    let got_headers: BTreeSet<String> = got
        .headers
        .iter()
        .filter(|name| compared(name))
        .cloned()
        .collect();
    counts.matches += recorded_headers.intersection(&got_headers).count();
    for name in recorded_headers.difference(&got_headers) {
        counts.missing += 1;
        differences.push(format!("header {name}: missing"));
    }
    for name in got_headers.difference(&recorded_headers) {
        counts.extra += 1;
        differences.push(format!("header {name}: extra"));
    }
    match (&recorded.body, &got.json) {
        (Some(want), Some(have)) => {
            let fixed = spec
                .response(method, path, recorded.status)
                .ok()
                .and_then(|documented| documented.schema("application/json"))
                // Either side's branch may fix a value: a new state name matches no branch of
                // the recorded body's schema, but the state the target answered does.
                .map(|schema| {
                    let mut fixed = fixed_pointers(&schema, want);
                    fixed.extend(fixed_pointers(&schema, have));
                    fixed
                })
                .unwrap_or_default();
            let want = normalize(want);
            let found: Vec<Difference> =
                diff(&want, &normalize(have), &|pointer| fixed.contains(pointer));
            let mut n_against_recorded = 0;
            for difference in &found {
                if difference.change.starts_with("field removed") {
                    counts.missing += 1;
                    n_against_recorded += 1;
                } else if difference.change.starts_with("field added") {
                    counts.extra += 1;
                } else {
                    counts.differs += 1;
                    n_against_recorded += 1;
                }
                differences.push(difference.to_string());
            }
            counts.matches += n_leaves(&want).saturating_sub(n_against_recorded);
        }
        (None, None) => {
            if recorded.body_text.as_deref().unwrap_or_default().is_empty() == got.text.is_empty() {
                counts.matches += 1;
            } else {
                counts.differs += 1;
                differences
                    .push("body: recorded and answered bodies differ in presence".to_owned());
            }
        }
        (Some(_), None) => {
            counts.differs += 1;
            differences.push("body: recorded JSON, answered a body that is not JSON".to_owned());
        }
        (None, Some(_)) => {
            counts.differs += 1;
            differences.push("body: recorded a body that is not JSON, answered JSON".to_owned());
        }
    }
    (counts, differences)
}

/// Fields and items with a scalar value: what a body's matches are counted in.
fn n_leaves(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.values().map(n_leaves).sum::<usize>().max(1),
        Value::Array(items) => items.iter().map(n_leaves).sum::<usize>().max(1),
        _ => 1,
    }
}

/// Bytes of the recorded type when the recording kept none: a repository sample.
fn sample_of(detected_type: Option<&str>) -> Vec<u8> {
    match detected_type {
        Some("video/mp4") => include_bytes!("../../fixtures/media/sample.mp4").to_vec(),
        Some("image/png") => include_bytes!("../../fixtures/media/sample.png").to_vec(),
        Some("image/gif") => include_bytes!("../../fixtures/media/sample.gif").to_vec(),
        _ => include_bytes!("../../fixtures/media/sample.jpg").to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_difference_needs_a_reason() {
        let accepted =
            Accepted::parse("# reviewed\nstatus active header server: missing # the CDN adds it\n")
                .unwrap();
        assert_eq!(
            accepted
                .reason("status active header server: missing")
                .as_deref(),
            Some("the CDN adds it")
        );
        let err = Accepted::parse("\nupload 201 header server: missing\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }
}
