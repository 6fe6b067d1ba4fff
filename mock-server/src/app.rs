//! The handles every request handler needs, built once per server.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::fixture::Fixtures;
use crate::scenario::{self, Scenario, ScenarioError};
use crate::signing::SigningKey;
use crate::store::{SessionId, Store};
use crate::upload::Limits;

/// Shared, read-mostly server state; the only mutable part is the [`Store`].
#[derive(Debug)]
pub(crate) struct App {
    /// The only source of time.
    pub(crate) clock: Clock,
    /// Provider constants and default lifecycles.
    pub(crate) fixtures: Fixtures,
    /// Fansly's constant rate-limit headers, built once instead of on every response.
    pub(crate) fansly_headers: FanslyHeaders,
    /// Signs and verifies CDN links.
    pub(crate) key: SigningKey,
    /// Jobs, media, rate windows, credits.
    pub(crate) store: Store,
    /// The one seed behind ids and probabilistic faults.
    pub(crate) seed: u64,
    /// The server's default scenario and the ones requests may name.
    pub(crate) scenarios: Scenarios,
    /// Scenario choice by account and file name.
    pub(crate) rules: scenario::Rules,
    /// What clients sent and got.
    pub(crate) journal: crate::journal::Journal,
    /// The changes the store, journal and webhook sender apply, for `GET /__admin/events`.
    pub(crate) events: crate::events::Events,
    /// Where OnlyFans webhooks go, if anywhere.
    pub(crate) webhook: Option<Arc<crate::webhook::WebhookConfig>>,
    /// Endpoint pauses, held out-of-order events and recent deliveries (for redelivery).
    pub(crate) webhook_state: crate::webhook::State,
    /// Wakes the webhook sender when a clock moves.
    pub(crate) webhook_wake: tokio::sync::Notify,
    /// `http://host:port` of this server, for links in webhooks (no request to take a Host from).
    pub(crate) origin: String,
    /// Whether a key over its per-minute limit gets 429 (otherwise the headers only count).
    pub(crate) enforce_rate_limits: bool,
    /// Where uploads are written.
    pub(crate) storage_dir: PathBuf,
    /// Upload size limits.
    pub(crate) limits: Limits,
    /// Accepted API keys; empty accepts any non-empty key.
    pub(crate) api_keys: Vec<String>,
    /// The origin put in links and `polling_url`; the request's `Host` when unset.
    pub(crate) public_url: Option<String>,
    /// The directory `file://` URLs may read from.
    pub(crate) media_root: Option<PathBuf>,
    /// `host:port` origins `http://` file_url may name; empty is any loopback origin.
    pub(crate) file_url_hosts: Vec<String>,
    /// Timeouts and the connection cap.
    pub(crate) connection: crate::ConnectionLimits,
    /// The bearer token every admin request needs; without one, only loopback clients may use it.
    pub(crate) admin_token: Option<String>,
    /// Proxy mode (`--proxy`): the providers forwarded upstream, and the recorder.
    pub(crate) proxy: Option<Arc<crate::record::Proxy>>,
}

/// `X-RateLimit-*` values as header values, built once: cloning one shares its bytes, where
/// formatting a number allocated on every response.
#[derive(Debug)]
pub(crate) struct FanslyHeaders {
    /// `X-RateLimit-Limit`.
    pub(crate) limit: http::HeaderValue,
    /// `X-RateLimit-Plan`; absent if the fixture's plan is not a valid header value.
    pub(crate) plan: Option<http::HeaderValue>,
    /// `X-RateLimit-Remaining` for 0 up to the limit (at most [`MAX_CACHED_REMAINING`] of them).
    remaining: Vec<http::HeaderValue>,
}

/// Remaining counts kept as ready header values; a fixture with a larger limit formats the rest.
const MAX_CACHED_REMAINING: u32 = 9_999;

/// "0" to "9999", in one string made once per process: header values made from it are static, so
/// cloning one into every answer touches no reference count (which both workers would otherwise
/// bounce between their caches on every poll).
static NUMBERS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    use std::fmt::Write as _;
    let mut all = String::new();
    let mut ends = Vec::new();
    for n in 0..=MAX_CACHED_REMAINING {
        // Written in place: no string of its own per number.
        let _ = write!(all, "{n}");
        ends.push(all.len());
    }
    let all: &'static str = Box::leak(all.into_boxed_str());
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let number = &all[start..end];
            start = end;
            number
        })
        .collect()
});

/// Plan names made static once per process (a fixture has one; a process loads few fixtures).
static PLANS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// `n` as a static header value when it is in [`NUMBERS`].
fn static_number(n: u32) -> Option<http::HeaderValue> {
    NUMBERS
        .get(usize::try_from(n).ok()?)
        .map(|number| http::HeaderValue::from_static(number))
}

/// `plan` as a header value, if it is a valid one: static when it is visible ASCII (all that
/// `HeaderValue::from_static` takes), else an ordinary one.
fn static_plan(plan: &str) -> Option<http::HeaderValue> {
    let value = http::HeaderValue::from_str(plan).ok()?;
    if !plan.bytes().all(|b| (32..127).contains(&b) || b == b'\t') {
        return Some(value);
    }
    let mut plans = PLANS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let known = match plans.iter().find(|known| **known == plan) {
        Some(known) => *known,
        None => {
            let made: &'static str = Box::leak(plan.to_owned().into_boxed_str());
            plans.push(made);
            made
        }
    };
    Some(http::HeaderValue::from_static(known))
}

impl FanslyHeaders {
    pub(crate) fn new(fixture: &crate::fixture::FanslyFixture) -> Self {
        Self {
            limit: static_number(fixture.limit_per_minute)
                .unwrap_or_else(|| http::HeaderValue::from(fixture.limit_per_minute)),
            plan: static_plan(&fixture.plan),
            remaining: (0..=fixture.limit_per_minute.min(MAX_CACHED_REMAINING))
                .filter_map(static_number)
                .collect(),
        }
    }

    /// `X-RateLimit-Remaining: n`.
    pub(crate) fn remaining(&self, n: u32) -> http::HeaderValue {
        usize::try_from(n)
            .ok()
            .and_then(|index| self.remaining.get(index))
            .cloned()
            .unwrap_or_else(|| http::HeaderValue::from(n))
    }
}

impl App {
    /// The scenario uploads follow when they name none and their session has none: the one the
    /// admin API set (state, kept with `--state-dir`), else the one the server started with.
    pub(crate) fn default_scenario(&self) -> Arc<Scenario> {
        self.store
            .default_scenario()
            .unwrap_or_else(|| self.scenarios.startup_default())
    }

    /// The time on `session`'s clock: the server's clock plus the session's own advances.
    pub(crate) fn now(&self, session: &SessionId) -> std::time::SystemTime {
        self.store.session_now(session, self.clock.now())
    }
}

/// The scenarios a request may pick by name, and the default the server started with. Which
/// default is in force is state (the admin API can change it), so it lives in the store; this is
/// configuration, fixed for the process.
#[derive(Debug)]
pub(crate) struct Scenarios {
    default: Arc<Scenario>,
    /// The cassettes of `--recordings DIR`, by file stem, loaded at start-up.
    recordings: std::collections::BTreeMap<String, Arc<Scenario>>,
}

impl Scenarios {
    pub(crate) fn new(
        default: Arc<Scenario>,
        recordings: std::collections::BTreeMap<String, Arc<Scenario>>,
    ) -> Self {
        Self {
            default,
            recordings,
        }
    }

    /// The cassettes of `--recordings`, in name order.
    pub(crate) fn recordings(&self) -> impl Iterator<Item = &Arc<Scenario>> {
        self.recordings.values()
    }

    /// The scenario uploads follow when nothing else chose one (`--scenario`, else `happy`).
    pub(crate) fn startup_default(&self) -> Arc<Scenario> {
        Arc::clone(&self.default)
    }

    /// A scenario by name: the startup default's own name (a scenario file's), a cassette of
    /// `--recordings`, or a built-in. Never a path: a request header must not make the server
    /// read files.
    pub(crate) fn by_name(&self, name: &str) -> Result<Arc<Scenario>, ScenarioError> {
        if self.default.name == name {
            return Ok(Arc::clone(&self.default));
        }
        if let Some(recording) = self.recordings.get(name) {
            return Ok(Arc::clone(recording));
        }
        if scenario::BUILT_IN
            .iter()
            .any(|(built_in, _)| *built_in == name)
        {
            return Scenario::resolve(name);
        }
        Err(ScenarioError::Unknown {
            name: name.to_owned(),
            known: scenario::BUILT_IN.iter().map(|(name, _)| *name).collect(),
        })
    }
}
