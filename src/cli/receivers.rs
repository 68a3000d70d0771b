//! `hookgate receiver ...`: the receiver registry from the command line. `update` takes plain
//! flags and builds the FieldMask from the ones given; secrets are printed once, on create and
//! rotate, as the API returns them.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::connection::Api;
use super::failure::Failure;
use super::paging::{Page, Paging};
use super::render::{self, Fields, Table, enum_short, parse_enum};
use super::{ClientOptions, Output};
use crate::admin::proto::{self, CodeHostKind, Diagnosis};

/// `hookgate receiver <command>`.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct ReceiverArgs {
    #[command(subcommand)]
    pub command: ReceiverCommand,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum ReceiverCommand {
    /// Registers a receiver; prints its URL and its secret (shown once: configure both on the
    /// code host now).
    Create {
        /// 1 to 100 characters, unique.
        #[arg(long)]
        name: String,
        /// The code host: github, gitlab, bitbucket_server, bitbucket_cloud, gitea (also Forgejo),
        /// azure-devops (or azure_devops) or generic.
        #[arg(long, value_parser = parse_enum::<CodeHostKind>)]
        kind: i32,
        /// The code host's base URL (https://github.com/, https://gitlab.example.com/).
        #[arg(long)]
        code_host_urn: String,
        /// The secret: 8 to 255 characters from A-Z a-z 0-9 . _ ~ -. Default: 40 random ones.
        #[arg(long)]
        secret: Option<String>,
        /// GitLab only: the webhook's signing token as GitLab shows it (whsec_ followed by the
        /// base64 of 32 bytes).
        #[arg(long, conflicts_with = "generate_signing_token")]
        signing_token: Option<String>,
        /// GitLab only: make a signing token and print it (shown once, like the secret).
        #[arg(long)]
        generate_signing_token: bool,
        #[command(flatten)]
        options: OptionFlags,
    },
    /// Lists receivers, oldest first.
    List {
        /// Only receivers of this code host kind.
        #[arg(long, value_parser = parse_enum::<CodeHostKind>)]
        kind: Option<i32>,
        /// With each receiver's health: a DIAGNOSIS column (the JSON has the whole health).
        #[arg(long)]
        health: bool,
        #[command(flatten)]
        paging: Paging,
    },
    /// Shows what a receiver's recent traffic says: the diagnosis in a sentence, the last
    /// times, counts by outcome over the last hour and 24 hours, the last error. Exits 1 unless
    /// the diagnosis is HEALTHY.
    Health {
        /// The receiver's id.
        id: String,
    },
    /// Shows one receiver (never its secret).
    Show {
        /// The receiver's id.
        id: String,
    },
    /// Changes a receiver's name, code host URN or options: only what the flags give changes.
    Update {
        /// The receiver's id.
        id: String,
        /// A new name (1 to 100 characters, unique).
        #[arg(long)]
        name: Option<String>,
        /// A new code host base URL.
        #[arg(long)]
        code_host_urn: Option<String>,
        #[command(flatten)]
        options: OptionFlags,
    },
    /// Gives a receiver a new secret and prints it (shown once). With --overlap the previous
    /// secret keeps working that long, so the code host can be switched without losing
    /// deliveries.
    Rotate {
        /// The receiver's id.
        id: String,
        /// The new secret (same rules as on create). Default: 40 random characters.
        #[arg(long)]
        secret: Option<String>,
        /// How long the previous secret stays valid too (e.g. 1h). Default: it stops now.
        #[arg(long)]
        overlap: Option<humantime::Duration>,
    },
    /// Gives a GitLab receiver a new signing token (its first, or a replacement) and prints it
    /// (shown once). With --overlap the previous token keeps working that long.
    RotateSigningToken {
        /// The receiver's id.
        id: String,
        /// The new token (whsec_ followed by the base64 of 32 bytes). Default: a generated one.
        #[arg(long)]
        signing_token: Option<String>,
        /// How long the previous token stays valid too (e.g. 1h). Default: it stops now.
        #[arg(long)]
        overlap: Option<humantime::Duration>,
    },
    /// Deletes a receiver: its URL answers 404 from now on.
    Delete {
        /// The receiver's id.
        id: String,
    },
    /// Sends the code host's own test event (GitHub ping, Bitbucket Server diagnostics:ping, a
    /// zero-commit push for GitLab and Bitbucket Cloud), signed with the receiver's secret, to
    /// the receiver's URL over real HTTP; prints what came back, and exits 1 unless it was 2xx.
    Test {
        /// The receiver's id.
        id: String,
    },
}

/// The receiver options, as flags; on `update` only the ones given change.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct OptionFlags {
    /// Act only on repositories registered beforehand (true or false).
    #[arg(long)]
    ignore_unmatched: Option<bool>,
    /// Push sync debounce per repository (e.g. 30s, 5m; 0s for none).
    #[arg(long)]
    min_sync_interval: Option<humantime::Duration>,
    /// Glob patterns on branch names, comma-separated (main,release/*): a push touching only
    /// other branches is ignored. "" for every branch.
    #[arg(long, value_delimiter = ',')]
    push_branch_filter: Option<Vec<String>>,
    /// Deliveries accepted per minute; 0 for unlimited.
    #[arg(long)]
    rate_limit_per_minute: Option<u32>,
    /// GitLab receivers with a signing token: how far webhook-timestamp may be from now (e.g.
    /// 5m, the default; whole seconds).
    #[arg(long)]
    signature_tolerance: Option<humantime::Duration>,
    /// GitLab receivers with a signing token: true (the default) = a delivery must carry both
    /// the token and a valid signature; false = either is enough.
    #[arg(long)]
    require_signature: Option<bool>,
}

impl OptionFlags {
    /// The options message (unset flags at their defaults) and the mask paths of the set ones.
    fn to_proto(&self) -> (proto::ReceiverOptions, Vec<String>) {
        let mut paths = Vec::new();
        let mut options = proto::ReceiverOptions::default();
        if let Some(value) = self.ignore_unmatched {
            options.ignore_unmatched = value;
            paths.push("options.ignore_unmatched".to_owned());
        }
        if let Some(value) = self.min_sync_interval {
            options.min_sync_interval = Some(render::proto_duration(value.into()));
            paths.push("options.min_sync_interval".to_owned());
        }
        if let Some(patterns) = &self.push_branch_filter {
            options.push_branch_filter = patterns
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect();
            paths.push("options.push_branch_filter".to_owned());
        }
        if let Some(value) = self.rate_limit_per_minute {
            options.rate_limit_per_minute = value;
            paths.push("options.rate_limit_per_minute".to_owned());
        }
        if let Some(value) = self.signature_tolerance {
            options.signature_tolerance = Some(render::proto_duration(value.into()));
            paths.push("options.signature_tolerance".to_owned());
        }
        if let Some(value) = self.require_signature {
            options.require_signature = Some(value);
            paths.push("options.require_signature".to_owned());
        }
        (options, paths)
    }
}

pub async fn run(command: ReceiverCommand, api: &Api, output: Output) -> Result<(), Failure> {
    let mut client = api.receivers();
    match command {
        ReceiverCommand::Create {
            name,
            kind,
            code_host_urn,
            secret,
            signing_token,
            generate_signing_token,
            options,
        } => {
            let created = client
                .create_receiver(proto::CreateReceiverRequest {
                    name,
                    code_host_kind: kind,
                    code_host_urn,
                    secret: secret.unwrap_or_default(),
                    options: Some(options.to_proto().0),
                    signing_token: signing_token.unwrap_or_default(),
                    generate_signing_token,
                })
                .await?
                .into_inner();
            print_with_secret(
                output,
                created.receiver.as_ref(),
                &created.secret,
                None,
                Some(&created.signing_token).filter(|t| !t.is_empty()),
            );
        }
        ReceiverCommand::List {
            kind,
            health,
            paging,
        } => {
            let view = if health {
                proto::ReceiverView::Health
            } else {
                proto::ReceiverView::Unspecified
            };
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    async move {
                        let listed = client
                            .list_receivers(proto::ListReceiversRequest {
                                page_size,
                                page_token,
                                code_host_kind: kind.unwrap_or_default(),
                                view: view as i32,
                            })
                            .await?
                            .into_inner();
                        Ok(Page {
                            items: listed.receivers,
                            next_page_token: listed.next_page_token,
                            total_size: Some(listed.total_size),
                        })
                    }
                })
                .await?;
            page.print(output, "receivers", receiver_json, |receivers| {
                let mut headers = vec!["ID", "NAME", "KIND", "CODE HOST URN", "LAST DELIVERY"];
                if health {
                    headers.push("DIAGNOSIS");
                }
                let mut table = Table::new(&headers);
                for r in receivers {
                    let mut row = vec![
                        r.id.clone(),
                        r.name.clone(),
                        enum_short::<CodeHostKind>(r.code_host_kind),
                        r.code_host_urn.clone(),
                        render::time(&r.last_delivery_time),
                    ];
                    if health {
                        row.push(
                            r.health
                                .as_ref()
                                .map_or("-".to_owned(), |h| enum_short::<Diagnosis>(h.diagnosis)),
                        );
                    }
                    table.row(row);
                }
                table
            });
        }
        ReceiverCommand::Health { id } => {
            let health = client
                .get_receiver_health(proto::GetReceiverHealthRequest { id })
                .await?
                .into_inner();
            match output {
                Output::Json => render::print_json(&receiver_health_json(&health)),
                Output::Table => print_health(&health),
            }
            if health.diagnosis != Diagnosis::Healthy as i32 {
                return Err(Failure::Outcome(format!(
                    "the receiver is {}",
                    enum_short::<Diagnosis>(health.diagnosis)
                )));
            }
        }
        ReceiverCommand::Show { id } => {
            let receiver = client
                .get_receiver(proto::GetReceiverRequest { id })
                .await?
                .into_inner();
            print(output, &receiver);
        }
        ReceiverCommand::Update {
            id,
            name,
            code_host_urn,
            options,
        } => {
            let (options, mut paths) = options.to_proto();
            let mut receiver = proto::Receiver {
                id,
                options: Some(options),
                ..Default::default()
            };
            if let Some(name) = name {
                receiver.name = name;
                paths.push("name".to_owned());
            }
            if let Some(urn) = code_host_urn {
                receiver.code_host_urn = urn;
                paths.push("code_host_urn".to_owned());
            }
            if paths.is_empty() {
                return Err(Failure::Usage(
                    "nothing to update: give --name, --code-host-urn, --ignore-unmatched, --min-sync-interval, --push-branch-filter or --rate-limit-per-minute".to_owned(),
                ));
            }
            let updated = client
                .update_receiver(proto::UpdateReceiverRequest {
                    receiver: Some(receiver),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?
                .into_inner();
            print(output, &updated);
        }
        ReceiverCommand::Rotate {
            id,
            secret,
            overlap,
        } => {
            let rotated = client
                .rotate_receiver_secret(proto::RotateReceiverSecretRequest {
                    id,
                    secret: secret.unwrap_or_default(),
                    overlap: overlap.map(|d| render::proto_duration(d.into())),
                })
                .await?
                .into_inner();
            print_with_secret(
                output,
                rotated.receiver.as_ref(),
                &rotated.secret,
                Some(&rotated.previous_secret_expire_time),
                None,
            );
        }
        ReceiverCommand::RotateSigningToken {
            id,
            signing_token,
            overlap,
        } => {
            let rotated = client
                .rotate_receiver_signing_token(proto::RotateReceiverSigningTokenRequest {
                    id,
                    signing_token: signing_token.unwrap_or_default(),
                    overlap: overlap.map(|d| render::proto_duration(d.into())),
                })
                .await?
                .into_inner();
            print_signing_token(
                output,
                rotated.receiver.as_ref(),
                &rotated.signing_token,
                &rotated.previous_signing_token_expire_time,
            );
        }
        ReceiverCommand::Delete { id } => {
            client
                .delete_receiver(proto::DeleteReceiverRequest { id: id.clone() })
                .await?;
            match output {
                Output::Json => render::print_json(&Value::Object(Default::default())),
                Output::Table => out!("deleted receiver {id}"),
            }
        }
        ReceiverCommand::Test { id } => {
            let sent = client
                .send_test_delivery(proto::SendTestDeliveryRequest { id })
                .await?
                .into_inner();
            match output {
                Output::Json => render::print_json(&render::object([
                    ("httpStatus", Value::from(sent.http_status)),
                    ("deliveryId", Value::from(sent.delivery_id.clone())),
                    ("message", Value::from(sent.message.clone())),
                ])),
                Output::Table => Fields::new()
                    .add("http status", sent.http_status.to_string())
                    .add("delivery", render::or_dash(&sent.delivery_id))
                    .add("message", sent.message.clone())
                    .print(),
            }
            if !(200..300).contains(&sent.http_status) {
                return Err(Failure::Outcome(format!(
                    "the test delivery was answered {}: {}",
                    sent.http_status, sent.message
                )));
            }
        }
    }
    Ok(())
}

/// A receiver with the secret the API just returned (create, rotate), on rotate when the
/// previous secret stops working, and on create its signing token when it got one.
fn print_with_secret(
    output: Output,
    receiver: Option<&proto::Receiver>,
    secret: &str,
    previous_expires: Option<&Option<prost_types::Timestamp>>,
    signing_token: Option<&String>,
) {
    let receiver = receiver.cloned().unwrap_or_default();
    match output {
        Output::Json => {
            let mut object = render::object([
                ("receiver", receiver_json(&receiver)),
                ("secret", Value::from(secret)),
            ]);
            if let Some(time) = previous_expires.map(render::time_json)
                && !time.is_null()
            {
                object["previousSecretExpireTime"] = time;
            }
            if let Some(token) = signing_token {
                object["signingToken"] = Value::from(token.as_str());
            }
            render::print_json(&object);
        }
        Output::Table => {
            let mut fields = fields(&receiver).add("secret", secret);
            if let Some(token) = signing_token {
                fields = fields.add("new signing token", token.as_str());
            }
            if let Some(expires) = previous_expires {
                fields = fields.add(
                    "previous secret",
                    match expires {
                        Some(_) => format!("valid until {}", render::time(expires)),
                        None => "no longer valid".to_owned(),
                    },
                );
            }
            fields.print();
            eprintln!(
                "The secret is shown once: configure it on the code host now (hookgate never returns it again)."
            );
            if signing_token.is_some() {
                eprintln!("So is the signing token: paste it into GitLab's webhook settings now.");
            }
        }
    }
}

/// A receiver with the signing token `rotate-signing-token` just got, and when the previous token
/// stops working.
fn print_signing_token(
    output: Output,
    receiver: Option<&proto::Receiver>,
    token: &str,
    previous_expires: &Option<prost_types::Timestamp>,
) {
    let receiver = receiver.cloned().unwrap_or_default();
    match output {
        Output::Json => {
            let mut object = render::object([
                ("receiver", receiver_json(&receiver)),
                ("signingToken", Value::from(token)),
            ]);
            let time = render::time_json(previous_expires);
            if !time.is_null() {
                object["previousSigningTokenExpireTime"] = time;
            }
            render::print_json(&object);
        }
        Output::Table => {
            let fields = fields(&receiver).add("new signing token", token).add(
                "previous signing token",
                match previous_expires {
                    Some(_) => format!("valid until {}", render::time(previous_expires)),
                    None => "no longer valid".to_owned(),
                },
            );
            fields.print();
            eprintln!(
                "The signing token is shown once: paste it into GitLab's webhook settings now (hookgate never returns it again)."
            );
        }
    }
}

fn print(output: Output, receiver: &proto::Receiver) {
    match output {
        Output::Json => render::print_json(&receiver_json(receiver)),
        Output::Table => fields(receiver).print(),
    }
}

fn fields(r: &proto::Receiver) -> Fields {
    let options = r.options.clone().unwrap_or_default();
    let mut fields = Fields::new()
        .add("id", r.id.clone())
        .add("name", r.name.clone())
        .add(
            "code host kind",
            enum_short::<CodeHostKind>(r.code_host_kind),
        )
        .add("code host urn", r.code_host_urn.clone())
        .add("url", r.url.clone())
        .add("has secret", render::yes_no(r.has_secret))
        .add("ignore unmatched", render::yes_no(options.ignore_unmatched))
        .add(
            "min sync interval",
            render::duration(&options.min_sync_interval),
        )
        .add(
            "push branch filter",
            render::list_or(&options.push_branch_filter, "(every branch)"),
        )
        .add(
            "rate limit",
            match options.rate_limit_per_minute {
                0 => "unlimited".to_owned(),
                n => format!("{n} a minute"),
            },
        )
        .add(
            "created",
            format!("{} by {}", render::time(&r.create_time), r.created_by),
        )
        .add(
            "updated",
            format!("{} by {}", render::time(&r.update_time), r.updated_by),
        )
        .add("last delivery", render::time(&r.last_delivery_time));
    if r.code_host_kind == CodeHostKind::Gitlab as i32 {
        // Only a GitLab receiver holds a signing token; these options apply to it.
        fields = fields
            .add("signing token", render::yes_no(r.has_signing_token))
            .add(
                "signature tolerance",
                render::duration(&options.signature_tolerance),
            )
            .add(
                "require signature",
                render::yes_no(options.require_signature.unwrap_or(true)),
            );
    }
    fields
}

/// `hookgate.v1.Receiver` in proto3 JSON.
pub fn receiver_json(r: &proto::Receiver) -> Value {
    let options = r.options.clone().unwrap_or_default();
    render::object([
        ("id", Value::from(r.id.clone())),
        ("name", Value::from(r.name.clone())),
        (
            "codeHostKind",
            render::enum_json::<CodeHostKind>(r.code_host_kind),
        ),
        ("codeHostUrn", Value::from(r.code_host_urn.clone())),
        ("url", Value::from(r.url.clone())),
        ("hasSecret", Value::from(r.has_secret)),
        ("hasSigningToken", Value::from(r.has_signing_token)),
        (
            "options",
            render::object([
                ("ignoreUnmatched", Value::from(options.ignore_unmatched)),
                (
                    "minSyncInterval",
                    render::duration_json(&options.min_sync_interval),
                ),
                (
                    "pushBranchFilter",
                    render::strings(&options.push_branch_filter),
                ),
                (
                    "rateLimitPerMinute",
                    Value::from(options.rate_limit_per_minute),
                ),
                (
                    "signatureTolerance",
                    render::duration_json(&options.signature_tolerance),
                ),
                (
                    "requireSignature",
                    options.require_signature.map_or(Value::Null, Value::from),
                ),
            ]),
        ),
        ("createTime", render::time_json(&r.create_time)),
        ("updateTime", render::time_json(&r.update_time)),
        ("createdBy", Value::from(r.created_by.clone())),
        ("updatedBy", Value::from(r.updated_by.clone())),
        ("lastDeliveryTime", render::time_json(&r.last_delivery_time)),
        (
            "health",
            r.health.as_ref().map_or(Value::Null, receiver_health_json),
        ),
    ])
}

/// A receiver's health for people: the diagnosis and its sentence, the last times and the last
/// error, then the counts by outcome.
fn print_health(h: &proto::ReceiverHealth) {
    let last_error = match &h.last_error {
        Some(e) => format!(
            "{} delivery {}: {}",
            render::time(&e.time),
            e.delivery_id,
            e.message
        ),
        None => "-".to_owned(),
    };
    Fields::new()
        .add("receiver", h.receiver_id.clone())
        .add("diagnosis", enum_short::<Diagnosis>(h.diagnosis))
        .add("message", h.diagnosis_message.clone())
        .add("last delivery", render::time(&h.last_delivery_time))
        .add("last accepted", render::time(&h.last_accepted_time))
        .add("last rejected", render::time(&h.last_rejected_time))
        .add("last failed", render::time(&h.last_failed_time))
        .add("last error", last_error)
        .add("computed", render::time(&h.compute_time))
        .print();
    out!("");
    let (hour, day) = (
        h.last_hour.unwrap_or_default(),
        h.last_day.unwrap_or_default(),
    );
    let mut table = Table::new(&["OUTCOME", "LAST HOUR", "LAST 24 HOURS"]);
    for (name, of) in [
        (
            "accepted",
            (|c: &proto::OutcomeCounts| c.accepted) as fn(&_) -> i64,
        ),
        ("processed", |c| c.processed),
        ("ignored", |c| c.ignored),
        ("failed", |c| c.failed),
        ("rejected", |c| c.rejected),
        ("duplicate", |c| c.duplicate),
        ("rate limited", |c| c.rate_limited),
    ] {
        table.row(vec![
            name.to_owned(),
            of(&hour).to_string(),
            of(&day).to_string(),
        ]);
    }
    table.print();
    out!("(duplicate, rate limited, and rejected past the log's cap: this replica's count only)");
}

/// `hookgate.v1.ReceiverHealth` in proto3 JSON.
pub fn receiver_health_json(h: &proto::ReceiverHealth) -> Value {
    let counts = |c: &Option<proto::OutcomeCounts>| match c {
        None => Value::Null,
        Some(c) => render::object([
            ("accepted", render::int64(c.accepted)),
            ("duplicate", render::int64(c.duplicate)),
            ("ignored", render::int64(c.ignored)),
            ("rejected", render::int64(c.rejected)),
            ("rateLimited", render::int64(c.rate_limited)),
            ("processed", render::int64(c.processed)),
            ("failed", render::int64(c.failed)),
        ]),
    };
    render::object([
        ("receiverId", Value::from(h.receiver_id.clone())),
        ("lastDeliveryTime", render::time_json(&h.last_delivery_time)),
        ("lastAcceptedTime", render::time_json(&h.last_accepted_time)),
        ("lastRejectedTime", render::time_json(&h.last_rejected_time)),
        ("lastFailedTime", render::time_json(&h.last_failed_time)),
        ("lastHour", counts(&h.last_hour)),
        ("lastDay", counts(&h.last_day)),
        (
            "lastError",
            h.last_error.as_ref().map_or(Value::Null, |e| {
                render::object([
                    ("deliveryId", Value::from(e.delivery_id.clone())),
                    ("time", render::time_json(&e.time)),
                    ("message", Value::from(e.message.clone())),
                ])
            }),
        ),
        ("diagnosis", render::enum_json::<Diagnosis>(h.diagnosis)),
        ("diagnosisMessage", Value::from(h.diagnosis_message.clone())),
        ("computeTime", render::time_json(&h.compute_time)),
    ])
}
