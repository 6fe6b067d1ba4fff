//! Per-test isolation: two sessions on one server, in parallel, never see each other's jobs,
//! clocks, scenarios, journal entries or links.

use std::time::Duration;

use mock_server::spec::Document;
use reqwest::multipart::Form;
use serde_json::Value;

use crate::support::{Reply, TestServer, file_part, sample, spawn_server};

/// A client pinned to one session, as a parallel test would hold.
struct Session<'s> {
    server: &'s TestServer,
    name: &'static str,
}

impl Session<'_> {
    async fn upload(&self, scenario: Option<&str>) -> String {
        let form = Form::new().part(
            "file",
            file_part(sample("sample.png"), "a.png", "image/png"),
        );
        let mut request = self
            .server
            .http
            .post(self.server.url("/api/fansly/acct/media/upload"))
            .header("x-api-key", "k")
            .header("x-mock-session", self.name)
            .multipart(form);
        if let Some(scenario) = scenario {
            request = request.header("x-mock-scenario", scenario);
        }
        let reply = Reply::checked(request.send().await.unwrap(), "POST", Document::Fansly).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["data"]["jobId"].as_str().unwrap().to_owned()
    }

    async fn status(&self, job_id: &str) -> Reply {
        let response = self
            .server
            .http
            .get(
                self.server
                    .url(&format!("/api/fansly/media/upload/{job_id}/status")),
            )
            .header("x-api-key", "k")
            .header("x-mock-session", self.name)
            .send()
            .await
            .unwrap();
        Reply::checked(response, "GET", Document::Fansly).await
    }

    async fn advance(&self, by: Duration) {
        let response = self
            .server
            .http
            .post(self.server.url("/__admin/clock/advance"))
            .header("x-mock-session", self.name)
            .json(&serde_json::json!({ "seconds": by.as_secs_f64() }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn set_scenario(&self, name: &str) {
        let response = self
            .server
            .http
            .put(self.server.url("/__admin/scenario"))
            .header("x-mock-session", self.name)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
}

fn link(reply: &Reply) -> String {
    reply.body["data"]["result"]["accountMedia"][0]["media"]["locations"][0]["location"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn two_sessions_in_parallel_do_not_interfere() {
    let server = spawn_server().await;
    let alice = Session {
        server: &server,
        name: "alice",
    };
    let bob = Session {
        server: &server,
        name: "bob",
    };

    // Both start numbering at 1, uploading at the same time.
    let (alice_job, bob_job) = tokio::join!(alice.upload(None), bob.upload(None));
    assert_eq!((alice_job.as_str(), bob_job.as_str()), ("1", "1"));

    // Alice's clock moves; Bob's does not.
    alice.advance(Duration::from_secs(3)).await;
    assert_eq!(alice.status("1").await.body["data"]["state"], "completed");
    assert_eq!(bob.status("1").await.body["data"]["state"], "waiting");

    // Alice's scenario is hers alone.
    alice.set_scenario("rate-limited").await;
    let (alice_second, bob_second) = tokio::join!(alice.upload(None), bob.upload(None));
    for _ in 0..3 {
        bob.status(&bob_second).await;
    }
    let alice_polls = [
        alice.status(&alice_second).await.status,
        alice.status(&alice_second).await.status,
    ];
    assert_eq!(alice_polls, [200, 429]);
    let bob_poll = bob.status(&bob_second).await;
    assert_eq!(bob_poll.status, 200);

    // A job is invisible outside its session.
    let outsider = server.fansly_status("2").await;
    assert_eq!(outsider.status, 404);

    // Links expire by the owning session's clock.
    bob.advance(Duration::from_secs(3)).await;
    let alice_link = link(&alice.status("1").await);
    let bob_link = link(&bob.status("1").await);
    alice.advance(Duration::from_secs(5 * 3600 + 1)).await;
    assert_eq!(server.fetch(&alice_link).await.0, 403);
    assert_eq!(server.fetch(&bob_link).await.0, 200);

    // Each journal holds only its own requests.
    let journal: Value = server
        .http
        .get(server.url("/__admin/journal?session=bob"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = journal["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|entry| entry["session"] == "bob"),
        "{entries:#?}"
    );
}

#[tokio::test]
async fn sessions_are_listed_and_a_reset_removes_jobs_and_their_files() {
    let server = spawn_server().await;
    let carol = Session {
        server: &server,
        name: "carol",
    };
    carol.upload(None).await;
    carol.upload(None).await;
    server
        .fansly_upload(
            "acct",
            Form::new().part(
                "file",
                file_part(sample("sample.png"), "a.png", "image/png"),
            ),
        )
        .await;
    let listed: Value = server
        .http
        .get(server.url("/__admin/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let carol_row = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == "carol")
        .unwrap()
        .clone();
    assert_eq!(carol_row["n_jobs"], 2);
    let files_before = std::fs::read_dir(server.server.storage_dir())
        .unwrap()
        .count();
    assert_eq!(files_before, 3);

    let reset: Value = server
        .http
        .delete(server.url("/__admin/sessions/carol"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["jobs_removed"], 2);
    assert_eq!(carol.status("1").await.status, 404);
    assert_eq!(
        std::fs::read_dir(server.server.storage_dir())
            .unwrap()
            .count(),
        1,
        "carol's uploads are still on disk"
    );
    assert_eq!(
        server.jobs().await.len(),
        1,
        "the default session's job went too"
    );
    // A reset session starts again from job 1.
    assert_eq!(carol.upload(None).await, "1");
}

#[tokio::test]
async fn an_invalid_session_name_gets_the_providers_400() {
    let server = spawn_server().await;
    let response = server
        .http
        .get(server.url("/api/fansly/media/upload/1/status"))
        .header("x-api-key", "k")
        .header("x-mock-session", "has spaces/and slashes")
        .send()
        .await
        .unwrap();
    let reply = Reply::checked(response, "GET", Document::Fansly).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .starts_with("X-Mock-Session must be")
    );
}

#[tokio::test]
async fn urls_the_mock_writes_carry_their_session_so_a_client_can_follow_them_bare() {
    let server = spawn_server().await;
    let form = Form::new().text("async", "true").part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    );
    let accepted: Value = server
        .http
        .post(server.url("/api/acct_1/media/upload"))
        .header("authorization", "Bearer k")
        .header("x-mock-session", "fleet-a")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let polling_url = accepted["polling_url"].as_str().unwrap();
    assert!(
        polling_url.ends_with("/status?mock_session=fleet-a"),
        "{polling_url}"
    );
    // Followed without the header, as a client follows a URL it was given: the session's job.
    let poll = |url: String| {
        let http = server.http.clone();
        async move {
            let response = http
                .get(url)
                .header("authorization", "Bearer k")
                .send()
                .await
                .unwrap();
            Reply::checked(response, "GET", Document::OnlyFans).await
        }
    };
    assert_eq!(poll(polling_url.to_owned()).await.status, 200);
    server
        .http
        .post(server.url("/__admin/clock/advance"))
        .header("x-mock-session", "fleet-a")
        .body(r#"{"by": "1m"}"#)
        .send()
        .await
        .unwrap();
    let done = poll(polling_url.to_owned()).await;
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    let source = done.body["media"]["sourceUrl"].as_str().unwrap();
    assert!(source.ends_with("&mock_session=fleet-a"), "{source}");
    let served = server.http.get(source).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap(), sample("sample.png"));
    // The default session's URLs stay exactly as the provider writes them.
    let form = Form::new().text("async", "true").part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    );
    let plain: Value = server
        .http
        .post(server.url("/api/acct_1/media/upload"))
        .header("authorization", "Bearer k")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !plain["polling_url"].as_str().unwrap().contains('?'),
        "{plain}"
    );
    // A bad name in the parameter is refused like a bad header.
    let bad = server
        .http
        .get(server.url("/api/acct_1/media/uploads/ofapi_media_x/status?mock_session=%20bad"))
        .header("authorization", "Bearer k")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
