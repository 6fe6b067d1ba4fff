//! What the checks run against: the in-process mock or any base URL, through the same code.
//!
//! The split is the local/remote one of httpmock's adapters: a [`Target`] says whether the
//! mock's `/__admin/` API is there. With it, checks drive the mock's clock instead of sleeping
//! and aim failure scenarios at their own uploads; without it (a live API), the checks that need
//! it are skipped and say so, and everything else runs unchanged.

use std::time::Duration;

use bytes::Bytes;
use mock_server::Provider;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// One API under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Origin plus any prefix, no trailing slash: `http://127.0.0.1:8765`, `https://v1.apifansly.com`.
    pub base_url: String,
    /// Which provider's endpoints and envelopes to expect.
    pub provider: Provider,
    /// Sent as `x-api-key` (Fansly) or `Authorization: Bearer` (OnlyFans).
    pub api_key: String,
    /// The account path segment (`acct_…` on OnlyFans, the account id on Fansly).
    pub account: String,
    /// Whether `/__admin/` is there: true for the mock, false for a live API.
    pub admin: bool,
    /// `X-Mock-Session` sent on every request, so parallel runs on one mock do not meet.
    pub session: Option<String>,
}

impl Target {
    /// A mock at `base_url` with its admin API, in a session of the run's own.
    pub fn mock(base_url: impl Into<String>, provider: Provider) -> Self {
        Self {
            base_url: trim(base_url.into()),
            provider,
            api_key: "conformance-key".to_owned(),
            account: match provider {
                Provider::Fansly => "conformance".to_owned(),
                Provider::OnlyFans => "acct_conformance0000".to_owned(),
            },
            admin: true,
            session: Some(format!("conformance-{}", random_suffix())),
        }
    }

    /// A live API (or any server without the admin API).
    pub fn live(
        base_url: impl Into<String>,
        provider: Provider,
        api_key: impl Into<String>,
        account: impl Into<String>,
    ) -> Self {
        Self {
            base_url: trim(base_url.into()),
            provider,
            api_key: api_key.into(),
            account: account.into(),
            admin: false,
            session: None,
        }
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The upload path for this provider and account.
    pub fn upload_path(&self) -> String {
        match self.provider {
            Provider::Fansly => format!("/api/fansly/{}/media/upload", self.account),
            Provider::OnlyFans => format!("/api/{}/media/upload", self.account),
        }
    }

    /// The status path of `job_id`.
    pub fn status_path(&self, job_id: &str) -> String {
        match self.provider {
            Provider::Fansly => format!("/api/fansly/media/upload/{job_id}/status"),
            Provider::OnlyFans => {
                format!("/api/{}/media/uploads/{job_id}/status", self.account)
            }
        }
    }

    /// The request's auth header for this provider.
    pub fn auth_header(&self) -> (&'static str, String) {
        match self.provider {
            Provider::Fansly => ("x-api-key", self.api_key.clone()),
            Provider::OnlyFans => ("authorization", format!("Bearer {}", self.api_key)),
        }
    }
}

fn trim(url: String) -> String {
    url.trim_end_matches('/').to_owned()
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    // Without randomness two runs may share a session, which only mixes their journals.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// One request and what came back, as the checks see it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What this request was for, e.g. `upload without a key`.
    pub purpose: String,
    /// The method.
    pub method: String,
    /// The path, no query.
    pub path: String,
    /// The status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Bytes,
    /// The body as JSON, when it parses.
    pub json: Option<Value>,
}

impl Exchange {
    /// `POST /api/… → 201`, for messages.
    pub fn line(&self) -> String {
        format!(
            "{} {} → {} ({})",
            self.method, self.path, self.status, self.purpose
        )
    }

    /// The `Retry-After` header in seconds, if any (the standard one, then Fansly's own).
    pub fn retry_after(&self) -> Option<Duration> {
        ["retry-after", "x-ratelimit-retry-after"]
            .iter()
            .find_map(|name| self.headers.get(*name)?.to_str().ok()?.trim().parse().ok())
            .map(Duration::from_secs)
    }

    /// The media type of the body, without parameters.
    pub fn content_type(&self) -> Option<String> {
        let value = self
            .headers
            .get(reqwest::header::CONTENT_TYPE)?
            .to_str()
            .ok()?;
        Some(
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase(),
        )
    }
}
