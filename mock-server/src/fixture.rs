//! The provider constants and default lifecycles the mock serves, read from `fixtures/`.
//!
//! Everything a real provider decides that is not a function of the upload (how long processing
//! takes, how long links live, the converter host name, the fixed `note` text, credit prices) lives
//! in `fixtures/defaults.yaml`, not in code, so QA can change it without a rebuild. The file is
//! embedded in the binary, so `cargo run -p mock-server` works from anywhere; `--fixtures DIR`
//! swaps it for DIR's copy. A bad file fails start-up with the file and the field named.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::job::{Outcome, Phase, Step, Timeline, TimelineError, Until};

/// The embedded defaults, `fixtures/defaults.yaml` at build time.
pub const EMBEDDED_DEFAULTS: &str = include_str!("../../fixtures/defaults.yaml");

/// The repository's sample media (`fixtures/media`, 56 KB), in the binary: a binary copied
/// anywhere still has files for README's commands and for `file://` uploads to read.
pub const SAMPLE_MEDIA: &[(&str, &[u8])] = &[
    (
        "sample.jpg",
        include_bytes!("../../fixtures/media/sample.jpg"),
    ),
    (
        "sample.png",
        include_bytes!("../../fixtures/media/sample.png"),
    ),
    (
        "sample.gif",
        include_bytes!("../../fixtures/media/sample.gif"),
    ),
    (
        "sample.mp4",
        include_bytes!("../../fixtures/media/sample.mp4"),
    ),
];

/// The directory holding [`SAMPLE_MEDIA`] for a binary started away from a checkout: one per
/// set of samples, under the system's temp directory, written by the first start and reused by
/// every later one. A directory per start would be left behind by every killed process (the
/// tests kill theirs). Files are written aside and renamed, so concurrent starts never read a
/// half-written sample; a directory whose files differ from the embedded ones (another user's,
/// say) is not used.
pub fn shared_sample_media_dir() -> std::io::Result<PathBuf> {
    use sha2::Digest as _;
    let mut digest = sha2::Sha256::new();
    for (name, bytes) in SAMPLE_MEDIA {
        digest.update(name.as_bytes());
        digest.update(bytes);
    }
    let digest = hex::encode(digest.finalize());
    let dir = std::env::temp_dir().join(format!("mock-server-samples-{}", &digest[..16]));
    let holds = |dir: &Path| {
        SAMPLE_MEDIA
            .iter()
            .all(|(name, bytes)| std::fs::read(dir.join(name)).is_ok_and(|read| read == *bytes))
    };
    if !holds(&dir) {
        write_sample_media(&dir)?;
    }
    if holds(&dir) {
        Ok(dir)
    } else {
        Err(std::io::Error::other(format!(
            "{} does not hold the embedded samples",
            dir.display()
        )))
    }
}

/// Writes [`SAMPLE_MEDIA`] into `dir` (created if missing), each file written aside and renamed
/// into place.
pub fn write_sample_media(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in SAMPLE_MEDIA {
        let aside = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&aside, bytes)?;
        std::fs::rename(&aside, dir.join(name))?;
    }
    Ok(())
}

/// Where the repository's sample media live, for tests and dev tools in the source tree; never a
/// runtime default (the binary uses `fixtures/media` under its working directory, or else
/// writes [`SAMPLE_MEDIA`] out).
pub fn repo_media_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/media")
}

/// Why the fixtures could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not match the format (the message names the field, line and column).
    #[error("invalid fixture {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_norway::Error,
    },
    /// A timeline's steps cannot all be reached.
    #[error("invalid fixture {path}: {provider}.timeline: {source}")]
    Timeline {
        /// The file.
        path: PathBuf,
        /// `fansly` or `onlyfans`.
        provider: &'static str,
        /// The cause.
        #[source]
        source: TimelineError,
    },
}

/// Fansly's constants.
#[derive(Debug, Clone)]
pub struct FanslyFixture {
    /// The lifecycle of every upload job.
    pub timeline: Timeline,
    /// How long after completion signed links stay valid (5 h on the real API).
    pub link_ttl: Duration,
    /// Short sides of the scaled variants listed for each upload.
    pub variant_short_sides: Vec<u32>,
    /// `X-RateLimit-Plan`.
    pub plan: String,
    /// `X-RateLimit-Limit`.
    pub limit_per_minute: u32,
}

/// OnlyFans' constants.
#[derive(Debug, Clone)]
pub struct OnlyFansFixture {
    /// The lifecycle of every async upload.
    pub timeline: Timeline,
    /// How long after completion CloudFront links stay valid.
    pub link_ttl: Duration,
    /// How long after completion `sourceUrl` stays valid (7 days on the real API).
    pub source_url_ttl: Duration,
    /// How long after an upload completes its vault media becomes ready: until then it shows
    /// `isReady: false`, no URL and zero sizes, as the provider's own example does.
    pub vault_ready_after: Duration,
    /// The converter host reported in `host`.
    pub host: String,
    /// The fixed `note` of the synchronous CDN reply.
    pub note: String,
    /// `additional.user`.
    pub additional_user: String,
    /// Width of the thumbnail listed in `thumbs`.
    pub thumb_width: u32,
    /// Credits charged per started decimal megabyte.
    pub credits_per_decimal_mb: u64,
    /// The credit balance each API key starts with.
    pub credit_balance: i64,
    /// `_meta._rate_limits.limit_minute`.
    pub limit_per_minute: u32,
}

/// Everything loaded from `fixtures/`.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// Fansly's constants.
    pub fansly: FanslyFixture,
    /// OnlyFans' constants.
    pub onlyfans: OnlyFansFixture,
}

impl Fixtures {
    /// The defaults compiled into the binary.
    pub fn embedded() -> Self {
        Self::parse(EMBEDDED_DEFAULTS, Path::new("fixtures/defaults.yaml"))
            .expect("the embedded fixtures are checked by the test suite")
    }

    /// Reads `dir/defaults.yaml`.
    pub fn from_dir(dir: &Path) -> Result<Self, FixtureError> {
        let path = dir.join("defaults.yaml");
        let text = std::fs::read_to_string(&path).map_err(|source| FixtureError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, &path)
    }

    /// Parses the text of a defaults file; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, FixtureError> {
        let file: DefaultsFile =
            serde_norway::from_str(text).map_err(|source| FixtureError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let timeline = |provider: &'static str, spec: TimelineSpec| {
            spec.into_timeline()
                .map_err(|source| FixtureError::Timeline {
                    path: path.to_owned(),
                    provider,
                    source,
                })
        };
        Ok(Self {
            fansly: FanslyFixture {
                timeline: timeline("fansly", file.fansly.timeline)?,
                link_ttl: file.fansly.link_ttl,
                variant_short_sides: file.fansly.variant_short_sides,
                plan: file.fansly.rate_limit.plan,
                limit_per_minute: file.fansly.rate_limit.limit_per_minute,
            },
            onlyfans: OnlyFansFixture {
                timeline: timeline("onlyfans", file.onlyfans.timeline)?,
                link_ttl: file.onlyfans.link_ttl,
                source_url_ttl: file.onlyfans.source_url_ttl,
                vault_ready_after: file.onlyfans.vault_ready_after,
                host: file.onlyfans.host,
                note: file.onlyfans.note,
                additional_user: file.onlyfans.additional_user,
                thumb_width: file.onlyfans.thumb_width,
                credits_per_decimal_mb: file.onlyfans.credits_per_decimal_mb,
                credit_balance: file.onlyfans.credit_balance,
                limit_per_minute: file.onlyfans.rate_limit.limit_per_minute,
            },
        })
    }
}

// The file format. These types are the fixture file's wire format and never leave this module.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    fansly: FanslyFile,
    onlyfans: OnlyFansFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FanslyFile {
    timeline: TimelineSpec,
    #[serde(with = "humantime_serde")]
    link_ttl: Duration,
    variant_short_sides: Vec<u32>,
    rate_limit: FanslyRateLimit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FanslyRateLimit {
    plan: String,
    limit_per_minute: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyFansFile {
    timeline: TimelineSpec,
    #[serde(with = "humantime_serde")]
    link_ttl: Duration,
    #[serde(with = "humantime_serde")]
    source_url_ttl: Duration,
    #[serde(with = "humantime_serde")]
    vault_ready_after: Duration,
    host: String,
    note: String,
    additional_user: String,
    thumb_width: u32,
    credits_per_decimal_mb: u64,
    credit_balance: i64,
    rate_limit: OnlyFansRateLimit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyFansRateLimit {
    limit_per_minute: u32,
}

/// Either the `queued`/`processing` shorthand or an explicit list of steps.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimelineSpec {
    #[serde(default, with = "humantime_serde")]
    queued: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    processing: Option<Duration>,
    #[serde(default)]
    progress_steps: Option<u8>,
    #[serde(default)]
    steps: Option<Vec<StepSpec>>,
    #[serde(with = "serde_norway::with::singleton_map")]
    outcome: OutcomeSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    state: PhaseSpec,
    #[serde(default)]
    progress: u8,
    #[serde(default)]
    until: UntilSpec,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UntilSpec {
    #[serde(default, with = "humantime_serde")]
    elapsed: Option<Duration>,
    #[serde(default)]
    polls: Option<u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum PhaseSpec {
    Queued,
    Processing,
}

/// `completed` or `{ failed: "error text" }`.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OutcomeSpec {
    Completed,
    Failed(String),
}

impl OutcomeSpec {
    pub(crate) fn into_outcome(self) -> Outcome {
        match self {
            OutcomeSpec::Completed => Outcome::Completed,
            OutcomeSpec::Failed(reason) => Outcome::Failed {
                reason: reason.into(),
            },
        }
    }
}

impl TimelineSpec {
    pub(crate) fn into_timeline(self) -> Result<Timeline, TimelineError> {
        let outcome = self.outcome.into_outcome();
        match self.steps {
            Some(steps) => Timeline::new(
                steps
                    .into_iter()
                    .map(|step| Step {
                        phase: match step.state {
                            PhaseSpec::Queued => Phase::Queued,
                            PhaseSpec::Processing => Phase::Processing,
                        },
                        progress: step.progress,
                        until: Until {
                            elapsed: step.until.elapsed,
                            polls: step.until.polls,
                        },
                    })
                    .collect(),
                outcome,
            ),
            None => Ok(Timeline::linear(
                self.queued.unwrap_or_default(),
                self.processing.unwrap_or_default(),
                self.progress_steps.unwrap_or(1),
                outcome,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let fixtures = Fixtures::parse(EMBEDDED_DEFAULTS, Path::new("defaults.yaml")).unwrap();
        assert_eq!(fixtures.fansly.link_ttl, Duration::from_secs(5 * 3600));
        assert_eq!(
            fixtures.onlyfans.source_url_ttl,
            Duration::from_secs(604_800)
        );
        assert!(fixtures.fansly.timeline.steps().len() > 1);
    }

    #[test]
    fn explicit_steps_and_failed_outcome_parse() {
        let text = EMBEDDED_DEFAULTS.replacen(
            "    queued: 500ms\n    processing: 2s\n    progress_steps: 4\n    outcome: completed",
            "    steps:\n      - { state: queued, until: { polls: 2 } }\n    outcome: { failed: \"nope\" }",
            1,
        );
        let fixtures = Fixtures::parse(&text, Path::new("d.yaml")).unwrap();
        assert_eq!(
            fixtures.fansly.timeline.outcome(),
            &Outcome::Failed {
                reason: "nope".into()
            }
        );
    }

    #[test]
    fn unknown_field_is_named_with_its_file() {
        let text = EMBEDDED_DEFAULTS.replacen("link_ttl: 5h", "link_tll: 5h", 1);
        let err = Fixtures::parse(&text, Path::new("fixtures/x.yaml")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("fixtures/x.yaml"), "{message}");
        assert!(message.contains("link_tll"), "{message}");
    }
}
