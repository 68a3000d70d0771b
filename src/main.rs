//! The `hookgate` command: `serve` (the default), `migrate`, `rotate-key`, and the admin CLI's
//! client subcommands (`receiver`, `delivery`, `changeset`, `repository`, `sync`, `watch`).

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use hookgate::app::{Application, open_database};
use hookgate::config::{Cli, Command, Config};
use hookgate::db::redact_url;

/// mimalloc rather than the system allocator: intake allocates and frees a body-sized buffer or
/// three per delivery, from many threads, which glibc's allocator spends a fifth of the CPU on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    hookgate::memory::tune();
    let cli = Cli::parse();
    hookgate::logging::init(cli.config.operations.log_format);
    let config = cli.config;
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        // The admin CLI reports its own failures, with exit codes scripts can test.
        Command::Admin(command) => {
            let target = hookgate::cli::AdminApi {
                grpc_addr: config.grpc_addr,
                admin_token: config.admin_token().map(str::to_owned),
            };
            return hookgate::cli::run(command, &target).await;
        }
        Command::Migrate => migrate(&config).await,
        Command::RotateKey { new_key_file } => rotate_key(&config, &new_key_file).await,
        Command::Serve => serve(&config).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hookgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    db.close().await.ok();
    tracing::info!(database = %redact_url(&config.database_url()), "migrations applied");
    Ok(())
}

async fn rotate_key(config: &Config, new_key_file: &Path) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let rotation = hookgate::secret_key::rotate_key(
        &db,
        config.secret_key_file.as_deref(),
        &config.data_dir,
        new_key_file,
    )
    .await;
    db.close().await.ok();
    print!("{}", rotation?);
    Ok(())
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    // The handlers are installed before anything listens: a SIGTERM that comes as soon as the
    // listeners are up is a graceful stop, never the default kill.
    let shutdown = shutdown_signal()?;
    let app = Application::build(config).await?;
    tracing::info!(database = %redact_url(&config.database_url()), "database ready");
    app.run_until(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now; the future completes on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutdown signal received: finishing in-flight requests");
    })
}
