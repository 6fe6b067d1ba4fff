//! The provider-neutral upload and poll flow: what every provider's upload goes through before its
//! own rules look at the fields (the scenario chosen, the attempt counted, an upload fault, the
//! form read with the file streamed to disk, a file-name rule), and the fault aimed at a status
//! poll. The providers keep only their wire shapes, envelopes and rules; `http` keeps transport.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use http::{Request, header};
use hyper::body::Incoming;

use crate::app::App;
use crate::http::header_text;
use crate::journal;
use crate::scenario::{Action, Aim, Route, Scenario, ScenarioError, StateAim};
use crate::store::{Polled, SessionId};
use crate::upload::{self, Form, UploadError};

/// What an arriving upload will go through, decided before its body is read.
#[derive(Debug)]
pub(crate) struct UploadPlan {
    /// The scenario the job will follow.
    pub(crate) scenario: Arc<Scenario>,
    /// This upload's number under that scenario, from 1.
    pub(crate) attempt: u32,
    /// The fault aimed at this upload, if any.
    pub(crate) fault: Option<Action>,
    /// Whether `X-Mock-Scenario` chose it (no rule may override that).
    pub(crate) is_chosen_by_header: bool,
}

impl App {
    /// Picks the upload's scenario (by `X-Mock-Scenario`, else the session's, else the server's
    /// default), counts the attempt in the session, and decides its fault.
    pub(crate) fn plan_upload(
        &self,
        session: &SessionId,
        provider: crate::Provider,
        account: &str,
        header: Option<&str>,
    ) -> Result<UploadPlan, ScenarioError> {
        let by_header = header.map(str::trim).filter(|name| !name.is_empty());
        let scenario = match by_header {
            Some(name) => self.scenarios.by_name(name)?,
            None => match self.rules.find(account, None) {
                Some(scenario) => scenario,
                None => self
                    .store
                    .scenario_for(session)
                    .unwrap_or_else(|| self.scenarios.startup_default()),
            },
        };
        Ok(self.plan_with(session, provider, account, scenario, by_header.is_some()))
    }

    fn plan_with(
        &self,
        session: &SessionId,
        provider: crate::Provider,
        account: &str,
        scenario: Arc<Scenario>,
        is_chosen_by_header: bool,
    ) -> UploadPlan {
        let attempt = self.store.next_attempt(session, &scenario.name);
        let aim = Aim {
            route: Route::Upload,
            nth: attempt,
            provider,
            account,
            job: attempt,
            state: None,
        };
        let fault = scenario.fault_for(&aim, self.seed, &scenario.name);
        UploadPlan {
            scenario,
            attempt,
            fault,
            is_chosen_by_header,
        }
    }

    /// Once the file name is known, a rule matching it takes over from the default the plan fell
    /// back on (a header's choice stands). Returns the plan to follow.
    pub(crate) fn replan_for_file(
        &self,
        plan: UploadPlan,
        session: &SessionId,
        provider: crate::Provider,
        account: &str,
        file_name: Option<&str>,
    ) -> UploadPlan {
        if plan.is_chosen_by_header || !self.rules.has_file_rules() {
            return plan;
        }
        match self.rules.find(account, file_name) {
            Some(scenario) if scenario.name != plan.scenario.name => {
                self.plan_with(session, provider, account, scenario, false)
            }
            _ => plan,
        }
    }
}

/// The header that picks an upload's scenario.
pub(crate) static SCENARIO_HEADER: header::HeaderName =
    header::HeaderName::from_static("x-mock-scenario");

/// The request body as a stream of chunks; a wait longer than `idle` for the next chunk ends it
/// with a `TimedOut` error (a stalled body is refused with 408, not held open forever).
pub(crate) fn body_stream(
    body: Incoming,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let chunks =
        http_body_util::BodyDataStream::new(body).map(|chunk| chunk.map_err(std::io::Error::other));
    futures_util::stream::unfold(Some(Box::pin(chunks)), move |chunks| async move {
        let mut chunks = chunks?;
        match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(chunks))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "upload body stalled",
                )),
                None,
            )),
        }
    })
}

/// Reads a provider upload form: refuses an oversized `Content-Length` before reading a byte,
/// then streams the body through multer with the file going to disk.
pub(crate) async fn read_form(
    app: &App,
    provider: crate::Provider,
    req: Request<Incoming>,
    file_field: &'static str,
) -> Result<Form, UploadError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| app.limits.is_body_too_large(length)) {
        return Err(UploadError::TooLarge {
            limit: app.limits.max_file_bytes,
        });
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let chunks = body_stream(req.into_body(), app.limits.body_timeout);
    read_body_form(
        app.limits.clone(),
        upload::Sink::Disk(&app.storage_dir),
        provider,
        content_type.as_deref(),
        chunks,
        file_field,
    )
    .await
}

/// Reads an upload form from its body's chunks, as [`read_form`] does once the head is checked:
/// the recording proxy reads the copy of a body it forwards with this, so a recorded upload's
/// shape is what the mock itself would have read.
pub(crate) async fn read_body_form(
    limits: crate::upload::Limits,
    sink: upload::Sink<'_>,
    provider: crate::Provider,
    content_type: Option<&str>,
    chunks: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    file_field: &'static str,
) -> Result<Form, UploadError> {
    // OnlyFansAPI (Laravel) merges a JSON body into its input; Fansly takes multipart only.
    if provider == crate::Provider::OnlyFans && content_type.is_some_and(is_json) {
        let timeout = limits.body_timeout;
        return json_form(chunks, timeout).await;
    }
    let boundary = upload::boundary(content_type)?;
    upload::read_form(chunks, boundary, file_field, limits, sink).await
}

/// The largest JSON upload body read: a `file_url` and two flags fit many times over.
const MAX_JSON_FORM_BYTES: usize = 64 * 1024;

/// Whether a `Content-Type` is JSON (`application/json`, with or without parameters).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// An upload sent as a JSON object (OnlyFansAPI's uploading-media guide posts
/// `{"file_url": "https://..."}` this way): its members become the form's fields, as a framework
/// that merges JSON input with form input sees them; there is no file part. A `null` member is an
/// empty field, not a missing one: Laravel's ConvertEmptyStringsToNull makes an empty form field
/// `null` too, so the provider's rules cannot tell the two apart.
async fn json_form(
    chunks: impl Stream<Item = Result<Bytes, std::io::Error>>,
    timeout: Duration,
) -> Result<Form, UploadError> {
    let mut chunks = std::pin::pin!(chunks);
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|err| match err.kind() {
            std::io::ErrorKind::TimedOut => UploadError::Stalled(timeout),
            _ => UploadError::BadJson("unreadable body"),
        })?;
        if bytes.len() + chunk.len() > MAX_JSON_FORM_BYTES {
            return Err(UploadError::BadJson("over 64 KiB"));
        }
        bytes.extend_from_slice(&chunk);
    }
    let Ok(serde_json::Value::Object(members)) = serde_json::from_slice(&bytes) else {
        return Err(UploadError::BadJson("not a JSON object"));
    };
    let mut form = Form::default();
    for (name, value) in members {
        let text = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        form.parts.push(journal::PartSummary {
            name: name.clone(),
            file_name: None,
            size: text.len() as u64,
        });
        form.fields.push((name, text));
    }
    Ok(form)
}

/// Why an upload was refused before its provider looked at the fields.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// `X-Mock-Scenario` names no scenario.
    Setup(String),
    /// The body is not a readable form.
    Form(UploadError),
    /// The scenario's fault answers this status.
    Fault {
        /// The status.
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u32>,
    },
}

/// Receives an upload: picks its scenario, lets an upload fault refuse it before the body is read,
/// reads the form (the file to disk), then lets a file-name rule pick the scenario again.
pub(crate) async fn receive_upload(
    app: &App,
    session: &SessionId,
    provider: crate::Provider,
    account: &str,
    req: Request<Incoming>,
) -> Result<(UploadPlan, Form), Refusal> {
    let plan = app
        .plan_upload(
            session,
            provider,
            account,
            header_text(&req, &SCENARIO_HEADER),
        )
        .map_err(|err| Refusal::Setup(err.to_string()))?;
    refuse_by_fault(&plan)?;
    let form = read_form(app, provider, req, "file")
        .await
        .map_err(Refusal::Form)?;
    let file_name = form
        .file
        .as_ref()
        .and_then(|file| file.file_name.as_deref());
    let plan = app.replan_for_file(plan, session, provider, account, file_name);
    refuse_by_fault(&plan)?;
    Ok((plan, form))
}

/// The fault aimed at a status poll: a `Respond` fault refuses the poll; any other is returned to
/// be attached to the answer.
pub(crate) fn poll_fault(
    app: &App,
    provider: crate::Provider,
    polled: &Polled,
) -> Result<Option<Action>, Refusal> {
    let aim = Aim {
        route: Route::Status,
        nth: polled.poll_number,
        provider,
        account: &polled.account,
        job: polled.attempt,
        state: Some(StateAim::of(&polled.state)),
    };
    let fault = polled.scenario.fault_for(&aim, app.seed, &polled.id);
    match fault.as_ref().and_then(Action::http_error) {
        Some((status, retry_after)) => Err(Refusal::Fault {
            status,
            retry_after,
        }),
        None => Ok(fault),
    }
}

fn refuse_by_fault(plan: &UploadPlan) -> Result<(), Refusal> {
    match plan.fault.as_ref().and_then(Action::http_error) {
        Some((status, retry_after)) => Err(Refusal::Fault {
            status,
            retry_after,
        }),
        None => Ok(()),
    }
}

/// A provider request as every provider first sees it: its session, the time on that session's
/// clock, its key's one-minute rate window with this request counted, and whether that is over
/// the provider's limit.
#[derive(Debug)]
pub(crate) struct Arrival<'a> {
    /// The request's session (borrowed from the request: no reference count touched per poll).
    pub(crate) session: &'a SessionId,
    /// Now, on the session's clock.
    pub(crate) now: std::time::SystemTime,
    /// The key's window, this request included.
    pub(crate) window: crate::store::Window,
    /// Whether the window is over the provider's limit while the server enforces limits: then
    /// the provider answers its own 429 with `window.retry_after_secs`.
    pub(crate) is_over: bool,
    /// What the status poll the request is saw, when it is one and was not over its limit (None
    /// also when no such job is in the session).
    pub(crate) polled: Option<crate::store::Polled>,
}

/// Takes a provider request in: its session (an invalid `X-Mock-Session` is the error, for the
/// provider to answer in its own shape), its key's request counted against `limit` a minute and,
/// for a status poll (`poll`), the poll answered unless that is over. One store lock for all.
pub(crate) fn arrive<'a>(
    app: &App,
    ctx: &'a crate::http::RequestCtx<'_>,
    provider: crate::Provider,
    key: Option<&str>,
    limit: u32,
    poll: Option<crate::store::PollOf<'_>>,
) -> Result<Arrival<'a>, String> {
    let session = ctx.session.as_ref().map_err(Clone::clone)?;
    let key = key.unwrap_or_default();
    let limit = app.enforce_rate_limits.then_some(limit);
    let (now, window, polled) = match poll {
        None => {
            let (now, window) = app.store.arrive(provider, key, session, ctx.server_now);
            (now, window, None)
        }
        Some(poll) => app
            .store
            .arrive_polling(provider, key, session, ctx.server_now, poll, limit),
    };
    ctx.set_now(now);
    Ok(Arrival {
        session,
        now,
        window,
        is_over: window.is_over(limit),
        polled,
    })
}

/// The lifecycle an upload's job follows: its scenario's timeline (the provider's when the
/// scenario has none), with the outcome the scenario scripts for this attempt, if any.
pub(crate) fn job_timeline(
    scenario: &Scenario,
    attempt: u32,
    provider_timeline: &crate::job::Timeline,
) -> crate::job::Timeline {
    let timeline = scenario
        .timeline
        .clone()
        .unwrap_or_else(|| provider_timeline.clone());
    match scenario.outcome_for_attempt(attempt) {
        Some(outcome) => timeline.with_outcome(outcome.clone()),
        None => timeline,
    }
}
