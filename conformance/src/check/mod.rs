//! The checks: what each one promises, and the outcome it reached.
//!
//! A check never panics and never stops a run: the runner records findings against a check's
//! name as it goes, and `Findings::finish` turns them into one [`CheckResult`] per catalogued
//! check. This is rust-analyzer's "`(T, Vec<Error>)` rather than `Result<T, Error>`": a run that
//! met ten failures reports all ten.
//!
//! Names follow Schemathesis where the meaning is the same (`not_a_server_error`,
//! `status_code_conformance`, `content_type_conformance`, `response_schema_conformance`,
//! `response_headers_conformance`, `ignored_auth`, `negative_data_rejection`,
//! `positive_data_acceptance`); the lifecycle and CDN checks are ours, because no such tool
//! follows an upload to its end.

pub(crate) mod cdn;
pub(crate) mod lifecycle;
pub(crate) mod response;
pub(crate) mod upload;

use std::collections::BTreeMap;

use serde::Serialize;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Every case it examined met it.
    Passed,
    /// At least one case broke it; each message names the request and what was wrong.
    Failed {
        /// One line per failure.
        failures: Vec<String>,
    },
    /// It does not apply here, and why (a live target has no clock to advance, a scenario that
    /// sends no `Retry-After`).
    Skipped {
        /// Why.
        reason: String,
    },
    /// It applies here but nothing exercised it (a scenario built to send a 429 whose 429 never
    /// reached the client): not a pass, so a run of these fails unless the user allows it.
    Unexercised {
        /// Why it could not be exercised.
        reason: String,
    },
}

impl Outcome {
    /// Whether this outcome should fail CI.
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The check's name, e.g. `response_schema_conformance`.
    pub name: &'static str,
    /// What it promises, for people reading a report.
    pub description: &'static str,
    /// How many cases (responses, links, jobs) it examined.
    pub cases: usize,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A catalogued check.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Its name.
    pub name: &'static str,
    /// What it promises.
    pub description: &'static str,
}

macro_rules! catalogue {
    ($($ident:ident = $name:literal : $description:literal;)*) => {
        $(
            #[doc = $description]
            pub const $ident: Check = Check { name: $name, description: $description };
        )*
        /// Every check, in report order.
        pub const ALL: &[Check] = &[$($ident),*];
    };
}

catalogue! {
    NOT_A_SERVER_ERROR = "not_a_server_error":
        "No response is a 5xx and no request ends in a dropped or cut connection.";
    STATUS_CODE_CONFORMANCE = "status_code_conformance":
        "Every status code is documented for its operation in specs/.";
    CONTENT_TYPE_CONFORMANCE = "content_type_conformance":
        "Every body has a documented content type and parses as that type.";
    RESPONSE_SCHEMA_CONFORMANCE = "response_schema_conformance":
        "Every JSON body matches the documented schema for its status.";
    RESPONSE_HEADERS_CONFORMANCE = "response_headers_conformance":
        "Documented required headers (rate limits, Retry-After) are present and well-typed.";
    IGNORED_AUTH = "ignored_auth":
        "Requests without an API key are refused with 401, not served.";
    NEGATIVE_DATA_REJECTION = "negative_data_rejection":
        "Invalid uploads (no file, both file and file_url, a bad type) get a documented 4xx.";
    POSITIVE_DATA_ACCEPTANCE = "positive_data_acceptance":
        "Valid uploads are accepted with a 2xx and a job or media id.";
    UNKNOWN_JOB_NOT_FOUND = "unknown_job_not_found":
        "Polling a job id that does not exist gets the documented 404.";
    REACHES_TERMINAL_STATE = "reaches_terminal_state":
        "An accepted upload reaches completed or failed within the deadline.";
    LEGAL_STATE_TRANSITIONS = "legal_state_transitions":
        "Polled states only move forward through the provider's lifecycle.";
    PROGRESS_MONOTONIC = "progress_monotonic":
        "Reported progress never goes backwards and stays within 0-100.";
    TERMINAL_STATE_STABLE = "terminal_state_stable":
        "Once completed or failed, a job answers the same state on every later poll.";
    COMPLETED_CARRIES_MEDIA = "completed_carries_media":
        "A completed job carries its media: ids, type, dimensions and signed links.";
    FAILED_CARRIES_ERROR = "failed_carries_error":
        "A failed job carries a non-empty error reason.";
    CDN_SERVES_UPLOADED_BYTES = "cdn_serves_uploaded_bytes":
        "The original's signed link serves exactly the uploaded bytes; derived links serve media.";
    CDN_REJECTS_TAMPERING = "cdn_rejects_tampering":
        "A signed link with a changed signature or path is refused with 403.";
    CDN_LINKS_EXPIRE = "cdn_links_expire":
        "A signed link works until its expiry and is refused with 403 after it.";
}

/// What the runner has found so far, by check name.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    cases: BTreeMap<&'static str, usize>,
    failures: BTreeMap<&'static str, Vec<String>>,
    skips: BTreeMap<&'static str, String>,
}

impl Findings {
    /// `check` examined one case and it held.
    pub(crate) fn pass(&mut self, check: Check) {
        *self.cases.entry(check.name).or_default() += 1;
    }

    /// `check` examined one case and it broke, as `message` says.
    pub(crate) fn fail(&mut self, check: Check, message: impl Into<String>) {
        *self.cases.entry(check.name).or_default() += 1;
        self.failures
            .entry(check.name)
            .or_default()
            .push(message.into());
    }

    /// `check` passes or fails on `held`.
    pub(crate) fn expect(&mut self, check: Check, held: bool, message: impl FnOnce() -> String) {
        if held {
            self.pass(check);
        } else {
            self.fail(check, message());
        }
    }

    /// `check` cannot run here; the first reason given is kept.
    pub(crate) fn skip(&mut self, check: Check, reason: impl Into<String>) {
        self.skips
            .entry(check.name)
            .or_insert_with(|| reason.into());
    }

    /// One result per catalogued check, in catalogue order.
    pub(crate) fn finish(mut self) -> Vec<CheckResult> {
        ALL.iter()
            .map(|check| {
                let cases = self.cases.get(check.name).copied().unwrap_or(0);
                let outcome = if let Some(failures) = self.failures.remove(check.name) {
                    Outcome::Failed { failures }
                } else if cases > 0 {
                    Outcome::Passed
                } else {
                    // A check that says why it does not apply is skipped; one that simply met no
                    // case was not exercised, which is not a pass.
                    match self.skips.remove(check.name) {
                        Some(reason) => Outcome::Skipped { reason },
                        None => Outcome::Unexercised {
                            reason: "no case reached it".to_owned(),
                        },
                    }
                };
                CheckResult {
                    name: check.name,
                    description: check.description,
                    cases,
                    outcome,
                }
            })
            .collect()
    }
}
