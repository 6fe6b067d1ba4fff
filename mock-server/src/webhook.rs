//! OnlyFans webhooks: `media_uploads.completed` / `media_uploads.failed` for async uploads.
//!
//! A job ends when its clock says so, not when something happens to it, so a sender task looks for
//! jobs that have become terminal: on a short real-time tick (for servers on the system clock) and
//! at once whenever the admin API moves a clock. Each due job is delivered once, to the configured
//! URL, as `{"event", "account_id", "payload"}`, retried with doubling backoff on a connection error,
//! a non-2xx answer or no answer within 10 s. Every attempt is journaled under the route `webhook`
//! with a delivery id, and its event is kept (the last [`KEPT_DELIVERIES`]) so the admin API can
//! redeliver it.
//!
//! The headers are those of OnlyFansAPI's "Delivery & retries" page: `User-Agent:
//! OnlyFansAPI.com/Webhook-Client`; `Signature: hex(HMAC-SHA256(secret, raw body))` only when the
//! webhook has a signing secret; `X-OFAPI-Idempotency-Key: evt_…`, the same for every attempt and
//! copy of one event, so receivers can test their deduplication against it; `X-OFAPI-Redelivery-Of`
//! on a manual redelivery only.
//!
//! The same page says what a receiver must survive, and the job's scenario (`webhook:`) makes each
//! happen on demand: a delivery late, twice, out of order, never, not answered in time, or to an
//! endpoint paused after failing (its events then dropped, not kept). Pauses and held events live
//! in the sender's `State`, per session, so parallel tests do not pause each other.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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

/// The `User-Agent` of every delivery (docs.onlyfansapi.com/webhooks/delivery-and-retries, "How
/// we call your endpoint"; PROVIDERS.md still calls it unconfirmed), so receivers that
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
            // An out-of-order event starts waiting here, in the order events became due, so the
            // deliveries it waits for are those that come after it.
            let hold = polled
                .scenario
                .webhook
                .out_of_order
                .then(|| app.webhook_state.hold(&polled.session));
            let (app, config) = (Arc::clone(&app), Arc::clone(&config));
            tokio::spawn(async move { deliver(&app, &config, polled, hold).await });
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

/// The provider's answer deadline for one delivery (its "Delivery & retries" page: 10 s for the
/// whole request), used unless a scenario sets `webhook.timeout`.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Longest an out-of-order event waits for a later delivery of its session before it goes anyway,
/// so an event whose session never sends another is still delivered.
pub const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// One event as it is sent: what every attempt, copy and redelivery of it carries.
#[derive(Debug, Clone)]
struct Event {
    session: crate::store::SessionId,
    job_id: Arc<str>,
    scenario: Arc<crate::scenario::Scenario>,
    body: Bytes,
    idempotency_key: Arc<str>,
}

/// Sends one job's event as its scenario says, then tells the store the sender is done with it:
/// until then a restart (`--state-dir`) hands the event over again.
async fn deliver(app: &App, config: &WebhookConfig, polled: Polled, hold: Option<Hold>) {
    let seq = polled.seq;
    send(app, config, polled, hold).await;
    app.store
        .webhook_delivered(crate::provider::Provider::OnlyFans, seq);
}

async fn send(app: &App, config: &WebhookConfig, polled: Polled, hold: Option<Hold>) {
    let Some(body) = crate::provider::onlyfans::webhook_body(app, &polled) else {
        if let Some(hold) = hold {
            app.webhook_state.release(&polled.session, hold);
        }
        return;
    };
    let behaviour = polled.scenario.webhook;
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
    let event = Event {
        session: Arc::clone(&polled.session),
        job_id: Arc::clone(&polled.id),
        scenario: Arc::clone(&polled.scenario),
        body,
        idempotency_key: idempotency_key.into(),
    };
    let mut fault = None;
    if let Some(hold) = hold {
        app.webhook_state.wait_for_later(&event.session, hold).await;
        fault = Some("out_of_order");
    }
    if behaviour.drop {
        let mut attempt = Attempt::unsent(config, &event, "drop");
        record(app, config, &event, &mut attempt);
        return;
    }
    tokio::time::sleep(behaviour.delay).await;
    if behaviour.duplicate {
        fault = Some("duplicate");
    }
    if behaviour.bad_signature {
        fault = Some("bad_signature");
    }
    let timeout = behaviour.timeout.unwrap_or(TIMEOUT);
    let copies = if behaviour.duplicate { 2 } else { 1 };
    for _ in 0..copies {
        let mut backoff = config.backoff;
        for n_attempt in 1..=config.max_attempts {
            // A paused endpoint gets nothing: the event is dropped, not kept for later.
            if app.webhook_state.is_paused(&event.session) {
                let mut attempt = Attempt::unsent(config, &event, "paused");
                attempt.attempt = n_attempt;
                record(app, config, &event, &mut attempt);
                return;
            }
            let signed = config.secret.as_deref().map(|secret| {
                if behaviour.bad_signature {
                    // Signed with a key the receiver does not have, as a forger would.
                    signature(&format!("forged-{secret}"), &event.body)
                } else {
                    signature(secret, &event.body)
                }
            });
            let headers = Headers {
                signature: signed.as_deref(),
                idempotency_key: &event.idempotency_key,
                redelivery_of: None,
            };
            let stopwatch = Stopwatch::start();
            let answer = post(&config.url, &event.body, &headers, timeout).await;
            let is_success = answer.is_success();
            let paused = app.webhook_state.answered(
                &event.session,
                is_success,
                behaviour.pause_after,
                hold.is_none(),
            );
            let is_last = is_success || paused || n_attempt == config.max_attempts;
            let next_retry_at =
                (!is_last).then(|| crate::clock::saturating_add(app.now(&event.session), backoff));
            let mut attempt = Attempt {
                id: 0,
                attempt: n_attempt,
                max_attempts: config.max_attempts,
                next_retry_at,
                headers: headers.owned(),
                status: answer.status,
                duration_ms: stopwatch.elapsed_ms(),
                fault: if answer.timed_out {
                    Some("timeout")
                } else {
                    fault
                },
                redelivery_of: None,
            };
            record(app, config, &event, &mut attempt);
            if is_last {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
}

/// Sends a recorded delivery again, as the provider's "Redeliver webhook delivery" does: the same
/// body and idempotency key, signed as any delivery is, with `X-OFAPI-Redelivery-Of` naming the
/// delivery replayed; one attempt, journaled as a delivery of its own.
pub(crate) async fn redeliver(
    app: &App,
    session: &crate::store::SessionId,
    delivery_id: u64,
) -> Result<Redelivered, RedeliverError> {
    let config = app.webhook.as_deref().ok_or(RedeliverError::NoWebhook)?;
    let event = app
        .webhook_state
        .sent(session, delivery_id)
        .ok_or(RedeliverError::UnknownDelivery)?;
    let signed = config
        .secret
        .as_deref()
        .map(|secret| signature(secret, &event.body));
    let replayed = delivery_id.to_string();
    let headers = Headers {
        signature: signed.as_deref(),
        idempotency_key: &event.idempotency_key,
        redelivery_of: Some(&replayed),
    };
    let timeout = event.scenario.webhook.timeout.unwrap_or(TIMEOUT);
    let stopwatch = Stopwatch::start();
    let answer = post(&config.url, &event.body, &headers, timeout).await;
    let mut attempt = Attempt {
        id: 0,
        attempt: 1,
        max_attempts: 1,
        next_retry_at: None,
        headers: headers.owned(),
        status: answer.status,
        duration_ms: stopwatch.elapsed_ms(),
        fault: answer.timed_out.then_some("timeout"),
        redelivery_of: Some(delivery_id),
    };
    record(app, config, &event, &mut attempt);
    Ok(Redelivered {
        delivery: attempt.id,
        redelivery_of: delivery_id,
        status: answer.status,
    })
}

/// A redelivery's result, as the admin API answers it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Redelivered {
    /// The new delivery's id.
    pub(crate) delivery: u64,
    /// The delivery replayed.
    pub(crate) redelivery_of: u64,
    /// The receiver's status; 0 when no answer came in time.
    pub(crate) status: u16,
}

/// Why a delivery cannot be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RedeliverError {
    /// The server was started without a webhook URL.
    #[error("no webhook is configured (--webhook-url)")]
    NoWebhook,
    /// No delivery by that id in the session (or it is older than the last [`KEPT_DELIVERIES`]).
    #[error("no such delivery in this session")]
    UnknownDelivery,
}

/// Deliveries whose body is kept for redelivery; older ones are forgotten, as journal entries are.
pub const KEPT_DELIVERIES: usize = 1024;

/// A place in the queue of an out-of-order event: the count of its session's deliveries when it
/// became due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hold(u64);

/// What the sender remembers between deliveries: each session's endpoint health (consecutive
/// failures, paused), the deliveries out-of-order events wait for, and recent deliveries for
/// redelivery. Kept in memory only: a restart forgets pauses and delivery ids, as it forgets the
/// journal.
#[derive(Debug, Default)]
pub(crate) struct State {
    endpoints: Mutex<HashMap<crate::store::SessionId, Endpoint>>,
    /// Wakes out-of-order events when any delivery is answered.
    answered: tokio::sync::Notify,
    sent: Mutex<VecDeque<(u64, Event)>>,
    next_id: AtomicU64,
}

/// One session's webhook endpoint, as the sender sees it.
#[derive(Debug, Default)]
struct Endpoint {
    consecutive_failures: u32,
    paused: bool,
    /// Deliveries answered while an out-of-order event waited.
    n_answered: u64,
    /// Out-of-order events waiting.
    n_holding: u32,
}

impl Endpoint {
    fn is_idle(&self) -> bool {
        self.consecutive_failures == 0 && !self.paused && self.n_holding == 0
    }
}

impl State {
    fn endpoints(&self) -> std::sync::MutexGuard<'_, HashMap<crate::store::SessionId, Endpoint>> {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts holding an out-of-order event of `session`.
    fn hold(&self, session: &crate::store::SessionId) -> Hold {
        let mut endpoints = self.endpoints();
        let endpoint = endpoints.entry(Arc::clone(session)).or_default();
        endpoint.n_holding += 1;
        Hold(endpoint.n_answered)
    }

    /// Waits until a delivery of `session` that became due after `hold` has been answered, or
    /// [`HOLD_LIMIT`].
    async fn wait_for_later(&self, session: &crate::store::SessionId, hold: Hold) {
        let _ = tokio::time::timeout(HOLD_LIMIT, async {
            loop {
                let answered = self.answered.notified();
                tokio::pin!(answered);
                answered.as_mut().enable();
                let n_answered = self
                    .endpoints()
                    .get(session)
                    .map_or(hold.0, |endpoint| endpoint.n_answered);
                if n_answered > hold.0 {
                    return;
                }
                answered.await;
            }
        })
        .await;
        self.release(session, hold);
    }

    fn release(&self, session: &crate::store::SessionId, _hold: Hold) {
        let mut endpoints = self.endpoints();
        if let Some(endpoint) = endpoints.get_mut(session) {
            endpoint.n_holding = endpoint.n_holding.saturating_sub(1);
            if endpoint.is_idle() {
                endpoints.remove(session);
            }
        }
    }

    fn is_paused(&self, session: &crate::store::SessionId) -> bool {
        self.endpoints()
            .get(session)
            .is_some_and(|endpoint| endpoint.paused)
    }

    /// Counts an answered attempt; returns whether the endpoint is now paused. `pause_after` is
    /// the failing job's scenario's threshold; `releases` is false for an out-of-order event,
    /// which must not release another.
    fn answered(
        &self,
        session: &crate::store::SessionId,
        is_success: bool,
        pause_after: Option<u32>,
        releases: bool,
    ) -> bool {
        let mut endpoints = self.endpoints();
        let paused = if is_success {
            if let Some(endpoint) = endpoints.get_mut(session) {
                endpoint.consecutive_failures = 0;
            }
            false
        } else {
            let endpoint = endpoints.entry(Arc::clone(session)).or_default();
            endpoint.consecutive_failures = endpoint.consecutive_failures.saturating_add(1);
            if pause_after.is_some_and(|limit| endpoint.consecutive_failures >= limit) {
                endpoint.paused = true;
            }
            endpoint.paused
        };
        if releases {
            if let Some(endpoint) = endpoints.get_mut(session) {
                endpoint.n_answered += 1;
            }
        }
        if endpoints.get(session).is_some_and(Endpoint::is_idle) {
            endpoints.remove(session);
        }
        drop(endpoints);
        if releases {
            self.answered.notify_waiters();
        }
        paused
    }

    /// Ends a session's pause: later events are delivered again (those dropped stay dropped).
    /// Returns whether it was paused.
    pub(crate) fn resume(&self, session: &crate::store::SessionId) -> bool {
        let mut endpoints = self.endpoints();
        let Some(endpoint) = endpoints.get_mut(session) else {
            return false;
        };
        let was_paused = endpoint.paused;
        endpoint.paused = false;
        endpoint.consecutive_failures = 0;
        if endpoint.is_idle() {
            endpoints.remove(session);
        }
        was_paused
    }

    /// Whether a session's endpoint is paused, and its consecutive failed attempts.
    pub(crate) fn health(&self, session: &crate::store::SessionId) -> (bool, u32) {
        self.endpoints()
            .get(session)
            .map_or((false, 0), |endpoint| {
                (endpoint.paused, endpoint.consecutive_failures)
            })
    }

    /// Forgets a session's endpoint (the session was deleted).
    pub(crate) fn forget_session(&self, session: &str) {
        let mut endpoints = self.endpoints();
        if endpoints
            .get(session)
            .is_some_and(|endpoint| endpoint.n_holding == 0)
        {
            endpoints.remove(session);
        }
        drop(endpoints);
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(_, event)| &*event.session != session);
    }

    /// Numbers a delivery and keeps its event for redelivery.
    fn keep(&self, event: &Event) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        if sent.len() == KEPT_DELIVERIES {
            sent.pop_front();
        }
        sent.push_back((id, event.clone()));
        id
    }

    /// The event a delivery of `session` carried.
    fn sent(&self, session: &crate::store::SessionId, id: u64) -> Option<Event> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(sent_id, event)| *sent_id == id && event.session == *session)
            .map(|(_, event)| event.clone())
    }
}

/// The headers one event's deliveries carry besides `Content-Type` and `User-Agent`.
struct Headers<'a> {
    /// `Signature`, when the webhook has a secret.
    signature: Option<&'a str>,
    /// `X-OFAPI-Idempotency-Key`.
    idempotency_key: &'a str,
    /// `X-OFAPI-Redelivery-Of`, on a manual redelivery only.
    redelivery_of: Option<&'a str>,
}

impl Headers<'_> {
    /// Every header sent, in order, as (name, value).
    fn all(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some(("content-type", "application/json")),
            Some(("user-agent", USER_AGENT)),
            self.signature.map(|signature| ("signature", signature)),
            Some((IDEMPOTENCY_KEY, self.idempotency_key)),
            self.redelivery_of.map(|delivery| (REDELIVERY_OF, delivery)),
        ]
        .into_iter()
        .flatten()
    }

    /// The headers as the journal keeps them: `name: value` lines.
    fn owned(&self) -> String {
        self.all().fold(String::new(), |mut text, (name, value)| {
            text.push('\n');
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text
        })
    }
}

/// The header a manual redelivery names the replayed delivery in.
pub const REDELIVERY_OF: &str = "x-ofapi-redelivery-of";

/// What a receiver answered.
#[derive(Debug, Clone, Copy)]
struct Answer {
    /// The status; 0 when no answer came.
    status: u16,
    /// Whether no answer came within the deadline (the provider's 10 s).
    timed_out: bool,
}

impl Answer {
    fn is_success(self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// POSTs the body and waits at most `timeout` (wall clock) for the answer's head.
async fn post(url: &str, body: &Bytes, headers: &Headers<'_>, timeout: Duration) -> Answer {
    let request = headers
        .all()
        .fold(http::Request::post(url), |request, (name, value)| {
            request.header(name, value)
        })
        .body(Full::new(body.clone()));
    let no_answer = Answer {
        status: 0,
        timed_out: false,
    };
    let Ok(request) = request else {
        tracing::warn!(url = %url, "webhook URL is not a valid URI");
        return no_answer;
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    match tokio::time::timeout(timeout, client.request(request)).await {
        Ok(Ok(response)) => Answer {
            status: response.status().as_u16(),
            timed_out: false,
        },
        Ok(Err(err)) => {
            tracing::info!(url = %url, error = %err, "webhook delivery failed");
            no_answer
        }
        Err(_) => Answer {
            status: 0,
            timed_out: true,
        },
    }
}

/// One delivery attempt, as it is journaled and announced.
struct Attempt {
    /// The delivery's id, assigned when it is recorded.
    id: u64,
    attempt: u32,
    max_attempts: u32,
    next_retry_at: Option<std::time::SystemTime>,
    /// The headers sent, as journal lines.
    headers: String,
    /// The receiver's status; 0 when no answer came (or nothing was sent).
    status: u16,
    duration_ms: f64,
    fault: Option<&'static str>,
    /// The delivery this one replays, for a manual redelivery.
    redelivery_of: Option<u64>,
}

impl Attempt {
    /// An attempt never sent (dropped by the scenario, or by a paused endpoint).
    fn unsent(config: &WebhookConfig, event: &Event, fault: &'static str) -> Self {
        Self {
            id: 0,
            attempt: 1,
            max_attempts: config.max_attempts,
            next_retry_at: None,
            headers: Headers {
                signature: None,
                idempotency_key: &event.idempotency_key,
                redelivery_of: None,
            }
            .owned(),
            status: 0,
            duration_ms: 0.0,
            fault: Some(fault),
            redelivery_of: None,
        }
    }
}

/// Numbers an attempt, keeps its event for redelivery, journals it (with the headers it sent, so
/// the journal shows its signature) and announces it on the events stream: the one place a
/// delivery attempt is applied.
fn record(app: &App, config: &WebhookConfig, event: &Event, attempt: &mut Attempt) {
    attempt.id = app.webhook_state.keep(event);
    let (status, duration_ms) = (attempt.status, attempt.duration_ms);
    let note = journal::Note {
        job_id: Some(Arc::clone(&event.job_id)),
        scenario: Some(Arc::clone(&event.scenario)),
        fault: attempt.fault,
        delivery: Some(Box::new(journal::Delivery {
            id: attempt.id,
            attempt: attempt.attempt,
            max_attempts: attempt.max_attempts,
            next_retry_at: attempt.next_retry_at,
            redelivery_of: attempt.redelivery_of,
        })),
        ..journal::Note::default()
    };
    app.events.emit(|| crate::events::Event::WebhookAttempted {
        session: event.session.to_string(),
        job_id: event.job_id.to_string(),
        attempt: attempt.attempt,
        status,
        next_retry_at: attempt.next_retry_at.map(crate::clock::iso_millis),
    });
    let mut request = config.url.clone();
    request.push_str(&attempt.headers);
    app.journal.record(journal::Entry {
        seq: 0,
        session: Arc::clone(&event.session),
        at: app.now(&event.session),
        method: http::Method::POST,
        request,
        status,
        duration_ms,
        note,
        repeat_of: None,
        retry_after: None,
    });
}
