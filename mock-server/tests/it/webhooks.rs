//! OnlyFans webhooks, received by a real HTTP server on loopback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use mock_server::MockServer;
use mock_server::spec::{Document, Spec};
use mock_server::webhook::{USER_AGENT, WebhookConfig, signature};
use reqwest::multipart::Form;
use serde_json::Value;

use crate::support::{TestServer, file_part, sample, spawn_with};

const SECRET: &str = "whsec_test";

/// One delivery as received: its headers and its body.
type Delivery = (hyper::HeaderMap, Bytes);

/// A header of a delivery, if it came.
fn header<'d>(delivery: &'d Delivery, name: &str) -> Option<&'d str> {
    delivery.0.get(name).map(|value| value.to_str().unwrap())
}

/// A webhook receiver that records what it gets and answers scripted statuses (then 200); a
/// scripted 0 never answers.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Delivery>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Self, String) {
        let receiver = Self::default();
        receiver.script.lock().unwrap().extend(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/onlyfans", listener.local_addr().unwrap());
        let shared = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = shared.clone();
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let shared = shared.clone();
                        async move {
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            shared.received.lock().unwrap().push((headers, body));
                            let status = shared.script.lock().unwrap().pop_front().unwrap_or(200);
                            if status == 0 {
                                std::future::pending::<()>().await;
                            }
                            let mut response = hyper::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        (receiver, url)
    }

    fn received(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }

    /// Waits for `n` deliveries: the sender runs on its own task, so this waits for it, bounded.
    async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        tokio::time::timeout(Duration::from_secs(10), async {
            while self.received.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the webhook did not arrive within 10 s");
        self.received()
    }
}

async fn server_with_webhook(url: String) -> TestServer {
    server_with_config(WebhookConfig::new(url).signed_with(SECRET)).await
}

async fn server_with_config(mut config: WebhookConfig) -> TestServer {
    config.backoff = Duration::from_millis(10);
    spawn_with(MockServer::builder().seed(7).webhook(config)).await
}

async fn async_upload(server: &TestServer, scenario: Option<&str>) -> String {
    let form = Form::new()
        .part(
            "file",
            file_part(sample("sample.png"), "a.png", "image/png"),
        )
        .text("async", "true");
    let mut request = server
        .http
        .post(server.url("/api/acct_1/media/upload"))
        .bearer_auth("k")
        .multipart(form);
    if let Some(scenario) = scenario {
        request = request.header("x-mock-scenario", scenario);
    }
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    body["prefixed_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_completed_async_upload_is_announced_with_a_valid_signature() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with_webhook(url).await;
    let upload_id = async_upload(&server, None).await;
    assert!(receiver.received().is_empty(), "announced before it ended");
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(1).await;
    let body = &received[0].1;
    assert_eq!(
        header(&received[0], "signature"),
        Some(signature(SECRET, body).as_str())
    );
    assert_eq!(header(&received[0], "user-agent"), Some(USER_AGENT));
    assert_eq!(
        header(&received[0], "content-type"),
        Some("application/json")
    );
    // Every header the spec's `x-webhooks` requires came, and an enumerated one has its value.
    let spec = Spec::load(Document::OnlyFans).unwrap();
    let documented = spec.root()["x-webhooks"]["mediaUploadEnded"]["post"]["parameters"]
        .as_array()
        .unwrap();
    for parameter in documented {
        let name = parameter["name"].as_str().unwrap();
        let value = header(&received[0], name);
        assert!(
            value.is_some() || parameter["required"] != true,
            "no {name} header"
        );
        if let (Some(value), Some(allowed)) = (value, parameter["schema"]["enum"].as_array()) {
            assert!(allowed.iter().any(|item| item == value), "{name}: {value}");
        }
    }
    let envelope: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(envelope["event"], "media_uploads.completed");
    assert_eq!(envelope["account_id"], "acct_1");
    assert_eq!(envelope["payload"]["prefixed_id"], upload_id.as_str());
    // The payload is exactly what the status endpoint answers.
    let spec = Spec::load(Document::OnlyFans).unwrap();
    spec.validate_response(
        "GET",
        "/api/acct_1/media/uploads/x/status",
        200,
        &envelope["payload"],
    )
    .unwrap();
    let link = envelope["payload"]["media"]["thumbs"][0]["url"]
        .as_str()
        .unwrap();
    assert_eq!(server.fetch(link).await.0, 200);
}

#[tokio::test]
async fn a_failed_upload_is_announced_and_a_refused_delivery_is_retried() {
    let (receiver, url) = Receiver::start(&[503]).await;
    let server = server_with_webhook(url).await;
    async_upload(&server, Some("fail-while-processing")).await;
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(2).await;
    assert_eq!(
        received[0].1, received[1].1,
        "the retry carries the same body"
    );
    // Issue 18: and the same idempotency key, which is what receivers deduplicate by.
    let key = header(&received[0], "x-ofapi-idempotency-key").unwrap();
    assert_eq!(header(&received[1], "x-ofapi-idempotency-key"), Some(key));
    let envelope: Value = serde_json::from_slice(&received[1].1).unwrap();
    assert_eq!(envelope["event"], "media_uploads.failed");
    assert_eq!(
        envelope["payload"]["error"],
        "Media processing failed: the file could not be transcoded."
    );
    let journal: Value = server
        .http
        .get(server.url("/__admin/journal?route=webhook"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 200]);
    // Each attempt is journaled with its number, the next retry, and the signature it carried.
    let entries = journal["entries"].as_array().unwrap();
    assert_eq!(entries[0]["delivery"]["attempt"], 1);
    assert_eq!(entries[0]["delivery"]["max_attempts"], 5);
    assert!(entries[0]["delivery"]["next_retry_at"].is_string());
    assert_eq!(entries[1]["delivery"]["attempt"], 2);
    assert_eq!(entries[1]["delivery"]["next_retry_at"], Value::Null);
    assert_eq!(
        entries[1]["headers"]["signature"],
        mock_server::webhook::signature(SECRET, &received[1].1)
    );
    assert_eq!(entries[1]["headers"]["x-ofapi-idempotency-key"], key);
    assert_eq!(entries[1]["headers"]["user-agent"], USER_AGENT);
}

/// A server whose default scenario sets `webhook:` to `behaviour`.
async fn server_with_webhook_behaviour(url: String, behaviour: &str) -> TestServer {
    server_with_webhook_section(url, &format!("{behaviour}: true")).await
}

/// A server whose default scenario's `webhook:` section is `{ section }`.
async fn server_with_webhook_section(url: String, section: &str) -> TestServer {
    let mut config = WebhookConfig::new(url).signed_with(SECRET);
    config.backoff = Duration::from_millis(10);
    let yaml = format!("description: \"webhooks {section}\"\nwebhook: {{ {section} }}\n");
    let scenario =
        mock_server::scenario::Scenario::parse("hooks", &yaml, std::path::Path::new("hooks.yaml"))
            .unwrap();
    spawn_with(
        MockServer::builder()
            .seed(7)
            .webhook(config)
            .scenario(Arc::new(scenario)),
    )
    .await
}

#[tokio::test]
async fn a_scenario_can_duplicate_deliveries() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with_webhook_behaviour(url, "duplicate").await;
    async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(2).await;
    assert_eq!(received[0].1, received[1].1);
    // Issue 18: a duplicate is the same event, so it carries the same idempotency key.
    assert_eq!(
        header(&received[0], "x-ofapi-idempotency-key"),
        header(&received[1], "x-ofapi-idempotency-key")
    );
}

#[tokio::test]
async fn a_scenario_can_drop_deliveries_and_sync_uploads_are_never_announced() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with_webhook_behaviour(url, "drop").await;
    let form = Form::new().part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    );
    server.onlyfans_upload("acct_1", "upload", form).await;
    async_upload(&server, None).await;
    let announced = async_upload(&server, Some("happy")).await;
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(1).await;
    let envelope: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(envelope["payload"]["prefixed_id"], announced.as_str());
    // The drop is journaled by the sender's own task: wait for it, bounded.
    let dropped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let journal: Value = server
                .http
                .get(server.url("/__admin/journal?route=webhook"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let dropped: Vec<Value> = journal["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|entry| entry["fault"] == "drop")
                .cloned()
                .collect();
            if !dropped.is_empty() {
                return dropped;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the dropped delivery was not journaled within 10 s");
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert_eq!(dropped[0]["status"], 0);
    assert_eq!(
        receiver.received().len(),
        1,
        "a dropped or sync upload was announced"
    );
}

/// Issue 18: the provider sends `Signature` only when the webhook has a signing secret, and the
/// mock configures none unless told; every delivery still names itself (`User-Agent`) and carries
/// an idempotency key of the documented form, one per event.
#[tokio::test]
async fn without_a_secret_deliveries_are_unsigned_and_each_event_has_its_own_key() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with_config(WebhookConfig::new(url)).await;
    async_upload(&server, None).await;
    async_upload(&server, Some("fail-while-processing")).await;
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(2).await;
    let mut keys = Vec::new();
    for delivery in &received {
        assert_eq!(
            header(delivery, "signature"),
            None,
            "signed without a secret"
        );
        assert_eq!(header(delivery, "user-agent"), Some(USER_AGENT));
        let key = header(delivery, "x-ofapi-idempotency-key").unwrap();
        let hex = key.strip_prefix("evt_").unwrap();
        assert!(
            hex.len() == 40 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()),
            "{key}"
        );
        keys.push(key.to_owned());
    }
    assert_ne!(keys[0], keys[1], "two events share a key");
}

/// The session's webhook journal entries, once there are at least `n` (the sender journals on its
/// own task: waited for, bounded).
async fn webhook_entries(server: &TestServer, session: Option<&str>, n: usize) -> Vec<Value> {
    let query = session.map_or(String::new(), |session| format!("&session={session}"));
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let journal: Value = server
                .http
                .get(server.url(&format!("/__admin/journal?route=webhook{query}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let entries = journal["entries"].as_array().unwrap().clone();
            if entries.len() >= n {
                return entries;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} webhook attempts were not journaled within 10 s"))
}

/// Issue 18: the provider counts an attempt not answered 2xx within 10 s as failed and retries it;
/// a scenario shortens the deadline so a test reaches it at once.
#[tokio::test]
async fn a_delivery_not_answered_in_time_fails_and_is_retried() {
    let (receiver, url) = Receiver::start(&[0]).await;
    let server = server_with_webhook_section(url, "timeout: 200ms").await;
    async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(2).await;
    assert_eq!(received[0].1, received[1].1);
    assert_eq!(
        header(&received[0], "x-ofapi-idempotency-key"),
        header(&received[1], "x-ofapi-idempotency-key")
    );
    let entries = webhook_entries(&server, None, 2).await;
    assert_eq!(entries[0]["status"], 0);
    assert_eq!(entries[0]["fault"], "timeout");
    assert!(entries[0]["delivery"]["next_retry_at"].is_string());
    assert_eq!(entries[1]["status"], 200);
    assert_eq!(entries[1]["delivery"]["attempt"], 2);
}

/// Issue 18: deliveries can arrive out of order. An `out_of_order` event waits for a later event of
/// its session, so the job that ended first is announced last.
#[tokio::test]
async fn an_out_of_order_event_arrives_after_one_that_ended_later() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with_webhook_behaviour(url, "out_of_order").await;
    let first = async_upload(&server, Some("fail-while-processing")).await;
    // fail-while-processing has no out_of_order: this job is the control, announced at once.
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(1).await;
    let envelope: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(envelope["payload"]["prefixed_id"], first.as_str());
    let held = async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let later = async_upload(&server, Some("happy")).await;
    // The held job has ended; nothing later has been delivered, so it is not sent yet.
    assert_eq!(receiver.received().len(), 1, "the held event was not held");
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(3).await;
    let order: Vec<String> = received
        .iter()
        .map(|delivery| {
            let envelope: Value = serde_json::from_slice(&delivery.1).unwrap();
            envelope["payload"]["prefixed_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(order, [first, later, held.clone()]);
    let entries = webhook_entries(&server, None, 3).await;
    let held_entry = entries.last().unwrap();
    assert_eq!(held_entry["fault"], "out_of_order");
    assert_eq!(held_entry["status"], 200);
}

/// Issue 18: a failing endpoint is paused; events during the pause are dropped, not kept, and
/// after a resume only later events are delivered.
#[tokio::test]
async fn a_failing_endpoint_is_paused_and_events_during_the_pause_are_dropped() {
    let (receiver, url) = Receiver::start(&[500, 503]).await;
    let server = server_with_webhook_section(url, "pause_after: 2").await;
    async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let entries = webhook_entries(&server, None, 2).await;
    let statuses: Vec<&Value> = entries.iter().map(|entry| &entry["status"]).collect();
    assert_eq!(statuses, [500, 503]);
    assert_eq!(
        entries[1]["delivery"]["next_retry_at"],
        Value::Null,
        "a pausing failure schedules no retry"
    );
    let (status, health) = crate::admin::admin_checked(
        &server,
        reqwest::Method::GET,
        "/__admin/webhooks",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(health["paused"], true);
    assert_eq!(health["consecutive_failures"], 2);
    let dropped_job = async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let entries = webhook_entries(&server, None, 3).await;
    assert_eq!(entries[2]["fault"], "paused");
    assert_eq!(entries[2]["status"], 0);
    assert_eq!(entries[2]["job_id"], dropped_job.as_str());
    let (status, health) = crate::admin::admin_checked(
        &server,
        reqwest::Method::POST,
        "/__admin/webhooks/resume",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(health["paused"], false);
    let delivered_job = async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let entries = webhook_entries(&server, None, 4).await;
    assert_eq!(entries[3]["status"], 200);
    assert_eq!(entries[3]["job_id"], delivered_job.as_str());
    // The receiver saw the two failed attempts and the event after the resume: the dropped event
    // was never sent, then or later.
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(
        received.iter().all(|delivery| {
            let envelope: Value = serde_json::from_slice(&delivery.1).unwrap();
            envelope["payload"]["prefixed_id"] != dropped_job.as_str()
        }),
        "the event of the pause was delivered"
    );
}

/// Issue 18: a manual redelivery sends the same body with the original idempotency key, signed,
/// and names the delivery it replays in `X-OFAPI-Redelivery-Of`.
#[tokio::test]
async fn a_manual_redelivery_sends_the_same_event_and_names_the_delivery() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with_webhook(url).await;
    async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let original = receiver.wait_for(1).await.remove(0);
    assert_eq!(header(&original, "x-ofapi-redelivery-of"), None);
    let entries = webhook_entries(&server, None, 1).await;
    let delivery_id = entries[0]["delivery"]["id"].as_u64().unwrap();
    let (status, answer) = crate::admin::admin_checked(
        &server,
        reqwest::Method::POST,
        &format!("/__admin/webhooks/{delivery_id}/redeliver"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["redelivery_of"], delivery_id);
    assert_eq!(answer["status"], 200);
    let received = receiver.wait_for(2).await;
    let again = &received[1];
    assert_eq!(again.1, original.1, "a redelivery carries the same body");
    assert_eq!(
        header(again, "x-ofapi-idempotency-key"),
        header(&original, "x-ofapi-idempotency-key")
    );
    let replayed = delivery_id.to_string();
    assert_eq!(
        header(again, "x-ofapi-redelivery-of"),
        Some(replayed.as_str())
    );
    assert_eq!(
        header(again, "signature"),
        Some(signature(SECRET, &again.1).as_str())
    );
    let entries = webhook_entries(&server, None, 2).await;
    assert_eq!(entries[1]["delivery"]["id"], answer["delivery"]);
    assert_eq!(entries[1]["delivery"]["redelivery_of"], delivery_id);
    // Another session cannot replay it, nor can an unknown id be.
    for (path, session) in [
        (
            format!("/__admin/webhooks/{delivery_id}/redeliver"),
            Some("other"),
        ),
        ("/__admin/webhooks/999/redeliver".to_owned(), None),
        ("/__admin/webhooks/latest/redeliver".to_owned(), None),
    ] {
        let (status, body) =
            crate::admin::admin_checked(&server, reqwest::Method::POST, &path, session, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "unknown_delivery");
    }
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn redelivery_without_a_webhook_is_refused() {
    let server = crate::support::spawn_server().await;
    let (status, body) = crate::admin::admin_checked(
        &server,
        reqwest::Method::POST,
        "/__admin/webhooks/1/redeliver",
        None,
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "no_webhook");
}

/// A scenario can forge the signature, so a receiver's check is seen to refuse what it must.
#[tokio::test]
async fn a_scenario_can_send_a_bad_signature() {
    let (receiver, url) = Receiver::start(&[401]).await;
    let server = server_with_webhook_behaviour(url, "bad_signature").await;
    async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let received = receiver.wait_for(2).await;
    for delivery in &received {
        let sent = header(delivery, "signature").unwrap();
        assert_eq!(sent.len(), 64);
        assert_ne!(
            sent,
            signature(SECRET, &delivery.1),
            "the signature is valid"
        );
    }
    let entries = webhook_entries(&server, None, 2).await;
    assert_eq!(entries[0]["fault"], "bad_signature");
    assert_eq!(entries[0]["status"], 401);
}

#[test]
fn a_pause_threshold_of_zero_is_refused() {
    let err = mock_server::scenario::Scenario::parse(
        "x",
        "webhook: { pause_after: 0 }\n",
        std::path::Path::new("x.yaml"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid scenario x.yaml: webhook: pause_after counts failed attempts from 1"
    );
}

/// `/__admin/jobs`' webhook field of the job `upload_id`.
async fn webhook_of(server: &TestServer, upload_id: &str) -> Value {
    server
        .jobs()
        .await
        .iter()
        .find(|job| job["id"] == upload_id)
        .map(|job| job["webhook"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_delivery_cut_short_by_a_restart_is_sent_again_and_a_finished_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    // Refused once; the retry would come after an hour, long after this process is gone.
    let (receiver, url) = Receiver::start(&[503]).await;
    let mut config = WebhookConfig::new(url);
    config.backoff = Duration::from_secs(3600);
    let start = |config: WebhookConfig| {
        spawn_with(
            MockServer::builder()
                .seed(7)
                .state_dir(dir.path())
                .webhook(config),
        )
    };
    let server = start(config.clone()).await;
    let upload_id = async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let first = receiver.wait_for(1).await;
    server.server.shutdown().await;

    // Restarted: the event goes again, as the same event.
    config.backoff = Duration::from_millis(10);
    let server = start(config.clone()).await;
    let again = receiver.wait_for(2).await;
    // The same event; its links name the restarted mock's port, as they must to be followed.
    let (before, after): (Value, Value) = (
        serde_json::from_slice(&first[0].1).unwrap(),
        serde_json::from_slice(&again[1].1).unwrap(),
    );
    assert_eq!(after["event"], before["event"]);
    assert_eq!(after["payload"]["prefixed_id"], upload_id.as_str());
    assert_eq!(before["payload"]["prefixed_id"], upload_id.as_str());
    assert_eq!(
        header(&again[1], "x-ofapi-idempotency-key"),
        header(&first[0], "x-ofapi-idempotency-key"),
    );
    // Answered 200 this time: the sender is done with it, and the store says so.
    tokio::time::timeout(Duration::from_secs(10), async {
        while webhook_of(&server, &upload_id).await != "done" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the delivery was never marked done");
    server.server.shutdown().await;

    // Restarted again: nothing is due, so a later event is the next delivery the receiver sees.
    let server = start(config).await;
    assert_eq!(webhook_of(&server, &upload_id).await, "done");
    let later = async_upload(&server, None).await;
    server.advance(Duration::from_secs(3)).await;
    let all = receiver.wait_for(3).await;
    let third: Value = serde_json::from_slice(&all[2].1).unwrap();
    assert_eq!(third["payload"]["prefixed_id"], later.as_str());
}
