//! The control API under the reserved prefix `/__admin/` (the prefix WireMock users know),
//! documented in `specs/admin.yaml`.
//!
//! It never answers a provider path and providers never answer here, so a client under test cannot
//! reach it by accident. It has its own JSON and its own error shape,
//! `{"error": {"code", "message"}}`, distinct from both providers'.
//!
//! - `GET /__admin/health`: liveness.
//! - `GET /__admin/clock`: the current time and whether it is manual.
//! - `POST /__admin/clock/advance` with `{"seconds": N}` or `{"by": "5h 1s"}`: moves a manual clock.
//! - `POST /__admin/clock/set` with `{"unix_ms": N}` or `{"at": "2026-02-04T18:35:01Z"}`: sets it
//!   (never backwards).
//! - `POST /__admin/reset`: forgets every session, job, stored file and journal entry.
//! - `GET /__admin/jobs`: every job with the state a poll would see now.
//! - `GET /__admin/scenarios`: the built-in scenarios and the current default.
//! - `POST /__admin/jobs/{fansly|onlyfans}/{id}` with `{"outcome": "completed"}`,
//!   `{"outcome": {"failed": "text"}}` or `{"state": "processing", "progress": 40}`: forces a
//!   running job to end now, or pins it in a state.
//! - `GET /__admin/sessions`, `DELETE /__admin/sessions/{id}`: the sessions, and forgetting one.
//!
//! With an `X-Mock-Session` header, `clock`, `clock/advance` and `scenario` act on that session
//! only (its clock moves, every other session's stays); `jobs` and `journal` take `?session=`.
//! - `GET /__admin/journal?route=upload|status|cdn&session=S&job=ID&method=GET`: the requests clients sent,
//!   oldest first; `DELETE /__admin/journal` forgets them.
//! - `PUT /__admin/scenario` with `{"name": "rate-limited"}`: the default for later uploads.
//! - `GET /__admin/specs/{fansly.yaml|onlyfans.yaml|upstream/onlyfans-status.yaml}`: the specs served.
//! - `GET /__admin/events?session=S`: the store's changes as Server-Sent Events (see `events`).
//! - `GET /__admin/ui`: the QA dashboard (see `ui`), which reads everything above.
//!
//! Access: loopback clients only, or with `--admin-token` whoever presents it as
//! `Authorization: Bearer`. The dashboard and its event stream may present it as `?token=`
//! instead (a page opened from a link and an `EventSource` cannot send headers); nothing else
//! may, so a request that changes state always needs the header, which another site's page
//! cannot make a browser send here without a CORS preflight this API never grants.

use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::app::App;
use crate::clock::{ClockError, iso_millis, unix_millis};
use crate::http::{Body, full, json};
use crate::http::{SESSION_HEADER, session_of};
use crate::job::{JobState, Phase};
use crate::job::{Outcome, Timeline};
use crate::spec::Document;
use crate::store::{DEFAULT_SESSION, ForceError, SessionId};

/// Admin request bodies are small; anything bigger is a mistake.
const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<Body> {
    json(
        status,
        &ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        },
    )
}

#[derive(Serialize)]
struct ClockBody {
    now: String,
    unix_ms: u128,
    manual: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    #[serde(default)]
    seconds: Option<f64>,
    #[serde(default)]
    by: Option<String>,
}

#[derive(Serialize)]
struct TimelineBody {
    steps: Vec<StepBody>,
    outcome: serde_json::Value,
}

#[derive(Serialize)]
struct StepBody {
    state: &'static str,
    progress: u8,
    until_elapsed_ms: Option<u128>,
    until_polls: Option<u32>,
}

#[derive(Serialize)]
struct JobBody {
    session: String,
    scenario: String,
    timeline: TimelineBody,
    provider: &'static str,
    id: String,
    account: String,
    state: &'static str,
    progress: u8,
    error: Option<String>,
    n_polls: u32,
    created_at: String,
    finished_at: Option<String>,
    file_name: Option<String>,
    size: Option<u64>,
    sha256: Option<String>,
    mimetype: Option<&'static str>,
    /// Pixels, 0 when the bytes did not say.
    width: Option<u32>,
    height: Option<u32>,
    /// Time since the upload on the job's session clock: where "now" is on its timeline.
    elapsed_ms: u128,
    /// When the current step ends by time (on the session clock), if the job is running.
    next_change_at: Option<String>,
    /// The poll count that ends the current step, if it ends by polls.
    next_change_polls: Option<u32>,
    /// A completed job's CDN links.
    links: Vec<LinkBody>,
    /// Faults injected into this job's requests, from the journal.
    faults: Vec<FaultBody>,
    /// The journal entry of an earlier upload of the same bytes, if this upload repeats one.
    repeat_of: Option<u64>,
    /// Where the job's webhook is: `none`, `pending` (due when it ends), `sending`, `done`.
    webhook: &'static str,
}

#[derive(Serialize)]
struct LinkBody {
    /// The JSON pointer of the link in the completed answer.
    field: String,
    url: String,
    expires_at: Option<String>,
    expires_unix_ms: Option<u128>,
    /// What the CDN answers the link now: 200, or 403.
    cdn_status: u16,
    /// Why it is refused (`expired`, ...), as `X-Mock-Denied-Reason` says.
    cdn_denied_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct FaultBody {
    seq: u64,
    fault: &'static str,
    route: &'static str,
    status: u16,
}

/// Answers `/__admin/{segments}`.
/// Who may use the admin API: with a token, whoever presents it (`Authorization: Bearer`),
/// compared in constant time; without one, loopback clients only. `None` lets the request in;
/// otherwise the answer to send instead.
/// `in_query` is the `?token=` of the two GET routes allowed to carry it, `ui` and `events`.
pub(crate) fn refusal(
    token: Option<&str>,
    peer: std::net::SocketAddr,
    presented: Option<&str>,
    in_query: Option<&str>,
) -> Option<Response<Body>> {
    match token {
        Some(token) => {
            let presented = presented
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim)
                .or(in_query);
            if presented.is_some_and(|presented| is_same_secret(presented, token)) {
                None
            } else {
                Some(error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the admin API needs Authorization: Bearer <the --admin-token value>",
                ))
            }
        }
        None if peer.ip().is_loopback() => None,
        None => Some(error(
            StatusCode::FORBIDDEN,
            "loopback_only",
            "the admin API answers loopback clients only; start the mock with --admin-token to \
             use it from elsewhere",
        )),
    }
}

/// The `token` parameter of a query, if there is one.
pub(crate) fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}

/// Equality that takes as long for a near miss as for a far one.
fn is_same_secret(presented: &str, expected: &str) -> bool {
    let (presented, expected) = (presented.as_bytes(), expected.as_bytes());
    let mut differ = presented.len() ^ expected.len();
    for (idx, byte) in expected.iter().enumerate() {
        differ |= usize::from(presented.get(idx).copied().unwrap_or(0) ^ byte);
    }
    differ == 0
}

pub(crate) async fn handle(app: &App, req: Request<Incoming>, segments: &[&str]) -> Response<Body> {
    let method = req.method().clone();
    // `X-Mock-Session` on an admin request aims it at that session; absent, at the whole server.
    let session = match req.headers().contains_key(&SESSION_HEADER) {
        false => None,
        true => match session_of(&req) {
            Ok(session) => Some(session),
            Err(problem) => return error(StatusCode::BAD_REQUEST, "invalid_session", problem),
        },
    };
    let origin = origin_of(app, &req);
    match (&method, segments) {
        (&Method::GET, ["events"]) => events(app, req.uri().query().unwrap_or_default()),
        (&Method::GET, ["ui"]) => crate::ui::page(),
        (&Method::GET, ["health"]) => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        (&Method::GET, ["clock"]) => match &session {
            Some(session) => clock_body(app, app.now(session)),
            None => clock_body(app, app.clock.now()),
        },
        (&Method::POST, ["clock", "advance"]) => advance(app, session.as_ref(), req).await,
        (&Method::POST, ["clock", "set"]) => set_clock(app, session.as_ref(), req).await,
        (&Method::POST, ["reset"]) => {
            let n_jobs = app.store.reset();
            app.journal.clear();
            json(
                StatusCode::OK,
                &serde_json::json!({ "jobs_removed": n_jobs }),
            )
        }
        (&Method::GET, ["jobs"]) => {
            // `?session=` filters as the header does; the header wins.
            let in_query = req.uri().query().and_then(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .find(|(name, _)| name == "session")
                    .map(|(_, value)| value.into_owned())
            });
            let session = session.as_deref().map(str::to_owned).or(in_query);
            jobs(app, session.as_deref(), &origin)
        }
        (&Method::GET, ["sessions"]) => sessions(app),
        (&Method::POST, ["jobs", provider, id]) => {
            let session = session.unwrap_or_else(|| SessionId::from(DEFAULT_SESSION));
            force(app, &session, provider, id, req, &origin).await
        }
        (&Method::DELETE, ["sessions", name]) => {
            let session = SessionId::from(*name);
            let n_jobs = app.store.reset_session(&session);
            app.journal.forget_session(name);
            app.webhook_state.forget_session(name);
            json(
                StatusCode::OK,
                &serde_json::json!({ "session": name, "jobs_removed": n_jobs }),
            )
        }
        (&Method::GET, ["webhooks"]) => {
            let session = session.unwrap_or_else(|| SessionId::from(DEFAULT_SESSION));
            webhook_health(app, &session)
        }
        (&Method::POST, ["webhooks", "resume"]) => {
            let session = session.unwrap_or_else(|| SessionId::from(DEFAULT_SESSION));
            app.webhook_state.resume(&session);
            webhook_health(app, &session)
        }
        (&Method::POST, ["webhooks", delivery, "redeliver"]) => {
            let session = session.unwrap_or_else(|| SessionId::from(DEFAULT_SESSION));
            redeliver(app, &session, delivery).await
        }
        (&Method::GET, ["scenarios"]) => scenarios(app),
        (&Method::GET, ["journal"]) => journal(app, req.uri().query().unwrap_or_default()),
        (&Method::DELETE, ["journal"]) => {
            app.journal.clear();
            json(StatusCode::OK, &serde_json::json!({ "entries": [] }))
        }
        (&Method::PUT, ["scenario"]) => set_scenario(app, session.as_ref(), req).await,
        (&Method::GET, ["specs", name @ ..]) => {
            let name = name.join("/");
            match Document::ALL.iter().find(|doc| doc.file_name() == name) {
                Some(doc) => {
                    let mut response = Response::new(full(doc.text()));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/yaml"),
                    );
                    response
                }
                None => error(
                    StatusCode::NOT_FOUND,
                    "unknown_spec",
                    format!("no spec named {name:?}"),
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "unknown_admin_route",
            format!("no admin route {method} /__admin/{}", segments.join("/")),
        ),
    }
}

/// `GET /__admin/events`: the change stream, of one session's events (and server-wide ones) with
/// `?session=`.
fn events(app: &App, query: &str) -> Response<Body> {
    let mut session = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "session" => session = Some(value.into_owned()),
            "token" => {}
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "unknown_filter",
                    format!("unknown events parameter {other:?}; use session (or token)"),
                );
            }
        }
    }
    let mut response = Response::new(app.events.subscribe(session));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn clock_body(app: &App, now: SystemTime) -> Response<Body> {
    json(
        StatusCode::OK,
        &ClockBody {
            now: iso_millis(now),
            unix_ms: unix_millis(now),
            manual: app.clock.is_manual(),
        },
    )
}

/// Reads a small JSON body, or the error response to send instead.
async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Response<Body>> {
    let bytes = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("admin bodies are limited to {MAX_BODY_BYTES} bytes"),
            ));
        }
    };
    serde_json::from_slice(&bytes).map_err(|err| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid body: {err}"),
        )
    })
}

#[derive(Serialize)]
struct ScenarioBody {
    name: String,
    description: String,
    is_default: bool,
}

fn scenarios(app: &App) -> Response<Body> {
    let default = app.default_scenario();
    let mut rows: Vec<ScenarioBody> = crate::scenario::BUILT_IN
        .iter()
        .filter_map(|(name, _)| app.scenarios.by_name(name).ok())
        .chain(app.scenarios.recordings().cloned())
        .map(|scenario| ScenarioBody {
            is_default: scenario.name == default.name,
            name: scenario.name.clone(),
            description: scenario.description.clone(),
        })
        .collect();
    if !rows.iter().any(|row| row.is_default) {
        rows.push(ScenarioBody {
            name: default.name.clone(),
            description: default.description.clone(),
            is_default: true,
        });
    }
    json(StatusCode::OK, &serde_json::json!({ "scenarios": rows }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetScenarioBody {
    name: String,
}

async fn set_scenario(
    app: &App,
    session: Option<&SessionId>,
    req: Request<Incoming>,
) -> Response<Body> {
    let body: SetScenarioBody = match read_json(req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match app.scenarios.by_name(&body.name) {
        Ok(scenario) => match session {
            Some(session) => {
                app.store
                    .set_session_scenario(session, Arc::clone(&scenario));
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "session": &**session, "scenario": scenario.name }),
                )
            }
            None => {
                app.store.set_default_scenario(scenario);
                scenarios(app)
            }
        },
        Err(err) => error(StatusCode::NOT_FOUND, "unknown_scenario", err.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetClockBody {
    #[serde(default)]
    unix_ms: Option<u64>,
    #[serde(default)]
    at: Option<String>,
}

async fn set_clock(
    app: &App,
    session: Option<&SessionId>,
    req: Request<Incoming>,
) -> Response<Body> {
    let body: SetClockBody = match read_json(req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let to = match (body.unix_ms, body.at) {
        (Some(unix_ms), None) => {
            crate::clock::saturating_add(std::time::UNIX_EPOCH, Duration::from_millis(unix_ms))
        }
        (None, Some(at)) => match humantime::parse_rfc3339(&at) {
            Ok(at) => at,
            Err(err) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_time",
                    format!("at {at:?} is not an RFC 3339 time like 2026-02-04T18:35:01Z: {err}"),
                );
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_time",
                "give exactly one of \"unix_ms\" (a number) or \"at\" (an RFC 3339 time)",
            );
        }
    };
    let backwards = |now: SystemTime| {
        error(
            StatusCode::CONFLICT,
            "clock_refused",
            format!(
                "cannot set the clock back from {} to {}",
                iso_millis(now),
                iso_millis(to)
            ),
        )
    };
    app.webhook_wake.notify_one();
    if let Some(session) = session {
        return match app.store.set_session_clock(session, app.clock.now(), to) {
            Ok(()) => clock_body(app, app.now(session)),
            Err(now) => backwards(now),
        };
    }
    let before = app.clock.now();
    match app.clock.set(to) {
        Ok(now) => {
            app.store.record_clock(before, now);
            clock_body(app, now)
        }
        Err(err @ ClockError::NotManual) => {
            error(StatusCode::CONFLICT, "clock_not_manual", err.to_string())
        }
        Err(ClockError::Backwards { .. }) => backwards(app.clock.now()),
        Err(err) => error(StatusCode::BAD_REQUEST, "invalid_time", err.to_string()),
    }
}

async fn advance(app: &App, session: Option<&SessionId>, req: Request<Incoming>) -> Response<Body> {
    let body: AdvanceBody = match read_json(req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let by = match (body.seconds, body.by) {
        (Some(seconds), None) => match Duration::try_from_secs_f64(seconds) {
            Ok(by) => by,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_duration",
                    format!("seconds must be a finite number of at least 0, not {seconds}"),
                );
            }
        },
        (None, Some(text)) => match humantime::parse_duration(&text) {
            Ok(by) => by,
            Err(err) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_duration",
                    format!("by {text:?} is not a duration like \"5h 1s\": {err}"),
                );
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_duration",
                "give exactly one of \"seconds\" (a number) or \"by\" (a duration like \"5h 1s\")",
            );
        }
    };
    app.webhook_wake.notify_one();
    if let Some(session) = session {
        app.store.advance_session(session, by, app.clock.now());
        return clock_body(app, app.now(session));
    }
    let before = app.clock.now();
    match app.clock.advance(by) {
        Ok(now) => {
            app.store.record_clock(before, now);
            clock_body(app, now)
        }
        Err(err @ ClockError::NotManual) => {
            error(StatusCode::CONFLICT, "clock_not_manual", err.to_string())
        }
        Err(err @ ClockError::PastLatest) => {
            error(StatusCode::BAD_REQUEST, "invalid_duration", err.to_string())
        }
        Err(err) => error(StatusCode::CONFLICT, "clock_refused", err.to_string()),
    }
}

/// `{"outcome": "completed"}`, `{"outcome": {"failed": "text"}}`, or
/// `{"state": "queued"|"processing", "progress": 40}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceBody {
    #[serde(default)]
    outcome: Option<ForcedOutcome>,
    #[serde(default)]
    state: Option<ForcedPhase>,
    #[serde(default)]
    progress: Option<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ForcedOutcome {
    Completed,
    Failed(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ForcedPhase {
    Queued,
    Processing,
}

async fn force(
    app: &App,
    session: &SessionId,
    provider: &str,
    id: &str,
    req: Request<Incoming>,
    origin: &str,
) -> Response<Body> {
    let provider = match provider {
        "fansly" => crate::Provider::Fansly,
        "onlyfans" => crate::Provider::OnlyFans,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_provider",
                format!("no provider {other:?}; use fansly or onlyfans"),
            );
        }
    };
    let body: ForceBody = match read_json(req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let outcome = |forced: Option<ForcedOutcome>| match forced {
        Some(ForcedOutcome::Failed(reason)) => Outcome::Failed {
            reason: reason.into(),
        },
        Some(ForcedOutcome::Completed) | None => Outcome::Completed,
    };
    let timeline = match (body.state, body.progress) {
        (None, None) if body.outcome.is_some() => Timeline::immediate(outcome(body.outcome)),
        (Some(state), progress) if progress.is_none_or(|progress| progress <= 100) => {
            let phase = match state {
                ForcedPhase::Queued => Phase::Queued,
                ForcedPhase::Processing => Phase::Processing,
            };
            Timeline::pinned(phase, progress.unwrap_or(0), outcome(body.outcome))
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_force",
                "give an outcome (\"completed\" or {\"failed\": text}), or a state (queued or processing) with a progress of 0 to 100",
            );
        }
    };
    match app
        .store
        .force(session, provider, id, timeline, app.now(session))
    {
        Ok(()) => jobs(app, Some(session), origin),
        Err(ForceError::NotFound) => error(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no {} job {id:?} in session {session:?}", provider.slug()),
        ),
        Err(ForceError::AlreadyTerminal) => error(
            StatusCode::CONFLICT,
            "job_terminal",
            format!(
                "job {id:?} is already completed or failed, and a terminal state never changes"
            ),
        ),
    }
}

#[derive(Serialize)]
struct SessionBody {
    id: String,
    n_jobs: usize,
    clock_offset_ms: u128,
    scenario: Option<String>,
    attempts: std::collections::BTreeMap<String, u32>,
}

fn sessions(app: &App) -> Response<Body> {
    let rows: Vec<SessionBody> = app
        .store
        .sessions()
        .into_iter()
        .map(|session| SessionBody {
            id: session.id.to_string(),
            n_jobs: session.n_jobs,
            clock_offset_ms: session.offset.as_millis(),
            scenario: session.scenario,
            attempts: session.attempts,
        })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "sessions": rows }))
}

/// The origin links in admin answers point at: `--public-url`, else the `Host` the admin request
/// came to (the dashboard's own origin), else the address the server listens on.
pub(crate) fn origin_of(app: &App, req: &Request<Incoming>) -> String {
    if let Some(url) = &app.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    req.headers()
        .get(header::HOST)
        .filter(|host| {
            !host.is_empty()
                && host
                    .as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(b))
        })
        .and_then(|host| host.to_str().ok())
        .map_or_else(|| app.origin.clone(), |host| format!("http://{host}"))
}

/// What the journal knows about each job: the faults that hit its requests and the earlier upload
/// its bytes repeat. Keyed by (session, job id).
#[derive(Default)]
struct JobHistory {
    faults: Vec<FaultBody>,
    repeat_of: Option<u64>,
}

fn job_histories(
    app: &App,
    session: Option<&str>,
) -> std::collections::HashMap<(String, String), JobHistory> {
    let mut histories: std::collections::HashMap<(String, String), JobHistory> =
        std::collections::HashMap::new();
    let entries = app.journal.entries(|entry| {
        entry.note.job_id.is_some()
            && (entry.note.fault.is_some() || entry.repeat_of.is_some())
            && session.is_none_or(|session| &*entry.session == session)
    });
    for entry in entries {
        let Some(job_id) = &entry.note.job_id else {
            continue;
        };
        let history = histories
            .entry((entry.session.to_string(), job_id.to_string()))
            .or_default();
        if let Some(fault) = entry.note.fault {
            history.faults.push(FaultBody {
                seq: entry.seq,
                fault,
                route: route_of(entry.method.as_str(), entry.path()),
                status: entry.status,
            });
        }
        history.repeat_of = history.repeat_of.or(entry.repeat_of);
    }
    histories
}

/// A completed job's CDN links, as a poll from `origin` would show them, each with its expiry and
/// what the CDN answers it now.
fn links(app: &App, origin: &str, job: &crate::store::JobSummary) -> Vec<LinkBody> {
    if job.state != JobState::Completed {
        return Vec::new();
    }
    let body = match job.provider {
        crate::Provider::Fansly => {
            crate::provider::fansly::completed_result(app, origin, &job.polled)
        }
        crate::Provider::OnlyFans => {
            crate::provider::onlyfans::completed_status(app, origin, &job.polled, job.now)
        }
    };
    let mut found = Vec::new();
    if let Some(body) = body {
        collect_links(&body, &format!("{origin}/cdn/"), String::new(), &mut found);
    }
    let now_secs = crate::clock::unix_secs(job.now);
    found
        .into_iter()
        .map(|(field, url)| {
            let (path, query) = url
                .get(origin.len()..)
                .unwrap_or_default()
                .split_once('?')
                .unwrap_or_default();
            let expires = crate::signing::claimed_expiry(query).map(|secs| {
                crate::clock::saturating_add(std::time::UNIX_EPOCH, Duration::from_secs(secs))
            });
            let denied = if crate::s3::is_s3_path(path) {
                crate::s3::verify(origin, path, query, now_secs, &app.key)
                    .err()
                    .map(|denied| denied.reason())
            } else {
                crate::signing::verify(path, query, now_secs, &app.key)
                    .err()
                    .map(|err| err.reason())
            };
            LinkBody {
                field,
                expires_at: expires.map(iso_millis),
                expires_unix_ms: expires.map(unix_millis),
                cdn_status: if denied.is_none() { 200 } else { 403 },
                cdn_denied_reason: denied,
                url,
            }
        })
        .collect()
}

/// Every string under `value` that starts with `prefix`, with its JSON pointer.
fn collect_links(
    value: &serde_json::Value,
    prefix: &str,
    pointer: String,
    found: &mut Vec<(String, String)>,
) {
    match value {
        serde_json::Value::String(text) if text.starts_with(prefix) => {
            found.push((pointer, text.clone()));
        }
        serde_json::Value::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                collect_links(item, prefix, format!("{pointer}/{idx}"), found);
            }
        }
        serde_json::Value::Object(fields) => {
            for (name, item) in fields {
                collect_links(item, prefix, format!("{pointer}/{name}"), found);
            }
        }
        _ => {}
    }
}

fn jobs(app: &App, session: Option<&str>, origin: &str) -> Response<Body> {
    let mut histories = job_histories(app, session);
    let rows: Vec<JobBody> = app
        .store
        .list(app.clock.now(), session)
        .into_iter()
        .map(|job| {
            let (state, progress, error) = crate::events::state_parts(&job.state);
            let timeline = TimelineBody {
                steps: job
                    .timeline
                    .steps()
                    .iter()
                    .map(|step| StepBody {
                        state: match step.phase {
                            Phase::Queued => "queued",
                            Phase::Processing => "processing",
                        },
                        progress: step.progress,
                        until_elapsed_ms: step.until.elapsed.map(|elapsed| elapsed.as_millis()),
                        until_polls: step.until.polls,
                    })
                    .collect(),
                outcome: match job.timeline.outcome() {
                    Outcome::Completed => serde_json::json!("completed"),
                    Outcome::Failed { reason } => serde_json::json!({ "failed": &**reason }),
                },
            };
            let elapsed = job
                .now
                .duration_since(job.created_at)
                .unwrap_or(Duration::ZERO);
            // The step the job is in, if it is running: its limits are the next transition.
            let current = (!job.state.is_terminal())
                .then(|| {
                    job.timeline.steps().iter().find(|step| {
                        !(step.until.elapsed.is_some_and(|limit| elapsed >= limit)
                            || step.until.polls.is_some_and(|limit| job.n_polls >= limit))
                    })
                })
                .flatten();
            let history = histories
                .remove(&(job.session.to_string(), job.id.clone()))
                .unwrap_or_default();
            let links = links(app, origin, &job);
            JobBody {
                session: job.session.to_string(),
                scenario: job.scenario.clone(),
                timeline,
                provider: job.provider.slug(),
                account: job.account.clone(),
                state,
                progress,
                error,
                n_polls: job.n_polls,
                created_at: iso_millis(job.created_at),
                finished_at: job.finished_at.map(iso_millis),
                file_name: job.media.as_ref().map(|media| media.file_name.clone()),
                size: job.media.as_ref().map(|media| media.size),
                sha256: job.media.as_ref().map(|media| hex::encode(media.sha256)),
                mimetype: job.media.as_ref().map(|media| media.info.mimetype),
                width: job.media.as_ref().map(|media| media.info.width),
                height: job.media.as_ref().map(|media| media.info.height),
                elapsed_ms: elapsed.as_millis(),
                next_change_at: current
                    .and_then(|step| step.until.elapsed)
                    .map(|limit| iso_millis(crate::clock::saturating_add(job.created_at, limit))),
                next_change_polls: current.and_then(|step| step.until.polls),
                links,
                faults: history.faults,
                repeat_of: history.repeat_of,
                webhook: match job.webhook {
                    crate::store::Webhook::None => "none",
                    crate::store::Webhook::Pending => "pending",
                    crate::store::Webhook::Sent => "sending",
                    crate::store::Webhook::Delivered => "done",
                },
                id: job.id,
            }
        })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "jobs": rows }))
}

#[derive(Serialize)]
struct PartBody {
    name: String,
    file_name: Option<String>,
    size: u64,
}

#[derive(Serialize)]
struct EntryBody {
    seq: u64,
    session: String,
    at: String,
    method: String,
    path: String,
    route: &'static str,
    headers: std::collections::BTreeMap<String, String>,
    parts: Vec<PartBody>,
    status: u16,
    duration_ms: f64,
    job_id: Option<String>,
    scenario: Option<String>,
    sha256: Option<String>,
    fault: Option<&'static str>,
    state: Option<&'static str>,
    repeat_of: Option<u64>,
    retry_after: Option<u64>,
    delivery: Option<DeliveryBody>,
}

#[derive(Serialize)]
struct DeliveryBody {
    id: u64,
    redelivery_of: Option<u64>,
    attempt: u32,
    max_attempts: u32,
    next_retry_at: Option<String>,
}

use crate::journal::route_of;

/// A session's webhook endpoint: whether it is paused, and its consecutive failed attempts.
fn webhook_health(app: &App, session: &SessionId) -> Response<Body> {
    let (paused, consecutive_failures) = app.webhook_state.health(session);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "session": &**session,
            "paused": paused,
            "consecutive_failures": consecutive_failures,
        }),
    )
}

async fn redeliver(app: &App, session: &SessionId, delivery: &str) -> Response<Body> {
    let Ok(delivery_id) = delivery.parse::<u64>() else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_delivery",
            format!("no webhook delivery {delivery:?}: ids are the journal's delivery.id numbers"),
        );
    };
    match crate::webhook::redeliver(app, session, delivery_id).await {
        Ok(redelivered) => json(
            StatusCode::OK,
            &serde_json::json!({
                "delivery": redelivered.delivery,
                "redelivery_of": redelivered.redelivery_of,
                "status": redelivered.status,
            }),
        ),
        Err(err @ crate::webhook::RedeliverError::NoWebhook) => {
            error(StatusCode::CONFLICT, "no_webhook", err.to_string())
        }
        Err(err @ crate::webhook::RedeliverError::UnknownDelivery) => error(
            StatusCode::NOT_FOUND,
            "unknown_delivery",
            format!("webhook delivery {delivery_id}: {err}"),
        ),
    }
}

fn journal(app: &App, query: &str) -> Response<Body> {
    let mut route = None;
    let mut session = None;
    let mut job = None;
    let mut method = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "route" => route = Some(value.into_owned()),
            "job" => job = Some(value.into_owned()),
            "session" => session = Some(value.into_owned()),
            "method" => method = Some(value.to_ascii_uppercase()),
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "unknown_filter",
                    format!("unknown journal filter {other:?}; use route, session, job or method"),
                );
            }
        }
    }
    if let Some(route) = &route {
        if !["upload", "status", "cdn", "webhook", "other"].contains(&route.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                "unknown_filter",
                format!("route must be upload, status, cdn, webhook or other, not {route:?}"),
            );
        }
    }
    let entries: Vec<EntryBody> = app
        .journal
        .entries(|entry| {
            route
                .as_deref()
                .is_none_or(|route| route_of(entry.method.as_str(), entry.path()) == route)
                && job
                    .as_deref()
                    .is_none_or(|job| entry.note.job_id.as_deref() == Some(job))
                && method
                    .as_deref()
                    .is_none_or(|method| entry.method.as_str() == method)
                && session
                    .as_deref()
                    .is_none_or(|session| &*entry.session == session)
        })
        .into_iter()
        .map(|entry| EntryBody {
            route: route_of(entry.method.as_str(), entry.path()),
            session: entry.session.to_string(),
            seq: entry.seq,
            at: crate::clock::iso_millis(entry.at),
            method: entry.method.to_string(),
            path: entry.path().to_owned(),
            headers: entry
                .headers()
                .map(|(name, value)| (name.to_owned(), crate::journal::shown_header(name, value)))
                .collect(),
            parts: entry
                .note
                .parts
                .into_iter()
                .map(|part| PartBody {
                    name: part.name,
                    file_name: part.file_name,
                    size: part.size,
                })
                .collect(),
            status: entry.status,
            duration_ms: entry.duration_ms,
            job_id: entry.note.job_id.as_deref().map(str::to_owned),
            scenario: entry.note.scenario.map(|scenario| scenario.name.clone()),
            sha256: entry.note.sha256.map(hex::encode),
            fault: entry.note.fault,
            state: entry.note.state,
            repeat_of: entry.repeat_of,
            retry_after: entry.retry_after,
            delivery: entry.note.delivery.map(|delivery| DeliveryBody {
                id: delivery.id,
                redelivery_of: delivery.redelivery_of,
                attempt: delivery.attempt,
                max_attempts: delivery.max_attempts,
                next_retry_at: delivery.next_retry_at.map(iso_millis),
            }),
        })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "entries": entries }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4]) -> std::net::SocketAddr {
        std::net::SocketAddr::from((ip, 40000))
    }

    #[test]
    fn without_a_token_only_loopback_clients_are_answered() {
        assert!(refusal(None, peer([127, 0, 0, 1]), None, None).is_none());
        let refused = refusal(None, peer([10, 1, 2, 3]), None, None).unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn with_a_token_everyone_must_present_it() {
        let token = Some("s3cret");
        for ip in [[127, 0, 0, 1], [10, 1, 2, 3]] {
            assert!(refusal(token, peer(ip), Some("Bearer s3cret"), None).is_none());
            assert!(refusal(token, peer(ip), None, Some("s3cret")).is_none());
            for presented in [
                None,
                Some("Bearer s3cre"),
                Some("s3cret"),
                Some("Bearer s3cret!"),
            ] {
                let refused = refusal(token, peer(ip), presented, None).unwrap();
                assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{presented:?}");
            }
            let refused = refusal(token, peer(ip), None, Some("s3cre")).unwrap();
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn the_query_token_is_read_from_its_own_parameter_only() {
        assert_eq!(
            query_token(Some("session=a&token=s%3Dx")).as_deref(),
            Some("s=x")
        );
        assert_eq!(query_token(Some("tokens=x")), None);
        assert_eq!(query_token(None), None);
    }
}
