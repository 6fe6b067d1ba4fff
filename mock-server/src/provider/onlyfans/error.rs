//! OnlyFansAPI's errors: one enum, and one function that turns each case into status and body.
//!
//! The 401 body is documented; the others follow Laravel, the provider's backend, and are marked
//! `x-unconfirmed` in the spec.

use std::collections::BTreeMap;

use http::{Response, StatusCode};

use super::wire;
use crate::http::{Body, json};
use crate::upload::UploadError;

const UNAUTHORIZED: &str =
    "Unauthorized. Go to https://app.onlyfansapi.com/api-keys to get your API key.";

/// Everything an OnlyFans route can refuse.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// No bearer token, or one not accepted.
    Unauthorized,
    /// Neither `file` nor `file_url`.
    FileOrUrlRequired,
    /// Both `file` and `file_url`.
    FileAndUrl,
    /// The `file` part is empty or not a file.
    FileNotAFile,
    /// `async` is not a boolean.
    BadAsync,
    /// `type` is not `default`, `avatar` or `header`.
    BadType,
    /// `file_url` is not a URL.
    BadUrl,
    /// A synchronous `file_url` upload could not be fetched.
    DownloadFailed,
    /// A synchronous upload whose bytes OnlyFans would refuse.
    UnsupportedType { mimetype: &'static str },
    /// Over the size limit.
    TooLarge { limit: u64 },
    /// No upload with that id under that account.
    UploadNotFound,
    /// A known path with the wrong method.
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static str,
    },
    /// No such route.
    RouteNotFound { path: String },
    /// Storage failed; details are logged.
    Internal,
    /// A scenario's fault: this status, in Laravel's shape.
    Injected {
        status: u16,
        retry_after: Option<u32>,
    },
    /// `X-Mock-Scenario` or `X-Mock-Session` is wrong: a test-setup mistake, answered in the
    /// provider's shape with the mock's explanation.
    MockSetup(String),
}

impl From<crate::flow::Refusal> for ApiError {
    fn from(refusal: crate::flow::Refusal) -> Self {
        match refusal {
            crate::flow::Refusal::Setup(problem) => ApiError::MockSetup(problem),
            crate::flow::Refusal::Form(err) => ApiError::from(err),
            crate::flow::Refusal::Fault {
                status,
                retry_after,
            } => ApiError::Injected {
                status,
                retry_after,
            },
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(err: UploadError) -> Self {
        match err {
            // Laravel sees no fields in a body it cannot parse, so it asks for the file.
            UploadError::NotMultipart { .. }
            | UploadError::MissingBoundary
            | UploadError::Malformed(_)
            | UploadError::PartHeadersTooLarge { .. }
            | UploadError::BadJson(_)
            | UploadError::TooManyParts { .. } => {
                tracing::info!(error = %err, "onlyfans upload refused");
                ApiError::FileOrUrlRequired
            }
            UploadError::TooLarge { limit } => ApiError::TooLarge { limit },
            UploadError::DuplicateFile(_) => ApiError::FileNotAFile,
            UploadError::Stalled(_) => ApiError::Injected {
                status: 408,
                retry_after: None,
            },
            UploadError::StorageFull { .. } => {
                tracing::warn!(error = %err, "onlyfans upload refused");
                ApiError::Injected {
                    status: 507,
                    retry_after: None,
                }
            }
            UploadError::Storage(source) if crate::upload::is_disk_full(&source) => {
                tracing::warn!(error = %source, "onlyfans upload refused: the disk is full");
                ApiError::Injected {
                    status: 507,
                    retry_after: None,
                }
            }
            UploadError::Storage(source) => {
                tracing::error!(error = %source, "onlyfans upload could not be stored");
                ApiError::Internal
            }
        }
    }
}

fn invalid(status: StatusCode, field: &'static str, message: String) -> Response<Body> {
    let errors = BTreeMap::from([(field, vec![message.clone()])]);
    json(status, &wire::ValidationError { message, errors })
}

impl ApiError {
    /// The response for this error.
    pub(crate) fn into_response(self) -> Response<Body> {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match self {
            ApiError::Unauthorized => json(
                StatusCode::UNAUTHORIZED,
                &wire::AuthError {
                    error: UNAUTHORIZED,
                },
            ),
            ApiError::FileOrUrlRequired => invalid(
                unprocessable,
                "file",
                "The file field is required when file url is not present.".into(),
            ),
            ApiError::FileAndUrl => invalid(
                unprocessable,
                "file",
                "The file field prohibits file url from being present.".into(),
            ),
            ApiError::FileNotAFile => invalid(
                unprocessable,
                "file",
                "The file field must be a file.".into(),
            ),
            ApiError::BadAsync => invalid(
                unprocessable,
                "async",
                "The async field must be true or false.".into(),
            ),
            ApiError::BadType => invalid(
                unprocessable,
                "type",
                "The selected type is invalid.".into(),
            ),
            ApiError::BadUrl => invalid(
                unprocessable,
                "file_url",
                "The file url field must be a valid URL.".into(),
            ),
            ApiError::DownloadFailed => invalid(
                unprocessable,
                "file_url",
                "Failed to download file from the provided URL.".into(),
            ),
            ApiError::UnsupportedType { mimetype } => invalid(
                unprocessable,
                "file",
                format!(
                    "The file field must be a photo, video, gif or audio file, not {mimetype}."
                ),
            ),
            ApiError::TooLarge { limit } => invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file",
                format!(
                    "The file field must not be greater than {} kilobytes.",
                    limit / 1024
                ),
            ),
            ApiError::UploadNotFound => json(
                StatusCode::NOT_FOUND,
                &wire::MessageError {
                    message: "Upload not found.".into(),
                },
            ),
            ApiError::MethodNotAllowed {
                method,
                path,
                allowed,
            } => {
                let mut response = json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &wire::MessageError {
                        message: format!(
                            "The {method} method is not supported for route {}. Supported methods: {allowed}.",
                            path.trim_start_matches('/')
                        ),
                    },
                );
                // RFC 9110 §15.5.6: a 405 names the methods the resource has (Laravel sends it).
                response
                    .headers_mut()
                    .insert(http::header::ALLOW, http::HeaderValue::from_static(allowed));
                response
            }
            ApiError::RouteNotFound { path } => json(
                StatusCode::NOT_FOUND,
                &wire::MessageError {
                    message: format!(
                        "The route {} could not be found.",
                        path.trim_start_matches('/')
                    ),
                },
            ),
            ApiError::Internal => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &wire::MessageError {
                    message: "Server Error".into(),
                },
            ),
            ApiError::Injected {
                status,
                retry_after,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let message = match status.as_u16() {
                    429 => "Too Many Attempts.",
                    500..=599 => "Server Error",
                    _ => status.canonical_reason().unwrap_or("Error"),
                };
                let mut response = json(
                    status,
                    &wire::MessageError {
                        message: message.into(),
                    },
                );
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(http::header::RETRY_AFTER, seconds.into());
                }
                response
            }
            ApiError::MockSetup(problem) => json(
                StatusCode::BAD_REQUEST,
                &wire::MessageError { message: problem },
            ),
        }
    }
}
