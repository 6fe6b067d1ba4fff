//! Fansly's errors: one enum, and one function that turns each case into status, headers and
//! the `{statusCode, message, data: null, timestamp}` envelope.
//!
//! Internals are logged, never sent: a storage failure reads as a plain 500.

use http::{Response, StatusCode};

use super::wire;
use crate::http::{Body, json};
use crate::upload::UploadError;

/// Everything a Fansly route can refuse.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// No `x-api-key`, or one not accepted.
    Unauthorized,
    /// The request is not a multipart form the API can read.
    NotMultipart,
    /// The multipart body does not parse.
    MalformedMultipart,
    /// No `file` part with a file name.
    MissingFile,
    /// A `file` part with no bytes.
    EmptyFile,
    /// More than one `file` part.
    UnexpectedFile,
    /// `formInputs` is not a JSON array of `{type: number, value: string}`.
    BadFormInputs,
    /// Over the upload size limit.
    TooLarge { limit: u64 },
    /// No job with that id.
    JobNotFound,
    /// No such route; NestJS says "Cannot METHOD /path".
    RouteNotFound { method: String, path: String },
    /// Storage failed; details are logged.
    Internal,
    /// A scenario's fault: this status, in the provider's envelope.
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
            UploadError::NotMultipart { .. } => ApiError::NotMultipart,
            UploadError::MissingBoundary
            | UploadError::Malformed(_)
            | UploadError::PartHeadersTooLarge { .. }
            | UploadError::BadJson(_) => {
                tracing::info!(error = %err, "fansly upload refused");
                ApiError::MalformedMultipart
            }
            UploadError::TooLarge { limit } => ApiError::TooLarge { limit },
            UploadError::DuplicateFile(_) => ApiError::UnexpectedFile,
            UploadError::TooManyParts { .. } => {
                tracing::info!(error = %err, "fansly upload refused");
                ApiError::MalformedMultipart
            }
            UploadError::Stalled(_) => ApiError::Injected {
                status: 408,
                retry_after: None,
            },
            UploadError::StorageFull { .. } => {
                tracing::warn!(error = %err, "fansly upload refused");
                ApiError::Injected {
                    status: 507,
                    retry_after: None,
                }
            }
            UploadError::Storage(source) if crate::upload::is_disk_full(&source) => {
                tracing::warn!(error = %source, "fansly upload refused: the disk is full");
                ApiError::Injected {
                    status: 507,
                    retry_after: None,
                }
            }
            UploadError::Storage(source) => {
                tracing::error!(error = %source, "fansly upload could not be stored");
                ApiError::Internal
            }
        }
    }
}

impl ApiError {
    /// The response for this error, stamped with `timestamp`.
    pub(crate) fn into_response(self, timestamp: String) -> Response<Body> {
        let mut retry_after_secs = None;
        let (status, message): (StatusCode, std::borrow::Cow<'static, str>) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "Missing or invalid API key".into(),
            ),
            ApiError::NotMultipart => (
                StatusCode::BAD_REQUEST,
                "Content-Type must be multipart/form-data".into(),
            ),
            ApiError::MalformedMultipart => (
                StatusCode::BAD_REQUEST,
                "Malformed multipart/form-data body".into(),
            ),
            ApiError::MissingFile => (StatusCode::BAD_REQUEST, "File is required".into()),
            ApiError::EmptyFile => (StatusCode::BAD_REQUEST, "File is empty".into()),
            ApiError::UnexpectedFile => (StatusCode::BAD_REQUEST, "Unexpected field: file".into()),
            ApiError::BadFormInputs => (
                StatusCode::BAD_REQUEST,
                "formInputs must be a JSON array of {type: number, value: string}".into(),
            ),
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("File too large: the limit is {limit} bytes").into(),
            ),
            ApiError::JobNotFound => (StatusCode::NOT_FOUND, "Job not found".into()),
            ApiError::RouteNotFound { method, path } => (
                StatusCode::NOT_FOUND,
                format!("Cannot {method} {path}").into(),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error".into(),
            ),
            ApiError::Injected {
                status,
                retry_after,
            } => {
                retry_after_secs = retry_after;
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let message = match status.as_u16() {
                    429 => "Rate limit exceeded. Please wait before making more requests.",
                    500 => "Internal server error",
                    _ => status.canonical_reason().unwrap_or("Error"),
                };
                (status, message.into())
            }
            ApiError::MockSetup(problem) => (StatusCode::BAD_REQUEST, problem.into()),
        };
        let mut response = error_response(status, &message, timestamp);
        if let Some(seconds) = retry_after_secs {
            let headers = response.headers_mut();
            headers.insert(http::header::RETRY_AFTER, seconds.into());
            headers.insert("x-ratelimit-retry-after", seconds.into());
        }
        response
    }
}

/// The envelope with `data: null`, shared by every error status.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    timestamp: String,
) -> Response<Body> {
    json(
        status,
        &wire::Envelope {
            status_code: status.as_u16(),
            message: message.to_owned(),
            data: None::<()>,
            timestamp,
        },
    )
}
