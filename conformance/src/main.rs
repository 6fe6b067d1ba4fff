//! `conformance`: run the checks against a target, grade a client program or a webhook receiver,
//! or report drift.
//!
//! Exit status: 0 everything passed, 1 a check failed, a rule was not exercised (unless
//! `--allow-skip`), drift was found or parity found a difference not accepted, 2 bad usage or
//! an unreachable target.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use conformance::client::{self, ClientOptions, TimeScale};
use conformance::drift::{self, Severity};
use conformance::receiver::{self, ReceiverOptions};
use conformance::report::{self, GradeProgress, Progress, Suite};
use conformance::{Options, Report, RunError, Target};
use mock_server::{MockServer, Provider};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Lifecycle-aware conformance checks for Fansly and OnlyFans uploads"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every check against a base URL (or, without one, against an in-process mock).
    Run(RunArgs),
    /// Grade a client program against every built-in scenario of the mock.
    Client(ClientArgs),
    /// Grade a webhook receiver: deliver media_uploads events to it as the provider does
    /// (duplicates, out of order, a forged signature, a redelivery) and judge it rule by rule.
    Webhooks(WebhooksArgs),
    /// Compare our specs with the providers' own, and (with --base-url) live answers with the
    /// committed snapshots.
    Drift(DriftArgs),
    /// Send the inputs recorded in cassettes (mock-server --proxy ... --record DIR) to a target
    /// (an in-process mock replaying them, by default) and compare each answer with the recording.
    Parity(ParityArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProviderArg {
    Fansly,
    Onlyfans,
}

impl From<ProviderArg> for Provider {
    fn from(provider: ProviderArg) -> Self {
        match provider {
            ProviderArg::Fansly => Provider::Fansly,
            ProviderArg::Onlyfans => Provider::OnlyFans,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AdminArg {
    /// Use the admin API when `/__admin/health` answers.
    Auto,
    /// The target is the mock.
    Yes,
    /// The target is a live API.
    No,
}

#[derive(Debug, Args)]
struct TargetArgs {
    /// Which provider's API.
    #[arg(long, env = "CONFORMANCE_PROVIDER")]
    provider: ProviderArg,
    /// The API's base URL; without it an in-process mock is started.
    #[arg(long, env = "CONFORMANCE_BASE_URL")]
    base_url: Option<String>,
    /// The API key.
    #[arg(long, env = "CONFORMANCE_API_KEY", default_value = "conformance-key")]
    api_key: String,
    /// The account id in upload paths (OnlyFans `acct_…`, Fansly account id).
    #[arg(long, env = "CONFORMANCE_ACCOUNT")]
    account: Option<String>,
    /// Whether the target has the mock's admin API.
    #[arg(long, value_enum, default_value = "auto")]
    admin: AdminArg,
    /// How long an upload may take to finish (target time).
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    deadline: Duration,
    /// Wait between polls on a live target.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit 0 even when a check met no case (it is still reported as not exercised).
    #[arg(long)]
    allow_skip: bool,
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// Which provider the client speaks.
    #[arg(long)]
    provider: ProviderArg,
    /// Scenarios to run (comma-separated names or YAML paths); all built-in ones by default.
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<String>,
    /// Polls of one job closer than this fail `poll_rate`.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    min_poll_interval: Duration,
    /// Consecutive retries of one request allowed.
    #[arg(long, default_value_t = 10)]
    max_retries: u32,
    /// A client still running after this is killed; by default the run's deadline
    /// (CONFORMANCE_DEADLINE) plus 20s.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// `auto` compresses timelines longer than 15s to 15s; a number multiplies every timeline
    /// (0.1 makes them ten times faster). Either way each job waits for the polls its faults
    /// aim at, and Retry-After is never scaled.
    #[arg(long, default_value = "auto")]
    time_scale: TimeScale,
    /// Exit 0 even when a rule a scenario is built to exercise was not exercised.
    #[arg(long)]
    allow_skip: bool,
    /// The file handed to the client as {file}; the sample JPEG by default.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The client command; {base_url}, {api_key}, {account}, {file}, {provider} are substituted.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct WebhooksArgs {
    /// The provider whose webhooks are sent (only OnlyFans sends upload webhooks).
    #[arg(long)]
    provider: ProviderArg,
    /// An already running receiver, instead of a command.
    #[arg(long, conflicts_with = "command")]
    url: Option<String>,
    /// The signing secret the receiver verifies with; given to a started receiver as {secret}
    /// and CONFORMANCE_WEBHOOK_SECRET. Needed with --url.
    #[arg(long, env = "CONFORMANCE_WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The command that starts the receiver and prints its URL as its first stdout line;
    /// {secret} is substituted.
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct DriftArgs {
    /// Compare live answers with the snapshots too (needs --provider and credentials).
    #[arg(long, env = "CONFORMANCE_BASE_URL")]
    base_url: Option<String>,
    /// The provider of --base-url.
    #[arg(long, env = "CONFORMANCE_PROVIDER")]
    provider: Option<ProviderArg>,
    /// The API key for --base-url.
    #[arg(long, env = "CONFORMANCE_API_KEY", default_value = "conformance-key")]
    api_key: String,
    /// The account for --base-url.
    #[arg(long, env = "CONFORMANCE_ACCOUNT")]
    account: Option<String>,
    /// Where the snapshots to compare with are; the ones embedded in this binary (the
    /// repository's `conformance/tests/it/snapshots/`) by default.
    #[arg(long)]
    snapshots: Option<PathBuf>,
    /// Accepted spec differences, one key per line.
    #[arg(long)]
    accepted: Option<PathBuf>,
    /// Also list differences where ours is only stricter.
    #[arg(long)]
    verbose: bool,
}

#[derive(Debug, Args)]
struct ParityArgs {
    /// The directory of cassettes.
    dir: PathBuf,
    /// Which provider's cassettes to compare.
    #[arg(long)]
    provider: ProviderArg,
    /// The target's base URL; without it an in-process mock replaying the cassettes is started.
    /// A mock given here must have been started with `--recordings DIR`.
    #[arg(long)]
    base_url: Option<String>,
    /// The API key.
    #[arg(long, env = "CONFORMANCE_API_KEY", default_value = "conformance-key")]
    api_key: String,
    /// The account in upload paths, for a live target or a recording whose account was redacted.
    #[arg(long, env = "CONFORMANCE_ACCOUNT")]
    account: Option<String>,
    /// Whether the target has the mock's admin API.
    #[arg(long, value_enum, default_value = "auto")]
    admin: AdminArg,
    /// Reviewed differences: `KEY # reason` per line; `DIR/accepted-parity.txt` when it exists.
    #[arg(long)]
    accepted: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONFORMANCE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Client(args) => grade(args).await,
            Command::Webhooks(args) => grade_receiver(args).await,
            Command::Drift(args) => drift(args).await,
            Command::Parity(args) => parity(args).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Builds the target, starting an in-process mock when no base URL is given (the mock is kept
/// alive by the returned handle). A base URL is checked and reached before anything else, so an
/// error names the actual problem (a missing scheme, a closed port) rather than a consequence.
async fn target(args: &TargetArgs) -> anyhow::Result<(Target, Option<MockServer>)> {
    let provider = Provider::from(args.provider);
    let (base_url, server) = match &args.base_url {
        Some(url) => (checked_base_url(url)?, None),
        None => {
            let server = MockServer::builder()
                .start()
                .await
                .context("starting the in-process mock")?;
            (server.base_url(), Some(server))
        }
    };
    let admin = match args.admin {
        AdminArg::Yes => true,
        AdminArg::No => false,
        AdminArg::Auto => has_admin_api(&base_url).await?,
    };
    let mut target = if admin {
        Target::mock(&base_url, provider)
    } else {
        Target::live(&base_url, provider, &args.api_key, "")
    };
    target.api_key.clone_from(&args.api_key);
    if let Some(account) = &args.account {
        target.account.clone_from(account);
    } else if !admin {
        anyhow::bail!(
            "--account is required for a live target: {base_url} answers but has no mock admin \
             API (/__admin/health), so it is taken for the live {} API \
             (pass --account, or --admin yes if it is a mock)",
            provider.slug()
        );
    }
    Ok((target, server))
}

/// `url` without a trailing slash, if it is an http(s) origin (with an optional path prefix).
fn checked_base_url(url: &str) -> anyhow::Result<String> {
    let hint = "expected an http:// or https:// URL such as https://v1.apifansly.com or \
                http://127.0.0.1:8765";
    let parsed = reqwest::Url::parse(url)
        .map_err(|err| anyhow::anyhow!("invalid --base-url {url:?}: {err}; {hint}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        anyhow::bail!(
            "invalid --base-url {url:?}: scheme {:?} is not http or https; {hint}",
            parsed.scheme()
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        anyhow::bail!("invalid --base-url {url:?}: no host; {hint}");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        anyhow::bail!(
            "invalid --base-url {url:?}: a query or fragment cannot prefix paths; {hint}"
        );
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Whether `base_url` is a mock (its `/__admin/health` answers 2xx); an error when nothing
/// answers at all.
async fn has_admin_api(base_url: &str) -> anyhow::Result<bool> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(format!("{base_url}/__admin/health"))
        .send()
        .await
        .map_err(|err| anyhow::Error::new(err).context(format!("cannot reach {base_url}")))?;
    Ok(response.status().is_success())
}

async fn parity(args: ParityArgs) -> anyhow::Result<bool> {
    let provider = Provider::from(args.provider);
    let cassettes = conformance::parity::cassettes_in(&args.dir, provider)?;
    if cassettes.is_empty() {
        anyhow::bail!(
            "no {} cassettes in {}: nothing to compare",
            provider.slug(),
            args.dir.display()
        );
    }
    let accepted_path = args.accepted.clone().or_else(|| {
        let default = args.dir.join("accepted-parity.txt");
        default.exists().then_some(default)
    });
    let accepted = match &accepted_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            conformance::parity::Accepted::parse(&text)
                .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?
        }
        None => conformance::parity::Accepted::default(),
    };
    let target_args = TargetArgs {
        provider: args.provider,
        base_url: args.base_url.clone(),
        api_key: args.api_key.clone(),
        account: args.account.clone(),
        admin: args.admin,
        deadline: Duration::from_secs(120),
        poll_interval: Duration::from_secs(2),
    };
    let (target, _server) = match &args.base_url {
        Some(_) => target(&target_args).await?,
        None => {
            let clock =
                mock_server::clock::Clock::manual(mock_server::clock::Clock::system().now());
            let server = MockServer::builder()
                .clock(clock)
                .recordings(&args.dir)
                .start()
                .await
                .context("starting the in-process mock with the cassettes")?;
            let mut target = Target::mock(server.base_url(), provider);
            target.api_key.clone_from(&args.api_key);
            if let Some(account) = &args.account {
                target.account.clone_from(account);
            }
            (target, Some(server))
        }
    };
    let results = conformance::parity::parity(&target, &args.dir, &cassettes, &accepted).await?;
    if let Some(path) = &args.junit {
        std::fs::write(path, report::parity_junit(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, report::parity_json(&results))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    report::parity_table(&mut std::io::stdout().lock(), &results)?;
    Ok(results.iter().all(|cassette| {
        cassette
            .rows
            .iter()
            .all(conformance::parity::Row::is_success)
    }))
}

async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let (target, _server) = target(&args.target).await?;
    let options = Options {
        deadline: args.target.deadline,
        poll_interval: args.target.poll_interval,
        ..Options::default()
    };
    let report = run_checks(&target, &options).await?;
    let properties = vec![
        ("base_url".to_owned(), report.base_url.clone()),
        ("admin".to_owned(), report.admin.to_string()),
        ("n_requests".to_owned(), report.n_requests.to_string()),
        ("elapsed_ms".to_owned(), format!("{:.0}", report.elapsed_ms)),
    ];
    let suites = [Suite {
        name: report.provider,
        results: &report.results,
        properties: &properties,
    }];
    write_reports(&suites, args.junit.as_ref(), args.json.as_ref(), &report)?;
    report::print(&mut std::io::stdout().lock(), &suites)?;
    let unexercised = report.n_unexercised();
    if unexercised > 0 && !args.allow_skip {
        eprintln!(
            "{unexercised} check(s) applied to this target but met no case (NOT EXERCISED \
             above): exit 1; pass --allow-skip to accept that"
        );
        return Ok(false);
    }
    Ok(report.is_success())
}

async fn run_checks(target: &Target, options: &Options) -> anyhow::Result<Report> {
    let progress = Progress::new(6);
    let on_step = |name: &str| progress.step(name);
    let report = conformance::run(target, options, &on_step).await;
    progress.finish();
    report.map_err(|err| match err {
        RunError::Unreachable { .. } => anyhow::Error::new(err),
        other => anyhow::Error::new(other).context("the run could not start"),
    })
}

fn write_reports(
    suites: &[Suite<'_>],
    junit: Option<&PathBuf>,
    json: Option<&PathBuf>,
    report: &Report,
) -> anyhow::Result<()> {
    if let Some(path) = junit {
        let xml = report::junit("conformance", suites).context("rendering JUnit XML")?;
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = json {
        let extra = serde_json::json!({
            "provider": report.provider,
            "base_url": report.base_url,
            "admin": report.admin,
            "n_requests": report.n_requests,
            "elapsed_ms": report.elapsed_ms,
            "samples": report.samples,
        });
        std::fs::write(path, report::json(suites, extra))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn grade_receiver(args: WebhooksArgs) -> anyhow::Result<bool> {
    let provider = Provider::from(args.provider);
    if !receiver::supports(provider) {
        anyhow::bail!(
            "{} sends no upload webhooks; grade a receiver with --provider onlyfans",
            provider.slug()
        );
    }
    let secret = match (&args.secret, &args.url) {
        (Some(secret), _) => secret.clone(),
        (None, None) => receiver::DEFAULT_SECRET.to_owned(),
        (None, Some(_)) => {
            anyhow::bail!("--url needs --secret: the signing secret the receiver verifies with")
        }
    };
    let options = ReceiverOptions {
        command: args.command,
        url: args.url,
        secret,
    };
    let grade = receiver::grade(&options).await?;
    let name = format!("webhooks {}", provider.slug());
    let properties = vec![
        ("url".to_owned(), grade.url.clone()),
        (
            "elapsed_ms".to_owned(),
            grade.elapsed.as_millis().to_string(),
        ),
    ];
    let suites = [Suite {
        name: &name,
        results: &grade.results,
        properties: &properties,
    }];
    if let Some(path) = &args.junit {
        let xml = report::junit("conformance-webhooks", &suites).context("rendering JUnit XML")?;
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let extra = serde_json::json!({
            "command": options.command,
            "provider": provider.slug(),
        });
        std::fs::write(path, report::json(&suites, extra))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    report::print(&mut out, &suites)?;
    if grade.is_failure() && !grade.output_tail.is_empty() {
        writeln!(out, "--- receiver output ---\n{}", grade.output_tail)?;
    }
    Ok(!grade.is_failure())
}

async fn grade(args: ClientArgs) -> anyhow::Result<bool> {
    let options = ClientOptions {
        provider: args.provider.into(),
        command: args.command,
        scenarios: args.scenario,
        min_poll_interval: args.min_poll_interval,
        max_retries: args.max_retries,
        timeout: args.timeout,
        time_scale: args.time_scale,
        file: args.file,
    };
    let scenarios = client::scenarios(&options)?;
    let budget = client::budget(&options, &scenarios);
    eprintln!(
        "grading {:?}: {}",
        options.command,
        client::describe(&options, budget, scenarios.len())
    );
    let names: Vec<String> = scenarios
        .iter()
        .map(|scenario| scenario.name.clone())
        .collect();
    let progress = GradeProgress::new(&names);
    let grades = client::grade(&options, &|event| progress.event(event)).await?;
    drop(progress);
    let names: Vec<String> = grades
        .iter()
        .map(|grade| format!("scenario {}", grade.scenario))
        .collect();
    let properties: Vec<Vec<(String, String)>> = grades
        .iter()
        .map(|grade| {
            vec![
                (
                    "exit_code".to_owned(),
                    grade
                        .exit_code
                        .map_or("none".to_owned(), |code| code.to_string()),
                ),
                (
                    "elapsed_ms".to_owned(),
                    grade.elapsed.as_millis().to_string(),
                ),
                ("n_polls".to_owned(), grade.n_polls.to_string()),
                (
                    "deadline_s".to_owned(),
                    budget.deadline.as_secs().to_string(),
                ),
            ]
        })
        .collect();
    let suites: Vec<Suite<'_>> = grades
        .iter()
        .zip(&names)
        .zip(&properties)
        .map(|((grade, name), properties)| Suite {
            name,
            results: &grade.results,
            properties,
        })
        .collect();
    if let Some(path) = &args.junit {
        let xml = report::junit("conformance-client", &suites).context("rendering JUnit XML")?;
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let extra = serde_json::json!({
            "command": options.command,
            "provider": options.provider.slug(),
            "deadline_s": budget.deadline.as_secs(),
        });
        std::fs::write(path, report::json(&suites, extra))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    report::print(&mut out, &suites)?;
    for grade in &grades {
        if grade.is_failure() && !grade.output_tail.is_empty() {
            writeln!(
                out,
                "--- client output, scenario {} ---\n{}",
                grade.scenario, grade.output_tail
            )?;
        }
    }
    let mut unexercised = 0;
    for grade in &grades {
        for result in grade.unexercised() {
            unexercised += 1;
            if let conformance::Outcome::Unexercised { reason } = &result.outcome {
                writeln!(
                    out,
                    "not exercised: {} in scenario {}: {reason}",
                    result.name, grade.scenario
                )?;
            }
        }
    }
    if unexercised > 0 && !args.allow_skip {
        writeln!(
            out,
            "{unexercised} rule(s) were not exercised, so they did not pass: exit 1 \
             (--allow-skip accepts that)"
        )?;
        return Ok(false);
    }
    Ok(grades.iter().all(|grade| !grade.is_failure()))
}

async fn drift(args: DriftArgs) -> anyhow::Result<bool> {
    let mut clean = true;
    let accepted = match &args.accepted {
        Some(path) => drift::read_baseline(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => drift::read_baseline(include_str!("../../specs/upstream/accepted-drift.txt")),
    };
    let found = drift::spec_drift().context("loading the specs")?;
    println!(
        "Spec drift: specs/upstream/onlyfans-status.yaml (the provider's) against specs/onlyfans.yaml (ours)"
    );
    let mut counts = [0usize; 3];
    for item in &found {
        let is_accepted = accepted.contains(&item.key());
        let label = match (item.severity, is_accepted) {
            (Severity::Actionable, false) => {
                clean = false;
                counts[0] += 1;
                "ACTION"
            }
            (Severity::Actionable, true) => {
                counts[1] += 1;
                "accepted"
            }
            (Severity::Stricter | Severity::OursOnly, _) => {
                counts[2] += 1;
                if !args.verbose {
                    continue;
                }
                if item.severity == Severity::Stricter {
                    "stricter"
                } else {
                    "ours-only"
                }
            }
        };
        println!(
            "  {label:9} {}  {}  {}",
            item.operation, item.field, item.change
        );
    }
    println!(
        "  {} to act on, {} accepted, {} where ours is stricter or adds (--verbose lists them)",
        counts[0], counts[1], counts[2]
    );

    if let Some(base_url) = &args.base_url {
        let base_url = checked_base_url(base_url)?;
        let provider: Provider = args
            .provider
            .context("--provider is required with --base-url")?
            .into();
        let account = args
            .account
            .clone()
            .context("--account is required with --base-url")?;
        let target = Target::live(&base_url, provider, &args.api_key, account);
        let report = run_checks(&target, &Options::default()).await?;
        let source = args.snapshots.as_ref().map_or_else(
            || "the snapshots embedded in this binary".to_owned(),
            |dir| format!("the snapshots in {}", dir.display()),
        );
        println!(
            "Response drift: {base_url} against {source} (shape everywhere; values where \
             specs/ fixes them)"
        );
        for kind in drift::compare_snapshots(&report, args.snapshots.as_deref()) {
            if !kind.has_snapshot {
                println!("  new       {}: no snapshot to compare with", kind.kind);
            } else if kind.differences.is_empty() {
                println!("  same      {}", kind.kind);
            } else {
                clean = false;
                println!("  CHANGED   {}:", kind.kind);
                for difference in &kind.differences {
                    println!("              {difference}");
                }
            }
        }
        if !report.is_success() {
            clean = false;
            println!(
                "  and {} checks failed against the live API:",
                report.n_failed()
            );
            report::print(
                &mut std::io::stdout().lock(),
                &[Suite {
                    name: report.provider,
                    results: &report.results,
                    properties: &[],
                }],
            )?;
        }
    }
    Ok(clean)
}
