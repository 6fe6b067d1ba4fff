//! The hostile-input matrix over raw TCP: each case asserts the exact answer, and that the next
//! request, on a new connection, is served.

use std::time::Duration;

use mock_server::MockServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{TestServer, spawn_with};

const BOUNDARY: &str = "HostileBoundary";

/// Bounds every read so a hang fails the test instead of stalling CI; never a timing assertion.
const BOUND: Duration = Duration::from_secs(20);

/// What came back on one connection: the status (None if closed without an answer) and the body.
#[derive(Debug)]
struct Raw {
    status: Option<u16>,
    text: String,
}

async fn send(server: &TestServer, request: &[u8], half_close: bool) -> Raw {
    let mut stream = TcpStream::connect(server.server.address()).await.unwrap();
    // A server may answer and close before the whole request is written; that is fine.
    let _ = stream.write_all(request).await;
    if half_close {
        let _ = stream.shutdown().await;
    }
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> Raw {
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(BOUND, stream.read_to_end(&mut bytes)).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Raw { status, text }
}

/// The server still answers a fresh connection.
async fn assert_still_serving(server: &TestServer) {
    let raw = send(
        server,
        b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(raw.status, Some(200), "{}", raw.text);
}

fn upload_head(content_type: &str, content_length: usize) -> Vec<u8> {
    format!(
        "POST /api/fansly/acct/media/upload HTTP/1.1\r\nHost: x\r\nx-api-key: key\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n\r\n"
    )
    .into_bytes()
}

fn file_part(name: &str, file_name: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut part =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"")
            .into_bytes();
    part.extend_from_slice(file_name);
    part.extend_from_slice(b"\"\r\nContent-Type: image/gif\r\n\r\n");
    part.extend_from_slice(bytes);
    part.extend_from_slice(b"\r\n");
    part
}

fn end() -> Vec<u8> {
    format!("--{BOUNDARY}--\r\n").into_bytes()
}

const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";

fn multipart() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

async fn upload(server: &TestServer, content_type: &str, body: &[u8]) -> Raw {
    let mut request = upload_head(content_type, body.len());
    request.extend_from_slice(body);
    send(server, &request, false).await
}

async fn server() -> TestServer {
    spawn_with(MockServer::builder().seed(7)).await
}

fn message(raw: &Raw) -> String {
    let body = raw.text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A client may shut its sending side once its request is out and still read the answer. The
/// server used to take that EOF, read while a delayed answer was on its way, for a client gone and
/// closed without answering; watching for it also cost every poll a fresh read buffer (issue 19).
/// A client that does leave during a delay is now noticed when the answer is written: its request
/// is journaled once the delay runs out (before, it never was, as if it had not been made).
#[tokio::test]
async fn a_request_followed_by_a_half_close_is_still_answered() {
    let scenario = mock_server::scenario::Scenario::parse(
        "slow",
        "description: slow polls\nfaults:\n  - on: status\n    latency: { fixed: 300ms }\n",
        std::path::Path::new("slow.yaml"),
    )
    .unwrap();
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .scenario(std::sync::Arc::new(scenario)),
    )
    .await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        crate::support::file_part(GIF.to_vec(), "a.gif", "image/gif"),
    );
    let job_id = server.fansly_upload("acct", form).await.body["data"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = format!(
        "GET /api/fansly/media/upload/{job_id}/status HTTP/1.1\r\nHost: x\r\nx-api-key: key\r\n\r\n"
    );
    // The close reaches the server long before the 300 ms the answer is held.
    let poll = send(&server, request.as_bytes(), true).await;
    assert_eq!(poll.status, Some(200), "{}", poll.text);
    assert!(
        poll.text.contains(&format!("\"jobId\":\"{job_id}\"")),
        "{}",
        poll.text
    );

    // A client that leaves altogether while its answer is held.
    let mut gone = TcpStream::connect(server.server.address()).await.unwrap();
    gone.write_all(request.as_bytes()).await.unwrap();
    drop(gone);
    // Waits for the held answer (a real-time fault, not the mock's clock), bounded.
    let both = tokio::time::timeout(BOUND, async {
        while server.journal("?route=status").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(both.is_ok(), "the abandoned poll was never journaled");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_truncated_body_with_a_lying_content_length_is_refused() {
    let server = server().await;
    let mut body = file_part("file", b"a.gif", GIF);
    body.extend(end());
    let mut request = upload_head(&multipart(), body.len() + 500);
    request.extend_from_slice(&body[..body.len() / 2]);
    let raw = send(&server, &request, true).await;
    assert_eq!(
        (raw.status, message(&raw)),
        (Some(400), "Malformed multipart/form-data body".to_owned()),
        "{}",
        raw.text
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_32_mib_header_line_inside_a_part_is_refused_not_buffered() {
    // multer would buffer a part's headers up to the whole-body limit: this was answered 201.
    let server = server().await;
    let mut body = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\nX-Big: ").into_bytes();
    body.extend(std::iter::repeat_n(b'a', 32 * 1024 * 1024));
    body.extend_from_slice(b"\r\nContent-Type: image/gif\r\n\r\n");
    body.extend_from_slice(GIF);
    body.extend_from_slice(b"\r\n");
    body.extend(end());
    let raw = upload(&server, &multipart(), &body).await;
    assert_eq!(
        (raw.status, message(&raw)),
        (Some(400), "Malformed multipart/form-data body".to_owned()),
        "{}",
        raw.text.get(..300).unwrap_or_default()
    );
    // A part with ordinary headers and a file of several MiB is not mistaken for one.
    let mut body = file_part(
        "file",
        b"big.gif",
        &[GIF, &vec![0u8; 5 * 1024 * 1024]].concat(),
    );
    body.extend(end());
    let raw = upload(&server, &multipart(), &body).await;
    assert_eq!(
        raw.status,
        Some(201),
        "{}",
        raw.text.get(..300).unwrap_or_default()
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_boundary_that_never_closes_is_refused() {
    let server = server().await;
    let body = file_part("file", b"a.gif", GIF);
    let raw = upload(&server, &multipart(), &body).await;
    assert_eq!(
        (raw.status, message(&raw)),
        (Some(400), "Malformed multipart/form-data body".to_owned()),
        "{}",
        raw.text
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn duplicate_or_missing_boundary_parameters() {
    let server = server().await;
    let mut body = file_part("file", b"a.gif", GIF);
    body.extend(end());
    let raw = upload(
        &server,
        &format!("multipart/form-data; boundary={BOUNDARY}; boundary=other"),
        &body,
    )
    .await;
    assert_eq!(
        raw.status,
        Some(201),
        "the first boundary counts: {}",
        raw.text
    );
    let raw = upload(
        &server,
        &format!("multipart/form-data; boundary=other; boundary={BOUNDARY}"),
        &body,
    )
    .await;
    assert_eq!(
        (raw.status, message(&raw)),
        (Some(400), "Malformed multipart/form-data body".to_owned()),
        "{}",
        raw.text
    );
    let raw = upload(&server, "multipart/form-data", &body).await;
    assert_eq!(
        (raw.status, message(&raw)),
        (Some(400), "Malformed multipart/form-data body".to_owned()),
        "{}",
        raw.text
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_part_with_no_name_is_not_the_file() {
    let server = server().await;
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; filename=\"a.gif\"\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(GIF);
    body.extend_from_slice(b"\r\n");
    body.extend(end());
    let raw = upload(&server, &multipart(), &body).await;
    assert_eq!(
        (raw.status, message(&raw)),
        (Some(400), "File is required".to_owned()),
        "{}",
        raw.text
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn ten_thousand_tiny_parts_are_refused_after_the_part_limit() {
    let server = server().await;
    let mut body = Vec::new();
    for idx in 0..10_000 {
        body.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f{idx}\"\r\n\r\nx\r\n")
                .into_bytes(),
        );
    }
    body.extend(end());
    let raw = upload(&server, &multipart(), &body).await;
    assert_eq!(
        (raw.status, message(&raw)),
        (Some(400), "Malformed multipart/form-data body".to_owned()),
        "{}",
        raw.text
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_100_kib_header_gets_431_not_200() {
    // hyper's read buffer (~400 KiB) used to be the only limit: this was answered 200.
    let server = server().await;
    for size in [100 * 1024, 64 * 1024 + 1, 390 * 1024] {
        let mut request = b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', size));
        request.extend_from_slice(b"\r\n\r\n");
        let raw = send(&server, &request, false).await;
        assert_eq!(raw.status, Some(431), "{size} bytes of header");
    }
    // Under the cap: served, and a keep-alive connection's later heads start from zero.
    let mut request = Vec::new();
    for close in [false, false, true] {
        request.extend_from_slice(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n");
        if close {
            request.extend_from_slice(b"Connection: close\r\n");
        }
        request.extend_from_slice(b"X-Big: ");
        request.extend(std::iter::repeat_n(b'a', 40 * 1024));
        request.extend_from_slice(b"\r\n\r\n");
    }
    let raw = send(&server, &request, false).await;
    assert_eq!(raw.status, Some(200));
    assert_eq!(raw.text.matches("HTTP/1.1 200").count(), 3, "three answers");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_one_megabyte_header_gets_431() {
    let server = server().await;
    let mut request = b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let raw = send(&server, &request, false).await;
    assert_eq!(
        raw.status,
        Some(431),
        "{}",
        raw.text.get(..200).unwrap_or_default()
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_file_name_and_a_field_value() {
    let server = server().await;
    let mut body = file_part("file", b"bad\xff\xfe.gif", GIF);
    body.extend(end());
    let raw = upload(&server, &multipart(), &body).await;
    assert_eq!(raw.status, Some(201), "{}", raw.text);

    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"async\"\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(b"\xff\r\n");
    body.extend(file_part("file", b"a.gif", GIF));
    body.extend(end());
    let mut request = format!(
        "POST /api/acct_1/media/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key\r\nConnection: close\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
        multipart(),
        body.len()
    )
    .into_bytes();
    request.extend(body);
    let raw = send(&server, &request, false).await;
    assert_eq!(
        (raw.status, message(&raw)),
        (
            Some(422),
            "The async field must be true or false.".to_owned()
        ),
        "{}",
        raw.text
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn hostile_file_names_never_become_paths() {
    let server = server().await;
    let before: Vec<_> = std::fs::read_dir(server.server.storage_dir().parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    let long = vec![b'n'; 4096];
    for (name, status) in [
        (&b"../../escape.gif"[..], 201),
        (b"/etc/passwd", 201),
        (b"..\\..\\escape.gif", 201),
        (&long, 201),
        // A raw NUL is not allowed in a header line at all.
        (b"nul\0byte.gif", 400),
    ] {
        let mut body = file_part("file", name, GIF);
        body.extend(end());
        let raw = upload(&server, &multipart(), &body).await;
        assert_eq!(raw.status, Some(status), "{}", raw.text);
    }
    for entry in std::fs::read_dir(server.server.storage_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name.starts_with("upload-"), "stored as {name:?}");
    }
    let after: Vec<_> = std::fs::read_dir(server.server.storage_dir().parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains("escape"))
        .collect();
    assert!(after.is_empty(), "{after:?} next to {before:?}");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_content_length_shorter_than_the_body_is_refused() {
    let server = server().await;
    let mut body = file_part("file", b"a.gif", GIF);
    body.extend(end());
    let mut request = upload_head(&multipart(), body.len() / 2);
    request.extend_from_slice(&body);
    let raw = send(&server, &request, false).await;
    assert_eq!(raw.status, Some(400), "{}", raw.text);
    assert_eq!(message(&raw), "Malformed multipart/form-data body");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn chunked_bodies_with_bad_chunk_sizes_are_refused() {
    let server = server().await;
    let request = format!(
        "POST /api/fansly/acct/media/upload HTTP/1.1\r\nHost: x\r\nx-api-key: key\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        multipart()
    );
    let raw = send(&server, request.as_bytes(), false).await;
    assert_eq!(raw.status, Some(400), "{}", raw.text);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn an_absurd_request_path() {
    let server = server().await;
    let mut request = b"GET /".to_vec();
    request.extend(std::iter::repeat_n(b'a', 200_000));
    request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    let raw = send(&server, &request, false).await;
    assert_eq!(
        raw.status,
        Some(414),
        "{}",
        raw.text.get(..200).unwrap_or_default()
    );
    let raw = send(
        &server,
        b"GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(raw.status, Some(404), "{}", raw.text);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn http2_prior_knowledge_is_refused_cleanly() {
    let server = server().await;
    let raw = send(&server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false).await;
    // The mock speaks HTTP/1.1 only: hyper closes the preface without an answer.
    assert_eq!((raw.status, raw.text.as_str()), (None, ""));
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn slowloris_headers_are_cut_off_by_the_header_timeout() {
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .header_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut stream = TcpStream::connect(server.server.address()).await.unwrap();
    stream
        .write_all(b"GET /__admin/health HTTP/1.1\r\nHo")
        .await
        .unwrap();
    // Nothing more is sent; the server must give up on its own.
    let raw = read_answer(&mut stream).await;
    // hyper closes a connection whose headers do not arrive in time, without an answer.
    assert_eq!((raw.status, raw.text.as_str()), (None, ""));
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_in_the_providers_envelope() {
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .body_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut body = file_part("file", b"a.gif", GIF);
    body.extend(end());
    let mut request = upload_head(&multipart(), body.len());
    request.extend_from_slice(&body[..20]);
    let mut stream = TcpStream::connect(server.server.address()).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let raw = read_answer(&mut stream).await;
    assert_eq!(
        (raw.status, message(&raw)),
        (Some(408), "Request Timeout".to_owned()),
        "{}",
        raw.text
    );
    assert!(raw.text.contains("\"statusCode\":408"), "{}", raw.text);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn connections_over_the_cap_get_503_with_retry_after() {
    let server = spawn_with(MockServer::builder().seed(7).max_connections(2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.server.address()).await.unwrap();
        // A full keep-alive exchange proves the connection holds a permit.
        stream
            .write_all(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 512];
        let n = tokio::time::timeout(BOUND, stream.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let raw = send(
        &server,
        b"GET /api/fansly/media/upload/1/status HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(raw.status, Some(503), "{}", raw.text);
    assert!(
        raw.text.to_ascii_lowercase().contains("retry-after: 1"),
        "{}",
        raw.text
    );
    assert!(raw.text.contains("\"statusCode\":503"), "{}", raw.text);
    drop(held);
    // Closing the held connections frees their permits; the server notices the close on its own
    // time, so this polls (bounded) rather than sleeping a fixed while.
    let mut served = false;
    for _ in 0..200 {
        let raw = send(
            &server,
            b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            false,
        )
        .await;
        if raw.status == Some(200) {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        served,
        "permits came back after the held connections closed"
    );
}

/// Reads one HTTP/1.1 response off a kept-alive connection: its status and body (de-chunked
/// content is not needed; a chunked body is returned raw, up to its last chunk).
async fn read_one(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(head_end) = head_end {
            let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
            let body = &bytes[head_end + 4..];
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|value| value.trim().parse::<usize>().ok());
            let complete = match length {
                Some(length) => body.len() >= length,
                None => body.ends_with(b"0\r\n\r\n"),
            };
            if complete {
                let status = head[9..12].parse().unwrap();
                return (status, body.to_vec());
            }
        }
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("no answer within the bound")
            .unwrap();
        assert!(
            n > 0,
            "closed mid-answer: {}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn the_header_timeout_spares_slow_answers_and_closes_an_idle_connection() {
    // Both answers take longer than the header timeout: one delayed, one dribbled out.
    let scenario = mock_server::scenario::Scenario::parse(
        "slow-answers",
        "description: d\nfaults:\n  - on: status\n    nth: [1]\n    latency: { fixed: 400ms }\n  - on: status\n    nth: [2]\n    dribble: { chunk_bytes: 16, every: 40ms }\n",
        std::path::Path::new("slow-answers.yaml"),
    )
    .unwrap();
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .scenario(std::sync::Arc::new(scenario))
            .header_timeout(Duration::from_millis(150)),
    )
    .await;
    let mut body = file_part("file", b"a.gif", GIF);
    body.extend(end());
    assert_eq!(upload(&server, &multipart(), &body).await.status, Some(201));

    let mut stream = TcpStream::connect(server.server.address()).await.unwrap();
    let poll =
        b"GET /api/fansly/media/upload/1/status HTTP/1.1\r\nHost: x\r\nx-api-key: key\r\n\r\n";
    stream.write_all(poll).await.unwrap();
    let (status, delayed) = read_one(&mut stream).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&delayed));
    assert!(delayed.starts_with(br#"{"statusCode":200"#));
    stream.write_all(poll).await.unwrap();
    let (status, dribbled) = read_one(&mut stream).await;
    assert_eq!(status, 200);
    assert!(
        dribbled.len() > 16 * 8,
        "the dribbled answer was cut short: {}",
        String::from_utf8_lossy(&dribbled)
    );
    // Now idle: the server closes the connection once no head arrives within the timeout.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(BOUND, stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    assert_still_serving(&server).await;
}
