//! Reports: JUnit XML and JSON for CI, plain lines or a progress bar for people. The only module
//! that prints.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use crate::check::{CheckResult, Outcome};

/// A named group of results: one provider run, or one scenario of a client grading.
#[derive(Debug, Clone, Copy)]
pub struct Suite<'a> {
    /// The suite's name, the same from run to run and machine to machine (`fansly`,
    /// `scenario flaky-5xx`): CI test-history tools key on it.
    pub name: &'a str,
    /// Its rows.
    pub results: &'a [CheckResult],
    /// What varies between runs (base URL, port, exit code, timings): JUnit properties and
    /// JSON fields, never part of a name.
    pub properties: &'a [(String, String)],
}

/// JUnit XML: one `<testsuite>` per suite, one `<testcase>` per row (class name
/// `conformance.<suite>`); failures carry every message, skips their reason, so CI annotations
/// say what broke. Names are stable across runs; what varies is in `<properties>`.
pub fn junit(
    report_name: &str,
    suites: &[Suite<'_>],
) -> Result<String, quick_junit::SerializeError> {
    let mut report = quick_junit::Report::new(report_name);
    for suite in suites {
        let mut test_suite = TestSuite::new(suite.name);
        for (name, value) in suite.properties {
            test_suite.add_property(quick_junit::Property::new(name.as_str(), value.as_str()));
        }
        let class_name = format!("{report_name}.{}", suite.name.replace(' ', "."));
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
                Outcome::Unexercised { reason } => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(format!("not exercised: {reason}"));
                    status
                }
            };
            let mut case = TestCase::new(result.name, status);
            case.set_classname(class_name.as_str())
                .set_assertions(result.cases);
            test_suite.add_test_case(case);
        }
        report.add_test_suite(test_suite);
    }
    report.to_string()
}

/// The suites as one JSON document:
/// `{"suites": [{"name", "properties": {...}, "results": [...]}]}`.
pub fn json(suites: &[Suite<'_>], extra: serde_json::Value) -> String {
    let suites: Vec<serde_json::Value> = suites
        .iter()
        .map(|suite| {
            let properties: serde_json::Map<String, serde_json::Value> = suite
                .properties
                .iter()
                .map(|(name, value)| (name.clone(), serde_json::Value::from(value.as_str())))
                .collect();
            serde_json::json!({
                "name": suite.name,
                "properties": properties,
                "results": suite.results,
            })
        })
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
    let (mut passed, mut failed, mut skipped, mut unexercised) = (0, 0, 0, 0);
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
                    for failure in failures.iter().take(MAX_PRINTED) {
                        writeln!(out, "       - {failure}")?;
                    }
                    if failures.len() > MAX_PRINTED {
                        writeln!(out, "       … and {} more", failures.len() - MAX_PRINTED)?;
                    }
                }
                Outcome::Skipped { reason } => {
                    skipped += 1;
                    writeln!(out, "  SKIP {}: {reason}", result.name)?;
                }
                Outcome::Unexercised { reason } => {
                    unexercised += 1;
                    writeln!(out, "  NOT EXERCISED {}: {reason}", result.name)?;
                }
            }
        }
    }
    if skipped > 0 {
        writeln!(out, "{skipped} skipped (not applicable)")?;
    }
    if unexercised > 0 {
        writeln!(out, "{unexercised} not exercised")?;
    }
    writeln!(out, "{passed} passed, {failed} failed")
}

/// Failure lines printed per check; JUnit and JSON keep them all.
const MAX_PRINTED: usize = 20;

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

/// Shows a client grading as it goes: on a terminal a live line per scenario (elapsed, polls
/// seen, then its verdicts); otherwise one line per scenario when it ends, for CI logs.
#[derive(Debug)]
pub struct GradeProgress {
    lines: Option<(
        indicatif::MultiProgress,
        Vec<(String, indicatif::ProgressBar)>,
    )>,
}

impl GradeProgress {
    /// A display for these scenarios, on stderr.
    pub fn new(scenarios: &[String]) -> Self {
        let width = scenarios.iter().map(String::len).max().unwrap_or(0);
        let lines = std::io::stderr().is_terminal().then(|| {
            let multi = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            let bars = scenarios
                .iter()
                .map(|name| {
                    let bar = multi.add(indicatif::ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{name:width$}"));
                    bar.set_message("starting");
                    bar.enable_steady_tick(Duration::from_millis(200));
                    (name.clone(), bar)
                })
                .collect();
            (multi, bars)
        });
        Self { lines }
    }

    /// One event from the grader.
    pub fn event(&self, event: crate::client::Event<'_>) {
        match event {
            crate::client::Event::Running {
                scenario,
                elapsed,
                n_polls,
            } => {
                if let Some(bar) = self.bar(scenario) {
                    bar.set_message(format!(
                        "{:5.1}s  {n_polls} polls  running",
                        elapsed.as_secs_f64()
                    ));
                }
            }
            crate::client::Event::Done(grade) => {
                let line = grade_line(grade);
                match self.bar(&grade.scenario) {
                    Some(bar) => bar.finish_with_message(line),
                    None => eprintln!("scenario {} {line}", grade.scenario),
                }
            }
        }
    }

    fn bar(&self, scenario: &str) -> Option<&indicatif::ProgressBar> {
        let (_, bars) = self.lines.as_ref()?;
        bars.iter()
            .find(|(name, _)| name == scenario)
            .map(|(_, bar)| bar)
    }
}

/// `done in 3.1s, 4 polls, exit 0: 7 passed, 1 FAILED (poll_rate)`.
fn grade_line(grade: &crate::client::Grade) -> String {
    let names = |pick: fn(&Outcome) -> bool| -> Vec<&str> {
        grade
            .results
            .iter()
            .filter(|result| pick(&result.outcome))
            .map(|result| result.name)
            .collect()
    };
    let passed = names(|outcome| matches!(outcome, Outcome::Passed)).len();
    let failed = names(|outcome| matches!(outcome, Outcome::Failed { .. }));
    let unexercised = names(|outcome| matches!(outcome, Outcome::Unexercised { .. }));
    let skipped = names(|outcome| matches!(outcome, Outcome::Skipped { .. })).len();
    let mut line = format!(
        "done in {:.1}s, {} polls, exit {}: {passed} passed",
        grade.elapsed.as_secs_f64(),
        grade.n_polls,
        grade
            .exit_code
            .map_or("none".to_owned(), |code| code.to_string()),
    );
    if !failed.is_empty() {
        line.push_str(&format!(
            ", {} FAILED ({})",
            failed.len(),
            failed.join(", ")
        ));
    }
    if !unexercised.is_empty() {
        line.push_str(&format!(
            ", {} NOT EXERCISED ({})",
            unexercised.len(),
            unexercised.join(", ")
        ));
    }
    if skipped > 0 {
        line.push_str(&format!(", {skipped} not applicable"));
    }
    line
}

/// The parity table: one line per cassette, endpoint and state, with the cassette's recording
/// date, then every difference (accepted ones with their reason), then the totals line.
pub fn parity_table(
    out: &mut impl Write,
    results: &[crate::parity::CassetteParity],
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:<24} {:<8} {:<18} {:>9} {:>7} {:>7} {:>7} {:>7}",
        "cassette",
        "recorded",
        "endpoint",
        "state",
        "exchanges",
        "matches",
        "differs",
        "missing",
        "extra"
    )?;
    let (mut passed, mut failed) = (0, 0);
    for cassette in results {
        for row in &cassette.rows {
            writeln!(
                out,
                "{:<16} {:<24} {:<8} {:<18} {:>9} {:>7} {:>7} {:>7} {:>7}",
                cassette.name,
                cassette.recorded_at,
                row.endpoint,
                row.state,
                row.exchanges,
                row.counts.matches,
                row.counts.differs,
                row.counts.missing,
                row.counts.extra
            )?;
            if row.is_success() {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    for cassette in results {
        for row in &cassette.rows {
            for finding in &row.findings {
                match &finding.accepted {
                    None => writeln!(
                        out,
                        "  DIFFERS {} ({}): {}",
                        cassette.name, finding.at, finding.key
                    )?,
                    Some(reason) => writeln!(
                        out,
                        "  accepted {} ({}): {} # {reason}",
                        cassette.name, finding.at, finding.key
                    )?,
                }
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")
}

/// Parity as JUnit XML: a suite per cassette (`parity <cassette>`), a test case per endpoint and
/// state (`status active`), failing with its unaccepted differences; the recording date is a
/// property, so names stay the same from run to run.
pub fn parity_junit(
    results: &[crate::parity::CassetteParity],
) -> Result<String, quick_junit::SerializeError> {
    let mut report = quick_junit::Report::new("conformance");
    for cassette in results {
        let mut suite = TestSuite::new(format!("parity {}", cassette.name));
        suite.add_property(quick_junit::Property::new(
            "recorded_at",
            cassette.recorded_at.as_str(),
        ));
        let class_name = format!("conformance.parity.{}", cassette.name);
        for row in &cassette.rows {
            let unaccepted: Vec<String> = row
                .findings
                .iter()
                .filter(|finding| finding.accepted.is_none())
                .map(|finding| format!("{} ({})", finding.key, finding.at))
                .collect();
            let status = if unaccepted.is_empty() {
                TestCaseStatus::success()
            } else {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(unaccepted.first().cloned().unwrap_or_default())
                    .set_description(unaccepted.join("\n"));
                status
            };
            let mut case = TestCase::new(format!("{} {}", row.endpoint, row.state), status);
            case.set_classname(class_name.as_str())
                .set_assertions(row.exchanges);
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// Parity as one JSON document: `{"cassettes": [{"name", "recorded_at", "rows": [...]}]}`.
pub fn parity_json(results: &[crate::parity::CassetteParity]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "cassettes": results }))
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
}
