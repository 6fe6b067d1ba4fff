//! The two providers' endpoints: each submodule holds the routes and handlers (`mod.rs`), the serde
//! types whose field names are the contract (`wire.rs`), and the error envelope (`error.rs`).
//!
//! Both follow one shape on purpose, so a newcomer who has read one has read both. There is no
//! trait over them: they share the job engine, the store and the signer, and differ in every byte
//! they put on the wire.

pub(crate) mod fansly;
pub(crate) mod onlyfans;

/// Which API a job or request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// apifansly's Fansly API.
    Fansly,
    /// OnlyFansAPI.
    OnlyFans,
}

impl Provider {
    /// The lowercase name used in CDN paths, the admin API and logs.
    pub fn slug(self) -> &'static str {
        match self {
            Provider::Fansly => "fansly",
            Provider::OnlyFans => "onlyfans",
        }
    }
}

/// The answer on a connection over the server's cap: 503 with `Retry-After: 1`, in the envelope
/// of the provider the path belongs to.
pub(crate) fn overloaded(app: &crate::app::App, path: &str) -> http::Response<crate::http::Body> {
    let mut response = if path.starts_with("/api/fansly/") {
        fansly::overloaded(app)
    } else if path.starts_with("/api/") {
        onlyfans::overloaded()
    } else {
        crate::http::json(
            http::StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"error": "too many connections"}),
        )
    };
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, http::HeaderValue::from(1));
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// A status answered on the upstream's behalf by a recording proxy (502 when the upstream could
/// not be reached), in `provider`'s own error shape.
pub(crate) fn upstream_failed(
    app: &crate::app::App,
    provider: Provider,
    status: u16,
) -> http::Response<crate::http::Body> {
    match provider {
        Provider::Fansly => fansly::upstream_failed(app, status),
        Provider::OnlyFans => onlyfans::upstream_failed(status),
    }
}

/// Whether `presented` is an accepted API key: any non-empty key when none are configured.
pub(crate) fn is_key_accepted(accepted: &[String], presented: Option<&str>) -> bool {
    match presented {
        None | Some("") => false,
        Some(key) => accepted.is_empty() || accepted.iter().any(|accepted| accepted == key),
    }
}

/// A log-safe form of an API key: its first four characters.
pub(crate) fn redact_key(key: &str) -> String {
    let shown: String = key.chars().take(4).collect();
    format!("{shown}…")
}
