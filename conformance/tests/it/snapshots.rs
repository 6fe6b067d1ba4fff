//! Normalised snapshots of every response kind per provider. Against the mock (the default) they
//! pin our shapes exactly; with `CONFORMANCE_BASE_URL` (and `CONFORMANCE_PROVIDER`,
//! `CONFORMANCE_API_KEY`, `CONFORMANCE_ACCOUNT`) the same snapshots are the drift detector for the
//! live API, compared as `conformance drift` compares them (shape, and values specs/ fixes).

use std::collections::BTreeSet;

use conformance::{Options, Report, Target};
use mock_server::Provider;

use crate::support::{show, spawn_mock};

/// A live target from the environment, when one is configured for `provider`.
fn live_target(provider: Provider) -> Option<Target> {
    let base_url = std::env::var("CONFORMANCE_BASE_URL").ok()?;
    let wanted = std::env::var("CONFORMANCE_PROVIDER").ok()?;
    if wanted != provider.slug() {
        return None;
    }
    Some(Target::live(
        base_url,
        provider,
        std::env::var("CONFORMANCE_API_KEY").ok()?,
        std::env::var("CONFORMANCE_ACCOUNT").ok()?,
    ))
}

async fn samples_of(provider: Provider, expected: &[&str]) {
    let server = spawn_mock().await;
    let (target, is_live) = match live_target(provider) {
        Some(target) => (target, true),
        None => (Target::mock(server.base_url(), provider), false),
    };
    let report: Report = conformance::run(&target, &Options::default(), &|_| {})
        .await
        .unwrap();
    if !is_live {
        let seen: BTreeSet<&str> = report.samples.keys().map(String::as_str).collect();
        let wanted: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(seen, wanted, "response kinds seen\n{}", show(&report));
    }
    if is_live {
        // A live API is judged as `conformance drift` judges it: by shape, and by value only
        // where specs/ fixes one; its progress, ids and sizes are its own.
        for kind in conformance::drift::compare_snapshots(&report, None) {
            assert!(
                kind.differences.is_empty(),
                "{}: {}",
                kind.kind,
                kind.differences
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        return;
    }
    for (kind, sample) in &report.samples {
        insta::assert_json_snapshot!(format!("{}_{kind}", provider.slug()), sample);
    }
}

#[tokio::test]
async fn every_fansly_response_kind_keeps_its_shape() {
    samples_of(
        Provider::Fansly,
        &[
            "error_400",
            "error_401",
            "error_404",
            "status_active",
            "status_completed",
            "status_failed",
            "status_waiting",
            "upload_accepted",
        ],
    )
    .await;
}

#[tokio::test]
async fn every_onlyfans_response_kind_keeps_its_shape() {
    samples_of(
        Provider::OnlyFans,
        &[
            "error_401",
            "error_404",
            "error_422",
            "status_completed_cdn",
            "status_failed",
            "status_pending",
            "status_processing",
            "upload_async_accepted",
            "upload_sync_cdn",
            "upload_sync_vault",
        ],
    )
    .await;
}
