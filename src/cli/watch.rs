//! `hookgate watch`: follows the event feed, one line per entry (`--output json`: one JSON object
//! a line), from `--cursor` on. The feed has no end of its own: when the stream ends or breaks,
//! the command fails with the cursor to resume from.

use clap::Args;
use serde_json::Value;
use tonic::Status;

use super::changesets::changeset_json;
use super::connection::Api;
use super::deliveries::delivery_json;
use super::failure::Failure;
use super::render::{self, enum_short, parse_enum};
use super::repositories::{repository_json, sync_request_json};
use super::{ClientOptions, Output};
use crate::admin::proto::event::Subject;
use crate::admin::proto::{self, ChangesetState, DeliveryState, EventKind, SyncRequestState};

/// `hookgate watch`.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct WatchArgs {
    /// Start after this cursor (the first column of the last line seen); 0 starts from the
    /// oldest retained entry.
    #[arg(long, default_value_t = 0)]
    pub cursor: i64,
    /// Only entries that came through this receiver.
    #[arg(long)]
    pub receiver: Option<String>,
    /// Only entries of this kind (changeset_updated, sync_requested, sync_completed,
    /// delivery_failed, repository_renamed); repeat for several.
    #[arg(long, value_parser = parse_enum::<EventKind>)]
    pub kind: Vec<i32>,
    #[command(flatten)]
    pub client: ClientOptions,
}

pub async fn run(args: WatchArgs, api: &Api, output: Output) -> Result<(), Failure> {
    let mut last = args.cursor;
    let stream = api
        .events()
        .watch(proto::WatchRequest {
            after_cursor: args.cursor,
            receiver_id: args.receiver.unwrap_or_default(),
            kinds: args.kind,
        })
        .await;
    let resume = |last: i64| format!("reconnect with --cursor {last} to resume");
    let mut stream = stream
        .map_err(|status| {
            Status::new(
                status.code(),
                format!("{}; {}", status.message(), resume(last)),
            )
        })?
        .into_inner();
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                last = event.cursor;
                match output {
                    Output::Json => out!("{}", event_json(&event)),
                    Output::Table => out!("{}", line(&event)),
                }
            }
            Ok(None) => {
                return Err(Status::unavailable(format!(
                    "the server ended the feed (is it shutting down?): {}",
                    resume(last)
                ))
                .into());
            }
            Err(status) => {
                return Err(Status::new(
                    status.code(),
                    format!("{}; {}", status.message(), resume(last)),
                )
                .into());
            }
        }
    }
}

/// One entry for people: cursor, time, kind, and what it is about.
fn line(event: &proto::Event) -> String {
    let subject = match &event.subject {
        Some(Subject::Changeset(c)) => format!(
            "changeset {} {}#{} {}: {}",
            c.id,
            c.repository,
            c.number,
            enum_short::<ChangesetState>(c.state),
            render::clip(&c.title, 60)
        ),
        Some(Subject::SyncRequest(s)) => format!(
            "sync request {} {} {} ({})",
            s.id,
            s.repository,
            enum_short::<SyncRequestState>(s.state),
            s.reason
        ),
        Some(Subject::Delivery(d)) => format!(
            "delivery {} {} {}: {}",
            d.id,
            render::or_dash(&d.event),
            enum_short::<DeliveryState>(d.state),
            render::or_dash(&d.last_error)
        ),
        Some(Subject::Repository(r)) => format!(
            "repository {} {} (formerly {})",
            r.id,
            r.name,
            render::list_or(&r.former_names, "-")
        ),
        None => "(deleted since)".to_owned(),
    };
    format!(
        "{}  {}  {}  {subject}",
        event.cursor,
        render::time(&event.time),
        enum_short::<EventKind>(event.kind)
    )
}

/// `hookgate.v1.Event` in proto3 JSON, on one line.
fn event_json(event: &proto::Event) -> Value {
    let (field, subject) = match &event.subject {
        Some(Subject::Changeset(c)) => ("changeset", changeset_json(c)),
        Some(Subject::SyncRequest(s)) => ("syncRequest", sync_request_json(s)),
        Some(Subject::Delivery(d)) => ("delivery", delivery_json(d)),
        Some(Subject::Repository(r)) => ("repository", repository_json(r)),
        None => ("", Value::Null),
    };
    let mut object = render::object([
        ("cursor", render::int64(event.cursor)),
        ("time", render::time_json(&event.time)),
        ("kind", render::enum_json::<EventKind>(event.kind)),
    ]);
    if !subject.is_null() {
        object[field] = subject;
    }
    object
}
