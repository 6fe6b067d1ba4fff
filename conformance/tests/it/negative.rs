//! Every check fails against a mock made to break it: a faulted scenario, or a proxy that bends
//! one thing. Without these, a check that can never fail would look the same as one that works.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conformance::{Options, Outcome, Report, Target};
use mock_server::scenario::Scenario;
use mock_server::{MockServer, Provider};

use crate::support::{Answer, Seen, show, spawn_breaking_proxy, spawn_mock};

/// Runs the checks against `base_url` and asserts that `check` failed, with a message containing
/// `because`.
async fn assert_fails(base_url: &str, provider: Provider, check: &str, because: &str) -> Report {
    let target = Target::mock(base_url, provider);
    let options = Options {
        deadline: Duration::from_secs(20),
        ..Options::default()
    };
    let report = conformance::run(&target, &options, &|_| {}).await.unwrap();
    let result = report.result(check).unwrap();
    match &result.outcome {
        Outcome::Failed { failures } => assert!(
            failures.iter().any(|failure| failure.contains(because)),
            "{check} failed, but not because of {because:?}: {failures:#?}"
        ),
        other => panic!("{check} should fail, got {other:?}\n{}", show(&report)),
    }
    report
}

/// A mock whose default scenario is `name`.
async fn mock_with(name: &str) -> MockServer {
    MockServer::builder()
        .scenario(Scenario::resolve(name).unwrap())
        .start()
        .await
        .unwrap()
}

/// The breaking proxy with only a response edit.
async fn bend(
    server: &MockServer,
    on_response: impl Fn(&Seen, &mut Answer) + Send + Sync + 'static,
) -> String {
    spawn_breaking_proxy(server.base_url(), |_, _| {}, on_response).await
}

fn is_status(seen: &Seen) -> bool {
    seen.path.ends_with("/status")
}

#[tokio::test]
async fn not_a_server_error_catches_5xx() {
    let server = mock_with("flaky-5xx").await;
    assert_fails(
        &server.base_url(),
        Provider::Fansly,
        "not_a_server_error",
        "→ 503",
    )
    .await;
}

#[tokio::test]
async fn status_code_conformance_catches_an_undocumented_status() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |_, answer| {
        if answer.status == 404 {
            answer.status = 418;
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "status_code_conformance",
        "status 418 is not documented",
    )
    .await;
}

#[tokio::test]
async fn content_type_conformance_catches_a_body_that_does_not_parse() {
    let server = mock_with("malformed-body").await;
    assert_fails(
        &server.base_url(),
        Provider::OnlyFans,
        "content_type_conformance",
        "does not parse",
    )
    .await;
}

#[tokio::test]
async fn content_type_conformance_catches_a_wrong_content_type() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if seen.path.starts_with("/api/") {
            answer
                .headers
                .insert("content-type", "text/html".parse().unwrap());
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "content_type_conformance",
        "Content-Type text/html",
    )
    .await;
}

#[tokio::test]
async fn response_schema_conformance_names_the_pointer_of_a_renamed_field() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if seen.method == "POST" {
            answer.edit_json(|body| {
                if let Some(id) = body["data"]
                    .as_object_mut()
                    .and_then(|data| data.remove("jobId"))
                {
                    body["data"]["job_id"] = id;
                }
            });
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "response_schema_conformance",
        "/data: expected required property \"jobId\", got missing",
    )
    .await;
}

#[tokio::test]
async fn response_headers_conformance_catches_a_missing_rate_limit_header() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |_, answer| {
        answer.headers.remove("x-ratelimit-limit");
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "response_headers_conformance",
        "X-RateLimit-Limit missing",
    )
    .await;
}

#[tokio::test]
async fn ignored_auth_catches_a_server_that_serves_without_a_key() {
    let server = spawn_mock().await;
    let proxy = spawn_breaking_proxy(
        server.base_url(),
        |_, headers| {
            headers.insert("x-api-key", "anything".parse().unwrap());
        },
        |_, _| {},
    )
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "ignored_auth",
        "expected 401 without a key",
    )
    .await;
}

#[tokio::test]
async fn negative_data_rejection_catches_an_accepted_invalid_upload() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if seen.method == "POST" && answer.status == 422 {
            answer.status = 200;
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::OnlyFans,
        "negative_data_rejection",
        "expected a documented 4xx",
    )
    .await;
}

#[tokio::test]
async fn positive_data_acceptance_catches_a_refused_valid_upload() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if seen.method == "POST" && answer.status == 201 {
            answer.status = 400;
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "positive_data_acceptance",
        "expected a 2xx with a job id",
    )
    .await;
}

#[tokio::test]
async fn unknown_job_not_found_catches_a_wrong_status() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |_, answer| {
        if answer.status == 404 {
            answer.status = 400;
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::OnlyFans,
        "unknown_job_not_found",
        "expected 404",
    )
    .await;
}

#[tokio::test]
async fn reaches_terminal_state_catches_a_stuck_job() {
    let server = mock_with("stuck").await;
    assert_fails(
        &server.base_url(),
        Provider::Fansly,
        "reaches_terminal_state",
        "still active after 20s",
    )
    .await;
}

#[tokio::test]
async fn legal_state_transitions_catches_a_state_going_back() {
    let server = spawn_mock().await;
    let polls = Arc::new(AtomicUsize::new(0));
    let proxy = bend(&server, move |seen, answer| {
        if is_status(seen) && polls.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            answer.edit_json(|body| {
                if body["data"]["state"] == "active" {
                    body["data"]["state"] = "waiting".into();
                }
            });
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "legal_state_transitions",
        "active → waiting",
    )
    .await;
}

#[tokio::test]
async fn legal_state_transitions_catches_an_unknown_state() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if is_status(seen) {
            answer.edit_json(|body| {
                if body["status"] == "processing" {
                    body["status"] = "transcoding".into();
                }
            });
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::OnlyFans,
        "legal_state_transitions",
        "unknown state \"transcoding\"",
    )
    .await;
}

#[tokio::test]
async fn progress_monotonic_catches_progress_going_back() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if is_status(seen) {
            answer.edit_json(|body| {
                if body["data"]["state"] == "active" {
                    let progress = body["data"]["progress"].as_i64().unwrap();
                    body["data"]["progress"] = (90 - progress).into();
                }
            });
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "progress_monotonic",
        "progress went from",
    )
    .await;
}

#[tokio::test]
async fn terminal_state_stable_catches_a_completed_job_that_changes() {
    let server = spawn_mock().await;
    let completed_seen = Arc::new(AtomicUsize::new(0));
    let proxy = bend(&server, move |seen, answer| {
        if is_status(seen) {
            answer.edit_json(|body| {
                if body["status"] == "completed"
                    && completed_seen.fetch_add(1, Ordering::SeqCst) > 0
                {
                    *body = serde_json::json!({
                        "status": "failed",
                        "prefixed_id": body["prefixed_id"].clone(),
                        "error": "changed its mind",
                    });
                }
            });
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::OnlyFans,
        "terminal_state_stable",
        "was completed, a later poll said failed",
    )
    .await;
}

#[tokio::test]
async fn completed_carries_media_catches_wrong_dimensions() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if is_status(seen) {
            answer.edit_json(|body| {
                if let Some(media) = body.pointer_mut("/data/result/accountMedia/0/media") {
                    media["width"] = 100.into();
                }
            });
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "completed_carries_media",
        "the upload is 444x421",
    )
    .await;
}

#[tokio::test]
async fn failed_carries_error_catches_an_empty_reason() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if is_status(seen) {
            answer.edit_json(|body| {
                if body["data"]["state"] == "failed" {
                    body["data"]["failedReason"] = "".into();
                }
            });
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "failed_carries_error",
        "failed with no error reason",
    )
    .await;
}

#[tokio::test]
async fn cdn_serves_uploaded_bytes_catches_a_changed_byte() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if seen.path.starts_with("/cdn/") && answer.status == 200 {
            let mut bytes = answer.body.to_vec();
            bytes[100] ^= 1;
            answer.body = bytes.into();
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::OnlyFans,
        "cdn_serves_uploaded_bytes",
        "sha256",
    )
    .await;
}

#[tokio::test]
async fn cdn_rejects_tampering_catches_a_cdn_that_ignores_signatures() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        if seen.path.starts_with("/cdn/") && answer.status == 403 {
            answer.status = 200;
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "cdn_rejects_tampering",
        "signature changed was served",
    )
    .await;
}

#[tokio::test]
async fn cdn_links_expire_catches_links_that_are_dead_on_arrival() {
    let server = mock_with("expired-links").await;
    assert_fails(
        &server.base_url(),
        Provider::OnlyFans,
        "cdn_links_expire",
        "before the check began",
    )
    .await;
}

#[tokio::test]
async fn cdn_links_expire_catches_links_that_never_expire() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |seen, answer| {
        let expired = answer
            .headers
            .get("x-mock-denied-reason")
            .is_some_and(|reason| reason == "expired");
        if seen.path.starts_with("/cdn/") && expired {
            answer.status = 200;
        }
    })
    .await;
    assert_fails(
        &proxy,
        Provider::Fansly,
        "cdn_links_expire",
        "served after its expiry",
    )
    .await;
}

/// The proxy itself passes everything when it bends nothing: the failures above are the bends.
#[tokio::test]
async fn an_unbending_proxy_passes_every_check() {
    let server = spawn_mock().await;
    let proxy = bend(&server, |_, _: &mut Answer| {}).await;
    let report = conformance::run(
        &Target::mock(&proxy, Provider::OnlyFans),
        &Options::default(),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.n_failed(), 0, "{}", show(&report));
}
