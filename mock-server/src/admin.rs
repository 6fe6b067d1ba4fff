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
}

/// Answers `/__admin/{segments}`.
/// Who may use the admin API: with a token, whoever presents it (`Authorization: Bearer`),
/// compared in constant time; without one, loopback clients only. `None` lets the request in;
/// otherwise the answer to send instead.
pub(crate) fn refusal(
    token: Option<&str>,
    peer: std::net::SocketAddr,
    presented: Option<&str>,
) -> Option<Response<Body>> {
    match token {
        Some(token) => {
            let presented = presented
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim);
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
    match (&method, segments) {
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
        (&Method::GET, ["jobs"]) => jobs(app, session.as_deref()),
        (&Method::GET, ["sessions"]) => sessions(app),
        (&Method::POST, ["jobs", provider, id]) => {
            let session = session.unwrap_or_else(|| SessionId::from(DEFAULT_SESSION));
            force(app, &session, provider, id, req).await
        }
        (&Method::DELETE, ["sessions", name]) => {
            let session = SessionId::from(*name);
            let n_jobs = app.store.reset_session(&session);
            app.journal.forget_session(name);
            json(
                StatusCode::OK,
                &serde_json::json!({ "session": name, "jobs_removed": n_jobs }),
            )
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
    let default = app.scenarios.default_scenario();
    let mut rows: Vec<ScenarioBody> = crate::scenario::BUILT_IN
        .iter()
        .filter_map(|(name, _)| app.scenarios.by_name(name).ok())
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
                app.scenarios.set_default(scenario);
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
    match app.clock.set(to) {
        Ok(now) => {
            app.store.record_clock(now);
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
        app.store.advance_session(session, by);
        return clock_body(app, app.now(session));
    }
    match app.clock.advance(by) {
        Ok(now) => {
            app.store.record_clock(now);
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
        Ok(()) => jobs(app, Some(session)),
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
        })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "sessions": rows }))
}

fn jobs(app: &App, session: Option<&str>) -> Response<Body> {
    let rows: Vec<JobBody> = app
        .store
        .list(app.clock.now(), session)
        .into_iter()
        .map(|job| {
            let (state, progress, error) = match job.state {
                JobState::Running {
                    phase: Phase::Queued,
                    progress,
                } => ("queued", progress, None),
                JobState::Running {
                    phase: Phase::Processing,
                    progress,
                } => ("processing", progress, None),
                JobState::Completed => ("completed", 100, None),
                JobState::Failed { progress, reason } => {
                    ("failed", progress, Some(reason.to_string()))
                }
            };
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
            JobBody {
                session: job.session.to_string(),
                scenario: job.scenario,
                timeline,
                provider: job.provider.slug(),
                id: job.id,
                account: job.account,
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
}

/// Which kind of endpoint a journaled path is, for filtering.
fn route_of(method: &str, path: &str) -> &'static str {
    if path.starts_with("http") {
        "webhook"
    } else if path.starts_with("/cdn/") {
        "cdn"
    } else if path.ends_with("/status") {
        "status"
    } else if method == "POST"
        && (path.ends_with("/media/upload") || path.ends_with("/media/vault"))
    {
        "upload"
    } else {
        "other"
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
        assert!(refusal(None, peer([127, 0, 0, 1]), None).is_none());
        let refused = refusal(None, peer([10, 1, 2, 3]), None).unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn with_a_token_everyone_must_present_it() {
        let token = Some("s3cret");
        for ip in [[127, 0, 0, 1], [10, 1, 2, 3]] {
            assert!(refusal(token, peer(ip), Some("Bearer s3cret")).is_none());
            for presented in [
                None,
                Some("Bearer s3cre"),
                Some("s3cret"),
                Some("Bearer s3cret!"),
            ] {
                let refused = refusal(token, peer(ip), presented).unwrap();
                assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{presented:?}");
            }
        }
    }
}
