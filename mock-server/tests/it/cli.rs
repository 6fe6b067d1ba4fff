//! The `mock-server` binary as README runs it: banner, serving, bad fixtures, SIGTERM.

use std::process::{Command, Stdio};

use crate::support::{Running, binary, start_binary};

/// Starts the binary on a free port and reads its banner up to the base URL.
fn start(args: &[&str]) -> (Running, Vec<String>) {
    let mut command = binary();
    command
        .args(args)
        .env("MOCK_LOG", "warn")
        .stderr(Stdio::null());
    let (running, lines) = start_binary(command);
    // The banner ends with the OnlyFans example; stop there (or at EOF if the banner changes).
    let mut banner = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let is_last = line.contains("Bearer");
        banner.push(line);
        if is_last {
            break;
        }
    }
    (running, banner)
}

#[tokio::test]
async fn the_binary_serves_both_providers_and_prints_a_curl_for_each() {
    let (running, banner) = start(&[
        "--clock",
        "manual",
        "--processing-time",
        "0s",
        "--queue-time",
        "0s",
    ]);
    let banner = banner.join("\n");
    assert!(banner.contains("x-api-key"), "{banner}");
    assert!(banner.contains("Authorization: Bearer"), "{banner}");

    let http = reqwest::Client::new();
    let form = reqwest::multipart::Form::new().part(
        "file",
        crate::support::file_part(crate::support::sample("sample.png"), "a.png", "image/png"),
    );
    let upload = http
        .post(format!("{}/api/fansly/acct/media/upload", running.base))
        .header("x-api-key", "k")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    // --queue-time 0s --processing-time 0s: done at once, even on a manual clock.
    let status: serde_json::Value = http
        .get(format!("{}/api/fansly/media/upload/1/status", running.base))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["data"]["state"], "completed", "{status}");
    let clock: serde_json::Value = http
        .get(format!("{}/__admin/clock", running.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["manual"], true);
}

#[test]
fn sigterm_stops_the_server_with_exit_0() {
    let (mut running, _) = start(&[]);
    let pid = running.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = running.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn a_bad_fixture_stops_start_up_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        mock_server::fixture::EMBEDDED_DEFAULTS.replacen("link_ttl: 5h", "link_ttl: soon", 1);
    std::fs::write(dir.path().join("defaults.yaml"), text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mock-server"))
        .args(["--bind", "127.0.0.1:0", "--fixtures"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("defaults.yaml"), "{stderr}");
    assert!(stderr.contains("fansly.link_ttl"), "{stderr}");
    assert!(stderr.contains("line"), "{stderr}");
}

#[test]
fn a_bad_scenario_file_stops_start_up_naming_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "description: d\nfaults:\n  - on: status\n    nth: [2]\n    respond: { status: 429, retry_afterr: 2 }\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mock-server"))
        .args(["--bind", "127.0.0.1:0", "--scenario"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.yaml"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("retry_afterr"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_request_with_start_up_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut command = binary();
    command
        .args(["--log-format", "json"])
        .args([
            "--clock",
            "manual",
            "--queue-time",
            "0s",
            "--processing-time",
            "0s",
        ])
        .stderr(std::fs::File::create(&log_path).unwrap());
    let (running, _) = start_binary(command);
    let base = running.base.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let form = reqwest::multipart::Form::new().part(
            "file",
            crate::support::file_part(crate::support::sample("sample.png"), "a.png", "image/png"),
        );
        let upload = http
            .post(format!("{base}/api/fansly/acct/media/upload"))
            .header("x-api-key", "k")
            .header("x-mock-session", "logs")
            .header("x-mock-scenario", "rate-limited")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), 201);
        for _ in 0..2 {
            http.get(format!("{base}/api/fansly/media/upload/1/status"))
                .header("x-api-key", "k")
                .header("x-mock-session", "logs")
                .send()
                .await
                .unwrap();
        }
    });
    let mut running = running;
    let killed = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(running.child.wait().unwrap().code(), Some(0));
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    let message = |line: &serde_json::Value| line["fields"]["message"].as_str().map(str::to_owned);
    assert!(
        lines
            .iter()
            .any(|line| message(line).as_deref() == Some("listening")
                && line["fields"]["base_url"] == base.as_str()),
        "{text}"
    );
    assert_eq!(
        message(lines.last().unwrap()).as_deref(),
        Some("stopped"),
        "{text}"
    );
    let requests: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| message(line).as_deref() == Some("request"))
        .map(|line| &line["fields"])
        .collect();
    assert_eq!(requests.len(), 3, "one line per request\n{text}");
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(requests[0]["status"], 201);
    assert_eq!(requests[0]["session"], "logs");
    assert_eq!(requests[0]["job"], "1");
    assert_eq!(requests[0]["scenario"], "rate-limited");
    assert_eq!(requests[2]["path"], "/api/fansly/media/upload/1/status");
    assert_eq!(requests[2]["status"], 429, "the 2nd poll of rate-limited");
    assert_eq!(requests[2]["fault"], "respond");
    assert!(requests[2]["duration_ms"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn a_copied_binary_serves_a_whole_lifecycle_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("mock-server");
    // Copied by a child `cp`, never through a descriptor of ours: another test's fork could
    // inherit our writable descriptor until it execs, and this spawn would fail with ETXTBSY.
    let copied = std::process::Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_mock-server"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    let start = || {
        let mut command = Command::new(&copy);
        command
            .args(["--bind", "127.0.0.1:0", "--clock", "manual"])
            .current_dir(dir.path())
            .env("MOCK_LOG", "warn")
            .stderr(Stdio::null());
        let (running, banner) = start_binary(command);
        // The banner's commands name the embedded samples, written out somewhere readable.
        let banner: Vec<String> = banner.take(8).map(Result::unwrap).collect();
        let sample_path = banner
            .iter()
            .find_map(|line| line.split("file=@").nth(1)?.split(' ').next())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| panic!("no sample in the banner: {banner:?}"));
        (running, sample_path)
    };
    let (running, sample_path) = start();
    let http = reqwest::Client::new();
    assert!(!sample_path.starts_with(dir.path()), "{sample_path:?}");
    // Every start uses the same directory, so a killed process leaves no new one behind.
    assert_eq!(start().1, sample_path);
    let bytes = std::fs::read(&sample_path).unwrap();
    assert_eq!(
        bytes,
        crate::support::sample("sample.jpg"),
        "the embedded sample"
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        crate::support::file_part(bytes.clone(), "a.jpg", "image/jpeg"),
    );
    let upload = http
        .post(format!("{}/api/fansly/acct/media/upload", running.base))
        .header("x-api-key", "k")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    http.post(format!("{}/__admin/clock/advance", running.base))
        .body(r#"{"by": "1m"}"#)
        .send()
        .await
        .unwrap();
    let status: serde_json::Value = http
        .get(format!("{}/api/fansly/media/upload/1/status", running.base))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["data"]["state"], "completed", "{status}");
    let link = status["data"]["result"]["accountMedia"][0]["media"]["locations"][0]["location"]
        .as_str()
        .unwrap();
    let served = http.get(link).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap(), bytes, "byte-exact");
    // No checkout here: file:// reads the written-out samples, and nothing outside them.
    let form = reqwest::multipart::Form::new()
        .text("file_url", format!("file://{}", sample_path.display()));
    let read = http
        .post(format!("{}/api/acct_1/media/vault", running.base))
        .header("authorization", "Bearer k")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "{}", read.text().await.unwrap());
    let form = reqwest::multipart::Form::new().text("file_url", "file:///etc/passwd");
    let refused = http
        .post(format!("{}/api/acct_1/media/vault", running.base))
        .header("authorization", "Bearer k")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
}
