//! The HTTP `Date` header says the mock's time, as the bodies do (issue 18): a client that
//! computes link expiry from `Date` agrees with the body.

use std::time::{Duration, UNIX_EPOCH};

use reqwest::multipart::Form;

use crate::support::{START_UNIX, file_part, sample, spawn_server};

fn http_date(unix: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix))
}

#[tokio::test]
async fn date_follows_the_manual_clock_and_each_sessions_own() {
    let server = spawn_server().await;
    let form = Form::new().part(
        "file",
        file_part(sample("sample.jpg"), "a.jpg", "image/jpeg"),
    );
    let upload = server.fansly_upload("acct", form).await;
    assert_eq!(
        upload.headers["date"].to_str().unwrap(),
        http_date(START_UNIX),
        "the upload's Date is the manual clock's, not the wall clock's"
    );
    server.advance(Duration::from_secs(3_600)).await;
    let polled = server.fansly_status("1").await;
    assert_eq!(
        polled.headers["date"].to_str().unwrap(),
        http_date(START_UNIX + 3_600)
    );
    let timestamp = polled.body["timestamp"].as_str().unwrap();
    assert!(
        timestamp.starts_with("2026-02-04T19:35:01"),
        "the body says the same time: {timestamp}"
    );

    // A session whose clock is a day ahead: its answers' Date is a day ahead too.
    let advanced = server
        .http
        .post(server.url("/__admin/clock/advance"))
        .header("x-mock-session", "ahead")
        .json(&serde_json::json!({"seconds": 86_400}))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), 200);
    let in_session = server.fansly_status_in("ahead", "1").await;
    assert_eq!(in_session.status, 404, "{:?}", in_session.body);
    assert_eq!(
        in_session.headers["date"].to_str().unwrap(),
        http_date(START_UNIX + 3_600 + 86_400)
    );
    // The admin API answers on the server's clock.
    let clock = server
        .http
        .get(server.url("/__admin/clock"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        clock.headers()["date"].to_str().unwrap(),
        http_date(START_UNIX + 3_600)
    );
}
