//! `conformance`: run the checks against a target, grade a client program, or report drift.
//!
//! Exit status: 0 everything passed, 1 a check failed (or drift was found), 2 bad usage or an
//! unreachable target.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use conformance::client::{self, ClientOptions};
use conformance::drift::{self, Severity};
use conformance::report::{self, Progress, Suite};
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
    /// Compare our specs with the providers' own, and (with --base-url) live answers with the
    /// committed snapshots.
    Drift(DriftArgs),
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
    /// A client still running after this is killed.
    #[arg(long, default_value = "240s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Multiplies every scenario timeline (0.1 makes them ten times faster).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
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
    /// Where the committed snapshots are.
    #[arg(long)]
    snapshots: Option<PathBuf>,
    /// Accepted spec differences, one key per line.
    #[arg(long)]
    accepted: Option<PathBuf>,
    /// Also list differences where ours is only stricter.
    #[arg(long)]
    verbose: bool,
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
            Command::Drift(args) => drift(args).await,
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
/// alive by the returned handle).
async fn target(args: &TargetArgs) -> anyhow::Result<(Target, Option<MockServer>)> {
    let provider = Provider::from(args.provider);
    let (base_url, server) = match &args.base_url {
        Some(url) => (url.clone(), None),
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
        AdminArg::Auto => {
            reqwest::get(format!("{}/__admin/health", base_url.trim_end_matches('/')))
                .await
                .is_ok_and(|response| response.status().is_success())
        }
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
        anyhow::bail!("--account is required for a live target");
    }
    Ok((target, server))
}

async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let (target, _server) = target(&args.target).await?;
    let options = Options {
        deadline: args.target.deadline,
        poll_interval: args.target.poll_interval,
        ..Options::default()
    };
    let report = run_checks(&target, &options).await?;
    let name = format!("{} {}", report.provider, report.base_url);
    let suites = [Suite {
        name: &name,
        results: &report.results,
    }];
    write_reports(&suites, args.junit.as_ref(), args.json.as_ref(), &report)?;
    report::print(&mut std::io::stdout().lock(), &suites)?;
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
    eprintln!(
        "grading {:?}: {}",
        options.command,
        client::describe(&options)
    );
    let grades = client::grade(&options).await?;
    let names: Vec<String> = grades
        .iter()
        .map(|grade| {
            format!(
                "scenario {} (exit {})",
                grade.scenario,
                grade
                    .exit_code
                    .map_or("none".to_owned(), |code| code.to_string())
            )
        })
        .collect();
    let suites: Vec<Suite<'_>> = grades
        .iter()
        .zip(&names)
        .map(|(grade, name)| Suite {
            name,
            results: &grade.results,
        })
        .collect();
    if let Some(path) = &args.junit {
        let xml = report::junit("conformance client", &suites).context("rendering JUnit XML")?;
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let extra = serde_json::json!({ "command": options.command });
        std::fs::write(path, report::json(&suites, extra))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    report::print(&mut out, &suites)?;
    for grade in &grades {
        let failed = grade
            .results
            .iter()
            .any(|result| result.outcome.is_failure());
        if failed && !grade.output_tail.is_empty() {
            use std::io::Write;
            writeln!(
                out,
                "--- client output, scenario {} ---\n{}",
                grade.scenario, grade.output_tail
            )?;
        }
    }
    Ok(grades.iter().all(|grade| {
        grade
            .results
            .iter()
            .all(|result| !result.outcome.is_failure())
    }))
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
        let provider: Provider = args
            .provider
            .context("--provider is required with --base-url")?
            .into();
        let account = args
            .account
            .clone()
            .context("--account is required with --base-url")?;
        let target = Target::live(base_url, provider, &args.api_key, account);
        let report = run_checks(&target, &Options::default()).await?;
        let dir = args
            .snapshots
            .clone()
            .unwrap_or_else(drift::default_snapshot_dir);
        println!(
            "Response drift: {base_url} against the snapshots in {}",
            dir.display()
        );
        for kind in drift::compare_snapshots(report.provider, &report.samples, &dir) {
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
            let name = format!("{} {}", report.provider, report.base_url);
            report::print(
                &mut std::io::stdout().lock(),
                &[Suite {
                    name: &name,
                    results: &report.results,
                }],
            )?;
        }
    }
    Ok(clean)
}
