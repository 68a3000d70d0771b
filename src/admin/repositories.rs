//! `hookgate.v1.RepositoryService`: repositories over gRPC.

use sea_orm::Iterable;
use tonic::{Request, Response, Status};

use super::proto::{self, repository_service_server::RepositoryService};
use super::status::{page_size, parse_id};
use super::{AdminState, actor, page_token};
use std::time::Duration;

use crate::receivers::CodeHostUrn;
use crate::sync::{
    CompleteError, Reason, Repository, SyncRequest, SyncRequestState, parse_repository_name,
};
use crate::time::Timestamp;

const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 500;

/// Serves `RepositoryService`.
pub struct RepositoryAdmin {
    state: AdminState,
}

impl RepositoryAdmin {
    pub fn new(state: AdminState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl RepositoryService for RepositoryAdmin {
    async fn register_repository(
        &self,
        request: Request<proto::RegisterRepositoryRequest>,
    ) -> Result<Response<proto::Repository>, Status> {
        let actor = actor(&request)?;
        let req = request.into_inner();
        let urn = CodeHostUrn::parse(&req.code_host_urn)?;
        let name = parse_repository_name(&req.name)?;
        let repo = self
            .state
            .repositories
            .register(&urn, &name, &req.external_id)
            .await?;
        tracing::info!(repository = %repo.id, name = %repo.name, urn = %repo.code_host_urn, %actor, "repository registered");
        Ok(Response::new(repository_to_proto(repo)))
    }

    async fn get_repository(
        &self,
        request: Request<proto::GetRepositoryRequest>,
    ) -> Result<Response<proto::Repository>, Status> {
        let req = request.into_inner();
        let by_name = !req.code_host_urn.trim().is_empty() || !req.name.trim().is_empty();
        let by_id = !req.id.trim().is_empty();
        if by_name == by_id {
            return Err(Status::invalid_argument(
                "give exactly one of: id; code_host_urn and name",
            ));
        }
        let store = &self.state.repositories;
        let repo = if by_name {
            let urn = CodeHostUrn::parse(&req.code_host_urn)?;
            let name = parse_repository_name(&req.name)?;
            store
                .get_by_name(urn.as_str(), &name)
                .await?
                .ok_or_else(|| unknown_name(&name, &urn))?
        } else {
            store.get(parse_id("id", &req.id)?).await?
        };
        Ok(Response::new(repository_to_proto(repo)))
    }

    async fn list_repositories(
        &self,
        request: Request<proto::ListRepositoriesRequest>,
    ) -> Result<Response<proto::ListRepositoriesResponse>, Status> {
        let req = request.into_inner();
        let limit = page_size(req.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let urn = match req.code_host_urn.trim() {
            "" => None,
            raw => Some(CodeHostUrn::parse(raw)?),
        };
        let filter = format!(
            "urn={}",
            urn.as_ref().map(CodeHostUrn::as_str).unwrap_or("")
        );
        let after = page_token::decode(&req.page_token, &filter)?;
        let page = self
            .state
            .repositories
            .list(
                urn.as_ref().map(CodeHostUrn::as_str),
                after.map(|c| (c.key, c.id)),
                limit,
            )
            .await?;
        let (repositories, next_page_token) = page_token::page(
            page.repositories
                .into_iter()
                .map(|r| ((r.create_time, r.id), repository_to_proto(r))),
            page.has_more,
            &filter,
        );
        Ok(Response::new(proto::ListRepositoriesResponse {
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
            repositories,
            next_page_token,
        }))
    }

    async fn delete_repository(
        &self,
        request: Request<proto::DeleteRepositoryRequest>,
    ) -> Result<Response<proto::DeleteRepositoryResponse>, Status> {
        let actor = actor(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        self.state.repositories.delete(id).await?;
        tracing::info!(repository = %id, %actor, "repository deleted");
        Ok(Response::new(proto::DeleteRepositoryResponse {}))
    }

    async fn request_sync(
        &self,
        request: Request<proto::RequestSyncRequest>,
    ) -> Result<Response<proto::RequestSyncResponse>, Status> {
        let actor = actor(&request)?;
        let req = request.into_inner();
        let given = [
            !req.repository_id.trim().is_empty(),
            !req.code_host_urn.trim().is_empty() || !req.name.trim().is_empty(),
            !req.receiver_id.trim().is_empty(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(Status::invalid_argument(
                "give exactly one of: repository_id; code_host_urn and name; receiver_id",
            ));
        }
        let store = &self.state.repositories;
        let (rows, receiver) = if given[0] {
            let id = parse_id("repository_id", &req.repository_id)?;
            (vec![store.rows_by_id(id).await?], None)
        } else if given[1] {
            let urn = CodeHostUrn::parse(&req.code_host_urn)?;
            let name = parse_repository_name(&req.name)?;
            let row = store
                .row_by_name(urn.as_str(), &name)
                .await?
                .ok_or_else(|| unknown_name(&name, &urn))?;
            (vec![row], None)
        } else {
            let id = parse_id("receiver_id", &req.receiver_id)?;
            let receiver = self.state.receivers.get(id).await?;
            (
                store.rows_of(receiver.code_host_urn.as_str()).await?,
                Some(id),
            )
        };
        let made = self
            .state
            .sync_requests
            .request_many(
                &rows,
                receiver,
                Duration::ZERO,
                Reason::Manual,
                Timestamp::now(),
            )
            .await?;
        tracing::info!(count = made.len(), %actor, "sync requested");
        Ok(Response::new(proto::RequestSyncResponse {
            sync_requests: made.into_iter().map(sync_request_to_proto).collect(),
        }))
    }

    async fn claim_sync_requests(
        &self,
        request: Request<proto::ClaimSyncRequestsRequest>,
    ) -> Result<Response<proto::ClaimSyncRequestsResponse>, Status> {
        let req = request.into_inner();
        let worker = req.worker.trim();
        if worker.is_empty() || worker.len() > 200 {
            return Err(Status::invalid_argument(
                "worker is required: a name for the claimer, at most 200 characters",
            ));
        }
        let max = page_size(req.max, 10, MAX_PAGE_SIZE).map_err(|_| {
            Status::invalid_argument(format!("max must be 1 to {MAX_PAGE_SIZE} (0: 10)"))
        })?;
        let lease = match req.lease {
            None => DEFAULT_LEASE,
            Some(d) => Duration::try_from(d)
                .ok()
                .filter(|d| !d.is_zero() && *d <= MAX_LEASE)
                .ok_or_else(|| {
                    Status::invalid_argument("lease must be more than 0 and at most 24h")
                })?,
        };
        let claimed = self
            .state
            .sync_requests
            .claim(worker, max, lease, Timestamp::now())
            .await?;
        Ok(Response::new(proto::ClaimSyncRequestsResponse {
            sync_requests: claimed.into_iter().map(sync_request_to_proto).collect(),
        }))
    }

    async fn complete_sync_request(
        &self,
        request: Request<proto::CompleteSyncRequestRequest>,
    ) -> Result<Response<proto::SyncRequest>, Status> {
        let req = request.into_inner();
        let id = parse_id("id", &req.id)?;
        let done = self
            .state
            .sync_requests
            .complete(id, req.success, req.error.trim(), Timestamp::now())
            .await
            .map_err(|e| match e {
                CompleteError::Store(e) => Status::from(e),
                e => Status::failed_precondition(e.to_string()),
            })?;
        Ok(Response::new(sync_request_to_proto(done)))
    }

    async fn list_sync_requests(
        &self,
        request: Request<proto::ListSyncRequestsRequest>,
    ) -> Result<Response<proto::ListSyncRequestsResponse>, Status> {
        let req = request.into_inner();
        let limit = page_size(req.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let urn = match req.code_host_urn.trim() {
            "" => None,
            raw => Some(CodeHostUrn::parse(raw)?),
        };
        let states = req
            .states
            .iter()
            .map(|&raw| {
                SyncRequestState::iter()
                    .find(|s| sync_state_to_proto(*s) as i32 == raw)
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "states has {raw}, which is not a sync request state"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let filter = format!(
            "urn={:?} states={states:?}",
            urn.as_ref().map(CodeHostUrn::as_str)
        );
        let after = page_token::decode(&req.page_token, &filter)?;
        let page = self
            .state
            .sync_requests
            .list(
                urn.as_ref().map(CodeHostUrn::as_str),
                &states,
                after.map(|c| (c.key, c.id)),
                limit,
                Timestamp::now(),
            )
            .await?;
        let (sync_requests, next_page_token) = page_token::page(
            page.sync_requests
                .into_iter()
                .map(|r| ((r.request_time, r.id), sync_request_to_proto(r))),
            page.has_more,
            &filter,
        );
        Ok(Response::new(proto::ListSyncRequestsResponse {
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
            sync_requests,
            next_page_token,
        }))
    }
}

/// The answer for a name no repository of `urn` has or had.
fn unknown_name(name: &str, urn: &CodeHostUrn) -> Status {
    Status::not_found(format!(
        "repository {name} of {} is not known, by that name or as a former one: register it with RegisterRepository first",
        urn.as_str()
    ))
}

/// How long a claim holds when the worker names no lease, and the longest it may ask for.
const DEFAULT_LEASE: Duration = Duration::from_secs(300);
const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

fn sync_state_to_proto(s: SyncRequestState) -> proto::SyncRequestState {
    match s {
        SyncRequestState::Pending => proto::SyncRequestState::Pending,
        SyncRequestState::Claimed => proto::SyncRequestState::Claimed,
        SyncRequestState::Completed => proto::SyncRequestState::Completed,
        SyncRequestState::Failed => proto::SyncRequestState::Failed,
    }
}

pub fn sync_request_to_proto(r: SyncRequest) -> proto::SyncRequest {
    proto::SyncRequest {
        id: r.id.to_string(),
        repository_id: r.repository_id.to_string(),
        repository: r.repository,
        code_host_urn: r.code_host_urn,
        clone_urls: r.clone_urls,
        state: sync_state_to_proto(r.state) as i32,
        push_count: r.push_count,
        refs: r
            .refs
            .into_iter()
            .map(|r| proto::RefUpdate {
                name: r.name,
                old_sha: r.old_sha,
                new_sha: r.new_sha,
            })
            .collect(),
        request_time: Some(r.request_time.to_proto()),
        due_time: Some(r.due_time.to_proto()),
        lease_expire_time: r.lease_expire_time.map(Timestamp::to_proto),
        worker: r.worker,
        reason: r.reason.label(),
    }
}

pub fn repository_to_proto(r: Repository) -> proto::Repository {
    proto::Repository {
        id: r.id.to_string(),
        code_host_urn: r.code_host_urn,
        name: r.name,
        external_id: r.external_id,
        url: r.url,
        clone_urls: r.clone_urls,
        registered: r.registered,
        former_names: r.former_names,
    }
}
