//! Starting the in-process mock and running the checks against it.

use conformance::{Options, Report, Target};
use mock_server::clock::Clock;
use mock_server::{MockServer, Provider};

/// A mock on a manual clock (the checks move each run's own session clock).
pub(crate) async fn spawn_mock() -> MockServer {
    MockServer::builder()
        .clock(Clock::manual(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_770_230_101),
        ))
        .seed(7)
        .start()
        .await
        .unwrap()
}

/// Runs every check against `base_url` as the mock and returns the report.
pub(crate) async fn run_against(base_url: &str, provider: Provider, admin: bool) -> Report {
    let mut target = Target::mock(base_url, provider);
    target.admin = admin;
    conformance::run(&target, &Options::default(), &|_| {})
        .await
        .unwrap()
}

/// The report as text, for assertion messages.
pub(crate) fn show(report: &Report) -> String {
    let mut out = Vec::new();
    conformance::report::print(
        &mut out,
        &[conformance::report::Suite {
            name: report.provider,
            results: &report.results,
        }],
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}
