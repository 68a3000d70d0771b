//! The receivers: the list with each one's health, one receiver (its URL, setup guide, health,
//! test delivery and delivery log), and the forms that create, rename, rotate the secret of,
//! delete, and bulk-redeliver. A secret appears only on the answer to the POST that made it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::{Params, get_receiver};
use crate::admin::proto::{
    self, delivery_service_server::DeliveryService, receiver_service_server::ReceiverService,
};
use crate::console::ConsoleState;
use crate::console::api::call;
use crate::console::html::{
    Frame, Notice, PageError, badge, copyable, csrf_field, delivery_state, health, kind, pager,
    time, with_query,
};
use crate::console::session::Ctx;

/// Deliveries per page of a receiver's log.
const DELIVERIES_PAGE: i32 = 25;
/// Receivers per page of the list.
const RECEIVERS_PAGE: i32 = 50;
/// How many calls one bulk redelivery makes at most (10,000 deliveries each).
const MAX_REDELIVER_CALLS: usize = 100;

/// The kinds a receiver can be made with: form value, label.
const KINDS: [(&str, &str); 7] = [
    ("GITHUB", "GitHub"),
    ("GITLAB", "GitLab"),
    ("BITBUCKET_SERVER", "Bitbucket Server / Data Center"),
    ("BITBUCKET_CLOUD", "Bitbucket Cloud"),
    ("GITEA", "Gitea / Forgejo"),
    ("AZURE_DEVOPS", "Azure DevOps"),
    ("GENERIC", "Generic trigger (cron, CI)"),
];

/// The delivery states a listing filters by: form value, proto.
const STATES: [(&str, proto::DeliveryState); 6] = [
    ("PENDING", proto::DeliveryState::Pending),
    ("PROCESSING", proto::DeliveryState::Processing),
    ("PROCESSED", proto::DeliveryState::Processed),
    ("IGNORED", proto::DeliveryState::Ignored),
    ("FAILED", proto::DeliveryState::Failed),
    ("REJECTED", proto::DeliveryState::Rejected),
];

fn kind_from_form(raw: &str) -> i32 {
    use proto::CodeHostKind as K;
    match raw {
        "GITHUB" => K::Github as i32,
        "GITLAB" => K::Gitlab as i32,
        "BITBUCKET_SERVER" => K::BitbucketServer as i32,
        "BITBUCKET_CLOUD" => K::BitbucketCloud as i32,
        "GITEA" => K::Gitea as i32,
        "AZURE_DEVOPS" => K::AzureDevops as i32,
        "GENERIC" => K::Generic as i32,
        // The admin API says what is missing.
        _ => K::Unspecified as i32,
    }
}

fn state_from_form(raw: &str) -> Result<i32, PageError> {
    super::state_named(&STATES, raw, "delivery state")
}

/// GET /: the receivers.
pub async fn home() -> Redirect {
    Redirect::to("/receivers")
}

/// GET /receivers: every receiver with its health, and the requests to unknown receiver ids.
pub async fn list(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let params = Params::query(query);
    let token = params.get("page_token");
    let table = receivers_table(&state, token).await?;
    // A side panel: when it cannot be read, the list is still shown, with the reason.
    let unmatched = state
        .api
        .deliveries
        .list_unmatched(call(proto::ListUnmatchedRequest {}))
        .await
        .map(tonic::Response::into_inner);
    let body = html! {
        div.title {
            h1 { "Receivers" }
            a.button href="/receivers/new" { "New receiver" }
            span.muted { span.live-dot {} span.live-label {} }
        }
        section {
            div #receivers data-live-src=(with_query("/receivers/table", &[("page_token", token)])) {
                (table)
            }
        }
        section #unmatched {
            h2 { "Requests to unknown receiver URLs" }
            @match &unmatched {
                Err(e) => p.notice.error { "Cannot be listed: " (e.message()) }
                Ok(unmatched) => (unmatched_table(unmatched)),
            }
        }
    };
    Ok(Frame::new(&ctx, "Receivers")
        .notices(ctx.notices(&state))
        .live("/live")
        .render(body))
}

fn unmatched_table(unmatched: &proto::ListUnmatchedResponse) -> Markup {
    html! {
            @if unmatched.receivers.is_empty() {
                p.muted { "None since this replica started: every request named a receiver that exists." }
            } @else {
                p.muted {
                    "A code host still calls a URL whose receiver does not exist (deleted, or an old URL pasted): "
                    "give it the URL of a receiver above. Kept in this replica's memory, the most recent 100 ids."
                }
                table {
                    thead { tr { th { "Receiver id in the URL" } th.num { "Requests" } th { "Last" } } }
                    tbody {
                        @for u in &unmatched.receivers {
                            tr {
                                td { code { (u.receiver_id) } }
                                td.num { (u.count) }
                                td { (time(u.last_time.as_ref())) }
                            }
                        }
                    }
                }
            }
    }
}

/// GET /receivers/table: the list's table alone, for live refresh.
pub async fn table_fragment(
    State(state): State<ConsoleState>,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let params = Params::query(query);
    Ok(Html(
        receivers_table(&state, params.get("page_token"))
            .await?
            .into_string(),
    ))
}

async fn receivers_table(state: &ConsoleState, token: &str) -> Result<Markup, PageError> {
    let page = state
        .api
        .receivers
        .list_receivers(call(proto::ListReceiversRequest {
            page_size: RECEIVERS_PAGE,
            page_token: token.to_owned(),
            view: proto::ReceiverView::Health as i32,
            ..Default::default()
        }))
        .await?
        .into_inner();
    Ok(html! {
        @if page.receivers.is_empty() {
            p.muted { "No receivers yet. " a href="/receivers/new" { "Make one" } " for each code host that should send webhooks here." }
        } @else {
            table.receivers {
                thead { tr { th { "Receiver" } th { "Health" } } }
                tbody {
                    @for r in &page.receivers {
                        tr {
                            td.receiver {
                                a.name href=(format!("/receivers/{}", r.id)) { (r.name) }
                                " " (badge(kind(r.code_host_kind), "muted"))
                                " " code.urn { (r.code_host_urn) }
                                div.url { (copyable(&format!("url-{}", r.id), &r.url)) }
                            }
                            td { (health(r.health.as_ref())) }
                        }
                    }
                }
            }
            p.muted { (page.total_size) " receivers" }
            (pager("/receivers", token, &page.next_page_token))
        }
    })
}

/// GET /receivers/new: the form that makes a receiver.
pub async fn new_form(State(state): State<ConsoleState>, ctx: Ctx) -> Html<String> {
    Frame::new(&ctx, "New receiver")
        .notices(ctx.notices(&state))
        .render(create_form(&ctx, &Params::default(), None))
}

fn create_form(ctx: &Ctx, values: &Params, error: Option<&str>) -> Markup {
    let chosen = values.get("kind");
    html! {
        div.title { h1 { "New receiver" } }
        section {
            @if let Some(error) = error {
                p.notice.error role="alert" { (error) }
            }
            form.stack method="post" action="/receivers" {
                (csrf_field(ctx))
                label for="name" { "Name" }
                input #name type="text" name="name" value=(values.get("name")) required maxlength="100";
                p.hint { "1 to 100 characters, unique: what people call it (" code { "github-main" } ")." }
                label for="kind" { "Code host kind" }
                select #kind name="kind" {
                    @for (value, label) in KINDS {
                        option value=(value) selected[chosen == value] { (label) }
                    }
                }
                label for="urn" { "Code host URL" }
                input #urn type="text" name="code_host_urn" value=(values.get("code_host_urn")) placeholder="https://github.com" required;
                p.hint { "The base URL of the host the repositories live on; events for repositories elsewhere are ignored." }
                label for="secret" { "Secret (optional)" }
                input #secret type="password" name="secret" autocomplete="off";
                p.hint { "Empty: hookgate makes a random one and shows it once. Or 8 to 255 characters from A-Z a-z 0-9 . _ ~ -." }
                label.check {
                    input type="checkbox" name="ignore_unmatched" value="1" checked[values.ticked("ignore_unmatched")];
                    " Act only on registered repositories"
                }
                p { button type="submit" { "Create receiver" } }
            }
        }
    }
}

/// POST /receivers: makes a receiver, and answers with its secret, shown this once.
pub async fn create(State(state): State<ConsoleState>, ctx: Ctx, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let request = proto::CreateReceiverRequest {
        name: form.get("name").to_owned(),
        code_host_kind: kind_from_form(form.get("kind")),
        code_host_urn: form.get("code_host_urn").to_owned(),
        secret: form.get("secret").to_owned(),
        options: Some(proto::ReceiverOptions {
            ignore_unmatched: form.ticked("ignore_unmatched"),
            ..Default::default()
        }),
        // A signing token is given with the CLI or the API, not from the console.
        ..Default::default()
    };
    match state.api.receivers.create_receiver(call(request)).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            let Some(receiver) = answer.receiver else {
                return PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the admin API made the receiver but did not return it",
                )
                .into_response();
            };
            reveal(&ctx, &receiver, &answer.secret, "created", None).into_response()
        }
        Err(status) if refused_form(&status) => {
            let page = Frame::new(&ctx, "New receiver").render(create_form(
                &ctx,
                &form,
                Some(status.message()),
            ));
            (crate::console::html::http_status(status.code()), page).into_response()
        }
        Err(status) => PageError::from(status).into_response(),
    }
}

/// Whether the admin API refused a form's values (shown again with its message) rather than
/// failed.
fn refused_form(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::AlreadyExists
    )
}

/// The answer to a create or a rotation: the one time the secret is shown.
fn reveal(
    ctx: &Ctx,
    receiver: &proto::Receiver,
    secret: &str,
    what: &str,
    previous_expires: Option<&prost_types::Timestamp>,
) -> Html<String> {
    let body = html! {
        div.title { h1 { "Receiver " (receiver.name) " " (what) } }
        section {
            p.notice.ok role="status" {
                "Copy the secret now: this is the only time it is shown. If it is lost, rotate it."
            }
            dl.facts {
                dt { "URL" } dd { (copyable("new-url", &receiver.url)) }
                dt { "Secret" } dd { span.secret { (copyable("new-secret", secret)) } }
                @if let Some(expires) = previous_expires {
                    dt { "Previous secret" } dd { "still accepted until " (time(Some(expires))) }
                }
            }
            p { "Paste both at the code host (the receiver's page has the guide)." }
            p { a.button href=(format!("/receivers/{}", receiver.id)) { "Go to the receiver" } }
        }
    };
    Frame::new(ctx, "Receiver secret").render(body)
}

/// GET /receivers/{id}: one receiver.
pub async fn show(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let receiver = get_receiver(&state, &id).await?;
    let filters = DeliveryFilters::from(&Params::query(query))?;
    let health_part = health_section(&state, &receiver.id).await?;
    let deliveries = deliveries_table(&state, &receiver.id, &filters).await?;
    let is_generic = receiver.code_host_kind == proto::CodeHostKind::Generic as i32;
    let never_received = receiver.last_delivery_time.is_none();
    let options = receiver.options.clone().unwrap_or_default();
    let since_default = (chrono::Utc::now() - chrono::Duration::hours(24))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let body = html! {
        div.title {
            h1 { (receiver.name) }
            (badge(kind(receiver.code_host_kind), "muted"))
            span.sub { code { (receiver.code_host_urn) } }
        }
        div.grid {
            section {
                h2 { "Webhook URL" }
                p { (copyable("receiver-url", &receiver.url)) }
                dl.facts {
                    dt { "Id" } dd { code { (receiver.id) } }
                    dt { "Made" } dd { (time(receiver.create_time.as_ref())) " by " (receiver.created_by) }
                    dt { "Changed" } dd { (time(receiver.update_time.as_ref())) " by " (receiver.updated_by) }
                    dt { "Repositories" } dd {
                        @if options.ignore_unmatched { "registered ones only" } @else { "every one on its code host" }
                    }
                    @if options.rate_limit_per_minute > 0 {
                        dt { "Rate limit" } dd { (options.rate_limit_per_minute) " deliveries a minute" }
                    }
                    @if !options.push_branch_filter.is_empty() {
                        dt { "Push branches" } dd { code { (options.push_branch_filter.join(", ")) } }
                    }
                    @if receiver.code_host_kind == proto::CodeHostKind::Gitlab as i32 {
                        // Whether it has one, never the token (shown once, by the API or CLI).
                        dt { "Signing token" } dd #signing-token {
                            @if receiver.has_signing_token {
                                "set"
                                @if options.require_signature == Some(false) { " (the token alone is accepted too)" }
                            } @else { "not set" }
                        }
                    }
                }
                div.actions {
                    a.button.secondary href=(format!("/receivers/{}/edit", receiver.id)) { "Rename" }
                    a.button.secondary href=(format!("/receivers/{}/delete", receiver.id)) { "Delete…" }
                }
                h3 { "Rotate secret" }
                form.row method="post" action=(format!("/receivers/{}/rotate", receiver.id)) {
                    (csrf_field(&ctx))
                    label { "Old secret keeps working for"
                        select name="overlap" {
                            option value="" { "no time: stops now" }
                            option value="1h" { "1 hour" }
                            option value="24h" { "24 hours" }
                            option value="7d" { "7 days" }
                        }
                    }
                    button.secondary type="submit" { "Rotate secret" }
                }
            }
            section {
                h2 { "Health " span.muted { span.live-dot {} span.live-label {} } }
                div #health data-live-src=(format!("/receivers/{}/health", receiver.id)) {
                    (health_part)
                }
                @if !is_generic {
                    h3 { "Test" }
                    form.row method="post" action=(format!("/receivers/{}/test", receiver.id)) {
                        (csrf_field(&ctx))
                        button #send-test type="submit" { "Send test delivery" }
                        span.muted { "The code host's own test event, signed with this receiver's secret, sent to its URL." }
                    }
                }
            }
        }
        section {
            details.guide open[never_received] {
                summary { "Set it up at " (kind(receiver.code_host_kind)) }
                (crate::console::guide::for_kind(receiver.code_host_kind, &receiver.url))
            }
        }
        section #log {
            h2 { "Deliveries" }
            form.row method="get" action=(format!("/receivers/{}", receiver.id)) {
                label.check { input type="checkbox" name="errors" value="1" checked[filters.only_errors]; " Errors only" }
                label { "State"
                    select name="state" {
                        option value="" { "any" }
                        @for (name, _) in STATES {
                            option value=(name) selected[filters.state == name] { (name) }
                        }
                    }
                }
                label { "Event" input type="text" name="event" value=(filters.event) placeholder="push, pull_request/opened…"; }
                button.secondary type="submit" { "Filter" }
            }
            div #deliveries data-live-src=(filters.path(&format!("/receivers/{}/deliveries", receiver.id))) {
                (deliveries)
            }
        }
        @if !is_generic {
            section #bulk {
                h2 { "Redeliver failed since…" }
                form.row method="get" action=(format!("/receivers/{}/redeliver", receiver.id)) {
                    label { "Received since (UTC)" input type="datetime-local" name="since" value=(since_default); }
                    label.check { input type="checkbox" name="state" value="FAILED" checked; " failed" }
                    label.check { input type="checkbox" name="state" value="IGNORED"; " ignored" }
                    label.check { input type="checkbox" name="state" value="PROCESSED"; " processed" }
                    input type="hidden" name="count" value="1";
                    button.secondary type="submit" { "Count them" }
                }
                p.muted { "The next page says how many match and asks before queueing them again." }
            }
        }
    };
    Ok(Frame::new(&ctx, &receiver.name)
        .notices(ctx.notices(&state))
        .live(format!("/live?receiver={}", receiver.id))
        .render(body))
}

/// GET /receivers/{id}/health: the health part of a receiver's page, for live refresh.
pub async fn health_fragment(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    Ok(Html(health_section(&state, &id).await?.into_string()))
}

async fn health_section(state: &ConsoleState, id: &str) -> Result<Markup, PageError> {
    let h = state
        .api
        .receivers
        .get_receiver_health(call(proto::GetReceiverHealthRequest { id: id.to_owned() }))
        .await?
        .into_inner();
    let hour = h.last_hour.unwrap_or_default();
    let day = h.last_day.unwrap_or_default();
    let rows: [(&str, i64, i64); 7] = [
        ("accepted", hour.accepted, day.accepted),
        ("processed", hour.processed, day.processed),
        ("duplicate", hour.duplicate, day.duplicate),
        ("ignored", hour.ignored, day.ignored),
        ("rejected", hour.rejected, day.rejected),
        ("rate limited", hour.rate_limited, day.rate_limited),
        ("failed", hour.failed, day.failed),
    ];
    Ok(html! {
        p.diagnosis-line { (health(Some(&h))) }
        dl.facts {
            dt { "Last delivery" } dd { (time(h.last_delivery_time.as_ref())) }
            dt { "Last accepted" } dd { (time(h.last_accepted_time.as_ref())) }
            dt { "Last rejected" } dd { (time(h.last_rejected_time.as_ref())) }
            dt { "Last failed" } dd { (time(h.last_failed_time.as_ref())) }
            @if let Some(e) = &h.last_error {
                dt { "Last error" }
                dd {
                    (time(e.time.as_ref())) ": " (e.message)
                    @if !e.delivery_id.is_empty() {
                        " " a href=(format!("/deliveries/{}", e.delivery_id)) { "(delivery)" }
                    }
                }
            }
        }
        table.counts {
            thead { tr { th { "Requests" } th.num { "last hour" } th.num { "last 24 hours" } } }
            tbody {
                @for (name, hour, day) in rows {
                    tr { td { (name) } td.num { (hour) } td.num { (day) } }
                }
            }
        }
    })
}

/// The filters of a receiver's delivery log, from its query string.
struct DeliveryFilters {
    only_errors: bool,
    /// A state's name, or empty.
    state: String,
    event: String,
    page_token: String,
}

impl DeliveryFilters {
    fn from(params: &Params) -> Result<Self, PageError> {
        let state = params.get("state").to_owned();
        if !state.is_empty() {
            state_from_form(&state)?;
        }
        Ok(Self {
            only_errors: params.ticked("errors"),
            state,
            event: params.get("event").to_owned(),
            page_token: params.get("page_token").to_owned(),
        })
    }

    /// `path` with these filters (and the page token, if `with_token`) as its query.
    fn path_with(&self, path: &str, with_token: bool) -> String {
        with_query(
            path,
            &[
                ("errors", if self.only_errors { "1" } else { "" }),
                ("state", &self.state),
                ("event", &self.event),
                ("page_token", if with_token { &self.page_token } else { "" }),
            ],
        )
    }

    fn path(&self, path: &str) -> String {
        self.path_with(path, true)
    }
}

/// GET /receivers/{id}/deliveries: a receiver's delivery log alone (same filters as its page),
/// for live refresh.
pub async fn deliveries_fragment(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let filters = DeliveryFilters::from(&Params::query(query))?;
    Ok(Html(
        deliveries_table(&state, &id, &filters).await?.into_string(),
    ))
}

async fn deliveries_table(
    state: &ConsoleState,
    receiver_id: &str,
    filters: &DeliveryFilters,
) -> Result<Markup, PageError> {
    let states = super::state_filter(&STATES, &filters.state, "delivery state")?;
    let page = state
        .api
        .deliveries
        .list_deliveries(call(proto::ListDeliveriesRequest {
            receiver_id: receiver_id.to_owned(),
            states,
            only_errors: filters.only_errors,
            event: filters.event.clone(),
            page_size: DELIVERIES_PAGE,
            page_token: filters.page_token.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let base = filters.path_with(&format!("/receivers/{receiver_id}"), false);
    Ok(html! {
        @if page.deliveries.is_empty() {
            p.muted #no-deliveries { "No deliveries match." }
        } @else {
            table.deliveries {
                thead { tr { th { "Received" } th { "Event" } th { "State" } th.num { "HTTP" } th.num { "Tries" } th { "Delivery key" } } }
                tbody {
                    @for d in &page.deliveries {
                        tr.delivery data-id=(d.id) {
                            td { a href=(format!("/deliveries/{}", d.id)) { (time(d.receive_time.as_ref())) } }
                            td { a href=(format!("/deliveries/{}", d.id)) { (if d.event.is_empty() { "(none)" } else { &d.event }) } }
                            td { (delivery_state(d.state)) }
                            td.num { (d.response_status) }
                            td.num { (d.attempts) }
                            td { code { (d.delivery_key) } }
                        }
                    }
                }
            }
        }
        p.muted { (page.total_size) " deliveries match" }
        (pager(&base, &filters.page_token, &page.next_page_token))
    })
}

/// GET /receivers/{id}/edit: the rename form.
pub async fn edit_form(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let receiver = get_receiver(&state, &id).await?;
    let mut values = Params::default();
    values.0.insert("name".into(), vec![receiver.name.clone()]);
    values
        .0
        .insert("code_host_urn".into(), vec![receiver.code_host_urn.clone()]);
    Ok(Frame::new(&ctx, "Rename receiver").render(edit_page(&ctx, &receiver, &values, None)))
}

fn edit_page(
    ctx: &Ctx,
    receiver: &proto::Receiver,
    values: &Params,
    error: Option<&str>,
) -> Markup {
    html! {
        div.title { h1 { "Rename " (receiver.name) } }
        section {
            @if let Some(error) = error {
                p.notice.error role="alert" { (error) }
            }
            form.stack method="post" action=(format!("/receivers/{}/edit", receiver.id)) {
                (csrf_field(ctx))
                label for="name" { "Name" }
                input #name type="text" name="name" value=(values.get("name")) required maxlength="100";
                label for="urn" { "Code host URL" }
                input #urn type="text" name="code_host_urn" value=(values.get("code_host_urn")) required;
                p.hint { "The URL and the secret stay the same: nothing changes at the code host." }
                p.actions {
                    button type="submit" { "Save" }
                    a href=(format!("/receivers/{}", receiver.id)) { "Cancel" }
                }
            }
        }
    }
}

/// POST /receivers/{id}/edit: renames (and re-points) a receiver.
pub async fn edit(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    let receiver = match get_receiver(&state, &id).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut paths = Vec::new();
    if form.get("name") != receiver.name {
        paths.push("name".to_owned());
    }
    if form.get("code_host_urn") != receiver.code_host_urn {
        paths.push("code_host_urn".to_owned());
    }
    if paths.is_empty() {
        state
            .sessions
            .notify(&ctx.id, Notice::ok("Nothing to change."));
        return Redirect::to(&format!("/receivers/{id}")).into_response();
    }
    let request = proto::UpdateReceiverRequest {
        receiver: Some(proto::Receiver {
            id: receiver.id.clone(),
            name: form.get("name").to_owned(),
            code_host_urn: form.get("code_host_urn").to_owned(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    match state.api.receivers.update_receiver(call(request)).await {
        Ok(updated) => {
            let updated = updated.into_inner();
            state.sessions.notify(
                &ctx.id,
                Notice::ok(format!("Saved: the receiver is now {}.", updated.name)),
            );
            Redirect::to(&format!("/receivers/{}", updated.id)).into_response()
        }
        Err(status) if refused_form(&status) => {
            let page = Frame::new(&ctx, "Rename receiver").render(edit_page(
                &ctx,
                &receiver,
                &form,
                Some(status.message()),
            ));
            (crate::console::html::http_status(status.code()), page).into_response()
        }
        Err(status) => PageError::from(status).into_response(),
    }
}

/// POST /receivers/{id}/rotate: a new secret, shown once on this answer.
pub async fn rotate(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    let overlap = match form.get("overlap") {
        "" => None,
        raw => match humantime::parse_duration(raw) {
            Ok(d) => prost_types::Duration::try_from(d).ok(),
            Err(_) => {
                return PageError::bad_request(format!(
                    "overlap {raw:?} is not a duration such as 24h"
                ))
                .into_response();
            }
        },
    };
    let request = proto::RotateReceiverSecretRequest {
        id,
        secret: String::new(),
        overlap,
    };
    match state
        .api
        .receivers
        .rotate_receiver_secret(call(request))
        .await
    {
        Ok(answer) => {
            let answer = answer.into_inner();
            match &answer.receiver {
                Some(receiver) => reveal(
                    &ctx,
                    receiver,
                    &answer.secret,
                    "has a new secret",
                    answer.previous_secret_expire_time.as_ref(),
                )
                .into_response(),
                None => PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the admin API rotated the secret but did not return the receiver",
                )
                .into_response(),
            }
        }
        Err(status) => PageError::from(status).into_response(),
    }
}

/// GET /receivers/{id}/delete: asks before deleting.
pub async fn delete_form(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let receiver = get_receiver(&state, &id).await?;
    let body = html! {
        div.title { h1 { "Delete " (receiver.name) "?" } }
        section {
            p { "Its URL stops working at once: code hosts that still call it get 404. Its delivery log is deleted with it. This cannot be undone." }
            p { code { (receiver.url) } }
            form.actions method="post" action=(format!("/receivers/{}/delete", receiver.id)) {
                (csrf_field(&ctx))
                button.danger type="submit" { "Delete receiver" }
                a href=(format!("/receivers/{}", receiver.id)) { "Cancel" }
            }
        }
    };
    Ok(Frame::new(&ctx, "Delete receiver").render(body))
}

/// POST /receivers/{id}/delete.
pub async fn delete(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Redirect, PageError> {
    let receiver = get_receiver(&state, &id).await?;
    state
        .api
        .receivers
        .delete_receiver(call(proto::DeleteReceiverRequest { id }))
        .await?;
    state.sessions.notify(
        &ctx.id,
        Notice::ok(format!("Receiver {} deleted.", receiver.name)),
    );
    Ok(Redirect::to("/receivers"))
}

/// POST /receivers/{id}/test: sends the code host's test event and shows the answer.
pub async fn send_test(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Redirect, PageError> {
    let answer = state
        .api
        .receivers
        .send_test_delivery(call(proto::SendTestDeliveryRequest { id: id.clone() }))
        .await?
        .into_inner();
    let ok = (200..300).contains(&answer.http_status);
    let text = if answer.http_status == 0 {
        format!("Test delivery: no answer. {}", answer.message)
    } else {
        format!(
            "Test delivery answered HTTP {}: {}",
            answer.http_status, answer.message
        )
    };
    let mut notice = if ok {
        Notice::ok(text)
    } else {
        Notice::error(text)
    };
    if !answer.delivery_id.is_empty() {
        notice = notice.with_link(
            "See the delivery",
            format!("/deliveries/{}", answer.delivery_id),
        );
    }
    state.sessions.notify(&ctx.id, notice);
    Ok(Redirect::to(&format!("/receivers/{id}")))
}

/// A bulk redelivery's parameters, from the form.
struct Bulk {
    states: Vec<i32>,
    since: Option<prost_types::Timestamp>,
    until: Option<prost_types::Timestamp>,
    /// The values as given, to show the form again.
    since_raw: String,
    until_raw: String,
    state_names: Vec<String>,
}

impl Bulk {
    fn from(params: &Params) -> (Self, Option<String>) {
        let mut error = None;
        let mut states = Vec::new();
        let mut state_names = Vec::new();
        for name in params.all("state") {
            match state_from_form(name) {
                Ok(s) => {
                    states.push(s);
                    state_names.push(name.to_owned());
                }
                Err(e) => error = Some(e.message),
            }
        }
        let mut time = |field: &str| match parse_form_time(params.get(field)) {
            Ok(t) => t,
            Err(e) => {
                error = Some(format!("{field}: {e}"));
                None
            }
        };
        let since = time("since");
        let until = time("until");
        (
            Self {
                states,
                since,
                until,
                since_raw: params.get("since").to_owned(),
                until_raw: params.get("until").to_owned(),
                state_names,
            },
            error,
        )
    }

    fn request(
        &self,
        receiver_id: &str,
        validate_only: bool,
        page_token: String,
    ) -> proto::RedeliverDeliveriesRequest {
        proto::RedeliverDeliveriesRequest {
            receiver_id: receiver_id.to_owned(),
            states: self.states.clone(),
            since: self.since,
            until: self.until,
            validate_only,
            page_size: 0,
            page_token,
        }
    }

    /// The form's fields, hidden, to send them again with the confirmation.
    fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="since" value=(self.since_raw);
            input type="hidden" name="until" value=(self.until_raw);
            @for name in &self.state_names {
                input type="hidden" name="state" value=(name);
            }
        }
    }
}

/// A time from a form: `2026-12-02T05:50` (a `datetime-local` field, taken as UTC), with
/// seconds, or RFC 3339; empty is none.
fn parse_form_time(raw: &str) -> Result<Option<prost_types::Timestamp>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let at = chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
                .map(|t| t.and_utc())
        })
        .map_err(|_| format!("{raw:?} is not a time: give one such as 2026-12-02T05:50 (UTC)"))?;
    Ok(Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }))
}

/// GET /receivers/{id}/redeliver: the bulk redelivery form; with `count`, how many deliveries
/// match (nothing is changed) and a button to queue them.
pub async fn redeliver_form(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let receiver = get_receiver(&state, &id).await?;
    let params = Params::query(query);
    let (bulk, error) = Bulk::from(&params);
    let mut status = StatusCode::OK;
    let mut message = error;
    let mut counted = None;
    if message.is_none() && params.ticked("count") {
        match state
            .api
            .deliveries
            .redeliver_deliveries(call(bulk.request(&receiver.id, true, String::new())))
            .await
        {
            Ok(answer) => counted = Some(answer.into_inner()),
            Err(e) if e.code() == tonic::Code::InvalidArgument => {
                message = Some(e.message().to_owned())
            }
            Err(e) => return Err(e.into()),
        }
    }
    if message.is_some() {
        status = StatusCode::BAD_REQUEST;
    }
    let ticked = |name: &str| bulk.state_names.iter().any(|s| s == name);
    let body = html! {
        div.title { h1 { "Redeliver deliveries of " a href=(format!("/receivers/{}", receiver.id)) { (receiver.name) } } }
        section {
            @if let Some(message) = &message {
                p.notice.error role="alert" { (message) }
            }
            form.row method="get" action=(format!("/receivers/{}/redeliver", receiver.id)) {
                label { "Received since (UTC)" input type="datetime-local" name="since" value=(bulk.since_raw); }
                label { "Until (UTC, optional)" input type="datetime-local" name="until" value=(bulk.until_raw); }
                label.check { input type="checkbox" name="state" value="FAILED" checked[ticked("FAILED") || bulk.state_names.is_empty()]; " failed" }
                label.check { input type="checkbox" name="state" value="IGNORED" checked[ticked("IGNORED")]; " ignored" }
                label.check { input type="checkbox" name="state" value="PROCESSED" checked[ticked("PROCESSED")]; " processed" }
                input type="hidden" name="count" value="1";
                button.secondary type="submit" { "Count them" }
            }
        }
        @if let Some(counted) = &counted {
            section #count {
                @if counted.matched == 0 {
                    p { "No delivery matches: nothing to redeliver." }
                } @else {
                    p.count {
                        strong { (counted.matched) } " deliveries match"
                        @if counted.already_queued > 0 {
                            ", " (counted.already_queued) " of them already waiting in the queue (left as they are)"
                        }
                        "."
                    }
                    form.actions method="post" action=(format!("/receivers/{}/redeliver", receiver.id)) {
                        (csrf_field(&ctx))
                        (bulk.hidden())
                        button #confirm-redeliver type="submit" { "Redeliver " (counted.matched) " deliveries" }
                        a href=(format!("/receivers/{}", receiver.id)) { "Cancel" }
                    }
                }
            }
        }
    };
    Ok((
        status,
        Frame::new(&ctx, "Redeliver deliveries").render(body),
    )
        .into_response())
}

/// POST /receivers/{id}/redeliver: queues every matching delivery again.
pub async fn redeliver(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Redirect, PageError> {
    let receiver = get_receiver(&state, &id).await?;
    let (bulk, error) = Bulk::from(&Params::parse(&body));
    if let Some(error) = error {
        return Err(PageError::bad_request(error));
    }
    let (mut queued, mut already) = (0i64, 0i64);
    let mut token = String::new();
    for _ in 0..MAX_REDELIVER_CALLS {
        let answer = state
            .api
            .deliveries
            .redeliver_deliveries(call(bulk.request(&receiver.id, false, token)))
            .await?
            .into_inner();
        queued += answer.queued;
        already += answer.already_queued;
        token = answer.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut text = format!("Queued {queued} deliveries again");
    if already > 0 {
        text.push_str(&format!(" ({already} were already waiting in the queue)"));
    }
    if !token.is_empty() {
        text.push_str(": more match, send the form again to go on");
    }
    text.push('.');
    state.sessions.notify(&ctx.id, Notice::ok(text));
    Ok(Redirect::to(&format!("/receivers/{}", receiver.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_utc() {
        let t = parse_form_time("1970-01-01T00:01").unwrap().unwrap();
        assert_eq!(t.seconds, 60);
        let t = parse_form_time("1970-01-01T01:00:00+01:00")
            .unwrap()
            .unwrap();
        assert_eq!(t.seconds, 0);
        assert_eq!(parse_form_time("").unwrap(), None);
        assert!(parse_form_time("yesterday").is_err());
    }
}
