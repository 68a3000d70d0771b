//! `hookgate delivery ...`: the delivery log from the command line. `show` prints a delivery's
//! headers and its body decoded (pretty-printed when it is JSON), fetching the whole body with
//! StreamDeliveryBody when GetDelivery gives only its start.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::connection::Api;
use super::failure::Failure;
use super::paging::{Page, Paging};
use super::render::{self, Fields, Table, enum_short, parse_enum};
use super::{ClientOptions, Output};
use crate::admin::proto::{self, DeliveryState};

/// `hookgate delivery <command>`.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct DeliveryArgs {
    #[command(subcommand)]
    pub command: DeliveryCommand,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum DeliveryCommand {
    /// Lists deliveries, newest first, without their bodies.
    List {
        /// Only this receiver's deliveries.
        #[arg(long)]
        receiver: Option<String>,
        /// Only deliveries in this state (pending, processing, processed, ignored, failed,
        /// rejected); repeat for several.
        #[arg(long, value_parser = parse_enum::<DeliveryState>)]
        state: Vec<i32>,
        /// Only deliveries answered outside 200-299, or failed.
        #[arg(long)]
        only_errors: bool,
        /// Only deliveries received at or after this time: RFC 3339 (2025-01-31T09:00:00Z) or
        /// a duration ago (90m, 2d).
        #[arg(long, value_parser = parse_time)]
        since: Option<prost_types::Timestamp>,
        /// Only deliveries received before this time (same forms as --since).
        #[arg(long, value_parser = parse_time)]
        until: Option<prost_types::Timestamp>,
        /// Only deliveries of this event, exactly as listed (pull_request/opened, push, ...).
        #[arg(long)]
        event: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Shows one delivery: its outcome, its request headers and its whole body, decoded and
    /// pretty-printed when it is JSON.
    Show {
        /// The delivery's id.
        id: String,
    },
    /// Puts a processed, ignored or failed delivery back in the queue to be processed again.
    Redeliver {
        /// The delivery's id.
        id: String,
    },
    /// Puts every delivery of a receiver that matches back in the queue (by default the failed
    /// ones), as many calls as it takes, and prints how many matched and were queued. The
    /// usual use: `--since` the start of an outage.
    RedeliverAll {
        /// The receiver whose deliveries to redeliver.
        #[arg(long)]
        receiver: String,
        /// Only deliveries in this state (processed, ignored, failed; default failed); repeat
        /// for several.
        #[arg(long, value_parser = parse_enum::<DeliveryState>)]
        state: Vec<i32>,
        /// Only deliveries received at or after this time: RFC 3339 or a duration ago (2h).
        #[arg(long, value_parser = parse_time)]
        since: Option<prost_types::Timestamp>,
        /// Only deliveries received before this time (same forms as --since).
        #[arg(long, value_parser = parse_time)]
        until: Option<prost_types::Timestamp>,
        /// Count what matches and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many per call (the server's default and most: 10000).
        #[arg(long)]
        page_size: Option<i32>,
    },
    /// Lists the receiver ids requests named that no receiver has (an old URL still set at a
    /// code host), the most recent first: the last 100, as the replica answering remembers them.
    Unmatched,
}

/// A time flag: RFC 3339, or a duration before now.
fn parse_time(given: &str) -> Result<prost_types::Timestamp, String> {
    let time = match chrono::DateTime::parse_from_rfc3339(given.trim()) {
        Ok(time) => time.with_timezone(&chrono::Utc),
        Err(_) => {
            let ago = humantime::parse_duration(given.trim()).map_err(|_| {
                "give an RFC 3339 time (2025-01-31T09:00:00Z) or a duration ago (90m, 2d)"
                    .to_owned()
            })?;
            let ago = chrono::Duration::from_std(ago).map_err(|_| "too long ago".to_owned())?;
            chrono::Utc::now() - ago
        }
    };
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).expect("sub-second nanos fit an i32"),
    })
}

pub async fn run(command: DeliveryCommand, api: &Api, output: Output) -> Result<(), Failure> {
    let mut client = api.deliveries();
    match command {
        DeliveryCommand::List {
            receiver,
            state,
            only_errors,
            since,
            until,
            event,
            paging,
        } => {
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = proto::ListDeliveriesRequest {
                        receiver_id: receiver.clone().unwrap_or_default(),
                        states: state.clone(),
                        only_errors,
                        since,
                        until,
                        page_size,
                        page_token,
                        event: event.clone().unwrap_or_default(),
                    };
                    async move {
                        let listed = client.list_deliveries(request).await?.into_inner();
                        Ok(Page {
                            items: listed.deliveries,
                            next_page_token: listed.next_page_token,
                            total_size: Some(listed.total_size),
                        })
                    }
                })
                .await?;
            page.print(output, "deliveries", delivery_json, |deliveries| {
                let mut table = Table::new(&[
                    "ID", "RECEIVED", "EVENT", "STATE", "HTTP", "TRIES", "RECEIVER",
                ]);
                for d in deliveries {
                    table.row(vec![
                        d.id.clone(),
                        render::time(&d.receive_time),
                        render::or_dash(&d.event),
                        enum_short::<DeliveryState>(d.state),
                        d.response_status.to_string(),
                        d.attempts.to_string(),
                        d.receiver_id.clone(),
                    ]);
                }
                table
            });
        }
        DeliveryCommand::Show { id } => {
            let mut delivery = client
                .get_delivery(proto::GetDeliveryRequest { id: id.clone() })
                .await?
                .into_inner();
            if delivery.request_body_truncated {
                let mut chunks = client
                    .stream_delivery_body(proto::StreamDeliveryBodyRequest { id })
                    .await?
                    .into_inner();
                let mut body = Vec::new();
                while let Some(chunk) = chunks.message().await? {
                    body.extend_from_slice(&chunk.data);
                }
                delivery.request_body = body;
                delivery.request_body_truncated = false;
            }
            match output {
                Output::Json => render::print_json(&delivery_json(&delivery)),
                Output::Table => print_delivery(&delivery),
            }
        }
        DeliveryCommand::Redeliver { id } => {
            let delivery = client
                .redeliver_delivery(proto::RedeliverDeliveryRequest { id })
                .await?
                .into_inner();
            match output {
                Output::Json => render::print_json(&delivery_json(&delivery)),
                Output::Table => summary(&delivery).print(),
            }
        }
        DeliveryCommand::RedeliverAll {
            receiver,
            state,
            since,
            until,
            dry_run,
            page_size,
        } => {
            let request = proto::RedeliverDeliveriesRequest {
                receiver_id: receiver,
                states: state,
                since,
                until,
                validate_only: dry_run,
                page_size: page_size.unwrap_or(0),
                page_token: String::new(),
            };
            // The first call says how many match; each call queues a page, until none is left.
            let first = client
                .redeliver_deliveries(request.clone())
                .await?
                .into_inner();
            let (matched, mut queued, mut already_queued, mut calls) =
                (first.matched, first.queued, first.already_queued, 1);
            let mut token = first.next_page_token;
            while !token.is_empty() {
                let next = client
                    .redeliver_deliveries(proto::RedeliverDeliveriesRequest {
                        page_token: std::mem::take(&mut token),
                        ..request.clone()
                    })
                    .await?
                    .into_inner();
                queued += next.queued;
                already_queued += next.already_queued;
                calls += 1;
                token = next.next_page_token;
            }
            match output {
                Output::Json => render::print_json(&render::object([
                    ("matched", render::int64(matched)),
                    ("queued", render::int64(queued)),
                    ("alreadyQueued", render::int64(already_queued)),
                    ("calls", Value::from(calls)),
                    ("dryRun", Value::from(dry_run)),
                ])),
                Output::Table => {
                    let mut fields = Fields::new().add("matched", matched.to_string());
                    fields = if dry_run {
                        fields.add("queued", "0 (dry run: nothing changed)")
                    } else {
                        fields
                            .add("queued", queued.to_string())
                            .add("already queued", already_queued.to_string())
                    };
                    fields.print();
                }
            }
        }
        DeliveryCommand::Unmatched => {
            let listed = client
                .list_unmatched(proto::ListUnmatchedRequest {})
                .await?
                .into_inner();
            match output {
                Output::Json => render::print_json(&render::object([(
                    "receivers",
                    Value::Array(
                        listed
                            .receivers
                            .iter()
                            .map(|u| {
                                render::object([
                                    ("receiverId", Value::from(u.receiver_id.clone())),
                                    ("count", render::int64(u.count)),
                                    ("lastTime", render::time_json(&u.last_time)),
                                ])
                            })
                            .collect(),
                    ),
                )])),
                Output::Table => {
                    let mut table = Table::new(&["RECEIVER ID", "REQUESTS", "LAST"]);
                    for u in &listed.receivers {
                        table.row(vec![
                            u.receiver_id.clone(),
                            u.count.to_string(),
                            render::time(&u.last_time),
                        ]);
                    }
                    table.print();
                }
            }
        }
    }
    Ok(())
}

/// The outcome of a delivery, without headers or bodies.
fn summary(d: &proto::Delivery) -> Fields {
    Fields::new()
        .add("id", d.id.clone())
        .add("receiver", d.receiver_id.clone())
        .add("event", render::or_dash(&d.event))
        .add("delivery key", render::or_dash(&d.delivery_key))
        .add("state", enum_short::<DeliveryState>(d.state))
        .add("received", render::time(&d.receive_time))
        .add("request", format!("{} {}", d.method, d.path))
        .add("response", d.response_status.to_string())
        .add("attempts", d.attempts.to_string())
        .add("last error", render::or_dash(&d.last_error))
        .add("processed", render::time(&d.process_time))
        .add(
            "redelivered",
            match &d.redeliver_time {
                Some(_) => format!(
                    "{} by {}",
                    render::time(&d.redeliver_time),
                    d.redelivered_by
                ),
                None => "-".to_owned(),
            },
        )
}

/// A delivery for people: its outcome, its headers (sorted by name), its body decoded.
fn print_delivery(d: &proto::Delivery) {
    summary(d).print();
    out!("");
    out!("request headers:");
    let mut headers: Vec<_> = d.request_headers.iter().collect();
    headers.sort();
    for (name, value) in headers {
        out!("  {name}: {value}");
    }
    out!("");
    if d.request_body.is_empty() && d.request_body_size == 0 {
        out!("request body: none kept");
    } else {
        let content_type = d
            .request_headers
            .get("content-type")
            .map(String::as_str)
            .unwrap_or("");
        out!("request body ({} bytes):", d.request_body.len());
        out!("{}", decode_body(&d.request_body, content_type));
    }
    if !d.response_body.is_empty() {
        out!("");
        out!("response body:");
        out!("{}", decode_body(&d.response_body, ""));
    }
}

/// A body as people read it: JSON pretty-printed (also GitHub's form-encoded `payload=<JSON>`),
/// other text as it is, binary as a note.
fn decode_body(body: &[u8], content_type: &str) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        return serde_json::to_string_pretty(&json).expect("a serde_json::Value serialises");
    }
    if content_type.starts_with("application/x-www-form-urlencoded")
        && let Some((_, payload)) = form_urlencoded::parse(body).find(|(name, _)| name == "payload")
        && let Ok(json) = serde_json::from_str::<Value>(&payload)
    {
        return format!(
            "(form field `payload`, decoded)\n{}",
            serde_json::to_string_pretty(&json).expect("a serde_json::Value serialises")
        );
    }
    match std::str::from_utf8(body) {
        Ok(text) => text.to_owned(),
        Err(_) => format!(
            "(binary, {} bytes: --output json gives it in base64)",
            body.len()
        ),
    }
}

/// `hookgate.v1.Delivery` in proto3 JSON.
pub fn delivery_json(d: &proto::Delivery) -> Value {
    let headers: serde_json::Map<String, Value> = d
        .request_headers
        .iter()
        .map(|(name, value)| (name.clone(), Value::from(value.clone())))
        .collect();
    render::object([
        ("id", Value::from(d.id.clone())),
        ("receiverId", Value::from(d.receiver_id.clone())),
        ("deliveryKey", Value::from(d.delivery_key.clone())),
        ("event", Value::from(d.event.clone())),
        ("state", render::enum_json::<DeliveryState>(d.state)),
        ("receiveTime", render::time_json(&d.receive_time)),
        ("method", Value::from(d.method.clone())),
        ("path", Value::from(d.path.clone())),
        ("requestHeaders", Value::Object(headers)),
        ("requestBody", render::bytes_json(&d.request_body)),
        ("responseStatus", Value::from(d.response_status)),
        ("responseBody", render::bytes_json(&d.response_body)),
        ("attempts", Value::from(d.attempts)),
        ("lastError", Value::from(d.last_error.clone())),
        ("processTime", render::time_json(&d.process_time)),
        (
            "requestBodyTruncated",
            Value::from(d.request_body_truncated),
        ),
        ("requestBodySize", render::int64(d.request_body_size)),
        ("redeliveredBy", Value::from(d.redelivered_by.clone())),
        ("redeliverTime", render::time_json(&d.redeliver_time)),
    ])
}
