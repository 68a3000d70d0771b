//! Live pages: `GET /live` is a server-sent event stream that says `changed` whenever what an
//! open page shows may be out of date, and the page's script re-fetches its live parts.
//!
//! Two sources feed it, because neither sees everything: the event feed ([`FeedStore::follow`]:
//! changesets updated, sync requests made, deliveries failed, by any replica), and the delivery
//! log, which the feed does not cover (an arrival, a delivery processed or queued again writes no
//! feed entry). For the log each open stream looks once a second at the newest deliveries' ids,
//! states and tries (one small indexed query: [`DeliveryStore::newest_states`]); whichever
//! replica wrote them, it sees the change. A stream ends when the service stops, so shutdown is
//! not held up by open pages.
//!
//! [`DeliveryStore::newest_states`]: crate::deliveries::DeliveryStore::newest_states

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ConsoleState;
use super::html::PageError;
use super::pages::Params;
use crate::deliveries::{DeliveryState, DeliveryStore};
use crate::sync::{FeedFilter, FeedStore, FollowError};

/// How often an open stream looks at the delivery log.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How many of the newest deliveries it compares.
const NEWEST: u64 = 50;

/// What the stream sends: one kind of event, whose data says nothing but that it happened.
fn changed() -> Result<Event, Infallible> {
    Ok(Event::default().event("changed").data("deliveries"))
}

type Feed = Pin<Box<dyn Stream<Item = Result<crate::sync::FeedEntry, FollowError>> + Send>>;

/// One open stream.
struct Watch {
    feed: Feed,
    deliveries: DeliveryStore,
    /// Only this receiver's deliveries and feed entries; every receiver's when `None`.
    receiver: Option<Uuid>,
    /// What the newest deliveries looked like at the last look.
    last: Vec<(Uuid, DeliveryState, i32)>,
    tick: tokio::time::Interval,
    stop: CancellationToken,
}

/// GET /live (`?receiver=<id>` for one receiver's): the stream.
pub async fn stream(
    State(state): State<ConsoleState>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let params = Params::query(query);
    let receiver = match params.get("receiver") {
        "" => None,
        raw => Some(Uuid::parse_str(raw).map_err(|_| {
            PageError::bad_request(format!("receiver {raw:?} is not a receiver id (a UUID)"))
        })?),
    };
    let feed = FeedStore::new(state.stores.db.clone());
    let after = feed.newest_cursor().await?;
    let followed = feed.follow(
        after,
        FeedFilter {
            receiver,
            kinds: Vec::new(),
        },
        state.stop.clone(),
    );
    let deliveries = state.stores.deliveries.clone();
    let last = deliveries.newest_states(receiver, NEWEST).await?;
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watch = Watch {
        feed: Box::pin(followed),
        deliveries,
        receiver,
        last,
        tick,
        stop: state.stop.clone(),
    };
    let events = futures_util::stream::unfold(watch, |mut w| async move {
        loop {
            tokio::select! {
                () = w.stop.cancelled() => return None,
                entry = w.feed.next() => match entry {
                    Some(Ok(_)) => return Some((changed(), w)),
                    // The service is stopping (the arm above ends the stream), or the feed
                    // cannot be read now: the delivery log is still looked at.
                    Some(Err(_)) | None => w.feed = Box::pin(futures_util::stream::pending()),
                },
                _ = w.tick.tick() => {
                    if let Ok(now) = w.deliveries.newest_states(w.receiver, NEWEST).await
                        && now != w.last
                    {
                        w.last = now;
                        return Some((changed(), w));
                    }
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
