//! The client grader grades the two example clients as they deserve: the polite one passes every
//! rule in every scenario, the naive one breaks the rules it was written to break.

use std::collections::BTreeMap;
use std::time::Duration;

use conformance::Outcome;
use conformance::client::{ClientOptions, Grade, TimeScale, grade};
use mock_server::Provider;

fn example(name: &str) -> String {
    format!("{}/../examples/clients/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn options(client: &str, provider: Provider) -> ClientOptions {
    ClientOptions {
        provider,
        command: [
            "env",
            "POLL_INTERVAL=0.25",
            "DEADLINE=15",
            "python3",
            &example(client),
            "{provider}",
            "{base_url}",
            "{api_key}",
            "{account}",
            "{file}",
        ]
        .map(str::to_owned)
        .to_vec(),
        scenarios: [
            "happy",
            "rate-limited",
            "flaky-5xx",
            "drop-connection",
            "malformed-body",
            "fail-while-processing",
        ]
        .map(str::to_owned)
        .to_vec(),
        min_poll_interval: Duration::from_millis(200),
        max_retries: 10,
        timeout: Some(Duration::from_secs(60)),
        time_scale: TimeScale::Factor(0.2),
        file: None,
    }
}

/// (scenario, rule) → "pass" | "fail" | "skip".
fn table(grades: &[Grade]) -> BTreeMap<(String, &'static str), &'static str> {
    grades
        .iter()
        .flat_map(|grade| {
            grade.results.iter().map(|result| {
                let verdict = match result.outcome {
                    Outcome::Passed => "pass",
                    Outcome::Failed { .. } => "fail",
                    Outcome::Skipped { .. } => "skip",
                    Outcome::Unexercised { .. } => "unexercised",
                };
                ((grade.scenario.clone(), result.name), verdict)
            })
        })
        .collect()
}

fn explain(grades: &[Grade]) -> String {
    grades
        .iter()
        .map(|grade| {
            format!(
                "{} (exit {:?}): {:#?}\n{}",
                grade.scenario, grade.exit_code, grade.results, grade.output_tail
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_polite_client_breaks_no_rule_in_any_built_in_scenario() {
    let mut options = options("polite_client.py", Provider::Fansly);
    // Every built-in scenario, `slow` (3.5 minutes, here 10.5 s) and `stuck` (never ends)
    // included; at this speed jobs end before some faults are reached, which the test above
    // covers at a slower scale.
    options.scenarios = Vec::new();
    options.time_scale = TimeScale::Factor(0.05);
    let grades = grade(&options, &|_| {}).await.unwrap();
    assert_eq!(grades.len(), mock_server::scenario::BUILT_IN.len());
    let failed: Vec<_> = table(&grades)
        .into_iter()
        .filter(|(_, verdict)| *verdict == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", explain(&grades));
}

#[tokio::test]
async fn the_polite_client_passes_every_rule_in_every_scenario() {
    let grades = grade(&options("polite_client.py", Provider::Fansly), &|_| {})
        .await
        .unwrap();
    let failed: Vec<_> = table(&grades)
        .into_iter()
        .filter(|(_, verdict)| *verdict == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", explain(&grades));
    let verdicts = table(&grades);
    assert_eq!(
        verdicts[&("rate-limited".to_owned(), "honours_retry_after")],
        "pass"
    );
    assert_eq!(
        verdicts[&("drop-connection".to_owned(), "retries_within_limits")],
        "pass"
    );
    assert_eq!(
        verdicts[&("fail-while-processing".to_owned(), "reports_outcome")],
        "pass"
    );
}

#[tokio::test]
async fn the_polite_client_passes_against_onlyfans_too() {
    let mut options = options("polite_client.py", Provider::OnlyFans);
    options.scenarios = ["happy", "rate-limited", "fail-while-processing"]
        .map(str::to_owned)
        .to_vec();
    let grades = grade(&options, &|_| {}).await.unwrap();
    let failed: Vec<_> = table(&grades)
        .into_iter()
        .filter(|(_, verdict)| *verdict == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", explain(&grades));
}

#[tokio::test]
async fn the_naive_client_fails_the_rules_it_breaks() {
    let grades = grade(&options("naive_client.py", Provider::Fansly), &|_| {})
        .await
        .unwrap();
    let verdicts = table(&grades);
    let expect = |scenario: &str, rule: &'static str, want: &str| {
        assert_eq!(
            verdicts[&(scenario.to_owned(), rule)],
            want,
            "{scenario} × {rule}\n{}",
            explain(&grades)
        );
    };
    expect("happy", "poll_rate", "fail");
    expect("happy", "polls_until_terminal_then_stops", "fail");
    expect("happy", "authenticates", "pass");
    expect("happy", "multipart_well_formed", "pass");
    expect("rate-limited", "honours_retry_after", "fail");
    expect("fail-while-processing", "reports_outcome", "fail");
    expect("flaky-5xx", "no_duplicate_upload", "fail");
}
