//! Fansly: upload → waiting → active → completed, links that serve the bytes and expire.

use std::time::Duration;

use reqwest::multipart::Form;
use serde_json::Value;

use crate::support::{TestServer, file_part, follow_link, sample, sha256, spawn_server};
use mock_server::spec::Document;

/// Every signed link in a completed result: the media's own, then each variant's.
fn links(result: &Value) -> Vec<String> {
    let media = &result["accountMedia"][0]["media"];
    let mut links: Vec<String> = media["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|location| location["location"].as_str().unwrap().to_owned())
        .collect();
    for variant in media["variants"].as_array().unwrap() {
        for location in variant["locations"].as_array().unwrap() {
            links.push(location["location"].as_str().unwrap().to_owned());
        }
    }
    links
}

struct Expect {
    /// The name Fansly writes: the uploaded stem with its own extension.
    filename: &'static str,
    mimetype: &'static str,
    kind: u64,
    width: u64,
    height: u64,
    variants: &'static [(u64, u64)],
}

/// Uploads `name`, polls it through every state to completion, checks the media, fetches every
/// link, then crosses the 5-hour expiry; returns the completed body for snapshots.
async fn full_lifecycle(server: &TestServer, name: &str, expect: Expect) -> Value {
    let bytes = sample(name);
    let form = Form::new()
        .part(
            "file",
            file_part(bytes.clone(), name, "application/octet-stream"),
        )
        .text("formInputs", r#"[{"type":1,"value":"caption"}]"#);
    let upload = server.fansly_upload("86540000000000000", form).await;
    assert_eq!(upload.status, 201);
    assert_eq!(upload.body["statusCode"], 201);
    let job_id = upload.body["data"]["jobId"].as_str().unwrap().to_owned();

    let first = server.fansly_status(&job_id).await;
    assert_eq!(first.body["data"]["state"], "waiting");
    assert_eq!(first.body["data"]["progress"], 0);

    server.advance(Duration::from_millis(600)).await;
    let mut progress_seen = vec![];
    loop {
        let polled = server.fansly_status(&job_id).await;
        let data = &polled.body["data"];
        if data["state"] == "completed" {
            break;
        }
        assert_eq!(data["state"], "active", "{data}");
        progress_seen.push(data["progress"].as_u64().unwrap());
        server.advance(Duration::from_millis(500)).await;
    }
    assert!(
        progress_seen.windows(2).all(|pair| pair[0] <= pair[1]),
        "{progress_seen:?}"
    );
    assert!(
        progress_seen.len() >= 2,
        "active was seen at {progress_seen:?}"
    );

    let completed = server.fansly_status(&job_id).await;
    let data = &completed.body["data"];
    assert_eq!(data["progress"], 100);
    let result = &data["result"];
    let media = &result["accountMedia"][0]["media"];
    assert_eq!(result["accountMedia"][0]["accountId"], "86540000000000000");
    assert_eq!(media["mimetype"], expect.mimetype);
    assert_eq!(media["type"], expect.kind);
    assert_eq!(media["filename"], expect.filename);
    assert_eq!(
        (
            media["width"].as_u64().unwrap(),
            media["height"].as_u64().unwrap()
        ),
        (expect.width, expect.height)
    );
    let variants: Vec<(u64, u64)> = media["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variant| {
            (
                variant["width"].as_u64().unwrap(),
                variant["height"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(variants, expect.variants);

    let links = links(result);
    assert_eq!(links.len(), 1 + expect.variants.len());
    // Issue 18: links end with the name Fansly writes, a variant's with its short side
    // (seed 000: `image.jpeg`, `image_360.jpeg`); the location uses the same extension.
    let (stem, extension) = expect.filename.rsplit_once('.').unwrap();
    let path = |link: &str| link.split('?').next().unwrap().to_owned();
    assert!(
        path(&links[0]).ends_with(&format!("/{stem}.{extension}")),
        "{}",
        links[0]
    );
    for (link, (width, height)) in links[1..].iter().zip(expect.variants) {
        let side = width.min(height);
        assert!(
            path(link).ends_with(&format!("/{stem}_{side}.{extension}")),
            "{link}"
        );
    }
    assert!(
        media["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!(".{extension}")),
        "{}",
        media["location"]
    );
    for id in [
        &media["id"],
        &result["accountMedia"][0]["id"],
        &result["mediaId"],
    ] {
        assert_eq!(
            id.as_str().unwrap().len(),
            19,
            "{id} is not as long as the seed's ids"
        );
    }
    for link in &links {
        assert!(
            link.contains("Policy=")
                && link.contains("Key-Pair-Id=")
                && link.contains("Signature="),
            "{link}"
        );
        let (status, content_type, body) = server.fetch(link).await;
        assert_eq!(status, 200, "{link}");
        assert_eq!(content_type, expect.mimetype);
        assert_eq!(sha256(&body), sha256(&bytes), "{link} served other bytes");
    }

    // Links live 5 hours from completion: still good just before, 403 after.
    server.advance(Duration::from_secs(5 * 3600 - 5)).await;
    assert_eq!(server.fetch(&links[0]).await.0, 200);
    server.advance(Duration::from_secs(6)).await;
    for link in &links {
        let (status, content_type, body) = server.fetch(link).await;
        assert_eq!(status, 403, "{link} still served after expiry");
        assert_eq!(content_type, "text/xml");
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains("<Code>AccessDenied</Code>")
        );
    }
    completed.body
}

#[tokio::test]
async fn jpeg_goes_through_every_state_and_its_links_expire_after_5_hours() {
    let server = spawn_server().await;
    let completed = full_lifecycle(
        &server,
        "sample.jpg",
        Expect {
            filename: "sample.jpeg",
            mimetype: "image/jpeg",
            kind: 1,
            width: 444,
            height: 421,
            variants: &[(378, 360)],
        },
    )
    .await;
    insta::assert_json_snapshot!("fansly_completed_jpeg", server.normalize(&completed));
}

#[tokio::test]
async fn png_completes_with_its_real_dimensions() {
    let server = spawn_server().await;
    full_lifecycle(
        &server,
        "sample.png",
        Expect {
            filename: "sample.png",
            mimetype: "image/png",
            kind: 1,
            width: 320,
            height: 180,
            variants: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn mp4_completes_as_type_2_video() {
    let server = spawn_server().await;
    full_lifecycle(
        &server,
        "sample.mp4",
        Expect {
            filename: "sample.mp4",
            mimetype: "video/mp4",
            kind: 2,
            width: 320,
            height: 240,
            variants: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn responses_match_snapshots_in_every_state() {
    let server = spawn_server().await;
    let form = Form::new().part(
        "file",
        file_part(sample("sample.jpg"), "photo.jpg", "image/jpeg"),
    );
    let upload = server.fansly_upload("acct", form).await;
    insta::assert_json_snapshot!("fansly_upload", server.normalize(&upload.body));
    let job_id = upload.body["data"]["jobId"].as_str().unwrap().to_owned();
    insta::assert_json_snapshot!(
        "fansly_waiting",
        server.normalize(&server.fansly_status(&job_id).await.body)
    );
    server.advance(Duration::from_secs(1)).await;
    insta::assert_json_snapshot!(
        "fansly_active",
        server.normalize(&server.fansly_status(&job_id).await.body)
    );
}

#[tokio::test]
async fn unsupported_bytes_fail_the_job_with_a_reason() {
    let server = spawn_server().await;
    let form = Form::new().part(
        "file",
        file_part(b"just some text".to_vec(), "notes.txt", "text/plain"),
    );
    let upload = server.fansly_upload("acct", form).await;
    let job_id = upload.body["data"]["jobId"].as_str().unwrap().to_owned();
    server.advance(Duration::from_secs(10)).await;
    let failed = server.fansly_status(&job_id).await;
    assert_eq!(failed.body["data"]["state"], "failed");
    assert_eq!(
        failed.body["data"]["failedReason"],
        "Unsupported media type: application/octet-stream"
    );
    insta::assert_json_snapshot!("fansly_failed", server.normalize(&failed.body));
    // A terminal state never changes.
    server.advance(Duration::from_secs(3600)).await;
    assert_eq!(
        server.fansly_status(&job_id).await.body["data"]["state"],
        "failed"
    );
}

#[tokio::test]
async fn job_ids_are_sequential_numbers() {
    let server = spawn_server().await;
    for expected in ["1", "2", "3"] {
        let form = Form::new().part(
            "file",
            file_part(sample("sample.png"), "a.png", "image/png"),
        );
        let upload = server.fansly_upload("acct", form).await;
        assert_eq!(upload.body["data"]["jobId"], expected);
    }
}

#[tokio::test]
async fn every_response_carries_rate_limit_headers_counting_down() {
    let server = spawn_server().await;
    let first = server.fansly_status("404").await;
    let second = server.fansly_status("404").await;
    for reply in [&first, &second] {
        assert_eq!(reply.headers["x-ratelimit-limit"], "600");
        assert_eq!(reply.headers["x-ratelimit-plan"], "Starter");
    }
    assert_eq!(first.headers["x-ratelimit-remaining"], "599");
    assert_eq!(second.headers["x-ratelimit-remaining"], "598");
    // The window slides: a minute later the count starts again.
    server.advance(Duration::from_secs(61)).await;
    assert_eq!(
        server.fansly_status("404").await.headers["x-ratelimit-remaining"],
        "599"
    );
}

#[tokio::test]
async fn links_are_signed_for_whichever_host_the_client_used() {
    let server = spawn_server().await;
    let localhost_base = server.base.replace("127.0.0.1", "localhost");
    let form = Form::new().part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    );
    let response = server
        .http
        .post(format!("{localhost_base}/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    server.advance(Duration::from_secs(10)).await;
    let status: Value = server
        .http
        .get(format!("{localhost_base}/api/fansly/media/upload/1/status"))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = links(&status["data"]["result"])[0].clone();
    assert!(link.starts_with(&localhost_base), "{link}");
    let fetched = server.http.get(&link).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
}

#[tokio::test]
async fn a_host_unfit_for_a_url_gets_links_to_the_listener_even_after_a_cached_answer() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = spawn_server().await;
    server
        .fansly_upload(
            "acct",
            Form::new().part(
                "file",
                file_part(sample("sample.png"), "a.png", "image/png"),
            ),
        )
        .await;
    server.advance(Duration::from_secs(10)).await;
    let listener = server.base.trim_start_matches("http://").to_owned();
    let poll = |host: &'static str| {
        let listener = listener.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&listener).await.unwrap();
            let request = format!(
                "GET /api/fansly/media/upload/1/status HTTP/1.1\r\nHost: {host}\r\nx-api-key: k\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap())
                .unwrap_or_else(|err| panic!("{err}: {answer}"));
            links(&body["data"]["result"])[0].clone()
        }
    };
    // A fit Host is used, and its answer is kept for later polls from it.
    assert!(
        poll("localhost:1")
            .await
            .starts_with("http://localhost:1/cdn/")
    );
    assert!(
        poll("localhost:1")
            .await
            .starts_with("http://localhost:1/cdn/")
    );
    // One with characters no URL may hold is not, cached answer or not.
    for _ in 0..2 {
        let link = poll("bad\"host<x>").await;
        assert!(link.starts_with(&server.base), "{link}");
    }
}

#[tokio::test]
async fn a_large_upload_closes_its_connection_and_a_small_one_keeps_it() {
    let server = spawn_server().await;
    let small = sample("sample.jpg");
    let mut large = small.clone();
    large.resize(small.len() + 200 * 1024, 0);
    let mut closes = Vec::new();
    for bytes in [small, large.clone()] {
        let reply = server
            .fansly_upload(
                "acct1",
                Form::new().part("file", file_part(bytes, "a.jpg", "image/jpeg")),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        closes.push(
            reply
                .headers
                .get("connection")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
    }
    assert_eq!(closes, [None, Some("close".to_owned())]);
    // The large upload is kept whole all the same.
    let jobs = server.jobs().await;
    assert_eq!(jobs.len(), 2);
    let listed = jobs
        .iter()
        .find(|job| job["size"] == large.len())
        .unwrap_or_else(|| panic!("no job of {} bytes in {jobs:?}", large.len()));
    assert_eq!(listed["sha256"], sha256(&large));
}

/// Issue 18: stateful tools follow the spec's link from the upload answer to its status; it must
/// name the job the upload queued.
#[tokio::test]
async fn upload_answer_links_to_the_status_of_its_job() {
    let server = spawn_server().await;
    let form = Form::new().part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    );
    let upload = server.fansly_upload("86540", form).await;
    let parameters = follow_link(
        Document::Fansly,
        ("POST", "/api/fansly/{accountId}/media/upload", "201"),
        "GetUploadStatus",
        &[("accountId", "86540")],
        &upload.body,
    );
    assert_eq!(parameters, [("jobId".to_owned(), "1".to_owned())]);
    server.advance(Duration::from_secs(5)).await;
    let status = server.fansly_status(&parameters[0].1).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["data"]["jobId"], "1");
    assert_eq!(status.body["data"]["state"], "completed");
}

/// Issue 18: `formInputs` is sent as the spec says, its example serialized by the multipart
/// `encoding` (one part of JSON text, `Content-Type: application/json`), and accepted; generated
/// requests that follow the spec are therefore valid.
#[tokio::test]
async fn form_inputs_as_the_spec_encodes_them_are_accepted() {
    let server = spawn_server().await;
    let spec = mock_server::spec::Spec::load(Document::Fansly).unwrap();
    let media = &spec.root()["paths"]["/api/fansly/{accountId}/media/upload"]["post"]["requestBody"]
        ["content"]["multipart/form-data"];
    let content_type = media["encoding"]["formInputs"]["contentType"]
        .as_str()
        .unwrap();
    assert_eq!(content_type, "application/json");
    let example = &media["schema"]["properties"]["formInputs"]["example"];
    assert!(example.is_array(), "{example}");
    let form = Form::new()
        .part(
            "file",
            file_part(sample("sample.png"), "a.png", "image/png"),
        )
        .part(
            "formInputs",
            reqwest::multipart::Part::text(example.to_string())
                .mime_str(content_type)
                .unwrap(),
        );
    assert_eq!(server.fansly_upload("86540", form).await.status, 201);
}
