//! The admin API: clock control, job listing, served specs, and clear 4xx on bad input.

use std::time::Duration;

use mock_server::spec::Document;
use serde_json::{Value, json};

use crate::support::{START_UNIX, spawn_server};

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
