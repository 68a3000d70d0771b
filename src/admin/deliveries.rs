//! `hookgate.v1.DeliveryService`: the delivery log over gRPC.

use std::pin::Pin;

use sea_orm::Iterable;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::proto::{self, delivery_service_server::DeliveryService};
use super::status::{page_size, parse_id};
use super::{AdminState, actor, page_token};
use crate::deliveries::{
    Delivery, DeliveryFilter, DeliveryState, REDELIVERABLE, RedeliverError, RedeliverFilter,
};
use crate::time::Timestamp;

const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 500;

/// The most deliveries one `RedeliverDeliveries` call queues, and the default.
const MAX_REDELIVER_PAGE: u64 = 10_000;

/// The most body bytes `GetDelivery` gives (the rest is left out, and said so), and the size of
/// each of `StreamDeliveryBody`'s chunks: 768 KiB, so either answer stays well under a client's
/// default 4 MiB limit whatever the body's size, and, being a multiple of 3, each chunk's base64
/// (as grpcurl prints it) has no padding, so `jq -r .data | base64 -d` joins them.
const BODY_CHUNK_BYTES: usize = 768 * 1024;

/// What `StreamDeliveryBody` answers with.
type BodyStream = Pin<Box<dyn Stream<Item = Result<proto::DeliveryBodyChunk, Status>> + Send>>;

/// Serves `DeliveryService` over the delivery log.
pub struct DeliveryAdmin {
    state: AdminState,
}

impl DeliveryAdmin {
    pub fn new(state: AdminState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl DeliveryService for DeliveryAdmin {
    type StreamDeliveryBodyStream = BodyStream;

    async fn list_deliveries(
        &self,
        request: Request<proto::ListDeliveriesRequest>,
    ) -> Result<Response<proto::ListDeliveriesResponse>, Status> {
        let req = request.into_inner();
        let limit = page_size(req.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let receiver_id = match req.receiver_id.trim() {
            "" => None,
            raw => Some(parse_id("receiver_id", raw)?),
        };
        let states = req
            .states
            .iter()
            .map(|&s| state_from_proto(s))
            .collect::<Result<Vec<_>, _>>()?;
        let since = req.since.map(|t| time("since", t)).transpose()?;
        let until = req.until.map(|t| time("until", t)).transpose()?;
        let filter = DeliveryFilter {
            receiver_id,
            states,
            only_errors: req.only_errors,
            since,
            until,
            event: (!req.event.is_empty()).then_some(req.event),
        };
        // The token is bound to the filter it was made under.
        let filter_key = format!("{filter:?}");
        let after = page_token::decode(&req.page_token, &filter_key)?;
        let page = self
            .state
            .deliveries
            .list(&filter, after.map(|c| (c.key, c.id)), limit)
            .await?;
        let (deliveries, next_page_token) = page_token::page(
            page.deliveries
                .into_iter()
                .map(|d| ((d.receive_time, d.id), delivery_to_proto(d))),
            page.has_more,
            &filter_key,
        );
        Ok(Response::new(proto::ListDeliveriesResponse {
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
            deliveries,
            next_page_token,
        }))
    }

    async fn get_delivery(
        &self,
        request: Request<proto::GetDeliveryRequest>,
    ) -> Result<Response<proto::Delivery>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let delivery = self.state.deliveries.get(id).await?;
        Ok(Response::new(delivery_to_proto(delivery)))
    }

    async fn stream_delivery_body(
        &self,
        request: Request<proto::StreamDeliveryBodyRequest>,
    ) -> Result<Response<Self::StreamDeliveryBodyStream>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let delivery = self.state.deliveries.get(id).await?;
        let Some(body) = delivery.request_body else {
            return Err(Status::failed_precondition(format!(
                "delivery {id} is {}: its body was not kept",
                delivery.state
            )));
        };
        let total_size = i64::try_from(body.len()).unwrap_or(i64::MAX);
        // An empty body is one empty chunk, so every stream says the size.
        let chunks: Vec<Result<proto::DeliveryBodyChunk, Status>> = if body.is_empty() {
            vec![Ok(proto::DeliveryBodyChunk {
                offset: 0,
                data: Vec::new(),
                total_size,
            })]
        } else {
            body.chunks(BODY_CHUNK_BYTES)
                .enumerate()
                .map(|(i, data)| {
                    Ok(proto::DeliveryBodyChunk {
                        offset: i64::try_from(i * BODY_CHUNK_BYTES).unwrap_or(i64::MAX),
                        data: data.to_vec(),
                        total_size,
                    })
                })
                .collect()
        };
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn redeliver_deliveries(
        &self,
        request: Request<proto::RedeliverDeliveriesRequest>,
    ) -> Result<Response<proto::RedeliverDeliveriesResponse>, Status> {
        let actor = actor(&request)?;
        let req = request.into_inner();
        let receiver_id = parse_id("receiver_id", &req.receiver_id)?;
        let states = redeliverable_states(&req.states)?;
        let since = req.since.map(|t| time("since", t)).transpose()?;
        let until = req.until.map(|t| time("until", t)).transpose()?;
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            return Err(Status::invalid_argument(
                "since must be before until: deliveries received at or after since and before until are redelivered",
            ));
        }
        let limit = page_size(req.page_size, MAX_REDELIVER_PAGE, MAX_REDELIVER_PAGE)?;
        let receiver = self.state.receivers.get(receiver_id).await?;
        if receiver.code_host_kind.host().is_none() {
            return Err(Status::failed_precondition(format!(
                "receiver {receiver_id} is a generic trigger, whose calls made their sync requests when they came: call the trigger URL again instead"
            )));
        }
        let filter = RedeliverFilter {
            receiver_id,
            states,
            since,
            until,
        };
        // The token is bound to the filter it was made under.
        let filter_key = format!("{filter:?}");
        let after = page_token::decode(&req.page_token, &filter_key)?;
        let deliveries = &self.state.deliveries;
        if req.validate_only {
            let matched = deliveries.count_redeliverable(&filter).await?;
            return Ok(Response::new(proto::RedeliverDeliveriesResponse {
                matched: count(matched),
                ..Default::default()
            }));
        }
        let done = deliveries
            .redeliver_matching(
                &filter,
                after.map(|c| (c.key, c.id)),
                limit,
                &actor,
                Timestamp::now(),
            )
            .await?;
        if done.queued > 0 {
            self.state.worker_wake.notify_one();
        }
        tracing::info!(
            receiver = %receiver_id,
            matched = done.matched,
            queued = done.queued,
            already_queued = done.already_queued,
            more = done.next.is_some(),
            %actor,
            "deliveries queued again"
        );
        Ok(Response::new(proto::RedeliverDeliveriesResponse {
            matched: count(done.matched),
            queued: count(done.queued),
            already_queued: count(done.already_queued),
            next_page_token: done
                .next
                .map(|(time, id)| {
                    page_token::encode(&page_token::Cursor { key: time, id }, &filter_key)
                })
                .unwrap_or_default(),
        }))
    }

    async fn list_unmatched(
        &self,
        _request: Request<proto::ListUnmatchedRequest>,
    ) -> Result<Response<proto::ListUnmatchedResponse>, Status> {
        let receivers = self
            .state
            .unmatched
            .list()
            .into_iter()
            .map(|u| proto::UnmatchedReceiver {
                receiver_id: u.receiver_id.to_string(),
                count: count(u.count),
                last_time: Some(u.last_time.to_proto()),
            })
            .collect();
        Ok(Response::new(proto::ListUnmatchedResponse { receivers }))
    }

    async fn redeliver_delivery(
        &self,
        request: Request<proto::RedeliverDeliveryRequest>,
    ) -> Result<Response<proto::Delivery>, Status> {
        let actor = actor(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let current = self.state.deliveries.get(id).await?;
        let receiver = self.state.receivers.get(current.receiver_id).await?;
        if receiver.code_host_kind.host().is_none() {
            return Err(Status::failed_precondition(format!(
                "delivery {id} is a call of a generic trigger, whose sync requests were made when it came: call the trigger URL again instead"
            )));
        }
        let delivery = self
            .state
            .deliveries
            .redeliver(id, &actor, Timestamp::now())
            .await
            .map_err(|e| match e {
                RedeliverError::Store(e) => Status::from(e),
                e => Status::failed_precondition(e.to_string()),
            })?;
        self.state.worker_wake.notify_one();
        tracing::info!(delivery = %id, %actor, "delivery queued again");
        Ok(Response::new(delivery_to_proto(delivery)))
    }
}

/// The states of a `RedeliverDeliveries` request: FAILED when none is given; a state that
/// cannot be redelivered is refused, saying why.
fn redeliverable_states(raw: &[i32]) -> Result<Vec<DeliveryState>, Status> {
    if raw.is_empty() {
        return Ok(vec![DeliveryState::Failed]);
    }
    let mut states = Vec::new();
    for &r in raw {
        let state = state_from_proto(r)?;
        if !REDELIVERABLE.contains(&state) {
            let name = state_to_proto(state).as_str_name();
            let why = match state {
                DeliveryState::Rejected => "a rejected delivery was kept without its body",
                _ => "such a delivery is in the queue already",
            };
            return Err(Status::invalid_argument(format!(
                "states has {name}, which cannot be redelivered ({why}): give DELIVERY_STATE_PROCESSED, DELIVERY_STATE_IGNORED or DELIVERY_STATE_FAILED, or none for FAILED"
            )));
        }
        if !states.contains(&state) {
            states.push(state);
        }
    }
    Ok(states)
}

/// A count as the API gives it.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn time(field: &str, t: prost_types::Timestamp) -> Result<Timestamp, Status> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Status::invalid_argument(format!(
            "{field} has nanos out of range"
        )));
    }
    t.seconds
        .checked_mul(1_000_000)
        .and_then(|s| s.checked_add(i64::from(t.nanos / 1000)))
        .map(Timestamp::from_micros)
        .ok_or_else(|| Status::invalid_argument(format!("{field} is out of range")))
}

pub fn state_to_proto(state: DeliveryState) -> proto::DeliveryState {
    use proto::DeliveryState as P;
    match state {
        DeliveryState::Pending => P::Pending,
        DeliveryState::Processing => P::Processing,
        DeliveryState::Processed => P::Processed,
        DeliveryState::Ignored => P::Ignored,
        DeliveryState::Failed => P::Failed,
        DeliveryState::Rejected => P::Rejected,
    }
}

fn state_from_proto(raw: i32) -> Result<DeliveryState, Status> {
    DeliveryState::iter()
        .find(|s| state_to_proto(*s) as i32 == raw)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "states has {raw}, which is not a delivery state: use DELIVERY_STATE_PENDING, _PROCESSING, _PROCESSED, _IGNORED, _FAILED or _REJECTED"
            ))
        })
}

/// A delivery as the admin API shows it, with at most the first [`BODY_CHUNK_BYTES`] of its body.
pub fn delivery_to_proto(d: Delivery) -> proto::Delivery {
    let mut request_body = d.request_body.unwrap_or_default();
    let request_body_size = i64::try_from(request_body.len()).unwrap_or(i64::MAX);
    let request_body_truncated = request_body.len() > BODY_CHUNK_BYTES;
    request_body.truncate(BODY_CHUNK_BYTES);
    proto::Delivery {
        id: d.id.to_string(),
        receiver_id: d.receiver_id.to_string(),
        delivery_key: d.delivery_key.map(String::from).unwrap_or_default(),
        event: d.event,
        state: state_to_proto(d.state) as i32,
        receive_time: Some(d.receive_time.to_proto()),
        method: d.method,
        path: d.path,
        request_headers: d.request_headers.into_iter().collect(),
        request_body,
        request_body_truncated,
        request_body_size,
        response_status: i32::from(d.response_status),
        response_body: d.response_body,
        attempts: d.attempts,
        last_error: d.last_error.unwrap_or_default(),
        process_time: d.process_time.map(Timestamp::to_proto),
        redelivered_by: d.redelivered_by.unwrap_or_default(),
        redeliver_time: d.redeliver_time.map(Timestamp::to_proto),
    }
}
