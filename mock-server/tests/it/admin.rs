//! The admin API: clock control, job listing, served specs, and clear 4xx on bad input.

use std::time::Duration;

use mock_server::MockServer;
use mock_server::spec::Document;
use serde_json::{Value, json};

use crate::support::{START_UNIX, spawn_server, spawn_with};

#[tokio::test]
async fn clock_advances_by_seconds_or_by_a_duration_text() {
    let server = spawn_server().await;
    let url = server.url("/__admin/clock/advance");
    let first: Value = server
        .http
        .post(&url)
        .json(&json!({"seconds": 1.5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["unix_ms"], START_UNIX * 1000 + 1500);
    assert_eq!(first["manual"], true);
    let second: Value = server
        .http
        .post(&url)
        .json(&json!({"by": "5h 1s"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["unix_ms"], (START_UNIX + 5 * 3600 + 1) * 1000 + 1500);
    let read: Value = server
        .http
        .get(server.url("/__admin/clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, second);
    assert_eq!(server.clock.unix_secs(), START_UNIX + 5 * 3600 + 2);
}

#[tokio::test]
async fn bad_clock_requests_get_a_clear_400() {
    let server = spawn_server().await;
    let url = server.url("/__admin/clock/advance");
    let cases = [
        ("{\"seconds\": -1}", "invalid_duration"),
        ("{\"seconds\": 1e300}", "invalid_duration"),
        ("{\"seconds\": 1e15}", "invalid_duration"),
        ("{\"by\": \"100000000y\"}", "invalid_duration"),
        ("{\"by\": \"soon\"}", "invalid_duration"),
        ("{}", "invalid_duration"),
        ("{\"seconds\": 1, \"by\": \"1s\"}", "invalid_duration"),
        ("not json", "invalid_json"),
        ("{\"secs\": 1}", "invalid_json"),
    ];
    for (body, code) in cases {
        let response = server.http.post(&url).body(body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        server.clock.unix_secs(),
        START_UNIX,
        "a refused request moved the clock"
    );
}

#[tokio::test]
async fn a_system_clock_cannot_be_advanced() {
    // spawn_server() installs a manual clock; this one follows the system.
    let server = mock_server::MockServer::builder().start().await.unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/__admin/clock/advance", server.base_url()))
        .json(&json!({"seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "clock_not_manual");
}

#[tokio::test]
async fn served_specs_are_the_repository_files() {
    let server = spawn_server().await;
    for document in Document::ALL {
        let response = server
            .http
            .get(server.url(&format!("/__admin/specs/{}", document.file_name())))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let on_disk = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../specs")
                .join(document.file_name()),
        )
        .unwrap();
        assert_eq!(response.text().await.unwrap(), on_disk);
    }
    let missing = server
        .http
        .get(server.url("/__admin/specs/nope.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn jobs_listing_shows_state_polls_and_the_upload_digest() {
    let server = spawn_server().await;
    let bytes = crate::support::sample("sample.png");
    let form = reqwest::multipart::Form::new().part(
        "file",
        crate::support::file_part(bytes.clone(), "a.png", "image/png"),
    );
    server.fansly_upload("acct", form).await;
    server.fansly_status("1").await;
    server.advance(Duration::from_secs(5)).await;
    let jobs = server.jobs().await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["provider"], "fansly");
    assert_eq!(job["id"], "1");
    assert_eq!(job["state"], "completed");
    assert_eq!(job["n_polls"], 1);
    assert_eq!(job["sha256"], crate::support::sha256(&bytes));
    assert_eq!(job["size"], bytes.len());
}

#[tokio::test]
async fn admin_never_answers_provider_paths_and_unknown_admin_routes_404() {
    let server = spawn_server().await;
    let response = server
        .http
        .get(server.url("/__admin/api/fansly/media/upload/1/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unknown_admin_route");
}

async fn force(server: &crate::support::TestServer, path: &str, body: Value) -> (u16, Value) {
    let response = server
        .http
        .post(server.url(&format!("/__admin/jobs/{path}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_running_job_can_be_pinned_then_forced_to_an_outcome_once() {
    let server = spawn_server().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        crate::support::file_part(crate::support::sample("sample.png"), "a.png", "image/png"),
    );
    server.fansly_upload("acct", form).await;

    let (status, _) = force(
        &server,
        "fansly/1",
        json!({"state": "processing", "progress": 40}),
    )
    .await;
    assert_eq!(status, 200);
    server.advance(Duration::from_secs(3600)).await;
    let pinned = server.fansly_status("1").await.body["data"].clone();
    assert_eq!(
        (pinned["state"].as_str(), pinned["progress"].as_u64()),
        (Some("active"), Some(40))
    );

    let (status, _) = force(
        &server,
        "fansly/1",
        json!({"outcome": {"failed": "forced by QA"}}),
    )
    .await;
    assert_eq!(status, 200);
    let failed = server.fansly_status("1").await.body["data"].clone();
    assert_eq!(
        (failed["state"].as_str(), failed["failedReason"].as_str()),
        (Some("failed"), Some("forced by QA"))
    );

    let (status, error) = force(&server, "fansly/1", json!({"outcome": "completed"})).await;
    assert_eq!(status, 409);
    assert_eq!(error["error"]["code"], "job_terminal");
}

#[tokio::test]
async fn a_forced_completion_starts_the_link_lifetime_now() {
    let server = spawn_server().await;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            crate::support::file_part(crate::support::sample("sample.png"), "a.png", "image/png"),
        )
        .text("async", "true");
    let accepted = server.onlyfans_upload("acct_1", "vault", form).await;
    let upload_id = accepted.body["prefixed_id"].as_str().unwrap().to_owned();
    server.advance(Duration::from_millis(100)).await;
    let (status, _) = force(
        &server,
        &format!("onlyfans/{upload_id}"),
        json!({"outcome": "completed"}),
    )
    .await;
    assert_eq!(status, 200);
    let done = server.onlyfans_status("acct_1", &upload_id).await.body;
    assert_eq!(done["status"], "completed");
    // Vault media is ready 5 s after the upload completes (fixtures' vault_ready_after).
    server.advance(Duration::from_secs(5)).await;
    let done = server.onlyfans_status("acct_1", &upload_id).await.body;
    assert_eq!(done["media"]["isReady"], true, "{done}");
    let link = done["media"]["files"]["full"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        link.contains(&format!("Expires={}", START_UNIX + 24 * 3600)),
        "{link}"
    );
}

#[tokio::test]
async fn forcing_refuses_unknown_jobs_providers_and_bodies() {
    let server = spawn_server().await;
    assert_eq!(
        force(&server, "fansly/99", json!({"outcome": "completed"}))
            .await
            .0,
        404
    );
    let (status, error) = force(&server, "myspace/1", json!({"outcome": "completed"})).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("unknown_provider"))
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        crate::support::file_part(crate::support::sample("sample.png"), "a.png", "image/png"),
    );
    server.fansly_upload("acct", form).await;
    for body in [
        json!({}),
        json!({"state": "processing", "progress": 101}),
        json!({"outcome": "exploded"}),
        json!({"state": "done"}),
    ] {
        let (status, error) = force(&server, "fansly/1", body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            ["invalid_force", "invalid_json"].contains(&error["error"]["code"].as_str().unwrap()),
            "{error}"
        );
    }
}

/// Sends an admin request and checks its answer against `specs/admin.yaml`.
pub(crate) async fn admin_checked(
    server: &crate::support::TestServer,
    method: reqwest::Method,
    path: &str,
    session: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server.http.request(method.clone(), server.url(path));
    if let Some(session) = session {
        request = request.header("x-mock-session", session);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let spec = mock_server::spec::Spec::load(Document::Admin).unwrap();
    let bare_path = path.split('?').next().unwrap();
    if let Err(err) = spec.validate_response(method.as_str(), bare_path, status, &body) {
        panic!("{method} {path} breaks specs/admin.yaml: {err}\n{body:#}");
    }
    (status, body)
}

#[tokio::test]
async fn every_admin_answer_matches_the_admin_spec() {
    use reqwest::Method;
    let server = spawn_server().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        crate::support::file_part(crate::support::sample("sample.png"), "a.png", "image/png"),
    );
    server.fansly_upload("acct", form).await;
    server.fansly_status("1").await;
    /// (method, path, session, body, expected status)
    type Case = (
        Method,
        &'static str,
        Option<&'static str>,
        Option<Value>,
        u16,
    );
    let cases: Vec<Case> = vec![
        (Method::GET, "/__admin/health", None, None, 200),
        (Method::GET, "/__admin/clock", None, None, 200),
        (Method::GET, "/__admin/clock", Some("s1"), None, 200),
        (
            Method::POST,
            "/__admin/clock/advance",
            None,
            Some(json!({"seconds": 1})),
            200,
        ),
        (
            Method::POST,
            "/__admin/clock/advance",
            Some("s1"),
            Some(json!({"by": "1h"})),
            200,
        ),
        (
            Method::POST,
            "/__admin/clock/advance",
            None,
            Some(json!({"seconds": -1})),
            400,
        ),
        (Method::GET, "/__admin/jobs", None, None, 200),
        (
            Method::GET,
            "/__admin/jobs?session=default",
            None,
            None,
            200,
        ),
        (
            Method::POST,
            "/__admin/jobs/fansly/1",
            None,
            Some(json!({"state": "processing", "progress": 10})),
            200,
        ),
        (
            Method::POST,
            "/__admin/jobs/fansly/9",
            None,
            Some(json!({"outcome": "completed"})),
            404,
        ),
        (Method::GET, "/__admin/sessions", None, None, 200),
        (Method::GET, "/__admin/scenarios", None, None, 200),
        (
            Method::PUT,
            "/__admin/scenario",
            None,
            Some(json!({"name": "slow"})),
            200,
        ),
        (
            Method::PUT,
            "/__admin/scenario",
            Some("s1"),
            Some(json!({"name": "stuck"})),
            200,
        ),
        (
            Method::PUT,
            "/__admin/scenario",
            None,
            Some(json!({"name": "nope"})),
            404,
        ),
        (
            Method::GET,
            "/__admin/journal?route=status",
            None,
            None,
            200,
        ),
        (Method::GET, "/__admin/journal?colour=red", None, None, 400),
        (
            Method::POST,
            "/__admin/clock/set",
            None,
            Some(json!({"at": "2027-01-01T00:00:00Z"})),
            200,
        ),
        (
            Method::POST,
            "/__admin/clock/set",
            None,
            Some(json!({"unix_ms": 0})),
            409,
        ),
        (
            Method::POST,
            "/__admin/clock/set",
            Some("s1"),
            Some(json!({"unix_ms": 1_900_000_000_000u64})),
            200,
        ),
        (
            Method::POST,
            "/__admin/clock/set",
            None,
            Some(json!({"at": "tomorrow"})),
            400,
        ),
        (Method::DELETE, "/__admin/sessions/s1", None, None, 200),
        (Method::DELETE, "/__admin/journal", None, None, 200),
        (Method::POST, "/__admin/reset", None, None, 200),
    ];
    for (method, path, session, body, expected) in cases {
        let (status, body) = admin_checked(&server, method.clone(), path, session, body).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn jobs_list_their_timeline_and_reset_forgets_everything() {
    let server = spawn_server().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        crate::support::file_part(crate::support::sample("sample.png"), "a.png", "image/png"),
    );
    server.fansly_upload("acct", form).await;
    let jobs = server.jobs().await;
    let timeline = &jobs[0]["timeline"];
    let states: Vec<&str> = timeline["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "queued",
            "processing",
            "processing",
            "processing",
            "processing"
        ]
    );
    assert_eq!(timeline["steps"][4]["until_elapsed_ms"], 2_500);
    assert_eq!(timeline["outcome"], "completed");
    assert_eq!(jobs[0]["scenario"], "happy");

    let reset: Value = server
        .http
        .post(server.url("/__admin/reset"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["jobs_removed"], 1);
    assert!(server.jobs().await.is_empty());
    assert_eq!(
        std::fs::read_dir(server.server.storage_dir())
            .unwrap()
            .count(),
        0
    );
    assert_eq!(server.fansly_status("1").await.status, 404);
}

#[tokio::test]
async fn the_clock_can_be_set_forward_but_never_back() {
    let server = spawn_server().await;
    let url = server.url("/__admin/clock/set");
    let set: Value = server
        .http
        .post(&url)
        .json(&json!({"at": "2026-02-04T23:35:01Z"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["unix_ms"], (START_UNIX + 5 * 3600) * 1000);
    let back = server
        .http
        .post(&url)
        .json(&json!({"unix_ms": START_UNIX * 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 409);
    assert_eq!(server.clock.unix_secs(), START_UNIX + 5 * 3600);
}

#[tokio::test]
async fn with_an_admin_token_every_admin_request_needs_it() {
    let server = spawn_with(MockServer::builder().seed(7).admin_token("s3cret")).await;
    let health = server.url("/__admin/health");
    let status_of = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        (status, body)
    };
    let (status, body) = status_of(server.http.get(&health)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = status_of(server.http.get(&health).bearer_auth("wrong")).await;
    assert_eq!(status, 401);
    let (status, _) = status_of(server.http.get(&health).bearer_auth("s3cret")).await;
    assert_eq!(status, 200);
    // Provider routes are not the admin API's business.
    let response = server
        .http
        .get(server.url("/api/fansly/media/upload/1/status"))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn jobs_carry_faults_repeats_dimensions_and_links_with_what_the_cdn_answers() {
    let server = spawn_server().await;
    let upload = |scenario: &'static str| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            crate::support::file_part(
                crate::support::sample("sample.jpg"),
                "sample.jpg",
                "image/jpeg",
            ),
        );
        let request = server
            .http
            .post(server.url("/api/fansly/acct/media/upload"))
            .header("x-api-key", "test-key")
            .header("x-mock-scenario", scenario)
            .multipart(form);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(upload("rate-limited").await, 201);
    server.fansly_status("1").await;
    assert_eq!(server.fansly_status("1").await.status, 429);
    assert_eq!(upload("happy").await, 201);

    let (_, body) = admin_checked(&server, reqwest::Method::GET, "/__admin/jobs", None, None).await;
    let jobs = body["jobs"].as_array().unwrap();
    let (limited, retry) = (&jobs[0], &jobs[1]);
    assert_eq!(
        limited["faults"],
        json!([{"seq": 3, "fault": "respond", "route": "status", "status": 429}])
    );
    assert_eq!(limited["repeat_of"], Value::Null);
    assert_eq!(
        (limited["width"].as_u64(), limited["height"].as_u64()),
        (Some(444), Some(421))
    );
    assert_eq!(retry["repeat_of"], 1, "the second upload of the same bytes");
    assert_eq!(retry["state"], "queued");
    assert_eq!(retry["elapsed_ms"], 0);
    assert_eq!(retry["next_change_at"], "2026-02-04T18:35:01.500Z");
    assert_eq!(retry["links"], json!([]));

    server.advance(Duration::from_secs(3)).await;
    let (_, body) = admin_checked(&server, reqwest::Method::GET, "/__admin/jobs", None, None).await;
    let retry = &body["jobs"][1];
    assert_eq!(retry["state"], "completed");
    assert_eq!(retry["next_change_at"], Value::Null);
    let links = retry["links"].as_array().unwrap();
    assert!(!links.is_empty());
    for link in links {
        assert_eq!(link["cdn_status"], 200, "{link}");
        assert_eq!(
            link["expires_at"], "2026-02-04T23:35:03.000Z",
            "5 h after completion"
        );
        let url = link["url"].as_str().unwrap();
        assert_eq!(server.fetch(url).await.0, 200);
    }
    server.advance(Duration::from_secs(5 * 3600 + 1)).await;
    let (_, body) = admin_checked(&server, reqwest::Method::GET, "/__admin/jobs", None, None).await;
    for link in body["jobs"][1]["links"].as_array().unwrap() {
        assert_eq!(link["cdn_status"], 403, "{link}");
        assert_eq!(link["cdn_denied_reason"], "expired");
        assert_eq!(server.fetch(link["url"].as_str().unwrap()).await.0, 403);
    }
}
