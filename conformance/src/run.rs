//! The runner: sends the requests, feeds every answer to the checks, and returns a [`Report`].
//!
//! One code path for every target. Where the mock is there, waiting means moving the run's own
//! session clock through `/__admin/clock/advance` (so a five-hour link expiry takes
//! milliseconds), and failure cases are aimed at single uploads with `X-Mock-Scenario`; on a
//! live API, waiting is sleeping and the checks that need the admin API are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use mock_server::Provider;
use mock_server::clock::Stopwatch;
use mock_server::spec::{Document, Spec};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde::Serialize;
use serde_json::Value;

use crate::check::{self, CheckResult, Findings};
use crate::target::{Exchange, Target};

/// How a run behaves; [`Options::default`] suits the mock and a nightly live run alike.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long an upload may take to reach completed or failed, in the target's time (the
    /// session clock on the mock).
    pub deadline: Duration,
    /// The wait between polls on a live target.
    pub poll_interval: Duration,
    /// How far the mock's session clock moves between polls: small enough to see every state.
    pub mock_step: Duration,
    /// The files uploaded by the positive checks.
    pub samples: Vec<Sample>,
    /// Polls after a terminal state, to check that it holds.
    pub stability_polls: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(120),
            poll_interval: Duration::from_secs(2),
            mock_step: Duration::from_millis(250),
            samples: vec![Sample::jpeg()],
            stability_polls: 2,
        }
    }
}

/// A file to upload.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The multipart `filename`.
    pub file_name: String,
    /// The part's content type.
    pub mime: String,
    /// The bytes.
    pub bytes: Bytes,
}

impl Sample {
    /// The repository's sample JPEG (444×421), embedded so the CLI works from any directory.
    pub fn jpeg() -> Self {
        Self {
            file_name: "sample.jpg".to_owned(),
            mime: "image/jpeg".to_owned(),
            bytes: Bytes::from_static(include_bytes!("../../fixtures/media/sample.jpg")),
        }
    }

    /// The repository's sample MP4 (320×240, 1 s).
    pub fn mp4() -> Self {
        Self {
            file_name: "sample.mp4".to_owned(),
            mime: "video/mp4".to_owned(),
            bytes: Bytes::from_static(include_bytes!("../../fixtures/media/sample.mp4")),
        }
    }

    pub(crate) fn part(&self) -> Part {
        Part::stream(self.bytes.clone())
            .file_name(self.file_name.clone())
            .mime_str(&self.mime)
            .unwrap_or_else(|_| Part::stream(self.bytes.clone()).file_name(self.file_name.clone()))
    }

    /// Width and height, when the sample is an image.
    pub(crate) fn dimensions(&self) -> Option<(u64, u64)> {
        let size = imagesize::blob_size(&self.bytes).ok()?;
        Some((size.width as u64, size.height as u64))
    }
}

/// Every check's outcome, plus what a drift check compares.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The provider checked.
    pub provider: &'static str,
    /// The base URL checked.
    pub base_url: String,
    /// Whether the admin API was used.
    pub admin: bool,
    /// One row per catalogued check.
    pub results: Vec<CheckResult>,
    /// Normalised bodies by response kind (`status_completed`, `error_401`, ...), for snapshots.
    pub samples: BTreeMap<String, Value>,
    /// For each sample, the JSON pointers whose value the spec fixes (an `enum`, `x-drift:
    /// value`): what drift compares by value; the rest it compares by shape.
    pub fixed: BTreeMap<String, BTreeSet<String>>,
    /// Requests sent.
    pub n_requests: usize,
    /// Wall time of the run, in milliseconds.
    pub elapsed_ms: f64,
}

impl Report {
    /// Checks that passed.
    pub fn n_passed(&self) -> usize {
        self.count(|outcome| matches!(outcome, check::Outcome::Passed))
    }

    /// Checks that failed.
    pub fn n_failed(&self) -> usize {
        self.count(check::Outcome::is_failure)
    }

    /// Checks skipped on this target.
    pub fn n_skipped(&self) -> usize {
        self.count(|outcome| matches!(outcome, check::Outcome::Skipped { .. }))
    }

    /// Checks that applied but met no case.
    pub fn n_unexercised(&self) -> usize {
        self.count(|outcome| matches!(outcome, check::Outcome::Unexercised { .. }))
    }

    /// Whether no check failed (unexercised checks are judged by the caller: `--allow-skip`).
    pub fn is_success(&self) -> bool {
        self.n_failed() == 0
    }

    /// The result of the check called `name`.
    pub fn result(&self, name: &str) -> Option<&CheckResult> {
        self.results.iter().find(|result| result.name == name)
    }

    fn count(&self, pick: impl Fn(&check::Outcome) -> bool) -> usize {
        self.results
            .iter()
            .filter(|result| pick(&result.outcome))
            .count()
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Nothing answered at the base URL.
    #[error("target {url} is unreachable: {message}")]
    Unreachable {
        /// What was tried.
        url: String,
        /// The transport's message.
        message: String,
    },
    /// The HTTP client could not be built (TLS backend missing, say).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Runs every check against `target`; `on_step` hears each phase's name (for progress bars).
pub async fn run(
    target: &Target,
    options: &Options,
    on_step: &(dyn Fn(&str) + Sync),
) -> Result<Report, RunError> {
    let stopwatch = Stopwatch::start();
    let mut runner = Runner::new(target, options)?;
    runner.preflight().await?;
    let phases: [&str; 6] = [
        "auth",
        "invalid input",
        "unknown job",
        "upload lifecycle",
        "failure lifecycle",
        "signed links",
    ];
    for phase in phases {
        on_step(phase);
        match phase {
            "auth" => check::upload::auth(&mut runner).await,
            "invalid input" => check::upload::invalid_input(&mut runner).await,
            "unknown job" => check::lifecycle::unknown_job(&mut runner).await,
            "upload lifecycle" => {
                for sample in &options.samples {
                    if let Some(completed) =
                        check::lifecycle::upload_and_follow(&mut runner, sample, &[]).await
                    {
                        runner.completed.push((sample.clone(), completed));
                    }
                }
                check::upload::sync_upload(&mut runner).await;
            }
            "failure lifecycle" => check::lifecycle::failure(&mut runner).await,
            _ => check::cdn::links(&mut runner).await,
        }
    }
    Ok(Report {
        provider: target.provider.slug(),
        base_url: target.base_url.clone(),
        admin: target.admin,
        results: runner.findings.finish(),
        samples: runner.samples,
        fixed: runner.fixed,
        n_requests: runner.n_requests,
        elapsed_ms: stopwatch.elapsed_ms(),
    })
}

/// Uploads one file with extra form `fields` (OnlyFans `async`, `type`, ...), follows its job to
/// the end and checks its links, holding every answer to the same checks as [`run`]. A refusal
/// or a failed job is an acceptable end here, if it is well-formed: this is what property tests
/// feed generated files and forms to.
pub async fn check_upload(
    target: &Target,
    options: &Options,
    sample: &Sample,
    fields: &[(String, String)],
) -> Result<Vec<CheckResult>, RunError> {
    let mut runner = Runner::new(target, options)?;
    runner.lenient = true;
    let asynchronous = fields
        .iter()
        .find(|(name, _)| name == "async")
        .is_none_or(|(_, value)| value == "true");
    if target.provider == Provider::OnlyFans && !asynchronous {
        check::upload::sync_case(&mut runner, sample, fields).await;
    } else if let Some(media) =
        check::lifecycle::upload_and_follow(&mut runner, sample, fields).await
    {
        runner.completed.push((sample.clone(), media));
    }
    check::cdn::links(&mut runner).await;
    Ok(runner.findings.finish())
}

/// A request body: rebuilt for each send, because a multipart form is consumed by sending.
pub(crate) enum Body {
    /// No body.
    Empty,
    /// A multipart form.
    Form(Form),
    /// A JSON document.
    Json(Value),
}

/// Whether to send the API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Send it.
    Key,
    /// Leave it out.
    None,
}

/// The state of one run.
pub(crate) struct Runner<'a> {
    pub(crate) target: &'a Target,
    pub(crate) options: &'a Options,
    pub(crate) findings: Findings,
    pub(crate) samples: BTreeMap<String, Value>,
    pub(crate) fixed: BTreeMap<String, BTreeSet<String>>,
    /// Completed jobs' final status bodies, with what was uploaded.
    pub(crate) completed: Vec<(Sample, Value)>,
    client: reqwest::Client,
    spec: Spec,
    n_requests: usize,
    /// The target time spent waiting, to hold polls to the deadline.
    pub(crate) waited: Duration,
    /// Whether a refused upload or a failed job is an acceptable end (generated inputs), as
    /// long as every answer meets the spec.
    pub(crate) lenient: bool,
}

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<'a> Runner<'a> {
    fn new(target: &'a Target, options: &'a Options) -> Result<Self, RunError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|err| RunError::Client(err.to_string()))?;
        let document = match target.provider {
            Provider::Fansly => Document::Fansly,
            Provider::OnlyFans => Document::OnlyFans,
        };
        let spec = Spec::load(document).map_err(|err| RunError::Client(err.to_string()))?;
        Ok(Self {
            target,
            options,
            findings: Findings::default(),
            samples: BTreeMap::new(),
            fixed: BTreeMap::new(),
            completed: Vec::new(),
            client,
            spec,
            n_requests: 0,
            waited: Duration::ZERO,
            lenient: false,
        })
    }

    /// One request to see that something answers, before judging anything.
    async fn preflight(&self) -> Result<(), RunError> {
        let url = self
            .target
            .url(&self.target.status_path("conformance-preflight"));
        let mut request = self.client.get(&url);
        if let Some(session) = &self.target.session {
            request = request.header("x-mock-session", session);
        }
        request
            .send()
            .await
            .map(drop)
            .map_err(|err| RunError::Unreachable {
                url,
                message: error_chain(&err),
            })
    }

    /// Sends a provider API request, runs the per-response checks on the answer, and returns
    /// it; `None` when the connection failed (recorded as a failure).
    pub(crate) async fn api(
        &mut self,
        purpose: &str,
        method: Method,
        path: &str,
        auth: Auth,
        body: Body,
        scenario: Option<&str>,
    ) -> Option<Exchange> {
        let mut request = self.client.request(method.clone(), self.target.url(path));
        if auth == Auth::Key {
            let (name, value) = self.target.auth_header();
            request = request.header(name, value);
        }
        if let Some(session) = &self.target.session {
            request = request.header("x-mock-session", session);
        }
        if let Some(scenario) = scenario {
            request = request.header("x-mock-scenario", scenario);
        }
        request = match body {
            Body::Empty => request,
            Body::Form(form) => request.multipart(form),
            Body::Json(json) => request.json(&json),
        };
        let exchange = self.send(purpose, &method, path, request).await?;
        check::response::all(&self.spec, &mut self.findings, &exchange);
        Some(exchange)
    }

    /// `GET path` with the key: a poll.
    pub(crate) async fn get(&mut self, purpose: &str, path: &str) -> Option<Exchange> {
        self.api(purpose, Method::GET, path, Auth::Key, Body::Empty, None)
            .await
    }

    /// `POST path` with the key and a multipart form: an upload.
    pub(crate) async fn post_form(
        &mut self,
        purpose: &str,
        path: &str,
        form: Form,
    ) -> Option<Exchange> {
        self.api(
            purpose,
            Method::POST,
            path,
            Auth::Key,
            Body::Form(form),
            None,
        )
        .await
    }

    /// Fetches a CDN link (no spec checks: CDN answers are CloudFront's, not the API's).
    pub(crate) async fn cdn(&mut self, purpose: &str, url: &str) -> Option<Exchange> {
        let path = url.split('?').next().unwrap_or(url).to_owned();
        let request = self.client.get(url);
        self.send(purpose, &Method::GET, &path, request).await
    }

    async fn send(
        &mut self,
        purpose: &str,
        method: &Method,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Option<Exchange> {
        self.n_requests += 1;
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                self.findings.fail(
                    check::NOT_A_SERVER_ERROR,
                    format!("{method} {path} ({purpose}): {}", error_chain(&err)),
                );
                return None;
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => {
                self.findings.fail(
                    check::NOT_A_SERVER_ERROR,
                    format!(
                        "{method} {path} → {status} ({purpose}): body cut short: {}",
                        error_chain(&err)
                    ),
                );
                return None;
            }
        };
        let json = serde_json::from_slice(&body).ok();
        Some(Exchange {
            purpose: purpose.to_owned(),
            method: method.to_string(),
            path: path.to_owned(),
            status,
            headers,
            body,
            json,
        })
    }

    /// The documented response for an exchange, for the response checks.
    pub(crate) fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Lets `by` of target time pass: the session clock on the mock, a sleep elsewhere.
    pub(crate) async fn wait(&mut self, by: Duration) {
        self.waited += by;
        if self.target.admin {
            self.admin_advance(by).await;
        } else {
            tokio::time::sleep(by).await;
        }
    }

    /// Moves the run's session clock on the mock.
    pub(crate) async fn admin_advance(&mut self, by: Duration) {
        let mut request = self
            .client
            .post(self.target.url("/__admin/clock/advance"))
            .json(&serde_json::json!({ "seconds": by.as_secs_f64() }));
        if let Some(session) = &self.target.session {
            request = request.header("x-mock-session", session);
        }
        self.n_requests += 1;
        if let Err(err) = request.send().await.and_then(|r| r.error_for_status()) {
            self.findings.fail(
                check::NOT_A_SERVER_ERROR,
                format!("POST /__admin/clock/advance: {}", error_chain(&err)),
            );
        }
    }

    /// The mock session clock's reading, in Unix seconds.
    pub(crate) async fn admin_now(&mut self) -> Option<u64> {
        let mut request = self.client.get(self.target.url("/__admin/clock"));
        if let Some(session) = &self.target.session {
            request = request.header("x-mock-session", session);
        }
        self.n_requests += 1;
        let clock: Value = request.send().await.ok()?.json().await.ok()?;
        Some(clock["unix_ms"].as_u64()? / 1000)
    }

    /// Keeps a normalised copy of a body as the sample of its response kind (first one wins),
    /// with the pointers whose values its documented schema fixes.
    pub(crate) fn keep_sample(&mut self, kind: &str, exchange: &Exchange) {
        let Some(json) = &exchange.json else {
            return;
        };
        if self.samples.contains_key(kind) {
            return;
        }
        self.samples
            .insert(kind.to_owned(), crate::snapshot::normalize(json));
        let fixed = self
            .spec
            .response(&exchange.method, &exchange.path, exchange.status)
            .ok()
            .and_then(|documented| documented.schema("application/json"))
            .map(|schema| crate::snapshot::fixed_pointers(&schema, json))
            .unwrap_or_default();
        self.fixed.insert(kind.to_owned(), fixed);
    }

    /// The upload form for `sample` with this provider's fields (unless the run sets them).
    pub(crate) fn upload_form(&self, sample: &Sample, asynchronous: bool) -> Form {
        let form = Form::new().part("file", sample.part());
        match self.target.provider {
            Provider::Fansly => form,
            Provider::OnlyFans if self.lenient => form,
            Provider::OnlyFans => form
                .text("async", if asynchronous { "true" } else { "false" })
                .text("type", "default"),
        }
    }
}

/// An error with its sources, `: `-joined (reqwest's own message hides the cause).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
