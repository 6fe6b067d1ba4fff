//! `--state-dir`: the store as an append-only log of what changed, so a restarted mock answers
//! every earlier job id and serves every earlier link with the same bytes.
//!
//! Layout of the directory:
//! - `meta.json`: the seed and signing key the ids and links derive from (written once, atomically).
//! - `state.log`: one JSON record per line, written by one thread in batches ([`Log`]). A new
//!   job's record is durable: its id is answered only once its batch is `fsync`ed. Polls, forced
//!   outcomes and clock moves go out with the next batch without waiting for the disk (a killed
//!   process loses at most the records still queued; a power cut may lose the last batch).
//! - `media/`: uploaded files, written and `fsync`ed before their job's record; the directory
//!   itself is `fsync`ed with the batch that makes the record durable.
//!
//! On start the log is read up to its first unreadable line (a torn last write from a kill), the
//! store rebuilt, and the log rewritten compactly (`write`, `fsync`, `rename`, `fsync` of the
//! directory). Files in `media/` that no job names (an upload killed half-way, a refused upload,
//! a reset job) are deleted then, so a half-written file is never served.
//!
//! Records are this module's own serde types: the on-disk format changes only here.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::job::{Outcome, Phase, Step, Timeline, Until};

/// The seed and key a state directory's ids and links were made with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// The seed behind ids and tokens.
    pub(crate) seed: u64,
    /// The signing secret, hex.
    pub(crate) signing_key: String,
    /// The `Key-Pair-Id` links carry.
    pub(crate) key_pair_id: String,
}

/// One change to the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Record {
    /// A job was created.
    Job(Box<JobRecord>),
    /// A job was polled (or observed terminal) again.
    Polled {
        provider: String,
        seq: u64,
        n_polls: u32,
        finished_at_ms: Option<u64>,
        #[serde(default)]
        touched_ms: Option<u64>,
    },
    /// A job's future was replaced through the admin API.
    Forced {
        provider: String,
        seq: u64,
        timeline: TimelineRecord,
        finished_at_ms: Option<u64>,
    },
    /// A job's webhook was handed to the sender; the job ended at `finished_at_ms`.
    WebhookSent {
        provider: String,
        seq: u64,
        #[serde(default)]
        finished_at_ms: Option<u64>,
    },
    /// The sender is done with a job's webhook; without this record a restart sends it again.
    WebhookDelivered { provider: String, seq: u64 },
    /// The manual server clock now reads this.
    Clock { unix_ms: u64 },
    /// A session's clock offset.
    SessionClock { session: String, offset_ms: u64 },
    /// A session's default scenario.
    SessionScenario { session: String, scenario: String },
    /// The server-wide default scenario the admin API set.
    DefaultScenario { scenario: String },
    /// The next Fansly-style job number in a session.
    JobNumber {
        session: String,
        provider: String,
        next: u64,
    },
    /// The next sequence number for a provider (kept across resets).
    NextSeq { provider: String, next: u64 },
    /// A job went idle for longer than the expiry and was forgotten.
    Expired { provider: String, seq: u64 },
    /// A session was forgotten.
    SessionReset { session: String },
    /// A session without jobs went idle for longer than the expiry and was forgotten.
    SessionExpired { session: String },
    /// Uploads counted under a scenario in a session (faults aim at the n-th).
    Attempts {
        session: String,
        scenario: String,
        count: u32,
    },
    /// The credits an API key has been charged so far, by the SHA-256 of the key (the key itself
    /// never touches the disk): the last record of a digest is its total.
    Credits { key_sha256: String, total: u64 },
    /// Everything was forgotten.
    Reset,
}

/// A job as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    pub(crate) seq: u64,
    pub(crate) session: String,
    pub(crate) provider: String,
    pub(crate) id: String,
    pub(crate) account: String,
    pub(crate) vault: bool,
    pub(crate) created_at_ms: u64,
    pub(crate) timeline: TimelineRecord,
    pub(crate) n_polls: u32,
    pub(crate) finished_at_ms: Option<u64>,
    pub(crate) media: Option<MediaRecord>,
    pub(crate) credits_used: u64,
    pub(crate) scenario: String,
    pub(crate) attempt: u32,
    /// `none`, `pending` or `sent`.
    pub(crate) webhook: String,
    pub(crate) tokens: Vec<String>,
    /// The last upload or poll, Unix milliseconds on its session's clock.
    #[serde(default)]
    pub(crate) touched_ms: Option<u64>,
}

/// An uploaded file as stored; its type and size are probed again on load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MediaRecord {
    /// The file's name inside `media/`.
    pub(crate) file: String,
    pub(crate) file_name: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// A timeline as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TimelineRecord {
    pub(crate) steps: Vec<StepRecord>,
    /// `None` for completed, the reason for failed.
    pub(crate) failed: Option<String>,
    /// Polls the outcome waits for (absent in logs written before it existed).
    #[serde(default)]
    pub(crate) min_polls: u32,
}

/// One step as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    pub(crate) processing: bool,
    pub(crate) progress: u8,
    pub(crate) elapsed_ms: Option<u64>,
    pub(crate) polls: Option<u32>,
}

impl From<&Timeline> for TimelineRecord {
    fn from(timeline: &Timeline) -> Self {
        Self {
            steps: timeline
                .steps()
                .iter()
                .map(|step| StepRecord {
                    processing: step.phase == Phase::Processing,
                    progress: step.progress,
                    elapsed_ms: step
                        .until
                        .elapsed
                        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
                    polls: step.until.polls,
                })
                .collect(),
            failed: match timeline.outcome() {
                Outcome::Completed => None,
                Outcome::Failed { reason } => Some(reason.to_string()),
            },
            min_polls: timeline.min_polls(),
        }
    }
}

impl TimelineRecord {
    /// The timeline back; `None` if the record no longer makes a valid one.
    pub(crate) fn to_timeline(&self) -> Option<Timeline> {
        let steps = self
            .steps
            .iter()
            .map(|step| Step {
                phase: if step.processing {
                    Phase::Processing
                } else {
                    Phase::Queued
                },
                progress: step.progress,
                until: Until {
                    elapsed: step.elapsed_ms.map(std::time::Duration::from_millis),
                    polls: step.polls,
                },
            })
            .collect();
        let outcome = match &self.failed {
            None => Outcome::Completed,
            Some(reason) => Outcome::Failed {
                reason: reason.as_str().into(),
            },
        };
        Timeline::new(steps, outcome)
            .ok()
            .map(|timeline| timeline.with_min_polls(self.min_polls))
    }
}

/// Records waiting for the writer thread. A record is queued with the store's lock held (so the
/// log's order is the store's), and the writer drains the queue in batches; 4,096 records (about
/// 1 MiB of small JSON objects) absorb any burst a disk keeps up with. When the disk falls that far
/// behind, the change that queues the next record waits for room, as every change did when they
/// were written in place.
const QUEUE: usize = 4096;

/// The open log: a writer thread that owns the file, fed through a bounded queue.
///
/// Writes and `fsync`s run on that thread, never on an async worker and never under the store's
/// lock. Whatever is queued while a batch is being written goes out as the next batch, with one
/// `fsync` for every durable record in it: the group commit of databases, which lets concurrent
/// uploads share a disk flush instead of queueing for one each.
#[derive(Debug)]
pub(crate) struct Log {
    queue: Option<std::sync::mpsc::SyncSender<Queued>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// `fsync`s made so far, for the test that shows concurrent durable records share them.
    #[cfg(test)]
    syncs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// One record on its way to the disk.
#[derive(Debug)]
enum Queued {
    /// A record, and whom to tell once it is on disk, if anyone waits for that.
    Record(
        Record,
        Option<tokio::sync::oneshot::Sender<std::io::Result<()>>>,
    ),
    /// Nothing to write: answered once everything queued before it is written and synced.
    Sync(tokio::sync::oneshot::Sender<std::io::Result<()>>),
}

/// A durable record's fate: resolves once its batch is on disk, or failed.
#[derive(Debug)]
pub(crate) struct Pending(tokio::sync::oneshot::Receiver<std::io::Result<()>>);

impl Pending {
    /// Waits until the record is on disk; an error means it is not, and never will be.
    pub(crate) async fn durable(self) -> std::io::Result<()> {
        self.0
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the state log writer stopped")))
    }
}

/// The log file and its length: where a failed batch cuts it back to.
#[derive(Debug)]
struct Appending {
    dir: PathBuf,
    file: File,
    len: u64,
    #[cfg(test)]
    syncs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Why a state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Reading or writing it failed.
    #[error("state directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// `meta.json` does not parse.
    #[error("state directory {path}: unreadable meta.json: {message}")]
    Meta {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The media directory of a state directory.
pub(crate) fn media_dir(dir: &Path) -> PathBuf {
    dir.join("media")
}

/// Reads `meta.json`, or writes `fresh` as it if there is none.
pub(crate) fn meta(dir: &Path, fresh: Meta) -> Result<Meta, PersistError> {
    std::fs::create_dir_all(media_dir(dir)).map_err(io(dir))?;
    let path = dir.join("meta.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|err| PersistError::Meta {
            path,
            message: err.to_string(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let text = serde_json::to_string_pretty(&fresh).unwrap_or_default();
            write_atomically(dir, "meta.json", text.as_bytes())?;
            Ok(fresh)
        }
        Err(err) => Err(io(&path)(err)),
    }
}

/// Every readable record of the log, in order; reading stops at the first torn or unreadable line.
pub(crate) fn read(dir: &Path) -> Result<Vec<Record>, PersistError> {
    let path = dir.join("state.log");
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io(&path)(err)),
    };
    let mut records = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(io(&path))?;
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) => records.push(record),
            Err(err) => {
                tracing::warn!(error = %err, kept = records.len(), "state log ends in a torn record; ignoring the rest");
                break;
            }
        }
    }
    Ok(records)
}

/// `dir/name` replaced by `bytes` all at once: written aside, synced, renamed, directory synced.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PersistError> {
    let aside = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let mut file = File::create(&aside).map_err(io(&aside))?;
    file.write_all(bytes).map_err(io(&aside))?;
    file.sync_all().map_err(io(&aside))?;
    drop(file);
    std::fs::rename(&aside, &target).map_err(io(&target))?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io(dir))
}

impl Log {
    /// Rewrites the log as exactly `records` (atomically) and opens it for appending.
    pub(crate) fn compact(dir: &Path, records: &[Record]) -> Result<Self, PersistError> {
        let mut text = Vec::new();
        for record in records {
            if let Ok(line) = serde_json::to_vec(record) {
                text.extend_from_slice(&line);
                text.push(b'\n');
            }
        }
        write_atomically(dir, "state.log", &text)?;
        // Every batch syncs it (see `write_batches`).
        std::fs::create_dir_all(media_dir(dir)).map_err(io(dir))?;
        let path = dir.join("state.log");
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Self::start(Appending {
            dir: dir.to_owned(),
            file,
            len: text.len() as u64,
            #[cfg(test)]
            syncs: std::sync::Arc::default(),
        })
        .map_err(io(dir))
    }

    /// A log appending to `file` (a test's `/dev/full`, say).
    #[cfg(test)]
    pub(crate) fn on_file(dir: &Path, file: File) -> Self {
        let len = file.metadata().map_or(0, |metadata| metadata.len());
        Self::start(Appending {
            dir: dir.to_owned(),
            file,
            len,
            syncs: std::sync::Arc::default(),
        })
        .expect("a thread")
    }

    fn start(appending: Appending) -> std::io::Result<Self> {
        let (queue, queued) = std::sync::mpsc::sync_channel(QUEUE);
        #[cfg(test)]
        let syncs = std::sync::Arc::clone(&appending.syncs);
        let writer = std::thread::Builder::new()
            .name("state-log".into())
            .spawn(move || write_batches(appending, &queued))?;
        Ok(Self {
            queue: Some(queue),
            writer: Some(writer),
            #[cfg(test)]
            syncs,
        })
    }

    /// Queues `record` after every record queued before it. A `durable` record returns what
    /// resolves once it is on disk: a job must not be acknowledged before that, and a failure
    /// there means the record is not in the log (a failed batch is cut back whole, so a
    /// half-written line can never hide the records after it: reading stops at the first torn
    /// line). A record nobody waits for is written with the next batch, and its loss on a failed
    /// write is logged by the writer.
    pub(crate) fn append(&self, record: Record, durable: bool) -> Option<Pending> {
        let (done, pending) = if durable {
            let (done, pending) = tokio::sync::oneshot::channel();
            (Some(done), Some(Pending(pending)))
        } else {
            (None, None)
        };
        if let Some(queue) = &self.queue {
            // A send fails only once the writer is gone; the dropped sender then fails `pending`.
            let _ = queue.send(Queued::Record(record, done));
        }
        pending
    }

    /// Resolves once every record queued so far is written and synced: what a clean shutdown
    /// waits for, so a restart in the same directory reads every change.
    pub(crate) fn sync(&self) -> Pending {
        let (done, pending) = tokio::sync::oneshot::channel();
        if let Some(queue) = &self.queue {
            let _ = queue.send(Queued::Sync(done));
        }
        Pending(pending)
    }
}

impl Drop for Log {
    /// Lets the writer finish what is queued: a store that goes away leaves a complete log.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Records written per batch at most: a batch is one `write` (and at most one `fsync`), and
/// 1,024 small records keep that write within a few hundred KiB.
const MAX_BATCH: usize = 1024;

/// The writer thread: takes what is queued, writes it in one `write`, syncs once if any record
/// in it is durable (or a sync was asked for), and answers every waiter of the batch.
fn write_batches(mut log: Appending, queued: &std::sync::mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut bytes = Vec::new();
    while let Ok(first) = queued.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        bytes.clear();
        let mut sync = false;
        for queued in &batch {
            match queued {
                Queued::Record(record, done) => {
                    if let Ok(line) = serde_json::to_vec(record) {
                        bytes.extend_from_slice(&line);
                        bytes.push(b'\n');
                    }
                    sync |= done.is_some();
                }
                Queued::Sync(_) => sync = true,
            }
        }
        let written = log.file.write_all(&bytes).and_then(|()| {
            if !sync {
                return Ok(());
            }
            #[cfg(test)]
            log.syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // An upload's file is synced before its record is queued, but its name lives in the
            // media directory: synced here, once per batch, so that a power cut cannot leave a
            // durable record naming a file the directory lost.
            File::open(media_dir(&log.dir))
                .and_then(|media| media.sync_all())
                .and_then(|()| log.file.sync_data())
        });
        let failed = match written {
            Ok(()) => {
                log.len += bytes.len() as u64;
                None
            }
            Err(err) => {
                tracing::error!(dir = %log.dir.display(), error = %err, records = batch.len(), "state log write failed; the batch is not in the log");
                if let Err(cut) = log.file.set_len(log.len) {
                    tracing::error!(dir = %log.dir.display(), error = %cut, "state log could not be cut back");
                }
                Some(err)
            }
        };
        for queued in batch.drain(..) {
            let done = match queued {
                Queued::Record(_, done) => done,
                Queued::Sync(done) => Some(done),
            };
            if let Some(done) = done {
                let _ = done.send(match &failed {
                    None => Ok(()),
                    // Each waiter gets its own error of the same kind (a full disk stays one).
                    Some(err) => Err(std::io::Error::new(err.kind(), err.to_string())),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        Record::NextSeq {
            provider: "fansly".into(),
            next: seq,
        }
    }

    #[tokio::test]
    async fn durable_records_queued_together_share_an_fsync_and_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::compact(dir.path(), &[]).unwrap();
        let n = 200;
        let pending: Vec<Pending> = (1..=n)
            .map(|seq| log.append(record(seq), true).unwrap())
            .collect();
        for pending in pending {
            pending.durable().await.unwrap();
        }
        let syncs = log.syncs.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            syncs < 100,
            "{syncs} fsyncs for {n} records: no group commit"
        );
        let next: Vec<u64> = read(dir.path())
            .unwrap()
            .into_iter()
            .map(|record| match record {
                Record::NextSeq { next, .. } => next,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(next, (1..=n).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_durable_record_in_it_and_leaves_the_log_readable() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = Log::on_file(dir.path(), full);
        let failed = log.append(record(1), true).unwrap().durable().await;
        assert!(crate::upload::is_disk_full(&failed.unwrap_err()));
        assert!(log.sync().durable().await.is_err());
    }
}
