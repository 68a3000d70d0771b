//! Bounded text: the one way text from outside (a code host's headers and payloads, a stranger's
//! request, a sync worker's error) becomes a stored text value. Every stored text column has a
//! cap in bytes, a [`Cap`] decided here and nowhere else, and [`bounded`] is applied where the
//! value enters (intake, the worker's outcome, an event's effects), so no row holds more than
//! its caps add up to, whatever was sent. A cut value ends in `…`, and is cut on a character
//! boundary, never inside a UTF-8 character.

/// The most bytes one stored text value may hold. The values are generous for what hosts really
/// send (a branch name, a title, a login) and small enough that a page of rows stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(usize);

impl Cap {
    /// Anything kept of a request that was not authenticated (a wrong signature, an unsigned
    /// ping): each header name and value, the claimed event and delivery key, the path.
    pub const UNAUTHENTICATED: Cap = Cap(200);
    /// `deliveries.event`: the event header, and for GitHub and GitLab the body's action.
    pub const EVENT: Cap = Cap(200);
    /// `deliveries.delivery_key`: the host's delivery id header.
    pub const DELIVERY_KEY: Cap = Cap(200);
    /// `deliveries.path`: the request path and query.
    pub const PATH: Cap = Cap(2048);
    /// A note for a person: `deliveries.last_error`, `sync_requests.error`, an ignore reason.
    pub const NOTE: Cap = Cap(2048);
    /// `changesets.title`.
    pub const TITLE: Cap = Cap(1024);
    /// `changesets.url`, `repositories.url`, each of `repositories.clone_urls`.
    pub const URL: Cap = Cap(2048);
    /// A login or user name: `changesets.author`, `changeset_events.actor`, a reviewer, a
    /// sync worker's name.
    pub const LOGIN: Cap = Cap(256);
    /// A ref or branch name: `changesets.head_ref`, `base_ref`, a pushed ref.
    pub const REF: Cap = Cap(1024);
    /// A commit hash as hosts write it (40 or 64 hex digits; more is never a hash).
    pub const SHA: Cap = Cap(128);
    /// One of `changesets.labels`.
    pub const LABEL: Cap = Cap(256);
    /// `changeset_events.kind`.
    pub const KIND: Cap = Cap(64);
    /// `changeset_events.summary`: one line for a person.
    pub const SUMMARY: Cap = Cap(1024);
    /// `repositories.name`: `octo-org/hello-world`, a GitLab path with its namespaces.
    pub const NAME: Cap = Cap(1024);
    /// `repositories.external_id` and `changeset_events.external_id`: the host's own id for a
    /// repository or for what a timeline entry tells of.
    pub const EXTERNAL_ID: Cap = Cap(256);
    /// A check's context (`commit_checks.context`, a key of `changesets.checks`).
    pub const CONTEXT: Cap = Cap(256);

    /// The cap in bytes (what the tests check cut values against).
    #[cfg(test)]
    pub const fn bytes(self) -> usize {
        self.0
    }
}

/// The most items a stored list holds, past which the rest are left out: labels of a changeset,
/// clone URLs of a repository.
pub const MAX_LIST_ITEMS: usize = 100;

/// The most refs one push (and so one sync request) keeps; a sync fetches the whole repository
/// anyway, the refs are what a sync worker is told changed.
pub const MAX_REFS: usize = 1000;

/// What a cut value ends in.
const CUT: char = '…';

/// Text from outside (a code host's body or headers) as the store can hold it: NUL, which
/// PostgreSQL text cannot hold (SQLSTATE 22021), becomes U+FFFD, as in lossy UTF-8 decoding.
/// Every text value that comes from a delivery goes through here before it is written (through
/// [`bounded`], or on its own for a whole payload), on both engines, so both store the same. Raw bodies are stored as bytes and never go through here.
pub fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// `value` as stored under `cap`: [`storable`], and itself when it fits, else its longest start
/// that fits with `…` after it, cut on a character boundary.
pub fn bounded(value: impl Into<String>, cap: Cap) -> String {
    let mut value = storable(value.into());
    if value.len() <= cap.0 {
        return value;
    }
    let mut end = cap.0.saturating_sub(CUT.len_utf8());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.truncate(end);
    value.push(CUT);
    value
}

/// `items`, each [`bounded`] by `cap`, at most [`MAX_LIST_ITEMS`] of them.
pub fn bounded_list(items: Vec<String>, cap: Cap) -> Vec<String> {
    items
        .into_iter()
        .take(MAX_LIST_ITEMS)
        .map(|item| bounded(item, cap))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_nul_is_made_storable_and_other_text_is_kept() {
        assert_eq!(storable("opened\0x".to_owned()), "opened\u{FFFD}x");
        assert_eq!(
            storable("pull_request/opened".to_owned()),
            "pull_request/opened"
        );
    }

    #[test]
    fn a_value_that_fits_is_kept_as_it_is() {
        assert_eq!(bounded("pr:opened", Cap::EVENT), "pr:opened");
        let exact = "x".repeat(Cap::EVENT.bytes());
        assert_eq!(bounded(exact.clone(), Cap::EVENT), exact);
    }

    #[test]
    fn a_longer_value_is_cut_to_its_cap_with_a_mark() {
        let cut = bounded("a".repeat(5 * 1024 * 1024), Cap::EVENT);
        assert!(cut.len() <= Cap::EVENT.bytes(), "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("aaaa"));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // Four-byte characters put the cap inside one of them at every offset.
        for pad in 0..4 {
            let value = format!("{}{}", "a".repeat(pad), "🦀".repeat(100));
            let cut = bounded(value, Cap::UNAUTHENTICATED);
            assert!(cut.len() <= Cap::UNAUTHENTICATED.bytes());
            assert!(cut.ends_with("🦀…"), "{cut}");
        }
    }

    #[test]
    fn a_list_keeps_at_most_its_cap_of_items_each_bounded() {
        let labels = vec!["l".repeat(10_000); 1000];
        let kept = bounded_list(labels, Cap::LABEL);
        assert_eq!(kept.len(), MAX_LIST_ITEMS);
        assert!(kept.iter().all(|l| l.len() <= Cap::LABEL.bytes()));
    }
}
