//! Lifecycle-aware conformance checks for the Fansly and OnlyFans upload and upload-status
//! endpoints, run against the in-process mock, a live API, or a client program under test.
//!
//! Generic API testers check one request at a time; an upload is a job that lives for minutes, so
//! the checks here upload, poll to the end, and hold every answer to `specs/` and to the
//! provider's state machine, then fetch every signed link.
//!
//! # Layout
//! - [`target`]: what is under test (mock with its admin API, or a live URL).
//! - [`check`]: the catalogue of checks and their outcomes.
//! - [`mod@run`]: the runner that drives a target and returns a [`Report`].
//! - [`client`]: grades a client program against the mock's built-in scenarios.
//! - [`receiver`]: grades a webhook receiver with the mock's own deliveries.
//! - [`drift`]: our specs against the providers' own, and live answers against snapshots.
//! - [`snapshot`]: normalised bodies and their differences.
//! - [`parity`]: recorded cassettes replayed against a target, answer by answer.
//! - [`report`]: JUnit, JSON and console output.
//!
//! # Example
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use conformance::{Options, Target, run};
//! use mock_server::{MockServer, Provider};
//!
//! let server = MockServer::builder().start().await.unwrap();
//! let target = Target::mock(server.base_url(), Provider::Fansly);
//! let report = run(&target, &Options::default(), &|_| {}).await.unwrap();
//! assert!(report.is_success(), "{:#?}", report.results);
//! # }
//! ```

pub mod check;
pub mod client;
pub mod drift;
pub mod parity;
pub mod receiver;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod target;

pub use crate::check::{CheckResult, Outcome};
pub use crate::run::{Options, Report, RunError, Sample, check_upload, run};
pub use crate::target::Target;
pub use mock_server::spec;
