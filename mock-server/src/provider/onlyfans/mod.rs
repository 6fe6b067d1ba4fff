//! OnlyFansAPI: `POST /api/{account}/media/upload` (to the OnlyFans CDN),
//! `POST /api/{account}/media/vault`, and `GET /api/{account}/media/uploads/{upload}/status`.
//!
//! A synchronous upload (the default) answers the finished media at once and its id reads
//! `completed`; `async=true` answers `{status: pending, prefixed_id, polling_url}` and the job then
//! follows the fixture timeline. A failed job answers HTTP 200 with `status: failed`, as the
//! provider documents. `file_url` is fetched by the mock before it answers (loopback `http://` and
//! `file://` under the media root only: the mock is offline by design); a failed fetch fails an
//! async job with the provider's own text and refuses a sync upload with 422.

mod error;
mod wire;

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use self::error::ApiError;
use crate::app::App;
use crate::clock::{iso_seconds_offset, saturating_add, unix_secs};
use crate::flow::{Arrival, UploadPlan};
use crate::http::{Body, RequestCtx, Routed, json};
use crate::job::JobState;
use crate::job::{Outcome, Phase, Timeline};
use crate::journal::Note;
use crate::media::{MediaKind, scale_to_width};
use crate::provider::{Provider, is_key_accepted, redact_key};
use crate::signing::{self, Form};
use crate::store::{Destination, NewJob, PollOf, Polled, SessionId, StoredMedia};
use crate::upload::{self, Received};

/// What a file name keeps unescaped in a link path: RFC 3986's unreserved characters.
const PATH_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The provider's error text for a `file_url` that could not be fetched (seed 002).
const DOWNLOAD_FAILED: &str = "Failed to download file from the provided URL.";

/// The 503 for a connection over the server's cap.
pub(crate) fn overloaded() -> Response<Body> {
    ApiError::Injected {
        status: 503,
        retry_after: Some(1),
    }
    .into_response()
}

/// A status the mock answers on the upstream's behalf (a recording proxy that could not reach
/// it: 502), in OnlyFansAPI's shape.
pub(crate) fn upstream_failed(status: u16) -> Response<Body> {
    ApiError::Injected {
        status,
        retry_after: None,
    }
    .into_response()
}

/// Answers everything under `/api/` that is not Fansly's: a poll at once, an upload once its body
/// is read.
pub(crate) fn route<'a>(
    app: &'a App,
    ctx: &'a RequestCtx<'a>,
    req: Request<Incoming>,
    rest: &[&'a str],
) -> Routed<'a> {
    let key = ctx.authorization.as_ref().and_then(bearer_token);
    let authorized = is_key_accepted(&app.api_keys, key);
    let limit = app.fixtures.onlyfans.limit_per_minute;
    let poll = match (req.method(), rest) {
        (&Method::GET | &Method::HEAD, [account, "media", "uploads", upload_id, "status"])
            if authorized =>
        {
            Some(PollOf {
                id: upload_id,
                account: Some(account),
            })
        }
        _ => None,
    };
    let arrival = match crate::flow::arrive(app, ctx, Provider::OnlyFans, key, limit, poll) {
        Ok(arrival) => arrival,
        Err(problem) => return Routed::Ready(ApiError::MockSetup(problem).into_response()),
    };
    let Arrival {
        session,
        now,
        window,
        is_over,
        polled,
    } = arrival;
    let n_requests = window.n_requests;
    let path = || req.uri().path().to_owned();
    let result = match (req.method(), rest) {
        _ if is_over => Err(ApiError::Injected {
            status: 429,
            retry_after: Some(window.retry_after_secs),
        }),
        (&Method::POST, [account, "media", endpoint @ ("upload" | "vault")]) => {
            if authorized {
                let destination = if *endpoint == "vault" {
                    Destination::Vault
                } else {
                    Destination::Cdn
                };
                let account: &'a str = account;
                let api_key = key.unwrap_or_default().to_owned();
                return Routed::later(async move {
                    let caller = Caller {
                        api_key: &api_key,
                        n_requests,
                    };
                    upload(app, ctx, session, req, account, destination, caller, now)
                        .await
                        .unwrap_or_else(ApiError::into_response)
                });
            } else {
                Err(refuse(key))
            }
        }
        (&Method::GET | &Method::HEAD, [_, "media", "uploads", _, "status"]) => {
            if authorized {
                status(app, ctx, polled, now)
            } else {
                Err(refuse(key))
            }
        }
        (method, [_, "media", "upload" | "vault"]) => Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: path(),
            allowed: "POST",
        }),
        (method, [_, "media", "uploads", _, "status"]) => Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: path(),
            allowed: "GET, HEAD",
        }),
        _ => Err(ApiError::RouteNotFound { path: path() }),
    };
    Routed::Ready(result.unwrap_or_else(ApiError::into_response))
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(value: &http::HeaderValue) -> Option<&str> {
    value
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

fn refuse(key: Option<&str>) -> ApiError {
    if let Some(key) = key {
        tracing::info!(key = %redact_key(key), "onlyfans key refused");
    }
    ApiError::Unauthorized
}

/// `async` as the provider documents it (`true`/`false`) and as Laravel's `boolean` rule reads a
/// form (`1`/`0`). An empty one is refused: Laravel's ConvertEmptyStringsToNull makes it null, which
/// the rule refuses unless `nullable`, and the provider's SDKs type `async` as `bool`, not
/// `Optional[bool]`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Who is uploading, for credits and `_meta._rate_limits`.
struct Caller<'k> {
    api_key: &'k str,
    /// Requests by this key in the current one-minute window, this one included.
    n_requests: u32,
}

#[allow(clippy::too_many_arguments)] // Each is a distinct fact of the request; a struct would only rename them.
async fn upload(
    app: &App,
    ctx: &RequestCtx<'_>,
    session: &SessionId,
    req: Request<Incoming>,
    account: &str,
    destination: Destination,
    caller: Caller<'_>,
    now: SystemTime,
) -> Result<Response<Body>, ApiError> {
    let api_key = caller.api_key;
    let (plan, mut form) =
        crate::flow::receive_upload(app, session, Provider::OnlyFans, account, req).await?;
    let parts = std::mem::take(&mut form.parts);
    let UploadPlan {
        scenario,
        attempt,
        fault,
        ..
    } = plan;
    // Laravel's ConvertEmptyStringsToNull makes an empty `file_url` null. Presence rules
    // (`required_without`, `prohibits`) then read it as absent, but the field is still present, so
    // its own URL rule runs on the null and fails: the provider's OpenAPI does not mark `file_url`
    // nullable (its SDKs type it `str` where nullable fields are `Optional`). Alone, the missing
    // file is what a client needs to hear first.
    if form.file.is_some() && form.field("file_url") == Some("") {
        return Err(ApiError::BadUrl);
    }
    let file_url = form
        .field("file_url")
        .filter(|url| !url.is_empty())
        .map(str::to_owned);
    let is_async = match form.field("async") {
        Some(value) => parse_bool(value).ok_or(ApiError::BadAsync)?,
        None => false,
    };
    if destination == Destination::Cdn {
        if let Some(kind) = form.field("type") {
            if !matches!(kind, "default" | "avatar" | "header") {
                return Err(ApiError::BadType);
            }
        }
    }
    let received: Result<Received, ()> = match (form.file, file_url) {
        (None, None) if form.fields.iter().any(|(name, _)| name == "file") => {
            return Err(ApiError::FileNotAFile);
        }
        (None, None) => return Err(ApiError::FileOrUrlRequired),
        (Some(_), Some(_)) => return Err(ApiError::FileAndUrl),
        (Some(file), None) if file.size == 0 => return Err(ApiError::FileNotAFile),
        (Some(file), None) => Ok(file),
        (None, Some(url)) => {
            if !["http://", "https://", "file://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                return Err(ApiError::BadUrl);
            }
            match upload::download(
                &url,
                app.limits.clone(),
                &app.storage_dir,
                app.media_root.as_deref(),
                ctx.local(),
                &app.file_url_hosts,
            )
            .await
            {
                // The mock's storage, not the origin, failed: 507 as for a direct upload.
                Err(upload::DownloadError::Upload(err)) if err.is_storage_full() => {
                    return Err(err.into());
                }
                Err(err) => {
                    tracing::info!(%url, error = %err, "file_url fetch failed");
                    Err(())
                }
                Ok(file) if file.size == 0 => Err(()),
                Ok(file) => Ok(file),
            }
        }
    };
    let failure = match &received {
        Err(()) => Some(DOWNLOAD_FAILED.to_owned()),
        Ok(file) if matches!(file.info.kind, MediaKind::Unsupported) => Some(format!(
            "The file must be a photo, video, gif or audio file, not {}.",
            file.info.mimetype
        )),
        Ok(_) => None,
    };
    if !is_async {
        match &received {
            Err(()) => return Err(ApiError::DownloadFailed),
            Ok(file) if failure.is_some() => {
                return Err(ApiError::UnsupportedType {
                    mimetype: file.info.mimetype,
                });
            }
            Ok(_) => {}
        }
    }
    let now = app.now(session).max(now);
    let fixture = &app.fixtures.onlyfans;
    let media = received.ok().map(|file| Arc::new(StoredMedia::from(file)));
    let credits_used = media.as_ref().map_or(0, |media| {
        media.size.div_ceil(1_000_000).max(1) * fixture.credits_per_decimal_mb
    });
    let seq = app.store.next_seq(Provider::OnlyFans);
    let sha256 = media.as_ref().map(|media| media.sha256);
    let note = |job_id: &str| Note {
        parts: parts.clone(),
        job_id: Some(job_id.into()),
        scenario: Some(Arc::clone(&scenario)),
        sha256,
        fault: None,
        state: None,
        delivery: None,
    };
    let names = Names::new(app, seq);
    let (job_id, timeline) = if is_async {
        let timeline = crate::flow::job_timeline(&scenario, attempt, &fixture.timeline);
        let timeline = match failure {
            Some(reason) => timeline.with_outcome(Outcome::Failed {
                reason: reason.into(),
            }),
            None => timeline,
        };
        (names.upload_id.clone(), timeline)
    } else {
        (
            names.media_id.clone(),
            Timeline::immediate(Outcome::Completed),
        )
    };
    app.store
        .insert(
            seq,
            job_id.clone(),
            NewJob {
                provider: Provider::OnlyFans,
                account: account.to_owned(),
                destination,
                timeline,
                media: media.clone(),
                credits_used,
                api_key: api_key.to_owned(),
                scenario: Arc::clone(&scenario),
                session: Arc::clone(session),
                attempt,
                has_webhook: is_async && app.webhook.is_some(),
            },
            now,
            &[names.file_token.clone(), names.source_token.clone()],
        )
        .await
        // Not on disk (with --state-dir), not acknowledged: a full disk is the provider's 507.
        .map_err(|err| ApiError::from(crate::upload::UploadError::Storage(err)))?;

    if is_async {
        // 202 Accepted, as OnlyFansAPI's integration guide calls it ("a 202 with polling_url");
        // the synchronous answer, done at once, is 200.
        let response = json(
            StatusCode::ACCEPTED,
            &wire::AsyncAccepted {
                status: "pending",
                prefixed_id: job_id.clone(),
                polling_url: format!(
                    "{}/api/{account}/media/uploads/{job_id}/status{}",
                    ctx.origin(),
                    ctx.session_suffix().replacen('&', "?", 1)
                ),
            },
        );
        return Ok(ctx.finish(response, fault, note(&job_id)));
    }
    let media = media.ok_or(ApiError::Internal)?;
    let origin = ctx.origin();
    let session_suffix = ctx.session_suffix();
    let rendered = Rendered {
        app,
        origin: &origin,
        session_suffix: &session_suffix,
        names: &names,
        media: &media,
        finished_at: now,
        created_at: now,
        link_ttl: scenario.link_ttl,
        // Answered at once: vault media is not ready yet, unless the scenario says it is.
        is_vault_ready: is_ready(app, &scenario, now, now),
    };
    let response = match destination {
        Destination::Cdn => json(
            StatusCode::OK,
            &wire::CdnUpload {
                media: rendered.cdn_media(),
                note: fixture.note.clone(),
            },
        ),
        Destination::Vault => {
            let balance = fixture.credit_balance
                - i64::try_from(app.store.credits_used(api_key)).unwrap_or(i64::MAX);
            json(
                StatusCode::OK,
                &wire::Enveloped {
                    data: rendered.vault_media(),
                    meta: wire::Meta {
                        credits: wire::Credits {
                            used: credits_used,
                            balance,
                            note: "Always",
                        },
                        cache: wire::Cache {
                            is_cached: false,
                            note: "Cache disabled for this endpoint",
                        },
                        rate_limits: wire::RateLimits {
                            limit_minute: fixture.limit_per_minute,
                            limit_day: None,
                            remaining_minute: fixture
                                .limit_per_minute
                                .saturating_sub(caller.n_requests),
                            remaining_day: None,
                        },
                    },
                },
            )
        }
    };
    Ok(ctx.finish(response, fault, note(&job_id)))
}

/// A status answer: `polled` is what the poll saw, counted as the request arrived.
fn status(
    app: &App,
    ctx: &RequestCtx<'_>,
    polled: Option<Polled>,
    now: SystemTime,
) -> Result<Response<Body>, ApiError> {
    let polled = polled.ok_or(ApiError::UploadNotFound)?;
    let note = Note {
        job_id: Some(Arc::clone(&polled.id)),
        scenario: Some(Arc::clone(&polled.scenario)),
        ..Note::default()
    };
    let fault = match crate::flow::poll_fault(app, Provider::OnlyFans, &polled) {
        Ok(fault) => fault,
        Err(refusal) => {
            return Ok(ctx.refused(ApiError::from(refusal).into_response(), note));
        }
    };
    let body = match polled.rendered_for(|origin| ctx.is_origin(origin)) {
        Some(body) => body,
        None => {
            let origin = ctx.origin();
            let reply = status_reply(app, &origin, &polled, now)?;
            let body =
                bytes::Bytes::from(serde_json::to_vec(&reply).map_err(|_| ApiError::Internal)?);
            // A terminal answer never changes again, except vault media that is not ready yet.
            let is_final = match &reply {
                wire::Status::Completed { media, .. } => match media.as_ref() {
                    wire::CompletedMedia::Vault(media) => media.is_ready,
                    wire::CompletedMedia::Cdn(_) => true,
                },
                _ => polled.state.is_terminal(),
            };
            if is_final {
                app.store
                    .keep_rendered(Provider::OnlyFans, polled.seq, &origin, body.clone());
            }
            body
        }
    };
    let note = Note {
        state: Some(match &polled.state {
            JobState::Running {
                phase: Phase::Queued,
                ..
            } => "pending",
            JobState::Running {
                phase: Phase::Processing,
                ..
            } => "processing",
            JobState::Completed => "completed",
            JobState::Failed { .. } => "failed",
        }),
        ..note
    };
    Ok(ctx.finish(crate::http::raw_json(StatusCode::OK, body), fault, note))
}

/// What a poll of `polled` at `now` (its session's clock) answers; links point at `origin`.
fn status_reply(
    app: &App,
    origin: &str,
    polled: &Polled,
    now: SystemTime,
) -> Result<wire::Status, ApiError> {
    let prefixed_id = polled.id.to_string();
    Ok(match polled.state.clone() {
        JobState::Running {
            phase: Phase::Queued,
            ..
        } => wire::Status::Pending { prefixed_id },
        JobState::Running {
            phase: Phase::Processing,
            ..
        } => wire::Status::Processing { prefixed_id },
        JobState::Failed { reason, .. } => wire::Status::Failed {
            prefixed_id,
            error: reason.to_string(),
        },
        JobState::Completed => {
            let media = polled.media.as_deref().ok_or(ApiError::Internal)?;
            let names = Names::new(app, polled.seq);
            let session_suffix = crate::http::session_suffix(&polled.session);
            let rendered = Rendered {
                app,
                origin,
                session_suffix: &session_suffix,
                names: &names,
                media,
                finished_at: polled.finished_at.unwrap_or(polled.created_at),
                created_at: polled.created_at,
                link_ttl: polled.scenario.link_ttl,
                is_vault_ready: is_ready(
                    app,
                    &polled.scenario,
                    polled.finished_at.unwrap_or(polled.created_at),
                    now,
                ),
            };
            wire::Status::Completed {
                prefixed_id,
                credits_used: polled.credits_used,
                media: Box::new(match polled.destination {
                    Destination::Vault => wire::CompletedMedia::Vault(rendered.vault_media()),
                    Destination::Cdn => wire::CompletedMedia::Cdn(rendered.cdn_media()),
                }),
            }
        }
    })
}

/// A completed job's status answer as a poll from `origin` would show it, for the admin API's
/// links.
pub(crate) fn completed_status(
    app: &App,
    origin: &str,
    polled: &Polled,
    now: SystemTime,
) -> Option<serde_json::Value> {
    serde_json::to_value(status_reply(app, origin, polled, now).ok()?).ok()
}

/// The webhook body for an OnlyFans job that has ended, if it is one.
pub(crate) fn webhook_body(app: &App, polled: &Polled) -> Option<bytes::Bytes> {
    let event = match polled.state {
        JobState::Completed => "media_uploads.completed",
        JobState::Failed { .. } => "media_uploads.failed",
        JobState::Running { .. } => return None,
    };
    let payload = status_reply(app, &app.origin, polled, app.now(&polled.session)).ok()?;
    let envelope = wire::WebhookEnvelope {
        event,
        account_id: polled.account.to_string(),
        payload,
    };
    serde_json::to_vec(&envelope).ok().map(bytes::Bytes::from)
}

/// The ids and path tokens of one upload, derived from its sequence number.
struct Names {
    seq: u64,
    /// The id an async upload is polled by.
    upload_id: String,
    /// The media's own id; a sync upload is polled by this one.
    media_id: String,
    process_id: String,
    /// Names the CDN directory of the full file and thumbnails.
    file_token: String,
    /// Names the source upload, formatted as a UUID as S3 keys are.
    source_token: String,
    extra: String,
}

impl Names {
    fn new(app: &App, seq: u64) -> Self {
        let token = |label: &str, len: usize| app.store.token(Provider::OnlyFans, seq, label, len);
        let uuid = token("source", 32);
        let extra_bytes = token("extra", 64).repeat(3);
        Self {
            seq,
            upload_id: format!("ofapi_media_{}", token("upload", 32)),
            media_id: format!("ofapi_media_{}", token("media", 32)),
            process_id: token("process", 20),
            file_token: token("file", 32),
            source_token: format!(
                "{}-{}-{}-{}-{}",
                &uuid[..8],
                &uuid[8..12],
                &uuid[12..16],
                &uuid[16..20],
                &uuid[20..]
            ),
            extra: base64::engine::general_purpose::STANDARD.encode(extra_bytes),
        }
    }
}

/// Everything needed to render a finished upload's media in either shape.
struct Rendered<'a> {
    app: &'a App,
    /// `scheme://host[:port]` the links point at.
    origin: &'a str,
    /// `&mock_session=NAME` after each link's query, or empty (the default session).
    session_suffix: &'a str,
    names: &'a Names,
    media: &'a StoredMedia,
    finished_at: SystemTime,
    created_at: SystemTime,
    /// The scenario's link lifetime, replacing the fixtures' for every link.
    link_ttl: Option<std::time::Duration>,
    /// Whether vault media has become ready (its URL and sizes shown): see [`is_ready`].
    is_vault_ready: bool,
}

/// Whether media that finished uploading at `finished_at` is ready at `now`: OnlyFans processes
/// vault media after the upload, and shows it with `isReady: false`, no URL and zero sizes until
/// then (the API reference's example). The scenario's `vault_ready_after`, else the fixtures'.
fn is_ready(
    app: &App,
    scenario: &crate::scenario::Scenario,
    finished_at: SystemTime,
    now: SystemTime,
) -> bool {
    let after = scenario
        .vault_ready_after
        .unwrap_or(app.fixtures.onlyfans.vault_ready_after);
    now >= saturating_add(finished_at, after)
}

impl Rendered<'_> {
    /// A canned-policy link to `path` on this server, valid for `ttl` after completion.
    fn link(&self, path: &str, ttl: std::time::Duration) -> String {
        let ttl = self.link_ttl.unwrap_or(ttl);
        let expires_at = unix_secs(saturating_add(self.finished_at, ttl));
        let query = signing::sign(path, expires_at, &self.app.key, Form::Canned);
        format!("{}{path}?{query}{}", self.origin, self.session_suffix)
    }

    fn files_dir(&self) -> String {
        let token = &self.names.file_token;
        format!(
            "/cdn/onlyfans/files/{}/{}/{token}",
            &token[..1],
            &token[..2]
        )
    }

    fn cdn_media(&self) -> wire::CdnMedia {
        let fixture = &self.app.fixtures.onlyfans;
        let info = &self.media.info;
        let thumbs = if info.width > 0 && info.height > 0 {
            let (width, height) = scale_to_width(info.width, info.height, fixture.thumb_width);
            let path = format!(
                "{}/{width}x{height}_{}.jpg",
                self.files_dir(),
                self.names.file_token
            );
            vec![wire::Thumb {
                id: 1,
                url: self.link(&path, fixture.link_ttl),
            }]
        } else {
            Vec::new()
        };
        let file_name = utf8_percent_encode(&self.media.file_name, PATH_SAFE).to_string();
        let source_path = crate::s3::object_path(&format!(
            "upload/{}/{:012}/{file_name}",
            self.names.source_token, self.names.seq
        ));
        // An S3 presigned GET, as the provider's `sourceUrl` is (not a CloudFront link).
        let source_url = crate::s3::presign(
            self.origin,
            &source_path,
            self.finished_at,
            self.link_ttl.unwrap_or(fixture.source_url_ttl),
            &self.app.key,
        )
        .map(|url| format!("{url}{}", self.session_suffix))
        .unwrap_or_default();
        wire::CdnMedia {
            prefixed_id: self.names.media_id.clone(),
            file_name: self.media.file_name.clone(),
            process_id: self.names.process_id.clone(),
            host: fixture.host.clone(),
            source_url,
            extra: self.names.extra.clone(),
            additional: wire::Additional {
                user: fixture.additional_user.clone(),
            },
            thumbs,
        }
    }

    fn vault_media(&self) -> wire::VaultMedia {
        let info = &self.media.info;
        let path = format!(
            "{}/{}.{}",
            self.files_dir(),
            self.names.file_token,
            info.extension
        );
        let full = if self.is_vault_ready {
            wire::FullFile {
                url: Some(self.link(&path, self.app.fixtures.onlyfans.link_ttl)),
                width: info.width,
                height: info.height,
                size: self.media.size,
                sources: Vec::new(),
            }
        } else {
            wire::FullFile {
                url: None,
                width: 0,
                height: 0,
                size: 0,
                sources: Vec::new(),
            }
        };
        wire::VaultMedia {
            id: 3_000_000_000 + self.names.seq,
            kind: match info.kind {
                MediaKind::Video => "video",
                MediaKind::Gif => "gif",
                MediaKind::Audio => "audio",
                MediaKind::Image | MediaKind::Unsupported => "photo",
            },
            converted_to_video: false,
            can_view: true,
            has_error: false,
            created_at: iso_seconds_offset(self.created_at),
            is_ready: self.is_vault_ready,
            files: wire::Files {
                full,
                thumb: None,
                preview: None,
                square_preview: None,
            },
            duration: info.duration_secs.round() as u64,
            release_forms: Vec::new(),
            has_custom_preview: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_accepts_laravel_booleans_only() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool(""), None);
    }
}
