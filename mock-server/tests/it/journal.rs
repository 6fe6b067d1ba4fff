//! The request journal as a test reads it: parts, jobs, faults, repeated uploads, filters.

use std::time::Duration;

use mock_server::MockServer;
use mock_server::scenario::Scenario;
use reqwest::multipart::Form;
use serde_json::Value;

use crate::support::{file_part, sample, sha256, spawn_server, spawn_with};

#[tokio::test]
async fn uploads_and_polls_are_journaled_with_parts_jobs_and_short_keys() {
    let server = spawn_server().await;
    let bytes = sample("sample.jpg");
    let form = Form::new()
        .text("formInputs", "[]")
        .part("file", file_part(bytes.clone(), "photo.jpg", "image/jpeg"));
    server.fansly_upload("acct", form).await;
    server.fansly_status("1").await;
    server.fansly_status("1").await;
    server.fansly_status("404").await;

    let entries = server.journal("").await;
    assert_eq!(
        entries.len(),
        4,
        "admin requests are not journaled: {entries:#?}"
    );
    let upload = &entries[0];
    assert_eq!(upload["route"], "upload");
    assert_eq!(upload["status"], 201);
    assert_eq!(upload["job_id"], "1");
    assert_eq!(upload["scenario"], "happy");
    assert_eq!(upload["sha256"], sha256(&bytes));
    assert_eq!(upload["headers"]["x-api-key"], "test…");
    let parts: Vec<(String, Value, u64)> = upload["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| {
            (
                part["name"].as_str().unwrap().to_owned(),
                part["file_name"].clone(),
                part["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            ("formInputs".to_owned(), Value::Null, 2),
            (
                "file".to_owned(),
                Value::from("photo.jpg"),
                bytes.len() as u64
            )
        ]
    );
    let polls = server.journal("?route=status&job=1").await;
    assert_eq!(polls.len(), 2);
    assert!(
        polls
            .iter()
            .all(|poll| poll["status"] == 200 && poll["method"] == "GET")
    );
    assert_eq!(server.journal("?route=status").await.len(), 3);
}

#[tokio::test]
async fn a_second_upload_of_the_same_bytes_is_marked_as_a_repeat() {
    let server = spawn_server().await;
    for name in ["a.png", "b.png"] {
        let form = Form::new().part("file", file_part(sample("sample.png"), name, "image/png"));
        server.onlyfans_upload("acct_1", "upload", form).await;
    }
    let form = Form::new().part(
        "file",
        file_part(sample("sample.jpg"), "c.jpg", "image/jpeg"),
    );
    server.onlyfans_upload("acct_1", "upload", form).await;
    let uploads = server.journal("?route=upload").await;
    let repeats: Vec<&Value> = uploads.iter().map(|entry| &entry["repeat_of"]).collect();
    assert_eq!(repeats, [&Value::Null, &uploads[0]["seq"], &Value::Null]);
    assert_eq!(uploads[0]["headers"]["authorization"], "Bearer test…");
}

#[tokio::test]
async fn a_dropped_answer_is_journaled_with_status_0_and_its_fault() {
    let server = spawn_server().await;
    let form = Form::new().part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    );
    let response = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .header("x-mock-scenario", "drop-connection")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    for _ in 0..2 {
        let _ = server
            .http
            .get(server.url("/api/fansly/media/upload/1/status"))
            .header("x-api-key", "k")
            .send()
            .await;
    }
    let polls = server.journal("?route=status").await;
    assert_eq!(polls[0]["status"], 200);
    assert_eq!(
        (polls[1]["status"].as_u64(), polls[1]["fault"].as_str()),
        (Some(0), Some("drop"))
    );
    assert_eq!(polls[1]["scenario"], "drop-connection");
}

#[tokio::test]
async fn unknown_filters_are_refused_and_delete_clears() {
    let server = spawn_server().await;
    server.fansly_status("1").await;
    let response = server
        .http
        .get(server.url("/__admin/journal?colour=red"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unknown_filter");
    let response = server
        .http
        .get(server.url("/__admin/journal?route=sideways"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(server.journal("").await.len(), 1);
    let cleared = server
        .http
        .delete(server.url("/__admin/journal"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    assert!(server.journal("").await.is_empty());
}

#[tokio::test]
async fn status_answers_are_journaled_with_the_state_shown_and_retry_after() {
    let server =
        spawn_with(MockServer::builder().scenario(Scenario::resolve("rate-limited").unwrap()))
            .await;
    let form = Form::new().part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    );
    server.fansly_upload("acct", form).await;
    for _ in 0..3 {
        server.fansly_status("1").await;
    }
    server.advance(Duration::from_secs(60)).await;
    server.fansly_status("1").await;

    let polls = server.journal("?route=status").await;
    let seen: Vec<(Value, Value, Value)> = polls
        .iter()
        .map(|entry| {
            (
                entry["status"].clone(),
                entry["state"].clone(),
                entry["retry_after"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (200.into(), "waiting".into(), Value::Null),
            (429.into(), Value::Null, 2.into()),
            (429.into(), Value::Null, 2.into()),
            (200.into(), "completed".into(), Value::Null),
        ],
        "a refused poll shows no state; its Retry-After is recorded"
    );
}
