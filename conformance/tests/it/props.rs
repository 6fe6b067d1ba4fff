//! Properties: generated files, file names and form fields go through upload → poll → links with
//! every answer meeting the spec; and the job lifecycle matches a reference model over generated
//! timelines and operation sequences (`proptest-state-machine`).
//!
//! With `CONFORMANCE_BASE_URL` (and `CONFORMANCE_PROVIDER`, `CONFORMANCE_API_KEY`,
//! `CONFORMANCE_ACCOUNT`) the upload property runs against that target instead, with
//! `CONFORMANCE_CASES` cases (default 3, to spare credits).

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use conformance::{Options, Outcome, Sample, Target};
use mock_server::clock::Clock;
use mock_server::scenario::Scenario;
use mock_server::{MockServer, Provider};
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::Value;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

fn media(name: &str) -> Bytes {
    std::fs::read(format!(
        "{}/../fixtures/media/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .into()
}

/// File contents: empty, tiny, large, each sample format, and random bytes; with a MIME type.
fn contents() -> impl Strategy<Value = (Bytes, &'static str, &'static str)> {
    prop_oneof![
        Just((Bytes::new(), "application/octet-stream", "bin")),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(|bytes| (
            Bytes::from(bytes),
            "application/octet-stream",
            "bin"
        )),
        proptest::collection::vec(any::<u8>(), 64..4096).prop_map(|bytes| (
            Bytes::from(bytes),
            "application/octet-stream",
            "bin"
        )),
        (
            proptest::collection::vec(any::<u8>(), 256..1024),
            1000usize..3000
        )
            .prop_map(|(pattern, repeat)| (
                Bytes::from(pattern.repeat(repeat)),
                "video/mp4",
                "mp4"
            )),
        Just((media("sample.jpg"), "image/jpeg", "jpg")),
        Just((media("sample.png"), "image/png", "png")),
        Just((media("sample.gif"), "image/gif", "gif")),
        Just((media("sample.mp4"), "video/mp4", "mp4")),
    ]
}

/// File names people and attackers send.
fn file_stem() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("photo".to_owned()),
        Just("фото 📷 ünïcødé".to_owned()),
        Just("with  spaces\tand tabs".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("..\\..\\boot.ini".to_owned()),
        Just("dir/sub/name".to_owned()),
        "[a-zA-Z0-9 _.-]{200,300}",
        "\\PC{1,40}",
    ]
}

/// Provider-specific form fields.
fn fields(provider: Provider) -> BoxedStrategy<Vec<(String, String)>> {
    match provider {
        Provider::Fansly => prop_oneof![
            Just(Vec::new()),
            Just(vec![("formInputs".to_owned(), "[]".to_owned())]),
        ]
        .boxed(),
        Provider::OnlyFans => (
            prop_oneof![Just("true"), Just("false")],
            prop_oneof![Just("default"), Just("avatar"), Just("header")],
        )
            .prop_map(|(asynchronous, kind)| {
                vec![
                    ("async".to_owned(), asynchronous.to_owned()),
                    ("type".to_owned(), kind.to_owned()),
                ]
            })
            .boxed(),
    }
}

fn provider() -> impl Strategy<Value = Provider> {
    prop_oneof![Just(Provider::Fansly), Just(Provider::OnlyFans)]
}

fn upload_case() -> impl Strategy<Value = (Provider, Sample, Vec<(String, String)>)> {
    (provider(), contents(), file_stem()).prop_flat_map(|(provider, (bytes, mime, ext), stem)| {
        let sample = Sample {
            file_name: format!("{stem}.{ext}"),
            mime: mime.to_owned(),
            bytes,
        };
        fields(provider).prop_map(move |fields| (provider, sample.clone(), fields))
    })
}

fn live_target() -> Option<Target> {
    let provider = match std::env::var("CONFORMANCE_PROVIDER").ok()?.as_str() {
        "fansly" => Provider::Fansly,
        "onlyfans" => Provider::OnlyFans,
        _ => return None,
    };
    Some(Target::live(
        std::env::var("CONFORMANCE_BASE_URL").ok()?,
        provider,
        std::env::var("CONFORMANCE_API_KEY").ok()?,
        std::env::var("CONFORMANCE_ACCOUNT").ok()?,
    ))
}

#[test]
fn any_upload_ends_well_formed_and_completed_media_serves_the_exact_bytes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let live = live_target();
    let server = runtime.block_on(async {
        MockServer::builder()
            .clock(Clock::manual(
                UNIX_EPOCH + Duration::from_secs(1_770_230_101),
            ))
            .start()
            .await
            .unwrap()
    });
    let n_cases = match &live {
        Some(_) => std::env::var("CONFORMANCE_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(3),
        None => cases(24),
    };
    // `Config::default()` keeps shrunk failures in `proptest-regressions/` beside the tests.
    let mut runner = proptest::test_runner::TestRunner::new(Config {
        cases: n_cases,
        source_file: Some(file!()),
        ..Config::default()
    });
    runner
        .run(&upload_case(), |(provider, sample, fields)| {
            let target = match &live {
                Some(live) if live.provider != provider => return Ok(()),
                Some(live) => live.clone(),
                None => Target::mock(server.base_url(), provider),
            };
            let results = runtime
                .block_on(conformance::check_upload(
                    &target,
                    &Options::default(),
                    &sample,
                    &fields,
                ))
                .unwrap();
            let failures: Vec<String> = results
                .iter()
                .filter_map(|result| match &result.outcome {
                    Outcome::Failed { failures } => Some(format!("{}: {failures:?}", result.name)),
                    _ => None,
                })
                .collect();
            prop_assert!(
                failures.is_empty(),
                "{} bytes as {:?} with {:?}: {failures:#?}",
                sample.bytes.len(),
                sample.file_name,
                fields
            );
            Ok(())
        })
        .unwrap();
}

/// The reference model: one timeline for every upload, and when each job was uploaded.
#[derive(Debug, Clone)]
struct Model {
    queued_ms: u64,
    processing_ms: u64,
    steps: u8,
    fails: bool,
    now_ms: u64,
    jobs: Vec<u64>,
}

#[derive(Debug, Clone)]
enum Op {
    Upload,
    Advance(u64),
    Poll(usize),
    FetchLink(usize),
}

impl Model {
    /// What the provider should answer for job `idx` now: state name and progress.
    fn expected(&self, idx: usize) -> (&'static str, u64) {
        let elapsed = Duration::from_millis(self.now_ms - self.jobs[idx]);
        let queued = Duration::from_millis(self.queued_ms);
        if elapsed < queued {
            return ("waiting", 0);
        }
        let processing = Duration::from_millis(self.processing_ms);
        let step_progress = |step: u8| u64::from(step * (100 / self.steps));
        for step in 0..self.steps {
            let ends = queued + processing.mul_f64(f64::from(step + 1) / f64::from(self.steps));
            if elapsed < ends {
                return ("active", step_progress(step));
            }
        }
        if self.fails {
            ("failed", step_progress(self.steps - 1))
        } else {
            ("completed", 100)
        }
    }
}

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        (0u64..3000, 1u64..1000, 1u8..5, any::<bool>())
            .prop_map(|(queued_ms, per_step_ms, steps, fails)| Model {
                queued_ms,
                processing_ms: per_step_ms * u64::from(steps),
                steps,
                fails,
                now_ms: 0,
                jobs: Vec::new(),
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        if state.jobs.is_empty() {
            return prop_oneof![Just(Op::Upload), (0u64..2000).prop_map(Op::Advance)].boxed();
        }
        let n_jobs = state.jobs.len();
        prop_oneof![
            1 => Just(Op::Upload),
            3 => (0u64..2000).prop_map(Op::Advance),
            4 => (0..n_jobs).prop_map(Op::Poll),
            1 => (0..n_jobs).prop_map(Op::FetchLink),
        ]
        .boxed()
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        match op {
            Op::Upload => state.jobs.push(state.now_ms),
            Op::Advance(ms) => state.now_ms += ms,
            Op::Poll(_) | Op::FetchLink(_) => {}
        }
        state
    }

    fn preconditions(state: &Model, op: &Op) -> bool {
        match op {
            Op::Poll(idx) | Op::FetchLink(idx) => *idx < state.jobs.len(),
            Op::Upload | Op::Advance(_) => true,
        }
    }
}

/// The mock over real HTTP, on its own runtime.
struct Harness {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
    client: reqwest::Client,
    jobs: Vec<String>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("jobs", &self.jobs).finish()
    }
}

impl Harness {
    fn status(&self, job_id: &str) -> Value {
        let url = format!(
            "{}/api/fansly/media/upload/{job_id}/status",
            self.server.base_url()
        );
        self.runtime.block_on(async {
            let response = self
                .client
                .get(url)
                .header("x-api-key", "k")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json().await.unwrap()
        })
    }
}

struct Lifecycle;

impl StateMachineTest for Lifecycle {
    type SystemUnderTest = Harness;
    type Reference = Model;

    fn init_test(model: &Model) -> Harness {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = if model.fails {
            "{ failed: \"generated failure\" }".to_owned()
        } else {
            "completed".to_owned()
        };
        let yaml = format!(
            "description: generated\ntimeline:\n  queued: {}ms\n  processing: {}ms\n  progress_steps: {}\n  outcome: {outcome}\n",
            model.queued_ms, model.processing_ms, model.steps
        );
        let scenario =
            Scenario::parse("generated", &yaml, std::path::Path::new("generated.yaml")).unwrap();
        let server = runtime.block_on(async {
            MockServer::builder()
                .clock(Clock::manual(
                    UNIX_EPOCH + Duration::from_secs(1_770_230_101),
                ))
                .scenario(std::sync::Arc::new(scenario))
                .start()
                .await
                .unwrap()
        });
        Harness {
            runtime,
            server,
            client: reqwest::Client::new(),
            jobs: Vec::new(),
        }
    }

    fn apply(mut harness: Harness, model: &Model, op: Op) -> Harness {
        match op {
            Op::Upload => {
                let url = format!("{}/api/fansly/acct/media/upload", harness.server.base_url());
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(media("sample.jpg").to_vec())
                        .file_name("sample.jpg"),
                );
                let body: Value = harness.runtime.block_on(async {
                    let response = harness
                        .client
                        .post(url)
                        .header("x-api-key", "k")
                        .multipart(form)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201);
                    response.json().await.unwrap()
                });
                harness
                    .jobs
                    .push(body["data"]["jobId"].as_str().unwrap().to_owned());
            }
            Op::Advance(ms) => {
                harness
                    .server
                    .clock()
                    .advance(Duration::from_millis(ms))
                    .unwrap();
            }
            Op::Poll(idx) => {
                let body = harness.status(&harness.jobs[idx]);
                let (state, progress) = model.expected(idx);
                assert_eq!(
                    (
                        body["data"]["state"].as_str(),
                        body["data"]["progress"].as_u64()
                    ),
                    (Some(state), Some(progress)),
                    "job {idx} at {} ms after upload, model {model:?}",
                    model.now_ms - model.jobs[idx]
                );
                if state == "failed" {
                    assert_eq!(body["data"]["failedReason"], "generated failure");
                }
            }
            Op::FetchLink(idx) => {
                let body = harness.status(&harness.jobs[idx]);
                let link = body
                    .pointer("/data/result/accountMedia/0/media/locations/0/location")
                    .and_then(Value::as_str);
                match (model.expected(idx).0, link) {
                    ("completed", Some(link)) => {
                        let bytes = harness.runtime.block_on(async {
                            let response = harness.client.get(link).send().await.unwrap();
                            assert_eq!(response.status(), 200, "{link}");
                            response.bytes().await.unwrap()
                        });
                        assert_eq!(bytes, media("sample.jpg"));
                    }
                    ("completed", None) => panic!("completed without a link: {body}"),
                    (_, link) => assert!(link.is_none(), "a link before completion: {body}"),
                }
            }
        }
        harness
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: cases(32),
        ..Config::default()
    })]

    #[test]
    fn the_job_lifecycle_matches_the_reference_model(sequential 1..30 => Lifecycle);
}
