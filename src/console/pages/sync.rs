//! What deliveries turned into: repositories, a repository's changesets with their state, review
//! and check badges, a changeset's timeline (each entry linked to the delivery that told it), and
//! the sync request queue.

use axum::extract::{Path, RawQuery, State};
use axum::response::Html;
use maud::html;

use super::Params;
use crate::admin::proto::{
    self, changeset_service_server::ChangesetService, repository_service_server::RepositoryService,
};
use crate::console::ConsoleState;
use crate::console::api::call;
use crate::console::html::{
    Frame, PageError, badge, changeset_state, check_state, pager, review_state, sync_state, time,
    with_query,
};
use crate::console::session::Ctx;

const PAGE: i32 = 50;

/// The sync request states the queue filters by: form value, proto.
const SYNC_STATES: [(&str, proto::SyncRequestState); 4] = [
    ("PENDING", proto::SyncRequestState::Pending),
    ("CLAIMED", proto::SyncRequestState::Claimed),
    ("COMPLETED", proto::SyncRequestState::Completed),
    ("FAILED", proto::SyncRequestState::Failed),
];

/// The changeset states a repository's page filters by.
const CHANGESET_STATES: [(&str, proto::ChangesetState); 4] = [
    ("OPEN", proto::ChangesetState::Open),
    ("DRAFT", proto::ChangesetState::Draft),
    ("CLOSED", proto::ChangesetState::Closed),
    ("MERGED", proto::ChangesetState::Merged),
];

/// GET /repositories.
pub async fn repositories(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let params = Params::query(query);
    let token = params.get("page_token");
    let page = state
        .api
        .repositories
        .list_repositories(call(proto::ListRepositoriesRequest {
            page_size: PAGE,
            page_token: token.to_owned(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let body = html! {
        div.title { h1 { "Repositories" } span.sub { (page.total_size) " known" } }
        section {
            @if page.repositories.is_empty() {
                p.muted { "None yet: a repository is known once an event names it, or once it is registered." }
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Code host" } th { "Host's id" } th { "Registered" } } }
                    tbody {
                        @for r in &page.repositories {
                            tr {
                                td {
                                    a href=(format!("/repositories/{}", r.id)) { (r.name) }
                                    @if !r.former_names.is_empty() {
                                        br; span.muted { "formerly " (r.former_names.join(", ")) }
                                    }
                                }
                                td { code { (r.code_host_urn) } }
                                td { code { (r.external_id) } }
                                td { @if r.registered { (badge("registered", "ok")) } @else { span.muted { "seen in events" } } }
                            }
                        }
                    }
                }
                (pager("/repositories", token, &page.next_page_token))
            }
        }
    };
    Ok(Frame::new(&ctx, "Repositories")
        .notices(ctx.notices(&state))
        .render(body))
}

/// GET /repositories/{id}: a repository and its changesets.
pub async fn repository(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let params = Params::query(query);
    let token = params.get("page_token");
    let chosen = params.get("state");
    let states = super::state_filter(&CHANGESET_STATES, chosen, "changeset state")?;
    let repo = state
        .api
        .repositories
        .get_repository(call(proto::GetRepositoryRequest {
            id,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let page = state
        .api
        .changesets
        .list_changesets(call(proto::ListChangesetsRequest {
            code_host_urn: repo.code_host_urn.clone(),
            repository: repo.name.clone(),
            states,
            page_size: PAGE,
            page_token: token.to_owned(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let base = with_query(&format!("/repositories/{}", repo.id), &[("state", chosen)]);
    let body = html! {
        div.title { h1 { (repo.name) } span.sub { code { (repo.code_host_urn) } } }
        section {
            dl.facts {
                dt { "Host's id" } dd { code { (repo.external_id) } }
                dt { "Web page" } dd { code { (repo.url) } }
                dt { "Clone URLs" } dd { @for u in &repo.clone_urls { code { (u) } " " } }
                @if !repo.former_names.is_empty() {
                    dt { "Former names" } dd { (repo.former_names.join(", ")) }
                }
                dt { "Registered" } dd { @if repo.registered { "yes" } @else { "no (seen in events)" } }
            }
        }
        section {
            h2 { "Changesets" }
            form.row method="get" action=(format!("/repositories/{}", repo.id)) {
                label { "State"
                    select name="state" {
                        option value="" { "any" }
                        @for (name, _) in CHANGESET_STATES {
                            option value=(name) selected[chosen == name] { (name) }
                        }
                    }
                }
                button.secondary type="submit" { "Filter" }
            }
            @if page.changesets.is_empty() {
                p.muted { "No changesets match." }
            } @else {
                table #changesets {
                    thead { tr { th { "#" } th { "Title" } th { "Author" } th { "State" } th { "Review" } th { "Checks" } th { "Updated on the host" } } }
                    tbody {
                        @for c in &page.changesets {
                            tr {
                                td { a href=(format!("/changesets/{}", c.id)) { "#" (c.number) } }
                                td { a href=(format!("/changesets/{}", c.id)) { (c.title) } }
                                td { (c.author) }
                                td { (changeset_state(c.state)) }
                                td { (review_state(c.review_state)) }
                                td { (check_state(c.check_state)) }
                                td { (time(c.host_update_time.as_ref())) }
                            }
                        }
                    }
                }
                p.muted { (page.total_size) " changesets" }
                (pager(&base, token, &page.next_page_token))
            }
        }
    };
    Ok(Frame::new(&ctx, &repo.name)
        .notices(ctx.notices(&state))
        .render(body))
}

/// GET /changesets/{id}: a changeset and its timeline.
pub async fn changeset(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let params = Params::query(query);
    let token = params.get("page_token");
    let c = state
        .api
        .changesets
        .get_changeset(call(proto::GetChangesetRequest { id: id.clone() }))
        .await?
        .into_inner();
    let timeline = state
        .api
        .changesets
        .list_changeset_events(call(proto::ListChangesetEventsRequest {
            changeset_id: id,
            page_size: PAGE,
            page_token: token.to_owned(),
        }))
        .await?
        .into_inner();
    let title = format!("{} #{}", c.repository, c.number);
    let body = html! {
        div.title {
            h1 { (c.title) }
            span.sub { a href=(format!("/repositories/{}", c.repository_id)) { (c.repository) } " #" (c.number) }
        }
        section {
            p.actions { (changeset_state(c.state)) (review_state(c.review_state)) (check_state(c.check_state)) }
            dl.facts {
                dt { "Author" } dd { (c.author) }
                dt { "Branches" } dd { code { (c.head_ref) } " → " code { (c.base_ref) } }
                dt { "Head commit" } dd { code { (c.head_sha) } }
                dt { "Web page" } dd { code { (c.url) } }
                @if !c.labels.is_empty() {
                    dt { "Labels" } dd { @for l in &c.labels { (badge(l, "muted")) " " } }
                }
                dt { "Updated on the host" } dd { (time(c.host_update_time.as_ref())) }
                dt { "In the merge queue" } dd #in-merge-queue { @if c.in_merge_queue { "yes" } @else { "no" } }
                dt { "Auto-merge" } dd #auto-merge { @if c.auto_merge { "set" } @else { "not set" } }
            }
        }
        section {
            h2 { "Timeline" }
            @if timeline.events.is_empty() {
                p.muted { "Nothing yet." }
            } @else {
                table #timeline {
                    thead { tr { th { "When (host's time)" } th { "What" } th { "Who" } th { "Summary" } th { "Told by" } } }
                    tbody {
                        @for e in &timeline.events {
                            tr {
                                td { (time(e.occur_time.as_ref())) }
                                td { (badge(&e.kind, "muted")) }
                                td { (e.actor) }
                                td { (e.summary) }
                                td { a href=(format!("/deliveries/{}", e.delivery_id)) { "delivery" } }
                            }
                        }
                    }
                }
                (pager(&format!("/changesets/{}", c.id), token, &timeline.next_page_token))
            }
        }
    };
    Ok(Frame::new(&ctx, &title)
        .notices(ctx.notices(&state))
        .render(body))
}

/// GET /sync-requests: the queue, newest first.
pub async fn sync_requests(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let params = Params::query(query);
    let token = params.get("page_token");
    let chosen = params.get("state");
    let states = super::state_filter(&SYNC_STATES, chosen, "sync request state")?;
    let page = state
        .api
        .repositories
        .list_sync_requests(call(proto::ListSyncRequestsRequest {
            states,
            page_size: PAGE,
            page_token: token.to_owned(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let base = with_query("/sync-requests", &[("state", chosen)]);
    let body = html! {
        div.title { h1 { "Sync requests" } span.sub { (page.total_size) " match" } }
        section {
            p.muted { "\"Repository R should be fetched again\": made by pushes and triggers, claimed by sync workers over gRPC." }
            form.row method="get" action="/sync-requests" {
                label { "State"
                    select name="state" {
                        option value="" { "any" }
                        @for (name, _) in SYNC_STATES {
                            option value=(name) selected[chosen == name] { (name) }
                        }
                    }
                }
                button.secondary type="submit" { "Filter" }
            }
            @if page.sync_requests.is_empty() {
                p.muted { "No sync requests match." }
            } @else {
                table #sync-requests {
                    thead { tr { th { "Repository" } th { "State" } th { "Why" } th.num { "Pushes" } th { "Refs" } th { "Requested" } th { "Due" } th { "Worker" } } }
                    tbody {
                        @for r in &page.sync_requests {
                            tr {
                                td { a href=(format!("/sync-requests/{}", r.id)) { (r.repository) } }
                                td { (sync_state(r.state)) }
                                td { (r.reason) }
                                td.num { (r.push_count) }
                                td { @for f in r.refs.iter().take(3) { code { (f.name) } " " } @if r.refs.len() > 3 { "…" } }
                                td { (time(r.request_time.as_ref())) }
                                td { (time(r.due_time.as_ref())) }
                                td { (r.worker) }
                            }
                        }
                    }
                }
                (pager(&base, token, &page.next_page_token))
            }
        }
    };
    Ok(Frame::new(&ctx, "Sync requests")
        .notices(ctx.notices(&state))
        .render(body))
}

/// GET /sync-requests/{id}: one sync request (the admin API lists them but has no call for one,
/// so this one reads the store).
pub async fn sync_request(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let uuid = uuid::Uuid::parse_str(id.trim()).map_err(|_| {
        PageError::bad_request(format!(
            "{id:?} is not a sync request id (a UUID such as 4f2c1c3e-8a6b-4d2e-9f4a-0b1c2d3e4f5a)"
        ))
    })?;
    let found = state.stores.sync_requests.get(uuid).await?;
    let error = found.error.clone();
    let r = crate::admin::sync_request_to_proto(found);
    let body = html! {
        div.title { h1 { "Sync of " (r.repository) } (sync_state(r.state)) }
        section {
            dl.facts {
                dt { "Repository" } dd { a href=(format!("/repositories/{}", r.repository_id)) { (r.repository) } " " code { (r.code_host_urn) } }
                dt { "Why" } dd { (r.reason) }
                dt { "Pushes" } dd { (r.push_count) }
                dt { "Requested" } dd { (time(r.request_time.as_ref())) }
                dt { "Due" } dd { (time(r.due_time.as_ref())) }
                @if !r.worker.is_empty() {
                    dt { "Worker" } dd { (r.worker) " (lease until " (time(r.lease_expire_time.as_ref())) ")" }
                }
                @if let Some(error) = &error {
                    dt { "Error" } dd { (error) }
                }
                dt { "Clone URLs" } dd { @for u in &r.clone_urls { code { (u) } " " } }
                dt { "Id" } dd { code { (r.id) } }
            }
            @if !r.refs.is_empty() {
                h3 { "Refs" }
                table {
                    thead { tr { th { "Ref" } th { "From" } th { "To" } } }
                    tbody {
                        @for f in &r.refs {
                            tr { td { code { (f.name) } } td { code { (f.old_sha) } } td { code { (f.new_sha) } } }
                        }
                    }
                }
            }
        }
    };
    Ok(Frame::new(&ctx, "Sync request")
        .notices(ctx.notices(&state))
        .render(body))
}
