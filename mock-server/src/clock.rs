//! The one place the mock reads time.
//!
//! Every job transition and every signed-link expiry is computed from [`Clock::now`], so a test that
//! holds a [`Clock::manual`] handle decides exactly when a job completes and when its links die,
//! without sleeping. The handle is a cheap `Clone` (an `Arc`), in the spirit of the injectable
//! `hyper::rt::Timer`.
//!
//! Wall time (not a monotonic instant) is the unit, because signed links carry expiry as Unix seconds.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall time shared by the whole server.
///
/// A system clock follows the machine; a manual clock stands still until [`Clock::advance`] or
/// [`Clock::set`] moves it, which is how tests cross a five-hour link expiry in a millisecond.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use mock_server::clock::Clock;
///
/// let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_770_000_000));
/// let before = clock.now();
/// clock.advance(Duration::from_secs(5 * 3600)).unwrap();
/// assert_eq!(clock.now().duration_since(before).unwrap(), Duration::from_secs(5 * 3600));
/// ```
#[derive(Clone, Debug)]
pub struct Clock {
    source: Arc<Source>,
}

#[derive(Debug)]
enum Source {
    System,
    Manual(Mutex<SystemTime>),
}

/// The latest time the mock represents: 9999-12-31T23:59:59Z, the last second ISO 8601's
/// four-digit years can write. Every sum of a time and a duration saturates here.
pub fn latest() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

/// `at + by`, saturating at [`latest`] instead of overflowing on huge durations (a fixture's
/// `link_ttl: 1000000y`, say).
pub fn saturating_add(at: SystemTime, by: Duration) -> SystemTime {
    at.checked_add(by).map_or(latest(), |sum| sum.min(latest()))
}

/// Why the clock refused to move.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClockError {
    /// Only a manual clock can be moved; moving the system clock would be a lie to every client.
    #[error("the clock follows the system time; start the server with --clock manual to move it")]
    NotManual,
    /// Past [`latest`] no date can be written.
    #[error("cannot move the clock past 9999-12-31T23:59:59Z")]
    PastLatest,
    /// Time never runs backwards: jobs and links are computed from elapsed time, and a terminal job
    /// must stay terminal.
    #[error("cannot set the clock back from {now_unix_ms} ms to {requested_unix_ms} ms")]
    Backwards {
        /// The clock's reading when asked, in Unix milliseconds.
        now_unix_ms: u128,
        /// The refused reading, in Unix milliseconds.
        requested_unix_ms: u128,
    },
}

impl Clock {
    /// A clock that follows the machine's wall time, for interactive use.
    pub fn system() -> Self {
        Self {
            source: Arc::new(Source::System),
        }
    }

    /// A clock frozen at `start` (capped at [`latest`]) until it is advanced, for tests and
    /// reproducible runs.
    pub fn manual(start: SystemTime) -> Self {
        Self {
            source: Arc::new(Source::Manual(Mutex::new(start.min(latest())))),
        }
    }

    /// Whether the clock can be moved by [`Clock::advance`] and [`Clock::set`].
    pub fn is_manual(&self) -> bool {
        matches!(*self.source, Source::Manual(_))
    }

    /// The current wall time.
    #[allow(clippy::disallowed_methods)] // This is the one module allowed to read the system time.
    pub fn now(&self) -> SystemTime {
        match &*self.source {
            Source::System => SystemTime::now(),
            Source::Manual(now) => *now.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// The current wall time in whole Unix seconds, the unit of signed-link expiry.
    pub fn unix_secs(&self) -> u64 {
        unix_secs(self.now())
    }

    /// Moves a manual clock forward by `by` and returns the new time.
    pub fn advance(&self, by: Duration) -> Result<SystemTime, ClockError> {
        match &*self.source {
            Source::System => Err(ClockError::NotManual),
            Source::Manual(now) => {
                let mut now = now.lock().unwrap_or_else(PoisonError::into_inner);
                let later = now
                    .checked_add(by)
                    .filter(|later| *later <= latest())
                    .ok_or(ClockError::PastLatest)?;
                *now = later;
                Ok(later)
            }
        }
    }

    /// Sets a manual clock to `to`, which must not be earlier than the current reading.
    pub fn set(&self, to: SystemTime) -> Result<SystemTime, ClockError> {
        match &*self.source {
            Source::System => Err(ClockError::NotManual),
            Source::Manual(now) => {
                let mut now = now.lock().unwrap_or_else(PoisonError::into_inner);
                if to > latest() {
                    return Err(ClockError::PastLatest);
                }
                if to < *now {
                    return Err(ClockError::Backwards {
                        now_unix_ms: unix_millis(*now),
                        requested_unix_ms: unix_millis(to),
                    });
                }
                *now = to;
                Ok(*now)
            }
        }
    }
}

/// Measures how long the mock took to answer, for the journal. Real elapsed time, whatever the
/// mock's clock says: a manual clock must not make every request look instant.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts measuring.
    #[allow(clippy::disallowed_methods)] // This is the one module allowed to read the system time.
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Milliseconds since [`Stopwatch::start`].
    pub fn elapsed_ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }

    /// Time since [`Stopwatch::start`], for benchmarks and latency histograms.
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Whole seconds since the Unix epoch; times before it read as 0.
pub fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Milliseconds since the Unix epoch; times before it read as 0.
pub fn unix_millis(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
}

/// `2026-02-04T18:35:01.526Z`: ISO 8601 with milliseconds in UTC, as Fansly stamps responses.
/// Times past [`latest`] are written as [`latest`].
pub fn iso_millis(at: SystemTime) -> String {
    let mut text = Vec::with_capacity(ISO_MILLIS_LEN);
    push_iso_millis(at, &mut text);
    String::from_utf8(text)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// The length of an [`iso_millis`] timestamp (any year from 0000 to 9999).
pub(crate) const ISO_MILLIS_LEN: usize = "2026-02-04T18:35:01.526Z".len();

/// [`iso_millis`] appended to `out`: a poll's answer is built in one buffer.
///
/// Every Fansly answer carries one, so each thread keeps the last second it formatted and only
/// appends the milliseconds while the second stays the same.
pub(crate) fn push_iso_millis(at: SystemTime, out: &mut Vec<u8>) {
    thread_local! {
        /// (Unix second, `YYYY-MM-DDTHH:MM:SS.`) of the last time formatted on this thread.
        static LAST_SECOND: std::cell::RefCell<Option<(u64, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    let at = at.min(latest());
    let Ok(since) = at.duration_since(UNIX_EPOCH) else {
        out.extend_from_slice(format_iso_millis(at).as_bytes());
        return;
    };
    let (second, millis) = (since.as_secs(), since.subsec_millis());
    LAST_SECOND.with_borrow_mut(|last| {
        let prefix = match last {
            Some((cached, prefix)) if *cached == second => prefix,
            _ => {
                let whole = UNIX_EPOCH + Duration::from_secs(second);
                let mut prefix = format_iso_millis(whole);
                prefix.truncate(prefix.len() - "000Z".len());
                &mut last.insert((second, prefix)).1
            }
        };
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(&[
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
            b'Z',
        ]);
    });
}

fn format_iso_millis(at: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(at)
        .format(&format)
        .expect("a UTC date in range formats")
}

/// `2026-04-03T16:16:36+00:00`: ISO 8601 to the second with an explicit offset, as Laravel
/// (OnlyFansAPI) writes dates. Times past [`latest`] are written as [`latest`].
pub fn iso_seconds_offset(at: SystemTime) -> String {
    let at = at.min(latest());
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");
    time::OffsetDateTime::from(at)
        .format(&format)
        .expect("a UTC date in range formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_stands_still_until_advanced() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1_500)).unwrap();
        assert_eq!(clock.now(), start + Duration::from_millis(1_500));
        assert_eq!(clock.unix_secs(), 1_001);
    }

    #[test]
    fn clones_share_one_reading() {
        let clock = Clock::manual(UNIX_EPOCH);
        let other = clock.clone();
        other.advance(Duration::from_secs(7)).unwrap();
        assert_eq!(clock.unix_secs(), 7);
    }

    #[test]
    fn formats_like_each_provider() {
        let at = UNIX_EPOCH + Duration::from_millis(1_770_230_101_526);
        assert_eq!(iso_millis(at), "2026-02-04T18:35:01.526Z");
        assert_eq!(iso_seconds_offset(at), "2026-02-04T18:35:01+00:00");
    }

    #[test]
    fn iso_millis_agrees_with_the_formatter_within_and_across_seconds() {
        let start = 1_770_230_100_990_u64;
        for millis in (start..start + 2_100)
            .step_by(7)
            .chain([0, 999, 1_000, 86_399_999])
        {
            let at = UNIX_EPOCH + Duration::from_millis(millis);
            assert_eq!(iso_millis(at), format_iso_millis(at), "{millis} ms");
        }
        let before_epoch = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(iso_millis(before_epoch), "1969-12-31T23:59:58.500Z");
    }

    #[test]
    fn system_clock_cannot_be_moved() {
        let clock = Clock::system();
        assert_eq!(
            clock.advance(Duration::from_secs(1)),
            Err(ClockError::NotManual)
        );
        assert!(!clock.is_manual());
    }

    #[test]
    fn huge_advances_are_refused_and_times_saturate() {
        let clock = Clock::manual(UNIX_EPOCH);
        assert_eq!(
            clock.advance(Duration::from_secs(u64::MAX)),
            Err(ClockError::PastLatest)
        );
        assert_eq!(clock.unix_secs(), 0, "a refused advance moved the clock");
        assert_eq!(
            saturating_add(latest(), Duration::from_secs(u64::MAX)),
            latest()
        );
        assert_eq!(iso_millis(latest()), "9999-12-31T23:59:59.000Z");
    }

    #[test]
    fn manual_clock_refuses_to_go_back() {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(10));
        let err = clock.set(UNIX_EPOCH + Duration::from_secs(9)).unwrap_err();
        assert_eq!(
            err,
            ClockError::Backwards {
                now_unix_ms: 10_000,
                requested_unix_ms: 9_000
            }
        );
        clock.set(UNIX_EPOCH + Duration::from_secs(11)).unwrap();
        assert_eq!(clock.unix_secs(), 11);
    }
}
