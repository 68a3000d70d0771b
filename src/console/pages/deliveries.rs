//! One delivery: its request as stored (headers already redacted, the body pretty-printed when it
//! is JSON), hookgate's answer, where processing stands, what it did (the changesets it touched
//! and the sync requests it made or joined), and a button to process it again. Every value on
//! this page came from whoever sent the request.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use maud::{Markup, html};

use super::get_receiver;
use crate::admin::proto::{
    self, changeset_service_server::ChangesetService, delivery_service_server::DeliveryService,
};
use crate::console::ConsoleState;
use crate::console::api::call;
use crate::console::html::{
    Frame, Notice, PageError, changeset_state, csrf_field, delivery_state, sync_state, time,
};
use crate::console::session::Ctx;
use crate::sync::{FeedEntryKind, FeedStore};

/// The most changesets and sync requests "what it did" lists.
const MAX_EFFECTS: u64 = 50;

async fn get_delivery(state: &ConsoleState, id: &str) -> Result<proto::Delivery, PageError> {
    Ok(state
        .api
        .deliveries
        .get_delivery(call(proto::GetDeliveryRequest { id: id.to_owned() }))
        .await?
        .into_inner())
}

/// GET /deliveries/{id}.
pub async fn show(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let d = get_delivery(&state, &id).await?;
    let receiver = get_receiver(&state, &d.receiver_id).await?;
    let effects = what_it_did(&state, &d).await?;
    let headers: BTreeMap<&String, &String> = d.request_headers.iter().collect();
    let title = if d.event.is_empty() {
        "Delivery".to_owned()
    } else {
        format!("Delivery: {}", d.event)
    };
    let body = html! {
        div.title {
            h1 { "Delivery " code { (d.event) } }
            span.sub { "to " a href=(format!("/receivers/{}", receiver.id)) { (receiver.name) } }
            span.muted { span.live-dot {} span.live-label {} }
        }
        section {
            div #summary data-live-src=(format!("/deliveries/{}/summary", d.id)) {
                (summary(&ctx, &d, &receiver))
            }
        }
        section {
            h2 { "What it did" }
            (effects)
        }
        section {
            h2 { "Request" }
            dl.facts {
                dt { "Line" } dd { code { (d.method) " " (d.path) } }
                dt { "Delivery key" } dd { code { (d.delivery_key) } }
            }
            h3 { "Headers" }
            p.muted { "As stored: secrets and tokens are shown as [REDACTED]." }
            table.headers {
                tbody {
                    @for (name, value) in &headers {
                        tr { td { (name) } td { (value) } }
                    }
                }
            }
            h3 { "Body" }
            (request_body(&d))
        }
        section {
            h2 { "Answer" }
            dl.facts { dt { "HTTP status" } dd { (d.response_status) } }
            @if !d.response_body.is_empty() {
                h3 { "Body" }
                (shown_bytes(&d.response_body, "answer-body"))
            }
        }
    };
    Ok(Frame::new(&ctx, &title)
        .notices(ctx.notices(&state))
        .live(format!("/live?receiver={}", d.receiver_id))
        .render(body))
}

/// GET /deliveries/{id}/summary: where processing stands, for live refresh.
pub async fn summary_fragment(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let d = get_delivery(&state, &id).await?;
    let receiver = get_receiver(&state, &d.receiver_id).await?;
    Ok(Html(summary(&ctx, &d, &receiver).into_string()))
}

/// The state, tries, times and error of a delivery, and its Redeliver button (for a delivery
/// that is done, and not a generic trigger's call, whose effects were made when it came).
fn summary(ctx: &Ctx, d: &proto::Delivery, receiver: &proto::Receiver) -> Markup {
    use proto::DeliveryState as S;
    let redeliverable = matches!(
        S::try_from(d.state),
        Ok(S::Processed | S::Ignored | S::Failed)
    ) && receiver.code_host_kind != proto::CodeHostKind::Generic as i32;
    html! {
        dl.facts {
            dt { "State" } dd #state { (delivery_state(d.state)) }
            dt { "Received" } dd { (time(d.receive_time.as_ref())) }
            dt { "Processed" } dd { (time(d.process_time.as_ref())) }
            dt { "Tries" } dd #attempts { (d.attempts) }
            @if !d.last_error.is_empty() {
                dt { "Error" } dd #last-error { (d.last_error) }
            }
            dt { "Id" } dd { code { (d.id) } }
        }
        @if redeliverable {
            form.actions method="post" action=(format!("/deliveries/{}/redeliver", d.id)) {
                (csrf_field(ctx))
                button #redeliver type="submit" { "Redeliver" }
                span.muted { "Processes it again, as if it had just arrived." }
            }
        }
    }
}

/// The request body: pretty JSON, text, or its size when it is neither.
fn request_body(d: &proto::Delivery) -> Markup {
    use proto::DeliveryState as S;
    if d.state == S::Rejected as i32 {
        return html! { p.muted { "Not kept: a delivery whose signature did not verify is stored without its body." } };
    }
    if d.request_body.is_empty() {
        return html! { p.muted { "Empty." } };
    }
    html! {
        @if d.request_body_truncated {
            p.muted { "The first " (d.request_body.len()) " of " (d.request_body_size) " bytes (StreamDeliveryBody gives all of it)." }
        }
        (shown_bytes(&d.request_body, "request-body"))
    }
}

/// Bytes as a person can read them: JSON pretty-printed, else text, else their count.
fn shown_bytes(bytes: &[u8], id: &str) -> Markup {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Ok(pretty) = serde_json::to_string_pretty(&value)
    {
        return html! { pre.body #(id) data-kind="json" { (pretty) } };
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => html! { pre.body #(id) data-kind="text" { (text) } },
        Err(_) => html! { p.muted #(id) { "binary, " (bytes.len()) " bytes" } },
    }
}

/// The changesets a delivery touched (its timeline entries, its changeset updates) and the sync
/// requests it made or joined (its feed entries), linked.
async fn what_it_did(state: &ConsoleState, d: &proto::Delivery) -> Result<Markup, PageError> {
    let id = uuid::Uuid::parse_str(&d.id)
        .map_err(|_| PageError::bad_request(format!("{:?} is not a delivery id", d.id)))?;
    let mut changeset_ids = state.stores.changesets.told_by(id, MAX_EFFECTS).await?;
    let mut sync_ids = Vec::new();
    for entry in FeedStore::new(state.stores.db.clone())
        .of_delivery(id)
        .await?
    {
        let list = match entry.kind {
            FeedEntryKind::ChangesetUpdated => &mut changeset_ids,
            FeedEntryKind::SyncRequested => &mut sync_ids,
            _ => continue,
        };
        if !list.contains(&entry.subject_id) && (list.len() as u64) < MAX_EFFECTS {
            list.push(entry.subject_id);
        }
    }
    let mut changesets = Vec::new();
    for cid in changeset_ids {
        match state
            .api
            .changesets
            .get_changeset(call(proto::GetChangesetRequest {
                id: cid.to_string(),
            }))
            .await
        {
            Ok(c) => changesets.push(c.into_inner()),
            // Deleted since (with its repository): nothing to link.
            Err(e) if e.code() == tonic::Code::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut syncs = Vec::new();
    for sid in sync_ids {
        match state.stores.sync_requests.get(sid).await {
            Ok(r) => syncs.push(crate::admin::sync_request_to_proto(r)),
            Err(crate::store::StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(html! {
        @if changesets.is_empty() && syncs.is_empty() {
            p.muted #no-effects { "Nothing in the store came from this delivery"
                @if !d.last_error.is_empty() { " (see its error above)" }
                "." }
        }
        @if !changesets.is_empty() {
            h3 { "Changesets" }
            table #effect-changesets {
                tbody {
                    @for c in &changesets {
                        tr {
                            td { a href=(format!("/changesets/{}", c.id)) { (c.repository) " #" (c.number) } }
                            td { (c.title) }
                            td { (changeset_state(c.state)) }
                        }
                    }
                }
            }
        }
        @if !syncs.is_empty() {
            h3 { "Sync requests" }
            table #effect-syncs {
                tbody {
                    @for r in &syncs {
                        tr {
                            td { a href=(format!("/sync-requests/{}", r.id)) { (r.repository) } }
                            td { (sync_state(r.state)) }
                            td { (r.reason) ", " (r.push_count) " pushes" }
                        }
                    }
                }
            }
        }
    })
}

/// POST /deliveries/{id}/redeliver: puts the delivery back in the queue.
pub async fn redeliver(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Redirect, PageError> {
    state
        .api
        .deliveries
        .redeliver_delivery(call(proto::RedeliverDeliveryRequest { id: id.clone() }))
        .await?;
    state.sessions.notify(
        &ctx.id,
        Notice::ok("Queued again: the worker processes it as if it had just arrived."),
    );
    Ok(Redirect::to(&format!("/deliveries/{id}")))
}
