//! `--state-dir`: a restarted mock answers every earlier job and serves every earlier link with
//! the same bytes, and a process killed at any moment loses at most the request in flight.

use std::process::{Command, Stdio};
use std::time::Duration;

use mock_server::MockServer;
use reqwest::multipart::Form;
use serde_json::Value;

use crate::support::{Running, TestServer, binary, file_part, sample, spawn_with, start_binary};

async fn start(dir: &std::path::Path) -> TestServer {
    spawn_with(MockServer::builder().state_dir(dir)).await
}

async fn status(server: &TestServer, path: &str, auth: (&str, &str)) -> (u16, Value) {
    let response = server
        .http
        .get(server.url(path))
        .header(auth.0, auth.1)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn fetch(http: &reqwest::Client, url: &str) -> (u16, Vec<u8>) {
    let response = http.get(url).send().await.unwrap();
    (
        response.status().as_u16(),
        response.bytes().await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn a_restarted_mock_answers_earlier_jobs_and_serves_earlier_links() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = sample("sample.jpg");
    let (fansly_before, onlyfans_before, link, fansly_waiting, old_base);
    {
        let server = start(dir.path()).await;
        let form = Form::new().part("file", file_part(jpeg.clone(), "a.jpg", "image/jpeg"));
        server.fansly_upload("acct", form).await;
        let form = Form::new()
            .text("async", "true")
            .part("file", file_part(jpeg.clone(), "b.jpg", "image/jpeg"));
        let accepted = server.onlyfans_upload("acct_1", "upload", form).await;
        let upload_id = accepted.body["prefixed_id"].as_str().unwrap().to_owned();
        let form = Form::new().part("file", file_part(jpeg.clone(), "c.jpg", "image/jpeg"));
        server.fansly_upload("acct", form).await;
        fansly_waiting = status(
            &server,
            "/api/fansly/media/upload/2/status",
            ("x-api-key", "k"),
        )
        .await;
        server.advance(Duration::from_secs(10)).await;
        fansly_before = status(
            &server,
            "/api/fansly/media/upload/1/status",
            ("x-api-key", "k"),
        )
        .await;
        onlyfans_before = status(
            &server,
            &format!("/api/acct_1/media/uploads/{upload_id}/status"),
            ("authorization", "Bearer k"),
        )
        .await;
        link = fansly_before
            .1
            .pointer("/data/result/accountMedia/0/media/locations/0/location")
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        assert_eq!(fetch(&server.http, &link).await, (200, jpeg.clone()));
        old_base = server.base.clone();
        server.server.shutdown().await;
    }

    let server = start(dir.path()).await;
    let link = link.replace(&old_base, &server.base);
    assert_eq!(
        status(
            &server,
            "/api/fansly/media/upload/1/status",
            ("x-api-key", "k")
        )
        .await,
        (
            fansly_before.0,
            serde_json::from_str(&fansly_before.1.to_string().replace(&old_base, &server.base))
                .unwrap()
        ),
        "the completed Fansly job is answered as before"
    );
    let upload_id = onlyfans_before.1["prefixed_id"].as_str().unwrap();
    let (code, body) = status(
        &server,
        &format!("/api/acct_1/media/uploads/{upload_id}/status"),
        ("authorization", "Bearer k"),
    )
    .await;
    assert_eq!((code, body["status"].clone()), (200, "completed".into()));
    assert_eq!(
        fetch(&server.http, &link).await,
        (200, jpeg.clone()),
        "the old link serves the same bytes"
    );
    // The clock came back where it was: job 2 (waiting before the advance) is now complete.
    assert_eq!(fansly_waiting.1["data"]["state"], "waiting");
    let (_, job2) = status(
        &server,
        "/api/fansly/media/upload/2/status",
        ("x-api-key", "k"),
    )
    .await;
    assert_eq!(job2["data"]["state"], "completed");
    // New uploads continue the numbering.
    let form = Form::new().part("file", file_part(jpeg.clone(), "d.jpg", "image/jpeg"));
    let reply = server.fansly_upload("acct", form).await;
    assert_eq!(reply.body["data"]["jobId"], "3");
}

/// The binary on a free port with a state directory, killed (SIGKILL) when dropped.
fn run_binary(dir: &std::path::Path) -> Running {
    let mut command = binary();
    command
        .args(["--clock", "manual"])
        .args(["--queue-time", "0s", "--processing-time", "0s"])
        .arg("--state-dir")
        .arg(dir)
        .env("MOCK_LOG", "warn")
        .stderr(Stdio::null());
    start_binary(command).0
}

/// A small deterministic generator: the kill moments and sizes vary per iteration, and a failure
/// replays.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Every acknowledged upload is answered as completed and its link serves exactly its bytes.
async fn verify(http: &reqwest::Client, base: &str, acknowledged: &[(String, Vec<u8>)]) -> usize {
    let mut corrupted = 0;
    for (job_id, bytes) in acknowledged {
        let body: Value = http
            .get(format!("{base}/api/fansly/media/upload/{job_id}/status"))
            .header("x-api-key", "k")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["data"]["state"], "completed",
            "job {job_id} lost: {body}"
        );
        let link = body
            .pointer("/data/result/accountMedia/0/media/locations/0/location")
            .and_then(Value::as_str)
            .unwrap();
        assert!(link.starts_with(base), "{link} is not on {base}");
        let (code, served) = fetch(http, link).await;
        assert_eq!(code, 200, "job {job_id}: {link}");
        if served != *bytes {
            corrupted += 1;
        }
    }
    corrupted
}

#[tokio::test]
async fn a_mock_killed_at_random_moments_loses_no_acknowledged_upload() {
    // `KILL_LOOP_ITERATIONS=200` for a long run (RELIABILITY.md); 12 keeps CI quick.
    let iterations: u64 = std::env::var("KILL_LOOP_ITERATIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(12);
    const UPLOADS_AT_ONCE: u64 = 6;
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let samples = [
        sample("sample.jpg"),
        sample("sample.png"),
        sample("sample.gif"),
    ];
    let mut random = Lcg(0x5eed);
    let mut acknowledged: Vec<(String, Vec<u8>)> = Vec::new();
    let mut in_flight_lost = 0;
    for _ in 0..iterations {
        let running = run_binary(dir.path());
        assert_eq!(
            verify(&http, &running.base, &acknowledged).await,
            0,
            "corrupted bytes"
        );
        let kill_after = random.below(UPLOADS_AT_ONCE);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for upload_idx in 0..UPLOADS_AT_ONCE {
            let mut bytes = samples[usize::try_from(random.below(3)).unwrap()].clone();
            let extra = usize::try_from(random.below(512 * 1024)).unwrap();
            bytes.extend((0..extra).map(|idx| (idx as u64 ^ random.0) as u8));
            let (http, base, tx) = (http.clone(), running.base.clone(), tx.clone());
            tokio::spawn(async move {
                let form =
                    Form::new().part("file", file_part(bytes.clone(), "k.jpg", "image/jpeg"));
                let reply = http
                    .post(format!("{base}/api/fansly/acct/media/upload"))
                    .header("x-api-key", "k")
                    .multipart(form)
                    .send()
                    .await;
                let job = match reply {
                    Ok(reply) if reply.status() == 201 => reply
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|body| body["data"]["jobId"].as_str().map(str::to_owned)),
                    _ => None,
                };
                let _ = tx.send((upload_idx, job, bytes));
            });
        }
        drop(tx);
        let mut running = Some(running);
        let mut n_answered = 0;
        while let Some((_, job, bytes)) = rx.recv().await {
            match job {
                // A 201 read after the kill was written before it: acknowledged all the same, and
                // the likeliest to be lost, so it is checked like every other.
                Some(job) => {
                    acknowledged.push((job, bytes));
                    n_answered += 1;
                }
                None => in_flight_lost += 1,
            }
            if n_answered > kill_after {
                // SIGKILL, with the other uploads still streaming in.
                running = None;
            }
        }
        drop(running);
    }
    let running = run_binary(dir.path());
    assert_eq!(
        verify(&http, &running.base, &acknowledged).await,
        0,
        "corrupted bytes"
    );
    let jobs: Value = http
        .get(format!("{}/__admin/jobs", running.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n_jobs = jobs["jobs"].as_array().unwrap().len();
    let n_files = std::fs::read_dir(dir.path().join("media")).unwrap().count();
    assert!(
        n_jobs >= acknowledged.len(),
        "{n_jobs} jobs for {} acknowledged uploads",
        acknowledged.len()
    );
    assert_eq!(n_files, n_jobs, "no half-written or orphaned file is kept");
    eprintln!(
        "kill loop: {iterations} kills, {} uploads acknowledged and intact, {in_flight_lost} in flight at a kill, {n_jobs} jobs restored, 0 lost, 0 corrupted",
        acknowledged.len()
    );
}

#[tokio::test]
async fn a_full_storage_quota_answers_507_and_frees_up_when_jobs_go() {
    let jpeg = sample("sample.jpg");
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .max_storage_bytes(jpeg.len() as u64 + 1000),
    )
    .await;
    let upload =
        |name: &'static str| Form::new().part("file", file_part(jpeg.clone(), name, "image/jpeg"));
    assert_eq!(
        server.fansly_upload("acct", upload("a.jpg")).await.status,
        201
    );
    let full = server.fansly_upload("acct", upload("b.jpg")).await;
    assert_eq!(full.status, 507);
    assert_eq!(full.body["statusCode"], 507);
    let response = server
        .http
        .post(server.url("/__admin/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.fansly_upload("acct", upload("c.jpg")).await.status,
        201
    );
}

#[tokio::test]
async fn idle_jobs_expire_and_polled_ones_stay() {
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .idle_expiry(Duration::from_secs(3600)),
    )
    .await;
    let upload = || {
        Form::new().part(
            "file",
            file_part(sample("sample.gif"), "a.gif", "image/gif"),
        )
    };
    server.fansly_upload("acct", upload()).await;
    server.fansly_upload("acct", upload()).await;
    server.advance(Duration::from_secs(3000)).await;
    assert_eq!(server.fansly_status("2").await.status, 200);
    server.advance(Duration::from_secs(1000)).await;
    // Job 1 has been idle for 4000 s, job 2 for 1000 s; the next upload sweeps.
    server.fansly_upload("acct", upload()).await;
    assert_eq!(server.fansly_status("1").await.status, 404);
    assert_eq!(server.fansly_status("2").await.status, 200);
    assert_eq!(server.fansly_status("3").await.status, 200);
}

#[tokio::test]
async fn sigterm_stops_accepting_lets_an_upload_in_flight_finish_and_exits_0() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().unwrap();
    let mut running = run_binary(dir.path());
    let addr = running.base.trim_start_matches("http://").to_owned();
    let gif = sample("sample.gif");
    let mut body =
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\n\r\n"
            .to_vec();
    body.extend_from_slice(&gif);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let head = format!(
        "POST /api/fansly/acct/media/upload HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server asks for the body once it is reading this request: from then on the upload is
    // in flight. (Without this wait a loaded machine could deliver SIGTERM before the server had
    // read the head, and graceful shutdown rightly closes a connection with no request yet.)
    let continue_line = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut interim = vec![0u8; continue_line.len()];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(
        interim,
        continue_line,
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(&body[..body.len() / 2]).await.unwrap();

    let pid = running.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // New connections are refused once the signal is handled (polled, bounded).
    let mut refused = false;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the listener closed after SIGTERM");

    stream.write_all(&body[body.len() / 2..]).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let status = tokio::task::spawn_blocking(move || {
        let status = running.child.wait().unwrap();
        drop(running);
        status
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn media_lost_while_the_mock_was_down_is_reported_and_its_jobs_answer_failed() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let upload = |base: String, name: &'static str, mime: &'static str| {
        let http = http.clone();
        async move {
            let form = Form::new().part("file", file_part(sample(name), name, mime));
            let reply: Value = http
                .post(format!("{base}/api/fansly/acct/media/upload"))
                .header("x-api-key", "k")
                .multipart(form)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            reply["data"]["jobId"].as_str().unwrap().to_owned()
        }
    };
    let poll = |base: String, job: String| {
        let http = http.clone();
        async move {
            let reply = http
                .get(format!("{base}/api/fansly/media/upload/{job}/status"))
                .header("x-api-key", "k")
                .send()
                .await
                .unwrap();
            (
                reply.status().as_u16(),
                reply.json::<Value>().await.unwrap(),
            )
        }
    };
    let jobs = {
        let running = run_binary(dir.path());
        let jobs = [
            upload(running.base.clone(), "sample.jpg", "image/jpeg").await,
            upload(running.base.clone(), "sample.png", "image/png").await,
        ];
        for job in &jobs {
            let (code, body) = poll(running.base.clone(), job.clone()).await;
            assert_eq!(
                (code, body["data"]["state"].as_str()),
                (200, Some("completed"))
            );
        }
        jobs
    };
    // While it is down, one stored file disappears and the other grows.
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("media"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    std::fs::remove_file(&files[0]).unwrap();
    let mut grown = std::fs::read(&files[1]).unwrap();
    grown.extend_from_slice(b"tampered");
    std::fs::write(&files[1], grown).unwrap();

    let log = dir.path().join("restart.log");
    let mut command = binary();
    command
        .args(["--clock", "manual", "--state-dir"])
        .arg(dir.path())
        .env("MOCK_LOG", "warn")
        .stderr(std::fs::File::create(&log).unwrap());
    let (running, _) = start_binary(command);
    let warned = std::fs::read_to_string(&log).unwrap();
    assert!(
        warned.contains("missing_files=1") && warned.contains("altered_files=1"),
        "{warned}"
    );
    for job in &jobs {
        let (code, body) = poll(running.base.clone(), job.clone()).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["data"]["state"], "failed", "{body}");
        assert!(
            body["data"]["failedReason"]
                .as_str()
                .unwrap()
                .contains("no longer available"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn credit_balances_survive_a_restart_without_the_key_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let vault = |server: &TestServer| {
        let form = Form::new().part(
            "file",
            file_part(sample("sample.jpg"), "a.jpg", "image/jpeg"),
        );
        let server_http = server.http.clone();
        let url = server.url("/api/acct_1/media/vault");
        async move {
            let reply: Value = server_http
                .post(url)
                .header("authorization", "Bearer secret-credit-key")
                .multipart(form)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            reply["_meta"]["_credits"]["balance"].as_i64().unwrap()
        }
    };
    let (first, second) = {
        let server = start(dir.path()).await;
        (vault(&server).await, vault(&server).await)
    };
    let charge = first - second;
    assert!(charge > 0, "{first} then {second}");
    let server = start(dir.path()).await;
    assert_eq!(
        vault(&server).await,
        second - charge,
        "the balance goes on from where it was, not from the start"
    );
    let log = std::fs::read_to_string(dir.path().join("state.log")).unwrap();
    assert!(!log.contains("secret-credit-key"), "the key is on disk");
}

/// Every admin view of the state (jobs, sessions with their clocks, scenarios and upload counts,
/// the server clock and default scenario) and the credits charged, before and after a restart.
async fn admin_view(server: &TestServer) -> Value {
    let get = |path: &'static str, session: Option<&'static str>| {
        let mut request = server.http.get(server.url(path));
        if let Some(session) = session {
            request = request.header("x-mock-session", session);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    let mut jobs = get("/__admin/jobs", None).await;
    // What the job list reads from the journal (the faults its requests met, the earlier upload
    // it repeats) goes with the journal: this process's traffic, not state (README, --state-dir).
    for job in jobs["jobs"].as_array_mut().unwrap() {
        let job = job.as_object_mut().unwrap();
        assert!(job.remove("repeat_of").is_some() && job.remove("faults").is_some());
    }
    let view = serde_json::json!({
        "jobs": jobs,
        "sessions": get("/__admin/sessions", None).await,
        "clock": get("/__admin/clock", None).await,
        "qa_clock": get("/__admin/clock", Some("qa")).await,
        "scenarios": get("/__admin/scenarios", None).await,
    });
    serde_json::from_str(&view.to_string().replace(&server.base, "http://MOCK")).unwrap()
}

/// A vault upload's credit balance, which is what an OnlyFans client sees of its charges.
async fn vault_balance(server: &TestServer) -> i64 {
    let form = Form::new().part(
        "file",
        file_part(sample("sample.jpg"), "v.jpg", "image/jpeg"),
    );
    let reply = server.onlyfans_upload("acct_1", "vault", form).await;
    reply.body["_meta"]["_credits"]["balance"].as_i64().unwrap()
}

async fn admin(server: &TestServer, path: &str, session: Option<&str>, body: Value) {
    let mut request = server.http.post(server.url(path)).json(&body);
    if path == "/__admin/scenario" {
        request = server.http.put(server.url(path)).json(&body);
    }
    if let Some(session) = session {
        request = request.header("x-mock-session", session);
    }
    let response = request.send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "{path}: {}",
        response.text().await.unwrap()
    );
}

#[tokio::test]
async fn the_whole_admin_view_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = sample("sample.jpg");
    let upload_in = |server: &TestServer, session: &'static str, name: &'static str| {
        let request = server
            .http
            .post(server.url("/api/fansly/acct/media/upload"))
            .header("x-api-key", "k")
            .header("x-mock-session", session)
            .multipart(Form::new().part("file", file_part(jpeg.clone(), name, "image/jpeg")));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
            let body: Value = response.json().await.unwrap();
            body["data"]["jobId"].as_str().unwrap().to_owned()
        }
    };
    let (before, balance_before);
    {
        let server = start(dir.path()).await;
        // Default session: jobs at every stage, one polled past its end, a vault charge.
        for name in ["a.jpg", "b.jpg", "c.jpg"] {
            upload_in(&server, "default", name).await;
        }
        server.fansly_status("1").await;
        server.advance(Duration::from_secs(3)).await;
        server.fansly_status("1").await;
        server.advance(Duration::from_secs(30)).await;
        server.fansly_status("1").await;
        vault_balance(&server).await;
        // A session of its own: a scenario, its own clock, a forced job and a pinned one.
        admin(
            &server,
            "/__admin/scenario",
            Some("qa"),
            serde_json::json!({"name": "slow"}),
        )
        .await;
        let forced = upload_in(&server, "qa", "d.jpg").await;
        let pinned = upload_in(&server, "qa", "e.jpg").await;
        upload_in(&server, "qa", "f.jpg").await;
        admin(
            &server,
            "/__admin/clock/advance",
            Some("qa"),
            serde_json::json!({"seconds": 7}),
        )
        .await;
        admin(
            &server,
            &format!("/__admin/jobs/fansly/{forced}"),
            Some("qa"),
            serde_json::json!({"outcome": {"failed": "forced by QA"}}),
        )
        .await;
        admin(
            &server,
            &format!("/__admin/jobs/fansly/{pinned}"),
            Some("qa"),
            serde_json::json!({"state": "processing", "progress": 42}),
        )
        .await;
        server.fansly_status_in("qa", &pinned).await;
        // A session that was forgotten stays forgotten.
        upload_in(&server, "gone", "g.jpg").await;
        let response = server
            .http
            .delete(server.url("/__admin/sessions/gone"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // The server-wide default scenario, as the admin API sets it.
        admin(
            &server,
            "/__admin/scenario",
            None,
            serde_json::json!({"name": "flaky-5xx"}),
        )
        .await;
        balance_before = vault_balance(&server).await;
        before = admin_view(&server).await;
        server.server.shutdown().await;
    }
    let server = start(dir.path()).await;
    let after = admin_view(&server).await;
    assert_eq!(
        serde_json::to_string_pretty(&after).unwrap(),
        serde_json::to_string_pretty(&before).unwrap(),
        "the admin view after the restart differs"
    );
    // The view is not empty by accident: it holds what the test did.
    assert_eq!(
        before["jobs"]["jobs"].as_array().unwrap().len(),
        8,
        "{before:#}"
    );
    let sessions = before["sessions"]["sessions"].as_array().unwrap();
    let qa = sessions.iter().find(|s| s["id"] == "qa").unwrap();
    assert_eq!(qa["scenario"], "slow");
    assert_eq!(qa["clock_offset_ms"], 7000);
    assert_eq!(qa["attempts"]["slow"], 3);
    assert!(sessions.iter().all(|s| s["id"] != "gone"), "{sessions:?}");
    let default = before["scenarios"]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|scenario| scenario["is_default"] == true)
        .unwrap();
    assert_eq!(default["name"], "flaky-5xx");
    // Credits go on from where they were (a lost charge would raise the balance again).
    let next = vault_balance(&server).await;
    assert!(next < balance_before, "{next} after {balance_before}");
    // Counters go on too: the next upload in qa is its fourth under its scenario.
    upload_in(&server, "qa", "h.jpg").await;
    let after = admin_view(&server).await;
    let qa = after["sessions"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "qa")
        .unwrap()
        .clone();
    assert_eq!(qa["attempts"]["slow"], 4);
}
