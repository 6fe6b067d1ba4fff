//! OnlyFansAPI's JSON, field for field as `specs/onlyfans.yaml` (and seed 002) spell it.
//!
//! These are the only OnlyFans types that derive `Serialize`: renaming a field here is a contract
//! change, and the spec-validation and snapshot tests say so.

use std::collections::BTreeMap;

use serde::Serialize;

/// `{status: "pending", prefixed_id, polling_url}`: the reply to any `async=true` upload.
#[derive(Debug, Serialize)]
pub(crate) struct AsyncAccepted {
    pub(crate) status: &'static str,
    pub(crate) prefixed_id: String,
    pub(crate) polling_url: String,
}

/// The media of a CDN upload (`POST /media/upload`), as in the sync reply and the completed status.
#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CdnMedia {
    #[serde(rename = "prefixed_id")]
    pub(crate) prefixed_id: String,
    #[serde(rename = "file_name")]
    pub(crate) file_name: String,
    pub(crate) process_id: String,
    pub(crate) host: String,
    pub(crate) source_url: String,
    pub(crate) extra: String,
    pub(crate) additional: Additional,
    pub(crate) thumbs: Vec<Thumb>,
}

#[derive(Debug, Serialize, Clone)]
pub(crate) struct Additional {
    pub(crate) user: String,
}

#[derive(Debug, Serialize, Clone)]
pub(crate) struct Thumb {
    pub(crate) id: u32,
    pub(crate) url: String,
}

/// The synchronous reply of `POST /media/upload`: the media plus a fixed `note`.
#[derive(Debug, Serialize)]
pub(crate) struct CdnUpload {
    #[serde(flatten)]
    pub(crate) media: CdnMedia,
    pub(crate) note: String,
}

/// A vault media object (`POST /media/vault`).
#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VaultMedia {
    pub(crate) id: u64,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) converted_to_video: bool,
    pub(crate) can_view: bool,
    pub(crate) has_error: bool,
    pub(crate) created_at: String,
    pub(crate) is_ready: bool,
    pub(crate) files: Files,
    pub(crate) duration: u64,
    pub(crate) release_forms: Vec<()>,
    pub(crate) has_custom_preview: bool,
}

#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Files {
    pub(crate) full: FullFile,
    pub(crate) thumb: Option<String>,
    pub(crate) preview: Option<String>,
    pub(crate) square_preview: Option<String>,
}

#[derive(Debug, Serialize, Clone)]
pub(crate) struct FullFile {
    pub(crate) url: Option<String>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) size: u64,
    pub(crate) sources: Vec<()>,
}

/// `{data, _meta}`: the standard envelope, used by the vault's synchronous reply.
#[derive(Debug, Serialize)]
pub(crate) struct Enveloped<T> {
    pub(crate) data: T,
    #[serde(rename = "_meta")]
    pub(crate) meta: Meta,
}

#[derive(Debug, Serialize)]
pub(crate) struct Meta {
    #[serde(rename = "_credits")]
    pub(crate) credits: Credits,
    #[serde(rename = "_cache")]
    pub(crate) cache: Cache,
    #[serde(rename = "_rate_limits")]
    pub(crate) rate_limits: RateLimits,
}

#[derive(Debug, Serialize)]
pub(crate) struct Credits {
    pub(crate) used: u64,
    pub(crate) balance: i64,
    pub(crate) note: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Cache {
    pub(crate) is_cached: bool,
    pub(crate) note: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct RateLimits {
    pub(crate) limit_minute: u32,
    pub(crate) limit_day: Option<u32>,
    pub(crate) remaining_minute: u32,
    pub(crate) remaining_day: Option<u32>,
}

/// `GET /api/{account}/media/uploads/{upload}/status`, tagged by `status`.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub(crate) enum Status {
    Pending {
        prefixed_id: String,
    },
    Processing {
        prefixed_id: String,
    },
    Failed {
        prefixed_id: String,
        error: String,
    },
    Completed {
        prefixed_id: String,
        credits_used: u64,
        // Boxed: the media dwarfs the other variants, and a reply is built once per poll.
        media: Box<CompletedMedia>,
    },
}

/// A completed upload's `media`: which shape depends on the endpoint that took it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum CompletedMedia {
    Vault(VaultMedia),
    Cdn(CdnMedia),
}

/// `{error}`: the documented 401 body.
#[derive(Debug, Serialize)]
pub(crate) struct AuthError {
    pub(crate) error: &'static str,
}

/// `{message}`: Laravel's 404 and 405 bodies.
#[derive(Debug, Serialize)]
pub(crate) struct MessageError {
    pub(crate) message: String,
}

/// `{message, errors: {field: [..]}}`: Laravel's validation body.
#[derive(Debug, Serialize)]
pub(crate) struct ValidationError {
    pub(crate) message: String,
    pub(crate) errors: BTreeMap<&'static str, Vec<String>>,
}

/// A webhook delivery: `{"event", "account_id", "payload"}`, the payload shaped as the status reply.
#[derive(Debug, Serialize)]
pub(crate) struct WebhookEnvelope {
    pub(crate) event: &'static str,
    pub(crate) account_id: String,
    pub(crate) payload: Status,
}
