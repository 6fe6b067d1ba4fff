//! The stream of state changes behind `GET /__admin/events` (Server-Sent Events): what the store,
//! the journal and the webhook sender apply, as they apply it, so a dashboard or a test can follow
//! the mock without polling it.
//!
//! Each change is emitted from the one place that applies it (`store/` after its one mutator, `journal.rs`,
//! `webhook.rs`) into a `tokio::sync::broadcast` channel of [`CAPACITY`] events. The bound is
//! what keeps a stalled subscriber from costing memory: a subscriber that falls more than
//! [`CAPACITY`] events behind loses the oldest ones and is sent `{"type": "resync", "missed": n}`
//! instead, after which it should re-read what it shows (`/__admin/jobs`, `/__admin/journal`).
//!
//! Jobs change state by the clock, not by events: a state change is emitted when a poll sees it
//! (`job_polled`) or when an admin request moves a clock (`job_changed`, after `clock_moved`). On
//! a system clock a job also moves on its own between those; a subscriber that wants the exact
//! moment schedules a re-read at the job's `next_change_at` (the dashboard does).
//!
//! Emitting costs one atomic load while nobody subscribes: the poll path builds no event then.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::clock::{iso_millis, unix_millis};
use crate::job::{JobState, Phase};

/// Events kept for subscribers that have not read them yet. A dashboard reads each event within
/// milliseconds; 1,024 covers a burst (a clock move over a thousand jobs) while capping the memory
/// a stalled subscriber can pin at about a thousand small events.
pub(crate) const CAPACITY: usize = 1024;

/// How often an idle stream sends an SSE comment, so proxies keep it open and a closed client is
/// noticed by the failed write.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// One change, as subscribers receive it (the JSON of an SSE `data:` line).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Event {
    /// An upload became a job.
    JobCreated {
        /// The owning session.
        session: String,
        /// `fansly` or `onlyfans`.
        provider: &'static str,
        /// The id clients poll with.
        id: String,
        /// Its state at creation.
        #[serde(flatten)]
        state: StateView,
    },
    /// A status poll was answered with this state.
    JobPolled {
        /// The owning session.
        session: String,
        /// `fansly` or `onlyfans`.
        provider: &'static str,
        /// The job.
        id: String,
        /// Polls answered so far, this one included.
        n_polls: u32,
        /// What the poll showed.
        #[serde(flatten)]
        state: StateView,
    },
    /// A clock move changed what a poll of this job would see.
    JobChanged {
        /// The owning session.
        session: String,
        /// `fansly` or `onlyfans`.
        provider: &'static str,
        /// The job.
        id: String,
        /// The state before the move.
        from: &'static str,
        /// The state now.
        #[serde(flatten)]
        state: StateView,
    },
    /// The admin API ended a running job now.
    JobForced {
        /// The owning session.
        session: String,
        /// `fansly` or `onlyfans`.
        provider: &'static str,
        /// The job.
        id: String,
        /// `completed` or `failed`, with the error text when failed.
        #[serde(flatten)]
        state: StateView,
    },
    /// The admin API pinned a running job in a state.
    JobPinned {
        /// The owning session.
        session: String,
        /// `fansly` or `onlyfans`.
        provider: &'static str,
        /// The job.
        id: String,
        /// The pinned state.
        #[serde(flatten)]
        state: StateView,
    },
    /// An idle job was forgotten (`--idle-expiry`).
    JobForgotten {
        /// The owning session.
        session: String,
        /// `fansly` or `onlyfans`.
        provider: &'static str,
        /// The job.
        id: String,
    },
    /// A clock moved: one session's (`session` set) or the server's, which every session reads.
    ClockMoved {
        /// The session whose clock moved; `null` for the server clock.
        session: Option<String>,
        /// The moved clock's reading (the server's, for the server clock).
        now: String,
        /// The same, in Unix milliseconds.
        unix_ms: u128,
    },
    /// A scenario was put in force: a session's (`session` set) or the server's default.
    ScenarioSet {
        /// The session; `null` for the server default.
        session: Option<String>,
        /// The scenario's name.
        scenario: String,
    },
    /// Credits were charged to an API key (OnlyFans uploads): its running total.
    CreditsCharged {
        /// Hex SHA-256 of the key, as the state log keeps it: the key itself never leaves.
        key_sha256: String,
        /// Credits charged to the key so far.
        total: u64,
    },
    /// A session was forgotten (`session` set), or the whole server was reset.
    SessionReset {
        /// The session; `null` for a reset of everything.
        session: Option<String>,
    },
    /// A request was journaled.
    JournalAppended {
        /// Its session.
        session: String,
        /// Its journal number.
        seq: u64,
        /// `upload`, `status`, `cdn`, `webhook` or `other`, as the journal filter names it.
        route: &'static str,
        /// The method.
        method: String,
        /// The path (a webhook's URL).
        path: String,
        /// The status answered (0: dropped).
        status: u16,
        /// The job it concerned.
        job_id: Option<String>,
        /// The fault injected.
        fault: Option<&'static str>,
    },
    /// A webhook delivery was attempted.
    WebhookAttempted {
        /// The job's session.
        session: String,
        /// The job announced.
        job_id: String,
        /// This attempt's number, from 1.
        attempt: u32,
        /// The receiver's status (0: no answer, or dropped by the scenario).
        status: u16,
        /// When the next attempt goes, if one will.
        next_retry_at: Option<String>,
    },
}

impl Event {
    /// The session the event belongs to; `None` for events every session sees.
    fn session(&self) -> Option<&str> {
        match self {
            Event::JobCreated { session, .. }
            | Event::JobPolled { session, .. }
            | Event::JobChanged { session, .. }
            | Event::JobForced { session, .. }
            | Event::JobPinned { session, .. }
            | Event::JobForgotten { session, .. }
            | Event::JournalAppended { session, .. }
            | Event::WebhookAttempted { session, .. } => Some(session),
            Event::ClockMoved { session, .. }
            | Event::ScenarioSet { session, .. }
            | Event::SessionReset { session } => session.as_deref(),
            Event::CreditsCharged { .. } => None,
        }
    }
}

/// A job state as the admin API names it (`queued`, `processing`, `completed`, `failed`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StateView {
    /// The state's name.
    pub(crate) state: &'static str,
    /// Progress 0–100.
    pub(crate) progress: u8,
    /// A failed job's error text.
    pub(crate) error: Option<String>,
}

impl From<&JobState> for StateView {
    fn from(state: &JobState) -> Self {
        let (name, progress, error) = state_parts(state);
        Self {
            state: name,
            progress,
            error,
        }
    }
}

/// A state's admin name, progress and error text: the one spelling the admin API, the events
/// and the dashboard share.
pub(crate) fn state_parts(state: &JobState) -> (&'static str, u8, Option<String>) {
    match state {
        JobState::Running {
            phase: Phase::Queued,
            progress,
        } => ("queued", *progress, None),
        JobState::Running {
            phase: Phase::Processing,
            progress,
        } => ("processing", *progress, None),
        JobState::Completed => ("completed", 100, None),
        JobState::Failed { progress, reason } => ("failed", *progress, Some(reason.to_string())),
    }
}

/// The sending side, cloned into the store, the journal and the app.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    sender: broadcast::Sender<Arc<Event>>,
    /// Subscribers right now: checked before building an event, so nobody listening costs an
    /// atomic load (the broadcast's own count sits behind a mutex).
    n_subscribers: AtomicUsize,
    /// Turns true when the server shuts down, ending every stream (an endless answer would
    /// otherwise hold up graceful shutdown for its whole grace period).
    closed: watch::Sender<bool>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new(CAPACITY)
    }
}

impl Events {
    /// A channel keeping at most `capacity` unread events per subscriber.
    pub(crate) fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self {
            shared: Arc::new(Shared {
                sender,
                n_subscribers: AtomicUsize::new(0),
                closed: watch::Sender::new(false),
            }),
        }
    }

    /// Whether anyone listens; emitters skip building events otherwise.
    pub(crate) fn is_watched(&self) -> bool {
        self.shared.n_subscribers.load(Ordering::Relaxed) > 0
    }

    /// Sends the event `make` builds, if anyone listens.
    pub(crate) fn emit(&self, make: impl FnOnce() -> Event) {
        if self.is_watched() {
            // An error only means the last subscriber left meanwhile.
            let _ = self.shared.sender.send(Arc::new(make()));
        }
    }

    /// Ends every stream; later subscribers get an empty one.
    pub(crate) fn close(&self) {
        self.shared.closed.send_replace(true);
    }

    /// The SSE body for one subscriber: events of `session` (and server-wide ones), or all.
    pub(crate) fn subscribe(&self, session: Option<String>) -> crate::http::Body {
        let subscription = Subscription {
            receiver: self.shared.sender.subscribe(),
            shared: Arc::clone(&self.shared),
        };
        self.shared.n_subscribers.fetch_add(1, Ordering::Relaxed);
        let closed = self.shared.closed.subscribe();
        let hello = frame(&serde_json::json!({
            "type": "hello",
            "session": session,
            "capacity": CAPACITY,
        }));
        let state = (subscription, closed, session, Some(hello));
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            let (subscription, closed, session, hello) = &mut state;
            if let Some(hello) = hello.take() {
                return Some((hello, state));
            }
            let bytes = loop {
                if *closed.borrow_and_update() {
                    return None;
                }
                tokio::select! {
                    received = subscription.receiver.recv() => match received {
                        Ok(event) => {
                            let is_for_us = session.as_deref().is_none_or(|wanted| {
                                event.session().is_none_or(|owner| owner == wanted)
                            });
                            if is_for_us {
                                break frame(&*event);
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            break frame(&serde_json::json!({"type": "resync", "missed": missed}));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    changed = closed.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    () = tokio::time::sleep(HEARTBEAT) => break Bytes::from_static(b": heartbeat\n\n"),
                }
            };
            Some((bytes, state))
        });
        crate::http::Body::stream(SseBody {
            stream: std::sync::Mutex::new(Box::pin(stream)),
        })
    }
}

/// A receiver that counts itself out of [`Shared::n_subscribers`] when the stream is dropped.
#[derive(Debug)]
struct Subscription {
    receiver: broadcast::Receiver<Arc<Event>>,
    shared: Arc<Shared>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.n_subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One SSE event: a `data:` line of JSON (JSON has no raw line breaks) and a blank line.
fn frame(value: &impl Serialize) -> Bytes {
    let mut bytes = b"data: ".to_vec();
    if serde_json::to_writer(&mut bytes, value).is_err() {
        bytes = b"data: {\"type\":\"resync\",\"missed\":0}".to_vec();
    }
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}

/// The stream as a response body. The stream's future holds a broadcast receiver, which is not
/// `Sync`; a body must be, and a mutex makes it so at no cost (`poll_frame` has `&mut`).
struct SseBody {
    stream: std::sync::Mutex<
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Bytes> + Send + 'static>>,
    >,
}

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        let stream = self
            .get_mut()
            .stream
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stream
            .as_mut()
            .poll_next(cx)
            .map(|next| next.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}

/// `at` as the admin API writes times, for events.
pub(crate) fn time(at: SystemTime) -> (String, u128) {
    (iso_millis(at), unix_millis(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    async fn next_data(body: &mut crate::http::Body) -> Option<serde_json::Value> {
        let frame = body.frame().await?.ok()?;
        let bytes = frame.into_data().ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        serde_json::from_str(text.strip_prefix("data: ")?.trim_end()).ok()
    }

    fn reset(session: &str) -> Event {
        Event::SessionReset {
            session: Some(session.to_owned()),
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_to_resync_instead_of_growing_memory() {
        let events = Events::new(2);
        let mut body = events.subscribe(None);
        assert_eq!(next_data(&mut body).await.unwrap()["type"], "hello");
        for idx in 0..5 {
            events.emit(|| reset(&format!("s{idx}")));
        }
        let resync = next_data(&mut body).await.unwrap();
        assert_eq!(resync["type"], "resync");
        assert_eq!(resync["missed"], 3);
        // The newest events, which the channel kept, follow.
        assert_eq!(next_data(&mut body).await.unwrap()["session"], "s3");
        assert_eq!(next_data(&mut body).await.unwrap()["session"], "s4");
    }

    #[tokio::test]
    async fn nothing_is_built_without_a_subscriber_and_closing_ends_every_stream() {
        let events = Events::new(4);
        events.emit(|| unreachable!("an event was built with nobody listening"));
        let mut body = events.subscribe(Some("a".to_owned()));
        assert!(events.is_watched());
        assert_eq!(next_data(&mut body).await.unwrap()["type"], "hello");
        events.emit(|| reset("b"));
        events.emit(|| reset("a"));
        assert_eq!(next_data(&mut body).await.unwrap()["session"], "a");
        events.close();
        assert!(
            body.frame().await.is_none(),
            "the stream outlived the server"
        );
        drop(body);
        assert!(!events.is_watched());
    }
}
