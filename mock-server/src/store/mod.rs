//! All mutable state: jobs, stored media, rate windows and credits, behind one `std::sync::Mutex`.
//!
//! Every method that changes state decides on a [`Change`] with the lock held and commits it:
//! `change.rs` applies it (the only code that mutates) and hands it to the state log and the
//! event broadcast; `restore.rs` rebuilds a store by applying the logged changes again.
//!
//! The lock is only ever held for map look-ups and counter bumps, never across an `.await` (the
//! reasoning of mini-redis's `db.rs`) nor a disk write: uploads are streamed to disk before a
//! job is inserted, the log is written by its own thread, and responses are rendered from a
//! [`Polled`] snapshot after the lock is released.
//!
//! Ids are derived from a per-provider sequence number and a per-server nonce, so a run with a
//! fixed nonce hands out the same ids every time.

mod change;
mod restore;

pub(crate) use restore::Restore;

use std::collections::BTreeMap;

/// The store's maps hash with foldhash rather than SipHash: a poll hashes five short keys (session,
/// job id, API key), and SipHash was 4 % of a poll's instructions. foldhash is still seeded per
/// process, so clients cannot choose keys that collide.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

use crate::clock::saturating_add;
use crate::job::{JobState, Timeline};
use crate::media::MediaInfo;
use crate::provider::Provider;
use crate::scenario::Scenario;
use crate::upload::Received;
use change::{Change, Gone, JobKey};

impl From<Received> for StoredMedia {
    /// Keeps a received file for the CDN; a nameless upload is named after its sniffed type.
    fn from(file: Received) -> Self {
        let extension = file.info.extension;
        Self {
            file_name: file
                .file_name
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| format!("upload.{extension}")),
            path: file.path,
            size: file.size,
            sha256: file.sha256,
            info: file.info,
            _reservation: Some(file.reservation),
        }
    }
}

/// A test's private corner of the server, named by the `X-Mock-Session` header.
pub(crate) type SessionId = Arc<str>;

/// The session of requests that name none.
pub(crate) const DEFAULT_SESSION: &str = "default";

/// What a session owns besides its jobs.
#[derive(Debug, Default)]
struct SessionState {
    /// How far this session's clock is ahead of the server's.
    offset: Duration,
    /// The scenario its uploads follow when they name none.
    scenario: Option<Arc<Scenario>>,
    /// Fansly job numbers are per session, so each test sees "1", "2", ...
    next_job: HashMap<Provider, u64>,
    /// Scenario name → uploads made under it in this session.
    attempts: HashMap<String, u32>,
    /// The last time anything used it (server clock); idle sessions expire.
    last_touched: Option<SystemTime>,
}

/// One row of [`Store::sessions`].
#[derive(Debug, Clone)]
pub(crate) struct SessionSummary {
    /// Its name.
    pub(crate) id: SessionId,
    /// Jobs it holds.
    pub(crate) n_jobs: usize,
    /// How far its clock is ahead of the server's.
    pub(crate) offset: Duration,
    /// Its own default scenario, if set.
    pub(crate) scenario: Option<String>,
    /// Uploads counted per scenario: the next upload under one is attempt count + 1, which is
    /// what upload faults aim at.
    pub(crate) attempts: BTreeMap<String, u32>,
}

/// An uploaded file kept for the CDN.
#[derive(Debug)]
pub(crate) struct StoredMedia {
    /// The bytes on disk; deleted when the last job referring to them is dropped.
    pub(crate) path: tempfile::TempPath,
    /// The client's file name, verbatim.
    pub(crate) file_name: String,
    /// Byte count.
    pub(crate) size: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// What the bytes are.
    pub(crate) info: MediaInfo,
    /// Its bytes held against the disk quota, given back when the media goes.
    _reservation: Option<crate::upload::Reservation>,
}

/// Which OnlyFans endpoint took the upload; it decides the completed `media` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    /// `POST /api/{account}/media/upload`.
    Cdn,
    /// `POST /api/{account}/media/vault`.
    Vault,
}

/// A job as the store keeps it.
#[derive(Debug)]
pub(crate) struct Job {
    /// Per-provider sequence number across sessions, from 1; ids and CDN tokens derive from it.
    pub(crate) seq: u64,
    /// The session that owns it.
    pub(crate) session: SessionId,
    /// Which provider's API created it.
    pub(crate) provider: Provider,
    /// The id clients poll with (shared: every poll's snapshot and journal note points at it).
    pub(crate) id: Arc<str>,
    /// The account path segment it was uploaded under.
    pub(crate) account: Arc<str>,
    /// Which endpoint took it (OnlyFans only; Fansly has one).
    pub(crate) destination: Destination,
    /// When the upload finished arriving.
    pub(crate) created_at: SystemTime,
    /// The lifecycle it follows.
    pub(crate) timeline: Timeline,
    /// Status polls answered so far.
    pub(crate) n_polls: u32,
    /// When it became terminal, once a poll has seen that.
    pub(crate) finished_at: Option<SystemTime>,
    /// The upload, absent when a `file_url` could not be fetched.
    pub(crate) media: Option<Arc<StoredMedia>>,
    /// Credits charged for it (OnlyFans).
    pub(crate) credits_used: u64,
    /// The scenario it follows: its faults aim at this job's polls.
    pub(crate) scenario: Arc<Scenario>,
    /// Its upload's number under that scenario in its session, from 1.
    pub(crate) attempt: u32,
    /// Whether a webhook announces its end (OnlyFans async uploads), and whether it has been sent.
    pub(crate) webhook: Webhook,
    /// The last upload or poll, on its session's clock: idle jobs expire.
    pub(crate) last_touched: SystemTime,
    /// The rendered answer of a terminal job, which never changes again: signing its links and
    /// serializing its media once instead of on every poll.
    pub(crate) rendered: Option<Arc<Rendered>>,
}

/// A terminal job's answer, as rendered for one origin (links carry the origin).
#[derive(Debug)]
pub(crate) struct Rendered {
    /// The origin the links point at.
    pub(crate) origin: String,
    /// The JSON bytes.
    pub(crate) bytes: bytes::Bytes,
}

impl Job {
    /// The state at `now` (on the job's session clock), and when the job ended if it has: the
    /// first time it is seen terminal fixes that moment, which is what link expiry counts from.
    fn seen_at(&self, now: SystemTime) -> (JobState, Option<SystemTime>) {
        let elapsed = now
            .duration_since(self.created_at)
            .unwrap_or(Duration::ZERO);
        let state = self.timeline.state_at(elapsed, self.n_polls);
        let finished_at = self.finished_at.or_else(|| {
            state
                .is_terminal()
                .then(|| saturating_add(self.created_at, self.timeline.finished_after(elapsed)))
        });
        (state, finished_at)
    }

    /// What a reader outside the lock needs, with `state` as observed.
    fn snapshot(&self, state: JobState) -> Polled {
        Polled {
            poll_number: self.n_polls,
            attempt: self.attempt,
            session: Arc::clone(&self.session),
            scenario: Arc::clone(&self.scenario),
            seq: self.seq,
            id: Arc::clone(&self.id),
            account: Arc::clone(&self.account),
            destination: self.destination,
            state,
            finished_at: self.finished_at,
            media: self.media.clone(),
            credits_used: self.credits_used,
            created_at: self.created_at,
            rendered: self.rendered.clone(),
        }
    }
}

/// A job's webhook, if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Webhook {
    /// No webhook for this job.
    None,
    /// One is due when the job ends.
    Pending,
    /// It has been handed to the sender, which is still trying: a restart hands it over again.
    Sent,
    /// The sender is done with it (answered, given up on, or dropped by the scenario).
    Delivered,
}

/// What one poll saw, copied out so the lock can be released before rendering.
#[derive(Debug, Clone)]
pub(crate) struct Polled {
    /// The job's sequence number.
    pub(crate) seq: u64,
    /// The id clients poll with.
    pub(crate) id: Arc<str>,
    /// The account it was uploaded under.
    pub(crate) account: Arc<str>,
    /// Which endpoint took it.
    pub(crate) destination: Destination,
    /// The state this poll reports.
    pub(crate) state: JobState,
    /// When it became terminal.
    pub(crate) finished_at: Option<SystemTime>,
    /// The upload.
    pub(crate) media: Option<Arc<StoredMedia>>,
    /// Credits charged.
    pub(crate) credits_used: u64,
    /// When the upload arrived.
    pub(crate) created_at: SystemTime,
    /// This poll's number within the job, from 1.
    pub(crate) poll_number: u32,
    /// The session that owns the job.
    pub(crate) session: SessionId,
    /// The job's upload number under its scenario, from 1.
    pub(crate) attempt: u32,
    /// The scenario the job follows.
    pub(crate) scenario: Arc<Scenario>,
    /// The answer rendered when the job was last seen terminal, if any.
    pub(crate) rendered: Option<Arc<Rendered>>,
}

impl Polled {
    /// The cached answer, if it was rendered for an origin `is_origin` accepts.
    pub(crate) fn rendered_for(&self, is_origin: impl Fn(&str) -> bool) -> Option<bytes::Bytes> {
        self.rendered
            .as_ref()
            .filter(|rendered| is_origin(&rendered.origin))
            .map(|rendered| rendered.bytes.clone())
    }
}

/// What a new job needs.
#[derive(Debug)]
pub(crate) struct NewJob {
    /// The session that owns it.
    pub(crate) session: SessionId,
    /// Which provider.
    pub(crate) provider: Provider,
    /// The account path segment.
    pub(crate) account: String,
    /// Which endpoint.
    pub(crate) destination: Destination,
    /// Its lifecycle.
    pub(crate) timeline: Timeline,
    /// The upload, if it arrived.
    pub(crate) media: Option<Arc<StoredMedia>>,
    /// Credits to charge.
    pub(crate) credits_used: u64,
    /// The API key to charge them to.
    pub(crate) api_key: String,
    /// The scenario it follows.
    pub(crate) scenario: Arc<Scenario>,
    /// Its upload's number under that scenario, from 1.
    pub(crate) attempt: u32,
    /// Whether a webhook announces its end.
    pub(crate) has_webhook: bool,
}

/// The shared state.
#[derive(Debug)]
pub(crate) struct Store {
    nonce: [u8; 16],
    inner: Mutex<Inner>,
    /// The `--state-dir` log every change is appended to, if persisting.
    log: Option<crate::persist::Log>,
    /// Jobs untouched this long are forgotten.
    idle: Duration,
    /// How often idle jobs are looked for: a sixteenth of `idle`, at least a second.
    sweep_every: Duration,
    /// Where each change is announced (`GET /__admin/events`), from here where it is applied.
    events: crate::events::Events,
}

#[derive(Debug, Default)]
struct Inner {
    /// Session → per provider (Fansly, OnlyFans): id → sequence number. Nested so that a poll
    /// looks a job up by borrowed `&str`s, without building an owned key.
    jobs: HashMap<SessionId, [HashMap<Arc<str>, u64>; 2]>,
    /// Jobs by (provider, sequence): a `BTreeMap` keeps listings in upload order. Boxed, because
    /// B-tree nodes filled by ascending keys stay about half empty, and an empty slot then costs
    /// a pointer instead of a whole job.
    by_seq: BTreeMap<(Provider, u64), Box<Job>>,
    next_seq: HashMap<Provider, u64>,
    /// CDN path token → media and the session whose clock judges its links.
    blobs: HashMap<String, (Arc<StoredMedia>, SessionId)>,
    /// Per-session state.
    sessions: HashMap<SessionId, SessionState>,
    /// Per provider (Fansly, OnlyFans): API key → requests in the last minute, per second.
    windows: [HashMap<String, RateWindow>; 2],
    /// SHA-256 of an API key (hex) → credits charged: the key itself is never kept, in memory
    /// or on disk.
    credits: HashMap<String, u64>,
    /// The manual server clock's reading as last recorded (restored with the state).
    clock: Option<SystemTime>,
    /// The server-wide default scenario the admin API set, over the startup one.
    default_scenario: Option<Arc<Scenario>>,
    /// When idle jobs are next looked for (server clock): one comparison on every poll.
    next_sweep: Option<SystemTime>,
    /// Jobs holding a rendered answer, oldest first (entries of forgotten jobs linger until
    /// popped): at most [`MAX_RENDERED`] answers are kept, so polling many finished jobs costs
    /// CPU again rather than memory for a day.
    rendered_order: std::collections::VecDeque<(Provider, u64)>,
}

/// Rendered answers kept at once. A client fleet polls its newest jobs; a few thousand cached
/// answers (about 1.5 KiB each) cover them, and the rest are rendered again when asked.
const MAX_RENDERED: usize = 4096;

impl Inner {
    /// How far `session`'s clock is ahead of the server's.
    fn offset(&self, session: &str) -> Duration {
        self.sessions
            .get(session)
            .map_or(Duration::ZERO, |state| state.offset)
    }

    /// The sequence number of `session`'s job `id`, looked up without allocating.
    fn seq_of(&self, session: &str, provider: Provider, id: &str) -> Option<u64> {
        self.jobs.get(session)?[provider_slot(provider)]
            .get(id)
            .copied()
    }

    /// Makes a job findable by its session and id.
    fn index(&mut self, session: &SessionId, provider: Provider, id: Arc<str>, seq: u64) {
        self.jobs.entry(Arc::clone(session)).or_default()[provider_slot(provider)].insert(id, seq);
    }

    /// Forgets a job's id (its session's index goes with its last job).
    fn unindex(&mut self, job: &Job) {
        if let Some(by_provider) = self.jobs.get_mut(&job.session) {
            by_provider[provider_slot(job.provider)].remove(&job.id);
            if by_provider.iter().all(HashMap::is_empty) {
                self.jobs.remove(&job.session);
            }
        }
    }
}

/// The index of a provider in per-provider arrays.
fn provider_slot(provider: Provider) -> usize {
    usize::from(provider == Provider::OnlyFans)
}

impl Store {
    /// An empty store; `nonce` seeds every id it derives.
    pub(crate) fn new(nonce: [u8; 16]) -> Self {
        Self {
            nonce,
            inner: Mutex::new(Inner::default()),
            log: None,
            idle: Duration::MAX,
            sweep_every: Duration::MAX / 16,
            events: crate::events::Events::default(),
        }
    }

    /// Announces changes on `events` (the server's channel, which `/__admin/events` reads).
    pub(crate) fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = events;
        self
    }

    /// Forgets jobs (and sessions) untouched for `idle`.
    pub(crate) fn with_idle_expiry(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self.sweep_every = (idle / 16).max(Duration::from_secs(1));
        self
    }

    /// Starts appending every later change to `log`.
    pub(crate) fn with_log(mut self, log: crate::persist::Log) -> Self {
        self.log = Some(log);
        self
    }

    /// Applies `change` and hands it to the subscribers: the state log (queued in the lock's
    /// order, written off the async workers) and the `/__admin/events` broadcast. For a durable
    /// change with a log, returns what resolves once it is on disk.
    fn commit(&self, inner: &mut Inner, change: Change) -> Option<crate::persist::Pending> {
        let mut pending = None;
        if let Some(log) = &self.log {
            let durable = change.is_durable();
            for record in change::records(&change, inner) {
                pending = log.append(record, durable).or(pending);
            }
        }
        inner.apply(&change);
        if self.events.is_watched() {
            change::announce(inner, &change, &mut |event| self.events.emit(|| event));
        }
        pending
    }

    /// Waits until every change so far is on disk (with `--state-dir`): a clean shutdown does, so
    /// a restart in the same directory reads everything this process answered.
    pub(crate) async fn sync(&self) -> std::io::Result<()> {
        match &self.log {
            Some(log) => log.sync().durable().await,
            None => Ok(()),
        }
    }

    /// Forgets jobs idle for longer than the expiry, judged on each job's session clock, and idle
    /// sessions without jobs, at most every sixteenth of the expiry. Called with the lock held by
    /// the paths that add work.
    fn sweep(&self, inner: &mut Inner, server_now: SystemTime) {
        if inner.next_sweep.is_some_and(|next| server_now < next) {
            return;
        }
        inner.next_sweep = Some(saturating_add(server_now, self.sweep_every));
        let jobs: Vec<Gone> = inner
            .by_seq
            .values()
            .filter(|job| {
                let now = saturating_add(server_now, inner.offset(&job.session));
                now.duration_since(job.last_touched).unwrap_or_default() >= self.idle
            })
            .map(|job| Gone {
                key: (job.provider, job.seq),
                session: Arc::clone(&job.session),
                id: Arc::clone(&job.id),
            })
            .collect();
        let gone: std::collections::HashSet<JobKey> = jobs.iter().map(|gone| gone.key).collect();
        let busy: std::collections::HashSet<&SessionId> = inner
            .by_seq
            .values()
            .filter(|job| !gone.contains(&(job.provider, job.seq)))
            .map(|job| &job.session)
            .collect();
        let sessions: Vec<SessionId> = inner
            .sessions
            .iter()
            .filter(|(id, state)| {
                !busy.contains(id)
                    && saturating_add(server_now, state.offset)
                        .duration_since(state.last_touched.unwrap_or(server_now))
                        .unwrap_or_default()
                        >= self.idle
            })
            .map(|(id, _)| Arc::clone(id))
            .collect();
        if !jobs.is_empty() || !sessions.is_empty() {
            self.commit(inner, Change::Forgotten { jobs, sessions });
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every later request would.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A hex token unique to (provider, seq, label) on this server.
    pub(crate) fn token(
        &self,
        provider: Provider,
        seq: u64,
        label: &str,
        hex_len: usize,
    ) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.nonce);
        hasher.update(provider.slug().as_bytes());
        hasher.update(seq.to_be_bytes());
        hasher.update(label.as_bytes());
        let mut token = hex::encode(hasher.finalize());
        token.truncate(hex_len);
        token
    }

    /// Reserves the next sequence number for `provider`.
    pub(crate) fn next_seq(&self, provider: Provider) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq.get(&provider).copied().unwrap_or(1);
        self.commit(
            &mut inner,
            Change::NextSeq {
                provider,
                next: seq + 1,
            },
        );
        seq
    }

    /// Inserts a job under `id`, with its media reachable from the CDN under every token in
    /// `tokens`. With `--state-dir`, returns once the job's record is on disk: a job whose record
    /// could not be written (a full disk) is refused and forgotten, its credits given back and
    /// its stored file deleted, so nothing unacknowledged stays behind.
    pub(crate) async fn insert(
        &self,
        seq: u64,
        id: String,
        job: NewJob,
        now: SystemTime,
        tokens: &[String],
    ) -> std::io::Result<()> {
        let key = (job.provider, seq);
        let key_sha256 = (job.credits_used > 0).then(|| key_digest(&job.api_key));
        let charged = job.credits_used;
        let id: Arc<str> = id.into();
        let session = Arc::clone(&job.session);
        let pending = {
            let mut inner = self.lock();
            // Charged first: the job's durable record then carries the charge to disk with it.
            if let Some(key_sha256) = &key_sha256 {
                let total = inner.credits.get(key_sha256).copied().unwrap_or(0) + charged;
                self.commit(
                    &mut inner,
                    Change::Credits {
                        key_sha256: key_sha256.clone(),
                        total,
                    },
                );
            }
            let pending = self.commit(
                &mut inner,
                Change::Created {
                    job: Box::new(Job {
                        seq,
                        session: job.session,
                        provider: job.provider,
                        id: Arc::clone(&id),
                        account: job.account.into(),
                        destination: job.destination,
                        created_at: now,
                        timeline: job.timeline,
                        n_polls: 0,
                        finished_at: None,
                        media: job.media,
                        credits_used: job.credits_used,
                        scenario: job.scenario,
                        attempt: job.attempt,
                        webhook: if job.has_webhook {
                            Webhook::Pending
                        } else {
                            Webhook::None
                        },
                        last_touched: now,
                        rendered: None,
                    }),
                    tokens: tokens.to_vec(),
                },
            );
            let offset = inner.offset(&session);
            self.sweep(&mut inner, now.checked_sub(offset).unwrap_or(now));
            pending
        };
        let Some(pending) = pending else {
            return Ok(());
        };
        let Err(err) = pending.durable().await else {
            return Ok(());
        };
        let mut inner = self.lock();
        if let Some(key_sha256) = key_sha256 {
            let total = inner
                .credits
                .get(&key_sha256)
                .copied()
                .unwrap_or(0)
                .saturating_sub(charged);
            self.commit(&mut inner, Change::Credits { key_sha256, total });
        }
        self.commit(
            &mut inner,
            Change::Forgotten {
                jobs: vec![Gone { key, session, id }],
                sessions: Vec::new(),
            },
        );
        Err(err)
    }

    /// Keeps a terminal job's rendered answer for later polls from the same origin.
    pub(crate) fn keep_rendered(
        &self,
        provider: Provider,
        seq: u64,
        origin: &str,
        bytes: bytes::Bytes,
    ) {
        // A copy of exactly its length: the serializer's buffer has up to twice the room, which
        // every kept job would hold for a day.
        let bytes = bytes::Bytes::copy_from_slice(&bytes);
        let mut inner = self.lock();
        let Some(job) = inner.by_seq.get_mut(&(provider, seq)) else {
            return;
        };
        let first = job.rendered.is_none();
        job.rendered = Some(Arc::new(Rendered {
            origin: origin.to_owned(),
            bytes,
        }));
        if first {
            inner.rendered_order.push_back((provider, seq));
            while inner.rendered_order.len() > MAX_RENDERED {
                let Some(oldest) = inner.rendered_order.pop_front() else {
                    break;
                };
                if let Some(job) = inner.by_seq.get_mut(&oldest) {
                    job.rendered = None;
                }
            }
        }
    }

    /// Answers one status poll, under the lock the caller holds: computes the state at `now`,
    /// counts the poll, and records when the job became terminal. `account` must match for
    /// providers that scope jobs by account.
    fn poll(
        &self,
        inner: &mut Inner,
        session: &SessionId,
        provider: Provider,
        id: &str,
        account: Option<&str>,
        now: SystemTime,
    ) -> Option<Polled> {
        let seq = inner.seq_of(session, provider, id)?;
        let job = inner.by_seq.get(&(provider, seq))?;
        if account.is_some_and(|account| account != &*job.account) {
            return None;
        }
        let (state, finished_at) = job.seen_at(now);
        let n_polls = job.n_polls.saturating_add(1);
        // What the poll answers is the job as the change leaves it: taken here, before the
        // change is applied, it saves looking the job up again.
        let mut polled = job.snapshot(state);
        polled.poll_number = n_polls;
        polled.finished_at = finished_at;
        self.commit(
            inner,
            Change::Polled {
                job: (provider, seq),
                n_polls,
                finished_at,
                at: now,
            },
        );
        // A session's clock is never behind the server's: before the next sweep on the session's
        // clock is before it on the server's, and the session's offset need not be looked up.
        if inner.next_sweep.is_none_or(|next| now >= next) {
            let offset = inner.offset(session);
            self.sweep(inner, now.checked_sub(offset).unwrap_or(now));
        }
        Some(polled)
    }

    /// Jobs whose webhook is due (they are terminal on their session's clock), marked as sent,
    /// with what a poll would see (no poll is counted).
    pub(crate) fn due_webhooks(&self, server_now: SystemTime) -> Vec<Polled> {
        let mut inner = self.lock();
        let mut due = Vec::new();
        let pending: Vec<JobKey> = inner
            .by_seq
            .values()
            .filter(|job| job.webhook == Webhook::Pending)
            .map(|job| (job.provider, job.seq))
            .collect();
        for key in pending {
            let Some(job) = inner.by_seq.get(&key) else {
                continue;
            };
            let now = saturating_add(server_now, inner.offset(&job.session));
            let (state, finished_at) = job.seen_at(now);
            if !state.is_terminal() {
                continue;
            }
            self.commit(
                &mut inner,
                Change::WebhookSent {
                    job: key,
                    finished_at,
                },
            );
            if let Some(job) = inner.by_seq.get(&key) {
                due.push(job.snapshot(state));
            }
        }
        due
    }

    /// The sender is done with job `seq`'s webhook: a restart must not send it again.
    pub(crate) fn webhook_delivered(&self, provider: Provider, seq: u64) {
        let mut inner = self.lock();
        if inner
            .by_seq
            .get(&(provider, seq))
            .is_some_and(|job| job.webhook == Webhook::Sent)
        {
            self.commit(
                &mut inner,
                Change::WebhookDelivered {
                    job: (provider, seq),
                },
            );
        }
    }

    /// Replaces a running job's future with `timeline` from `now`: a terminal outcome ends it now,
    /// a pinned step holds it there. A terminal job is refused: what a client saw as final stays so.
    pub(crate) fn force(
        &self,
        session: &SessionId,
        provider: Provider,
        id: &str,
        forced: Timeline,
        now: SystemTime,
    ) -> Result<(), ForceError> {
        let mut inner = self.lock();
        let seq = inner
            .seq_of(session, provider, id)
            .ok_or(ForceError::NotFound)?;
        let job = inner
            .by_seq
            .get(&(provider, seq))
            .ok_or(ForceError::NotFound)?;
        let elapsed = now.duration_since(job.created_at).unwrap_or(Duration::ZERO);
        if job.finished_at.is_some() || job.timeline.state_at(elapsed, job.n_polls).is_terminal() {
            return Err(ForceError::AlreadyTerminal);
        }
        let finished_at = if forced.steps().is_empty() {
            Some(now)
        } else {
            job.finished_at
        };
        self.commit(
            &mut inner,
            Change::Forced {
                job: (provider, seq),
                timeline: forced,
                finished_at,
                at: now,
            },
        );
        Ok(())
    }

    /// The media a CDN path token points at, and the session that owns it.
    pub(crate) fn media(&self, token: &str) -> Option<(Arc<StoredMedia>, SessionId)> {
        self.lock().blobs.get(token).cloned()
    }

    /// The media of job `seq`, and the session that owns it: for links whose path names the job
    /// (Fansly's media ids), which need no token entry of their own.
    pub(crate) fn media_of_job(
        &self,
        provider: Provider,
        seq: u64,
    ) -> Option<(Arc<StoredMedia>, SessionId)> {
        let inner = self.lock();
        let job = inner.by_seq.get(&(provider, seq))?;
        Some((Arc::clone(job.media.as_ref()?), Arc::clone(&job.session)))
    }

    /// The next Fansly-style job number (1, 2, ...) in `session`.
    pub(crate) fn next_job_number(&self, session: &SessionId, provider: Provider) -> u64 {
        let mut inner = self.lock();
        let number = inner
            .sessions
            .get(session)
            .and_then(|state| state.next_job.get(&provider).copied())
            .unwrap_or(1);
        self.commit(
            &mut inner,
            Change::JobNumber {
                session: Arc::clone(session),
                provider,
                next: number + 1,
            },
        );
        number
    }

    /// `server_now` as `session`'s clock reads it.
    pub(crate) fn session_now(&self, session: &SessionId, server_now: SystemTime) -> SystemTime {
        saturating_add(server_now, self.lock().offset(session))
    }

    /// Moves `session`'s clock forward by `by`, leaving every other session's alone.
    pub(crate) fn advance_session(
        &self,
        session: &SessionId,
        by: Duration,
        server_now: SystemTime,
    ) -> Duration {
        let mut inner = self.lock();
        let from = inner.offset(session);
        let to = from.saturating_add(by);
        self.commit(
            &mut inner,
            Change::SessionClock {
                session: Arc::clone(session),
                from,
                to,
                server_now,
            },
        );
        to
    }

    /// The scenario an upload in `session` follows when it names none: the session's own, else
    /// the server-wide one the admin API set, if either was (one lock for both: every upload asks).
    pub(crate) fn scenario_for(&self, session: &SessionId) -> Option<Arc<Scenario>> {
        let inner = self.lock();
        inner
            .sessions
            .get(session)
            .and_then(|state| state.scenario.clone())
            .or_else(|| inner.default_scenario.clone())
    }

    /// The server-wide default scenario the admin API set, if it did.
    pub(crate) fn default_scenario(&self) -> Option<Arc<Scenario>> {
        self.lock().default_scenario.clone()
    }

    /// Sets the server-wide default scenario (sessions with their own keep theirs).
    pub(crate) fn set_default_scenario(&self, scenario: Arc<Scenario>) {
        let mut inner = self.lock();
        self.commit(&mut inner, Change::DefaultScenario { scenario });
    }

    /// Sets `session`'s own default scenario.
    pub(crate) fn set_session_scenario(&self, session: &SessionId, scenario: Arc<Scenario>) {
        let mut inner = self.lock();
        self.commit(
            &mut inner,
            Change::SessionScenario {
                session: Arc::clone(session),
                scenario,
            },
        );
    }

    /// Every session that has jobs or state.
    pub(crate) fn sessions(&self) -> Vec<SessionSummary> {
        let inner = self.lock();
        let mut ids: Vec<SessionId> = inner.sessions.keys().cloned().collect();
        for job in inner.by_seq.values() {
            if !ids.contains(&job.session) {
                ids.push(Arc::clone(&job.session));
            }
        }
        ids.sort();
        ids.into_iter()
            .map(|id| {
                let state = inner.sessions.get(&id);
                SessionSummary {
                    n_jobs: inner
                        .by_seq
                        .values()
                        .filter(|job| job.session == id)
                        .count(),
                    offset: state.map_or(Duration::ZERO, |state| state.offset),
                    scenario: state
                        .and_then(|state| state.scenario.as_ref().map(|s| s.name.clone())),
                    attempts: state.map_or_else(BTreeMap::new, |state| {
                        state
                            .attempts
                            .iter()
                            .map(|(name, count)| (name.clone(), *count))
                            .collect()
                    }),
                    id,
                }
            })
            .collect()
    }

    /// Forgets everything clients did: every session, job, stored file, rate window and credit.
    /// Returns how many jobs went.
    pub(crate) fn reset(&self) -> usize {
        let mut inner = self.lock();
        let n_jobs = inner.by_seq.len();
        self.commit(&mut inner, Change::Reset);
        n_jobs
    }

    /// Sets `session`'s clock to `to`, which must not be before its current reading.
    pub(crate) fn set_session_clock(
        &self,
        session: &SessionId,
        server_now: SystemTime,
        to: SystemTime,
    ) -> Result<(), SystemTime> {
        let mut inner = self.lock();
        let from = inner.offset(session);
        let now = saturating_add(server_now, from);
        if to < now {
            return Err(now);
        }
        self.commit(
            &mut inner,
            Change::SessionClock {
                session: Arc::clone(session),
                from,
                to: from + to.duration_since(now).unwrap_or_default(),
                server_now,
            },
        );
        Ok(())
    }

    /// Records that the manual server clock moved from `before` to `at`, and announces it.
    pub(crate) fn record_clock(&self, before: SystemTime, at: SystemTime) {
        let mut inner = self.lock();
        self.commit(
            &mut inner,
            Change::Clock {
                from: Some(before),
                to: at,
            },
        );
    }

    /// Forgets a session: its jobs, their stored media, its clock offset and its scenario.
    /// Returns how many jobs went.
    pub(crate) fn reset_session(&self, session: &SessionId) -> usize {
        let mut inner = self.lock();
        let n_jobs = inner
            .by_seq
            .values()
            .filter(|job| job.session == *session)
            .count();
        self.commit(
            &mut inner,
            Change::SessionReset {
                session: Arc::clone(session),
            },
        );
        n_jobs
    }

    /// A provider request arriving: the time on its session's clock, and `key`'s one-minute
    /// sliding window with this request counted. One lock for both, since every provider request
    /// needs them. The window is traffic, not state (see `change.rs`): counted here, not logged.
    pub(crate) fn arrive(
        &self,
        provider: Provider,
        key: &str,
        session: &SessionId,
        server_now: SystemTime,
    ) -> (SystemTime, Window) {
        Self::arrive_locked(&mut self.lock(), provider, key, session, server_now)
    }

    /// A status poll arriving: [`Store::arrive`], then the poll unless the window is over
    /// `limit` ([`Window::is_over`]), under one lock: two workers polling at once meet on the
    /// store's lock once per request instead of twice. A poll refused for its rate is not
    /// counted, as when the two are asked for one after the other.
    pub(crate) fn arrive_polling(
        &self,
        provider: Provider,
        key: &str,
        session: &SessionId,
        server_now: SystemTime,
        poll: PollOf<'_>,
        limit: Option<u32>,
    ) -> (SystemTime, Window, Option<Polled>) {
        let mut inner = self.lock();
        let (now, window) = Self::arrive_locked(&mut inner, provider, key, session, server_now);
        let polled = if window.is_over(limit) {
            None
        } else {
            self.poll(&mut inner, session, provider, poll.id, poll.account, now)
        };
        (now, window, polled)
    }

    fn arrive_locked(
        inner: &mut Inner,
        provider: Provider,
        key: &str,
        session: &SessionId,
        server_now: SystemTime,
    ) -> (SystemTime, Window) {
        let now = saturating_add(server_now, inner.offset(session));
        let now_sec = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let windows = &mut inner.windows[provider_slot(provider)];
        // Looked up by reference first: the hot path allocates no key.
        if let Some(window) = windows.get_mut(key) {
            return (now, window.count(now_sec));
        }
        if windows.len() >= MAX_RATE_WINDOWS {
            // Keys are the client's to invent: forget the idle windows, and if every one is busy,
            // all of them (their counts restart) rather than grow without bound.
            windows.retain(|_, window| !window.is_idle(now_sec));
            if windows.len() >= MAX_RATE_WINDOWS {
                windows.clear();
            }
        }
        let window = windows.entry(key.to_owned()).or_default().count(now_sec);
        (now, window)
    }

    /// Counts an upload under `scenario` and returns its number, from 1: the n-th upload is what
    /// upload faults and scripted attempts aim at.
    pub(crate) fn next_attempt(&self, session: &SessionId, scenario: &str) -> u32 {
        let mut inner = self.lock();
        let count = inner
            .sessions
            .get(session)
            .and_then(|state| state.attempts.get(scenario).copied())
            .unwrap_or(0)
            .saturating_add(1);
        self.commit(
            &mut inner,
            Change::Attempts {
                session: Arc::clone(session),
                scenario: scenario.to_owned(),
                count,
            },
        );
        count
    }

    /// Credits charged so far to `key`.
    pub(crate) fn credits_used(&self, key: &str) -> u64 {
        let digest = key_digest(key);
        self.lock().credits.get(&digest).copied().unwrap_or(0)
    }

    /// A snapshot of every job (of `session`, if given) with the state it would show now on its
    /// session's clock (without counting a poll).
    pub(crate) fn list(&self, server_now: SystemTime, session: Option<&str>) -> Vec<JobSummary> {
        let inner = self.lock();
        inner
            .by_seq
            .values()
            .filter(|job| session.is_none_or(|session| *job.session == *session))
            .map(|job| {
                let now = saturating_add(server_now, inner.offset(&job.session));
                let elapsed = now.duration_since(job.created_at).unwrap_or(Duration::ZERO);
                let state = job.timeline.state_at(elapsed, job.n_polls);
                // Links count from the end; a job no poll has seen end yet ended by its timeline.
                let finished_at = job.finished_at.or_else(|| {
                    state.is_terminal().then(|| {
                        saturating_add(job.created_at, job.timeline.finished_after(elapsed))
                    })
                });
                let mut polled = job.snapshot(state.clone());
                polled.finished_at = finished_at;
                JobSummary {
                    now,
                    polled,
                    session: Arc::clone(&job.session),
                    provider: job.provider,
                    id: job.id.to_string(),
                    account: job.account.to_string(),
                    state,
                    n_polls: job.n_polls,
                    created_at: job.created_at,
                    finished_at: job.finished_at,
                    media: job.media.clone(),
                    timeline: job.timeline.clone(),
                    scenario: job.scenario.name.clone(),
                    webhook: job.webhook,
                }
            })
            .collect()
    }
}

/// A key's one-minute sliding window, as one request found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Requests in the last minute, this one included.
    pub(crate) n_requests: u32,
    /// Seconds until the oldest of them leaves the window.
    pub(crate) retry_after_secs: u32,
}

impl Window {
    /// Whether the window is over `limit` requests a minute (None when limits are not enforced):
    /// then the request is refused with the provider's 429, and a poll is not counted.
    pub(crate) fn is_over(&self, limit: Option<u32>) -> bool {
        limit.is_some_and(|limit| self.n_requests > limit)
    }
}

/// A one-minute sliding window in one-second buckets: constant memory whatever the request
/// rate (a list of request times grew to millions of entries under load).
#[derive(Debug, Clone)]
struct RateWindow {
    /// Requests counted in each second, by `second % 60`.
    counts: [u32; 60],
    /// Which second each bucket holds.
    seconds: [u64; 60],
    /// The window as of the second of the last request: within one second no bucket leaves the
    /// window, so a request in the same second adds one instead of summing 60 buckets.
    last: Option<(u64, Window)>,
}

impl Default for RateWindow {
    fn default() -> Self {
        Self {
            counts: [0; 60],
            seconds: [0; 60],
            last: None,
        }
    }
}

/// API keys whose rate windows are kept per provider (about 1 KiB each).
const MAX_RATE_WINDOWS: usize = 4096;

impl RateWindow {
    /// Whether no request of the last minute is counted here.
    fn is_idle(&self, now_sec: u64) -> bool {
        self.counts
            .iter()
            .zip(&self.seconds)
            .all(|(count, second)| *count == 0 || now_sec.saturating_sub(*second) >= 60)
    }

    /// Counts one request at `now_sec` and reports the window.
    fn count(&mut self, now_sec: u64) -> Window {
        let slot = usize::try_from(now_sec % 60).unwrap_or(0);
        if let Some((second, window)) = &mut self.last {
            if *second == now_sec && self.seconds[slot] == now_sec {
                self.counts[slot] = self.counts[slot].saturating_add(1);
                window.n_requests = window.n_requests.saturating_add(1);
                return *window;
            }
        }
        let window = self.recount(now_sec, slot);
        self.last = Some((now_sec, window));
        window
    }

    /// Counts one request at `now_sec` in bucket `slot` and sums the window afresh.
    fn recount(&mut self, now_sec: u64, slot: usize) -> Window {
        if self.seconds[slot] != now_sec {
            self.seconds[slot] = now_sec;
            self.counts[slot] = 0;
        }
        self.counts[slot] = self.counts[slot].saturating_add(1);
        let mut n_requests: u32 = 0;
        let mut oldest = now_sec;
        for (count, second) in self.counts.iter().zip(&self.seconds) {
            if *count > 0 && now_sec.saturating_sub(*second) < 60 {
                n_requests = n_requests.saturating_add(*count);
                oldest = oldest.min(*second);
            }
        }
        Window {
            n_requests,
            // The oldest second leaves the window 60 s after it began; never 0, which clients
            // read as "no advice".
            retry_after_secs: u32::try_from((oldest + 60).saturating_sub(now_sec))
                .unwrap_or(60)
                .max(1),
        }
    }
}

/// The job a status poll names, for [`Store::arrive_polling`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PollOf<'a> {
    /// The id polled.
    pub(crate) id: &'a str,
    /// The account it must be under, for providers that scope jobs by account.
    pub(crate) account: Option<&'a str>,
}

/// Why [`Store::force`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForceError {
    /// No such job in the session.
    NotFound,
    /// The job is completed or failed already.
    AlreadyTerminal,
}

/// One row of [`Store::list`].
#[derive(Debug, Clone)]
pub(crate) struct JobSummary {
    /// Its session's clock when listed: where "now" is on its timeline.
    pub(crate) now: SystemTime,
    /// What a poll would see, without counting one: renders its links.
    pub(crate) polled: Polled,
    /// The session that owns it.
    pub(crate) session: SessionId,
    /// Which provider.
    pub(crate) provider: Provider,
    /// The id clients poll with.
    pub(crate) id: String,
    /// The account.
    pub(crate) account: String,
    /// The state a poll would see now.
    pub(crate) state: JobState,
    /// Polls answered.
    pub(crate) n_polls: u32,
    /// Upload time.
    pub(crate) created_at: SystemTime,
    /// Terminal time, once seen.
    pub(crate) finished_at: Option<SystemTime>,
    /// The upload.
    pub(crate) media: Option<Arc<StoredMedia>>,
    /// The lifecycle it follows.
    pub(crate) timeline: Timeline,
    /// The scenario's name.
    pub(crate) scenario: String,
    /// Where its webhook is.
    pub(crate) webhook: Webhook,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

fn from_unix_ms(ms: u64) -> SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(ms)
}

/// The hex SHA-256 of an API key: how the store (and its log) names a key whose credits it keeps.
fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_window_counts_the_last_minute_in_constant_memory() {
        let mut window = RateWindow::default();
        for _ in 0..1000 {
            window.count(1_000);
        }
        let at_1030 = window.count(1_030);
        assert_eq!((at_1030.n_requests, at_1030.retry_after_secs), (1001, 30));
        // Second 1000 leaves the window at 1060; second 1030 is still in it.
        let at_1060 = window.count(1_060);
        assert_eq!((at_1060.n_requests, at_1060.retry_after_secs), (2, 30));
        let much_later = window.count(5_000);
        assert_eq!(
            (much_later.n_requests, much_later.retry_after_secs),
            (1, 60)
        );
        assert!(std::mem::size_of::<RateWindow>() <= 60 * 4 + 60 * 8 + 24);
    }

    #[test]
    fn the_rate_window_shortcut_within_a_second_agrees_with_a_full_recount() {
        // Seconds as requests of several sessions (clocks ahead of each other) interleave them.
        let seconds = [
            5, 5, 5, 6, 6, 5, 66, 66, 7, 7, 200, 200, 200, 140, 200, 261, 261,
        ];
        let mut window = RateWindow::default();
        for second in seconds {
            let mut recounted = RateWindow {
                last: None,
                ..window.clone()
            };
            let slot = usize::try_from(second % 60).unwrap();
            let expected = recounted.recount(second, slot);
            assert_eq!(window.count(second), expected, "at second {second}");
        }
    }

    #[test]
    fn invented_api_keys_cannot_grow_the_rate_windows_without_bound() {
        let store = Store::new([0; 16]);
        let session = SessionId::from(DEFAULT_SESSION);
        let start = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let n_windows = |store: &Store| store.lock().windows[0].len();
        for key_idx in 0..3 * MAX_RATE_WINDOWS {
            store.arrive(Provider::Fansly, &format!("key-{key_idx}"), &session, start);
        }
        assert!(
            n_windows(&store) <= MAX_RATE_WINDOWS,
            "{}",
            n_windows(&store)
        );
        // A key still in use keeps its count when idle ones are dropped.
        let later = start + Duration::from_secs(120);
        store.arrive(Provider::Fansly, "steady", &session, later);
        for key_idx in 0..MAX_RATE_WINDOWS - 1 {
            store.arrive(
                Provider::Fansly,
                &format!("late-{key_idx}"),
                &session,
                later,
            );
        }
        let (_, window) = store.arrive(Provider::Fansly, "steady", &session, later);
        assert_eq!(window.n_requests, 2);
    }

    /// A Fansly job in `session` that is complete from its first poll.
    fn completed_job(session: SessionId) -> NewJob {
        NewJob {
            session,
            provider: Provider::Fansly,
            account: "acct".into(),
            destination: Destination::Cdn,
            timeline: Timeline::immediate(crate::job::Outcome::Completed),
            media: None,
            credits_used: 0,
            api_key: "key".into(),
            scenario: Scenario::happy(),
            attempt: 1,
            has_webhook: false,
        }
    }

    #[tokio::test]
    async fn an_upload_whose_record_cannot_reach_the_disk_is_refused_and_leaves_no_job() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new([0; 16]).with_log(crate::persist::Log::on_file(dir.path(), full));
        let job = completed_job(SessionId::from(DEFAULT_SESSION));
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let refused = store
            .insert(1, "1".into(), job, now, &["token".into()])
            .await;
        assert!(crate::upload::is_disk_full(&refused.unwrap_err()));
        let inner = store.lock();
        assert!(inner.by_seq.is_empty(), "no job without its record");
        assert!(inner.blobs.is_empty(), "no link to its media either");
    }

    #[tokio::test]
    async fn only_the_newest_rendered_answers_are_kept() {
        let store = Store::new([0; 16]);
        let session = SessionId::from(DEFAULT_SESSION);
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let n_jobs = MAX_RENDERED as u64 + 10;
        for seq in 1..=n_jobs {
            let job = completed_job(Arc::clone(&session));
            store
                .insert(seq, seq.to_string(), job, now, &[])
                .await
                .unwrap();
            store.keep_rendered(Provider::Fansly, seq, "http://o", bytes::Bytes::from("{}"));
            // Rendering the same job again does not count twice.
            store.keep_rendered(Provider::Fansly, seq, "http://o", bytes::Bytes::from("{}"));
        }
        let inner = store.lock();
        let kept: Vec<u64> = inner
            .by_seq
            .values()
            .filter(|job| job.rendered.is_some())
            .map(|job| job.seq)
            .collect();
        assert_eq!(kept.len(), MAX_RENDERED);
        assert_eq!(kept.first(), Some(&11));
        assert_eq!(inner.rendered_order.len(), MAX_RENDERED);
    }
}
