//! The `hookgate-load` command: `run` (the default) sends signed deliveries and prints what it
//! measured; `ceiling` serves the bare HMAC-check-and-202 reference.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use hookgate_load::bodies::{Deliveries, read_fixture};
use hookgate_load::ceiling::Ceiling;
use hookgate_load::hosts::Host;
use hookgate_load::mix::Mix;
use hookgate_load::run::{Plan, Target, run};

/// Load generator for hookgate's webhook ingress, and the ceiling it is measured against.
#[derive(Debug, Parser)]
#[command(
    name = "hookgate-load",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `run`'s options, for when no subcommand is named.
    #[command(flatten)]
    run: RunArgs,
    /// Tokio worker threads (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

/// What to do.
#[derive(Debug, Subcommand)]
enum Command {
    /// Send signed deliveries and print throughput, latency and statuses (the default).
    Run(RunArgs),
    /// Serve the bare reference: check X-Hub-Signature-256, answer 202, store nothing.
    Ceiling(CeilingArgs),
}

/// The options of `run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// A receiver URL to post to; repeat it to spread connections round-robin over several.
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// The code host whose deliveries are imitated (headers, signature, delivery id).
    #[arg(long, value_enum, default_value = "github")]
    host: Host,
    /// The receiver's secret: the HMAC key, or GitLab's token.
    #[arg(long)]
    secret: Option<String>,
    /// The body to send (default: the host's pull/merge request "opened" fixture).
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// The event header's value (default: the one that goes with the default fixture).
    #[arg(long)]
    event: Option<String>,
    /// Connections; in the closed loop also the requests in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: u32,
    /// Open loop: send this many requests a second, latency counted from each one's due time.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to measure (default 10s, or until --requests when that is given).
    #[arg(long)]
    duration: Option<humantime::Duration>,
    /// Stop after this many measured requests (e.g. to build a backlog).
    #[arg(long)]
    requests: Option<u64>,
    /// Body variants whose pull/merge request number is 1..K, each signed once, cycled.
    #[arg(long, default_value_t = 1)]
    distinct: u32,
    /// What is sent: `single` (one fixture, `--distinct` variants) or `realistic` (GitHub pull
    /// request events, reviews, check runs, comments and pushes from the fixtures, over
    /// `--repositories` and `--pull-requests`; see the `mix` module for the weights).
    #[arg(long, value_enum, default_value = "single")]
    mix: MixArg,
    /// `--mix realistic`: the repositories the deliveries are spread over.
    #[arg(long, default_value_t = 100)]
    repositories: u32,
    /// `--mix realistic`: the pull requests, over all repositories (numbered per repository).
    #[arg(long, default_value_t = 1000)]
    pull_requests: u32,
    /// Load sent first and not measured.
    #[arg(long, default_value = "0s")]
    warmup: humantime::Duration,
    /// How long a request waits for its answer before it counts as a timeout.
    #[arg(long, default_value = "30s")]
    timeout: humantime::Duration,
    /// Print one JSON line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

/// The choices of `--mix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MixArg {
    /// One fixture, in `--distinct` variants: what the closed and open loops send.
    Single,
    /// The realistic mix of issue 16 (GitHub only).
    Realistic,
}

/// The options of `ceiling`.
#[derive(Debug, Args)]
struct CeilingArgs {
    /// Where to listen; port 0 picks a free one (the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The HMAC key deliveries must be signed with.
    #[arg(long)]
    secret: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("hookgate-load: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Some(Command::Ceiling(args)) => ceiling(args).await,
            Some(Command::Run(args)) => load(args).await,
            None => load(cli.run).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hookgate-load: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `run`: prepares the bodies, sends the load, prints the report. Fails when nothing succeeded.
async fn load(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.urls.is_empty() {
        bail!("give at least one --url, e.g. --url http://127.0.0.1:8080/.api/webhooks/<id>");
    }
    let Some(secret) = args.secret else {
        bail!("give the receiver's --secret");
    };
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of requests a second, not {rate}");
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let targets = args
        .urls
        .iter()
        .map(|url| Target::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    let deliveries = match args.mix {
        MixArg::Single => {
            let fixture_path = args
                .fixture
                .unwrap_or_else(|| PathBuf::from(args.host.default_fixture()));
            let fixture = read_fixture(&fixture_path)?;
            let event = args
                .event
                .unwrap_or_else(|| args.host.default_event().to_owned());
            Deliveries::prepare(args.host, &fixture, &event, &secret, args.distinct)
                .with_context(|| format!("preparing {}", fixture_path.display()))?
        }
        MixArg::Realistic => {
            if args.host != Host::GitHub {
                bail!("--mix realistic sends GitHub's deliveries: leave --host at github");
            }
            if args.fixture.is_some() || args.event.is_some() || args.distinct != 1 {
                bail!(
                    "--mix realistic chooses its own fixtures: drop --fixture, --event and --distinct"
                );
            }
            Deliveries::mixed(Mix::load(&secret, args.repositories, args.pull_requests)?)
        }
    };
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => Some(d.into()),
        (None, Some(_)) => None,
        (None, None) => Some(std::time::Duration::from_secs(10)),
    };
    let report = run(Plan {
        targets,
        deliveries,
        concurrency: args.concurrency,
        rate: args.rate,
        duration,
        requests: args.requests,
        warmup: args.warmup.into(),
        timeout: args.timeout.into(),
    })
    .await;
    if args.json {
        eprint!("{}", report.table());
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(if report.ok > 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("hookgate-load: no request succeeded");
        ExitCode::FAILURE
    })
}

/// `ceiling`: serves until SIGINT or SIGTERM, after printing where it listens.
async fn ceiling(args: CeilingArgs) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let ceiling = Ceiling::new(&args.secret);
    println!("ceiling listening on http://{address}/.api/webhooks/{{id}}");
    std::io::stdout().flush().ok();
    ceiling.serve(listener, shutdown_signal()).await?;
    eprintln!(
        "ceiling stopped after accepting {} deliveries",
        ceiling.accepted()
    );
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
