//! The dashboard (`/__admin/ui`) in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, with `fantoccini`) against the mock over real HTTP.
//!
//! Ignored by default, because `cargo test --workspace` must work with only the Rust toolchain;
//! `.ci/run` installs `chromium` and `chromium-driver` and runs it with
//! `cargo test -p mock-server --test it browser -- --ignored`. Run that way without chromedriver,
//! it fails and says what to install. `MOCK_CHROMEDRIVER` and `MOCK_CHROMIUM` name other binaries.
//! Screenshots go to `target/browser/`: `dashboard.png` at the end, `failure.png` when it fails.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use mock_server::MockServer;
use mock_server::spec::{Document, Spec};
use mock_server::webhook::WebhookConfig;
use serde_json::{Value, json};

use crate::support::{TestServer, file_part, sample, spawn_with};

/// The admin token the page is opened with.
const TOKEN: &str = "qa-token-123";

/// Longest wait for the page to show something: a bound against a hang, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(15);

/// A chromedriver child process, killed (by its own handle, so by its PID) when dropped.
struct ChromeDriver {
    child: std::process::Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` found on `PATH`, or the path in `env_var` when set.
fn binary(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

async fn start_chromedriver() -> ChromeDriver {
    let Some(path) = binary("MOCK_CHROMEDRIVER", "chromedriver") else {
        panic!(
            "chromedriver is not installed, and this test needs it: `apt-get install chromium \
             chromium-driver` (what .ci/run does), or set MOCK_CHROMEDRIVER to its path"
        );
    };
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = std::process::Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", path.display()));
    let url = format!("http://127.0.0.1:{port}");
    // Owned from here: an early panic still kills it.
    let driver = ChromeDriver { child, url };
    let url = driver.url.clone();
    let http = reqwest::Client::new();
    let started = mock_server::clock::Stopwatch::start();
    loop {
        let ready = http
            .get(format!("{url}/status"))
            .send()
            .await
            .ok()
            .and_then(|response| response.status().is_success().then_some(()));
        if ready.is_some() {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "chromedriver at {} did not come up on port {port}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
}

/// A fresh Chromium profile in `profile` (the closed network makes a reused one misbehave).
async fn open_browser(driver: &ChromeDriver, profile: &std::path::Path) -> Client {
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--window-size=1280,800".to_owned(),
    ];
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut options = json!({ "args": args });
    if let Some(chromium) = binary("MOCK_CHROMIUM", "chromium") {
        options["binary"] = json!(chromium);
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".to_owned(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|err| panic!("chromedriver could not start Chromium: {err}"))
}

/// Where screenshots go: `target/browser/`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Evaluates `expression` in the page until it is truthy; returns its value.
async fn eventually(browser: &Client, what: &str, expression: &str) -> Value {
    let script = format!("return ({expression});");
    let started = mock_server::clock::Stopwatch::start();
    loop {
        let value = browser.execute(&script, Vec::new()).await.unwrap();
        let is_truthy = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::String(text) => !text.is_empty(),
            Value::Number(number) => number.as_f64() != Some(0.0),
            _ => true,
        };
        if is_truthy {
            return value;
        }
        assert!(started.elapsed() < PATIENCE, "the page never showed {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the element `css` finds, finding it again if a re-render replaced it meanwhile (the
/// page re-renders on every event).
async fn click(browser: &Client, css: &str) {
    let started = mock_server::clock::Stopwatch::start();
    loop {
        let clicked = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.click().await,
            Err(err) => Err(err),
        };
        match clicked {
            Ok(()) => return,
            Err(err) if started.elapsed() > PATIENCE => panic!("cannot click {css}: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Chooses the option `value` of the select `css`, as [`click`] retries.
async fn choose(browser: &Client, css: &str, value: &str) {
    let started = mock_server::clock::Stopwatch::start();
    loop {
        let chosen = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.select_by_value(value).await,
            Err(err) => Err(err),
        };
        match chosen {
            Ok(()) => return,
            Err(err) if started.elapsed() > PATIENCE => {
                panic!("cannot choose {value} in {css}: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn upload(server: &TestServer, name: &str, mime: &str) -> String {
    let form = reqwest::multipart::Form::new().part("file", file_part(sample(name), name, mime));
    let reply = server.fansly_upload("acct", form).await;
    assert_eq!(reply.status, 201);
    reply.body["data"]["jobId"].as_str().unwrap().to_owned()
}

/// The page's own requests, as it recorded them, checked against `specs/admin.yaml`.
async fn check_page_exchanges(browser: &Client) -> usize {
    let exchanges = browser
        .execute("return window.mockUi.exchanges;", Vec::new())
        .await
        .unwrap();
    let spec = Spec::load(Document::Admin).unwrap();
    let exchanges = exchanges.as_array().unwrap();
    for exchange in exchanges {
        let method = exchange["method"].as_str().unwrap();
        let path = exchange["path"].as_str().unwrap();
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        let status = u16::try_from(exchange["status"].as_u64().unwrap()).unwrap();
        let content_type = exchange["contentType"].as_str().unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path} answered the page {status} {content_type}"
        );
        if let Err(err) = spec.validate_response(method, path, status, &exchange["body"]) {
            panic!("the page's {method} {path} got an answer that breaks the admin spec: {err}");
        }
    }
    exchanges.len()
}

async fn dashboard_scenario(server: &TestServer, browser: &Client) {
    browser
        .goto(&server.url(&format!("/__admin/ui?token={TOKEN}")))
        .await
        .unwrap();
    // The page is meant to be read at 1280×800: make that the viewport, whatever the window adds.
    let chrome: Value = browser
        .execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
            Vec::new(),
        )
        .await
        .unwrap();
    let extra = |idx: usize| u32::try_from(chrome[idx].as_u64().unwrap_or(0)).unwrap();
    browser
        .set_window_size(1280 + extra(0), 800 + extra(1))
        .await
        .unwrap();
    eventually(
        browser,
        "the live stream",
        "document.getElementById('live').textContent === 'live'",
    )
    .await;
    let page_id: Value = browser
        .execute("return window.mockUi.pageId = Math.random();", Vec::new())
        .await
        .unwrap();
    let url: Value = browser
        .execute("return location.href;", Vec::new())
        .await
        .unwrap();
    assert!(
        !url.as_str().unwrap().contains(TOKEN),
        "the token stayed in the address bar"
    );

    // Every control has a name a screen reader can say.
    let unlabelled = browser
        .execute(
            "return [...document.querySelectorAll('button, input, select')].filter((control) => \
             !(control.getAttribute('aria-label') || (control.labels && control.labels.length) \
               || (control.tagName === 'BUTTON' && control.textContent.trim()))).map((control) => control.outerHTML);",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(unlabelled, json!([]), "controls without a label");

    // The clock moves from the keyboard: focus a preset and press Enter.
    let before = eventually(
        browser,
        "the clock",
        "document.getElementById('clock-now').textContent",
    )
    .await;
    browser
        .find(Locator::Css("#advance-1s"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let after = eventually(
        browser,
        "the clock moved by a second",
        &format!("document.getElementById('clock-now').textContent !== {before} && document.getElementById('clock-now').textContent"),
    )
    .await;
    assert_eq!(after, "2026-02-04 18:35:02.000 UTC");

    // An upload over HTTP appears without a reload.
    let first = upload(server, "sample.jpg", "image/jpeg").await;
    let row = format!("document.querySelector('tr[data-job=\"fansly/{first}\"]')");
    assert_eq!(
        eventually(
            browser,
            "the new job",
            &format!("{row} && {row}.dataset.state")
        )
        .await,
        "queued"
    );

    // The clock buttons move the session's clock; the job completes and its links are served.
    click(browser, "#advance-1m").await;
    eventually(
        browser,
        "the job completed",
        &format!("{row}.dataset.state === 'completed'"),
    )
    .await;
    click(
        browser,
        &format!("tr[data-job=\"fansly/{first}\"] button.show"),
    )
    .await;
    let link_url = eventually(
        browser,
        "a live link",
        "(() => { const link = document.querySelector('.links li[data-cdn-status=\"200\"] a'); return link && link.href; })()",
    )
    .await;
    let link_url = link_url.as_str().unwrap().to_owned();
    assert_eq!(server.fetch(&link_url).await.0, 200);

    // 5 h 1 s later the link is expired on the page, and the CDN really refuses it.
    click(browser, "#advance-5h1s").await;
    eventually(
        browser,
        "the link expired",
        "(() => { const links = [...document.querySelectorAll('.links li')]; return links.length > 0 \
         && links.every((li) => li.dataset.cdnStatus === '403' && /expired/.test(li.textContent)); })()",
    )
    .await;
    let (status, _, _) = server.fetch(&link_url).await;
    assert_eq!(
        status, 403,
        "the page says expired but the CDN served the link"
    );

    // Another job, forced to fail from its row: its state and the provider's error show.
    let second = upload(server, "sample.png", "image/png").await;
    let second_row = format!("document.querySelector('tr[data-job=\"fansly/{second}\"]')");
    eventually(browser, "the second job", &second_row).await;
    click(
        browser,
        &format!("tr[data-job=\"fansly/{second}\"] button.fail"),
    )
    .await;
    eventually(
        browser,
        "the job failed",
        &format!("{second_row}.dataset.state === 'failed'"),
    )
    .await;
    let error = eventually(
        browser,
        "the failure text",
        &format!("{second_row}.querySelector('.error') && {second_row}.querySelector('.error').textContent"),
    )
    .await;
    assert_eq!(
        error,
        "Media processing failed: the file could not be transcoded."
    );
    let failed = server.fansly_status(&second).await;
    assert_eq!(failed.body["data"]["state"], "failed", "{:#}", failed.body);
    assert_eq!(failed.body["data"]["failedReason"], error);
    let disabled: Value = browser
        .execute(
            &format!("return [...{second_row}.querySelectorAll('button.complete, button.fail')].every((b) => b.disabled);"),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        disabled, true,
        "a terminal job's force buttons stay enabled"
    );

    // The journal filtered to one job shows only that job's requests.
    choose(browser, "#journal-job", &second).await;
    let journal_jobs = eventually(
        browser,
        "the journal filtered to one job",
        &format!(
            "(() => {{ const rows = [...document.querySelectorAll('#journal tbody tr')]; \
             return rows.length > 0 && rows.every((row) => row.dataset.job === '{second}') && rows.length; }})()"
        ),
    )
    .await;
    assert!(
        journal_jobs.as_u64().unwrap() >= 2,
        "the upload and the poll"
    );

    // The same bytes again: marked as a retry; once completed, its link previews the image.
    let third = upload(server, "sample.jpg", "image/jpeg").await;
    let third_row = format!("document.querySelector('tr[data-job=\"fansly/{third}\"]')");
    let repeat = eventually(
        browser,
        "the retry mark",
        &format!("{third_row} && {third_row}.querySelector('.repeat') && {third_row}.querySelector('.repeat').textContent"),
    )
    .await;
    // The browser's own favicon request is journaled too, so the first upload's number varies.
    assert!(
        repeat.as_str().unwrap().starts_with("↻ retry of #"),
        "{repeat}"
    );
    click(browser, "#advance-1m").await;
    eventually(
        browser,
        "the retry completed",
        &format!("{third_row}.dataset.state === 'completed'"),
    )
    .await;
    click(
        browser,
        &format!("tr[data-job=\"fansly/{third}\"] button.show"),
    )
    .await;
    eventually(
        browser,
        "the image preview",
        "(() => { const img = document.querySelector('.links li[data-cdn-status=\"200\"] img'); \
         return img && img.complete && img.naturalWidth === 444; })()",
    )
    .await;

    // A fault that hits a job's poll is marked on its row.
    let form = reqwest::multipart::Form::new().part(
        "file",
        file_part(sample("sample.gif"), "anim.gif", "image/gif"),
    );
    let response = server
        .http
        .post(server.url("/api/fansly/acct/media/upload"))
        .header("x-api-key", "test-key")
        .header("x-mock-scenario", "rate-limited")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let limited: Value = response.json().await.unwrap();
    let limited = limited["data"]["jobId"].as_str().unwrap().to_owned();
    server.fansly_status(&limited).await;
    assert_eq!(server.fansly_status(&limited).await.status, 429);
    let fault = eventually(
        browser,
        "the fault on the row",
        &format!(
            "(() => {{ const row = document.querySelector('tr[data-job=\"fansly/{limited}\"]'); \
             const fault = row && row.querySelector('.fault'); return fault && fault.textContent; }})()"
        ),
    )
    .await;
    assert_eq!(fault, "respond");

    // An async OnlyFans upload completes; its webhook goes to a closed port, so every attempt
    // fails and the panel lists each with its status, signature and next retry.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            file_part(sample("sample.png"), "a.png", "image/png"),
        )
        .text("async", "true");
    let reply = server.onlyfans_upload("acct_1", "upload", form).await;
    let upload_id = reply.body["prefixed_id"].as_str().unwrap().to_owned();
    eventually(
        browser,
        "the OnlyFans job",
        &format!("document.querySelector('tr[data-job=\"onlyfans/{upload_id}\"]')"),
    )
    .await;
    click(browser, "#advance-1m").await;
    let attempts = eventually(
        browser,
        "every webhook attempt",
        "(() => { const rows = [...document.querySelectorAll('#webhooks tbody tr')]; \
         return rows.length === 3 && rows.map((row) => row.textContent); })()",
    )
    .await;
    let attempts: Vec<&str> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_str().unwrap())
        .collect();
    // Newest first: the last attempt has no next retry; the earlier ones do.
    assert!(
        attempts[0].contains("3 of 3") && attempts[0].ends_with('—'),
        "{attempts:?}"
    );
    assert!(
        attempts[2].contains("1 of 3") && !attempts[2].ends_with('—'),
        "{attempts:?}"
    );
    assert!(
        attempts.iter().all(|row| row.contains("none")),
        "{attempts:?}"
    );

    // Readable at 1280×800: nothing runs off the side of the viewport.
    let too_wide = browser
        .execute(
            "return [...document.querySelectorAll('body *')].filter((node) => \
             node.getBoundingClientRect().right > document.documentElement.clientWidth + 1) \
             .slice(0, 5).map((node) => node.tagName + '#' + node.id + '.' + node.className + ' ' + Math.round(node.getBoundingClientRect().right));",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(too_wide, json!([]), "wider than the 1280-pixel viewport");

    let same_page: Value = browser
        .execute("return window.mockUi.pageId;", Vec::new())
        .await
        .unwrap();
    assert_eq!(same_page, page_id, "the page reloaded");
    let n_checked = check_page_exchanges(browser).await;
    assert!(n_checked > 10, "only {n_checked} admin requests recorded");
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run installs them and runs it with --ignored"]
async fn browser_dashboard_follows_jobs_clock_links_failures_and_journal_live() {
    // Webhooks go to a port nobody listens on: each attempt fails at once.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut webhook = WebhookConfig::new(format!("http://127.0.0.1:{closed_port}/hooks"))
        .signed_with("whsec-test");
    webhook.backoff = Duration::from_millis(10);
    webhook.max_attempts = 3;
    let server = spawn_with(
        MockServer::builder()
            .seed(7)
            .admin_token(TOKEN)
            .webhook(webhook),
    )
    .await;
    let driver = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver, profile.path()).await;
    let outcome = std::panic::AssertUnwindSafe(dashboard_scenario(&server, &browser))
        .catch_unwind()
        .await;
    let dir = screenshot_dir();
    let shot = if outcome.is_ok() {
        "dashboard.png"
    } else {
        "failure.png"
    };
    if let Ok(png) = browser.screenshot().await {
        std::fs::write(dir.join(shot), png).unwrap();
        eprintln!("screenshot: {}", dir.join(shot).display());
    }
    let _ = browser.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
