//! apifansly's Fansly API: `POST /api/fansly/{accountId}/media/upload` and
//! `GET /api/fansly/media/upload/{jobId}/status`.
//!
//! Every response, errors included, is the `{statusCode, message, data, timestamp}` envelope and
//! carries the `X-RateLimit-*` headers, counted per key over a one-minute sliding window.
//! Job ids are sequential numbers as strings ("1", "2", ...), as the real queue hands out.

mod error;
mod wire;

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderName, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use percent_encoding::utf8_percent_encode;

use self::error::ApiError;
use crate::app::App;
use crate::clock::{iso_millis, saturating_add, unix_secs};
use crate::flow::{Arrival, UploadPlan};
use crate::http::{Body, RequestCtx, Routed, json};
use crate::job::JobState;
use crate::job::{Outcome, Phase};
use crate::journal::Note;
use crate::media::{MediaKind, scale_to_short_side};
use crate::provider::{Provider, is_key_accepted, redact_key};
use crate::signing::{self, Form};
use crate::store::{Destination, NewJob, PollOf, Polled, SessionId, StoredMedia, Window};

const QUEUED_MESSAGE: &str = "Upload job queued. Use the status endpoint to track progress.";

/// The first media id; upload `seq` owns the 16 ids from `MEDIA_ID_BASE + seq * 16`. Nineteen
/// digits, as seed 000's ids (`87474xxxxxxxxxxxxxx`), so a client storing them meets the real width.
const MEDIA_ID_BASE: u64 = 8_747_400_000_000_000_000;

/// The upload behind a Fansly media or variant id in a CDN path: ids are derived from the
/// upload's sequence number, so links need no lookup table of their own.
pub(crate) fn seq_of_media_id(id: &str) -> Option<u64> {
    let id: u64 = id.parse().ok()?;
    let seq = id.checked_sub(MEDIA_ID_BASE)? / 16;
    (seq > 0).then_some(seq)
}

/// Ids of one upload, derived from its sequence number so they are stable and unique.
struct Ids {
    media_id: u64,
    account_media_id: u64,
}

impl Ids {
    fn new(seq: u64) -> Self {
        Self {
            media_id: MEDIA_ID_BASE + seq * 16,
            account_media_id: 8_755_000_000_000_000_000 + seq * 16,
        }
    }

    /// Variant `idx`'s id: the slots after the media id are reserved for its variants.
    fn variant_id(&self, idx: usize) -> u64 {
        self.media_id + 1 + idx as u64
    }
}

/// The 503 for a connection over the server's cap.
pub(crate) fn overloaded(app: &App) -> Response<Body> {
    ApiError::Injected {
        status: 503,
        retry_after: Some(1),
    }
    .into_response(iso_millis(app.clock.now()))
}

/// A status the mock answers on the upstream's behalf (a recording proxy that could not reach
/// it: 502), in Fansly's envelope.
pub(crate) fn upstream_failed(app: &App, status: u16) -> Response<Body> {
    ApiError::Injected {
        status,
        retry_after: None,
    }
    .into_response(iso_millis(app.clock.now()))
}

// Header names parsed once, not on every request.
static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RATELIMIT_PLAN: HeaderName = HeaderName::from_static("x-ratelimit-plan");

/// Answers everything under `/api/fansly/`: a poll at once, an upload once its body is read.
pub(crate) fn route<'a>(
    app: &'a App,
    ctx: &'a RequestCtx<'a>,
    req: Request<Incoming>,
    rest: &[&'a str],
) -> Routed<'a> {
    let key = ctx.api_key.as_ref().and_then(|value| value.to_str().ok());
    let authorized = is_key_accepted(&app.api_keys, key);
    let limit = app.fixtures.fansly.limit_per_minute;
    let poll = match (req.method(), rest) {
        (&Method::GET, ["media", "upload", job_id, "status"]) if authorized => Some(PollOf {
            id: job_id,
            account: None,
        }),
        _ => None,
    };
    let arrival = match crate::flow::arrive(app, ctx, Provider::Fansly, key, limit, poll) {
        Ok(arrival) => arrival,
        Err(problem) => {
            return Routed::Ready(
                ApiError::MockSetup(problem).into_response(iso_millis(app.clock.now())),
            );
        }
    };
    let Arrival {
        session,
        now,
        window,
        is_over,
        polled,
    } = arrival;
    let result = match (req.method(), rest) {
        _ if is_over => Err(ApiError::Injected {
            status: 429,
            retry_after: Some(window.retry_after_secs),
        }),
        (&Method::POST, [account, "media", "upload"]) if authorized => {
            let account: &'a str = account;
            return Routed::later(async move {
                let result = upload(app, ctx, session, req, account, now).await;
                with_rate_limits(app, answer_or_error(result, now), window)
            });
        }
        (&Method::GET, ["media", "upload", _, "status"]) if authorized => {
            status(app, ctx, polled, now)
        }
        (&Method::POST, [_, "media", "upload"])
        | (&Method::GET, ["media", "upload", _, "status"]) => {
            if let Some(key) = key {
                tracing::info!(key = %redact_key(key), "fansly key refused");
            }
            Err(ApiError::Unauthorized)
        }
        (method, _) => Err(ApiError::RouteNotFound {
            method: method.to_string(),
            path: req.uri().path().to_owned(),
        }),
    };
    Routed::Ready(with_rate_limits(app, answer_or_error(result, now), window))
}

fn answer_or_error(result: Result<Response<Body>, ApiError>, now: SystemTime) -> Response<Body> {
    result.unwrap_or_else(|err| err.into_response(iso_millis(now)))
}

/// Adds the `X-RateLimit-*` headers every Fansly answer carries.
fn with_rate_limits(app: &App, mut response: Response<Body>, window: Window) -> Response<Body> {
    let limit = app.fixtures.fansly.limit_per_minute;
    let headers = response.headers_mut();
    headers.insert(&RATELIMIT_LIMIT, app.fansly_headers.limit.clone());
    headers.insert(
        &RATELIMIT_REMAINING,
        app.fansly_headers
            .remaining(limit.saturating_sub(window.n_requests)),
    );
    if let Some(plan) = &app.fansly_headers.plan {
        headers.insert(&RATELIMIT_PLAN, plan.clone());
    }
    response
}

async fn upload(
    app: &App,
    ctx: &RequestCtx<'_>,
    session: &SessionId,
    req: Request<Incoming>,
    account: &str,
    now: SystemTime,
) -> Result<Response<Body>, ApiError> {
    let (plan, mut form) =
        crate::flow::receive_upload(app, session, Provider::Fansly, account, req).await?;
    let parts = std::mem::take(&mut form.parts);
    let UploadPlan {
        scenario,
        attempt,
        fault,
        ..
    } = plan;
    if form
        .field("formInputs")
        .is_some_and(|inputs| !is_valid_form_inputs(inputs))
    {
        return Err(ApiError::BadFormInputs);
    }
    let file = form.file.ok_or(ApiError::MissingFile)?;
    if file.size == 0 {
        return Err(ApiError::EmptyFile);
    }
    // The upload took time to arrive; the job starts when it is complete.
    let now = app.now(session).max(now);
    let fixture = &app.fixtures.fansly;
    let timeline = crate::flow::job_timeline(&scenario, attempt, &fixture.timeline);
    let timeline = match file.info.kind {
        MediaKind::Image | MediaKind::Gif | MediaKind::Video => timeline,
        MediaKind::Audio | MediaKind::Unsupported => timeline.with_outcome(Outcome::Failed {
            reason: format!("Unsupported media type: {}", file.info.mimetype).into(),
        }),
    };
    let seq = app.store.next_seq(Provider::Fansly);
    let ids = Ids::new(seq);
    let job_number = app.store.next_job_number(session, Provider::Fansly);
    let job_id = job_number.to_string();
    let note = Note {
        parts,
        job_id: Some(job_id.as_str().into()),
        scenario: Some(Arc::clone(&scenario)),
        sha256: Some(file.sha256),
        fault: None,
        state: None,
        delivery: None,
    };
    app.store
        .insert(
            seq,
            job_id.clone(),
            NewJob {
                provider: Provider::Fansly,
                account: (*account).to_owned(),
                destination: Destination::Cdn,
                timeline,
                media: Some(Arc::new(StoredMedia::from(file))),
                credits_used: 0,
                api_key: String::new(),
                scenario: Arc::clone(&scenario),
                session: Arc::clone(session),
                attempt,
                has_webhook: false,
            },
            now,
            // No CDN tokens: links find the upload through `seq_of_media_id`.
            &[],
        )
        .await
        // Not on disk (with --state-dir), not acknowledged: a full disk is the provider's 507.
        .map_err(|err| ApiError::from(crate::upload::UploadError::Storage(err)))?;
    let response = json(
        StatusCode::CREATED,
        &wire::Envelope {
            status_code: 201,
            message: "Success".to_owned(),
            data: wire::Queued {
                success: true,
                job_id,
                bucket_name: ids.account_media_id.to_string(),
                message: QUEUED_MESSAGE,
            },
            timestamp: iso_millis(now),
        },
    );
    Ok(ctx.finish(response, fault, note))
}

/// `formInputs` must be a JSON array of `{type: number, value: string}`.
fn is_valid_form_inputs(text: &str) -> bool {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(text) else {
        return false;
    };
    items.iter().all(|item| {
        item.get("type").is_some_and(serde_json::Value::is_number)
            && item.get("value").is_some_and(serde_json::Value::is_string)
    })
}

/// A status answer: `polled` is what the poll saw, counted as the request arrived.
fn status(
    app: &App,
    ctx: &RequestCtx<'_>,
    polled: Option<Polled>,
    now: SystemTime,
) -> Result<Response<Body>, ApiError> {
    let polled = polled.ok_or(ApiError::JobNotFound)?;
    let fault = match crate::flow::poll_fault(app, Provider::Fansly, &polled) {
        Ok(fault) => fault,
        Err(refusal) => {
            let response = ApiError::from(refusal).into_response(iso_millis(now));
            return Ok(ctx.refused(response, Note::of_job(polled.id, polled.scenario)));
        }
    };
    let state = match &polled.state {
        JobState::Running {
            phase: Phase::Queued,
            ..
        } => wire::State::Waiting,
        JobState::Running {
            phase: Phase::Processing,
            ..
        } => wire::State::Active,
        JobState::Completed => wire::State::Completed,
        JobState::Failed { .. } => wire::State::Failed,
    };
    let data = match polled.rendered_for(|origin| ctx.is_origin(origin)) {
        Some(data) => data,
        None => {
            let (progress, result, failed_reason) = match &polled.state {
                JobState::Running { progress, .. } => (*progress, None, None),
                JobState::Completed => (100, Some(result(app, &ctx.origin(), &polled)?), None),
                JobState::Failed { progress, reason } => {
                    (*progress, None, Some(reason.to_string()))
                }
            };
            let data = wire::Status {
                success: true,
                job_id: polled.id.to_string(),
                state,
                progress,
                result,
                failed_reason,
            };
            let data =
                bytes::Bytes::from(serde_json::to_vec(&data).map_err(|_| ApiError::Internal)?);
            if polled.state.is_terminal() {
                app.store
                    .keep_rendered(Provider::Fansly, polled.seq, &ctx.origin(), data.clone());
            }
            data
        }
    };
    let response = crate::http::raw_json(StatusCode::OK, wire::ok_envelope(&data, now));
    // The poll's own handles, moved rather than counted up again.
    let note = Note {
        state: Some(state.as_str()),
        ..Note::of_job(polled.id, polled.scenario)
    };
    Ok(ctx.finish(response, fault, note))
}

/// A completed job's `result` as a poll from `origin` would show it, for the admin API's links.
pub(crate) fn completed_result(
    app: &App,
    origin: &str,
    polled: &Polled,
) -> Option<serde_json::Value> {
    serde_json::to_value(result(app, origin, polled).ok()?).ok()
}

/// The completed `result`: the media, its scaled variants, and links signed until
/// completion + `link_ttl`.
fn result(app: &App, origin: &str, polled: &Polled) -> Result<wire::UploadResult, ApiError> {
    let media = polled.media.as_deref().ok_or(ApiError::Internal)?;
    let fixture = &app.fixtures.fansly;
    let ids = Ids::new(polled.seq);
    let finished_at = polled.finished_at.unwrap_or(polled.created_at);
    let link_ttl = polled.scenario.link_ttl.unwrap_or(fixture.link_ttl);
    let expires_at = unix_secs(saturating_add(finished_at, link_ttl));
    let kind: u16 = if media.info.kind == MediaKind::Video {
        2
    } else {
        1
    };
    let extension = extension(&media.info);
    let stem = stem(&media.file_name);
    let link_stem = utf8_percent_encode(stem, PATH_SAFE).to_string();
    let session = crate::http::session_suffix(&polled.session);
    // `suffix` is a variant's short side: seed 000's variant link ends `image_360.jpeg`.
    let link = |id: u64, suffix: Option<u32>| {
        let name = match suffix {
            Some(side) => format!("{link_stem}_{side}.{extension}"),
            None => format!("{link_stem}.{extension}"),
        };
        let path = format!("/cdn/fansly/{id}/{name}");
        let query = signing::sign(&path, expires_at, &app.key, Form::Custom);
        vec![wire::Location {
            location_id: "1".to_owned(),
            location: format!("{origin}{path}?{query}{session}"),
        }]
    };
    let (width, height) = (media.info.width, media.info.height);
    let short_side = width.min(height);
    let variants = fixture
        .variant_short_sides
        .iter()
        .enumerate()
        .filter(|(_, side)| **side < short_side)
        .map(|(idx, side)| {
            let (width, height) = scale_to_short_side(width, height, *side);
            let id = ids.variant_id(idx);
            wire::Variant {
                id: id.to_string(),
                kind,
                mimetype: media.info.mimetype.to_owned(),
                width,
                height,
                locations: link(id, Some(*side)),
            }
        })
        .collect();
    let media_id = ids.media_id.to_string();
    Ok(wire::UploadResult {
        success: true,
        bucket_name: ids.account_media_id.to_string(),
        media_id: media_id.clone(),
        account_media: vec![wire::AccountMedia {
            id: ids.account_media_id.to_string(),
            media_id: media_id.clone(),
            account_id: polled.account.to_string(),
            media: wire::Media {
                id: media_id.clone(),
                kind,
                mimetype: media.info.mimetype.to_owned(),
                filename: format!("{stem}.{extension}"),
                location: format!("/{}/{media_id}.{extension}", polled.account),
                width,
                height,
                created_at: unix_secs(polled.created_at),
                variants,
                locations: link(ids.media_id, None),
            },
        }],
    })
}

/// The extension Fansly writes for a media type: `jpeg` for JPEG, as seed 000's `filename`
/// (`image.jpeg`), `location` (`….jpeg`) and links (`image_360.jpeg`) show; any other type keeps
/// its usual extension (no seed shows one).
fn extension(info: &crate::media::MediaInfo) -> &'static str {
    match info.mimetype {
        "image/jpeg" => "jpeg",
        _ => info.extension,
    }
}

/// An uploaded name without its extension, which Fansly replaces with its own (seed 000 uploads
/// `image.jpg` and answers `image.jpeg`).
fn stem(file_name: &str) -> &str {
    // Only the last path component's extension: `../../etc/passwd` has none.
    match file_name.rsplit_once('.') {
        Some((stem, extension))
            if !stem.is_empty()
                && !stem.ends_with(['/', '\\'])
                && !extension.contains(['/', '\\']) =>
        {
            stem
        }
        _ => file_name,
    }
}

/// What a file name keeps unescaped in a link path: RFC 3986's unreserved characters.
const PATH_SAFE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_keeps_its_stem_and_takes_the_providers_extension() {
        assert_eq!(stem("image.jpg"), "image");
        assert_eq!(stem("a.b.png"), "a.b");
        assert_eq!(stem("noext"), "noext");
        assert_eq!(stem(".hidden"), ".hidden");
        assert_eq!(stem("../../etc/passwd"), "../../etc/passwd");
        assert_eq!(stem("dir/.hidden"), "dir/.hidden");
        assert_eq!(stem("..\\..\\boot.ini"), "..\\..\\boot");
    }

    #[test]
    fn form_inputs_must_be_typed_pairs() {
        assert!(is_valid_form_inputs(r#"[{"type":1,"value":"hi"}]"#));
        assert!(is_valid_form_inputs("[]"));
        assert!(!is_valid_form_inputs(r#"[{"type":"1","value":"hi"}]"#));
        assert!(!is_valid_form_inputs(r#"{"type":1,"value":"hi"}"#));
        assert!(!is_valid_form_inputs("not json"));
    }

    #[test]
    fn every_id_of_an_upload_leads_to_its_upload() {
        for seq in [1, 7, 8, 1_000_000] {
            let ids = Ids::new(seq);
            assert_eq!(seq_of_media_id(&ids.media_id.to_string()), Some(seq));
            for idx in 0..15 {
                assert_eq!(seq_of_media_id(&ids.variant_id(idx).to_string()), Some(seq));
            }
        }
        assert_eq!(seq_of_media_id("12"), None);
        assert_eq!(seq_of_media_id(&MEDIA_ID_BASE.to_string()), None);
        assert_eq!(seq_of_media_id("not-a-number"), None);
    }

    #[test]
    fn variant_ids_never_collide_with_the_next_upload() {
        let first = Ids::new(1);
        let second = Ids::new(2);
        assert!(first.variant_id(14) < second.media_id);
    }
}
