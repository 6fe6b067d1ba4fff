//! The request journal: what each client request looked like and what it got, for tests to assert
//! on ("did my client poll after the job failed?", "did it upload the same file twice?").
//!
//! A ring buffer with a fixed capacity, so memory stays bounded however long the mock runs. API
//! keys and bearer tokens are never stored whole. An upload whose bytes match an earlier upload's
//! (by SHA-256) is marked with that entry's number: generated SDKs retry upload POSTs on 429/5xx
//! without an idempotency key, and this is how a test sees it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One multipart part as the journal shows it: its name, file name and size, never its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartSummary {
    /// The part's `name`.
    pub(crate) name: String,
    /// The part's `filename`, if it is a file.
    pub(crate) file_name: Option<String>,
    /// Bytes received.
    pub(crate) size: u64,
}

/// What a handler adds to its response for the journal: facts only it knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Note {
    /// The multipart parts received.
    pub(crate) parts: Vec<PartSummary>,
    /// The job the request created or polled (shared with the store's job: no copy per poll).
    pub(crate) job_id: Option<std::sync::Arc<str>>,
    /// The scenario the job follows.
    pub(crate) scenario: Option<std::sync::Arc<crate::scenario::Scenario>>,
    /// SHA-256 of the uploaded file.
    pub(crate) sha256: Option<[u8; 32]>,
    /// The fault injected into the answer, by name.
    pub(crate) fault: Option<&'static str>,
    /// The job state a status answer reported, in the provider's spelling (`active`, `pending`).
    pub(crate) state: Option<&'static str>,
    /// For a webhook delivery: which attempt it was and when the next one goes. Boxed: only
    /// webhook entries have one, and every other entry would carry its room.
    pub(crate) delivery: Option<Box<Delivery>>,
}

impl Note {
    /// A note about one job, which follows `scenario`.
    pub(crate) fn of_job(
        job_id: std::sync::Arc<str>,
        scenario: std::sync::Arc<crate::scenario::Scenario>,
    ) -> Self {
        Self {
            job_id: Some(job_id),
            scenario: Some(scenario),
            ..Self::default()
        }
    }
}

/// A webhook attempt, as its journal entry tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The delivery's id, which `POST /__admin/webhooks/{id}/redeliver` replays.
    pub(crate) id: u64,
    /// This attempt's number, from 1.
    pub(crate) attempt: u32,
    /// Attempts made before giving up.
    pub(crate) max_attempts: u32,
    /// When the next attempt goes (on the job's session clock), if this one failed and another
    /// is left.
    pub(crate) next_retry_at: Option<std::time::SystemTime>,
    /// The delivery a manual redelivery replays.
    pub(crate) redelivery_of: Option<u64>,
}

/// One journal entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Its number, from 1, never reused.
    pub(crate) seq: u64,
    /// The `X-Mock-Session` it belonged to.
    pub(crate) session: crate::store::SessionId,
    /// When the request arrived, on the mock's clock (formatted when read: the hot path only
    /// copies).
    pub(crate) at: std::time::SystemTime,
    /// The method.
    pub(crate) method: http::Method,
    /// The path (no query) on the first line, then the request headers as `name: value` lines:
    /// one allocation for both (a `HeaderMap` clone would pin the connection's whole read
    /// buffer); credentials are shortened when read. See [`request_text`].
    pub(crate) request: String,
    /// The status answered (0 when the connection was dropped by a fault).
    pub(crate) status: u16,
    /// Wall time spent answering, in milliseconds.
    pub(crate) duration_ms: f64,
    /// What the handler noted.
    pub(crate) note: Note,
    /// For an upload: the entry number of an earlier upload with the same bytes.
    pub(crate) repeat_of: Option<u64>,
    /// The `Retry-After` the answer carried, in seconds: what a polite client waits.
    pub(crate) retry_after: Option<u64>,
}

impl Entry {
    /// The path (no query).
    pub(crate) fn path(&self) -> &str {
        self.request
            .split_once('\n')
            .map_or(self.request.as_str(), |(path, _)| path)
    }

    /// The request headers as (name, value) pairs, values as received.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.request
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(": "))
    }
}

/// `path`, then `headers` as `name: value` lines (values lossily decoded), in one allocation:
/// what [`Entry::request`] holds. A path has no line breaks (hyper refuses them in a URI). Each
/// header is also shown to `visit`, so that a caller needs no second pass over them.
pub(crate) fn request_text(
    path: &str,
    headers: &http::HeaderMap,
    mut visit: impl FnMut(&http::HeaderName, &http::HeaderValue),
) -> String {
    let mut text = Vec::with_capacity(path.len() + 1 + headers.len() * 40);
    text.extend_from_slice(path.as_bytes());
    for (name, value) in headers {
        visit(name, value);
        text.push(b'\n');
        text.extend_from_slice(name.as_str().as_bytes());
        text.extend_from_slice(b": ");
        text.extend_from_slice(value.as_bytes());
    }
    // One UTF-8 check for the whole text rather than one per value (clients send ASCII). The path
    // and names are UTF-8 and each value sits between ASCII bytes, so a value that is not UTF-8
    // cannot spoil its neighbours: decoding the whole lossily decodes each value lossily.
    String::from_utf8(text)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// The bounded journal.
#[derive(Debug)]
pub(crate) struct Journal {
    capacity: usize,
    inner: Mutex<Inner>,
    /// Where each entry is announced (`GET /__admin/events`).
    events: crate::events::Events,
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    entries: VecDeque<Entry>,
    /// (session, upload digest) → the first entry that carried it: repeats count per session.
    /// A digest leaves with its entry, so this is bounded by the capacity too.
    first_upload: HashMap<(crate::store::SessionId, [u8; 32]), u64>,
}

/// The largest journal whose ring is reserved whole when it is made (about 260 MiB of address
/// space at most, none of it resident until used).
const PRESIZED_ENTRIES: usize = 1 << 20;

impl Journal {
    /// An empty journal keeping at most `capacity` entries (the oldest go first).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            inner: Mutex::new(Inner {
                // Exactly `capacity` slots, so a full journal writes each new entry into the slot
                // the oldest just left, still in cache; grown by doubling, the ring had up to
                // twice the slots and every entry went to memory untouched since long before.
                // Reserved, not touched: pages become resident as entries fill them. Past
                // `PRESIZED_ENTRIES` it grows as needed, so a huge capacity asks nothing up front.
                entries: VecDeque::with_capacity(capacity.min(PRESIZED_ENTRIES)),
                ..Inner::default()
            }),
            events: crate::events::Events::default(),
        }
    }

    /// Announces every entry on `events`.
    pub(crate) fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = events;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an entry; `seq` and `repeat_of` are filled in here. A repeat is marked while the
    /// upload it repeats is still in the journal.
    pub(crate) fn record(&self, entry: Entry) {
        // The entry pushed out is dropped after the lock is released: freeing its strings (cold
        // memory by now) is the slowest part, and other requests need not wait for it.
        let _gone = self.push(entry);
    }

    /// Numbers and stores `entry`, returning the entry it pushed out, if any.
    fn push(&self, mut entry: Entry) -> Option<Entry> {
        let mut inner = self.lock();
        inner.next_seq += 1;
        entry.seq = inner.next_seq;
        if let Some(digest) = entry.note.sha256 {
            let seq = entry.seq;
            let first = *inner
                .first_upload
                .entry((entry.session.clone(), digest))
                .or_insert(seq);
            entry.repeat_of = (first != seq).then_some(first);
        }
        let mut gone = None;
        if inner.entries.len() == self.capacity {
            gone = inner.entries.pop_front();
            if let Some(gone) = &gone {
                if let Some(digest) = gone.note.sha256 {
                    let key = (std::sync::Arc::clone(&gone.session), digest);
                    if inner.first_upload.get(&key) == Some(&gone.seq) {
                        inner.first_upload.remove(&key);
                    }
                }
            }
        }
        // Announced under the lock, so subscribers see entries in journal order.
        self.events.emit(|| crate::events::Event::JournalAppended {
            session: entry.session.to_string(),
            seq: entry.seq,
            route: route_of(entry.method.as_str(), entry.path()),
            method: entry.method.to_string(),
            path: entry.path().to_owned(),
            status: entry.status,
            job_id: entry.note.job_id.as_deref().map(str::to_owned),
            fault: entry.note.fault,
        });
        inner.entries.push_back(entry);
        gone
    }

    /// The entries, oldest first, that pass `keep`.
    pub(crate) fn entries(&self, keep: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        self.lock()
            .entries
            .iter()
            .filter(|entry| keep(entry))
            .cloned()
            .collect()
    }

    /// Forgets one session's entries and upload digests.
    pub(crate) fn forget_session(&self, session: &str) {
        let mut inner = self.lock();
        inner.entries.retain(|entry| &*entry.session != session);
        inner
            .first_upload
            .retain(|(owner, _), _| &**owner != session);
    }

    /// Forgets every entry and every upload digest.
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.first_upload.clear();
    }
}

/// Which kind of endpoint a journaled path is, for filtering.
pub(crate) fn route_of(method: &str, path: &str) -> &'static str {
    if path.starts_with("http") {
        "webhook"
    } else if path.starts_with("/cdn/") {
        "cdn"
    } else if path.ends_with("/status") {
        "status"
    } else if method == "POST"
        && (path.ends_with("/media/upload") || path.ends_with("/media/vault"))
    {
        "upload"
    } else {
        "other"
    }
}

/// A header value fit for the journal: credentials keep their first four characters.
pub(crate) fn shown_header(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("x-api-key") || name.eq_ignore_ascii_case("authorization") {
        let (scheme, secret) = match value.split_once(' ') {
            Some((scheme, secret)) if name.eq_ignore_ascii_case("authorization") => {
                (format!("{scheme} "), secret)
            }
            _ => (String::new(), value),
        };
        format!("{scheme}{}", crate::provider::redact_key(secret))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sha256: Option<[u8; 32]>) -> Entry {
        Entry {
            seq: 0,
            session: "default".into(),
            at: std::time::UNIX_EPOCH,
            method: http::Method::POST,
            request: "/x".into(),
            status: 201,
            duration_ms: 0.0,
            note: Note {
                sha256,
                ..Note::default()
            },
            repeat_of: None,
            retry_after: None,
        }
    }

    #[test]
    fn keeps_only_the_newest_entries() {
        let journal = Journal::new(2);
        for _ in 0..3 {
            journal.record(entry(None));
        }
        let seqs: Vec<u64> = journal
            .entries(|_| true)
            .iter()
            .map(|entry| entry.seq)
            .collect();
        assert_eq!(seqs, [2, 3]);
    }

    #[test]
    fn a_repeated_upload_points_at_the_first() {
        let journal = Journal::new(10);
        journal.record(entry(Some([1; 32])));
        journal.record(entry(Some([2; 32])));
        journal.record(entry(Some([1; 32])));
        let repeats: Vec<Option<u64>> = journal
            .entries(|_| true)
            .iter()
            .map(|entry| entry.repeat_of)
            .collect();
        assert_eq!(repeats, [None, None, Some(1)]);
    }

    #[test]
    fn upload_digests_leave_with_their_entries() {
        let journal = Journal::new(2);
        for digest in 0..100u8 {
            journal.record(entry(Some([digest; 32])));
        }
        assert_eq!(
            journal.lock().first_upload.len(),
            2,
            "digests outlived their entries"
        );
        journal.record(entry(Some([99; 32])));
        let newest = journal.entries(|_| true).pop().unwrap();
        assert_eq!(
            newest.repeat_of,
            Some(100),
            "a repeat within the window is still marked"
        );
        journal.record(entry(Some([0; 32])));
        let newest = journal.entries(|_| true).pop().unwrap();
        assert_eq!(
            newest.repeat_of, None,
            "the first upload left the journal long ago"
        );
    }

    #[test]
    fn credentials_are_shortened() {
        assert_eq!(shown_header("x-api-key", "secret-key-123"), "secr…");
        assert_eq!(
            shown_header("Authorization", "Bearer abcdefgh"),
            "Bearer abcd…"
        );
        assert_eq!(shown_header("content-type", "image/png"), "image/png");
    }

    #[test]
    fn a_header_value_that_is_not_utf8_is_decoded_lossily_and_alone() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-first", http::HeaderValue::from_static("plain"));
        // A lead byte of a 2-byte sequence at the end of the value: its continuation would have
        // to come from the next line.
        headers.insert(
            "x-broken",
            http::HeaderValue::from_bytes(b"caf\xc3").expect("obs-text is a valid value"),
        );
        headers.insert("x-last", http::HeaderValue::from_static("caf"));
        let text = request_text("/api/r\u{e9}sum\u{e9}", &headers, |_, _| {});
        let entry = Entry {
            request: text,
            ..entry(None)
        };
        assert_eq!(entry.path(), "/api/r\u{e9}sum\u{e9}");
        assert_eq!(
            entry.headers().collect::<Vec<_>>(),
            [
                ("x-first", "plain"),
                ("x-broken", "caf\u{fffd}"),
                ("x-last", "caf")
            ]
        );
    }
}
