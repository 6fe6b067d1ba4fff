//! The webhook-receiver grader grades the two example receivers as they deserve, a receiver that
//! refuses everything fails what it breaks, and the CLI refuses what it cannot grade.

use std::collections::BTreeMap;
use std::process::Command;

use bytes::Bytes;
use conformance::Outcome;
use conformance::receiver::{DEFAULT_SECRET, ReceiverGrade, ReceiverOptions, grade};
use http_body_util::Full;

fn example(name: &str) -> String {
    format!(
        "{}/../examples/receivers/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn started(receiver: &str) -> ReceiverOptions {
    ReceiverOptions {
        command: ["python3", &example(receiver), "{secret}"]
            .map(str::to_owned)
            .to_vec(),
        url: None,
        secret: DEFAULT_SECRET.to_owned(),
    }
}

/// Each rule's verdict: "pass", "fail", "skip" or "unexercised".
fn verdicts(grade: &ReceiverGrade) -> BTreeMap<&'static str, &'static str> {
    grade
        .results
        .iter()
        .map(|result| {
            let verdict = match result.outcome {
                Outcome::Passed => "pass",
                Outcome::Failed { .. } => "fail",
                Outcome::Skipped { .. } => "skip",
                Outcome::Unexercised { .. } => "unexercised",
            };
            (result.name, verdict)
        })
        .collect()
}

#[tokio::test]
async fn the_good_receiver_passes_every_rule() {
    let grade = grade(&started("good_receiver.py")).await.unwrap();
    assert!(
        grade
            .results
            .iter()
            .all(|result| result.outcome == Outcome::Passed),
        "{:#?}\n{}",
        grade.results,
        grade.output_tail
    );
    assert_eq!(grade.results.len(), conformance::receiver::RULES.len());
}

#[tokio::test]
async fn the_naive_receiver_fails_exactly_the_rules_it_breaks() {
    let grade = grade(&started("naive_receiver.py")).await.unwrap();
    let verdicts = verdicts(&grade);
    assert_eq!(
        verdicts,
        BTreeMap::from([
            ("answers_2xx_within_10s", "pass"),
            ("processes_each_event", "pass"),
            ("refuses_bad_signature", "fail"),
            ("processes_duplicate_once", "fail"),
            ("copes_with_out_of_order", "pass"),
            ("survives_redelivery", "fail"),
        ]),
        "{:#?}",
        grade.results
    );
    assert!(grade.is_failure());
}

/// A receiver already running (`--url`) that refuses every delivery and lists nothing: it is not
/// fooled by a forgery, and fails everything that needs an event processed.
#[tokio::test]
async fn a_receiver_that_refuses_everything_fails_what_needs_processing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let (status, body) = match *req.method() {
                        hyper::Method::GET => (200, "[]"),
                        _ => (503, ""),
                    };
                    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, std::convert::Infallible>(response)
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    let options = ReceiverOptions {
        command: Vec::new(),
        url: Some(url.clone()),
        secret: "whsec_elsewhere".to_owned(),
    };
    let grade = grade(&options).await.unwrap();
    assert_eq!(grade.url, url);
    let verdicts = verdicts(&grade);
    for rule in [
        "answers_2xx_within_10s",
        "processes_each_event",
        "processes_duplicate_once",
        "survives_redelivery",
    ] {
        assert_eq!(verdicts[rule], "fail", "{rule}: {:#?}", grade.results);
    }
    assert_eq!(verdicts["refuses_bad_signature"], "pass");
    let answers = grade
        .results
        .iter()
        .find(|result| result.name == "answers_2xx_within_10s")
        .unwrap();
    let Outcome::Failed { failures } = &answers.outcome else {
        unreachable!()
    };
    assert!(failures[0].ends_with("was answered 503"), "{failures:?}");
}

#[test]
fn the_cli_refuses_fansly_and_a_url_without_its_secret() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_conformance"))
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["webhooks", "--provider", "fansly", "--", "true"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("fansly sends no upload webhooks"),
        "{stderr}"
    );
    let (code, stderr) = run(&[
        "webhooks",
        "--provider",
        "onlyfans",
        "--url",
        "http://127.0.0.1:9/",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--url needs --secret"), "{stderr}");
}

/// The CLI grades as the library does and says so in its exit status and report.
#[test]
fn the_cli_grades_the_naive_receiver_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("webhooks.xml");
    let output = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["webhooks", "--provider", "onlyfans", "--junit"])
        .arg(&junit)
        .args(["--", "python3", &example("naive_receiver.py")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL refuses_bad_signature:"), "{stdout}");
    assert!(stdout.contains("PASS copes_with_out_of_order"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="webhooks onlyfans""#),
        "{xml}"
    );
    assert!(
        xml.contains("conformance-webhooks.webhooks.onlyfans"),
        "{xml}"
    );
}
