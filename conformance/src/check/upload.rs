//! The upload endpoint's promises: keys are required, bad forms are refused, good ones accepted.

use mock_server::Provider;
use reqwest::Method;
use reqwest::multipart::Form;

use crate::check;
use crate::run::{Auth, Body, Runner, Sample};
use crate::target::Exchange;

/// `ignored_auth`: an upload and a poll without a key get 401.
pub(crate) async fn auth(runner: &mut Runner<'_>) {
    let sample = Sample::jpeg();
    let form = runner.upload_form(&sample, true);
    let path = runner.target.upload_path();
    let upload = runner
        .api(
            "upload without a key",
            Method::POST,
            &path,
            Auth::None,
            Body::Form(form),
            None,
        )
        .await;
    expect_401(runner, upload);
    let path = runner
        .target
        .status_path(unknown_id(runner.target.provider));
    let poll = runner
        .api(
            "poll without a key",
            Method::GET,
            &path,
            Auth::None,
            Body::Empty,
            None,
        )
        .await;
    expect_401(runner, poll);
}

fn expect_401(runner: &mut Runner<'_>, exchange: Option<Exchange>) {
    let Some(exchange) = exchange else {
        runner.findings.fail(check::IGNORED_AUTH, "no answer");
        return;
    };
    if exchange.status == 401 {
        runner.keep_sample("error_401", &exchange);
    }
    runner
        .findings
        .expect(check::IGNORED_AUTH, exchange.status == 401, || {
            format!("{}: expected 401 without a key", exchange.line())
        });
}

/// An id no job has: the providers' formats, so the refusal is about existence, not syntax.
pub(crate) fn unknown_id(provider: Provider) -> &'static str {
    match provider {
        Provider::Fansly => "999999999",
        Provider::OnlyFans => "ofapi_media_00000000000000000000000000000000",
    }
}

/// `negative_data_rejection`: forms the provider documents as invalid get a documented 4xx.
pub(crate) async fn invalid_input(runner: &mut Runner<'_>) {
    let sample = Sample::jpeg();
    let file = || {
        reqwest::multipart::Part::stream(sample.bytes.clone()).file_name(sample.file_name.clone())
    };
    let mut cases: Vec<(&str, Body)> = vec![
        (
            "upload with no file",
            Body::Form(Form::new().text("formInputs", "[]").text("async", "true")),
        ),
        (
            "upload that is not multipart",
            Body::Json(serde_json::json!({ "file": "sample.jpg" })),
        ),
    ];
    if runner.target.provider == Provider::OnlyFans {
        cases.push((
            "upload with both file and file_url",
            Body::Form(
                Form::new()
                    .part("file", file())
                    .text("file_url", "https://example.com/sample.jpg"),
            ),
        ));
        cases.push((
            "upload with an unknown type",
            Body::Form(Form::new().part("file", file()).text("type", "banner")),
        ));
    }
    let path = runner.target.upload_path();
    for (purpose, body) in cases {
        let Some(exchange) = runner
            .api(purpose, Method::POST, &path, Auth::Key, body, None)
            .await
        else {
            runner.findings.fail(
                check::NEGATIVE_DATA_REJECTION,
                format!("{purpose}: no answer"),
            );
            continue;
        };
        let refused = (400..500).contains(&exchange.status) && exchange.status != 401;
        let documented = runner
            .spec()
            .response(&exchange.method, &exchange.path, exchange.status)
            .is_ok();
        if refused && purpose == "upload with no file" {
            runner.keep_sample(&format!("error_{}", exchange.status), &exchange);
        }
        runner.findings.expect(
            check::NEGATIVE_DATA_REJECTION,
            refused && documented,
            || format!("{}: expected a documented 4xx refusal", exchange.line()),
        );
    }
}

/// One synchronous OnlyFans upload of `sample` with `fields`: the media must come back whole
/// (or the upload be refused in a documented way).
pub(crate) async fn sync_case(
    runner: &mut Runner<'_>,
    sample: &Sample,
    fields: &[(String, String)],
) {
    let mut form = Form::new().part("file", sample.part());
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    let path = runner.target.upload_path();
    let Some(exchange) = runner.post_form("synchronous upload", &path, form).await else {
        return;
    };
    if (400..500).contains(&exchange.status) {
        return;
    }
    let accepted = exchange.status == 200 && exchange.json.is_some();
    runner
        .findings
        .expect(check::POSITIVE_DATA_ACCEPTANCE, accepted, || {
            format!("{}: expected 200 with the media", exchange.line())
        });
    if accepted {
        let media = exchange.json.clone().unwrap_or_default();
        crate::check::lifecycle::judge_media(runner, sample, &media, &exchange.line());
        runner.completed.push((sample.clone(), media));
    }
}

/// OnlyFans' synchronous uploads: the media comes back in the upload's own answer.
pub(crate) async fn sync_upload(runner: &mut Runner<'_>) {
    if runner.target.provider != Provider::OnlyFans {
        return;
    }
    let sample = Sample::jpeg();
    for (purpose, path, kind) in [
        (
            "synchronous upload to the CDN",
            runner.target.upload_path(),
            "upload_sync_cdn",
        ),
        (
            "synchronous upload to the vault",
            format!("/api/{}/media/vault", runner.target.account),
            "upload_sync_vault",
        ),
    ] {
        let form = Form::new().part(
            "file",
            reqwest::multipart::Part::stream(sample.bytes.clone())
                .file_name(sample.file_name.clone()),
        );
        let Some(exchange) = runner.post_form(purpose, &path, form).await else {
            continue;
        };
        let accepted = (200..300).contains(&exchange.status) && exchange.json.is_some();
        runner
            .findings
            .expect(check::POSITIVE_DATA_ACCEPTANCE, accepted, || {
                format!("{}: expected a 2xx with the media", exchange.line())
            });
        if !accepted {
            continue;
        }
        runner.keep_sample(kind, &exchange);
        let body = exchange.json.clone().unwrap_or_default();
        let media = if kind == "upload_sync_vault" {
            body["data"].clone()
        } else {
            body
        };
        // A vault upload answers before the file is ready (`isReady: false`, no URL yet), so only
        // the CDN upload's media is complete enough to judge here.
        if kind == "upload_sync_cdn" {
            crate::check::lifecycle::judge_media(runner, &sample, &media, &exchange.line());
            runner.completed.push((sample.clone(), media));
        }
    }
}
