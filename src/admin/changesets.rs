//! `hookgate.v1.ChangesetService`: changesets and their timelines over gRPC.

use sea_orm::Iterable;
use tonic::{Request, Response, Status};

use super::proto::{self, changeset_service_server::ChangesetService};
use super::status::{page_size, parse_id};
use super::{AdminState, page_token};
use crate::hosts::effects::ChangesetState;
use crate::receivers::CodeHostUrn;
use crate::sync::{Changeset, ChangesetFilter, CheckState, ReviewState};
use crate::time::Timestamp;

const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 500;

/// Serves `ChangesetService`.
pub struct ChangesetAdmin {
    state: AdminState,
}

impl ChangesetAdmin {
    pub fn new(state: AdminState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl ChangesetService for ChangesetAdmin {
    async fn get_changeset(
        &self,
        request: Request<proto::GetChangesetRequest>,
    ) -> Result<Response<proto::Changeset>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        Ok(Response::new(changeset_to_proto(
            self.state.changesets.get(id).await?,
        )))
    }

    async fn list_changesets(
        &self,
        request: Request<proto::ListChangesetsRequest>,
    ) -> Result<Response<proto::ListChangesetsResponse>, Status> {
        let req = request.into_inner();
        let limit = page_size(req.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let mut urn = match req.code_host_urn.trim() {
            "" => None,
            raw => Some(CodeHostUrn::parse(raw)?.as_str().to_owned()),
        };
        if !req.receiver_id.trim().is_empty() {
            let id = parse_id("receiver_id", &req.receiver_id)?;
            let receiver_urn = self
                .state
                .receivers
                .get(id)
                .await?
                .code_host_urn
                .as_str()
                .to_owned();
            if urn.as_ref().is_some_and(|u| *u != receiver_urn) {
                return Err(Status::invalid_argument(format!(
                    "receiver_id's code host is {receiver_urn}, not code_host_urn {}: give one or the other",
                    urn.unwrap_or_default()
                )));
            }
            urn = Some(receiver_urn);
        }
        let states = req
            .states
            .iter()
            .map(|&s| state_from_proto(s))
            .collect::<Result<Vec<_>, _>>()?;
        let repository = match req.repository.trim() {
            "" => None,
            name => Some(name.trim_matches('/').to_owned()),
        };
        if req.number < 0 {
            return Err(Status::invalid_argument("number must not be negative"));
        }
        let filter = ChangesetFilter {
            code_host_urn: urn,
            repository,
            number: (req.number > 0).then_some(req.number),
            states,
        };
        let filter_key = format!("{filter:?}");
        let after = page_token::decode(&req.page_token, &filter_key)?;
        let page = self
            .state
            .changesets
            .list(&filter, after.map(|c| (c.key, c.id)), limit)
            .await?;
        let (changesets, next_page_token) = page_token::page(
            page.changesets
                .into_iter()
                .map(|c| ((c.create_time, c.id), changeset_to_proto(c))),
            page.has_more,
            &filter_key,
        );
        Ok(Response::new(proto::ListChangesetsResponse {
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
            changesets,
            next_page_token,
        }))
    }

    async fn list_changeset_events(
        &self,
        request: Request<proto::ListChangesetEventsRequest>,
    ) -> Result<Response<proto::ListChangesetEventsResponse>, Status> {
        let req = request.into_inner();
        let id = parse_id("changeset_id", &req.changeset_id)?;
        let limit = page_size(req.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let filter_key = format!("changeset={id}");
        let after = page_token::decode(&req.page_token, &filter_key)?;
        let (entries, has_more) = self
            .state
            .changesets
            .timeline(id, after.map(|c| (c.key, c.id)), limit)
            .await?;
        let (events, next_page_token) = page_token::page(
            entries.into_iter().map(|e| {
                let cursor = (e.occur_time, e.id);
                let entry = proto::ChangesetEvent {
                    kind: e.kind,
                    actor: e.actor,
                    occur_time: Some(e.occur_time.to_proto()),
                    delivery_id: e.delivery_id.to_string(),
                    summary: e.summary,
                    external_id: e.external_id,
                };
                (cursor, entry)
            }),
            has_more,
            &filter_key,
        );
        Ok(Response::new(proto::ListChangesetEventsResponse {
            events,
            next_page_token,
        }))
    }
}

fn state_to_proto(s: ChangesetState) -> proto::ChangesetState {
    match s {
        ChangesetState::Open => proto::ChangesetState::Open,
        ChangesetState::Draft => proto::ChangesetState::Draft,
        ChangesetState::Closed => proto::ChangesetState::Closed,
        ChangesetState::Merged => proto::ChangesetState::Merged,
    }
}

fn state_from_proto(raw: i32) -> Result<ChangesetState, Status> {
    ChangesetState::iter()
    .find(|s| state_to_proto(*s) as i32 == raw)
    .ok_or_else(|| {
        Status::invalid_argument(format!(
            "states has {raw}, which is not a changeset state: use CHANGESET_STATE_OPEN, _DRAFT, _CLOSED or _MERGED"
        ))
    })
}

pub fn changeset_to_proto(c: Changeset) -> proto::Changeset {
    proto::Changeset {
        id: c.id.to_string(),
        repository_id: c.repository_id.to_string(),
        repository: c.repository,
        code_host_urn: c.code_host_urn,
        number: c.number,
        title: c.title,
        url: c.url,
        author: c.author,
        state: state_to_proto(c.state) as i32,
        review_state: match c.review_state {
            ReviewState::Pending => proto::ReviewState::Pending,
            ReviewState::Approved => proto::ReviewState::Approved,
            ReviewState::ChangesRequested => proto::ReviewState::ChangesRequested,
        } as i32,
        check_state: match c.check_state {
            CheckState::Unknown => proto::CheckState::Unknown,
            CheckState::Pending => proto::CheckState::Pending,
            CheckState::Passed => proto::CheckState::Passed,
            CheckState::Failed => proto::CheckState::Failed,
        } as i32,
        head_ref: c.head_ref,
        base_ref: c.base_ref,
        head_sha: c.head_sha,
        labels: c.labels,
        host_update_time: c.host_update_time.map(Timestamp::to_proto),
        in_merge_queue: c.in_merge_queue,
        auto_merge: c.auto_merge,
    }
}
