//! `hookgate repository ...` and `hookgate sync ...`: repositories and their sync requests from
//! the command line, the second as a sync worker (or a person standing in for one) sees them.
//! Both speak RepositoryService.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::connection::Api;
use super::failure::Failure;
use super::paging::{Page, Paging};
use super::render::{self, Fields, Table, enum_short, parse_enum};
use super::{ClientOptions, Output};
use crate::admin::proto::{self, SyncRequestState};

/// `hookgate repository <command>`.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct RepositoryArgs {
    #[command(subcommand)]
    pub command: RepositoryCommand,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum RepositoryCommand {
    /// Lists repositories: registered ones and those seen in events.
    List {
        /// Only this code host's repositories (its base URL).
        #[arg(long)]
        code_host_urn: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Registers a repository (or marks one already seen as registered): what receivers with
    /// ignore_unmatched act on.
    Register {
        /// The code host's base URL (https://github.com/).
        #[arg(long)]
        code_host_urn: String,
        /// The repository's name on its host (octo-org/hello-world).
        #[arg(long)]
        name: String,
        /// The host's own id for it (GitHub repository.id, GitLab project.id, ...): a
        /// repository already seen under another name is then the same one.
        #[arg(long)]
        external_id: Option<String>,
    },
    /// Asks for a sync now: of one repository (by id, or by --code-host-urn and --name), or of
    /// every repository of a receiver's code host (--receiver).
    Sync {
        /// The repository's id.
        #[arg(conflicts_with_all = ["code_host_urn", "receiver"])]
        id: Option<String>,
        /// The repository's code host (with --name).
        #[arg(long, requires = "name", conflicts_with = "receiver")]
        code_host_urn: Option<String>,
        /// The repository's name, current or former (with --code-host-urn).
        #[arg(long, requires = "code_host_urn")]
        name: Option<String>,
        /// Every repository of this receiver's code host.
        #[arg(long)]
        receiver: Option<String>,
    },
}

/// `hookgate sync <command>`.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: SyncCommand,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum SyncCommand {
    /// Lists sync requests, newest first.
    List {
        /// Only this code host's sync requests (its base URL).
        #[arg(long)]
        code_host_urn: Option<String>,
        /// Only sync requests in this state (pending, claimed, completed, failed); repeat for
        /// several.
        #[arg(long, value_parser = parse_enum::<SyncRequestState>)]
        state: Vec<i32>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Claims due sync requests for a worker, for a lease; no other worker gets them until it
    /// runs out. Prints what to fetch (clone URLs, refs).
    Claim {
        /// Who claims (shown in listings). Default: the OS user name ($USER).
        #[arg(long)]
        worker: Option<String>,
        /// At most this many (the server's default is 10, at most 500).
        #[arg(long)]
        max: Option<i32>,
        /// How long the claim holds (e.g. 10m; the server's default is 5 minutes).
        #[arg(long)]
        lease: Option<humantime::Duration>,
    },
    /// Records a claimed sync request's outcome: success, or failure with --error.
    Complete {
        /// The sync request's id.
        id: String,
        /// The sync failed, for this reason.
        #[arg(long)]
        error: Option<String>,
    },
}

pub async fn run(command: RepositoryCommand, api: &Api, output: Output) -> Result<(), Failure> {
    let mut client = api.repositories();
    match command {
        RepositoryCommand::List {
            code_host_urn,
            paging,
        } => {
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = proto::ListRepositoriesRequest {
                        code_host_urn: code_host_urn.clone().unwrap_or_default(),
                        page_size,
                        page_token,
                    };
                    async move {
                        let listed = client.list_repositories(request).await?.into_inner();
                        Ok(Page {
                            items: listed.repositories,
                            next_page_token: listed.next_page_token,
                            total_size: Some(listed.total_size),
                        })
                    }
                })
                .await?;
            page.print(output, "repositories", repository_json, |repositories| {
                let mut table =
                    Table::new(&["ID", "CODE HOST URN", "NAME", "REGISTERED", "EXTERNAL ID"]);
                for r in repositories {
                    table.row(vec![
                        r.id.clone(),
                        r.code_host_urn.clone(),
                        r.name.clone(),
                        render::yes_no(r.registered).to_owned(),
                        render::or_dash(&r.external_id),
                    ]);
                }
                table
            });
        }
        RepositoryCommand::Register {
            code_host_urn,
            name,
            external_id,
        } => {
            let r = client
                .register_repository(proto::RegisterRepositoryRequest {
                    code_host_urn,
                    name,
                    external_id: external_id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            match output {
                Output::Json => render::print_json(&repository_json(&r)),
                Output::Table => Fields::new()
                    .add("id", r.id.clone())
                    .add("code host urn", r.code_host_urn.clone())
                    .add("name", r.name.clone())
                    .add("external id", render::or_dash(&r.external_id))
                    .add("url", render::or_dash(&r.url))
                    .add("clone urls", render::list_or(&r.clone_urls, "-"))
                    .add("registered", render::yes_no(r.registered))
                    .add("former names", render::list_or(&r.former_names, "-"))
                    .print(),
            }
        }
        RepositoryCommand::Sync {
            id,
            code_host_urn,
            name,
            receiver,
        } => {
            if id.is_none() && name.is_none() && receiver.is_none() {
                return Err(Failure::Usage(
                    "which repositories? give an id, --code-host-urn and --name, or --receiver"
                        .to_owned(),
                ));
            }
            let requested = client
                .request_sync(proto::RequestSyncRequest {
                    repository_id: id.unwrap_or_default(),
                    code_host_urn: code_host_urn.unwrap_or_default(),
                    name: name.unwrap_or_default(),
                    receiver_id: receiver.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print_sync_requests(output, &requested.sync_requests);
        }
    }
    Ok(())
}

pub async fn run_sync(command: SyncCommand, api: &Api, output: Output) -> Result<(), Failure> {
    let mut client = api.repositories();
    match command {
        SyncCommand::List {
            code_host_urn,
            state,
            paging,
        } => {
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = proto::ListSyncRequestsRequest {
                        code_host_urn: code_host_urn.clone().unwrap_or_default(),
                        states: state.clone(),
                        page_size,
                        page_token,
                    };
                    async move {
                        let listed = client.list_sync_requests(request).await?.into_inner();
                        Ok(Page {
                            items: listed.sync_requests,
                            next_page_token: listed.next_page_token,
                            total_size: Some(listed.total_size),
                        })
                    }
                })
                .await?;
            page.print(output, "syncRequests", sync_request_json, sync_table);
        }
        SyncCommand::Claim { worker, max, lease } => {
            let worker = worker
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_default();
            let claimed = client
                .claim_sync_requests(proto::ClaimSyncRequestsRequest {
                    worker,
                    max: max.unwrap_or_default(),
                    lease: lease.map(|d| render::proto_duration(d.into())),
                })
                .await?
                .into_inner();
            print_sync_requests(output, &claimed.sync_requests);
        }
        SyncCommand::Complete { id, error } => {
            let completed = client
                .complete_sync_request(proto::CompleteSyncRequestRequest {
                    id,
                    success: error.is_none(),
                    error: error.unwrap_or_default(),
                })
                .await?
                .into_inner();
            match output {
                Output::Json => render::print_json(&sync_request_json(&completed)),
                Output::Table => sync_table(std::slice::from_ref(&completed)).print(),
            }
        }
    }
    Ok(())
}

/// The sync requests an RPC answered with (RequestSync, ClaimSyncRequests): in JSON, as the
/// response message (`{"syncRequests": [...]}`).
fn print_sync_requests(output: Output, requests: &[proto::SyncRequest]) {
    match output {
        Output::Json => render::print_json(&render::object([(
            "syncRequests",
            Value::Array(requests.iter().map(sync_request_json).collect()),
        )])),
        Output::Table => sync_table(requests).print(),
    }
}

fn sync_table(requests: &[proto::SyncRequest]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "REPOSITORY",
        "STATE",
        "PUSHES",
        "REASON",
        "DUE",
        "WORKER",
        "CLONE URL",
    ]);
    for s in requests {
        table.row(vec![
            s.id.clone(),
            s.repository.clone(),
            enum_short::<SyncRequestState>(s.state),
            s.push_count.to_string(),
            render::or_dash(&s.reason),
            render::time(&s.due_time),
            render::or_dash(&s.worker),
            s.clone_urls
                .first()
                .cloned()
                .unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    table
}

/// `hookgate.v1.Repository` in proto3 JSON.
pub fn repository_json(r: &proto::Repository) -> Value {
    render::object([
        ("id", Value::from(r.id.clone())),
        ("codeHostUrn", Value::from(r.code_host_urn.clone())),
        ("name", Value::from(r.name.clone())),
        ("externalId", Value::from(r.external_id.clone())),
        ("url", Value::from(r.url.clone())),
        ("cloneUrls", render::strings(&r.clone_urls)),
        ("registered", Value::from(r.registered)),
        ("formerNames", render::strings(&r.former_names)),
    ])
}

/// `hookgate.v1.SyncRequest` in proto3 JSON.
pub fn sync_request_json(s: &proto::SyncRequest) -> Value {
    let refs: Vec<Value> = s
        .refs
        .iter()
        .map(|r| {
            render::object([
                ("name", Value::from(r.name.clone())),
                ("oldSha", Value::from(r.old_sha.clone())),
                ("newSha", Value::from(r.new_sha.clone())),
            ])
        })
        .collect();
    render::object([
        ("id", Value::from(s.id.clone())),
        ("repositoryId", Value::from(s.repository_id.clone())),
        ("repository", Value::from(s.repository.clone())),
        ("codeHostUrn", Value::from(s.code_host_urn.clone())),
        ("cloneUrls", render::strings(&s.clone_urls)),
        ("state", render::enum_json::<SyncRequestState>(s.state)),
        ("pushCount", Value::from(s.push_count)),
        ("refs", Value::Array(refs)),
        ("requestTime", render::time_json(&s.request_time)),
        ("dueTime", render::time_json(&s.due_time)),
        ("leaseExpireTime", render::time_json(&s.lease_expire_time)),
        ("worker", Value::from(s.worker.clone())),
        ("reason", Value::from(s.reason.clone())),
    ])
}
