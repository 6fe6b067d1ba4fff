//! Bad input: each gets the provider's error envelope with the right status (the body is checked
//! against the spec by `Reply::checked`), and the server keeps serving.

use std::time::Duration;

use mock_server::MockServer;
use mock_server::spec::Document;
use reqwest::multipart::Form;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{Reply, TestServer, file_part, sample, spawn_server, spawn_with};

const BOUNDARY: &str = "XyZboundary";

/// A raw request for each provider's upload route.
struct Raw<'a> {
    content_type: Option<&'a str>,
    body: Vec<u8>,
    auth: bool,
}

impl Raw<'_> {
    fn multipart(body: &str) -> Raw<'static> {
        Raw {
            content_type: Some("multipart/form-data; boundary=XyZboundary"),
            body: body.as_bytes().to_vec(),
            auth: true,
        }
    }
}

async fn send(server: &TestServer, document: Document, path: &str, raw: Raw<'_>) -> Reply {
    let mut request = server.http.post(server.url(path)).body(raw.body);
    if let Some(content_type) = raw.content_type {
        request = request.header("content-type", content_type);
    }
    if raw.auth {
        request = match document {
            Document::Fansly => request.header("x-api-key", "k"),
            _ => request.bearer_auth("k"),
        };
    }
    Reply::checked(request.send().await.unwrap(), "POST", document).await
}

/// After any refusal, a normal upload on a new connection still works.
async fn still_serves(server: &TestServer) {
    let form = Form::new().part(
        "file",
        file_part(sample("sample.png"), "a.png", "image/png"),
    );
    assert_eq!(server.fansly_upload("acct", form).await.status, 201);
}

fn form_with_field(name: &str, value: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n--{BOUNDARY}--\r\n"
    )
}

fn form_with_file(extra_fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in extra_fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\nContent-Type: image/gif\r\n\r\nGIF89a\x01\x00\x01\x00\x00\x00\x00;\r\n--{BOUNDARY}--\r\n"
    ));
    body
}

struct Case {
    name: &'static str,
    raw: Raw<'static>,
    status: u16,
    message: &'static str,
}

async fn check_fansly(server: &TestServer, case: Case) {
    let snapshot = match case.name {
        "missing key" => Some("fansly_error_401"),
        "missing file" => Some("fansly_error_400"),
        _ => None,
    };
    let reply = send(
        server,
        Document::Fansly,
        "/api/fansly/acct/media/upload",
        case.raw,
    )
    .await;
    if let Some(name) = snapshot {
        insta::assert_json_snapshot!(name, server.normalize(&reply.body));
    }
    assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.body);
    assert_eq!(reply.body["statusCode"], case.status, "{}", case.name);
    assert_eq!(reply.body["message"], case.message, "{}", case.name);
    assert_eq!(reply.body["data"], Value::Null, "{}", case.name);
    still_serves(server).await;
}

#[tokio::test]
async fn fansly_refuses_each_bad_upload_with_its_envelope() {
    let server = spawn_server().await;
    let cases = [
        Case {
            name: "missing key",
            raw: Raw {
                auth: false,
                ..Raw::multipart(&form_with_file(&[]))
            },
            status: 401,
            message: "Missing or invalid API key",
        },
        Case {
            name: "missing file",
            raw: Raw::multipart(&form_with_field("formInputs", "[]")),
            status: 400,
            message: "File is required",
        },
        Case {
            name: "file part without a filename",
            raw: Raw::multipart(&form_with_field("file", "not a file")),
            status: 400,
            message: "File is required",
        },
        Case {
            name: "json instead of multipart",
            raw: Raw {
                content_type: Some("application/json"),
                body: b"{\"file\":1}".to_vec(),
                auth: true,
            },
            status: 400,
            message: "Content-Type must be multipart/form-data",
        },
        Case {
            name: "no content type",
            raw: Raw {
                content_type: None,
                body: b"x".to_vec(),
                auth: true,
            },
            status: 400,
            message: "Content-Type must be multipart/form-data",
        },
        Case {
            name: "missing boundary",
            raw: Raw {
                content_type: Some("multipart/form-data"),
                body: form_with_file(&[]).into_bytes(),
                auth: true,
            },
            status: 400,
            message: "Malformed multipart/form-data body",
        },
        Case {
            name: "truncated multipart",
            raw: Raw::multipart(&form_with_file(&[])[..60]),
            status: 400,
            message: "Malformed multipart/form-data body",
        },
        Case {
            name: "wrong boundary",
            raw: Raw::multipart(&form_with_file(&[]).replace(BOUNDARY, "other")),
            status: 400,
            message: "Malformed multipart/form-data body",
        },
        Case {
            name: "formInputs not JSON",
            raw: Raw::multipart(&form_with_file(&[("formInputs", "{not json")])),
            status: 400,
            message: "formInputs must be a JSON array of {type: number, value: string}",
        },
        Case {
            name: "formInputs of the wrong shape",
            raw: Raw::multipart(&form_with_file(&[(
                "formInputs",
                r#"[{"type":"x","value":1}]"#,
            )])),
            status: 400,
            message: "formInputs must be a JSON array of {type: number, value: string}",
        },
        Case {
            name: "empty file",
            raw: Raw::multipart(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.jpg\"\r\n\r\n\r\n--{BOUNDARY}--\r\n"
            )),
            status: 400,
            message: "File is empty",
        },
    ];
    for case in cases {
        check_fansly(&server, case).await;
    }
    // None of the refusals created a job: only the `still_serves` uploads exist.
    let jobs = server.jobs().await;
    assert_eq!(jobs.len(), 11);
}

#[tokio::test]
async fn fansly_unknown_job_and_route_get_404_envelopes() {
    let server = spawn_server().await;
    let reply = server.fansly_status("999").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["message"], "Job not found");
    insta::assert_json_snapshot!("fansly_error_404", server.normalize(&reply.body));
    let response = server
        .http
        .delete(server.url("/api/fansly/media/upload/1/status"))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Cannot DELETE /api/fansly/media/upload/1/status"
    );
    still_serves(&server).await;
}

async fn check_onlyfans(server: &TestServer, endpoint: &str, case: Case) -> Reply {
    let reply = send(
        server,
        Document::OnlyFans,
        &format!("/api/acct_1/media/{endpoint}"),
        case.raw,
    )
    .await;
    assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.body);
    let message = reply
        .body
        .get("message")
        .or_else(|| reply.body.get("error"))
        .unwrap();
    assert_eq!(message, case.message, "{}", case.name);
    still_serves(server).await;
    reply
}

#[tokio::test]
async fn onlyfans_refuses_each_bad_upload_with_laravel_shapes() {
    let server = spawn_server().await;
    let cases = [
        Case {
            name: "missing bearer",
            raw: Raw {
                auth: false,
                ..Raw::multipart(&form_with_file(&[]))
            },
            status: 401,
            message: "Unauthorized. Go to https://app.onlyfansapi.com/api-keys to get your API key.",
        },
        Case {
            name: "neither file nor file_url",
            raw: Raw::multipart(&form_with_field("async", "true")),
            status: 422,
            message: "The file field is required when file url is not present.",
        },
        Case {
            name: "both file and file_url",
            raw: Raw::multipart(&form_with_file(&[("file_url", "http://127.0.0.1:1/a.jpg")])),
            status: 422,
            message: "The file field prohibits file url from being present.",
        },
        // Issue 18: an empty file_url is null to Laravel, which its URL rule refuses.
        Case {
            name: "file and an empty file_url",
            raw: Raw::multipart(&form_with_file(&[("file_url", "")])),
            status: 422,
            message: "The file url field must be a valid URL.",
        },
        Case {
            name: "unknown type",
            raw: Raw::multipart(&form_with_file(&[("type", "banner")])),
            status: 422,
            message: "The selected type is invalid.",
        },
        Case {
            name: "async not a boolean",
            raw: Raw::multipart(&form_with_file(&[("async", "maybe")])),
            status: 422,
            message: "The async field must be true or false.",
        },
        // Issue 18: an empty async is null to Laravel, which its boolean rule refuses.
        Case {
            name: "async empty",
            raw: Raw::multipart(&form_with_file(&[("async", "")])),
            status: 422,
            message: "The async field must be true or false.",
        },
        Case {
            name: "file_url not a URL",
            raw: Raw::multipart(&form_with_field("file_url", "not a url")),
            status: 422,
            message: "The file url field must be a valid URL.",
        },
        Case {
            name: "file sent as text",
            raw: Raw::multipart(&form_with_field("file", "hello")),
            status: 422,
            message: "The file field must be a file.",
        },
        Case {
            name: "not multipart",
            raw: Raw {
                content_type: Some("application/json"),
                body: b"{}".to_vec(),
                auth: true,
            },
            status: 422,
            message: "The file field is required when file url is not present.",
        },
        Case {
            name: "missing boundary",
            raw: Raw {
                content_type: Some("multipart/form-data"),
                body: form_with_file(&[]).into_bytes(),
                auth: true,
            },
            status: 422,
            message: "The file field is required when file url is not present.",
        },
        Case {
            name: "truncated multipart",
            raw: Raw::multipart(&form_with_file(&[])[..70]),
            status: 422,
            message: "The file field is required when file url is not present.",
        },
    ];
    for case in cases {
        let name = case.name;
        let reply = check_onlyfans(&server, "upload", case).await;
        if reply.status == 422 {
            assert!(
                reply.body["errors"]
                    .as_object()
                    .is_some_and(|errors| !errors.is_empty()),
                "{name}"
            );
        }
    }
    let reply = check_onlyfans(
        &server,
        "vault",
        Case {
            name: "vault without a file",
            raw: Raw::multipart(&form_with_field("async", "false")),
            status: 422,
            message: "The file field is required when file url is not present.",
        },
    )
    .await;
    insta::assert_json_snapshot!("onlyfans_error_422", reply.body);
}

#[tokio::test]
async fn onlyfans_unknown_upload_wrong_method_and_route() {
    let server = spawn_server().await;
    let reply = server.onlyfans_status("acct_1", "ofapi_media_nope").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["message"], "Upload not found.");
    insta::assert_json_snapshot!("onlyfans_error_404", reply.body);
    let response = server
        .http
        .get(server.url("/api/acct_1/media/upload"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    let reply = Reply::checked(response, "GET", Document::OnlyFans).await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.headers["allow"], "POST",
        "RFC 9110: a 405 names what is allowed"
    );
    assert_eq!(
        reply.body["message"],
        "The GET method is not supported for route api/acct_1/media/upload. Supported methods: POST."
    );
    insta::assert_json_snapshot!("onlyfans_error_405", reply.body);
    let response = server
        .http
        .get(server.url("/api/acct_1/nothing"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let unauthorized = server
        .http
        .get(server.url("/api/acct_1/media/uploads/x/status"))
        .send()
        .await
        .unwrap();
    let reply = Reply::checked(unauthorized, "GET", Document::OnlyFans).await;
    assert_eq!(reply.status, 401);
    insta::assert_json_snapshot!("onlyfans_error_401", reply.body);
    still_serves(&server).await;
}

#[tokio::test]
async fn configured_keys_refuse_any_other_key() {
    let server = spawn_with(MockServer::builder().api_key("good")).await;
    let bad = server
        .http
        .get(server.url("/api/fansly/media/upload/1/status"))
        .header("x-api-key", "bad")
        .send()
        .await
        .unwrap();
    assert_eq!(
        Reply::checked(bad, "GET", Document::Fansly).await.status,
        401
    );
    let good = server
        .http
        .get(server.url("/api/fansly/media/upload/1/status"))
        .header("x-api-key", "good")
        .send()
        .await
        .unwrap();
    assert_eq!(
        Reply::checked(good, "GET", Document::Fansly).await.status,
        404
    );
    let bad = server
        .http
        .get(server.url("/api/a/media/uploads/x/status"))
        .bearer_auth("bad")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
}

#[tokio::test]
async fn oversized_uploads_get_each_providers_413() {
    let server = spawn_with(MockServer::builder().max_upload_bytes(4_000)).await;
    let big = sample("sample.jpg");
    assert!(big.len() > 4_000);
    let fansly = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .multipart(Form::new().part("file", file_part(big.clone(), "big.jpg", "image/jpeg")))
        .send()
        .await
        .unwrap();
    let reply = Reply::checked(fansly, "POST", Document::Fansly).await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.body["message"],
        "File too large: the limit is 4000 bytes"
    );
    insta::assert_json_snapshot!("fansly_error_413", server.normalize(&reply.body));

    let onlyfans = server
        .http
        .post(server.url("/api/acct_1/media/upload"))
        .bearer_auth("k")
        .multipart(Form::new().part("file", file_part(big, "big.jpg", "image/jpeg")))
        .send()
        .await
        .unwrap();
    let reply = Reply::checked(onlyfans, "POST", Document::OnlyFans).await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.body["errors"]["file"][0],
        "The file field must not be greater than 3 kilobytes."
    );
    insta::assert_json_snapshot!("onlyfans_error_413", reply.body);

    // A file over the limit sent chunked (no Content-Length) is cut off while streaming.
    let stream = futures_util::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 1000]))),
    );
    let part =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(stream)).file_name("big.bin");
    let chunked = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "k")
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(
        Reply::checked(chunked, "POST", Document::Fansly)
            .await
            .status,
        413
    );
    assert!(server.jobs().await.is_empty());
    assert_eq!(
        std::fs::read_dir(server.server.storage_dir())
            .unwrap()
            .count(),
        0,
        "a refused upload left a file"
    );
    let small = Form::new().part(
        "file",
        file_part(
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            "s.gif",
            "image/gif",
        ),
    );
    assert_eq!(server.fansly_upload("acct", small).await.status, 201);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_no_job_and_no_file() {
    let server = spawn_server().await;
    let mut stream = tokio::net::TcpStream::connect(server.server.address())
        .await
        .unwrap();
    let head = format!(
        "POST /api/fansly/acct/media/upload HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 1000000\r\n\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[0xAB; 64 * 1024]).await.unwrap();
    stream.flush().await.unwrap();
    // Wait until the server has started writing the upload, then hang up.
    let storage = server.server.storage_dir().to_owned();
    let count_files = || std::fs::read_dir(&storage).unwrap().count();
    wait_until(|| count_files() == 1).await;
    drop(stream);
    wait_until(|| count_files() == 0).await;
    assert!(server.jobs().await.is_empty());
    still_serves(&server).await;
}

/// Waits for the server to react to a connection event (not for time to pass: the clock is
/// manual). Bounded so a broken server fails the test instead of hanging it.
async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::timeout(Duration::from_secs(10), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    deadline
        .await
        .expect("the server did not react within 10 s");
}

#[tokio::test]
async fn a_garbage_request_line_gets_400_and_the_next_connection_is_served() {
    let server = spawn_server().await;
    let mut stream = tokio::net::TcpStream::connect(server.server.address())
        .await
        .unwrap();
    stream
        .write_all(b"\x00\x01 NOT HTTP AT ALL\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    still_serves(&server).await;
}
