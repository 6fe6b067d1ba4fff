//! The CDN: Range requests, HEAD, and refusal of tampered or unsigned links.

use std::time::Duration;

use reqwest::multipart::Form;

use crate::support::{TestServer, file_part, sample, spawn_server};

/// Uploads the sample JPEG to Fansly, completes it, and returns its first signed link.
async fn completed_link(server: &TestServer) -> String {
    let form = Form::new().part(
        "file",
        file_part(sample("sample.jpg"), "a.jpg", "image/jpeg"),
    );
    let upload = server.fansly_upload("acct", form).await;
    let job_id = upload.body["data"]["jobId"].as_str().unwrap().to_owned();
    server.advance(Duration::from_secs(10)).await;
    let status = server.fansly_status(&job_id).await;
    status.body["data"]["result"]["accountMedia"][0]["media"]["locations"][0]["location"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn range_requests_get_exactly_the_asked_bytes() {
    let server = spawn_server().await;
    let link = completed_link(&server).await;
    let bytes = sample("sample.jpg");
    let total = bytes.len();
    for (range, start, end) in [
        ("bytes=0-9".to_owned(), 0, 9),
        (format!("bytes={}-", total - 100), total - 100, total - 1),
        ("bytes=-50".to_owned(), total - 50, total - 1),
    ] {
        let response = server
            .http
            .get(&link)
            .header("range", &range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {start}-{end}/{total}").as_str()
        );
        assert_eq!(
            response.bytes().await.unwrap(),
            &bytes[start..=end],
            "{range}"
        );
    }
}

#[tokio::test]
async fn an_unsatisfiable_range_gets_416() {
    let server = spawn_server().await;
    let link = completed_link(&server).await;
    let response = server
        .http
        .get(&link)
        .header("range", "bytes=99999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    let total = sample("sample.jpg").len();
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes */{total}").as_str()
    );
}

#[tokio::test]
async fn a_range_in_an_unknown_unit_is_ignored_and_the_whole_body_served() {
    let server = spawn_server().await;
    let link = completed_link(&server).await;
    for range in ["items=0-10", "pages=1", "none"] {
        let response = server
            .http
            .get(&link)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{range}");
        assert!(response.headers().get("content-range").is_none(), "{range}");
        assert_eq!(
            response.bytes().await.unwrap(),
            sample("sample.jpg"),
            "{range}"
        );
    }
}

#[tokio::test]
async fn head_gives_length_and_type_without_a_body() {
    let server = spawn_server().await;
    let link = completed_link(&server).await;
    let response = server.http.head(&link).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(
        response.headers()["content-length"],
        sample("sample.jpg").len().to_string().as_str()
    );
    assert_eq!(response.headers()["accept-ranges"], "bytes");
}

#[tokio::test]
async fn tampered_and_unsigned_links_get_cloudfront_403s() {
    let server = spawn_server().await;
    let link = completed_link(&server).await;
    let (path, _) = link.split_once('?').unwrap();
    let other_media = link.replacen("/cdn/fansly/8", "/cdn/fansly/9", 1);
    let cases = [
        (
            link.replacen("Signature=", "Signature=A", 1),
            "bad-signature",
            "Access denied",
        ),
        (
            link.replacen("Key-Pair-Id=K2", "Key-Pair-Id=K3", 1),
            "unknown-key-pair-id",
            "Access denied",
        ),
        (other_media, "wrong-resource", "Access denied"),
        (
            path.to_owned(),
            "missing-key-pair-id",
            "Missing Key-Pair-Id query parameter or cookie value",
        ),
    ];
    for (url, reason, message) in cases {
        let response = server.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 403, "{url}");
        assert_eq!(response.headers()["x-mock-denied-reason"], reason, "{url}");
        let body = response.text().await.unwrap();
        assert_eq!(
            body,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
            )
        );
    }
    // The genuine link still works after all that.
    assert_eq!(server.fetch(&link).await.0, 200);
}

#[tokio::test]
async fn a_validly_signed_link_to_nothing_gets_404() {
    let server = spawn_server().await;
    let key = mock_server::signing::SigningKey::new([42; 32], "K2MOCKSERVERKEYPAIR");
    let path = "/cdn/fansly/123/photo.jpeg";
    let query = mock_server::signing::sign(
        path,
        crate::support::START_UNIX + 60,
        &key,
        mock_server::signing::Form::Custom,
    );
    let (status, content_type, body) = server.fetch(&server.url(&format!("{path}?{query}"))).await;
    assert_eq!(status, 404);
    assert_eq!(content_type, "text/xml");
    assert!(String::from_utf8(body).unwrap().contains("NoSuchKey"));
}
