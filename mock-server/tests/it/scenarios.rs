//! Every built-in scenario and fault kind, end to end: what the client sees (status, headers,
//! body, broken connections), with time moved only by the manual clock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mock_server::MockServer;
use mock_server::scenario::Scenario;
use mock_server::spec::Document;
use reqwest::multipart::Form;
use serde_json::Value;

use crate::support::{Reply, TestServer, file_part, sample, spawn_server, spawn_with};

const ACCOUNT: &str = "acct_1";

fn png_form() -> Form {
    Form::new().part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    )
}

/// Uploads to Fansly under `scenario` (by header) and returns the job id.
async fn fansly_job(server: &TestServer, scenario: &str) -> String {
    let response = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .header("x-mock-scenario", scenario)
        .multipart(png_form())
        .send()
        .await
        .unwrap();
    let reply = Reply::checked(response, "POST", Document::Fansly).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["data"]["jobId"].as_str().unwrap().to_owned()
}

/// Uploads to OnlyFans (async) under `scenario` and returns the upload id.
async fn onlyfans_job(server: &TestServer, scenario: &str) -> String {
    let response = server
        .http
        .post(server.url(&format!("/api/{ACCOUNT}/media/upload")))
        .bearer_auth("k")
        .header("x-mock-scenario", scenario)
        .multipart(png_form().text("async", "true"))
        .send()
        .await
        .unwrap();
    let reply = Reply::checked(response, "POST", Document::OnlyFans).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply.body["prefixed_id"].as_str().unwrap().to_owned()
}

/// A raw Fansly status request, for faults that break the body or the connection.
async fn raw_fansly_status(
    server: &TestServer,
    job_id: &str,
) -> reqwest::Result<reqwest::Response> {
    server
        .http
        .get(server.url(&format!("/api/fansly/media/upload/{job_id}/status")))
        .header("x-api-key", "k")
        .send()
        .await
}

#[tokio::test]
async fn happy_completes_on_the_default_timeline() {
    let server = spawn_server().await;
    let job_id = fansly_job(&server, "happy").await;
    server.advance(Duration::from_millis(2_500)).await;
    assert_eq!(
        server.fansly_status(&job_id).await.body["data"]["state"],
        "completed"
    );
}

#[tokio::test]
async fn slow_takes_minutes_with_progress_creeping_up() {
    let server = spawn_server().await;
    let job_id = fansly_job(&server, "slow").await;
    server.advance(Duration::from_secs(29)).await;
    assert_eq!(
        server.fansly_status(&job_id).await.body["data"]["state"],
        "waiting"
    );
    let mut progress = vec![];
    for _ in 0..10 {
        server.advance(Duration::from_secs(18)).await;
        let data = server.fansly_status(&job_id).await.body["data"].clone();
        assert_eq!(data["state"], "active", "{data}");
        progress.push(data["progress"].as_u64().unwrap());
    }
    assert_eq!(progress, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    server.advance(Duration::from_secs(18)).await;
    assert_eq!(
        server.fansly_status(&job_id).await.body["data"]["state"],
        "completed"
    );
}

#[tokio::test]
async fn stuck_never_finishes() {
    // A month without a poll would expire the jobs under the default 24 h idle expiry.
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .idle_expiry(Duration::from_secs(365 * 24 * 3600)),
    )
    .await;
    let fansly = fansly_job(&server, "stuck").await;
    let onlyfans = onlyfans_job(&server, "stuck").await;
    server.advance(Duration::from_secs(30 * 24 * 3600)).await;
    let data = server.fansly_status(&fansly).await.body["data"].clone();
    assert_eq!(
        (data["state"].as_str(), data["progress"].as_u64()),
        (Some("active"), Some(50))
    );
    assert_eq!(
        server.onlyfans_status(ACCOUNT, &onlyfans).await.body["status"],
        "processing"
    );
}

#[tokio::test]
async fn fail_while_processing_fails_after_showing_progress() {
    let server = spawn_server().await;
    let job_id = fansly_job(&server, "fail-while-processing").await;
    server.advance(Duration::from_millis(600)).await;
    assert_eq!(
        server.fansly_status(&job_id).await.body["data"]["progress"],
        20
    );
    server.advance(Duration::from_millis(600)).await;
    assert_eq!(
        server.fansly_status(&job_id).await.body["data"]["progress"],
        60
    );
    server.advance(Duration::from_secs(1)).await;
    let data = server.fansly_status(&job_id).await.body["data"].clone();
    assert_eq!(data["state"], "failed");
    assert_eq!(data["progress"], 60);
    assert_eq!(
        data["failedReason"],
        "Media processing failed: the file could not be transcoded."
    );
}

#[tokio::test]
async fn rejected_by_onlyfans_carries_the_upstream_reason_verbatim() {
    let server = spawn_server().await;
    let upload_id = onlyfans_job(&server, "rejected-by-onlyfans").await;
    server.advance(Duration::from_secs(3)).await;
    let body = server.onlyfans_status(ACCOUNT, &upload_id).await.body;
    assert_eq!(body["status"], "failed");
    assert_eq!(
        body["error"],
        r#"OnlyFans rejected the upload: {"error":{"code":0,"message":"Wrong file format or corrupted file"}}"#
    );
}

#[tokio::test]
async fn fail_then_succeed_on_retry_fails_the_first_job_only() {
    let server = spawn_server().await;
    let first = onlyfans_job(&server, "fail-then-succeed-on-retry").await;
    let second = onlyfans_job(&server, "fail-then-succeed-on-retry").await;
    server.advance(Duration::from_secs(3)).await;
    let first = server.onlyfans_status(ACCOUNT, &first).await.body;
    assert_eq!(first["status"], "failed");
    assert_eq!(
        first["error"],
        "Upload to the CDN failed. Please try again."
    );
    assert_eq!(
        server.onlyfans_status(ACCOUNT, &second).await.body["status"],
        "completed"
    );
}

#[tokio::test]
async fn rate_limited_answers_429_with_retry_after_on_polls_2_and_3() {
    let server = spawn_server().await;
    let job_id = fansly_job(&server, "rate-limited").await;
    assert_eq!(server.fansly_status(&job_id).await.status, 200);
    for _ in 0..2 {
        let limited = server.fansly_status(&job_id).await;
        assert_eq!(limited.status, 429);
        assert_eq!(
            limited.body["message"],
            "Rate limit exceeded. Please wait before making more requests."
        );
        assert_eq!(limited.headers["retry-after"], "2");
        assert_eq!(limited.headers["x-ratelimit-retry-after"], "2");
    }
    assert_eq!(server.fansly_status(&job_id).await.status, 200);

    let upload_id = onlyfans_job(&server, "rate-limited").await;
    assert_eq!(
        server.onlyfans_status(ACCOUNT, &upload_id).await.status,
        200
    );
    let limited = server.onlyfans_status(ACCOUNT, &upload_id).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["message"], "Too Many Attempts.");
    assert_eq!(limited.headers["retry-after"], "2");
}

#[tokio::test]
async fn flaky_5xx_fails_polls_1_3_and_4_in_the_providers_shape() {
    let server = spawn_server().await;
    let job_id = fansly_job(&server, "flaky-5xx").await;
    let statuses: Vec<u16> = {
        let mut statuses = vec![];
        for _ in 0..5 {
            statuses.push(server.fansly_status(&job_id).await.status);
        }
        statuses
    };
    assert_eq!(statuses, [503, 200, 502, 500, 200]);
    let upload_id = onlyfans_job(&server, "flaky-5xx").await;
    let first = server.onlyfans_status(ACCOUNT, &upload_id).await;
    assert_eq!(
        (first.status, first.body["message"].as_str()),
        (503, Some("Server Error"))
    );
    assert_eq!(first.headers["retry-after"], "1");
}

#[tokio::test]
async fn expired_links_are_dead_on_arrival() {
    let server = spawn_server().await;
    let job_id = fansly_job(&server, "expired-links").await;
    server.advance(Duration::from_secs(3)).await;
    let body = server.fansly_status(&job_id).await.body;
    let link = body["data"]["result"]["accountMedia"][0]["media"]["locations"][0]["location"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = server.http.get(&link).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-mock-denied-reason"], "expired");
}

#[tokio::test]
async fn drop_connection_closes_the_second_poll_without_an_answer() {
    let server = spawn_server().await;
    let job_id = fansly_job(&server, "drop-connection").await;
    assert_eq!(
        raw_fansly_status(&server, &job_id).await.unwrap().status(),
        200
    );
    let dropped = raw_fansly_status(&server, &job_id).await;
    assert!(dropped.is_err(), "the 2nd poll was answered: {dropped:?}");
    assert_eq!(server.fansly_status(&job_id).await.status, 200);
}

#[tokio::test]
async fn malformed_body_cuts_the_second_polls_json_in_half() {
    let server = spawn_server().await;
    let job_id = fansly_job(&server, "malformed-body").await;
    raw_fansly_status(&server, &job_id).await.unwrap();
    let response = raw_fansly_status(&server, &job_id).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("{\"statusCode\":200"), "{text}");
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "still valid JSON: {text}"
    );
    assert_eq!(server.fansly_status(&job_id).await.status, 200);
}

#[tokio::test]
async fn slow_upload_dribbles_a_complete_response() {
    let server = spawn_server().await;
    let response = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .header("x-mock-scenario", "slow-upload")
        .multipart(png_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        response.headers().get("content-length").is_none(),
        "not dribbled: {:?}",
        response.headers()
    );
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let reply = Reply::checked(response, "POST", Document::Fansly).await;
    assert_eq!(reply.body["data"]["jobId"], "1");
}

/// A scenario from YAML text, for fault kinds no built-in uses.
fn custom(yaml: &str) -> Arc<Scenario> {
    Arc::new(Scenario::parse("custom", yaml, Path::new("custom.yaml")).unwrap())
}

#[tokio::test]
async fn empty_truncated_and_delayed_answers() {
    let scenario = custom(
        "description: d\nfaults:\n  - on: status\n    nth: [1]\n    empty: {}\n  - on: status\n    nth: [2]\n    truncate: {}\n  - on: status\n    nth: [3]\n    latency: { uniform: { min: 1ms, max: 5ms } }\n  - on: upload\n    nth: [2]\n    respond: { status: 503, retry_after: 7 }\n",
    );
    let server = spawn_with(MockServer::builder().scenario(scenario)).await;
    let job_id = fansly_job(&server, "custom").await;
    let empty = raw_fansly_status(&server, &job_id).await.unwrap();
    assert_eq!(empty.status(), 200);
    assert!(empty.bytes().await.unwrap().is_empty());
    let truncated = raw_fansly_status(&server, &job_id).await.unwrap();
    let promised: usize = truncated.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        truncated.bytes().await.is_err(),
        "a body promising {promised} bytes arrived whole"
    );
    assert_eq!(server.fansly_status(&job_id).await.status, 200);
    // The second upload under the scenario is refused before its body is read.
    let refused = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .multipart(png_form())
        .send()
        .await
        .unwrap();
    let refused = Reply::checked(refused, "POST", Document::Fansly).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.headers["retry-after"], "7");
    assert_eq!(server.jobs().await.len(), 1);
}

/// The statuses of `n` polls of one job under a 50% probability fault.
async fn probable_fault_sequence(seed: u64) -> Vec<u16> {
    let scenario = custom(
        "description: d\nfaults:\n  - on: status\n    probability: 0.5\n    respond: { status: 500 }\n",
    );
    let server = spawn_with(MockServer::builder().scenario(scenario).seed(seed)).await;
    let job_id = fansly_job(&server, "custom").await;
    let mut statuses = vec![];
    for _ in 0..24 {
        statuses.push(server.fansly_status(&job_id).await.status);
    }
    statuses
}

#[tokio::test]
async fn the_same_seed_replays_the_same_faults() {
    let first = probable_fault_sequence(41).await;
    assert_eq!(first, probable_fault_sequence(41).await);
    assert_ne!(first, probable_fault_sequence(42).await);
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
}

#[tokio::test]
async fn an_unknown_scenario_header_is_refused_in_the_providers_shape() {
    let server = spawn_server().await;
    let response = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .header("x-mock-scenario", "slow-fail")
        .multipart(png_form())
        .send()
        .await
        .unwrap();
    let reply = Reply::checked(response, "POST", Document::Fansly).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown scenario \"slow-fail\"")
    );
    let response = server
        .http
        .post(server.url("/api/acct_1/media/upload"))
        .bearer_auth("k")
        .header("x-mock-scenario", "../../etc/passwd")
        .multipart(png_form())
        .send()
        .await
        .unwrap();
    assert_eq!(
        Reply::checked(response, "POST", Document::OnlyFans)
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn the_admin_api_lists_and_sets_the_default_scenario() {
    let server = spawn_server().await;
    let listed: Value = server
        .http
        .get(server.url("/__admin/scenarios"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 12);
    assert!(
        listed["scenarios"][0]["is_default"].as_bool().unwrap(),
        "happy is the default"
    );

    let set = server
        .http
        .put(server.url("/__admin/scenario"))
        .json(&serde_json::json!({"name": "stuck"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let form = png_form();
    let job_id = server.fansly_upload("acct", form).await.body["data"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    server.advance(Duration::from_secs(3600)).await;
    assert_eq!(
        server.fansly_status(&job_id).await.body["data"]["state"],
        "active"
    );

    let unknown = server
        .http
        .put(server.url("/__admin/scenario"))
        .json(&serde_json::json!({"name": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let error: Value = unknown.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unknown_scenario");
}

#[tokio::test]
async fn enforced_rate_limits_answer_429_until_the_window_slides() {
    let mut fixtures = mock_server::fixture::Fixtures::embedded();
    fixtures.fansly.limit_per_minute = 3;
    fixtures.onlyfans.limit_per_minute = 2;
    let server = spawn_with(
        MockServer::builder()
            .fixtures(fixtures)
            .enforce_rate_limits(true),
    )
    .await;
    for remaining in ["2", "1", "0"] {
        let reply = server.fansly_status("9").await;
        assert_eq!(
            (
                reply.status,
                reply.headers["x-ratelimit-remaining"].to_str().unwrap()
            ),
            (404, remaining)
        );
    }
    server.advance(Duration::from_secs(10)).await;
    let limited = server.fansly_status("9").await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.body["message"],
        "Rate limit exceeded. Please wait before making more requests."
    );
    // The oldest request leaves the window 60 s after it arrived: 50 s from now.
    assert_eq!(limited.headers["retry-after"], "50");
    assert_eq!(limited.headers["x-ratelimit-retry-after"], "50");
    server.advance(Duration::from_secs(51)).await;
    assert_eq!(server.fansly_status("9").await.status, 404);

    for _ in 0..2 {
        assert_eq!(
            server
                .onlyfans_status(ACCOUNT, "ofapi_media_x")
                .await
                .status,
            404
        );
    }
    let limited = server.onlyfans_status(ACCOUNT, "ofapi_media_x").await;
    assert_eq!(
        (limited.status, limited.body["message"].as_str()),
        (429, Some("Too Many Attempts."))
    );
    assert_eq!(limited.headers["retry-after"], "60");
}

/// The window is counted and the poll answered under one store lock; a poll over the limit is
/// refused before it reaches the job, which must not count it.
#[tokio::test]
async fn a_poll_refused_for_its_rate_is_not_counted_on_the_job() {
    let mut fixtures = mock_server::fixture::Fixtures::embedded();
    fixtures.fansly.limit_per_minute = 3;
    fixtures.onlyfans.limit_per_minute = 3;
    let server = spawn_with(
        MockServer::builder()
            .fixtures(fixtures)
            .enforce_rate_limits(true),
    )
    .await;
    let job_id = server.fansly_upload("acct", png_form()).await.body["data"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = png_form().text("async", "true");
    let accepted = server.onlyfans_upload(ACCOUNT, "upload", form).await;
    let upload_id = accepted.body["prefixed_id"].as_str().unwrap().to_owned();
    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(server.fansly_status(&job_id).await.status);
        statuses.push(server.onlyfans_status(ACCOUNT, &upload_id).await.status);
    }
    // The upload is the first request of each key's minute: two polls pass, two are refused.
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
    let polls: Vec<(String, u64)> = server
        .jobs()
        .await
        .iter()
        .map(|job| {
            (
                job["provider"].as_str().unwrap().to_owned(),
                job["n_polls"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        polls,
        [("fansly".to_owned(), 2), ("onlyfans".to_owned(), 2)]
    );
}

#[tokio::test]
async fn a_fault_aimed_at_accounts_spares_the_others() {
    let scenario = custom(
        "description: d\nfaults:\n  - on: status\n    accounts: [\"acct_flaky*\"]\n    respond: { status: 503 }\n",
    );
    let server = spawn_with(MockServer::builder().scenario(scenario)).await;
    let mut statuses = vec![];
    for account in ["acct_flaky_1", "acct_calm"] {
        let form = png_form().text("async", "true");
        let accepted = server.onlyfans_upload(account, "upload", form).await;
        let upload_id = accepted.body["prefixed_id"].as_str().unwrap().to_owned();
        statuses.push(server.onlyfans_status(account, &upload_id).await.status);
    }
    assert_eq!(statuses, [503, 200]);
}

#[tokio::test]
async fn rules_choose_scenarios_by_account_and_file_name_unless_a_header_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gif-trouble.yaml"),
        "description: GIF polls fail\nfaults:\n  - on: status\n    respond: { status: 503 }\n",
    )
    .unwrap();
    let rules_path = dir.path().join("rules.yaml");
    std::fs::write(
        &rules_path,
        "rules:\n  - { account: \"acct_stuck*\", scenario: stuck }\n  - { file_name: \"*.gif\", scenario: ./gif-trouble.yaml }\n",
    )
    .unwrap();
    let rules = mock_server::scenario::Rules::from_file(&rules_path).unwrap();
    let server = spawn_with(MockServer::builder().scenario_rules(rules)).await;

    let accepted = server
        .onlyfans_upload("acct_stuck_1", "upload", png_form().text("async", "true"))
        .await;
    let stuck_id = accepted.body["prefixed_id"].as_str().unwrap().to_owned();

    let gif = || {
        Form::new().part(
            "file",
            file_part(sample("sample.gif"), "a.gif", "image/gif"),
        )
    };
    let gif_job = server.fansly_upload("acct", gif()).await.body["data"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let png_job = server.fansly_upload("acct", png_form()).await.body["data"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .header("x-mock-scenario", "happy")
        .multipart(gif())
        .send()
        .await
        .unwrap();
    let header_job = Reply::checked(response, "POST", Document::Fansly)
        .await
        .body["data"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();

    server.advance(Duration::from_secs(3600)).await;
    assert_eq!(
        server.onlyfans_status("acct_stuck_1", &stuck_id).await.body["status"],
        "processing"
    );
    assert_eq!(server.fansly_status(&gif_job).await.status, 503);
    assert_eq!(
        server.fansly_status(&png_job).await.body["data"]["state"],
        "completed"
    );
    assert_eq!(
        server.fansly_status(&header_job).await.body["data"]["state"],
        "completed"
    );
}

#[test]
fn a_bad_rules_file_names_the_file_and_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(
        &path,
        "rules:\n  - { account: \"a*\", scenario: happy }\n  - { scenario: slow }\n",
    )
    .unwrap();
    let err = mock_server::scenario::Rules::from_file(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rules.yaml") && err.contains("rules[1]"),
        "{err}"
    );
    std::fs::write(
        &path,
        "rules:\n  - { account: \"a*\", scenario: no-such-scenario.yaml }\n",
    )
    .unwrap();
    let err = mock_server::scenario::Rules::from_file(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-scenario.yaml"), "{err}");
}

#[tokio::test]
async fn a_fault_aimed_at_one_provider_and_one_job_hits_only_that_job() {
    let scenario = custom(
        "description: d\nfaults:\n  - on: status\n    providers: [onlyfans]\n    jobs: [2]\n    empty: {}\n",
    );
    let server = spawn_with(MockServer::builder().scenario(scenario)).await;
    let fansly_first = server.fansly_upload("acct", png_form()).await.body["data"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut onlyfans_ids = vec![];
    for _ in 0..2 {
        let accepted = server
            .onlyfans_upload(ACCOUNT, "upload", png_form().text("async", "true"))
            .await;
        onlyfans_ids.push(accepted.body["prefixed_id"].as_str().unwrap().to_owned());
    }
    assert!(
        !raw_fansly_status(&server, &fansly_first)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .is_empty()
    );
    let poll = |upload_id: String| {
        let server = &server;
        async move {
            server
                .http
                .get(server.url(&format!("/api/{ACCOUNT}/media/uploads/{upload_id}/status")))
                .bearer_auth("k")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        }
    };
    assert!(
        poll(onlyfans_ids[0].clone()).await.is_empty(),
        "the 2nd job under the scenario is aimed at"
    );
    assert!(!poll(onlyfans_ids[1].clone()).await.is_empty());
}

#[tokio::test]
async fn a_fault_attached_to_the_processing_step_hits_only_polls_that_see_it() {
    let scenario = custom(
        "description: d\nfaults:\n  - on: status\n    states: [processing]\n    respond: { status: 502 }\n",
    );
    let server = spawn_with(MockServer::builder().scenario(scenario)).await;
    let job_id = server.fansly_upload("acct", png_form()).await.body["data"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut statuses = vec![server.fansly_status(&job_id).await.status];
    server.advance(Duration::from_secs(1)).await;
    statuses.push(server.fansly_status(&job_id).await.status);
    server.advance(Duration::from_secs(2)).await;
    let done = server.fansly_status(&job_id).await;
    statuses.push(done.status);
    assert_eq!(statuses, [200, 502, 200]);
    assert_eq!(done.body["data"]["state"], "completed");
}
