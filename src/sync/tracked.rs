//! A changeset's state as events build it, and the rules that keep it right when events arrive
//! late, twice or out of order. Pure: the store loads a [`Tracked`], applies effects to it, and
//! saves it.
//!
//! - Fields: each field remembers the host time of the change that set it; an older event does
//!   not change it (a `reopened` at 10:00 arriving after a `closed` at 10:05 leaves it closed).
//!   Of two changes with the same host time, the one that arrived later wins, whatever order they
//!   are applied in (a retry, a redelivery, another replica's worker): each fact is applied at its
//!   [`Stamp`], the host time and then the delivery's receive time.
//! - Reviews: each reviewer's latest vote counts; any changes-requested wins, else any approval,
//!   else pending; a withdrawn vote (dismissed, unapproved) removes the reviewer's vote.
//! - Checks: the latest result per (commit, context) is kept; only the current head commit's
//!   results count, so a new head starts at unknown.

use std::collections::BTreeMap;

pub use crate::entity::changeset::{CheckState, ReviewState, Stamp, StoredCheck, StoredVote};
use crate::hosts::effects::{ChangesetEffect, ChangesetState, CheckStatus, Vote};
use crate::time::Timestamp;

/// At most this many check results are kept per changeset; past it, results on other commits
/// than the head go first, oldest first.
const MAX_CHECKS: usize = 200;

/// A changeset's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub title: String,
    pub url: String,
    pub author: String,
    pub state: ChangesetState,
    pub head_ref: String,
    pub base_ref: String,
    pub head_sha: String,
    pub labels: Vec<String>,
    pub host_update_time: Option<Timestamp>,
    /// Whether it is in the host's merge queue.
    pub in_merge_queue: bool,
    /// Whether it is set to auto-merge.
    pub auto_merge: bool,
    /// Field name -> when the change that set it is from.
    pub field_times: BTreeMap<String, Stamp>,
    /// Reviewer -> latest vote.
    pub reviews: BTreeMap<String, StoredVote>,
    /// `"<sha> <context>"` -> latest result.
    pub checks: BTreeMap<String, StoredCheck>,
}

impl Default for Tracked {
    fn default() -> Self {
        Self {
            title: String::new(),
            url: String::new(),
            author: String::new(),
            state: ChangesetState::Open,
            head_ref: String::new(),
            base_ref: String::new(),
            head_sha: String::new(),
            labels: Vec::new(),
            host_update_time: None,
            in_merge_queue: false,
            auto_merge: false,
            field_times: BTreeMap::new(),
            reviews: BTreeMap::new(),
            checks: BTreeMap::new(),
        }
    }
}

/// Whether two commit ids name the same commit: equal, or one a prefix of the other (hosts
/// send abbreviated hashes in some payloads).
pub fn same_commit(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a.starts_with(&b) || b.starts_with(&a)
}

impl Tracked {
    /// Applies what `effect` says, as of `at`. Returns whether anything changed.
    pub fn apply(&mut self, effect: &ChangesetEffect, at: Stamp) -> bool {
        let before = self.clone();
        let s = &effect.snapshot;
        macro_rules! field {
            ($name:ident) => {
                if let Some(value) = &s.$name {
                    if self.newer(stringify!($name), at) {
                        self.$name = value.clone();
                    }
                }
            };
        }
        field!(title);
        field!(url);
        field!(author);
        field!(head_ref);
        field!(base_ref);
        field!(head_sha);
        field!(labels);
        field!(in_merge_queue);
        field!(auto_merge);
        if let Some(state) = s.state
            && self.newer("state", at)
        {
            self.state = state;
        }
        if let Some(t) = s.host_update_time
            && self.host_update_time.is_none_or(|current| t > current)
        {
            self.host_update_time = Some(t);
        }
        if let Some(review) = &effect.review {
            let newer = self
                .reviews
                .get(&review.reviewer)
                .is_none_or(|v| at >= v.stamp());
            if newer {
                self.reviews.insert(
                    review.reviewer.clone(),
                    StoredVote {
                        vote: review.vote,
                        time: at.time,
                        arrival: at.arrival,
                    },
                );
            }
        }
        if let Some(check) = &effect.check {
            self.record_check(StoredCheck {
                sha: check.sha.clone(),
                context: check.context.clone(),
                status: check.status,
                time: at.time,
                arrival: at.arrival,
            });
        }
        *self != before
    }

    /// Keeps a check result unless a newer one of the same commit and context is kept.
    pub fn record_check(&mut self, check: StoredCheck) {
        let key = format!("{} {}", check.sha.to_ascii_lowercase(), check.context);
        if self
            .checks
            .get(&key)
            .is_none_or(|c| check.stamp() >= c.stamp())
        {
            self.checks.insert(key, check);
            self.prune_checks();
        }
    }

    /// Whether a change from `at` to `field` is not older than the last one; if so, records it.
    fn newer(&mut self, field: &str, at: Stamp) -> bool {
        match self.field_times.get(field) {
            Some(&last) if at < last => false,
            _ => {
                self.field_times.insert(field.to_owned(), at);
                true
            }
        }
    }

    fn prune_checks(&mut self) {
        while self.checks.len() > MAX_CHECKS {
            let victim = self
                .checks
                .iter()
                .min_by_key(|(_, c)| (same_commit(&c.sha, &self.head_sha), c.stamp()))
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => self.checks.remove(&k),
                None => break,
            };
        }
    }

    /// Any changes requested wins, else any approval, else pending.
    pub fn review_state(&self) -> ReviewState {
        let votes = || self.reviews.values().map(|v| v.vote);
        if votes().any(|v| v == Vote::ChangesRequested) {
            ReviewState::ChangesRequested
        } else if votes().any(|v| v == Vote::Approved) {
            ReviewState::Approved
        } else {
            ReviewState::Pending
        }
    }

    /// Over the head commit's latest results: any failed, else any pending, else passed; none:
    /// unknown.
    pub fn check_state(&self) -> CheckState {
        let mut statuses = self
            .checks
            .values()
            .filter(|c| same_commit(&c.sha, &self.head_sha))
            .map(|c| c.status)
            .peekable();
        if statuses.peek().is_none() {
            return CheckState::Unknown;
        }
        let statuses: Vec<CheckStatus> = statuses.collect();
        if statuses.contains(&CheckStatus::Failed) {
            CheckState::Failed
        } else if statuses.contains(&CheckStatus::Pending) {
            CheckState::Pending
        } else {
            CheckState::Passed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::effects::{
        ChangesetSnapshot, CheckResult, RepositoryRef, ReviewVote, Target,
    };

    /// A fact of host time `micros` whose arrival is not known.
    pub(super) fn at(micros: i64) -> Stamp {
        Stamp {
            time: Timestamp::from_micros(micros),
            arrival: Timestamp::EPOCH,
        }
    }

    pub(super) fn effect() -> ChangesetEffect {
        ChangesetEffect {
            repository: RepositoryRef {
                name: "o/r".into(),
                external_id: String::new(),
                url: String::new(),
                clone_urls: vec![],
            },
            target: Target::Number(1),
            occur_time: None,
            kind: "x".into(),
            actor: String::new(),
            summary: String::new(),
            external_id: String::new(),
            snapshot: ChangesetSnapshot::default(),
            review: None,
            check: None,
        }
    }

    fn state(s: ChangesetState) -> ChangesetEffect {
        ChangesetEffect {
            snapshot: ChangesetSnapshot {
                state: Some(s),
                ..Default::default()
            },
            ..effect()
        }
    }

    fn vote(reviewer: &str, vote: Vote) -> ChangesetEffect {
        ChangesetEffect {
            review: Some(ReviewVote {
                reviewer: reviewer.into(),
                vote,
            }),
            ..effect()
        }
    }

    fn check(sha: &str, context: &str, status: CheckStatus) -> ChangesetEffect {
        ChangesetEffect {
            check: Some(CheckResult {
                context: context.into(),
                sha: sha.into(),
                status,
            }),
            ..effect()
        }
    }

    fn head(sha: &str) -> ChangesetEffect {
        ChangesetEffect {
            snapshot: ChangesetSnapshot {
                head_sha: Some(sha.into()),
                ..Default::default()
            },
            ..effect()
        }
    }

    fn flags(in_merge_queue: Option<bool>, auto_merge: Option<bool>) -> ChangesetEffect {
        ChangesetEffect {
            snapshot: ChangesetSnapshot {
                in_merge_queue,
                auto_merge,
                ..Default::default()
            },
            ..effect()
        }
    }

    #[test]
    fn merge_queue_and_auto_merge_go_to_the_later_host_time_each_on_its_own() {
        let mut t = Tracked::default();
        assert!(!t.in_merge_queue && !t.auto_merge);
        // Dequeued at 1005 arrives before enqueued at 1000: still out of the queue.
        t.apply(&flags(Some(false), None), at(1005));
        assert!(!t.in_merge_queue);
        t.apply(&flags(Some(true), None), at(1000));
        assert!(!t.in_merge_queue);
        // Auto-merge is a field of its own: an older queue time does not hold it back.
        t.apply(&flags(None, Some(true)), at(1001));
        assert!(t.auto_merge && !t.in_merge_queue);
        t.apply(&flags(Some(true), Some(false)), at(1010));
        assert!(t.in_merge_queue && !t.auto_merge);
        // Saying nothing of a flag leaves it.
        t.apply(&flags(None, None), at(1020));
        assert!(t.in_merge_queue && !t.auto_merge);
    }

    #[test]
    fn an_older_state_change_arriving_late_does_not_win() {
        let mut t = Tracked::default();
        t.apply(&state(ChangesetState::Closed), at(1005));
        t.apply(&state(ChangesetState::Open), at(1000));
        assert_eq!(t.state, ChangesetState::Closed);
        t.apply(&state(ChangesetState::Open), at(1010));
        assert_eq!(t.state, ChangesetState::Open);
    }

    #[test]
    fn of_two_changes_at_one_host_time_the_later_arrival_wins_in_either_order() {
        let time = Timestamp::from_micros(1000);
        let draft = (
            state(ChangesetState::Draft),
            Stamp {
                time,
                arrival: Timestamp::from_micros(1),
            },
        );
        let closed = (
            state(ChangesetState::Closed),
            Stamp {
                time,
                arrival: Timestamp::from_micros(2),
            },
        );
        for order in [[&draft, &closed], [&closed, &draft]] {
            let mut t = Tracked::default();
            for (effect, stamp) in order {
                t.apply(effect, *stamp);
            }
            assert_eq!(t.state, ChangesetState::Closed);
        }
        // What an older hookgate stored has no arrival: a change at its time arrived after it.
        let mut t = Tracked::default();
        t.apply(&state(ChangesetState::Draft), at(1000));
        t.apply(&closed.0, closed.1);
        assert_eq!(t.state, ChangesetState::Closed);
    }

    #[test]
    fn fields_are_judged_each_by_its_own_time() {
        let mut t = Tracked::default();
        let titled = |title: &str| ChangesetEffect {
            snapshot: ChangesetSnapshot {
                title: Some(title.into()),
                ..Default::default()
            },
            ..effect()
        };
        t.apply(&titled("new"), at(20));
        // An old state change is still news for the state.
        t.apply(&state(ChangesetState::Merged), at(10));
        t.apply(&titled("old"), at(10));
        assert_eq!(t.title, "new");
        assert_eq!(t.state, ChangesetState::Merged);
    }

    #[test]
    fn the_same_event_twice_changes_nothing_the_second_time() {
        let mut t = Tracked::default();
        assert!(t.apply(&state(ChangesetState::Merged), at(5)));
        assert!(!t.apply(&state(ChangesetState::Merged), at(5)));
        assert!(t.apply(&vote("a", Vote::Approved), at(6)));
        assert!(!t.apply(&vote("a", Vote::Approved), at(6)));
    }

    #[test]
    fn changes_requested_wins_over_approval_and_each_reviewers_latest_vote_counts() {
        let mut t = Tracked::default();
        assert_eq!(t.review_state(), ReviewState::Pending);
        t.apply(&vote("alice", Vote::Approved), at(1));
        assert_eq!(t.review_state(), ReviewState::Approved);
        t.apply(&vote("bob", Vote::ChangesRequested), at(2));
        assert_eq!(t.review_state(), ReviewState::ChangesRequested);
        t.apply(&vote("bob", Vote::Approved), at(3));
        assert_eq!(t.review_state(), ReviewState::Approved);
        // bob's older request, delivered late, does not undo his approval.
        t.apply(&vote("bob", Vote::ChangesRequested), at(2));
        assert_eq!(t.review_state(), ReviewState::Approved);
    }

    #[test]
    fn a_withdrawn_vote_removes_the_reviewers_vote() {
        let mut t = Tracked::default();
        t.apply(&vote("alice", Vote::ChangesRequested), at(1));
        t.apply(&vote("alice", Vote::Withdrawn), at(2));
        assert_eq!(t.review_state(), ReviewState::Pending);
    }

    #[test]
    fn checks_count_for_the_head_commit_only_and_a_new_head_starts_unknown() {
        let mut t = Tracked::default();
        t.apply(&head("aaaa1111"), at(1));
        assert_eq!(t.check_state(), CheckState::Unknown);
        t.apply(&check("aaaa1111", "ci", CheckStatus::Pending), at(2));
        assert_eq!(t.check_state(), CheckState::Pending);
        t.apply(&check("aaaa1111", "lint", CheckStatus::Passed), at(2));
        t.apply(&check("aaaa1111", "ci", CheckStatus::Failed), at(3));
        assert_eq!(t.check_state(), CheckState::Failed);
        t.apply(&head("bbbb2222"), at(4));
        assert_eq!(t.check_state(), CheckState::Unknown);
        // A late result for the old head does not count.
        t.apply(&check("aaaa1111", "ci", CheckStatus::Passed), at(5));
        assert_eq!(t.check_state(), CheckState::Unknown);
        t.apply(&check("bbbb2222", "ci", CheckStatus::Passed), at(6));
        assert_eq!(t.check_state(), CheckState::Passed);
        // An older result for the same context does not replace the newer one.
        t.apply(&check("bbbb2222", "ci", CheckStatus::Failed), at(5));
        assert_eq!(t.check_state(), CheckState::Passed);
    }

    #[test]
    fn abbreviated_and_full_hashes_name_the_same_commit() {
        assert!(same_commit(
            "e38f0dd3d4b3",
            "e38f0dd3d4b39f1d2e0c5b2c7e0f4a9b8c7d6e5f"
        ));
        assert!(same_commit("ABCDEF", "abcdef"));
        assert!(!same_commit("", "abc"));
        assert!(!same_commit("abc1", "abc2"));
    }

    #[test]
    fn the_checks_kept_are_bounded_and_the_heads_survive() {
        let mut t = Tracked::default();
        t.apply(&head("head"), at(0));
        t.apply(&check("head", "ci", CheckStatus::Passed), at(0));
        for i in 0..300 {
            t.apply(
                &check(&format!("old{i}"), "ci", CheckStatus::Failed),
                at(i + 1),
            );
        }
        assert!(t.checks.len() <= MAX_CHECKS);
        assert_eq!(t.check_state(), CheckState::Passed);
    }
}

/// The out-of-order rules over generated histories: updates to the tracked fields, reviewer
/// votes and check results, each at its own host time. Whatever order they arrive in, the
/// changeset ends as if they had arrived in host-time order; a duplicate changes nothing; and an
/// older update never replaces what a newer one set. (Two different updates of one field at the
/// same host time have no host-time order, so the histories give every update its own time.)
#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::hosts::effects::{ChangesetSnapshot, CheckResult, ReviewVote};

    fn changeset_state() -> impl Strategy<Value = ChangesetState> {
        prop_oneof![
            Just(ChangesetState::Open),
            Just(ChangesetState::Draft),
            Just(ChangesetState::Closed),
            Just(ChangesetState::Merged),
        ]
    }

    fn vote() -> impl Strategy<Value = Vote> {
        prop_oneof![
            Just(Vote::Approved),
            Just(Vote::ChangesRequested),
            Just(Vote::Withdrawn),
        ]
    }

    fn check_status() -> impl Strategy<Value = CheckStatus> {
        prop_oneof![
            Just(CheckStatus::Pending),
            Just(CheckStatus::Passed),
            Just(CheckStatus::Failed),
        ]
    }

    /// Few commits (in both cases, one abbreviated) so that histories revisit them.
    fn sha() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a1b2c3d4e5",
            "A1B2C3D4E5",
            "a1b2c3d",
            "ffee0011",
            "9876",
        ])
        .prop_map(str::to_owned)
    }

    /// An effect that says something about some of the fields, and maybe votes or reports a
    /// check: few values each, so that updates collide.
    fn effect() -> impl Strategy<Value = ChangesetEffect> {
        let words = || prop::sample::select(vec!["one", "two", "three"]).prop_map(str::to_owned);
        let snapshot = (
            proptest::option::of(words()),
            proptest::option::of(words()),
            proptest::option::of(changeset_state()),
            proptest::option::of(words()),
            proptest::option::of(sha()),
            proptest::option::of(prop::collection::vec(words(), 0..3)),
            proptest::option::of(0i64..100),
        )
            .prop_map(
                |(title, author, state, head_ref, head_sha, labels, host_update_time)| {
                    ChangesetSnapshot {
                        title,
                        author,
                        state,
                        head_ref,
                        head_sha,
                        labels,
                        host_update_time: host_update_time.map(Timestamp::from_micros),
                        ..ChangesetSnapshot::default()
                    }
                },
            );
        let review = proptest::option::of(
            (prop::sample::select(vec!["alice", "bob", "carol"]), vote()).prop_map(
                |(reviewer, vote)| ReviewVote {
                    reviewer: reviewer.to_owned(),
                    vote,
                },
            ),
        );
        let check = proptest::option::of(
            (
                sha(),
                prop::sample::select(vec!["ci", "lint"]),
                check_status(),
            )
                .prop_map(|(sha, context, status)| CheckResult {
                    context: context.to_owned(),
                    sha,
                    status,
                }),
        );
        (snapshot, review, check).prop_map(|(snapshot, review, check)| ChangesetEffect {
            snapshot,
            review,
            check,
            ..super::tests::effect()
        })
    }

    /// Updates with the host time of each.
    type History = Vec<(i64, ChangesetEffect)>;

    /// A history in host-time order (each update at its own time), and the same updates in an
    /// arrival order.
    fn history() -> impl Strategy<Value = (History, History)> {
        prop::collection::btree_map(-1_000i64..1_000, effect(), 1..16).prop_flat_map(|updates| {
            let in_order: Vec<_> = updates.into_iter().collect();
            (Just(in_order.clone()), Just(in_order).prop_shuffle())
        })
    }

    fn applied(updates: &[(i64, ChangesetEffect)]) -> Tracked {
        let mut tracked = Tracked::default();
        for (time, effect) in updates {
            tracked.apply(effect, super::tests::at(*time));
        }
        tracked
    }

    /// The value the latest of `updates` that says anything about a field gave it.
    fn latest<T: Clone>(
        updates: &[(i64, ChangesetEffect)],
        value: impl Fn(&ChangesetEffect) -> Option<T>,
    ) -> Option<T> {
        updates
            .iter()
            .filter_map(|(time, e)| value(e).map(|v| (*time, v)))
            .max_by_key(|(time, _)| *time)
            .map(|(_, v)| v)
    }

    proptest! {
        #[test]
        fn every_arrival_order_ends_in_the_state_of_host_time_order((in_order, arrived) in history()) {
            let expected = applied(&in_order);
            let got = applied(&arrived);
            prop_assert_eq!(got.review_state(), expected.review_state());
            prop_assert_eq!(got.check_state(), expected.check_state());
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn a_duplicate_applied_again_changes_nothing(
            (_, arrived) in history(), which in any::<prop::sample::Index>(),
        ) {
            let mut tracked = applied(&arrived);
            let before = tracked.clone();
            let (time, effect) = &arrived[which.index(arrived.len())];
            prop_assert!(!tracked.apply(effect, super::tests::at(*time)), "a duplicate reported a change");
            prop_assert_eq!(tracked, before);
        }

        #[test]
        fn an_older_update_never_replaces_a_newer_one((in_order, arrived) in history()) {
            // Step by step: an update older than a field's last change leaves that field alone.
            let mut tracked = Tracked::default();
            for (time, effect) in &arrived {
                let before = tracked.clone();
                tracked.apply(effect, super::tests::at(*time));
                let older = |field: &str| before.field_times.get(field).is_some_and(|t| *time < t.time.micros());
                if older("title") { prop_assert_eq!(&tracked.title, &before.title); }
                if older("author") { prop_assert_eq!(&tracked.author, &before.author); }
                if older("state") { prop_assert_eq!(tracked.state, before.state); }
                if older("head_ref") { prop_assert_eq!(&tracked.head_ref, &before.head_ref); }
                if older("head_sha") { prop_assert_eq!(&tracked.head_sha, &before.head_sha); }
                if older("labels") { prop_assert_eq!(&tracked.labels, &before.labels); }
                if let Some(review) = &effect.review
                    && let Some(kept) = before.reviews.get(&review.reviewer)
                    && *time < kept.time.micros()
                {
                    prop_assert_eq!(tracked.reviews.get(&review.reviewer), Some(kept));
                }
            }
            // And in the end each field holds what the latest update that set it said.
            let snapshot = |e: &ChangesetEffect| e.snapshot.clone();
            let title = latest(&in_order, |e| snapshot(e).title).unwrap_or_default();
            prop_assert_eq!(&tracked.title, &title);
            let state = latest(&in_order, |e| snapshot(e).state).unwrap_or(ChangesetState::Open);
            prop_assert_eq!(tracked.state, state);
            let head_sha = latest(&in_order, |e| snapshot(e).head_sha).unwrap_or_default();
            prop_assert_eq!(&tracked.head_sha, &head_sha);
            let labels = latest(&in_order, |e| snapshot(e).labels).unwrap_or_default();
            prop_assert_eq!(&tracked.labels, &labels);
            let newest_update = in_order.iter().filter_map(|(_, e)| e.snapshot.host_update_time).max();
            prop_assert_eq!(tracked.host_update_time, newest_update);
            let mut votes: BTreeMap<String, (i64, Vote)> = BTreeMap::new();
            let mut checks: BTreeMap<String, (i64, CheckStatus)> = BTreeMap::new();
            for (time, effect) in &in_order {
                if let Some(review) = &effect.review {
                    votes.insert(review.reviewer.clone(), (*time, review.vote));
                }
                if let Some(check) = &effect.check {
                    let key = format!("{} {}", check.sha.to_ascii_lowercase(), check.context);
                    checks.insert(key, (*time, check.status));
                }
            }
            let kept_votes: BTreeMap<String, (i64, Vote)> = tracked
                .reviews
                .iter()
                .map(|(who, v)| (who.clone(), (v.time.micros(), v.vote)))
                .collect();
            prop_assert_eq!(kept_votes, votes);
            let kept_checks: BTreeMap<String, (i64, CheckStatus)> = tracked
                .checks
                .iter()
                .map(|(key, c)| (key.clone(), (c.time.micros(), c.status)))
                .collect();
            prop_assert_eq!(kept_checks, checks);
        }

        #[test]
        fn the_review_and_check_states_follow_the_latest_votes_and_head_results((in_order, arrived) in history()) {
            let tracked = applied(&arrived);
            let mut votes: BTreeMap<&str, Vote> = BTreeMap::new();
            let mut results: BTreeMap<(String, &str), CheckStatus> = BTreeMap::new();
            for (_, effect) in &in_order {
                if let Some(review) = &effect.review {
                    votes.insert(&review.reviewer, review.vote);
                }
                if let Some(check) = &effect.check {
                    results.insert((check.sha.to_ascii_lowercase(), check.context.as_str()), check.status);
                }
            }
            let review = if votes.values().any(|v| *v == Vote::ChangesRequested) {
                ReviewState::ChangesRequested
            } else if votes.values().any(|v| *v == Vote::Approved) {
                ReviewState::Approved
            } else {
                ReviewState::Pending
            };
            prop_assert_eq!(tracked.review_state(), review);
            let head: Vec<CheckStatus> = results
                .iter()
                .filter(|((sha, _), _)| same_commit(sha, &tracked.head_sha))
                .map(|(_, status)| *status)
                .collect();
            let check = if head.is_empty() {
                CheckState::Unknown
            } else if head.contains(&CheckStatus::Failed) {
                CheckState::Failed
            } else if head.contains(&CheckStatus::Pending) {
                CheckState::Pending
            } else {
                CheckState::Passed
            };
            prop_assert_eq!(tracked.check_state(), check);
        }
    }
}
