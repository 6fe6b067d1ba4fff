//! `conformance parity` against cassettes recorded through a recording mock (`Builder::proxy`,
//! `Builder::record`) from a "live" mock: passes when the live side is the mock itself, and names
//! exactly the field, state and error text a bending proxy changed on the live side.

use std::path::Path;
use std::time::Duration;

use conformance::Target;
use conformance::parity::{self, Accepted};
use mock_server::clock::Clock;
use mock_server::{MockServer, Provider};

use crate::support::{spawn_breaking_proxy, spawn_mock};

fn manual() -> Clock {
    Clock::manual(std::time::UNIX_EPOCH + Duration::from_secs(1_770_230_101))
}

/// Records one rate-limited Fansly job from `upstream` (whose clock is `upstream_clock`) into
/// `dir`, polling every 500 ms of both clocks until it completes.
async fn record(upstream: &str, upstream_clock: &Clock, dir: &Path) {
    let recorder = MockServer::builder()
        .clock(manual())
        .proxy(Provider::Fansly, upstream)
        .record(dir)
        .start()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(
            include_bytes!("../../../fixtures/media/sample.jpg").to_vec(),
        )
        .file_name("sample.jpg"),
    );
    let uploaded: serde_json::Value = client
        .post(format!(
            "{}/api/fansly/acct1/media/upload",
            recorder.base_url()
        ))
        .header("x-api-key", "live-key")
        .header("x-mock-scenario", "rate-limited")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = uploaded["data"]["jobId"].as_str().unwrap().to_owned();
    for _ in 0..20 {
        upstream_clock.advance(Duration::from_millis(500)).unwrap();
        recorder
            .clock()
            .advance(Duration::from_millis(500))
            .unwrap();
        let body: serde_json::Value = client
            .get(format!(
                "{}/api/fansly/media/upload/{job}/status",
                recorder.base_url()
            ))
            .header("x-api-key", "live-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body.pointer("/data/state").and_then(|state| state.as_str()) == Some("completed") {
            break;
        }
    }
    recorder.shutdown().await;
}

/// Every difference `parity` finds between the cassettes in `dir` and a mock replaying them.
async fn unaccepted(dir: &Path, accepted: &Accepted) -> Vec<String> {
    let replayer = MockServer::builder()
        .clock(manual())
        .recordings(dir)
        .start()
        .await
        .unwrap();
    let target = Target::mock(replayer.base_url(), Provider::Fansly);
    let cassettes = parity::cassettes_in(dir, Provider::Fansly).unwrap();
    assert_eq!(cassettes.len(), 1);
    let results = parity::parity(&target, dir, &cassettes, accepted)
        .await
        .unwrap();
    assert!(
        results[0]
            .rows
            .iter()
            .any(|row| row.state == "429" && row.exchanges == 2)
    );
    results
        .iter()
        .flat_map(|cassette| &cassette.rows)
        .flat_map(|row| &row.findings)
        .filter(|finding| finding.accepted.is_none())
        .map(|finding| finding.key.clone())
        .collect()
}

#[tokio::test]
async fn parity_passes_against_the_api_the_mock_plays() {
    let live = spawn_mock().await;
    let dir = tempfile::tempdir().unwrap();
    record(&live.base_url(), live.clock(), dir.path()).await;
    assert_eq!(
        unaccepted(dir.path(), &Accepted::default()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn parity_names_a_renamed_field_a_new_state_and_a_changed_error_text() {
    let live = spawn_mock().await;
    // The "live" API changed: `progress` is now `percent`, `active` is `transcoding`, and the
    // 429 says something else.
    let bent = spawn_breaking_proxy(
        live.base_url(),
        |_, _| {},
        |seen, answer| {
            if !seen.path.ends_with("/status") {
                return;
            }
            answer.edit_json(|body| {
                if let Some(data) = body.get_mut("data").and_then(|data| data.as_object_mut()) {
                    if let Some(progress) = data.remove("progress") {
                        data.insert("percent".to_owned(), progress);
                    }
                    if data.get("state").and_then(|state| state.as_str()) == Some("active") {
                        data.insert("state".to_owned(), "transcoding".into());
                    }
                }
                if body["statusCode"] == 429 {
                    body["message"] = "Too many requests, slow down.".into();
                }
            });
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    record(&bent, live.clock(), dir.path()).await;
    let mut found = unaccepted(dir.path(), &Accepted::default()).await;
    found.sort();
    assert_eq!(
        found,
        [
            "status 429 /message: value changed from \"Too many requests, slow down.\" to \"Rate limit exceeded. Please wait before making more requests.\"",
            "status completed /data/percent: field removed (was integer)",
            "status completed /data/progress: field added (integer)",
            "status transcoding /data/percent: field removed (was integer)",
            "status transcoding /data/progress: field added (integer)",
            "status transcoding /data/state: value changed from \"transcoding\" to \"active\"",
        ]
    );
    // Each accepted with a reason, the same recording passes.
    let reviewed: String = found
        .iter()
        .map(|key| format!("{key} # reviewed in the test\n"))
        .collect();
    let accepted = Accepted::parse(&reviewed).unwrap();
    assert_eq!(
        unaccepted(dir.path(), &accepted).await,
        Vec::<String>::new()
    );
}
