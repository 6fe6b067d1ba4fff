//! `--state-dir` from the store's side: logged records turned back into [`Change`]s (probing each
//! stored file again) and applied through [`Inner::apply`], and the state as the fewest records
//! that rebuild it, for compacting the log.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::change::{Change, Gone, JobKey, job_record};
use super::{
    Destination, HashMap, Inner, Job, SessionId, Store, StoredMedia, Webhook, from_unix_ms, unix_ms,
};
use crate::persist::{JobRecord, MediaRecord, Record};
use crate::provider::Provider;
use crate::scenario::Scenario;

/// The error a restored job answers when its stored file is missing or altered.
pub(crate) const LOST_MEDIA_REASON: &str = "The uploaded file is no longer available: the mock's --state-dir lost or altered it while the mock was down.";

/// What rebuilding a store from its log needs from the server.
pub(crate) struct Restore<'a> {
    /// Where the log's media files are.
    pub(crate) media_dir: &'a std::path::Path,
    /// A scenario by the name a job recorded (the default when it no longer resolves).
    pub(crate) scenario: &'a dyn Fn(&str) -> Arc<Scenario>,
    /// The disk quota restored files count against.
    pub(crate) quota: &'a Arc<crate::upload::Quota>,
    /// Jobs whose stored file was (missing, altered) at restore: counted for the start-up WARN.
    pub(crate) lost_media: &'a std::cell::Cell<(usize, usize)>,
}

fn provider_of(slug: &str) -> Option<Provider> {
    match slug {
        "fansly" => Some(Provider::Fansly),
        "onlyfans" => Some(Provider::OnlyFans),
        _ => None,
    }
}

/// A stored file as the log names it.
pub(super) fn media_record(media: &StoredMedia) -> Option<MediaRecord> {
    Some(MediaRecord {
        file: media.path.file_name()?.to_str()?.to_owned(),
        file_name: media.file_name.clone(),
        size: media.size,
        sha256: hex::encode(media.sha256),
    })
}

impl Store {
    /// A store rebuilt from `records`, and the manual clock reading they last recorded.
    pub(crate) fn restore(
        nonce: [u8; 16],
        records: Vec<Record>,
        ctx: &Restore<'_>,
    ) -> (Self, Option<SystemTime>) {
        let store = Self::new(nonce);
        let mut media_by_file: HashMap<String, Arc<StoredMedia>> = HashMap::default();
        let clock = {
            let mut inner = store.lock();
            for record in records {
                if let Some(change) = change_of(record, &inner, ctx, &mut media_by_file) {
                    inner.apply(&change);
                }
            }
            // A webhook the sender was still trying when the process ended is due again: sent
            // at least once, with the same idempotency key, as the provider retries.
            for job in inner.by_seq.values_mut() {
                if job.webhook == Webhook::Sent {
                    job.webhook = Webhook::Pending;
                }
            }
            inner.clock
        };
        (store, clock)
    }

    /// The whole store as the fewest records that rebuild it (for compacting the log); `clock` is
    /// the manual clock's reading now, which a later `--clock-start` may have moved.
    pub(crate) fn records(&self, clock: Option<SystemTime>) -> Vec<Record> {
        let inner = self.lock();
        let mut records = Vec::new();
        if let Some(clock) = clock.or(inner.clock) {
            records.push(Record::Clock {
                unix_ms: unix_ms(clock),
            });
        }
        let mut credits: Vec<_> = inner.credits.iter().collect();
        credits.sort();
        for (key_sha256, total) in credits {
            records.push(Record::Credits {
                key_sha256: key_sha256.clone(),
                total: *total,
            });
        }
        for (provider, next) in &inner.next_seq {
            records.push(Record::NextSeq {
                provider: provider.slug().to_owned(),
                next: *next,
            });
        }
        let mut tokens: HashMap<*const StoredMedia, Vec<String>> = HashMap::default();
        for (token, (media, _)) in &inner.blobs {
            tokens
                .entry(Arc::as_ptr(media))
                .or_default()
                .push(token.clone());
        }
        for job in inner.by_seq.values() {
            let mut job_tokens = job
                .media
                .as_ref()
                .and_then(|media| tokens.get(&Arc::as_ptr(media)).cloned())
                .unwrap_or_default();
            job_tokens.sort();
            records.push(Record::Job(Box::new(job_record(job, job_tokens))));
        }
        if let Some(scenario) = &inner.default_scenario {
            records.push(Record::DefaultScenario {
                scenario: scenario.name.clone(),
            });
        }
        let mut sessions: Vec<_> = inner.sessions.iter().collect();
        sessions.sort_by(|a, b| a.0.cmp(b.0));
        for (session, state) in sessions {
            if !state.offset.is_zero() {
                records.push(Record::SessionClock {
                    session: session.to_string(),
                    offset_ms: u64::try_from(state.offset.as_millis()).unwrap_or(u64::MAX),
                });
            }
            if let Some(scenario) = &state.scenario {
                records.push(Record::SessionScenario {
                    session: session.to_string(),
                    scenario: scenario.name.clone(),
                });
            }
            for (provider, next) in &state.next_job {
                records.push(Record::JobNumber {
                    session: session.to_string(),
                    provider: provider.slug().to_owned(),
                    next: *next,
                });
            }
            for (scenario, count) in &state.attempts {
                records.push(Record::Attempts {
                    session: session.to_string(),
                    scenario: scenario.clone(),
                    count: *count,
                });
            }
        }
        records
    }

    /// The names (inside the media directory) of every file a job still refers to.
    pub(crate) fn media_files(&self) -> std::collections::HashSet<std::ffi::OsString> {
        self.lock()
            .by_seq
            .values()
            .filter_map(|job| job.media.as_ref()?.path.file_name().map(ToOwned::to_owned))
            .collect()
    }
}

/// The change `record` logged, or `None` for one that no longer applies (an unknown provider,
/// a job since forgotten).
fn change_of(
    record: Record,
    inner: &Inner,
    ctx: &Restore<'_>,
    media_by_file: &mut HashMap<String, Arc<StoredMedia>>,
) -> Option<Change> {
    let key = |provider: &str, seq: u64| -> Option<JobKey> { Some((provider_of(provider)?, seq)) };
    Some(match record {
        Record::Job(job) => {
            let tokens = job.tokens.clone();
            Change::Created {
                job: Box::new(restored_job(*job, ctx, media_by_file)?),
                tokens,
            }
        }
        Record::Polled {
            provider,
            seq,
            n_polls,
            finished_at_ms,
            touched_ms,
        } => Change::Polled {
            job: key(&provider, seq)?,
            n_polls,
            finished_at: finished_at_ms.map(from_unix_ms),
            at: touched_ms.map_or(std::time::UNIX_EPOCH, from_unix_ms),
        },
        Record::Forced {
            provider,
            seq,
            timeline,
            finished_at_ms,
        } => Change::Forced {
            job: key(&provider, seq)?,
            timeline: timeline.to_timeline()?,
            finished_at: finished_at_ms.map(from_unix_ms),
            at: std::time::UNIX_EPOCH,
        },
        Record::WebhookSent {
            provider,
            seq,
            finished_at_ms,
        } => Change::WebhookSent {
            job: key(&provider, seq)?,
            finished_at: finished_at_ms.map(from_unix_ms),
        },
        Record::WebhookDelivered { provider, seq } => Change::WebhookDelivered {
            job: key(&provider, seq)?,
        },
        Record::Expired { provider, seq } => {
            let key = key(&provider, seq)?;
            let job = inner.by_seq.get(&key)?;
            Change::Forgotten {
                jobs: vec![Gone {
                    key,
                    session: Arc::clone(&job.session),
                    id: Arc::clone(&job.id),
                }],
                sessions: Vec::new(),
            }
        }
        Record::SessionExpired { session } => Change::Forgotten {
            jobs: Vec::new(),
            sessions: vec![session.into()],
        },
        Record::Clock { unix_ms } => Change::Clock {
            from: None,
            to: from_unix_ms(unix_ms),
        },
        Record::SessionClock { session, offset_ms } => Change::SessionClock {
            session: session.into(),
            from: Duration::ZERO,
            to: Duration::from_millis(offset_ms),
            server_now: std::time::UNIX_EPOCH,
        },
        Record::SessionScenario { session, scenario } => Change::SessionScenario {
            session: session.into(),
            scenario: (ctx.scenario)(&scenario),
        },
        Record::DefaultScenario { scenario } => Change::DefaultScenario {
            scenario: (ctx.scenario)(&scenario),
        },
        Record::JobNumber {
            session,
            provider,
            next,
        } => Change::JobNumber {
            session: session.into(),
            provider: provider_of(&provider)?,
            next,
        },
        Record::NextSeq { provider, next } => Change::NextSeq {
            provider: provider_of(&provider)?,
            next,
        },
        Record::Attempts {
            session,
            scenario,
            count,
        } => Change::Attempts {
            session: session.into(),
            scenario,
            count,
        },
        Record::Credits { key_sha256, total } => Change::Credits { key_sha256, total },
        Record::SessionReset { session } => Change::SessionReset {
            session: session.into(),
        },
        Record::Reset => Change::Reset,
    })
}

/// A logged job rebuilt, its stored file probed again. A job whose bytes are gone can never serve
/// them: it answers as a failed job does, instead of a completed one whose every poll would be a
/// 500.
fn restored_job(
    job: JobRecord,
    ctx: &Restore<'_>,
    media_by_file: &mut HashMap<String, Arc<StoredMedia>>,
) -> Option<Job> {
    let provider = provider_of(&job.provider)?;
    let Some(timeline) = job.timeline.to_timeline() else {
        tracing::warn!(
            seq = job.seq,
            "state log: job with an invalid timeline skipped"
        );
        return None;
    };
    let had_media = job.media.is_some();
    let mut altered = false;
    let media = job.media.and_then(|record| {
        if let Some(media) = media_by_file.get(&record.file) {
            return Some(Arc::clone(media));
        }
        let path = ctx.media_dir.join(&record.file);
        let head = read_head(&path)?;
        let size = std::fs::metadata(&path).ok()?.len();
        if size != record.size {
            tracing::warn!(file = %record.file, "state log: stored file has the wrong size; dropped");
            altered = true;
            return None;
        }
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&record.sha256, &mut sha256).ok()?;
        let info = crate::media::probe(&path, &head);
        let mut temp = tempfile::TempPath::try_from_path(path).ok()?;
        temp.disable_cleanup(true);
        let mut reservation = crate::upload::Reservation::new(ctx.quota);
        // A restored file is already on disk; it counts even past a smaller new quota.
        let _ = reservation.grow(size);
        let media = Arc::new(StoredMedia {
            path: temp,
            file_name: record.file_name,
            size,
            sha256,
            info,
            _reservation: Some(reservation),
        });
        media_by_file.insert(record.file, Arc::clone(&media));
        Some(media)
    });
    let timeline = if had_media && media.is_none() {
        let (missing, n_altered) = ctx.lost_media.get();
        ctx.lost_media.set(if altered {
            (missing, n_altered + 1)
        } else {
            (missing + 1, n_altered)
        });
        timeline.with_outcome(crate::job::Outcome::Failed {
            reason: LOST_MEDIA_REASON.into(),
        })
    } else {
        timeline
    };
    let session: SessionId = job.session.into();
    Some(Job {
        seq: job.seq,
        session,
        provider,
        id: job.id.into(),
        account: job.account.into(),
        destination: if job.vault {
            Destination::Vault
        } else {
            Destination::Cdn
        },
        created_at: from_unix_ms(job.created_at_ms),
        timeline,
        n_polls: job.n_polls,
        finished_at: job.finished_at_ms.map(from_unix_ms),
        media,
        credits_used: job.credits_used,
        scenario: (ctx.scenario)(&job.scenario),
        attempt: job.attempt,
        webhook: match job.webhook.as_str() {
            "pending" => Webhook::Pending,
            "sent" => Webhook::Sent,
            "delivered" => Webhook::Delivered,
            _ => Webhook::None,
        },
        last_touched: from_unix_ms(job.touched_ms.unwrap_or(job.created_at_ms)),
        rendered: None,
    })
}

/// The first bytes of a stored file, for probing its type again.
fn read_head(path: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(crate::media::HEAD_LEN);
    std::fs::File::open(path)
        .ok()?
        .take(crate::media::HEAD_LEN as u64)
        .read_to_end(&mut head)
        .ok()?;
    Some(head)
}
