//! OnlyFans webhooks: `media_uploads.completed` / `media_uploads.failed` for async uploads.
//!
//! A job ends when its clock says so, not when something happens to it, so a sender task looks for
//! jobs that have become terminal: on a short real-time tick (for servers on the system clock) and
//! at once whenever the admin API moves a clock. Each due job is delivered once, to the configured
//! URL, as `{"event", "account_id", "payload"}`, retried with doubling backoff on a connection error
//! or a non-2xx answer. The job's scenario can delay, duplicate or drop the delivery. Every attempt
//! is journaled under the route `webhook`.
//!
//! The headers are those of OnlyFansAPI's "Delivery & retries" page: `User-Agent:
//! OnlyFansAPI.com/Webhook-Client`; `Signature: hex(HMAC-SHA256(secret, raw body))` only when the
//! webhook has a signing secret; `X-OFAPI-Idempotency-Key: evt_…`, the same for every attempt and
//! copy of one event, so receivers can test their deduplication against it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use sha2::Sha256;
use tokio::sync::watch;

use crate::app::App;
use crate::clock::Stopwatch;
use crate::journal;
use crate::store::Polled;

/// Where and how webhooks are sent.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The receiver, an `http://` URL.
    pub url: String,
    /// The webhook's signing secret. The provider sends `Signature` only when a webhook has one,
    /// so a receiver must be testable both ways; none unless configured.
    pub secret: Option<String>,
    /// The wait before the first retry; it doubles after each failure.
    pub backoff: Duration,
    /// Deliveries tried per event before giving up.
    pub max_attempts: u32,
}

impl WebhookConfig {
    /// Sends to `url`, unsigned, as a provider webhook without a signing secret is; retries after
    /// 1 s, 2 s, 4 s and 8 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: None,
            backoff: Duration::from_secs(1),
            max_attempts: 5,
        }
    }

    /// Signs every delivery with `secret`, as a provider webhook with a signing secret is.
    pub fn signed_with(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }
}

/// The `User-Agent` of every delivery (OnlyFansAPI's "Delivery & retries" page), so receivers that
/// filter or log by it see what production sends.
pub const USER_AGENT: &str = "OnlyFansAPI.com/Webhook-Client";

/// The header a receiver deduplicates deliveries by.
pub const IDEMPOTENCY_KEY: &str = "x-ofapi-idempotency-key";

/// How often the sender looks for newly ended jobs when nothing wakes it.
const TICK: Duration = Duration::from_millis(100);

/// Runs until `shutdown` turns true.
pub(crate) async fn run(
    app: Arc<App>,
    config: Arc<WebhookConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        for polled in app.store.due_webhooks(app.clock.now()) {
            let (app, config) = (Arc::clone(&app), Arc::clone(&config));
            tokio::spawn(async move { deliver(&app, &config, polled).await });
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = app.webhook_wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// `hex(HMAC-SHA256(secret, body))`, the documented `Signature` header.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn deliver(app: &App, config: &WebhookConfig, polled: Polled) {
    let Some(body) = crate::provider::onlyfans::webhook_body(app, &polled) else {
        return;
    };
    let behaviour = polled.scenario.webhook;
    let note = || journal::Note {
        job_id: Some(Arc::clone(&polled.id)),
        scenario: Some(Arc::clone(&polled.scenario)),
        ..journal::Note::default()
    };
    let signed = config
        .secret
        .as_deref()
        .map(|secret| signature(secret, &body));
    // One key per event, derived from the job: every attempt and every copy of it carries the same.
    let idempotency_key = format!(
        "evt_{}",
        app.store.token(
            crate::provider::Provider::OnlyFans,
            polled.seq,
            "webhook-event",
            40
        )
    );
    let headers = Headers {
        signature: signed.as_deref(),
        idempotency_key: &idempotency_key,
    };
    if behaviour.drop {
        let attempt = Attempt {
            attempt: 1,
            max_attempts: config.max_attempts,
            next_retry_at: None,
            headers: &headers,
            status: 0,
            duration_ms: 0.0,
            fault: Some("drop"),
        };
        record(app, config, &polled, &attempt, note());
        return;
    }
    tokio::time::sleep(behaviour.delay).await;
    let copies = if behaviour.duplicate { 2 } else { 1 };
    for _ in 0..copies {
        let mut backoff = config.backoff;
        for attempt in 1..=config.max_attempts {
            let stopwatch = Stopwatch::start();
            let status = post(config, &body, &headers).await;
            let fault = behaviour.duplicate.then_some("duplicate");
            let is_last = (200..300).contains(&status) || attempt == config.max_attempts;
            let next_retry_at =
                (!is_last).then(|| crate::clock::saturating_add(app.now(&polled.session), backoff));
            let attempt = Attempt {
                attempt,
                max_attempts: config.max_attempts,
                next_retry_at,
                headers: &headers,
                status,
                duration_ms: stopwatch.elapsed_ms(),
                fault,
            };
            record(app, config, &polled, &attempt, note());
            if is_last {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
}

/// The headers one event's deliveries carry besides `Content-Type` and `User-Agent`.
struct Headers<'a> {
    /// `Signature`, when the webhook has a secret.
    signature: Option<&'a str>,
    /// `X-OFAPI-Idempotency-Key`.
    idempotency_key: &'a str,
}

impl Headers<'_> {
    /// Every header sent, in order, as (name, value).
    fn all(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some(("content-type", "application/json")),
            Some(("user-agent", USER_AGENT)),
            self.signature.map(|signature| ("signature", signature)),
            Some((IDEMPOTENCY_KEY, self.idempotency_key)),
        ]
        .into_iter()
        .flatten()
    }
}

/// POSTs the body; returns the status, or 0 when no answer came.
async fn post(config: &WebhookConfig, body: &Bytes, headers: &Headers<'_>) -> u16 {
    let request = headers
        .all()
        .fold(
            http::Request::post(&config.url),
            |request, (name, value)| request.header(name, value),
        )
        .body(Full::new(body.clone()));
    let Ok(request) = request else {
        tracing::warn!(url = %config.url, "webhook URL is not a valid URI");
        return 0;
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    match tokio::time::timeout(Duration::from_secs(10), client.request(request)).await {
        Ok(Ok(response)) => response.status().as_u16(),
        Ok(Err(err)) => {
            tracing::info!(url = %config.url, error = %err, "webhook delivery failed");
            0
        }
        Err(_) => 0,
    }
}

/// One delivery attempt, as it is journaled and announced.
struct Attempt<'a> {
    attempt: u32,
    max_attempts: u32,
    next_retry_at: Option<std::time::SystemTime>,
    /// The headers sent.
    headers: &'a Headers<'a>,
    /// The receiver's status; 0 when no answer came.
    status: u16,
    duration_ms: f64,
    fault: Option<&'static str>,
}

/// Journals an attempt (with the headers it sent, so the journal shows its signature) and
/// announces it on the events stream: the one place a delivery attempt is applied.
fn record(
    app: &App,
    config: &WebhookConfig,
    polled: &Polled,
    attempt: &Attempt<'_>,
    mut note: journal::Note,
) {
    let (status, duration_ms) = (attempt.status, attempt.duration_ms);
    note.fault = attempt.fault;
    note.delivery = Some(Box::new(journal::Delivery {
        attempt: attempt.attempt,
        max_attempts: attempt.max_attempts,
        next_retry_at: attempt.next_retry_at,
    }));
    app.events.emit(|| crate::events::Event::WebhookAttempted {
        session: polled.session.to_string(),
        job_id: polled.id.to_string(),
        attempt: attempt.attempt,
        status,
        next_retry_at: attempt.next_retry_at.map(crate::clock::iso_millis),
    });
    app.journal.record(journal::Entry {
        seq: 0,
        session: Arc::clone(&polled.session),
        at: app.now(&polled.session),
        method: http::Method::POST,
        request: attempt
            .headers
            .all()
            .fold(config.url.clone(), |mut text, (name, value)| {
                text.push('\n');
                text.push_str(name);
                text.push_str(": ");
                text.push_str(value);
                text
            }),
        status,
        duration_ms,
        note,
        repeat_of: None,
        retry_after: None,
    });
}
