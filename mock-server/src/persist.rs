//! `--state-dir`: the store as an append-only log of what changed, so a restarted mock answers
//! every earlier job id and serves every earlier link with the same bytes.
//!
//! Layout of the directory:
//! - `meta.json`: the seed and signing key the ids and links derive from (written once, atomically).
//! - `state.log`: one JSON record per line. A new job is appended and `fsync`ed before its id is
//!   answered; polls, forced outcomes and clock moves are appended without `fsync` (a killed
//!   process loses nothing the kernel has; a power cut may lose the last polls).
//! - `media/`: uploaded files, written and `fsync`ed before their job's record.
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
use std::sync::{Mutex, PoisonError};

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
    /// A job's webhook was handed to the sender.
    WebhookSent { provider: String, seq: u64 },
    /// The manual server clock now reads this.
    Clock { unix_ms: u64 },
    /// A session's clock offset.
    SessionClock { session: String, offset_ms: u64 },
    /// A session's default scenario.
    SessionScenario { session: String, scenario: String },
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

/// The open log.
#[derive(Debug)]
pub(crate) struct Log {
    dir: PathBuf,
    file: Mutex<Appending>,
}

/// The log file and its length: where a failed append cuts it back to, kept here rather than
/// asked of the file system before every append (one record per poll with `--state-dir`).
#[derive(Debug)]
struct Appending {
    file: File,
    len: u64,
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
        let path = dir.join("state.log");
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Self {
            dir: dir.to_owned(),
            file: Mutex::new(Appending {
                file,
                len: text.len() as u64,
            }),
        })
    }

    /// A log appending to `file` (a test's `/dev/full`, say).
    #[cfg(test)]
    pub(crate) fn on_file(dir: &Path, file: File) -> Self {
        let len = file.metadata().map_or(0, |metadata| metadata.len());
        Self {
            dir: dir.to_owned(),
            file: Mutex::new(Appending { file, len }),
        }
    }

    /// Appends one record in a single write; `durable` also waits for the disk. On failure the log
    /// is cut back to where it was, so a half-written line can never hide the records after it
    /// (reading stops at the first torn line), and the error is returned: a job whose record is
    /// not on disk must not be acknowledged.
    pub(crate) fn append(&self, record: &Record, durable: bool) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut log = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let Appending { file, len } = &mut *log;
        let written = file
            .write_all(&line)
            .and_then(|()| if durable { file.sync_data() } else { Ok(()) });
        if let Err(err) = written {
            tracing::error!(dir = %self.dir.display(), error = %err, "state log write failed");
            if let Err(cut) = file.set_len(*len) {
                tracing::error!(dir = %self.dir.display(), error = %cut, "state log could not be cut back");
            }
            return Err(err);
        }
        *len += line.len() as u64;
        Ok(())
    }
}
