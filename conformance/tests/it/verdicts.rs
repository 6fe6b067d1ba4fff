//! Verdicts a CI pipeline can trust (issue 13): each test runs the `conformance` binary over real
//! HTTP the way README.md tells a user to, and fails if a verdict is wrong in either direction.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mock_server::MockServer;
use mock_server::clock::Clock;

fn conformance() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_conformance"));
    // README's commands are run from the repository root.
    command.current_dir(repo_root());
    command
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A mock as a user starts it: system clock, no flags.
async fn system_clock_mock() -> MockServer {
    MockServer::builder()
        .clock(Clock::system())
        .start()
        .await
        .unwrap()
}

/// README's grading command, word for word after `--`.
const GRADE_POLITE: &[&str] = &[
    "python3",
    "examples/clients/polite_client.py",
    "{provider}",
    "{base_url}",
    "{api_key}",
    "{account}",
    "{file}",
];

fn grade(provider: &str, extra: &[&str], client: &[&str]) -> Command {
    let mut command = conformance();
    command
        .args(["client", "--provider", provider])
        .args(extra)
        .arg("--")
        .args(client);
    command
}

/// A client script written for one test, run with python3.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn drift_against_a_freshly_started_mock_finds_nothing_in_three_runs() {
    let server = system_clock_mock().await;
    for provider in ["fansly", "onlyfans"] {
        let account = if provider == "fansly" {
            "86540"
        } else {
            "acct_86540"
        };
        let running = if provider == "fansly" {
            "same      status_active"
        } else {
            "same      status_processing"
        };
        let mut n_sampled_running = 0;
        for _ in 0..3 {
            let mut command = conformance();
            command.args([
                "drift",
                "--provider",
                provider,
                "--base-url",
                &server.base_url(),
                "--account",
                account,
            ]);
            let out = output(command).await;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            assert!(!stdout.contains("CHANGED"), "{stdout}");
            n_sampled_running += usize::from(stdout.contains(running));
        }
        // On the system clock a run on a loaded machine may poll past the 2 s processing window;
        // the in-progress answer must still have been compared in at least one of the three.
        assert!(
            n_sampled_running > 0,
            "{provider}: no run compared {running}"
        );
    }
}

#[tokio::test]
async fn the_readme_grading_of_the_polite_client_passes_at_default_settings() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("grade.json");
    let mut command = grade("fansly", &["--json", json.to_str().unwrap()], GRADE_POLITE);
    command.env_remove("DEADLINE").env_remove("POLL_INTERVAL");
    let out = output(command).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let suites = report["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 12, "every built-in scenario");
    for suite in suites {
        let elapsed: u64 = suite["properties"]["elapsed_ms"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(elapsed < 60_000, "{} took {elapsed} ms", suite["name"]);
    }
    // The slow job still shows a slow job: many polls of creeping progress.
    let slow = suites
        .iter()
        .find(|suite| suite["name"] == "scenario slow")
        .unwrap();
    let polls: u64 = slow["properties"]["n_polls"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(polls >= 8, "the slow job was polled {polls} times");
}

#[tokio::test]
async fn the_naive_client_fails_at_default_settings_on_the_rules_readme_names() {
    let client = [
        "python3",
        "examples/clients/naive_client.py",
        "{provider}",
        "{base_url}",
        "{api_key}",
        "{account}",
        "{file}",
    ];
    let out = output(grade("fansly", &[], &client)).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for rule in [
        "poll_rate",
        "honours_retry_after",
        "reports_outcome",
        "polls_until_terminal_then_stops",
        "no_duplicate_upload",
    ] {
        assert!(
            stdout.contains(&format!("FAIL {rule}:")),
            "{rule} did not fail\n{stdout}"
        );
    }
}

#[tokio::test]
async fn retry_after_is_exercised_at_a_tenfold_time_scale() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("grade.json");
    let out = output(grade(
        "fansly",
        &[
            "--scenario",
            "rate-limited,flaky-5xx",
            "--time-scale",
            "0.1",
            "--json",
            json.to_str().unwrap(),
        ],
        GRADE_POLITE,
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for suite in report["suites"].as_array().unwrap() {
        let rule = suite["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|result| result["name"] == "honours_retry_after")
            .unwrap();
        assert_eq!(rule["outcome"], "passed", "{}: {rule}", suite["name"]);
        let retries = suite["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|result| result["name"] == "retries_within_limits")
            .unwrap();
        assert_eq!(retries["outcome"], "passed", "{}: {retries}", suite["name"]);
    }
}

/// An OnlyFans client that uploads synchronously: it never polls, so a scenario whose 429s are
/// aimed at polls cannot exercise `honours_retry_after` on it.
const SYNC_ONLYFANS_CLIENT: &str = r#"
import sys, urllib.request, uuid
provider, base_url, api_key, account, path = sys.argv[1:6]
boundary = uuid.uuid4().hex
data = open(path, "rb").read()
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
request = urllib.request.Request(f"{base_url}/api/{account}/media/upload", data=body, method="POST",
    headers={"Authorization": f"Bearer {api_key}",
             "Content-Type": f"multipart/form-data; boundary={boundary}"})
urllib.request.urlopen(request, timeout=30).read()
"#;

#[tokio::test]
async fn a_rule_the_scenario_cannot_exercise_fails_the_run_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let client = script(dir.path(), "sync.py", SYNC_ONLYFANS_CLIENT);
    let args = [
        "python3",
        client.as_str(),
        "{provider}",
        "{base_url}",
        "{api_key}",
        "{account}",
        "{file}",
    ];
    let out = output(grade("onlyfans", &["--scenario", "rate-limited"], &args)).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!stdout.contains("FAIL "), "nothing failed\n{stdout}");
    assert!(
        stdout.contains("not exercised: honours_retry_after in scenario rate-limited:"),
        "{stdout}"
    );

    let out = output(grade(
        "onlyfans",
        &["--scenario", "rate-limited", "--allow-skip"],
        &args,
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test]
async fn errors_name_the_actual_problem_and_exit_2() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "run",
                "--provider",
                "fansly",
                "--base-url",
                &format!("http://{closed_addr}"),
            ],
            "cannot reach http://",
        ),
        (
            &["run", "--provider", "fansly", "--base-url", &closed_addr],
            "invalid --base-url",
        ),
        (
            &[
                "drift",
                "--provider",
                "fansly",
                "--account",
                "1",
                "--base-url",
                "ftp://127.0.0.1/",
            ],
            "is not http or https",
        ),
        (
            &[
                "client",
                "--provider",
                "fansly",
                "--",
                "./no-such-client-program",
                "{base_url}",
            ],
            "cannot run the client program \"./no-such-client-program\"",
        ),
    ];
    for (args, expected) in cases {
        let mut command = conformance();
        command.args(args);
        let out = output(command).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", text(&out));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("--account is required"),
            "{args:?} blamed the account: {stderr}"
        );
        assert!(
            out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("PASS"),
            "{args:?} graded something: {}",
            text(&out)
        );
    }
}

#[tokio::test]
async fn https_targets_are_spoken_to_in_tls_by_the_default_build() {
    // A listener that records the first bytes a client sends: a TLS ClientHello starts with a
    // handshake record (0x16, then version 3.x).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let first_bytes = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 3];
        stream.read_exact(&mut head).await.unwrap();
        head
    });
    let mut command = conformance();
    command.args([
        "run",
        "--provider",
        "fansly",
        "--base-url",
        &format!("https://{addr}"),
    ]);
    let out = output(command).await;
    let head = first_bytes.await.unwrap();
    assert_eq!((head[0], head[1]), (0x16, 0x03), "not a TLS ClientHello");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!stderr.contains("scheme"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach https://{addr}")),
        "{stderr}"
    );
}

/// Every `(suite, class, test)` name in a JUnit file.
fn junit_names(path: &Path) -> Vec<String> {
    let xml = std::fs::read_to_string(path).unwrap();
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..].split('"').next()?.to_owned())
    };
    xml.split('<')
        .filter(|tag| tag.starts_with("testsuite ") || tag.starts_with("testcase "))
        .map(|tag| {
            format!(
                "{} {:?} {:?}",
                tag.split(' ').next().unwrap(),
                attribute(tag, "name"),
                attribute(tag, "classname")
            )
        })
        .collect()
}

#[tokio::test]
async fn junit_names_are_the_same_in_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for run in 0..2 {
        // Each run has its own mock on its own port, as two CI builds would.
        let server = system_clock_mock().await;
        let run_xml = dir.path().join(format!("run-{run}.xml"));
        let mut command = conformance();
        command.args([
            "run",
            "--provider",
            "onlyfans",
            "--base-url",
            &server.base_url(),
            "--junit",
            run_xml.to_str().unwrap(),
        ]);
        let out = output(command).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let client_xml = dir.path().join(format!("client-{run}.xml"));
        let out = output(grade(
            "fansly",
            &[
                "--scenario",
                "happy,fail-while-processing",
                "--junit",
                client_xml.to_str().unwrap(),
            ],
            GRADE_POLITE,
        ))
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let xml = std::fs::read_to_string(&run_xml).unwrap();
        assert!(
            xml.contains(&server.base_url()),
            "the URL is kept as a property"
        );
        names.push((junit_names(&run_xml), junit_names(&client_xml)));
    }
    assert!(names[0].0.len() > 10, "{:?}", names[0].0);
    assert!(names[0].1.len() > 10, "{:?}", names[0].1);
    assert_eq!(names[0], names[1]);
    for name in names[0].0.iter().chain(&names[0].1) {
        assert!(!name.contains("127.0.0.1"), "{name}");
        assert!(!name.contains("exit"), "{name}");
    }
}

/// A Fansly client that uploads twelve files and polls each job three times in a row without
/// waiting: twenty-four `poll_rate` failures over jobs 1 to 12.
const HASTY_CLIENT: &str = r#"
import json, sys, time, urllib.request, uuid
provider, base_url, api_key, account, path = sys.argv[1:6]
data = open(path, "rb").read()
jobs = []
for n in range(12):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{n}.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + bytes([n]) + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base_url}/api/fansly/{account}/media/upload", data=body,
        method="POST", headers={"x-api-key": api_key,
                                "Content-Type": f"multipart/form-data; boundary={boundary}"})
    jobs.append(json.load(urllib.request.urlopen(request, timeout=30))["data"]["jobId"])
for job in jobs:
    for _ in range(3):
        urllib.request.urlopen(urllib.request.Request(
            f"{base_url}/api/fansly/media/upload/{job}/status", headers={"x-api-key": api_key}),
            timeout=30).read()
"#;

#[tokio::test]
async fn grading_shows_a_line_per_scenario_and_orders_capped_failures_by_job() {
    let dir = tempfile::tempdir().unwrap();
    let client = script(dir.path(), "hasty.py", HASTY_CLIENT);
    let args = [
        "python3",
        client.as_str(),
        "{provider}",
        "{base_url}",
        "{api_key}",
        "{account}",
        "{file}",
    ];
    let out = output(grade("fansly", &["--scenario", "happy,slow-upload"], &args)).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Off a terminal: one line per scenario as it ends.
    for scenario in ["happy", "slow-upload"] {
        let line = stderr
            .lines()
            .find(|line| line.starts_with(&format!("scenario {scenario} done in ")))
            .unwrap_or_else(|| panic!("no progress line for {scenario}\n{stderr}"));
        assert!(
            line.contains("FAILED (") && line.contains("poll_rate"),
            "{line}"
        );
    }
    let happy = stdout.split("scenario slow-upload").next().unwrap();
    let failures: Vec<&str> = happy
        .lines()
        .skip_while(|line| !line.contains("FAIL poll_rate"))
        .skip(1)
        .take_while(|line| line.starts_with("       - "))
        .collect();
    assert_eq!(failures.len(), 11, "ten listed and a count\n{stdout}");
    assert_eq!(failures[10], "       - … and 14 more", "{stdout}");
    let jobs: Vec<u64> = failures[..10]
        .iter()
        .map(|line| {
            line.trim_start_matches("       - job ")
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(jobs, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5], "{stdout}");
}
