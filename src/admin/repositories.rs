//! `hookgate.v1.RepositoryService`: repositories over gRPC.

use tonic::{Request, Response, Status};

use super::proto::{self, repository_service_server::RepositoryService};
use super::status::{page_size, parse_id};
use super::{AdminState, actor, page_token};
use crate::receivers::CodeHostUrn;
use crate::sync::{Repository, parse_repository_name};

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
        let id = parse_id("id", &request.get_ref().id)?;
        Ok(Response::new(repository_to_proto(
            self.state.repositories.get(id).await?,
        )))
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
        let next_page_token = match (page.has_more, page.repositories.last()) {
            (true, Some(last)) => page_token::encode(
                &page_token::Cursor {
                    key: last.create_time,
                    id: last.id,
                },
                &filter,
            ),
            _ => String::new(),
        };
        Ok(Response::new(proto::ListRepositoriesResponse {
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
            repositories: page
                .repositories
                .into_iter()
                .map(repository_to_proto)
                .collect(),
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
    }
}
