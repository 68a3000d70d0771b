//! The diagnosis: what is wrong with a receiver, if anything, as one [`Diagnosis`] and one
//! sentence that says what to do, with the receiver's URL, URN and counts in it. Pure: it reads
//! the [`Evidence`] the store gathered and nothing else, so every case is a unit test.
//!
//! The most recent traffic decides, in this order (the first that holds):
//!
//! 1. `NEVER_RECEIVED`: no request has ever reached the receiver's URL.
//! 2. `SILENT`: none in the last [`SILENT_AFTER`] (24 hours), though there were some before.
//! 3. `SIGNATURE_FAILING`: the newest stored request was rejected (wrong or missing signature or
//!    token); it says how many in a row were.
//! 4. `FAILING`: the newest delivery the worker is done with failed.
//! 5. `RATE_LIMITED`: this process refused a request with 429 in the last
//!    [`RATE_LIMITED_WITHIN`] (an hour).
//! 6. `IGNORING`: the newest delivery the worker is done with was ignored, and none in the last
//!    24 hours was acted on.
//! 7. `HEALTHY`.
//!
//! "Newest" is by receive time; deliveries still waiting for the worker do not decide 4 and 6,
//! but a verified one received after a rejected one ends 3 (the secret is right now).

use std::time::Duration;

use uuid::Uuid;

use super::OutcomeCounts;
use crate::deliveries::DeliveryState;
use crate::receivers::Receiver;
use crate::time::Timestamp;

/// With no request for this long after there were some, a receiver is `SILENT`: the longest
/// window health counts over, and longer than the quiet spells of most repositories' working
/// days, yet short enough that a hook turned off at the code host shows the next day.
pub const SILENT_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A 429 this recent makes a receiver `RATE_LIMITED`.
pub const RATE_LIMITED_WITHIN: Duration = Duration::from_secs(3600);

/// What is wrong with a receiver, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diagnosis {
    Healthy,
    NeverReceived,
    SignatureFailing,
    Ignoring,
    Failing,
    RateLimited,
    Silent,
}

/// The receive time of a receiver's newest stored delivery in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastByState {
    pub pending: Option<Timestamp>,
    pub processing: Option<Timestamp>,
    pub processed: Option<Timestamp>,
    pub ignored: Option<Timestamp>,
    pub failed: Option<Timestamp>,
    pub rejected: Option<Timestamp>,
}

impl LastByState {
    /// The time of `state`'s newest delivery.
    pub fn get(&self, state: DeliveryState) -> Option<Timestamp> {
        match state {
            DeliveryState::Pending => self.pending,
            DeliveryState::Processing => self.processing,
            DeliveryState::Processed => self.processed,
            DeliveryState::Ignored => self.ignored,
            DeliveryState::Failed => self.failed,
            DeliveryState::Rejected => self.rejected,
        }
    }

    /// Sets the time of `state`'s newest delivery.
    pub fn set(&mut self, state: DeliveryState, time: Option<Timestamp>) {
        let slot = match state {
            DeliveryState::Pending => &mut self.pending,
            DeliveryState::Processing => &mut self.processing,
            DeliveryState::Processed => &mut self.processed,
            DeliveryState::Ignored => &mut self.ignored,
            DeliveryState::Failed => &mut self.failed,
            DeliveryState::Rejected => &mut self.rejected,
        };
        *slot = time;
    }

    /// The newest of `states`, with its state (the first of `states` on a tie).
    fn newest_of(&self, states: &[DeliveryState]) -> Option<(DeliveryState, Timestamp)> {
        let mut newest: Option<(DeliveryState, Timestamp)> = None;
        for &state in states {
            if let Some(time) = self.get(state)
                && newest.is_none_or(|(_, t)| time > t)
            {
                newest = Some((state, time));
            }
        }
        newest
    }

    /// The newest stored delivery's state and time.
    pub fn newest(&self) -> Option<(DeliveryState, Timestamp)> {
        use DeliveryState::*;
        self.newest_of(&[Rejected, Failed, Ignored, Processed, Processing, Pending])
    }

    /// The newest delivery the worker is done with (or that intake decided at once).
    pub fn newest_decided(&self) -> Option<(DeliveryState, Timestamp)> {
        use DeliveryState::*;
        self.newest_of(&[Rejected, Failed, Ignored, Processed])
    }

    /// The newest delivery stored and acknowledged: every state but `REJECTED`.
    pub fn newest_accepted(&self) -> Option<Timestamp> {
        use DeliveryState::*;
        self.newest_of(&[Failed, Ignored, Processed, Processing, Pending])
            .map(|(_, t)| t)
    }
}

/// A receiver's newest delivery in one state, with its note (why it was ignored, rejected or
/// failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub id: Uuid,
    pub receive_time: Timestamp,
    pub process_time: Option<Timestamp>,
    pub note: String,
}

/// Everything the diagnosis reads.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    pub receiver: &'a Receiver,
    /// The receiver's URL, as pasted at the code host.
    pub url: &'a str,
    pub now: Timestamp,
    /// Stored deliveries (every replica's).
    pub last: LastByState,
    /// The last request of any kind: stored, answered from memory, or recorded on the receiver.
    pub last_request_time: Option<Timestamp>,
    pub last_hour: OutcomeCounts,
    pub last_day: OutcomeCounts,
    pub latest_failed: Option<Latest>,
    pub latest_rejected: Option<Latest>,
    pub latest_ignored: Option<Latest>,
    /// How many stored requests in a row, newest first, were rejected.
    pub rejected_run: u64,
}

/// The diagnosis and its sentence.
pub fn diagnose(e: &Evidence<'_>) -> (Diagnosis, String) {
    let r = e.receiver;
    let id = r.id;
    let urn = r.code_host_urn.as_str();
    let Some(last_request) = e.last_request_time else {
        return (
            Diagnosis::NeverReceived,
            format!(
                "No request has reached this receiver since it was made ({}): check that the URL pasted at the code host is {}, and that the code host can reach it (a code host outside this network needs --public-url to be an address it can reach)",
                time(r.create_time),
                e.url
            ),
        );
    };
    if e.now.since(last_request) >= SILENT_AFTER {
        return (
            Diagnosis::Silent,
            format!(
                "No request in the last 24 hours; the last came at {}: check that the webhook is still there and active at the code host (GitLab turns off a hook after repeated failures), and that the code host can still reach {}",
                time(last_request),
                e.url
            ),
        );
    }
    if let Some((DeliveryState::Rejected, _)) = e.last.newest() {
        let n = e.rejected_run.max(1);
        let why = e
            .latest_rejected
            .as_ref()
            .map(|l| format!(" (the latest, at {}: {})", time(l.receive_time), l.note))
            .unwrap_or_default();
        return (
            Diagnosis::SignatureFailing,
            format!(
                "The last {} had a wrong or missing signature or token{why}: the secret set at the code host differs from this receiver's; paste it there again, or rotate it (hookgate receiver rotate {id}) and paste the new one",
                plural(n, "request", "requests")
            ),
        );
    }
    let decided = e.last.newest_decided().map(|(state, _)| state);
    if decided == Some(DeliveryState::Failed) {
        let n = e.last_day.failed.max(1);
        let latest = e
            .latest_failed
            .as_ref()
            .map(|l| {
                format!(
                    ", the latest at {}: {}",
                    time(l.process_time.unwrap_or(l.receive_time)),
                    l.note
                )
            })
            .unwrap_or_default();
        return (
            Diagnosis::Failing,
            format!(
                "Deliveries verify but processing them fails ({} in the last 24 hours{latest}): fix the cause, then redeliver them (hookgate delivery redeliver-all --receiver {id})",
                plural(n, "failure", "failures")
            ),
        );
    }
    if e.last_hour.rate_limited > 0 {
        let limit = match r.options.rate_limit_per_minute {
            0 => "its rate limit (it has none now)".to_owned(),
            n => format!("its limit of {n} a minute"),
        };
        return (
            Diagnosis::RateLimited,
            format!(
                "{} in the last hour {} refused with 429 by {limit} (counted by this replica): a refused delivery is lost unless the code host sends it again; raise the limit (hookgate receiver update {id} --rate-limit-per-minute <n>, 0 for none) or have the code host send fewer",
                plural(e.last_hour.rate_limited, "request", "requests"),
                if e.last_hour.rate_limited == 1 {
                    "was"
                } else {
                    "were"
                }
            ),
        );
    }
    if decided == Some(DeliveryState::Ignored) && e.last_day.processed == 0 {
        let note = e
            .latest_ignored
            .as_ref()
            .map(|l| l.note.as_str())
            .unwrap_or_default();
        return (
            Diagnosis::Ignoring,
            format!(
                "Deliveries arrive but none was acted on in the last 24 hours ({} ignored; the latest: {note}): {}",
                e.last_day.ignored.max(1),
                ignoring_advice(note, r)
            ),
        );
    }
    let (n, window) = if e.last_hour.accepted > 0 {
        (e.last_hour.accepted, "hour")
    } else {
        (e.last_day.accepted, "24 hours")
    };
    (
        Diagnosis::Healthy,
        format!(
            "Deliveries arrive and are acted on: {} accepted in the last {window}, the last request at {}, for {urn}",
            n,
            time(last_request)
        ),
    )
}

/// What to do about deliveries that are ignored, read from the note of the latest. The notes
/// are written by the ingress (`no handler takes`) and by the sync handler (`is not registered`,
/// `is not on this receiver's code host`).
fn ignoring_advice(note: &str, r: &Receiver) -> String {
    let urn = r.code_host_urn.as_str();
    let id = r.id;
    if note.contains("is not registered") {
        format!(
            "register the repositories this receiver should act on (hookgate repository register --code-host-urn {urn} --name <owner/name>), or let it act on every repository of {urn} (hookgate receiver update {id} --ignore-unmatched false)"
        )
    } else if note.contains("is not on this receiver's code host") {
        format!(
            "the deliveries name repositories outside {urn}: give the receiver the URN of the code host that sends them (hookgate receiver update {id} --code-host-urn <url>)"
        )
    } else if note.contains("no handler takes") {
        "at the code host, send the events hookgate acts on (pull or merge requests, reviews, checks, pushes) rather than these".to_owned()
    } else {
        format!(
            "if these should have been acted on, the note of each says why they were not (hookgate delivery list --receiver {id} --state ignored)"
        )
    }
}

/// `n` with the singular or plural word.
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A time in a sentence: RFC 3339 to the second, UTC.
fn time(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_micros(t.micros())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{} µs after the epoch", t.micros()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::{CodeHostKind, CodeHostUrn, ReceiverOptions};

    const HOUR: i64 = 3_600_000_000;
    const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
    const URL: &str =
        "https://hooks.example.com/.api/webhooks/2b9b6a4e-0000-4000-8000-000000000001";

    fn receiver() -> Receiver {
        Receiver {
            id: Uuid::parse_str("2b9b6a4e-0000-4000-8000-000000000001").unwrap(),
            name: "github".into(),
            code_host_kind: CodeHostKind::GitHub,
            code_host_urn: CodeHostUrn::parse("https://github.com").unwrap(),
            options: ReceiverOptions {
                rate_limit_per_minute: 60,
                ..ReceiverOptions::default()
            },
            has_secret: true,
            has_signing_token: false,
            create_time: ago(48),
            update_time: ago(48),
            created_by: "admin".into(),
            updated_by: "admin".into(),
            last_delivery_time: None,
        }
    }

    fn ago(hours: i64) -> Timestamp {
        Timestamp::from_micros(NOW.micros() - hours * HOUR)
    }

    fn latest(hours_ago: i64, note: &str) -> Latest {
        Latest {
            id: Uuid::new_v4(),
            receive_time: ago(hours_ago),
            process_time: Some(ago(hours_ago)),
            note: note.into(),
        }
    }

    /// Evidence of a receiver that processed a delivery an hour ago and nothing else.
    fn evidence(r: &Receiver) -> Evidence<'_> {
        let mut last = LastByState::default();
        last.set(DeliveryState::Processed, Some(ago(1)));
        Evidence {
            receiver: r,
            url: URL,
            now: NOW,
            last,
            last_request_time: Some(ago(1)),
            last_hour: OutcomeCounts::default(),
            last_day: OutcomeCounts {
                accepted: 1,
                processed: 1,
                ..OutcomeCounts::default()
            },
            latest_failed: None,
            latest_rejected: None,
            latest_ignored: None,
            rejected_run: 0,
        }
    }

    #[test]
    fn a_receiver_no_request_reached_is_never_received_with_its_url() {
        let r = receiver();
        let e = Evidence {
            last: LastByState::default(),
            last_request_time: None,
            last_day: OutcomeCounts::default(),
            ..evidence(&r)
        };
        let (diagnosis, message) = diagnose(&e);
        assert_eq!(diagnosis, Diagnosis::NeverReceived);
        assert!(message.contains(URL), "{message}");
        assert!(message.contains("check that the URL pasted at the code host"));
    }

    #[test]
    fn no_request_for_a_day_after_some_is_silent_whatever_the_last_was() {
        let r = receiver();
        let mut e = evidence(&r);
        e.last.set(DeliveryState::Rejected, Some(ago(25)));
        e.last.set(DeliveryState::Processed, Some(ago(30)));
        e.last_request_time = Some(ago(25));
        e.rejected_run = 3;
        let (diagnosis, message) = diagnose(&e);
        assert_eq!(diagnosis, Diagnosis::Silent);
        assert!(message.contains(&time(ago(25))), "{message}");
        assert!(message.contains(URL), "{message}");
        // Just under the threshold, the newest still decides.
        e.last_request_time = Some(Timestamp::from_micros(NOW.micros() - 24 * HOUR + 1));
        e.last.set(
            DeliveryState::Rejected,
            Some(Timestamp::from_micros(NOW.micros() - 24 * HOUR + 1)),
        );
        assert_eq!(diagnose(&e).0, Diagnosis::SignatureFailing);
    }

    #[test]
    fn a_rejected_newest_request_is_signature_failing_with_the_run_and_reason() {
        let r = receiver();
        let mut e = evidence(&r);
        e.last.set(DeliveryState::Rejected, Some(NOW));
        e.last.set(DeliveryState::Failed, Some(ago(1)));
        e.latest_rejected = Some(latest(0, "signature does not match"));
        e.rejected_run = 5;
        let (diagnosis, message) = diagnose(&e);
        assert_eq!(diagnosis, Diagnosis::SignatureFailing);
        assert!(
            message.starts_with("The last 5 requests had a wrong or missing signature or token"),
            "{message}"
        );
        assert!(message.contains("signature does not match"), "{message}");
        assert!(
            message.contains(&format!("hookgate receiver rotate {}", r.id)),
            "{message}"
        );
    }

    #[test]
    fn a_verified_delivery_after_rejected_ones_ends_signature_failing() {
        let r = receiver();
        let mut e = evidence(&r);
        e.last.set(DeliveryState::Rejected, Some(ago(1)));
        e.last.set(DeliveryState::Pending, Some(NOW));
        e.last_request_time = Some(NOW);
        assert_eq!(diagnose(&e).0, Diagnosis::Healthy);
    }

    #[test]
    fn a_failed_newest_decided_delivery_is_failing_with_the_error() {
        let r = receiver();
        let mut e = evidence(&r);
        e.last.set(DeliveryState::Failed, Some(NOW));
        // Waiting deliveries received after it do not hide it.
        e.last.set(
            DeliveryState::Pending,
            Some(NOW.plus(Duration::from_secs(1))),
        );
        e.last_day.failed = 4;
        e.latest_failed = Some(latest(0, "database: connection reset"));
        let (diagnosis, message) = diagnose(&e);
        assert_eq!(diagnosis, Diagnosis::Failing);
        assert!(
            message.contains("4 failures in the last 24 hours"),
            "{message}"
        );
        assert!(message.contains("database: connection reset"), "{message}");
        assert!(
            message.contains(&format!("redeliver-all --receiver {}", r.id)),
            "{message}"
        );
    }

    #[test]
    fn a_429_in_the_last_hour_is_rate_limited_with_the_limit() {
        let r = receiver();
        let mut e = evidence(&r);
        e.last_hour.rate_limited = 7;
        let (diagnosis, message) = diagnose(&e);
        assert_eq!(diagnosis, Diagnosis::RateLimited);
        assert!(
            message.starts_with(
                "7 requests in the last hour were refused with 429 by its limit of 60 a minute"
            ),
            "{message}"
        );
        // A rejection or a failure that is newer is said first.
        e.last.set(DeliveryState::Failed, Some(NOW));
        assert_eq!(diagnose(&e).0, Diagnosis::Failing);
    }

    #[test]
    fn ignored_deliveries_and_none_acted_on_are_ignoring_with_advice_by_reason() {
        let r = receiver();
        let mut e = evidence(&r);
        e.last = LastByState::default();
        e.last.set(DeliveryState::Ignored, Some(ago(1)));
        e.last_day = OutcomeCounts {
            accepted: 3,
            ignored: 3,
            ..OutcomeCounts::default()
        };
        e.latest_ignored = Some(latest(
            1,
            "repository octo/private is not registered, and this receiver acts only on registered repositories (ignore_unmatched)",
        ));
        let (diagnosis, message) = diagnose(&e);
        assert_eq!(diagnosis, Diagnosis::Ignoring);
        assert!(
            message.contains("(3 ignored; the latest: repository octo/private is not registered"),
            "{message}"
        );
        assert!(
            message.contains("hookgate repository register --code-host-urn https://github.com/"),
            "{message}"
        );

        e.latest_ignored = Some(latest(
            1,
            "repository a/b (https://gitlab.example.com/a/b) is not on this receiver's code host https://github.com/",
        ));
        let (_, message) = diagnose(&e);
        assert!(message.contains("outside https://github.com/"), "{message}");
        e.latest_ignored = Some(latest(1, "ignored: no handler takes star events"));
        let (_, message) = diagnose(&e);
        assert!(
            message.contains("send the events hookgate acts on"),
            "{message}"
        );

        // One delivery acted on in the day: ignoring the rest is normal.
        e.last_day.processed = 1;
        e.last.set(DeliveryState::Processed, Some(ago(2)));
        assert_eq!(diagnose(&e).0, Diagnosis::Healthy);
    }

    #[test]
    fn recent_processed_traffic_is_healthy_with_its_counts() {
        let r = receiver();
        let mut e = evidence(&r);
        e.last_hour.accepted = 12;
        let (diagnosis, message) = diagnose(&e);
        assert_eq!(diagnosis, Diagnosis::Healthy);
        assert!(
            message.contains("12 accepted in the last hour"),
            "{message}"
        );
        e.last_hour.accepted = 0;
        let (_, message) = diagnose(&e);
        assert!(
            message.contains("1 accepted in the last 24 hours"),
            "{message}"
        );
    }

    #[test]
    fn the_newest_of_the_states_is_found_and_ties_go_to_the_worse() {
        let mut last = LastByState::default();
        assert_eq!(last.newest(), None);
        last.set(DeliveryState::Processed, Some(ago(2)));
        last.set(DeliveryState::Rejected, Some(ago(2)));
        last.set(DeliveryState::Pending, Some(ago(1)));
        assert_eq!(last.newest(), Some((DeliveryState::Pending, ago(1))));
        assert_eq!(
            last.newest_decided(),
            Some((DeliveryState::Rejected, ago(2)))
        );
        assert_eq!(last.newest_accepted(), Some(ago(1)));
    }
}
