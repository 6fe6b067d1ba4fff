//! `spawn_server()` and the helpers every test module uses.
//!
//! Every provider response goes through [`Reply::checked`], which validates the body against the
//! documented schema in `specs/` for that method, path and status; a test cannot see a response
//! that breaks the contract without failing.

use std::time::{Duration, UNIX_EPOCH};

use mock_server::MockServer;
use mock_server::clock::Clock;
use mock_server::fixture::repo_media_dir;
use mock_server::signing::SigningKey;
use mock_server::spec::{Document, Spec};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// 2026-02-04T18:35:01Z, the seed's own timestamp.
pub(crate) const START_UNIX: u64 = 1_770_230_101;

pub(crate) struct TestServer {
    pub(crate) server: MockServer,
    pub(crate) base: String,
    pub(crate) clock: Clock,
    pub(crate) http: reqwest::Client,
}

/// A server with fixed ids (seed 7), as snapshots want.
pub(crate) async fn spawn_server() -> TestServer {
    spawn_with(MockServer::builder().seed(7)).await
}

/// Starts a server from `builder` with the test defaults layered on: manual clock at
/// [`START_UNIX`], a fixed signing key, and the repository's media as `file://` root. The seed is
/// the caller's to set.
pub(crate) async fn spawn_with(builder: mock_server::Builder) -> TestServer {
    let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(START_UNIX));
    let server = builder
        .clock(clock.clone())
        .signing_key(SigningKey::new([42; 32], "K2MOCKSERVERKEYPAIR"))
        .media_root(repo_media_dir())
        .start()
        .await
        .unwrap();
    TestServer {
        base: server.base_url(),
        server,
        clock,
        http: reqwest::Client::new(),
    }
}

/// A response with its body parsed and checked against the spec.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    /// Reads `response`, which answered `method path`, and validates it against `document`.
    pub(crate) async fn checked(
        response: reqwest::Response,
        method: &str,
        document: Document,
    ) -> Reply {
        let status = response.status().as_u16();
        let path = response.url().path().to_owned();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path} answered {status} with content type {content_type:?}"
        );
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{method} {path} {status}: not JSON ({err}): {text}"));
        let spec = Spec::load(document).unwrap();
        if let Err(err) = spec.validate_response(method, &path, status, &body) {
            panic!("response breaks {document:?} spec: {err}\nbody: {body:#}");
        }
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// A multipart file part.
pub(crate) fn file_part(bytes: Vec<u8>, file_name: &str, mime: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes)
        .file_name(file_name.to_owned())
        .mime_str(mime)
        .unwrap()
}

/// A sample from `fixtures/media/`.
pub(crate) fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo_media_dir().join(name)).unwrap()
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl TestServer {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Moves the clock through the admin API, as an external test would.
    pub(crate) async fn advance(&self, by: Duration) {
        let response = self
            .http
            .post(self.url("/__admin/clock/advance"))
            .json(&serde_json::json!({ "seconds": by.as_secs_f64() }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub(crate) async fn fansly_upload(
        &self,
        account: &str,
        form: reqwest::multipart::Form,
    ) -> Reply {
        let response = self
            .http
            .post(self.url(&format!("/api/fansly/{account}/media/upload")))
            .header("x-api-key", "test-key")
            .multipart(form)
            .send()
            .await
            .unwrap();
        Reply::checked(response, "POST", Document::Fansly).await
    }

    pub(crate) async fn fansly_status(&self, job_id: &str) -> Reply {
        let response = self
            .http
            .get(self.url(&format!("/api/fansly/media/upload/{job_id}/status")))
            .header("x-api-key", "test-key")
            .send()
            .await
            .unwrap();
        Reply::checked(response, "GET", Document::Fansly).await
    }

    /// A Fansly status poll in `session`.
    pub(crate) async fn fansly_status_in(&self, session: &str, job_id: &str) -> Reply {
        let response = self
            .http
            .get(self.url(&format!("/api/fansly/media/upload/{job_id}/status")))
            .header("x-api-key", "test-key")
            .header("x-mock-session", session)
            .send()
            .await
            .unwrap();
        Reply::checked(response, "GET", Document::Fansly).await
    }

    /// `endpoint` is `upload` or `vault`.
    pub(crate) async fn onlyfans_upload(
        &self,
        account: &str,
        endpoint: &str,
        form: reqwest::multipart::Form,
    ) -> Reply {
        let response = self
            .http
            .post(self.url(&format!("/api/{account}/media/{endpoint}")))
            .bearer_auth("test-key")
            .multipart(form)
            .send()
            .await
            .unwrap();
        Reply::checked(response, "POST", Document::OnlyFans).await
    }

    pub(crate) async fn onlyfans_status(&self, account: &str, upload_id: &str) -> Reply {
        let response = self
            .http
            .get(self.url(&format!("/api/{account}/media/uploads/{upload_id}/status")))
            .bearer_auth("test-key")
            .send()
            .await
            .unwrap();
        Reply::checked(response, "GET", Document::OnlyFans).await
    }

    /// GETs a CDN link; returns status, content type and bytes.
    pub(crate) async fn fetch(&self, url: &str) -> (u16, String, Vec<u8>) {
        assert!(
            url.starts_with(&self.base),
            "link {url} is not on the mock's origin"
        );
        let response = self.http.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (
            status,
            content_type,
            response.bytes().await.unwrap().to_vec(),
        )
    }

    /// The journal's entries, as `GET /__admin/journal{query}` lists them.
    pub(crate) async fn journal(&self, query: &str) -> Vec<Value> {
        self.admin_list(&format!("/__admin/journal{query}"), "entries")
            .await
    }

    /// The admin API's job list.
    pub(crate) async fn jobs(&self) -> Vec<Value> {
        self.admin_list("/__admin/jobs", "jobs").await
    }

    /// The array `field` of the admin answer to `GET path`.
    async fn admin_list(&self, path: &str, field: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body[field].as_array().unwrap().clone()
    }

    /// Replaces what changes between runs (origin, ids, times, signatures) with stable markers,
    /// keeping the shape, for snapshots.
    pub(crate) fn normalize(&self, value: &Value) -> Value {
        normalize(value, &self.base)
    }
}

fn normalize(value: &Value, base: &str) -> Value {
    const IDS: &[&str] = &[
        "jobId",
        "bucketName",
        "mediaId",
        "id",
        "prefixed_id",
        "processId",
        "accountId",
        "extra",
    ];
    const TIMES: &[&str] = &["timestamp", "createdAt"];
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let item = if TIMES.contains(&key.as_str()) {
                        Value::String("[time]".into())
                    } else if IDS.contains(&key.as_str()) && !item.is_object() {
                        Value::String("[id]".into())
                    } else {
                        normalize(item, base)
                    };
                    (key.clone(), item)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| normalize(item, base)).collect())
        }
        Value::String(text) if text.starts_with(base) || text.starts_with('/') => {
            Value::String(normalize_link(&text.replacen(base, "[origin]", 1)))
        }
        other => other.clone(),
    }
}

/// Keeps a link's path shape and parameter names, hiding tokens and signed values.
fn normalize_link(link: &str) -> String {
    let (path, query) = link.split_once('?').unwrap_or((link, ""));
    let mut segments: Vec<String> = path.split('/').map(hide_tokens).collect();
    // OnlyFans shards files by the token's first characters: `files/{a}/{ab}/{token}/...`.
    if let Some(files_idx) = segments.iter().position(|segment| segment == "files") {
        for segment in segments.iter_mut().skip(files_idx + 1).take(2) {
            *segment = "[shard]".to_owned();
        }
    }
    let params: Vec<String> = query
        .split('&')
        .filter(|param| !param.is_empty())
        .map(|param| {
            let name = param.split('=').next().unwrap_or_default();
            match name {
                "Key-Pair-Id" => param.to_owned(),
                _ => format!("{name}=[signed]"),
            }
        })
        .collect();
    if params.is_empty() {
        segments.join("/")
    } else {
        format!("{}?{}", segments.join("/"), params.join("&"))
    }
}

/// Replaces every run of 12 or more hex digits or dashes (ids, hashes, UUIDs) with `[token]`.
fn hide_tokens(segment: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in segment.chars().chain(std::iter::once('/')) {
        if c.is_ascii_hexdigit() || (c == '-' && !run.is_empty()) {
            run.push(c);
            continue;
        }
        if run.len() >= 12 {
            out.push_str("[token]");
        } else {
            out.push_str(&run);
        }
        run.clear();
        if c != '/' {
            out.push(c);
        }
    }
    out
}

/// A `mock-server` process a test started; killed and reaped when dropped.
pub(crate) struct Running {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` (the binary and its flags; stdout is taken here) and reads the base URL from
/// the first banner line; the rest of the banner is left in the returned reader.
pub(crate) fn start_binary(
    mut command: std::process::Command,
) -> (
    Running,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead as _;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("mock-server listening on ")
        .unwrap()
        .to_owned();
    (Running { child, base }, lines)
}

/// The binary under test, with a free port.
pub(crate) fn binary() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mock-server"));
    command.args(["--bind", "127.0.0.1:0"]);
    command
}

/// The parameters the spec's `link` on `method path → status` names, evaluated as OpenAPI's
/// runtime expressions do (`$request.path.*`, `$response.body#/pointer`) against one exchange, so
/// a test can follow the link as a stateful tool would.
pub(crate) fn follow_link(
    document: Document,
    (method, path, status): (&str, &str, &str),
    link: &str,
    request_path: &[(&str, &str)],
    body: &Value,
) -> Vec<(String, String)> {
    let spec = Spec::load(document).unwrap();
    let root = spec.root();
    let mut found =
        &root["paths"][path][method.to_ascii_lowercase()]["responses"][status]["links"][link];
    if let Some(reference) = found["$ref"].as_str() {
        found = root.pointer(reference.trim_start_matches('#')).unwrap();
    }
    let parameters = found["parameters"]
        .as_object()
        .unwrap_or_else(|| panic!("no link {link} on {method} {path} {status}"));
    assert_eq!(found["operationId"], "getUploadStatus", "{link}");
    parameters
        .iter()
        .map(|(name, expression)| {
            let expression = expression.as_str().unwrap();
            let value = if let Some(param) = expression.strip_prefix("$request.path.") {
                request_path
                    .iter()
                    .find(|(name, _)| *name == param)
                    .map(|(_, value)| (*value).to_owned())
            } else if let Some(pointer) = expression.strip_prefix("$response.body#") {
                body.pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            } else {
                panic!("unsupported runtime expression {expression}")
            };
            let value = value.unwrap_or_else(|| panic!("{expression} resolves to nothing"));
            (name.clone(), value)
        })
        .collect()
}
