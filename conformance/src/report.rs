//! Reports: JUnit XML and JSON for CI, plain lines or a progress bar for people. The only module
//! that prints.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use crate::check::{CheckResult, Outcome};

/// A named group of results: one provider run, or one scenario of a client grading.
#[derive(Debug, Clone, Copy)]
pub struct Suite<'a> {
    /// The suite's name, e.g. `fansly http://127.0.0.1:8765` or `client flaky-5xx`.
    pub name: &'a str,
    /// Its rows.
    pub results: &'a [CheckResult],
}

/// JUnit XML: one `<testsuite>` per suite, one `<testcase>` per row; failures carry every
/// message, skips their reason, so CI annotations say what broke.
pub fn junit(
    report_name: &str,
    suites: &[Suite<'_>],
) -> Result<String, quick_junit::SerializeError> {
    let mut report = quick_junit::Report::new(report_name);
    for suite in suites {
        let mut test_suite = TestSuite::new(suite.name);
        for result in suite.results {
            let status = match &result.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Failed { failures } => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status
                        .set_message(failures.first().cloned().unwrap_or_default())
                        .set_description(failures.join("\n"));
                    status
                }
                Outcome::Skipped { reason } => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(reason.clone());
                    status
                }
            };
            let mut case = TestCase::new(result.name, status);
            case.set_classname(suite.name).set_assertions(result.cases);
            test_suite.add_test_case(case);
        }
        report.add_test_suite(test_suite);
    }
    report.to_string()
}

/// The suites as one JSON document: `{"suites": [{"name", "results": [...]}]}`.
pub fn json(suites: &[Suite<'_>], extra: serde_json::Value) -> String {
    let suites: Vec<serde_json::Value> = suites
        .iter()
        .map(|suite| serde_json::json!({ "name": suite.name, "results": suite.results }))
        .collect();
    let mut document = serde_json::json!({ "suites": suites });
    if let serde_json::Value::Object(extra) = extra {
        if let Some(map) = document.as_object_mut() {
            map.extend(extra);
        }
    }
    serde_json::to_string_pretty(&document)
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
}

/// Prints every row of every suite, then the totals line `N passed, N failed`.
pub fn print(out: &mut impl Write, suites: &[Suite<'_>]) -> std::io::Result<()> {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for suite in suites {
        writeln!(out, "{}", suite.name)?;
        for result in suite.results {
            match &result.outcome {
                Outcome::Passed => {
                    passed += 1;
                    writeln!(out, "  PASS {} ({} cases)", result.name, result.cases)?;
                }
                Outcome::Failed { failures } => {
                    failed += 1;
                    writeln!(out, "  FAIL {}: {}", result.name, result.description)?;
                    for failure in failures.iter().take(20) {
                        writeln!(out, "       - {failure}")?;
                    }
                    if failures.len() > 20 {
                        writeln!(out, "       … and {} more", failures.len() - 20)?;
                    }
                }
                Outcome::Skipped { reason } => {
                    skipped += 1;
                    writeln!(out, "  SKIP {}: {reason}", result.name)?;
                }
            }
        }
    }
    if skipped > 0 {
        writeln!(out, "{skipped} skipped")?;
    }
    writeln!(out, "{passed} passed, {failed} failed")
}

/// Shows progress: a bar on a terminal, one plain line per step otherwise (CI logs).
#[derive(Debug)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A progress display for `n_steps` steps, on stderr.
    pub fn new(n_steps: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(n_steps);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar }
    }

    /// One step started.
    pub fn step(&self, name: &str) {
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(name.to_owned());
            }
            None => eprintln!("… {name}"),
        }
    }

    /// All steps done.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
