//! Prism, Mockoon and WireMock answering the same status body, for `--peers`: the peer figures in
//! issue 6 reproduced on the machine at hand, beside the mock and bare hyper in the same run.
//!
//! The three come from the npm registry (`@stoplight/prism-cli`, `@mockoon/cli`, and `wiremock`,
//! which ships WireMock's standalone jar and needs `java`), installed once under
//! `target/bench-peers/`. Each is given the body the mock answers for a completed Fansly job, in
//! its own format: an OpenAPI example for Prism, an environment file for Mockoon, a stub mapping
//! for WireMock.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use mock_server::clock::Stopwatch;

use crate::{STATUS_PATH, Server};

/// The npm packages, pinned to the versions issue 6 measured.
const PACKAGES: [&str; 3] = [
    "@stoplight/prism-cli@5.14.2",
    "@mockoon/cli@9.9.0",
    "wiremock@3.13.2",
];

/// One of the peer mock servers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Peer {
    Prism,
    Mockoon,
    WireMock,
}

impl Peer {
    pub(crate) const ALL: [Peer; 3] = [Peer::Prism, Peer::Mockoon, Peer::WireMock];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::Prism => "Prism 5.14",
            Peer::Mockoon => "Mockoon CLI 9.9",
            Peer::WireMock => "WireMock 3.13",
        }
    }
}

/// Where the peers are installed: `target/bench-peers/` in the workspace.
fn install_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-peers")
}

/// Installs the three packages with npm unless they are there already.
pub(crate) fn install() -> anyhow::Result<PathBuf> {
    let dir = install_dir();
    let bin = dir.join("node_modules/.bin");
    if ["prism", "mockoon-cli", "wiremock"]
        .iter()
        .all(|name| bin.join(name).exists())
    {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .args(PACKAGES)
        .stdout(Stdio::null())
        .status()
        .context("running npm (Node.js is needed for --peers)")?;
    if !status.success() {
        bail!("npm install {} failed", PACKAGES.join(" "));
    }
    Ok(dir)
}

/// A free loopback port: the peers take a port number, not port 0.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `peer` serving `body` at [`STATUS_PATH`] and a 201 at the Fansly upload route, and waits
/// for its first 200; returns the server and the time from spawn to that answer.
pub(crate) async fn start(
    peer: Peer,
    installed: &Path,
    body: &[u8],
) -> anyhow::Result<(Server, f64)> {
    let work = tempfile::tempdir()?;
    let port = free_port()?;
    let bin = installed.join("node_modules/.bin");
    let text = std::str::from_utf8(body)?;
    let json: serde_json::Value = serde_json::from_slice(body)?;
    let queued = queued_body();
    let queued_text = queued.to_string();
    let mut command = match peer {
        Peer::Prism => {
            let spec = serde_json::json!({
                "openapi": "3.0.3",
                "info": {"title": "peer", "version": "1"},
                "paths": {
                    "/api/fansly/media/upload/{jobId}/status": {"get": {
                        "parameters": [{"name": "jobId", "in": "path", "required": true,
                                        "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "completed",
                            "content": {"application/json": {"example": json}}}}
                    }},
                    "/api/fansly/{accountId}/media/upload": {"post": {
                        "parameters": [{"name": "accountId", "in": "path", "required": true,
                                        "schema": {"type": "string"}}],
                        "requestBody": {"required": true, "content": {"multipart/form-data": {
                            "schema": {"type": "object", "required": ["file"], "properties": {
                                "file": {"type": "string", "format": "binary"}}}}}},
                        "responses": {"201": {"description": "queued",
                            "content": {"application/json": {"example": queued}}}}
                    }}
                }
            });
            let path = work.path().join("spec.json");
            std::fs::write(&path, serde_json::to_vec(&spec)?)?;
            let mut command = Command::new(bin.join("prism"));
            command.args(["mock", "-p", &port.to_string()]).arg(path);
            command
        }
        Peer::Mockoon => {
            let environment = serde_json::json!({
                "uuid": "6d6b4b7e-0000-4000-8000-000000000001", "lastMigration": 32,
                "name": "peer", "endpointPrefix": "", "latency": 0, "port": port,
                "hostname": "", "folders": [],
                "routes": [
                    mockoon_route("2", "get", "api/fansly/media/upload/:jobId/status", 200, text),
                    mockoon_route("4", "post", "api/fansly/:accountId/media/upload", 201, &queued_text),
                ],
                "rootChildren": [
                    {"type": "route", "uuid": "6d6b4b7e-0000-4000-8000-000000000002"},
                    {"type": "route", "uuid": "6d6b4b7e-0000-4000-8000-000000000004"}
                ],
                "proxyMode": false, "proxyHost": "", "proxyRemovePrefix": false,
                "tlsOptions": {"enabled": false, "type": "CERT", "pfxPath": "", "certPath": "",
                               "keyPath": "", "caPath": "", "passphrase": ""},
                "cors": true, "headers": [], "proxyReqHeaders": [], "proxyResHeaders": [],
                "data": [], "callbacks": []
            });
            let path = work.path().join("environment.json");
            std::fs::write(&path, serde_json::to_vec(&environment)?)?;
            let mut command = Command::new(bin.join("mockoon-cli"));
            command
                .args(["start", "--port", &port.to_string(), "--data"])
                .arg(path);
            command
        }
        Peer::WireMock => {
            let mappings = work.path().join("mappings");
            std::fs::create_dir_all(&mappings)?;
            let stub = serde_json::json!({
                "request": {"method": "GET", "urlPath": STATUS_PATH},
                "response": {"status": 200, "body": text,
                             "headers": {"Content-Type": "application/json"}}
            });
            std::fs::write(mappings.join("status.json"), serde_json::to_vec(&stub)?)?;
            let upload = serde_json::json!({
                "request": {"method": "POST", "urlPathPattern": "/api/fansly/[^/]+/media/upload"},
                "response": {"status": 201, "body": queued_text,
                             "headers": {"Content-Type": "application/json"}}
            });
            std::fs::write(mappings.join("upload.json"), serde_json::to_vec(&upload)?)?;
            let mut command = Command::new(bin.join("wiremock"));
            command
                .args(["--port", &port.to_string(), "--root-dir"])
                .arg(work.path());
            command
        }
    };
    let watch = Stopwatch::start();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", peer.name()))?;
    let server = Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _dir: Some(work),
    };
    let client = reqwest::Client::new();
    while watch.elapsed() < Duration::from_secs(120) {
        let answer = client
            .get(format!("{}{STATUS_PATH}", server.base()))
            .send()
            .await;
        if let Ok(answer) = answer {
            // The same JSON value: a peer may serialise it with other spacing or key order.
            let is_same = |got: &[u8]| {
                serde_json::from_slice::<serde_json::Value>(got).ok() == Some(json.clone())
            };
            if answer.status() == 200 && answer.bytes().await.is_ok_and(|got| is_same(&got)) {
                return Ok((server, watch.elapsed_ms()));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!(
        "{} did not answer the status body within 120 s",
        peer.name()
    )
}

/// What each peer answers an upload with: the 201 the mock gives (seed 000's shape).
fn queued_body() -> serde_json::Value {
    serde_json::json!({
        "statusCode": 201, "message": "Success",
        "data": {"success": true, "jobId": "1", "bucketName": "8755000000000000016",
                 "message": "Upload job queued. Use the status endpoint to track progress."},
        "timestamp": "2026-12-02T00:00:00.000Z"
    })
}

/// A Mockoon route answering `body` with `status`, templating off.
fn mockoon_route(
    id: &str,
    method: &str,
    endpoint: &str,
    status: u16,
    body: &str,
) -> serde_json::Value {
    serde_json::json!({
        "uuid": format!("6d6b4b7e-0000-4000-8000-00000000000{id}"), "type": "http",
        "documentation": "", "method": method, "endpoint": endpoint,
        "responses": [{
            "uuid": format!("6d6b4b7e-0000-4000-8000-10000000000{id}"), "body": body,
            "latency": 0, "statusCode": status, "label": "",
            "headers": [{"key": "Content-Type", "value": "application/json"}],
            "bodyType": "INLINE", "filePath": "", "databucketID": "",
            "sendFileAsBody": false, "rules": [], "rulesOperator": "OR",
            "disableTemplating": true, "fallbackTo404": false, "default": true,
            "crudKey": "id", "callbacks": []
        }],
        "responseMode": null, "streamingMode": null, "streamingInterval": 0
    })
}

/// Every process started by `pid`, children first-generation first (WireMock's npm launcher
/// runs `java` as a child), from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let children: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|child| child.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    let grandchildren: Vec<u32> = children
        .iter()
        .flat_map(|child| descendants(*child))
        .collect();
    children.into_iter().chain(grandchildren).collect()
}

/// Resident memory of `pid` and all its descendants, in MiB.
pub(crate) fn tree_rss_mib(pid: u32) -> f64 {
    crate::rss_mib(pid).0
        + descendants(pid)
            .into_iter()
            .map(|pid| crate::rss_mib(pid).0)
            .sum::<f64>()
}

/// Stops a peer and everything it started.
pub(crate) fn stop(server: Server) {
    for pid in descendants(server.pid()) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    drop(server);
}
