//! Record and replay over real HTTP between separate processes: a `mock-server` plays the live
//! API (its scenarios make it rate-limited, failing, failing then succeeding), a second one
//! records through `--proxy ... --record`, a third replays the cassettes with `--recordings`.
//! Every clock is manual: the test moves the live and recording clocks together, as time passes
//! for both in a real recording.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::{Running, binary, start_binary};

const FANSLY_KEY: &str = "sk-live-fansly-3f9a1c";
const ONLYFANS_KEY: &str = "of-live-key-77b2e0";
const SECRET_ACCOUNT: &str = "acct-private-5521";

fn manual(command: &mut std::process::Command) {
    command.env("MOCK_LOG", "warn");
    command.args(["--clock", "manual", "--clock-start", "1770000000"]);
}

/// A mock playing the live API on a manual clock, and a recording proxy in front of it for both
/// providers (`--record recordings`, then `extra`), as separate processes.
fn live_and_recorder(recordings: &Path, extra: &[&str]) -> (Running, Running) {
    let mut live = binary();
    manual(&mut live);
    let (live, _banner) = start_binary(live);
    let mut recorder = binary();
    manual(&mut recorder);
    recorder
        .arg("--proxy")
        .arg(format!("fansly={}", live.base))
        .arg("--proxy")
        .arg(format!("onlyfans={}", live.base))
        .arg("--record")
        .arg(recordings)
        .args(extra);
    let (recorder, _banner) = start_binary(recorder);
    (live, recorder)
}

async fn advance(client: &reqwest::Client, base: &str, session: Option<&str>, by_ms: u64) {
    let mut request = client
        .post(format!("{base}/__admin/clock/advance"))
        .json(&serde_json::json!({ "by": format!("{by_ms}ms") }));
    if let Some(session) = session {
        request = request.header("x-mock-session", session);
    }
    let answer = request.send().await.unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
}

/// What a client saw at one poll: status, Retry-After, state, progress, error text.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    status: u16,
    retry_after: Option<String>,
    state: Option<String>,
    progress: Option<u64>,
    error: Option<String>,
}

fn seen_of(provider: &str, status: u16, retry_after: Option<String>, body: &Value) -> Seen {
    let (state, progress, error) = if (200..300).contains(&status) {
        match provider {
            "fansly" => (
                body.pointer("/data/state").and_then(Value::as_str),
                body.pointer("/data/progress").and_then(Value::as_u64),
                body.pointer("/data/failedReason").and_then(Value::as_str),
            ),
            _ => (
                body.get("status").and_then(Value::as_str),
                None,
                body.get("error").and_then(Value::as_str),
            ),
        }
    } else {
        (None, None, None)
    };
    Seen {
        status,
        retry_after,
        state: state.map(str::to_owned),
        progress,
        error: error.map(str::to_owned),
    }
}

struct Upload<'a> {
    provider: &'a str,
    scenario: &'a str,
    file: &'a str,
    asynchronous: bool,
}

/// Uploads through `base` and polls the job until it is terminal (at most 40 polls), moving every
/// clock in `clocks` by `step_ms` before each poll. Returns the upload answer, what each poll
/// saw, and every CDN link signature the client was handed.
async fn run_job(
    client: &reqwest::Client,
    base: &str,
    clocks: &[(&str, Option<&str>)],
    session: Option<&str>,
    upload: &Upload<'_>,
    step_ms: &[u64],
) -> (Value, Vec<Seen>, BTreeSet<(String, String)>) {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/media")
            .join(upload.file),
    )
    .unwrap();
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(upload.file.to_owned()),
    );
    let (path, auth) = match upload.provider {
        "fansly" => (
            format!("/api/fansly/{SECRET_ACCOUNT}/media/upload"),
            ("x-api-key", FANSLY_KEY.to_owned()),
        ),
        _ => {
            form = form.text("async", upload.asynchronous.to_string());
            (
                format!("/api/{SECRET_ACCOUNT}/media/upload"),
                ("authorization", format!("Bearer {ONLYFANS_KEY}")),
            )
        }
    };
    let mut request = client
        .post(format!("{base}{path}"))
        .header(auth.0, &auth.1)
        .header("x-mock-scenario", upload.scenario)
        .multipart(form);
    if let Some(session) = session {
        request = request.header("x-mock-session", session);
    }
    let answer = request.send().await.unwrap();
    assert!(answer.status().is_success(), "upload: {}", answer.status());
    let uploaded: Value = answer.json().await.unwrap();
    let mut signatures = BTreeSet::new();
    collect_signatures(&uploaded, &mut signatures);
    let status_url = match upload.provider {
        "fansly" => format!(
            "{base}/api/fansly/media/upload/{}/status",
            uploaded["data"]["jobId"].as_str().unwrap()
        ),
        _ if upload.asynchronous => uploaded["polling_url"].as_str().unwrap().to_owned(),
        _ => return (uploaded, Vec::new(), signatures),
    };
    let mut seen = Vec::new();
    for poll_idx in 0..40 {
        let by = step_ms[poll_idx.min(step_ms.len() - 1)];
        for (clock_base, clock_session) in clocks {
            advance(client, clock_base, *clock_session, by).await;
        }
        let mut request = client.get(&status_url).header(auth.0, &auth.1);
        if let Some(session) = session {
            request = request.header("x-mock-session", session);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let retry_after = answer
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap().to_owned());
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        collect_signatures(&body, &mut signatures);
        let poll = seen_of(upload.provider, status, retry_after, &body);
        let is_terminal = matches!(poll.state.as_deref(), Some("completed" | "failed"));
        seen.push(poll);
        if is_terminal {
            break;
        }
    }
    (uploaded, seen, signatures)
}

/// Query parameters of the mock's links that carry a signature or a credential: CloudFront's
/// (Fansly's links, OnlyFans's CDN files) and S3's (OnlyFans's `sourceUrl`).
const SIGNED: [&str; 5] = [
    "Signature",
    "Policy",
    "Key-Pair-Id",
    "X-Amz-Signature",
    "X-Amz-Credential",
];

/// The values of the [`SIGNED`] parameters in every link of `body`, each as the link writes it
/// (percent-encoded: S3's credential has `%2F`s) and decoded, since a file could hold either.
fn collect_signatures(body: &Value, found: &mut BTreeSet<(String, String)>) {
    match body {
        Value::String(text) if text.contains('?') => {
            let query = text.split_once('?').unwrap().1;
            for pair in query.split('&') {
                let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
                if SIGNED.contains(&name) {
                    let decoded = form_urlencoded::parse(pair.as_bytes())
                        .next()
                        .map(|(_, value)| value.into_owned())
                        .unwrap_or_default();
                    found.insert((name.to_owned(), raw.to_owned()));
                    found.insert((name.to_owned(), decoded));
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_signatures(item, found)),
        Value::Object(map) => map
            .values()
            .for_each(|item| collect_signatures(item, found)),
        _ => {}
    }
}

fn cassette(dir: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
        .unwrap()
}

/// What the cassette says each poll saw.
fn recorded(cassette: &Value) -> Vec<(u64, Seen)> {
    let provider = cassette["provider"].as_str().unwrap();
    cassette["polls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|poll| {
            let answer = &poll["answer"];
            let retry_after = answer["headers"]["retry-after"].as_str().map(str::to_owned);
            let status = u16::try_from(answer["status"].as_u64().unwrap()).unwrap();
            (
                poll["elapsed_ms"].as_u64().unwrap(),
                seen_of(provider, status, retry_after, &answer["body"]),
            )
        })
        .collect()
}

#[tokio::test]
async fn record_through_a_proxy_then_replay_the_same_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    let (live, recorder) = live_and_recorder(&recordings, &["--redact", SECRET_ACCOUNT]);
    let client = reqwest::Client::new();
    let both: [(&str, Option<&str>); 2] = [(&live.base, None), (&recorder.base, None)];

    let jobs = [
        Upload {
            provider: "fansly",
            scenario: "rate-limited",
            file: "sample.jpg",
            asynchronous: true,
        },
        Upload {
            provider: "fansly",
            scenario: "fail-while-processing",
            file: "sample.png",
            asynchronous: true,
        },
        Upload {
            provider: "onlyfans",
            scenario: "fail-then-succeed-on-retry",
            file: "sample.jpg",
            asynchronous: true,
        },
        Upload {
            provider: "onlyfans",
            scenario: "fail-then-succeed-on-retry",
            file: "sample.gif",
            asynchronous: true,
        },
        Upload {
            provider: "onlyfans",
            scenario: "happy",
            file: "sample.png",
            asynchronous: false,
        },
    ];
    let mut live_seen = Vec::new();
    let mut signatures = BTreeSet::new();
    for job in &jobs {
        let (_, seen, job_signatures) =
            run_job(&client, &recorder.base, &both, None, job, &[400, 300, 500]).await;
        signatures.extend(job_signatures);
        live_seen.push(seen);
    }
    drop(recorder);

    // One cassette per job, named in order, holding what the client saw at every poll.
    let names = [
        "fansly-001",
        "fansly-002",
        "onlyfans-003",
        "onlyfans-004",
        "onlyfans-005",
    ];
    for (name, seen) in names.iter().zip(&live_seen) {
        let recorded: Vec<Seen> = recorded(&cassette(&recordings, name))
            .into_iter()
            .map(|(_, seen)| seen)
            .collect();
        assert_eq!(&recorded, seen, "{name}");
    }
    let rate_limited = &live_seen[0];
    assert_eq!(
        rate_limited
            .iter()
            .map(|seen| (seen.status, seen.retry_after.as_deref()))
            .take(3)
            .collect::<Vec<_>>(),
        [(200, None), (429, Some("2")), (429, Some("2"))]
    );
    assert_eq!(
        live_seen[1].last().unwrap().error.as_deref(),
        Some("Media processing failed: the file could not be transcoded.")
    );
    assert_eq!(
        live_seen[2].last().unwrap().state.as_deref(),
        Some("failed")
    );
    assert_eq!(
        live_seen[3].last().unwrap().state.as_deref(),
        Some("completed")
    );

    let first = cassette(&recordings, "fansly-001");
    assert_eq!(first["format"], "upload-mock-cassette/1");
    assert_eq!(first["upload"]["request"]["parts"][0]["name"], "file");
    assert_eq!(
        first["upload"]["request"]["parts"][0]["detected_type"],
        "image/jpeg"
    );
    assert_eq!(first["upload"]["request"]["parts"][0]["size"], 22906);
    assert_eq!(first["upload"]["answer"]["status"], 201);
    let links = first["links"].as_array().unwrap();
    assert!(!links.is_empty(), "a completed job's links were checked");
    assert!(links.iter().all(|link| link["status"] == 200), "{links:?}");
    let sync = cassette(&recordings, "onlyfans-005");
    assert!(sync["polls"].as_array().unwrap().is_empty());
    assert!(!sync["links"].as_array().unwrap().is_empty());

    // The cassettes validate against the documented schema.
    let schema: Value = serde_json::from_str(include_str!(
        "../../../fixtures/cassettes/cassette.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    for name in names {
        let document = cassette(&recordings, name);
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|err| err.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }

    // Redaction: no key, listed value or link signature in any file under the directory.
    // Both kinds of link were handed out, so both kinds are looked for below.
    for kind in ["Signature", "X-Amz-Signature", "X-Amz-Credential"] {
        assert!(
            signatures.iter().any(|(name, _)| name == kind),
            "no link carried {kind}"
        );
    }
    let mut secrets: Vec<String> = vec![
        FANSLY_KEY.to_owned(),
        ONLYFANS_KEY.to_owned(),
        SECRET_ACCOUNT.to_owned(),
    ];
    secrets.extend(signatures.into_iter().map(|(_, value)| value));
    let mut n_files = 0;
    for entry in std::fs::read_dir(&recordings).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        n_files += 1;
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{} holds {secret:?}",
                path.display()
            );
        }
    }
    assert_eq!(n_files, names.len());

    // Replay: a third mock plays each cassette at the recorded times and poll numbers.
    let state = dir.path().join("replayer-state");
    let replayer_command = || {
        let mut replayer = binary();
        manual(&mut replayer);
        replayer
            .arg("--recordings")
            .arg(&recordings)
            .arg("--state-dir")
            .arg(&state);
        replayer
    };
    let (replayer, _banner) = start_binary(replayer_command());
    let listed: Value = client
        .get(format!("{}/__admin/scenarios", replayer.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for name in &names {
        assert!(
            listed["scenarios"]
                .as_array()
                .unwrap()
                .iter()
                .any(|scenario| scenario["name"] == *name),
            "{name} is not listed in /__admin/scenarios: {listed}"
        );
    }
    for ((name, job), seen) in names.iter().zip(&jobs).zip(&live_seen) {
        if seen.is_empty() {
            continue;
        }
        let cassette = cassette(&recordings, name);
        let mut steps = Vec::new();
        let mut previous = 0;
        for (elapsed, _) in recorded(&cassette) {
            steps.push(elapsed - previous);
            previous = elapsed;
        }
        let replay = Upload {
            scenario: name,
            ..*job
        };
        let (_, replayed, _) = run_job(
            &client,
            &replayer.base,
            &[(&replayer.base, Some(name))],
            Some(name),
            &replay,
            &steps,
        )
        .await;
        assert_eq!(&replayed, seen, "replay of {name}");
    }
    // A replaying job keeps its cassette across a restart (killed, then started on its state).
    let scenarios_of = |jobs: &Value| -> BTreeSet<String> {
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["scenario"].as_str().unwrap().to_owned())
            .collect()
    };
    let jobs_url = format!("{}/__admin/jobs", replayer.base);
    let before: Value = client
        .get(&jobs_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(replayer);
    let (replayer, _banner) = start_binary(replayer_command());
    let after: Value = client
        .get(format!("{}/__admin/jobs", replayer.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!scenarios_of(&before).is_empty());
    assert_eq!(scenarios_of(&after), scenarios_of(&before), "{after}");
    drop(replayer);
    drop::<Running>(live);
}

#[tokio::test]
async fn record_media_keeps_the_uploaded_bytes_beside_the_cassette() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    let (live, recorder) = live_and_recorder(&recordings, &["--record-media"]);
    let client = reqwest::Client::new();
    let job = Upload {
        provider: "onlyfans",
        scenario: "happy",
        file: "sample.png",
        asynchronous: false,
    };
    let both: [(&str, Option<&str>); 2] = [(&live.base, None), (&recorder.base, None)];
    run_job(&client, &recorder.base, &both, None, &job, &[400]).await;
    drop(recorder);

    let recorded = cassette(&recordings, "onlyfans-001");
    let request = &recorded["upload"]["request"];
    assert_eq!(
        request["parts"][0]["detected_type"], "image/png",
        "{request}"
    );
    let media = request["media"].as_str().expect("the bytes are named");
    assert_eq!(
        std::fs::read(recordings.join(media)).unwrap(),
        crate::support::sample("sample.png"),
        "the recorded bytes are the upload's"
    );
}
