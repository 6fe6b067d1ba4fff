//! The `conformance` binary: exit codes, reports, and the three subcommands end to end.

use std::process::Command;

use crate::support::{spawn_breaking_proxy, spawn_mock};

fn conformance() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conformance"))
}

/// Runs the binary off the async runtime (it starts its own).
async fn output(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn run_without_a_base_url_checks_an_in_process_mock_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (junit, json) = (dir.path().join("junit.xml"), dir.path().join("report.json"));
    let mut command = conformance();
    command
        .args(["run", "--provider", "fansly", "--junit"])
        .arg(&junit)
        .arg("--json")
        .arg(&json);
    let out = output(command).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().last(),
        Some("18 passed, 0 failed"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testcase name="cdn_links_expire""#),
        "{xml}"
    );
    assert!(xml.contains(r#"failures="0""#), "{xml}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["suites"][0]["results"].as_array().unwrap().len(), 18);
    assert_eq!(report["admin"], true);
}

#[tokio::test]
async fn a_failing_check_exits_1_and_lands_in_junit_as_a_failure() {
    let server = spawn_mock().await;
    let proxy = spawn_breaking_proxy(
        server.base_url(),
        |_, _| {},
        |_, answer| {
            answer.headers.remove("x-ratelimit-plan");
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let mut command = conformance();
    command
        .args([
            "run",
            "--provider",
            "fansly",
            "--base-url",
            &proxy,
            "--junit",
        ])
        .arg(&junit);
    let out = output(command).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("17 passed, 1 failed"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("X-RateLimit-Plan missing"), "{xml}");
}

#[tokio::test]
async fn an_unreachable_target_or_bad_usage_exits_2() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut command = conformance();
    command.args([
        "run",
        "--provider",
        "onlyfans",
        "--base-url",
        &closed,
        "--admin",
        "no",
        "--account",
        "acct_1",
    ]);
    let out = output(command).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreachable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut command = conformance();
    command.args(["run", "--provider", "myspace"]);
    assert_eq!(output(command).await.status.code(), Some(2));
}

#[tokio::test]
async fn drift_reports_nothing_to_act_on_for_the_committed_specs() {
    let mut command = conformance();
    command.arg("drift");
    let out = output(command).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 to act on"), "{stdout}");
}

#[tokio::test]
async fn client_grades_a_command_and_exits_by_its_verdict() {
    let script = format!(
        "{}/../examples/clients/polite_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut command = conformance();
    command.args([
        "client",
        "--provider",
        "fansly",
        "--scenario",
        "happy",
        "--time-scale",
        "0.2",
        "--min-poll-interval",
        "200ms",
        "--",
        "env",
        "POLL_INTERVAL=0.25",
        "python3",
        &script,
        "{provider}",
        "{base_url}",
        "{api_key}",
        "{account}",
        "{file}",
    ]);
    let out = output(command).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.lines().any(|line| line == "scenario happy"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PASS polls_until_terminal_then_stops"),
        "{stdout}"
    );
}
