//! Drift: our specs against the provider's, and live answers against the snapshots.

use conformance::drift::{Severity, compare_snapshots, compare_specs, spec_drift};
use conformance::{Options, Target};
use mock_server::Provider;
use mock_server::spec::{Document, Spec};

use crate::support::{spawn_breaking_proxy, spawn_mock};

#[test]
fn our_onlyfans_spec_has_no_actionable_drift_and_accepts_the_providers_examples() {
    let found = spec_drift().unwrap();
    let actionable: Vec<_> = found
        .iter()
        .filter(|item| item.severity == Severity::Actionable)
        .collect();
    assert!(actionable.is_empty(), "{actionable:#?}");
    assert!(
        found
            .iter()
            .any(|item| item.field == "status" && item.change.starts_with("enum")),
        "our status enum is reported as stricter: {found:#?}"
    );
}

#[test]
fn a_retyped_field_in_ours_is_actionable_and_named() {
    let upstream = Spec::load(Document::OnlyFansUpstream).unwrap();
    let original = Document::OnlyFans.text();
    let edited = original.replace(
        "error: { type: string, example: Failed to download file from the provided URL. }",
        "error: { type: integer }",
    );
    assert_ne!(edited, original, "the spec text this test edits has moved");
    let ours = Spec::parse(Document::OnlyFans, &edited).unwrap();
    let found = compare_specs(&upstream, &ours);
    let retyped: Vec<_> = found
        .iter()
        .filter(|item| item.severity == Severity::Actionable && item.field == "error")
        .map(|item| item.change.clone())
        .collect();
    assert!(
        retyped.iter().any(|change| change.contains("type")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(
            |item| item.change.contains("the provider's example breaks ours")
                && item.change.contains("/error")
        ),
        "the provider's failed example no longer validates: {found:#?}"
    );
}

#[tokio::test]
async fn mock_answers_match_the_committed_snapshots() {
    let server = spawn_mock().await;
    for provider in [Provider::Fansly, Provider::OnlyFans] {
        let target = Target::mock(server.base_url(), provider);
        let report = conformance::run(&target, &Options::default(), &|_| {})
            .await
            .unwrap();
        let drift = compare_snapshots(&report, None);
        for kind in drift {
            assert!(kind.has_snapshot, "{} has no snapshot", kind.kind);
            assert!(
                kind.differences.is_empty(),
                "{}: {:?}",
                kind.kind,
                kind.differences
            );
        }
    }
}

#[tokio::test]
async fn a_renamed_field_in_a_live_answer_is_named_with_its_pointer() {
    let server = spawn_mock().await;
    let proxy = spawn_breaking_proxy(
        server.base_url(),
        |_, _| {},
        |seen, answer| {
            if seen.path.ends_with("/status") {
                answer.edit_json(|body| {
                    if let Some(progress) = body["data"]
                        .as_object_mut()
                        .and_then(|data| data.remove("progress"))
                    {
                        body["data"]["percent"] = progress;
                    }
                });
            }
        },
    )
    .await;
    let target = Target::mock(&proxy, Provider::Fansly);
    let report = conformance::run(&target, &Options::default(), &|_| {})
        .await
        .unwrap();
    let drift = compare_snapshots(&report, None);
    let waiting = drift
        .iter()
        .find(|kind| kind.kind == "status_waiting")
        .unwrap();
    let lines: Vec<String> = waiting
        .differences
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "/data/percent: field added (integer)",
            "/data/progress: field removed (was integer)"
        ]
        .map(str::to_owned)
        .to_vec()
        .into_iter()
        .rev()
        .collect::<Vec<_>>(),
    );
}
