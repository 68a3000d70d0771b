//! `hookgate changeset ...`: changesets (pull/merge requests) and their timelines from the
//! command line.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::connection::Api;
use super::failure::Failure;
use super::paging::{Page, Paging};
use super::render::{self, Fields, Table, enum_short, parse_enum};
use super::{ClientOptions, Output};
use crate::admin::proto::{self, ChangesetState, CheckState, ReviewState};

/// `hookgate changeset <command>`.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct ChangesetArgs {
    #[command(subcommand)]
    pub command: ChangesetCommand,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum ChangesetCommand {
    /// Lists changesets.
    List {
        /// Only changesets on this receiver's code host.
        #[arg(long)]
        receiver: Option<String>,
        /// Only changesets on this code host (its base URL).
        #[arg(long)]
        code_host_urn: Option<String>,
        /// Only this repository (by name: octo-org/hello-world).
        #[arg(long)]
        repository: Option<String>,
        /// Only this pull request number (with --repository).
        #[arg(long)]
        number: Option<i64>,
        /// Only changesets in this state (open, draft, closed, merged); repeat for several.
        #[arg(long, value_parser = parse_enum::<ChangesetState>)]
        state: Vec<i32>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Shows one changeset: state, review and check state, branches, labels.
    Show {
        /// The changeset's id.
        id: String,
    },
    /// Lists a changeset's timeline, oldest first (by the code host's time).
    Events {
        /// The changeset's id.
        id: String,
        #[command(flatten)]
        paging: Paging,
    },
}

pub async fn run(command: ChangesetCommand, api: &Api, output: Output) -> Result<(), Failure> {
    let mut client = api.changesets();
    match command {
        ChangesetCommand::List {
            receiver,
            code_host_urn,
            repository,
            number,
            state,
            paging,
        } => {
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = proto::ListChangesetsRequest {
                        receiver_id: receiver.clone().unwrap_or_default(),
                        code_host_urn: code_host_urn.clone().unwrap_or_default(),
                        repository: repository.clone().unwrap_or_default(),
                        number: number.unwrap_or_default(),
                        states: state.clone(),
                        page_size,
                        page_token,
                    };
                    async move {
                        let listed = client.list_changesets(request).await?.into_inner();
                        Ok(Page {
                            items: listed.changesets,
                            next_page_token: listed.next_page_token,
                            total_size: Some(listed.total_size),
                        })
                    }
                })
                .await?;
            page.print(output, "changesets", changeset_json, |changesets| {
                let mut table = Table::new(&[
                    "ID",
                    "REPOSITORY",
                    "NUMBER",
                    "STATE",
                    "REVIEW",
                    "CHECKS",
                    "TITLE",
                ]);
                for c in changesets {
                    table.row(vec![
                        c.id.clone(),
                        c.repository.clone(),
                        format!("#{}", c.number),
                        enum_short::<ChangesetState>(c.state),
                        enum_short::<ReviewState>(c.review_state),
                        enum_short::<CheckState>(c.check_state),
                        render::clip(&c.title, 60),
                    ]);
                }
                table
            });
        }
        ChangesetCommand::Show { id } => {
            let c = client
                .get_changeset(proto::GetChangesetRequest { id })
                .await?
                .into_inner();
            match output {
                Output::Json => render::print_json(&changeset_json(&c)),
                Output::Table => Fields::new()
                    .add("id", c.id.clone())
                    .add(
                        "repository",
                        format!("{} ({})", c.repository, c.repository_id),
                    )
                    .add("code host urn", c.code_host_urn.clone())
                    .add("number", format!("#{}", c.number))
                    .add("title", c.title.clone())
                    .add("url", c.url.clone())
                    .add("author", render::or_dash(&c.author))
                    .add("state", enum_short::<ChangesetState>(c.state))
                    .add("review state", enum_short::<ReviewState>(c.review_state))
                    .add("check state", enum_short::<CheckState>(c.check_state))
                    .add("head", format!("{} {}", c.head_ref, c.head_sha))
                    .add("base", c.base_ref.clone())
                    .add("labels", render::list_or(&c.labels, "-"))
                    .add("host updated", render::time(&c.host_update_time))
                    .add("merge queue", yes_no(c.in_merge_queue))
                    .add("auto-merge", yes_no(c.auto_merge))
                    .print(),
            }
        }
        ChangesetCommand::Events { id, paging } => {
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = proto::ListChangesetEventsRequest {
                        changeset_id: id.clone(),
                        page_size,
                        page_token,
                    };
                    async move {
                        let listed = client.list_changeset_events(request).await?.into_inner();
                        Ok(Page {
                            items: listed.events,
                            next_page_token: listed.next_page_token,
                            total_size: None,
                        })
                    }
                })
                .await?;
            page.print(output, "events", event_json, |events| {
                let mut table = Table::new(&["TIME", "KIND", "ACTOR", "SUMMARY"]);
                for e in events {
                    table.row(vec![
                        render::time(&e.occur_time),
                        e.kind.clone(),
                        render::or_dash(&e.actor),
                        render::clip(&e.summary, 80),
                    ]);
                }
                table
            });
        }
    }
    Ok(())
}

/// `hookgate.v1.Changeset` in proto3 JSON.
pub fn changeset_json(c: &proto::Changeset) -> Value {
    render::object([
        ("id", Value::from(c.id.clone())),
        ("repositoryId", Value::from(c.repository_id.clone())),
        ("repository", Value::from(c.repository.clone())),
        ("codeHostUrn", Value::from(c.code_host_urn.clone())),
        ("number", render::int64(c.number)),
        ("title", Value::from(c.title.clone())),
        ("url", Value::from(c.url.clone())),
        ("author", Value::from(c.author.clone())),
        ("state", render::enum_json::<ChangesetState>(c.state)),
        (
            "reviewState",
            render::enum_json::<ReviewState>(c.review_state),
        ),
        ("checkState", render::enum_json::<CheckState>(c.check_state)),
        ("headRef", Value::from(c.head_ref.clone())),
        ("baseRef", Value::from(c.base_ref.clone())),
        ("headSha", Value::from(c.head_sha.clone())),
        ("labels", render::strings(&c.labels)),
        ("hostUpdateTime", render::time_json(&c.host_update_time)),
        ("inMergeQueue", Value::from(c.in_merge_queue)),
        ("autoMerge", Value::from(c.auto_merge)),
    ])
}

/// `yes` or `no`, for a flag in a table.
fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}

/// `hookgate.v1.ChangesetEvent` in proto3 JSON.
fn event_json(e: &proto::ChangesetEvent) -> Value {
    render::object([
        ("kind", Value::from(e.kind.clone())),
        ("actor", Value::from(e.actor.clone())),
        ("occurTime", render::time_json(&e.occur_time)),
        ("deliveryId", Value::from(e.delivery_id.clone())),
        ("summary", Value::from(e.summary.clone())),
        ("externalId", Value::from(e.external_id.clone())),
    ])
}
