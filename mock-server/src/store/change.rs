//! The one mutator. Every change of the store's state is a [`Change`], and [`Inner::apply`] is the
//! only code that changes state: a live request decides on changes with the lock held and hands
//! them to [`super::Store::commit`], which applies each and passes it on to its subscribers (the
//! `--state-dir` log as a [`Record`], the `/__admin/events` broadcast as an [`Event`]); a restart
//! turns the logged records back into changes (`restore.rs`) and applies them through the same
//! function. A change that is applied is by construction the change that is logged, so the two
//! cannot drift apart.
//!
//! Two things change without being changes, on purpose: a key's rate window (a count of requests
//! in the last minute, which a restart lets start afresh as a minute of silence would) and the
//! rendered answers kept for terminal jobs (a cache, rebuilt on the next poll).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Inner, Job, SessionId, Webhook, saturating_add, unix_ms};
use crate::events::{Event, StateView};
use crate::job::Timeline;
use crate::persist::{JobRecord, Record, TimelineRecord};
use crate::provider::Provider;
use crate::scenario::Scenario;

/// Names a job across sessions: its provider and the sequence number ids and links derive from.
pub(crate) type JobKey = (Provider, u64);

/// A job forgotten by [`Change::Forgotten`], with what subscribers name it by.
#[derive(Debug, Clone)]
pub(crate) struct Gone {
    /// The job.
    pub(crate) key: JobKey,
    /// Its session.
    pub(crate) session: SessionId,
    /// The id clients polled it with.
    pub(crate) id: Arc<str>,
}

/// One change of state, as decided by a request (or read back from the log).
#[derive(Debug)]
pub(crate) enum Change {
    /// An upload became a job; its media are reachable from the CDN under `tokens`.
    Created {
        /// The whole job, as it starts (or, rebuilt from a log, as it was last written).
        job: Box<Job>,
        /// CDN path tokens naming its media.
        tokens: Vec<String>,
    },
    /// A poll was answered: the job's poll count, when it ended (once it has), when it was used.
    Polled {
        /// The job.
        job: JobKey,
        /// Polls answered, this one included.
        n_polls: u32,
        /// When it became terminal, once a poll saw it so.
        finished_at: Option<SystemTime>,
        /// The poll's time on the job's session clock.
        at: SystemTime,
    },
    /// The admin API replaced a running job's future.
    Forced {
        /// The job.
        job: JobKey,
        /// Its new future (no steps: it ends now).
        timeline: Timeline,
        /// When it ended, if it did.
        finished_at: Option<SystemTime>,
        /// When, on the job's session clock.
        at: SystemTime,
    },
    /// A job's webhook was handed to the sender (the job ended at `finished_at`).
    WebhookSent {
        /// The job.
        job: JobKey,
        /// When it became terminal.
        finished_at: Option<SystemTime>,
    },
    /// The sender is done with a job's webhook (answered, given up on, or dropped).
    WebhookDelivered {
        /// The job.
        job: JobKey,
    },
    /// Jobs idle past the expiry (or whose record never reached the disk), and idle sessions
    /// without jobs, are forgotten.
    Forgotten {
        /// The jobs.
        jobs: Vec<Gone>,
        /// Sessions with no job left.
        sessions: Vec<SessionId>,
    },
    /// The manual server clock moved.
    Clock {
        /// Its reading before, when known (not when read back from a log).
        from: Option<SystemTime>,
        /// Its reading now.
        to: SystemTime,
    },
    /// A session's clock moved.
    SessionClock {
        /// The session.
        session: SessionId,
        /// How far it was ahead of the server's clock.
        from: Duration,
        /// How far it is ahead now.
        to: Duration,
        /// The server clock's reading at the move.
        server_now: SystemTime,
    },
    /// A session's default scenario was set.
    SessionScenario {
        /// The session.
        session: SessionId,
        /// The scenario.
        scenario: Arc<Scenario>,
    },
    /// The server-wide default scenario was set.
    DefaultScenario {
        /// The scenario.
        scenario: Arc<Scenario>,
    },
    /// A Fansly-style job number was handed out in a session.
    JobNumber {
        /// The session.
        session: SessionId,
        /// The provider.
        provider: Provider,
        /// The number the next job gets.
        next: u64,
    },
    /// A sequence number was reserved (they keep counting across resets, so a link from before
    /// a reset can never name a new upload).
    NextSeq {
        /// The provider.
        provider: Provider,
        /// The number the next upload gets.
        next: u64,
    },
    /// An upload was counted under a scenario: upload faults and scripted attempts aim at the
    /// n-th one.
    Attempts {
        /// The session.
        session: SessionId,
        /// The scenario's name.
        scenario: String,
        /// Uploads counted so far.
        count: u32,
    },
    /// An API key's credit total (by the key's SHA-256: the key itself is never kept).
    Credits {
        /// Hex SHA-256 of the key.
        key_sha256: String,
        /// Credits charged so far.
        total: u64,
    },
    /// A session was forgotten: its jobs, media, clock and scenario.
    SessionReset {
        /// The session.
        session: SessionId,
    },
    /// Everything clients did was forgotten.
    Reset,
}

impl Change {
    /// Whether the answer that follows from this change must wait until it is on disk: only a
    /// new job's (its id is a promise that a restart keeps).
    pub(crate) fn is_durable(&self) -> bool {
        matches!(self, Self::Created { .. })
    }
}

impl Inner {
    /// Applies `change`: the only place the store's state changes.
    pub(super) fn apply(&mut self, change: &Change) {
        match change {
            Change::Created { job, tokens } => self.create(job, tokens),
            Change::Polled {
                job,
                n_polls,
                finished_at,
                at,
            } => {
                if let Some(job) = self.by_seq.get_mut(job) {
                    job.n_polls = job.n_polls.max(*n_polls);
                    job.finished_at = job.finished_at.or(*finished_at);
                    job.last_touched = job.last_touched.max(*at);
                }
            }
            Change::Forced {
                job,
                timeline,
                finished_at,
                at: _,
            } => {
                if let Some(job) = self.by_seq.get_mut(job) {
                    job.timeline = timeline.clone();
                    job.finished_at = *finished_at;
                    job.rendered = None;
                }
            }
            Change::WebhookSent { job, finished_at } => {
                if let Some(job) = self.by_seq.get_mut(job) {
                    job.webhook = Webhook::Sent;
                    job.finished_at = job.finished_at.or(*finished_at);
                }
            }
            Change::WebhookDelivered { job } => {
                if let Some(job) = self.by_seq.get_mut(job) {
                    job.webhook = Webhook::Delivered;
                }
            }
            Change::Forgotten { jobs, sessions } => {
                // One pass over the CDN tokens for all of the jobs' media, not one per job.
                let mut gone_media = std::collections::HashSet::new();
                for gone in jobs {
                    let Some(job) = self.by_seq.remove(&gone.key) else {
                        continue;
                    };
                    self.unindex(&job);
                    if let Some(media) = &job.media {
                        gone_media.insert(Arc::as_ptr(media));
                    }
                }
                if !gone_media.is_empty() {
                    self.blobs
                        .retain(|_, (kept, _)| !gone_media.contains(&Arc::as_ptr(kept)));
                }
                for session in sessions {
                    self.sessions.remove(session);
                }
            }
            Change::Clock { to, .. } => self.clock = Some(*to),
            Change::SessionClock { session, to, .. } => {
                self.sessions.entry(Arc::clone(session)).or_default().offset = *to;
            }
            Change::SessionScenario { session, scenario } => {
                self.sessions
                    .entry(Arc::clone(session))
                    .or_default()
                    .scenario = Some(Arc::clone(scenario));
            }
            Change::DefaultScenario { scenario } => {
                self.default_scenario = Some(Arc::clone(scenario));
            }
            Change::JobNumber {
                session,
                provider,
                next,
            } => {
                let state = self.sessions.entry(Arc::clone(session)).or_default();
                let slot = state.next_job.entry(*provider).or_insert(1);
                *slot = (*slot).max(*next);
            }
            Change::NextSeq { provider, next } => {
                let slot = self.next_seq.entry(*provider).or_insert(1);
                *slot = (*slot).max(*next);
            }
            Change::Attempts {
                session,
                scenario,
                count,
            } => {
                let state = self.sessions.entry(Arc::clone(session)).or_default();
                let slot = state.attempts.entry(scenario.clone()).or_default();
                *slot = (*slot).max(*count);
            }
            Change::Credits { key_sha256, total } => {
                self.credits.insert(key_sha256.clone(), *total);
            }
            Change::SessionReset { session } => {
                self.sessions.remove(session);
                self.jobs.remove(session);
                self.blobs.retain(|_, (_, owner)| owner != session);
                self.by_seq.retain(|_, job| job.session != *session);
            }
            Change::Reset => {
                *self = Inner {
                    // Sequence numbers keep counting, so a link from before a reset can never
                    // name a new upload; the manual clock is the server's, not the clients'.
                    next_seq: std::mem::take(&mut self.next_seq),
                    clock: self.clock,
                    default_scenario: self.default_scenario.take(),
                    ..Inner::default()
                };
            }
        }
    }

    /// Adds a job, its links, and what it implies of its session's counters (a log written
    /// before those were recorded on their own still rebuilds them).
    fn create(&mut self, job: &Job, tokens: &[String]) {
        if let Some(media) = &job.media {
            for token in tokens {
                self.blobs
                    .insert(token.clone(), (Arc::clone(media), Arc::clone(&job.session)));
            }
        }
        let state = self.sessions.entry(Arc::clone(&job.session)).or_default();
        state.last_touched = state.last_touched.max(Some(job.last_touched));
        let attempts = state.attempts.entry(job.scenario.name.clone()).or_default();
        *attempts = (*attempts).max(job.attempt);
        if job.provider == Provider::Fansly {
            if let Ok(number) = job.id.parse::<u64>() {
                let next = state.next_job.entry(job.provider).or_insert(1);
                *next = (*next).max(number.saturating_add(1));
            }
        }
        let next_seq = self.next_seq.entry(job.provider).or_insert(1);
        *next_seq = (*next_seq).max(job.seq.saturating_add(1));
        self.index(&job.session, job.provider, Arc::clone(&job.id), job.seq);
        self.by_seq
            .insert((job.provider, job.seq), Box::new(job.clone_state()));
    }
}

impl Job {
    /// The job without its rendered answer (a cache, not state).
    fn clone_state(&self) -> Self {
        Self {
            seq: self.seq,
            session: Arc::clone(&self.session),
            provider: self.provider,
            id: Arc::clone(&self.id),
            account: Arc::clone(&self.account),
            destination: self.destination,
            created_at: self.created_at,
            timeline: self.timeline.clone(),
            n_polls: self.n_polls,
            finished_at: self.finished_at,
            media: self.media.clone(),
            credits_used: self.credits_used,
            scenario: Arc::clone(&self.scenario),
            attempt: self.attempt,
            webhook: self.webhook,
            last_touched: self.last_touched,
            rendered: None,
        }
    }
}

/// The records that log `change` (most changes are one record; forgetting many jobs is one each).
pub(super) fn records(change: &Change, inner: &Inner) -> Vec<Record> {
    let provider = |provider: &Provider| provider.slug().to_owned();
    match change {
        Change::Created { job, tokens } => {
            vec![Record::Job(Box::new(job_record(job, tokens.clone())))]
        }
        Change::Polled {
            job,
            n_polls,
            finished_at,
            at,
        } => vec![Record::Polled {
            provider: provider(&job.0),
            seq: job.1,
            n_polls: *n_polls,
            finished_at_ms: finished_at.map(unix_ms),
            touched_ms: Some(unix_ms(*at)),
        }],
        Change::Forced {
            job,
            timeline,
            finished_at,
            at: _,
        } => vec![Record::Forced {
            provider: provider(&job.0),
            seq: job.1,
            timeline: timeline.into(),
            finished_at_ms: finished_at.map(unix_ms),
        }],
        Change::WebhookSent { job, finished_at } => vec![Record::WebhookSent {
            provider: provider(&job.0),
            seq: job.1,
            finished_at_ms: finished_at.map(unix_ms),
        }],
        Change::WebhookDelivered { job } => vec![Record::WebhookDelivered {
            provider: provider(&job.0),
            seq: job.1,
        }],
        Change::Forgotten { jobs, sessions } => jobs
            .iter()
            .map(|gone| Record::Expired {
                provider: provider(&gone.key.0),
                seq: gone.key.1,
            })
            .chain(sessions.iter().map(|session| Record::SessionExpired {
                session: session.to_string(),
            }))
            .collect(),
        Change::Clock { to, .. } => vec![Record::Clock {
            unix_ms: unix_ms(*to),
        }],
        Change::SessionClock { session, to, .. } => vec![Record::SessionClock {
            session: session.to_string(),
            offset_ms: u64::try_from(to.as_millis()).unwrap_or(u64::MAX),
        }],
        Change::SessionScenario { session, scenario } => vec![Record::SessionScenario {
            session: session.to_string(),
            scenario: scenario.name.clone(),
        }],
        Change::DefaultScenario { scenario } => vec![Record::DefaultScenario {
            scenario: scenario.name.clone(),
        }],
        Change::JobNumber {
            session,
            provider: of,
            next,
        } => vec![Record::JobNumber {
            session: session.to_string(),
            provider: provider(of),
            next: *next,
        }],
        Change::NextSeq { provider: of, next } => vec![Record::NextSeq {
            provider: provider(of),
            next: *next,
        }],
        Change::Attempts {
            session,
            scenario,
            count,
        } => vec![Record::Attempts {
            session: session.to_string(),
            scenario: scenario.clone(),
            count: *count,
        }],
        Change::Credits { key_sha256, total } => vec![Record::Credits {
            key_sha256: key_sha256.clone(),
            total: *total,
        }],
        Change::SessionReset { session } => vec![Record::SessionReset {
            session: session.to_string(),
        }],
        Change::Reset => {
            // What survives a reset in memory must survive it in a log read back from here.
            let mut records = vec![Record::Reset];
            records.extend(inner.clock.map(|at| Record::Clock {
                unix_ms: unix_ms(at),
            }));
            records.extend(inner.default_scenario.as_ref().map(|scenario| {
                Record::DefaultScenario {
                    scenario: scenario.name.clone(),
                }
            }));
            records
        }
    }
}

/// A job as the log keeps it.
pub(super) fn job_record(job: &Job, tokens: Vec<String>) -> JobRecord {
    JobRecord {
        seq: job.seq,
        session: job.session.to_string(),
        provider: job.provider.slug().to_owned(),
        id: job.id.to_string(),
        account: job.account.to_string(),
        vault: job.destination == super::Destination::Vault,
        created_at_ms: unix_ms(job.created_at),
        timeline: TimelineRecord::from(&job.timeline),
        n_polls: job.n_polls,
        finished_at_ms: job.finished_at.map(unix_ms),
        media: job.media.as_deref().and_then(super::restore::media_record),
        credits_used: job.credits_used,
        scenario: job.scenario.name.clone(),
        attempt: job.attempt,
        webhook: match job.webhook {
            Webhook::None => "none",
            Webhook::Pending => "pending",
            Webhook::Sent => "sent",
            Webhook::Delivered => "delivered",
        }
        .to_owned(),
        tokens,
        touched_ms: Some(unix_ms(job.last_touched)),
    }
}

/// What `/__admin/events` subscribers are told of `change`, read after it was applied.
pub(super) fn announce(inner: &Inner, change: &Change, emit: &mut dyn FnMut(Event)) {
    match change {
        Change::Created { job, .. } => emit(Event::JobCreated {
            session: job.session.to_string(),
            provider: job.provider.slug(),
            id: job.id.to_string(),
            state: StateView::from(&job.timeline.state_at(Duration::ZERO, 0)),
        }),
        Change::Polled {
            job, n_polls, at, ..
        } => {
            if let Some(job) = inner.by_seq.get(job) {
                // What the poll answered: the state before this poll was counted.
                let elapsed = at.duration_since(job.created_at).unwrap_or_default();
                let state = job.timeline.state_at(elapsed, n_polls.saturating_sub(1));
                emit(Event::JobPolled {
                    session: job.session.to_string(),
                    provider: job.provider.slug(),
                    id: job.id.to_string(),
                    n_polls: *n_polls,
                    state: StateView::from(&state),
                });
            }
        }
        Change::Forced { job, at, .. } => {
            if let Some(job) = inner.by_seq.get(job) {
                let elapsed = at.duration_since(job.created_at).unwrap_or_default();
                let (session, provider, id) = (
                    job.session.to_string(),
                    job.provider.slug(),
                    job.id.to_string(),
                );
                let state = StateView::from(&job.timeline.state_at(elapsed, job.n_polls));
                emit(if job.timeline.steps().is_empty() {
                    Event::JobForced {
                        session,
                        provider,
                        id,
                        state,
                    }
                } else {
                    Event::JobPinned {
                        session,
                        provider,
                        id,
                        state,
                    }
                });
            }
        }
        Change::Forgotten { jobs, .. } => {
            for gone in jobs {
                emit(Event::JobForgotten {
                    session: gone.session.to_string(),
                    provider: gone.key.0.slug(),
                    id: gone.id.to_string(),
                });
            }
        }
        Change::Clock {
            from: Some(from),
            to,
        } => announce_clock(inner, None, *from, *to, emit),
        Change::SessionClock {
            session,
            from,
            to,
            server_now,
        } => announce_clock(
            inner,
            Some(session),
            saturating_add(*server_now, *from),
            saturating_add(*server_now, *to),
            emit,
        ),
        Change::SessionReset { session } => emit(Event::SessionReset {
            session: Some(session.to_string()),
        }),
        Change::Reset => emit(Event::SessionReset { session: None }),
        Change::SessionScenario { session, scenario } => emit(Event::ScenarioSet {
            session: Some(session.to_string()),
            scenario: scenario.name.clone(),
        }),
        Change::DefaultScenario { scenario } => emit(Event::ScenarioSet {
            session: None,
            scenario: scenario.name.clone(),
        }),
        Change::Credits { key_sha256, total } => emit(Event::CreditsCharged {
            key_sha256: key_sha256.clone(),
            total: *total,
        }),
        // Bookkeeping no subscriber watches: numbering, attempt counts, and a webhook handed to
        // the sender (its attempts are `webhook_attempted`).
        Change::Clock { from: None, .. }
        | Change::WebhookSent { .. }
        | Change::WebhookDelivered { .. }
        | Change::JobNumber { .. }
        | Change::NextSeq { .. }
        | Change::Attempts { .. } => {}
    }
}

/// Announces a clock move, then every job (of `session`, or all) whose state the move changed:
/// jobs change by the clock, so this is where their changes happen. `before` and `after` are
/// readings of the moved clock (the session's, or the server's).
fn announce_clock(
    inner: &Inner,
    session: Option<&SessionId>,
    before: SystemTime,
    after: SystemTime,
    emit: &mut dyn FnMut(Event),
) {
    let (now, unix_ms) = crate::events::time(after);
    emit(Event::ClockMoved {
        session: session.map(ToString::to_string),
        now,
        unix_ms,
    });
    for job in inner.by_seq.values() {
        if session.is_some_and(|session| *session != job.session) {
            continue;
        }
        // A session's clock is the server's plus its offset: only a server move needs it.
        let offset = match session {
            Some(_) => Duration::ZERO,
            None => inner.offset(&job.session),
        };
        let state_at = |at: SystemTime| {
            let elapsed = saturating_add(at, offset)
                .duration_since(job.created_at)
                .unwrap_or(Duration::ZERO);
            job.timeline.state_at(elapsed, job.n_polls)
        };
        let (was, is) = (state_at(before), state_at(after));
        if was != is {
            emit(Event::JobChanged {
                session: job.session.to_string(),
                provider: job.provider.slug(),
                id: job.id.to_string(),
                from: crate::events::state_parts(&was).0,
                state: StateView::from(&is),
            });
        }
    }
}
