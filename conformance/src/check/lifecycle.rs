//! The job lifecycle: upload, poll to the end, and hold the provider to its state machine.

use std::time::Duration;

use mock_server::Provider;
use reqwest::Method;
use serde_json::Value;

use crate::check;
use crate::run::{Auth, Body, Runner, Sample};

/// What one successful poll showed.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// The provider's state name.
    pub(crate) state: String,
    /// Progress 0–100, where the provider reports it.
    pub(crate) progress: Option<i64>,
    /// The whole body.
    pub(crate) body: Value,
}

/// Where a state sits in the provider's lifecycle: 0 queued, 1 processing, 2 terminal.
pub(crate) fn rank(provider: Provider, state: &str) -> Option<u8> {
    match (provider, state) {
        (Provider::Fansly, "waiting") | (Provider::OnlyFans, "pending") => Some(0),
        (Provider::Fansly, "active") | (Provider::OnlyFans, "processing") => Some(1),
        (_, "completed" | "failed") => Some(2),
        _ => None,
    }
}

/// Reads state and progress from a status body.
pub(crate) fn observe(provider: Provider, body: &Value) -> Option<Observation> {
    let (state, progress) = match provider {
        Provider::Fansly => (
            body["data"]["state"].as_str()?,
            body["data"]["progress"].as_i64(),
        ),
        Provider::OnlyFans => (body["status"].as_str()?, None),
    };
    Some(Observation {
        state: state.to_owned(),
        progress,
        body: body.clone(),
    })
}

/// The job id an accepted upload answered with.
fn job_id(provider: Provider, body: &Value) -> Option<String> {
    let id = match provider {
        Provider::Fansly => &body["data"]["jobId"],
        Provider::OnlyFans => &body["prefixed_id"],
    };
    match id {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// `unknown_job_not_found`.
pub(crate) async fn unknown_job(runner: &mut Runner<'_>) {
    let path = runner
        .target
        .status_path(crate::check::upload::unknown_id(runner.target.provider));
    let Some(exchange) = runner.get("poll an unknown job", &path).await else {
        runner
            .findings
            .fail(check::UNKNOWN_JOB_NOT_FOUND, "no answer");
        return;
    };
    if exchange.status == 404 {
        runner.keep_sample("error_404", &exchange);
    }
    runner
        .findings
        .expect(check::UNKNOWN_JOB_NOT_FOUND, exchange.status == 404, || {
            format!("{}: expected 404", exchange.line())
        });
}

/// Uploads `sample` asynchronously, follows the job to its end, and judges every step; returns
/// the completed media object for the link checks.
pub(crate) async fn upload_and_follow(
    runner: &mut Runner<'_>,
    sample: &Sample,
    fields: &[(String, String)],
) -> Option<Value> {
    let job_id = upload(runner, sample, fields, None).await?;
    let observations = follow(runner, &job_id).await?;
    let last = observations.last()?;
    let line = format!("job {job_id} ({})", sample.file_name);
    match last.state.as_str() {
        "completed" => {
            let media = media_of(runner.target.provider, &last.body);
            judge_media(runner, sample, &media, &line);
            Some(media)
        }
        "failed" if runner.lenient => {
            let reason = error_of(runner.target.provider, &last.body);
            runner.findings.expect(
                check::FAILED_CARRIES_ERROR,
                reason.is_some_and(|reason| !reason.trim().is_empty()),
                || format!("{line}: failed with no error reason"),
            );
            None
        }
        _ => {
            runner.findings.fail(
                check::COMPLETED_CARRIES_MEDIA,
                format!(
                    "{line}: a valid upload ended {}: {}",
                    last.state,
                    error_of(runner.target.provider, &last.body).unwrap_or_default()
                ),
            );
            None
        }
    }
}

/// Makes a job fail on the mock (`X-Mock-Scenario`) and checks that the failure carries its error.
pub(crate) async fn failure(runner: &mut Runner<'_>) {
    if !runner.target.admin {
        runner.findings.skip(
            check::FAILED_CARRIES_ERROR,
            "needs the mock: a live API cannot be told to fail a job",
        );
        return;
    }
    let sample = Sample::jpeg();
    let Some(job_id) = upload(runner, &sample, &[], Some("fail-while-processing")).await else {
        return;
    };
    let Some(observations) = follow(runner, &job_id).await else {
        return;
    };
    let Some(last) = observations.last() else {
        return;
    };
    let line = format!("job {job_id} (scenario fail-while-processing)");
    if last.state != "failed" {
        runner.findings.fail(
            check::FAILED_CARRIES_ERROR,
            format!("{line}: ended {} where the scenario fails it", last.state),
        );
        return;
    }
    let reason = error_of(runner.target.provider, &last.body);
    runner.findings.expect(
        check::FAILED_CARRIES_ERROR,
        reason
            .as_deref()
            .is_some_and(|reason| !reason.trim().is_empty()),
        || format!("{line}: failed with no error reason"),
    );
}

async fn upload(
    runner: &mut Runner<'_>,
    sample: &Sample,
    fields: &[(String, String)],
    scenario: Option<&str>,
) -> Option<String> {
    let mut form = runner.upload_form(sample, true);
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    let path = runner.target.upload_path();
    let exchange = runner
        .api(
            &format!("upload {}", sample.file_name),
            Method::POST,
            &path,
            Auth::Key,
            Body::Form(form),
            scenario,
        )
        .await;
    let Some(exchange) = exchange else {
        runner.findings.fail(
            check::POSITIVE_DATA_ACCEPTANCE,
            format!("upload {}: no answer", sample.file_name),
        );
        return None;
    };
    if runner.lenient && (400..500).contains(&exchange.status) {
        // A generated file may be one the provider refuses; the response checks have already
        // held the refusal to the spec.
        return None;
    }
    let job_id = exchange
        .json
        .as_ref()
        .filter(|_| (200..300).contains(&exchange.status))
        .and_then(|body| job_id(runner.target.provider, body));
    runner
        .findings
        .expect(check::POSITIVE_DATA_ACCEPTANCE, job_id.is_some(), || {
            format!("{}: expected a 2xx with a job id", exchange.line())
        });
    if job_id.is_some() && scenario.is_none() {
        let kind = match runner.target.provider {
            Provider::Fansly => "upload_accepted",
            Provider::OnlyFans => "upload_async_accepted",
        };
        runner.keep_sample(kind, &exchange);
    }
    job_id
}

/// Polls `job_id` until a terminal state (or the deadline), then a few more times; judges the
/// sequence. `None` when no terminal state was reached.
async fn follow(runner: &mut Runner<'_>, job_id: &str) -> Option<Vec<Observation>> {
    let provider = runner.target.provider;
    let path = runner.target.status_path(job_id);
    let step = if runner.target.admin {
        runner.options.mock_step
    } else {
        runner.options.poll_interval
    };
    let started = runner.waited;
    let mut observations: Vec<Observation> = Vec::new();
    loop {
        let exchange = runner.get("status poll", &path).await;
        let mut pause = step;
        match exchange {
            Some(exchange) if exchange.status == 200 => {
                match exchange
                    .json
                    .as_ref()
                    .and_then(|body| observe(provider, body))
                {
                    Some(observation) => {
                        keep_status_sample(runner, &exchange, &observation);
                        let is_terminal = rank(provider, &observation.state) == Some(2);
                        observations.push(observation);
                        if is_terminal {
                            break;
                        }
                    }
                    None => runner.findings.fail(
                        check::LEGAL_STATE_TRANSITIONS,
                        format!("{}: no state in the body", exchange.line()),
                    ),
                }
            }
            Some(exchange) if exchange.status == 429 || exchange.status >= 500 => {
                pause = exchange.retry_after().unwrap_or(step).max(step);
            }
            Some(exchange) => {
                runner.findings.fail(
                    check::REACHES_TERMINAL_STATE,
                    format!(
                        "{}: polling stopped on an unexpected status",
                        exchange.line()
                    ),
                );
                return None;
            }
            None => {}
        }
        if runner.waited.saturating_sub(started) >= runner.options.deadline {
            let last = observations
                .last()
                .map_or("no state", |observation| observation.state.as_str());
            runner.findings.fail(
                check::REACHES_TERMINAL_STATE,
                format!(
                    "job {job_id}: still {last} after {}",
                    humantime::format_duration(runner.options.deadline)
                ),
            );
            judge_sequence(runner, job_id, &observations);
            return None;
        }
        runner.wait(pause).await;
    }
    runner.findings.pass(check::REACHES_TERMINAL_STATE);

    let terminal_count = observations.len();
    let later = if runner.target.admin {
        Duration::from_secs(60)
    } else {
        step
    };
    for _ in 0..runner.options.stability_polls {
        runner.wait(later).await;
        let exchange = runner.get("poll after the end", &path).await;
        if let Some(observation) = exchange
            .filter(|exchange| exchange.status == 200)
            .and_then(|exchange| exchange.json)
            .and_then(|body| observe(provider, &body))
        {
            observations.push(observation);
        }
    }
    let terminal = &observations[terminal_count - 1].state;
    for later in &observations[terminal_count..] {
        runner.findings.expect(
            check::TERMINAL_STATE_STABLE,
            &later.state == terminal,
            || {
                format!(
                    "job {job_id}: was {terminal}, a later poll said {}",
                    later.state
                )
            },
        );
    }
    judge_sequence(runner, job_id, &observations);
    Some(observations)
}

fn keep_status_sample(
    runner: &mut Runner<'_>,
    exchange: &crate::target::Exchange,
    observation: &Observation,
) {
    let kind = match (runner.target.provider, observation.state.as_str()) {
        (Provider::OnlyFans, "completed") => "status_completed_cdn".to_owned(),
        (_, state) => format!("status_{state}"),
    };
    runner.keep_sample(&kind, exchange);
}

/// `legal_state_transitions` and `progress_monotonic` over one job's polls.
fn judge_sequence(runner: &mut Runner<'_>, job_id: &str, observations: &[Observation]) {
    let provider = runner.target.provider;
    let mut legal = true;
    for pair in observations.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let ok = match (rank(provider, &before.state), rank(provider, &after.state)) {
            (Some(2), Some(_)) => before.state == after.state,
            (Some(from), Some(to)) => to >= from,
            _ => false,
        };
        if !ok {
            legal = false;
            runner.findings.fail(
                check::LEGAL_STATE_TRANSITIONS,
                format!("job {job_id}: {} → {}", before.state, after.state),
            );
        }
    }
    for observation in observations {
        if rank(provider, &observation.state).is_none() {
            legal = false;
            runner.findings.fail(
                check::LEGAL_STATE_TRANSITIONS,
                format!("job {job_id}: unknown state {:?}", observation.state),
            );
        }
    }
    if legal && !observations.is_empty() {
        runner.findings.pass(check::LEGAL_STATE_TRANSITIONS);
    }

    if provider == Provider::OnlyFans {
        runner
            .findings
            .skip(check::PROGRESS_MONOTONIC, "OnlyFans reports no progress");
        return;
    }
    let progress: Vec<i64> = observations
        .iter()
        .filter_map(|observation| observation.progress)
        .collect();
    let mut monotonic = true;
    for value in &progress {
        if !(0..=100).contains(value) {
            monotonic = false;
            runner.findings.fail(
                check::PROGRESS_MONOTONIC,
                format!("job {job_id}: progress {value} outside 0-100"),
            );
        }
    }
    for pair in progress.windows(2) {
        if pair[1] < pair[0] {
            monotonic = false;
            runner.findings.fail(
                check::PROGRESS_MONOTONIC,
                format!(
                    "job {job_id}: progress went from {} to {}",
                    pair[0], pair[1]
                ),
            );
        }
    }
    if monotonic && !progress.is_empty() {
        runner.findings.pass(check::PROGRESS_MONOTONIC);
    }
}

/// The media object of a completed status body: Fansly's `data.result`, OnlyFans' `media`.
pub(crate) fn media_of(provider: Provider, body: &Value) -> Value {
    match provider {
        Provider::Fansly => body["data"]["result"].clone(),
        Provider::OnlyFans => body["media"].clone(),
    }
}

fn error_of(provider: Provider, body: &Value) -> Option<String> {
    let reason = match provider {
        Provider::Fansly => &body["data"]["failedReason"],
        Provider::OnlyFans => &body["error"],
    };
    reason.as_str().map(str::to_owned)
}

/// `completed_carries_media`: ids, type, and (for images) the uploaded dimensions.
pub(crate) fn judge_media(runner: &mut Runner<'_>, sample: &Sample, media: &Value, line: &str) {
    let mut problems = Vec::new();
    let provider = runner.target.provider;
    let dimensions = sample.dimensions();
    match provider {
        Provider::Fansly => {
            if !is_id(&media["mediaId"]) {
                problems.push("result.mediaId missing".to_owned());
            }
            match media["accountMedia"]
                .as_array()
                .and_then(|list| list.first())
            {
                None => problems.push("result.accountMedia is empty".to_owned()),
                Some(account_media) => {
                    let inner = &account_media["media"];
                    if !is_id(&account_media["id"]) {
                        problems.push("accountMedia[0].id missing".to_owned());
                    }
                    let kind = inner["type"].as_i64();
                    let expected_kind = if sample.mime.starts_with("video/") {
                        2
                    } else {
                        1
                    };
                    if kind != Some(expected_kind) {
                        problems.push(format!("media.type {kind:?}, expected {expected_kind}"));
                    }
                    if let Some((width, height)) = dimensions {
                        let got = (inner["width"].as_u64(), inner["height"].as_u64());
                        if got != (Some(width), Some(height)) {
                            problems.push(format!(
                                "media is {:?}x{:?}, the upload is {width}x{height}",
                                got.0, got.1
                            ));
                        }
                    }
                    if inner["locations"].as_array().is_none_or(Vec::is_empty) {
                        problems.push("media.locations is empty".to_owned());
                    }
                }
            }
        }
        Provider::OnlyFans => {
            let is_vault = media.get("files").is_some();
            if is_vault {
                if !is_id(&media["id"]) {
                    problems.push("media.id missing".to_owned());
                }
                if let Some((width, height)) = dimensions {
                    let full = &media["files"]["full"];
                    let got = (full["width"].as_u64(), full["height"].as_u64());
                    if got != (Some(width), Some(height)) {
                        problems.push(format!(
                            "files.full is {:?}x{:?}, the upload is {width}x{height}",
                            got.0, got.1
                        ));
                    }
                }
            } else {
                if !is_id(&media["prefixed_id"]) {
                    problems.push("media.prefixed_id missing".to_owned());
                }
                if !media["sourceUrl"]
                    .as_str()
                    .is_some_and(|url| url.starts_with("http"))
                {
                    problems.push("media.sourceUrl is not a URL".to_owned());
                }
                if dimensions.is_some() && media["thumbs"].as_array().is_none_or(Vec::is_empty) {
                    problems.push("an image came back with no thumbs".to_owned());
                }
            }
        }
    }
    if problems.is_empty() {
        runner.findings.pass(check::COMPLETED_CARRIES_MEDIA);
    }
    for problem in problems {
        runner
            .findings
            .fail(check::COMPLETED_CARRIES_MEDIA, format!("{line}: {problem}"));
    }
}

fn is_id(value: &Value) -> bool {
    match value {
        Value::String(id) => !id.is_empty(),
        Value::Number(_) => true,
        _ => false,
    }
}
