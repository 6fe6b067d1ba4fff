//! Every check passes against the mock, for both providers, with nothing skipped.

use mock_server::Provider;

use crate::support::{run_against, show, spawn_mock};

#[tokio::test]
async fn every_check_passes_against_the_mock_for_fansly() {
    let server = spawn_mock().await;
    let report = run_against(&server.base_url(), Provider::Fansly, true).await;
    assert_eq!(report.n_failed(), 0, "{}", show(&report));
    assert_eq!(report.n_skipped(), 0, "{}", show(&report));
}

#[tokio::test]
async fn every_check_passes_against_the_mock_for_onlyfans() {
    let server = spawn_mock().await;
    let report = run_against(&server.base_url(), Provider::OnlyFans, true).await;
    assert_eq!(report.n_failed(), 0, "{}", show(&report));
    assert_eq!(
        report.n_skipped(),
        1,
        "only progress_monotonic: {}",
        show(&report)
    );
}
