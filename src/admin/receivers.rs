//! `hookgate.v1.ReceiverService`: the receiver registry over gRPC.

use std::time::Duration;

use tonic::{Request, Response, Status};

use super::proto::{self, receiver_service_server::ReceiverService};
use super::status::{page_size, parse_id};
use super::{AdminState, actor, page_token};
use crate::health::{Diagnosis, OutcomeCounts, ReceiverHealth};
use crate::receivers::{
    CodeHostKind, CodeHostUrn, NewReceiver, Receiver, ReceiverName, ReceiverOptions, ReceiverPatch,
    ReceiverSecret, SigningToken,
};
use crate::time::Timestamp;

/// The default and the largest page of `ListReceivers`.
const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 500;
/// The longest a previous secret may stay valid after a rotation.
const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);

/// The mask paths `UpdateReceiver` takes.
const UPDATABLE: &str = "name, code_host_urn, options, options.ignore_unmatched, options.min_sync_interval, options.push_branch_filter, options.rate_limit_per_minute, options.signature_tolerance, options.require_signature";

/// How long `SendTestDelivery` waits for the receiver's URL to answer.
const TEST_DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `ReceiverService` over the registry.
pub struct ReceiverAdmin {
    state: AdminState,
    /// Sends test deliveries to receivers' URLs.
    http: reqwest::Client,
}

impl ReceiverAdmin {
    pub fn new(state: AdminState) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TEST_DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with default TLS settings builds");
        Self { state, http }
    }

    fn to_proto(&self, r: Receiver) -> proto::Receiver {
        proto::Receiver {
            url: format!("{}/.api/webhooks/{}", self.state.public_url, r.id),
            id: r.id.to_string(),
            name: r.name,
            code_host_kind: kind_to_proto(r.code_host_kind) as i32,
            code_host_urn: r.code_host_urn.as_str().to_owned(),
            has_secret: r.has_secret,
            options: Some(proto::ReceiverOptions {
                ignore_unmatched: r.options.ignore_unmatched,
                min_sync_interval: (!r.options.min_sync_interval.is_zero())
                    .then(|| duration_to_proto(r.options.min_sync_interval)),
                push_branch_filter: r.options.push_branch_filter,
                rate_limit_per_minute: r.options.rate_limit_per_minute,
                // Only a GitLab receiver's signing token is checked against them.
                signature_tolerance: (r.code_host_kind == CodeHostKind::GitLab)
                    .then(|| duration_to_proto(r.options.signature_tolerance)),
                require_signature: (r.code_host_kind == CodeHostKind::GitLab)
                    .then_some(r.options.require_signature),
            }),
            create_time: Some(r.create_time.to_proto()),
            update_time: Some(r.update_time.to_proto()),
            created_by: r.created_by,
            updated_by: r.updated_by,
            last_delivery_time: r.last_delivery_time.map(Timestamp::to_proto),
            health: None,
            has_signing_token: r.has_signing_token,
        }
    }
}

#[tonic::async_trait]
impl ReceiverService for ReceiverAdmin {
    async fn create_receiver(
        &self,
        request: Request<proto::CreateReceiverRequest>,
    ) -> Result<Response<proto::CreateReceiverResponse>, Status> {
        let actor = actor(&request)?;
        let req = request.into_inner();
        let code_host_kind = kind_from_proto(req.code_host_kind)?;
        let code_host_urn = CodeHostUrn::parse(&req.code_host_urn)?;
        code_host_kind.check_urn(&code_host_urn)?;
        let new = NewReceiver {
            name: ReceiverName::parse(&req.name)?,
            code_host_kind,
            code_host_urn,
            secret: secret_or_generated(&req.secret)?,
            signing_token: signing_token_on_create(
                code_host_kind,
                &req.signing_token,
                req.generate_signing_token,
            )?,
            options: options_from_proto(req.options.unwrap_or_default())?,
        };
        let secret = new.secret.expose().to_owned();
        let signing_token = new
            .signing_token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default();
        let receiver = self.state.receivers.create(new, &actor).await?;
        tracing::info!(receiver = %receiver.id, name = %receiver.name, kind = %receiver.code_host_kind, %actor, "receiver created");
        Ok(Response::new(proto::CreateReceiverResponse {
            receiver: Some(self.to_proto(receiver)),
            secret,
            signing_token,
        }))
    }

    async fn get_receiver(
        &self,
        request: Request<proto::GetReceiverRequest>,
    ) -> Result<Response<proto::Receiver>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let receiver = self.state.receivers.get(id).await?;
        Ok(Response::new(self.to_proto(receiver)))
    }

    async fn list_receivers(
        &self,
        request: Request<proto::ListReceiversRequest>,
    ) -> Result<Response<proto::ListReceiversResponse>, Status> {
        let req = request.into_inner();
        let limit = page_size(req.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let kind = match req.code_host_kind {
            0 => None,
            n => Some(kind_from_proto(n)?),
        };
        let with_health = match proto::ReceiverView::try_from(req.view) {
            Ok(proto::ReceiverView::Unspecified | proto::ReceiverView::Basic) => false,
            Ok(proto::ReceiverView::Health) => true,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "view {} is not a receiver view: use RECEIVER_VIEW_BASIC or RECEIVER_VIEW_HEALTH",
                    req.view
                )));
            }
        };
        let filter = format!("kind={}", kind.map(|k| k.to_string()).unwrap_or_default());
        let after = page_token::decode(&req.page_token, &filter)?;
        let page = self
            .state
            .receivers
            .list(kind, after.map(|c| (c.key, c.id)), limit)
            .await?;
        // The health of the whole page in a few statements, not a few per receiver.
        let mut healths = if with_health {
            self.state.health.of_all(&page.receivers).await?
        } else {
            Vec::new()
        }
        .into_iter();
        let (receivers, next_page_token) = page_token::page(
            page.receivers.into_iter().map(|r| {
                let key = (r.create_time, r.id);
                let mut receiver = self.to_proto(r);
                receiver.health = healths.next().map(health_to_proto);
                (key, receiver)
            }),
            page.has_more,
            &filter,
        );
        Ok(Response::new(proto::ListReceiversResponse {
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
            receivers,
            next_page_token,
        }))
    }

    async fn update_receiver(
        &self,
        request: Request<proto::UpdateReceiverRequest>,
    ) -> Result<Response<proto::Receiver>, Status> {
        let actor = actor(&request)?;
        let req = request.into_inner();
        let Some(receiver) = req.receiver else {
            return Err(Status::invalid_argument(
                "receiver is required: give receiver.id and the fields to change",
            ));
        };
        let id = parse_id("receiver.id", &receiver.id)?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let patch = patch_from_mask(&paths, receiver)?;
        if let Some(urn) = &patch.code_host_urn {
            // What a URN may be depends on the receiver's kind, which never changes.
            let kind = self.state.receivers.get(id).await?.code_host_kind;
            kind.check_urn(urn)?;
        }
        let updated = self.state.receivers.update(id, patch, &actor).await?;
        tracing::info!(receiver = %id, %actor, fields = ?paths, "receiver updated");
        Ok(Response::new(self.to_proto(updated)))
    }

    async fn delete_receiver(
        &self,
        request: Request<proto::DeleteReceiverRequest>,
    ) -> Result<Response<proto::DeleteReceiverResponse>, Status> {
        let actor = actor(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        self.state.receivers.delete(id).await?;
        tracing::info!(receiver = %id, %actor, "receiver deleted");
        Ok(Response::new(proto::DeleteReceiverResponse {}))
    }

    async fn rotate_receiver_secret(
        &self,
        request: Request<proto::RotateReceiverSecretRequest>,
    ) -> Result<Response<proto::RotateReceiverSecretResponse>, Status> {
        let actor = actor(&request)?;
        let req = request.into_inner();
        let id = parse_id("id", &req.id)?;
        let secret = secret_or_generated(&req.secret)?;
        let overlap = overlap_from_proto(req.overlap)?;
        let rotated = self
            .state
            .receivers
            .rotate_secret(id, &secret, overlap, &actor)
            .await?;
        tracing::info!(receiver = %id, %actor, overlap = %humantime::format_duration(overlap), "receiver secret rotated");
        Ok(Response::new(proto::RotateReceiverSecretResponse {
            receiver: Some(self.to_proto(rotated.receiver)),
            secret: secret.expose().to_owned(),
            previous_secret_expire_time: rotated
                .previous_secret_expire_time
                .map(Timestamp::to_proto),
        }))
    }

    async fn rotate_receiver_signing_token(
        &self,
        request: Request<proto::RotateReceiverSigningTokenRequest>,
    ) -> Result<Response<proto::RotateReceiverSigningTokenResponse>, Status> {
        let actor = actor(&request)?;
        let req = request.into_inner();
        let id = parse_id("id", &req.id)?;
        let token = if req.signing_token.is_empty() {
            SigningToken::generate()
        } else {
            SigningToken::parse(&req.signing_token)?
        };
        let overlap = overlap_from_proto(req.overlap)?;
        let receiver = self.state.receivers.get(id).await?;
        if receiver.code_host_kind != CodeHostKind::GitLab {
            return Err(Status::invalid_argument(format!(
                "receiver {id} is a {} receiver; only GITLAB receivers hold a signing token",
                receiver.code_host_kind
            )));
        }
        let rotated = self
            .state
            .receivers
            .rotate_signing_token(id, &token, overlap, &actor)
            .await?;
        tracing::info!(receiver = %id, %actor, overlap = %humantime::format_duration(overlap), "receiver signing token rotated");
        Ok(Response::new(proto::RotateReceiverSigningTokenResponse {
            receiver: Some(self.to_proto(rotated.receiver)),
            signing_token: token.expose().to_owned(),
            previous_signing_token_expire_time: rotated
                .previous_signing_token_expire_time
                .map(Timestamp::to_proto),
        }))
    }

    async fn send_test_delivery(
        &self,
        request: Request<proto::SendTestDeliveryRequest>,
    ) -> Result<Response<proto::SendTestDeliveryResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let sent = self.send_test(id).await?;
        tracing::info!(receiver = %id, http_status = sent.http_status, "test delivery sent");
        Ok(Response::new(sent))
    }

    async fn get_receiver_health(
        &self,
        request: Request<proto::GetReceiverHealthRequest>,
    ) -> Result<Response<proto::ReceiverHealth>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let receiver = self.state.receivers.get(id).await?;
        let health = self.state.health.of(&receiver).await?;
        Ok(Response::new(health_to_proto(health)))
    }
}

impl ReceiverAdmin {
    async fn send_test(&self, id: uuid::Uuid) -> Result<proto::SendTestDeliveryResponse, Status> {
        let receiver = self.state.receivers.get(id).await?;
        let Some(host) = receiver.code_host_kind.host() else {
            return Err(Status::failed_precondition(format!(
                "{} receivers have no test event: call their trigger URL instead",
                receiver.code_host_kind
            )));
        };
        let secrets = self.state.receivers.secrets(id).await?;
        let key = uuid::Uuid::new_v4().to_string();
        let mut test = crate::hosts::test_delivery(host, secrets.current.expose(), &key);
        if let Some(token) = &secrets.signing_token {
            // Signed as GitLab signs, so it passes whatever require_signature says.
            use crate::hosts::standard_webhooks as sw;
            let now = Timestamp::now().micros().div_euclid(1_000_000);
            let signature = sw::sign(&token.key(), &key, now, &test.body);
            test.headers.extend([
                (sw::WEBHOOK_ID, key.clone()),
                (sw::WEBHOOK_TIMESTAMP, now.to_string()),
                (sw::WEBHOOK_SIGNATURE, signature),
            ]);
        }
        let url = format!("{}/.api/webhooks/{}", self.state.public_url, id);
        let mut request = self.http.post(&url).body(test.body);
        for (name, value) in test.headers {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Ok(proto::SendTestDeliveryResponse {
                    http_status: 0,
                    delivery_id: String::new(),
                    message: format!("no answer from {url}: {e}"),
                });
            }
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let field = |name: &str| parsed.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let message = field("error")
            .or_else(|| field("message"))
            .unwrap_or_else(|| {
                if text.is_empty() {
                    status.to_string()
                } else {
                    text.chars().take(500).collect()
                }
            });
        Ok(proto::SendTestDeliveryResponse {
            http_status: i32::from(status.as_u16()),
            delivery_id: field("delivery_id").unwrap_or_default(),
            message,
        })
    }
}

/// A receiver's health as the admin API gives it.
pub fn health_to_proto(h: ReceiverHealth) -> proto::ReceiverHealth {
    let counts = |c: OutcomeCounts| proto::OutcomeCounts {
        accepted: saturating(c.accepted),
        duplicate: saturating(c.duplicate),
        ignored: saturating(c.ignored),
        rejected: saturating(c.rejected),
        rate_limited: saturating(c.rate_limited),
        processed: saturating(c.processed),
        failed: saturating(c.failed),
    };
    proto::ReceiverHealth {
        receiver_id: h.receiver_id.to_string(),
        last_delivery_time: h.last_delivery_time.map(Timestamp::to_proto),
        last_accepted_time: h.last_accepted_time.map(Timestamp::to_proto),
        last_rejected_time: h.last_rejected_time.map(Timestamp::to_proto),
        last_failed_time: h.last_failed_time.map(Timestamp::to_proto),
        last_hour: Some(counts(h.last_hour)),
        last_day: Some(counts(h.last_day)),
        last_error: h.last_error.map(|e| proto::ReceiverError {
            delivery_id: e.delivery_id.to_string(),
            time: Some(e.time.to_proto()),
            message: e.message,
        }),
        diagnosis: diagnosis_to_proto(h.diagnosis) as i32,
        diagnosis_message: h.diagnosis_message,
        compute_time: Some(h.compute_time.to_proto()),
    }
}

fn diagnosis_to_proto(d: Diagnosis) -> proto::Diagnosis {
    use proto::Diagnosis as P;
    match d {
        Diagnosis::Healthy => P::Healthy,
        Diagnosis::NeverReceived => P::NeverReceived,
        Diagnosis::SignatureFailing => P::SignatureFailing,
        Diagnosis::Ignoring => P::Ignoring,
        Diagnosis::Failing => P::Failing,
        Diagnosis::RateLimited => P::RateLimited,
        Diagnosis::Silent => P::Silent,
    }
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn secret_or_generated(raw: &str) -> Result<ReceiverSecret, Status> {
    if raw.is_empty() {
        Ok(ReceiverSecret::generate())
    } else {
        Ok(ReceiverSecret::parse(raw)?)
    }
}

/// The signing token a new receiver gets: the given one, a generated one, or none. Only a GitLab
/// receiver may hold one.
fn signing_token_on_create(
    kind: CodeHostKind,
    raw: &str,
    generate: bool,
) -> Result<Option<SigningToken>, Status> {
    if raw.is_empty() && !generate {
        return Ok(None);
    }
    if kind != CodeHostKind::GitLab {
        return Err(Status::invalid_argument(format!(
            "signing_token: only GITLAB receivers hold a signing token; this is a {kind} receiver (leave signing_token empty and generate_signing_token false)"
        )));
    }
    match (raw.is_empty(), generate) {
        (false, true) => Err(Status::invalid_argument(
            "signing_token and generate_signing_token were both given: give the token, or ask for one to be generated, not both",
        )),
        (true, _) => Ok(Some(SigningToken::generate())),
        (false, false) => Ok(Some(SigningToken::parse(raw)?)),
    }
}

/// A rotation's overlap: unset is zero; at most [`MAX_OVERLAP`].
fn overlap_from_proto(raw: Option<prost_types::Duration>) -> Result<Duration, Status> {
    let overlap = match raw {
        None => Duration::ZERO,
        Some(d) => duration_from_proto("overlap", d)?,
    };
    if overlap > MAX_OVERLAP {
        return Err(Status::invalid_argument(format!(
            "overlap {} is longer than the maximum of {}",
            humantime::format_duration(overlap),
            humantime::format_duration(MAX_OVERLAP)
        )));
    }
    Ok(overlap)
}

fn kind_from_proto(raw: i32) -> Result<CodeHostKind, Status> {
    use proto::CodeHostKind as P;
    match P::try_from(raw) {
        Ok(P::Github) => Ok(CodeHostKind::GitHub),
        Ok(P::Gitlab) => Ok(CodeHostKind::GitLab),
        Ok(P::BitbucketServer) => Ok(CodeHostKind::BitbucketServer),
        Ok(P::BitbucketCloud) => Ok(CodeHostKind::BitbucketCloud),
        Ok(P::Generic) => Ok(CodeHostKind::Generic),
        Ok(P::Gitea) => Ok(CodeHostKind::Gitea),
        Ok(P::AzureDevops) => Ok(CodeHostKind::AzureDevOps),
        Ok(P::Unspecified) => Err(Status::invalid_argument(
            "code_host_kind is required: one of CODE_HOST_KIND_GITHUB, CODE_HOST_KIND_GITLAB, CODE_HOST_KIND_BITBUCKET_SERVER, CODE_HOST_KIND_BITBUCKET_CLOUD, CODE_HOST_KIND_GITEA, CODE_HOST_KIND_AZURE_DEVOPS, CODE_HOST_KIND_GENERIC",
        )),
        Err(_) => Err(Status::invalid_argument(format!(
            "code_host_kind {raw} is not a known kind"
        ))),
    }
}

fn kind_to_proto(kind: CodeHostKind) -> proto::CodeHostKind {
    use proto::CodeHostKind as P;
    match kind {
        CodeHostKind::GitHub => P::Github,
        CodeHostKind::GitLab => P::Gitlab,
        CodeHostKind::BitbucketServer => P::BitbucketServer,
        CodeHostKind::BitbucketCloud => P::BitbucketCloud,
        CodeHostKind::Generic => P::Generic,
        CodeHostKind::Gitea => P::Gitea,
        CodeHostKind::AzureDevOps => P::AzureDevops,
    }
}

fn duration_from_proto(field: &str, d: prost_types::Duration) -> Result<Duration, Status> {
    Duration::try_from(d).map_err(|_| {
        Status::invalid_argument(format!(
            "{field} must be a non-negative duration such as \"60s\""
        ))
    })
}

fn duration_to_proto(d: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(d).expect("a stored interval fits a protobuf Duration")
}

fn options_from_proto(o: proto::ReceiverOptions) -> Result<ReceiverOptions, Status> {
    Ok(ReceiverOptions {
        ignore_unmatched: o.ignore_unmatched,
        min_sync_interval: match o.min_sync_interval {
            Some(d) => duration_from_proto("options.min_sync_interval", d)?,
            None => Duration::ZERO,
        },
        push_branch_filter: ReceiverOptions::parse_branch_filter(o.push_branch_filter)?,
        rate_limit_per_minute: o.rate_limit_per_minute,
        signature_tolerance: signature_tolerance_from_proto(o.signature_tolerance)?,
        require_signature: o.require_signature.unwrap_or(true),
    })
}

/// `options.signature_tolerance`: unset or zero is the default (5 minutes); whole seconds, at
/// most [`ReceiverOptions::MAX_SIGNATURE_TOLERANCE`].
fn signature_tolerance_from_proto(raw: Option<prost_types::Duration>) -> Result<Duration, Status> {
    const FIELD: &str = "options.signature_tolerance";
    let tolerance = match raw {
        None => Duration::ZERO,
        Some(d) => duration_from_proto(FIELD, d)?,
    };
    if tolerance.is_zero() {
        return Ok(ReceiverOptions::DEFAULT_SIGNATURE_TOLERANCE);
    }
    if tolerance.subsec_nanos() != 0 {
        return Err(Status::invalid_argument(format!(
            "{FIELD} must be whole seconds (webhook-timestamp is in seconds), such as \"300s\""
        )));
    }
    if tolerance > ReceiverOptions::MAX_SIGNATURE_TOLERANCE {
        return Err(Status::invalid_argument(format!(
            "{FIELD} {} is longer than the maximum of {}",
            humantime::format_duration(tolerance),
            humantime::format_duration(ReceiverOptions::MAX_SIGNATURE_TOLERANCE)
        )));
    }
    Ok(tolerance)
}

/// Turns an update mask and the receiver it points into into a patch, refusing paths that
/// are unknown or name fields that cannot change.
fn patch_from_mask(paths: &[String], receiver: proto::Receiver) -> Result<ReceiverPatch, Status> {
    if paths.is_empty() {
        return Err(Status::invalid_argument(format!(
            "update_mask is required: name the fields to change ({UPDATABLE})"
        )));
    }
    let options = receiver.options.unwrap_or_default();
    let mut patch = ReceiverPatch::default();
    for path in paths {
        match path.trim() {
            "name" => patch.name = Some(ReceiverName::parse(&receiver.name)?),
            "code_host_urn" => {
                patch.code_host_urn = Some(CodeHostUrn::parse(&receiver.code_host_urn)?)
            }
            "options" => {
                let o = options_from_proto(options.clone())?;
                patch.ignore_unmatched = Some(o.ignore_unmatched);
                patch.min_sync_interval = Some(o.min_sync_interval);
                patch.push_branch_filter = Some(o.push_branch_filter);
                patch.rate_limit_per_minute = Some(o.rate_limit_per_minute);
                patch.signature_tolerance = Some(o.signature_tolerance);
                patch.require_signature = Some(o.require_signature);
            }
            "options.signature_tolerance" => {
                patch.signature_tolerance =
                    Some(signature_tolerance_from_proto(options.signature_tolerance)?)
            }
            "options.require_signature" => {
                patch.require_signature = Some(options.require_signature.unwrap_or(true))
            }
            "options.ignore_unmatched" => patch.ignore_unmatched = Some(options.ignore_unmatched),
            "options.min_sync_interval" => {
                patch.min_sync_interval = Some(match options.min_sync_interval {
                    Some(d) => duration_from_proto("options.min_sync_interval", d)?,
                    None => Duration::ZERO,
                })
            }
            "options.push_branch_filter" => {
                patch.push_branch_filter = Some(ReceiverOptions::parse_branch_filter(
                    options.push_branch_filter.clone(),
                )?)
            }
            "options.rate_limit_per_minute" => {
                patch.rate_limit_per_minute = Some(options.rate_limit_per_minute)
            }
            "id" => return Err(Status::invalid_argument("id cannot be changed")),
            "code_host_kind" => {
                return Err(Status::invalid_argument(
                    "code_host_kind cannot be changed: create a new receiver for another kind",
                ));
            }
            "secret" => {
                return Err(Status::invalid_argument(
                    "the secret is changed with RotateReceiverSecret, not UpdateReceiver",
                ));
            }
            "signing_token" => {
                return Err(Status::invalid_argument(
                    "the signing token is changed with RotateReceiverSigningToken, not UpdateReceiver",
                ));
            }
            p @ ("url" | "has_secret" | "has_signing_token" | "create_time" | "update_time"
            | "created_by" | "updated_by" | "last_delivery_time") => {
                return Err(Status::invalid_argument(format!(
                    "{p} is output only and cannot be changed"
                )));
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown update_mask path {other:?}: the paths that can change are {UPDATABLE}"
                )));
            }
        }
    }
    Ok(patch)
}
