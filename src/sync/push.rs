//! Push sync: "this push wants a sync of that repository", in one place for every way a push
//! arrives: a code host's push event (the delivery worker's handler, `handler.rs`) and a push
//! payload at the generic trigger (`ingress/trigger.rs`).

use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use super::feed::Source;
use super::handler::{elsewhere, matched};
use super::requests::{self, Reason};
use crate::hosts::effects::{RefUpdate, RepositoryRef};
use crate::receivers::Receiver;
use crate::time::Timestamp;

/// Requests a sync of `repo`, which a push (of delivery `delivery_id`, through `receiver`)
/// changed `refs` of, on `conn` (the caller's transaction): makes a pending request or joins
/// the outstanding one. `Ok(Err(reason))` when the receiver's rules skip it, and why: the
/// repository is on another code host, every branch pushed is outside `push_branch_filter`
/// (the repository is then not looked up at all), or it is not one the receiver acts on.
pub async fn request_push_sync<C: ConnectionTrait>(
    conn: &C,
    receiver: &Receiver,
    repo: &RepositoryRef,
    refs: &[RefUpdate],
    delivery_id: Uuid,
    now: Timestamp,
) -> Result<Result<(), String>, DbErr> {
    if let Some(reason) = elsewhere(repo, &receiver.code_host_urn) {
        return Ok(Err(reason));
    }
    let refs = match filter_refs(refs, &receiver.options.push_branch_filter) {
        Ok(refs) => refs,
        Err(reason) => return Ok(Err(reason)),
    };
    let model = match matched(conn, receiver, repo, now).await? {
        Ok(model) => model,
        Err(reason) => return Ok(Err(reason)),
    };
    requests::request(
        conn,
        &model,
        Source::delivery(receiver.id, delivery_id),
        &refs,
        receiver.options.min_sync_interval,
        Reason::Push,
        now,
    )
    .await?;
    Ok(Ok(()))
}

/// The refs of a push that pass the receiver's branch filter (tags always pass); `Err` with the
/// reason when none does. An empty filter passes everything.
pub fn filter_refs(refs: &[RefUpdate], patterns: &[String]) -> Result<Vec<RefUpdate>, String> {
    if patterns.is_empty() {
        return Ok(refs.to_vec());
    }
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        // Patterns were checked when the receiver was saved.
        if let Ok(glob) = globset::Glob::new(pattern) {
            builder.add(glob);
        }
    }
    let set = builder
        .build()
        .map_err(|e| format!("push_branch_filter does not compile: {e}"))?;
    let kept: Vec<RefUpdate> = refs
        .iter()
        .filter(|r| match r.name.strip_prefix("refs/heads/") {
            Some(branch) => set.is_match(branch),
            None => true,
        })
        .cloned()
        .collect();
    if kept.is_empty() {
        let branches: Vec<&str> = refs
            .iter()
            .map(|r| r.name.trim_start_matches("refs/heads/"))
            .collect();
        return Err(format!(
            "the push touches only branches outside push_branch_filter ({}): {}",
            patterns.join(", "),
            branches.join(", ")
        ));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(names: &[&str]) -> Vec<RefUpdate> {
        names
            .iter()
            .map(|n| RefUpdate {
                name: n.to_string(),
                old_sha: "a".into(),
                new_sha: "b".into(),
            })
            .collect()
    }

    #[test]
    fn the_branch_filter_keeps_matching_branches_and_every_tag() {
        let refs = push(&["refs/heads/main", "refs/heads/feature/x", "refs/tags/v1"]);
        let kept = filter_refs(&refs, &["main".into(), "release/*".into()]).unwrap();
        let names: Vec<_> = kept.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["refs/heads/main", "refs/tags/v1"]);
        assert_eq!(filter_refs(&refs, &[]).unwrap(), refs);
    }

    #[test]
    fn a_push_of_only_filtered_out_branches_is_skipped_with_the_reason() {
        let why = filter_refs(&push(&["refs/heads/wip"]), &["main".into()]).unwrap_err();
        assert!(
            why.contains("push_branch_filter") && why.contains("wip"),
            "{why}"
        );
        assert!(filter_refs(&push(&["refs/heads/release/1.2"]), &["release/*".into()]).is_ok());
    }
}
