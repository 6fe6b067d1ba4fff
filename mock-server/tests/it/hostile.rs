//! Properties over real HTTP: whatever body arrives at an upload route, the answer is a
//! provider-shaped 2xx or 4xx (never a 5xx, never a dropped connection), and the server keeps
//! serving. Cases are capped by `PROPTEST_CASES` (64 in CI) to fit 2 cores.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::{TestServer, file_part, sample, spawn_server};

const BOUNDARY: &str = "PropBoundary";

/// A valid two-part form that mutations start from.
fn valid_form() -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"async\"\r\n\r\ntrue\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\nContent-Type: image/gif\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;");
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Bodies near and far from valid multipart: random bytes, truncations, and byte flips.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        (0usize..400).prop_map(|cut| {
            let mut body = valid_form();
            body.truncate(cut.min(body.len()));
            body
        }),
        proptest::collection::vec((0usize..400, 1u8..=255), 1..8).prop_map(|flips| {
            let mut body = valid_form();
            let len = body.len();
            for (idx, flip) in flips {
                body[idx % len] ^= flip;
            }
            body
        }),
    ]
}

fn content_types() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(Some(format!("multipart/form-data; boundary={BOUNDARY}"))),
        Just(Some("multipart/form-data".to_owned())),
        Just(Some("multipart/form-data; boundary=\"\"".to_owned())),
        Just(Some("application/json".to_owned())),
        Just(None),
        "[ -~]{0,60}".prop_map(Some),
    ]
}

async fn post(server: &TestServer, path: &str, content_type: Option<&str>, body: Vec<u8>) -> u16 {
    let mut request = server
        .http
        .post(server.url(path))
        .header("x-api-key", "k")
        .bearer_auth("k")
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap().status().as_u16()
}

#[test]
fn fuzz_upload_bodies_get_2xx_or_4xx_and_the_server_keeps_serving() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(spawn_server());
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(content_types(), bodies()), |(content_type, body)| {
            runtime.block_on(async {
                for path in [
                    "/api/fansly/acct/media/upload",
                    "/api/acct_1/media/upload",
                    "/api/acct_1/media/vault",
                ] {
                    let status = post(&server, path, content_type.as_deref(), body.clone()).await;
                    prop_assert!((200..500).contains(&status), "{path} answered {status}");
                }
                Ok(())
            })
        })
        .unwrap();
    runtime.block_on(async {
        let form = reqwest::multipart::Form::new().part(
            "file",
            file_part(sample("sample.png"), "a.png", "image/png"),
        );
        assert_eq!(server.fansly_upload("acct", form).await.status, 201);
    });
}

/// Any JSON value (nested a little), or raw bytes, as an admin request body.
fn admin_bodies() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|number| serde_json::json!(number)),
        "\\PC{0,24}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("5h 1s"),
            Just("2026-02-04T18:35:01Z"),
            Just("happy"),
            Just("completed"),
            Just("failed")
        ]
        .prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("seconds".to_owned()),
                    Just("by".to_owned()),
                    Just("unix_ms".to_owned()),
                    Just("at".to_owned()),
                    Just("name".to_owned()),
                    Just("outcome".to_owned()),
                    Just("state".to_owned()),
                    Just("progress".to_owned()),
                    Just("reason".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..4
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => value.prop_map(|value| serde_json::to_vec(&value).unwrap()),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

#[test]
fn fuzz_admin_json_never_gets_a_5xx_and_the_server_keeps_serving() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(spawn_server());
    runtime.block_on(async {
        let form = reqwest::multipart::Form::new().part(
            "file",
            file_part(sample("sample.gif"), "a.gif", "image/gif"),
        );
        server.fansly_upload("acct", form).await;
    });
    let routes = [
        ("POST", "/__admin/clock/advance"),
        ("POST", "/__admin/clock/set"),
        ("POST", "/__admin/jobs/fansly/1"),
        ("POST", "/__admin/jobs/onlyfans/ofapi_media_x"),
        ("PUT", "/__admin/scenario"),
        ("POST", "/__admin/reset"),
    ];
    let mut runner = TestRunner::new(Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(128),
        ..Config::default()
    });
    runner
        .run(
            &(proptest::sample::select(routes.to_vec()), admin_bodies()),
            |((method, path), body)| {
                let status = runtime.block_on(async {
                    server
                        .http
                        .request(method.parse().unwrap(), server.url(path))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                });
                prop_assert!(
                    status < 500,
                    "{method} {path} {} → {status}",
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            },
        )
        .unwrap();
    let health = runtime.block_on(async {
        server
            .http
            .get(server.url("/__admin/health"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(health, 200);
}
