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
    hookgate::db::close(db).await;
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
    hookgate::db::close(db).await;
    print!("{}", rotation?);
    Ok(())
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    tracing::info!(database = %redact_url(&config.database_url()), "database ready");
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c()
            .await
            .expect("installing the SIGINT handler works on this platform");
    };
    let term = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler works on this platform")
            .recv()
            .await;
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}
