//! `GET /__admin/events` over plain HTTP: what a subscriber sees, the session filter, and the
//! admin token.

use std::time::Duration;

use futures_util::StreamExt as _;
use mock_server::MockServer;
use mock_server::spec::{Document, Spec};
use serde_json::Value;

use crate::support::{TestServer, file_part, sample, spawn_server, spawn_with};

/// Longest wait for an expected event: a bound against a hang, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// An open event stream, read event by event.
pub(crate) struct Subscriber {
    chunks: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>>>,
    buffered: String,
}

impl Subscriber {
    /// Subscribes at `url` (a `/__admin/events` URL with its query) and checks the answer's
    /// status and type against `specs/admin.yaml`.
    pub(crate) async fn open(request: reqwest::RequestBuilder) -> Subscriber {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        let spec = Spec::load(Document::Admin).unwrap();
        let documented = spec.response("GET", "/__admin/events", 200).unwrap();
        assert!(
            documented.content_types().contains(&content_type),
            "answered {content_type}, documented {:?}",
            documented.content_types()
        );
        let mut subscriber = Subscriber {
            chunks: Box::pin(response.bytes_stream()),
            buffered: String::new(),
        };
        let hello = subscriber.next().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        subscriber
    }

    /// The next event's JSON.
    pub(crate) async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffered.find("\n\n") {
                let frame: String = self.buffered.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|line| line.strip_prefix("data: "))
                    .collect();
                if data.is_empty() {
                    continue; // A heartbeat comment.
                }
                return serde_json::from_str(&data).unwrap();
            }
            let chunk = tokio::time::timeout(PATIENCE, self.chunks.next())
                .await
                .expect("no event came")
                .expect("the stream ended")
                .unwrap();
            self.buffered.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Skips events until one of type `kind` passing `keep` comes, and returns it.
    pub(crate) async fn until(&mut self, kind: &str, keep: impl Fn(&Value) -> bool) -> Value {
        loop {
            let event = self.next().await;
            if event["type"] == kind && keep(&event) {
                return event;
            }
        }
    }
}

async fn upload(server: &TestServer, session: &str) -> String {
    let form = reqwest::multipart::Form::new().part(
        "file",
        file_part(sample("sample.jpg"), "sample.jpg", "image/jpeg"),
    );
    let response = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "test-key")
        .header("x-mock-session", session)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["data"]["jobId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_subscriber_sees_a_job_created_then_completed_by_a_clock_move() {
    let server = spawn_server().await;
    let mut events =
        Subscriber::open(server.http.get(server.url("/__admin/events?session=qa"))).await;
    let id = upload(&server, "qa").await;
    let created = events.until("job_created", |_| true).await;
    assert_eq!(created["session"], "qa");
    assert_eq!(created["provider"], "fansly");
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["state"], "queued");
    let appended = events.until("journal_appended", |_| true).await;
    assert_eq!(appended["route"], "upload");
    assert_eq!(appended["job_id"], id.as_str());

    server.advance(Duration::from_secs(3)).await;
    let moved = events.until("clock_moved", |_| true).await;
    assert_eq!(moved["session"], Value::Null, "the server clock moved");
    let changed = events.until("job_changed", |_| true).await;
    assert_eq!(changed["id"], id.as_str());
    assert_eq!(changed["from"], "queued");
    assert_eq!(changed["state"], "completed");
    assert_eq!(changed["progress"], 100);

    server.fansly_status_in("qa", &id).await;
    let polled = events.until("job_polled", |_| true).await;
    assert_eq!(polled["state"], "completed");
    assert_eq!(polled["n_polls"], 1);
}

#[tokio::test]
async fn a_session_filter_keeps_other_sessions_events_out() {
    let server = spawn_server().await;
    let mut events =
        Subscriber::open(server.http.get(server.url("/__admin/events?session=mine"))).await;
    upload(&server, "theirs").await;
    let id = upload(&server, "mine").await;
    let first = events
        .until("job_created", |event| event["provider"] == "fansly")
        .await;
    assert_eq!(
        first["session"], "mine",
        "another session's job came through"
    );
    assert_eq!(first["id"], id.as_str());
    // A session's own clock move reaches it; the other session's does not.
    for session in ["theirs", "mine"] {
        let response = server
            .http
            .post(server.url("/__admin/clock/advance"))
            .header("x-mock-session", session)
            .json(&serde_json::json!({"by": "1s"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let moved = events.until("clock_moved", |_| true).await;
    assert_eq!(moved["session"], "mine");
}

#[tokio::test]
async fn forcing_and_resetting_are_announced() {
    let server = spawn_server().await;
    let mut events = Subscriber::open(server.http.get(server.url("/__admin/events"))).await;
    let id = upload(&server, "default").await;
    let response = server
        .http
        .post(server.url(&format!("/__admin/jobs/fansly/{id}")))
        .json(&serde_json::json!({"outcome": {"failed": "Media processing failed"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let forced = events.until("job_forced", |_| true).await;
    assert_eq!(forced["state"], "failed");
    assert_eq!(forced["error"], "Media processing failed");
    let response = server
        .http
        .delete(server.url("/__admin/sessions/default"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reset = events.until("session_reset", |_| true).await;
    assert_eq!(reset["session"], "default");
}

#[tokio::test]
async fn scenario_choices_and_credit_charges_are_announced() {
    let server = spawn_server().await;
    let mut events =
        Subscriber::open(server.http.get(server.url("/__admin/events?session=qa"))).await;
    for session in [Some("qa"), None] {
        let mut request = server
            .http
            .put(server.url("/__admin/scenario"))
            .json(&serde_json::json!({"name": "slow"}));
        if let Some(session) = session {
            request = request.header("x-mock-session", session);
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
        let set = events.until("scenario_set", |_| true).await;
        assert_eq!(set["session"], serde_json::json!(session));
        assert_eq!(set["scenario"], "slow");
    }
    let form = reqwest::multipart::Form::new().part(
        "file",
        file_part(sample("sample.jpg"), "sample.jpg", "image/jpeg"),
    );
    let uploaded = server.onlyfans_upload("acct_1", "upload", form).await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    let charged = events.until("credits_charged", |_| true).await;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"test-key"));
    assert_eq!(charged["key_sha256"], digest.as_str());
    // One started megabyte at the fixtures' 3 credits each.
    assert_eq!(charged["total"], 3);
}

#[tokio::test]
async fn unknown_event_parameters_are_refused() {
    let server = spawn_server().await;
    let response = server
        .http
        .get(server.url("/__admin/events?sesion=typo"))
        .send()
        .await
        .unwrap();
    let reply = crate::support::Reply::checked(response, "GET", Document::Admin).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["code"], "unknown_filter");
}

#[tokio::test]
async fn with_an_admin_token_the_stream_and_the_page_take_it_in_the_query_and_nothing_else_does() {
    let server = spawn_with(MockServer::builder().seed(7).admin_token("s3cret")).await;
    let status = |path: &str| {
        let request = server.http.get(server.url(path));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for path in [
        "/__admin/events",
        "/__admin/events?token=s3cre",
        "/__admin/ui",
        "/__admin/ui?token=wrong",
        // The query token is for the page and its stream only.
        "/__admin/jobs?token=s3cret",
        "/__admin/journal?token=s3cret",
        "/__admin/health?token=s3cret",
    ] {
        assert_eq!(status(path).await, 401, "{path} answered without the token");
    }
    assert_eq!(status("/__admin/ui?token=s3cret").await, 200);
    let mut events =
        Subscriber::open(server.http.get(server.url("/__admin/events?token=s3cret"))).await;
    let mut by_header = Subscriber::open(
        server
            .http
            .get(server.url("/__admin/events"))
            .bearer_auth("s3cret"),
    )
    .await;
    upload(&server, "default").await;
    for subscriber in [&mut events, &mut by_header] {
        subscriber.until("job_created", |_| true).await;
    }
}

#[tokio::test]
async fn shutting_down_ends_the_stream_instead_of_waiting_out_the_grace_period() {
    // A grace period far beyond the test's patience: only a stream that ends lets shutdown return.
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .grace_period(Duration::from_secs(3600)),
    )
    .await;
    let mut events = Subscriber::open(server.http.get(server.url("/__admin/events"))).await;
    tokio::time::timeout(PATIENCE, server.server.shutdown())
        .await
        .expect("shutdown waited for the event stream");
    let ended = tokio::time::timeout(PATIENCE, events.chunks.next())
        .await
        .unwrap();
    assert!(
        ended.is_none_or(|chunk| chunk.is_err()),
        "the stream went on after shutdown"
    );
}
