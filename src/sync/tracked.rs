//! A changeset's state as events build it, and the rules that keep it right when events arrive
//! late, twice or out of order. Pure: the store loads a [`Tracked`], applies effects to it, and
//! saves it.
//!
//! - Fields: each field remembers the host time of the change that set it; an older event does
//!   not change it (a `reopened` at 10:00 arriving after a `closed` at 10:05 leaves it closed).
//! - Reviews: each reviewer's latest vote counts; any changes-requested wins, else any approval,
//!   else pending; a withdrawn vote (dismissed, unapproved) removes the reviewer's vote.
//! - Checks: the latest result per (commit, context) is kept; only the current head commit's
//!   results count, so a new head starts at unknown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hosts::effects::{ChangesetEffect, ChangesetState, CheckStatus, Vote};

/// The review state of a changeset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    Pending,
    Approved,
    ChangesRequested,
}

/// The check state of a changeset's head commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Unknown,
    Pending,
    Passed,
    Failed,
}

/// A reviewer's latest vote and when it was cast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVote {
    /// `APPROVED`, `CHANGES_REQUESTED` or `WITHDRAWN`.
    pub vote: String,
    pub time: i64,
}

/// The latest result of one check context on one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheck {
    pub sha: String,
    pub context: String,
    /// `PENDING`, `PASSED` or `FAILED`.
    pub status: String,
    pub time: i64,
}

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
    pub host_update_time: Option<i64>,
    /// Field name -> host time of the change that set it.
    pub field_times: BTreeMap<String, i64>,
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
    /// Applies what `effect` says, as of host time `time`. Returns whether anything changed.
    pub fn apply(&mut self, effect: &ChangesetEffect, time: i64) -> bool {
        let before = self.clone();
        let s = &effect.snapshot;
        macro_rules! field {
            ($name:ident) => {
                if let Some(value) = &s.$name {
                    if self.newer(stringify!($name), time) {
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
        if let Some(state) = s.state
            && self.newer("state", time)
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
                .is_none_or(|v| time >= v.time);
            if newer {
                self.reviews.insert(
                    review.reviewer.clone(),
                    StoredVote {
                        vote: vote_str(review.vote).to_owned(),
                        time,
                    },
                );
            }
        }
        if let Some(check) = &effect.check {
            self.record_check(StoredCheck {
                sha: check.sha.clone(),
                context: check.context.clone(),
                status: check_str(check.status).to_owned(),
                time,
            });
        }
        *self != before
    }

    /// Keeps a check result unless a newer one of the same commit and context is kept.
    pub fn record_check(&mut self, check: StoredCheck) {
        let key = format!("{} {}", check.sha.to_ascii_lowercase(), check.context);
        if self.checks.get(&key).is_none_or(|c| check.time >= c.time) {
            self.checks.insert(key, check);
            self.prune_checks();
        }
    }

    /// Whether a change at `time` to `field` is not older than the last one; if so, records it.
    fn newer(&mut self, field: &str, time: i64) -> bool {
        match self.field_times.get(field) {
            Some(&last) if time < last => false,
            _ => {
                self.field_times.insert(field.to_owned(), time);
                true
            }
        }
    }

    fn prune_checks(&mut self) {
        while self.checks.len() > MAX_CHECKS {
            let victim = self
                .checks
                .iter()
                .min_by_key(|(_, c)| (same_commit(&c.sha, &self.head_sha), c.time))
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => self.checks.remove(&k),
                None => break,
            };
        }
    }

    /// Any changes requested wins, else any approval, else pending.
    pub fn review_state(&self) -> ReviewState {
        let votes = || self.reviews.values().map(|v| v.vote.as_str());
        if votes().any(|v| v == "CHANGES_REQUESTED") {
            ReviewState::ChangesRequested
        } else if votes().any(|v| v == "APPROVED") {
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
            .map(|c| c.status.as_str())
            .peekable();
        if statuses.peek().is_none() {
            return CheckState::Unknown;
        }
        let statuses: Vec<&str> = statuses.collect();
        if statuses.contains(&"FAILED") {
            CheckState::Failed
        } else if statuses.contains(&"PENDING") {
            CheckState::Pending
        } else {
            CheckState::Passed
        }
    }
}

fn vote_str(vote: Vote) -> &'static str {
    match vote {
        Vote::Approved => "APPROVED",
        Vote::ChangesRequested => "CHANGES_REQUESTED",
        Vote::Withdrawn => "WITHDRAWN",
    }
}

pub fn check_str(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pending => "PENDING",
        CheckStatus::Passed => "PASSED",
        CheckStatus::Failed => "FAILED",
    }
}

pub fn state_str(state: ChangesetState) -> &'static str {
    match state {
        ChangesetState::Open => "OPEN",
        ChangesetState::Draft => "DRAFT",
        ChangesetState::Closed => "CLOSED",
        ChangesetState::Merged => "MERGED",
    }
}

pub fn state_from_str(s: &str) -> Option<ChangesetState> {
    [
        ChangesetState::Open,
        ChangesetState::Draft,
        ChangesetState::Closed,
        ChangesetState::Merged,
    ]
    .into_iter()
    .find(|st| state_str(*st) == s)
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Pending => "PENDING",
            ReviewState::Approved => "APPROVED",
            ReviewState::ChangesRequested => "CHANGES_REQUESTED",
        }
    }
}

impl CheckState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Unknown => "UNKNOWN",
            CheckState::Pending => "PENDING",
            CheckState::Passed => "PASSED",
            CheckState::Failed => "FAILED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::effects::{
        ChangesetSnapshot, CheckResult, RepositoryRef, ReviewVote, Target,
    };

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

    #[test]
    fn an_older_state_change_arriving_late_does_not_win() {
        let mut t = Tracked::default();
        t.apply(&state(ChangesetState::Closed), 1005);
        t.apply(&state(ChangesetState::Open), 1000);
        assert_eq!(t.state, ChangesetState::Closed);
        t.apply(&state(ChangesetState::Open), 1010);
        assert_eq!(t.state, ChangesetState::Open);
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
        t.apply(&titled("new"), 20);
        // An old state change is still news for the state.
        t.apply(&state(ChangesetState::Merged), 10);
        t.apply(&titled("old"), 10);
        assert_eq!(t.title, "new");
        assert_eq!(t.state, ChangesetState::Merged);
    }

    #[test]
    fn the_same_event_twice_changes_nothing_the_second_time() {
        let mut t = Tracked::default();
        assert!(t.apply(&state(ChangesetState::Merged), 5));
        assert!(!t.apply(&state(ChangesetState::Merged), 5));
        assert!(t.apply(&vote("a", Vote::Approved), 6));
        assert!(!t.apply(&vote("a", Vote::Approved), 6));
    }

    #[test]
    fn changes_requested_wins_over_approval_and_each_reviewers_latest_vote_counts() {
        let mut t = Tracked::default();
        assert_eq!(t.review_state(), ReviewState::Pending);
        t.apply(&vote("alice", Vote::Approved), 1);
        assert_eq!(t.review_state(), ReviewState::Approved);
        t.apply(&vote("bob", Vote::ChangesRequested), 2);
        assert_eq!(t.review_state(), ReviewState::ChangesRequested);
        t.apply(&vote("bob", Vote::Approved), 3);
        assert_eq!(t.review_state(), ReviewState::Approved);
        // bob's older request, delivered late, does not undo his approval.
        t.apply(&vote("bob", Vote::ChangesRequested), 2);
        assert_eq!(t.review_state(), ReviewState::Approved);
    }

    #[test]
    fn a_withdrawn_vote_removes_the_reviewers_vote() {
        let mut t = Tracked::default();
        t.apply(&vote("alice", Vote::ChangesRequested), 1);
        t.apply(&vote("alice", Vote::Withdrawn), 2);
        assert_eq!(t.review_state(), ReviewState::Pending);
    }

    #[test]
    fn checks_count_for_the_head_commit_only_and_a_new_head_starts_unknown() {
        let mut t = Tracked::default();
        t.apply(&head("aaaa1111"), 1);
        assert_eq!(t.check_state(), CheckState::Unknown);
        t.apply(&check("aaaa1111", "ci", CheckStatus::Pending), 2);
        assert_eq!(t.check_state(), CheckState::Pending);
        t.apply(&check("aaaa1111", "lint", CheckStatus::Passed), 2);
        t.apply(&check("aaaa1111", "ci", CheckStatus::Failed), 3);
        assert_eq!(t.check_state(), CheckState::Failed);
        t.apply(&head("bbbb2222"), 4);
        assert_eq!(t.check_state(), CheckState::Unknown);
        // A late result for the old head does not count.
        t.apply(&check("aaaa1111", "ci", CheckStatus::Passed), 5);
        assert_eq!(t.check_state(), CheckState::Unknown);
        t.apply(&check("bbbb2222", "ci", CheckStatus::Passed), 6);
        assert_eq!(t.check_state(), CheckState::Passed);
        // An older result for the same context does not replace the newer one.
        t.apply(&check("bbbb2222", "ci", CheckStatus::Failed), 5);
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
        t.apply(&head("head"), 0);
        t.apply(&check("head", "ci", CheckStatus::Passed), 0);
        for i in 0..300 {
            t.apply(&check(&format!("old{i}"), "ci", CheckStatus::Failed), i + 1);
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
                        host_update_time,
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
            tracked.apply(effect, *time);
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
            prop_assert!(!tracked.apply(effect, *time), "a duplicate reported a change");
            prop_assert_eq!(tracked, before);
        }

        #[test]
        fn an_older_update_never_replaces_a_newer_one((in_order, arrived) in history()) {
            // Step by step: an update older than a field's last change leaves that field alone.
            let mut tracked = Tracked::default();
            for (time, effect) in &arrived {
                let before = tracked.clone();
                tracked.apply(effect, *time);
                let older = |field: &str| before.field_times.get(field).is_some_and(|t| *time < *t);
                if older("title") { prop_assert_eq!(&tracked.title, &before.title); }
                if older("author") { prop_assert_eq!(&tracked.author, &before.author); }
                if older("state") { prop_assert_eq!(tracked.state, before.state); }
                if older("head_ref") { prop_assert_eq!(&tracked.head_ref, &before.head_ref); }
                if older("head_sha") { prop_assert_eq!(&tracked.head_sha, &before.head_sha); }
                if older("labels") { prop_assert_eq!(&tracked.labels, &before.labels); }
                if let Some(review) = &effect.review
                    && let Some(kept) = before.reviews.get(&review.reviewer)
                    && *time < kept.time
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
            let mut votes: BTreeMap<String, (i64, &'static str)> = BTreeMap::new();
            let mut checks: BTreeMap<String, (i64, &'static str)> = BTreeMap::new();
            for (time, effect) in &in_order {
                if let Some(review) = &effect.review {
                    votes.insert(review.reviewer.clone(), (*time, vote_str(review.vote)));
                }
                if let Some(check) = &effect.check {
                    let key = format!("{} {}", check.sha.to_ascii_lowercase(), check.context);
                    checks.insert(key, (*time, check_str(check.status)));
                }
            }
            let kept_votes: BTreeMap<String, (i64, &str)> = tracked
                .reviews
                .iter()
                .map(|(who, v)| (who.clone(), (v.time, v.vote.as_str())))
                .collect();
            prop_assert_eq!(kept_votes, votes);
            let kept_checks: BTreeMap<String, (i64, &str)> = tracked
                .checks
                .iter()
                .map(|(key, c)| (key.clone(), (c.time, c.status.as_str())))
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
