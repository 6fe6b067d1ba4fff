//! Fansly's JSON, field for field as `specs/fansly.yaml` (and seed 000) spell it.
//!
//! These are the only Fansly types that derive `Serialize`: renaming a field here is a contract
//! change, and the spec-validation and snapshot tests say so.

use serde::Serialize;

/// `{statusCode, message, data, timestamp}`: every Fansly response, errors included.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope<T> {
    pub(crate) status_code: u16,
    pub(crate) message: String,
    /// The payload; `None` (JSON `null`) on errors.
    pub(crate) data: T,
    /// ISO 8601 with milliseconds, UTC.
    pub(crate) timestamp: String,
}

/// `{"statusCode":200,"message":"Success","data":<data>,"timestamp":"…"}` around `data` that is
/// already serialized (a terminal job's cached `Status`): the same bytes `Envelope` would give.
/// Built in one buffer of exactly its size, which `Bytes` then takes over without another
/// allocation: this is every status poll's answer.
pub(crate) fn ok_envelope(data: &[u8], at: std::time::SystemTime) -> bytes::Bytes {
    const HEAD: &[u8] = br#"{"statusCode":200,"message":"Success","data":"#;
    const MIDDLE: &[u8] = br#","timestamp":""#;
    const TAIL: &[u8] = br#""}"#;
    let size = HEAD.len() + data.len() + MIDDLE.len() + crate::clock::ISO_MILLIS_LEN + TAIL.len();
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(HEAD);
    body.extend_from_slice(data);
    body.extend_from_slice(MIDDLE);
    crate::clock::push_iso_millis(at, &mut body);
    body.extend_from_slice(TAIL);
    bytes::Bytes::from(body)
}

/// `data` of a 201 from `POST /api/fansly/{accountId}/media/upload`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Queued {
    pub(crate) success: bool,
    pub(crate) job_id: String,
    pub(crate) bucket_name: String,
    pub(crate) message: &'static str,
}

/// The provider's job states.
#[derive(Debug, Serialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    Waiting,
    Active,
    Completed,
    Failed,
}

impl State {
    /// The spelling on the wire, for the journal.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Active => "active",
            State::Completed => "completed",
            State::Failed => "failed",
        }
    }
}

/// `data` of `GET /api/fansly/media/upload/{jobId}/status`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    pub(crate) success: bool,
    pub(crate) job_id: String,
    pub(crate) state: State,
    pub(crate) progress: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<UploadResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failed_reason: Option<String>,
}

/// `data.result` once completed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UploadResult {
    pub(crate) success: bool,
    pub(crate) bucket_name: String,
    pub(crate) media_id: String,
    pub(crate) account_media: Vec<AccountMedia>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountMedia {
    pub(crate) id: String,
    pub(crate) media_id: String,
    pub(crate) account_id: String,
    pub(crate) media: Media,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Media {
    pub(crate) id: String,
    /// 1 image, 2 video.
    #[serde(rename = "type")]
    pub(crate) kind: u16,
    pub(crate) mimetype: String,
    pub(crate) filename: String,
    /// The CDN path without host.
    pub(crate) location: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Unix seconds.
    pub(crate) created_at: u64,
    pub(crate) variants: Vec<Variant>,
    pub(crate) locations: Vec<Location>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Variant {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: u16,
    pub(crate) mimetype: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) locations: Vec<Location>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Location {
    pub(crate) location_id: String,
    pub(crate) location: String,
}
