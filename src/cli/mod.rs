//! The admin CLI: `hookgate receiver|delivery|changeset|repository|sync|watch`, client
//! subcommands that speak the gRPC admin API of a running `hookgate serve`, so an admin types
//! flags instead of JSON, gets FieldMasks built and bodies decoded, and scripts get JSON and exit
//! codes they can test. It uses only the generated `hookgate.v1` client types: what it shows is
//! what any API client sees, and the server's internals can change under it.
//!
//! The address is `--grpc-addr` (the flag `serve` listens on), the token `--admin-token`
//! (`HOOKGATE_ADMIN_TOKEN`), and changes are recorded under `--actor` or the OS user name.

/// `println!` for the client subcommands: a reader that went away (`| head`) ends the command
/// quietly, as it does any Unix tool, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::render::write_line(format_args!($($arg)*))
    };
}

mod changesets;
mod connection;
mod deliveries;
mod failure;
mod paging;
mod receivers;
mod render;
mod repositories;
mod watch;

use clap::{Args, Subcommand};

pub use changesets::ChangesetArgs;
pub use deliveries::DeliveryArgs;
pub use receivers::ReceiverArgs;
pub use repositories::{RepositoryArgs, SyncArgs};
pub use watch::WatchArgs;

pub use connection::AdminApi;
use connection::Api;
use failure::Failure;

/// The client subcommands, one per resource of the admin API.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum AdminCommand {
    /// Receivers over the admin API: create, list, show, update, rotate the secret, delete, send
    /// a test delivery, show health.
    Receiver(ReceiverArgs),
    /// The delivery log over the admin API: list, show one with its body decoded, redeliver one
    /// or all that match, list requests to receiver ids that do not exist.
    Delivery(DeliveryArgs),
    /// Changesets (pull/merge requests) over the admin API: list, show, their timeline.
    Changeset(ChangesetArgs),
    /// Repositories over the admin API: list, register, ask for a sync now.
    Repository(RepositoryArgs),
    /// Sync requests over the admin API, as a sync worker sees them: list, claim, complete.
    Sync(SyncArgs),
    /// Follows the event feed over the admin API, one line per entry, until interrupted.
    Watch(WatchArgs),
}

/// The flags every client subcommand takes, after the subcommand's name or at its end.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct ClientOptions {
    /// The name changes are recorded under (sent as x-hookgate-actor). Default: the OS user
    /// name ($USER).
    #[arg(long, global = true)]
    pub actor: Option<String>,

    /// `table` for people; `json` for scripts: the API's messages in their proto JSON form
    /// (lowerCamelCase names, enums by name, int64 as strings, bytes as base64).
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

/// How a client subcommand prints what the API answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns and `key: value` lines.
    Table,
    /// One JSON document (`watch`: one JSON object a line).
    Json,
}

/// Runs one client subcommand against the admin API at `target`; the exit code says how
/// it went (see `failure::Failure::exit_code`), and a failure is reported on stderr.
pub async fn run(command: AdminCommand, target: &AdminApi) -> std::process::ExitCode {
    match dispatch(command, target).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            std::process::ExitCode::from(failure.exit_code())
        }
    }
}

async fn dispatch(command: AdminCommand, target: &AdminApi) -> Result<(), Failure> {
    let client = match &command {
        AdminCommand::Receiver(args) => &args.client,
        AdminCommand::Delivery(args) => &args.client,
        AdminCommand::Changeset(args) => &args.client,
        AdminCommand::Repository(args) => &args.client,
        AdminCommand::Sync(args) => &args.client,
        AdminCommand::Watch(args) => &args.client,
    };
    let output = client.output;
    let api = Api::connect(target, client.actor.as_deref()).await?;
    match command {
        AdminCommand::Receiver(args) => receivers::run(args.command, &api, output).await,
        AdminCommand::Delivery(args) => deliveries::run(args.command, &api, output).await,
        AdminCommand::Changeset(args) => changesets::run(args.command, &api, output).await,
        AdminCommand::Repository(args) => repositories::run(args.command, &api, output).await,
        AdminCommand::Sync(args) => repositories::run_sync(args.command, &api, output).await,
        AdminCommand::Watch(args) => watch::run(args, &api, output).await,
    }
}
