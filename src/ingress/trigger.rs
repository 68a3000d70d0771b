//! The generic trigger: a plain "sync now" URL for systems that cannot sign (cron, a CI step, an
//! old code host), as Git Integration for Jira offers it. What a call asks for is decided here;
//! the HTTP side (methods, secret, status codes) is in `ingress`.
//!
//! A call syncs one repository when its body is a GitHub or GitLab push payload (that push's
//! repository, with its refs) or when `?repository=<name>` names one; otherwise every repository
//! known for the receiver's code host.

use sea_orm::{ConnectionTrait, DbErr};
use serde_json::Value;

use crate::hosts::effects::{Effect, RefUpdate, RepositoryRef};
use crate::hosts::{self, Host};
use crate::receivers::Receiver;
use crate::sync::Reason;
use crate::sync::requests;
use crate::text::{Cap, bounded};
use crate::time::now_micros;

/// Which repositories a trigger call syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every repository known for the receiver's code host.
    All,
    /// One repository, by name (`?repository=`).
    Named(String),
    /// The repository of a push payload, with the refs it changed.
    Push {
        repository: RepositoryRef,
        refs: Vec<RefUpdate>,
    },
}

/// Reads what a call asks for; `Err` with a message for a 400.
pub fn target(body: &[u8], repository_param: Option<&str>) -> Result<Target, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(match repository_param.map(str::trim) {
            Some(name) if !name.is_empty() => {
                Target::Named(bounded(name.trim_matches('/'), Cap::NAME))
            }
            _ => Target::All,
        });
    }
    let not_push = "the body must be empty, or a GitHub or GitLab push payload";
    let payload: Value = serde_json::from_slice(body).map_err(|_| not_push.to_owned())?;
    let (host, event) = match payload.get("object_kind").and_then(Value::as_str) {
        Some("push") => (Host::GitLab, "Push Hook"),
        Some("tag_push") => (Host::GitLab, "Tag Push Hook"),
        _ if payload.pointer("/repository/full_name").is_some() && payload.get("ref").is_some() => {
            (Host::GitHub, "push")
        }
        _ => return Err(not_push.to_owned()),
    };
    let effects = hosts::effects(host, event, &payload).map_err(|e| e.to_string())?;
    match effects.into_iter().next() {
        Some(Effect::Push(push)) => Ok(Target::Push {
            repository: push.repository,
            refs: push.refs,
        }),
        _ => Err(not_push.to_owned()),
    }
}

/// Requests the syncs `target` asks for, on `conn`; returns how many requests were made or
/// joined. Repositories the receiver does not act on (`ignore_unmatched`) are left out.
pub async fn request_syncs<C: ConnectionTrait>(
    conn: &C,
    receiver: &Receiver,
    target: &Target,
) -> Result<usize, DbErr> {
    let urn = receiver.code_host_urn.as_str();
    let strict = receiver.options.ignore_unmatched;
    let now = now_micros();
    let (rows, refs, reason) = match target {
        Target::All => {
            let rows = crate::sync::repositories::all_of(conn, urn).await?;
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|r| !strict || r.registered)
                .collect();
            (rows, Vec::new(), Reason::Trigger)
        }
        Target::Named(name) => {
            let seen = RepositoryRef {
                name: name.clone(),
                external_id: String::new(),
                url: String::new(),
                clone_urls: Vec::new(),
            };
            let row =
                crate::sync::repositories::seen(conn, urn, &seen, !strict, Some(receiver.id), now)
                    .await?;
            let row = row.filter(|r| !strict || r.registered);
            (row.into_iter().collect(), Vec::new(), Reason::Trigger)
        }
        Target::Push { repository, refs } => {
            let row = crate::sync::repositories::seen(
                conn,
                urn,
                repository,
                !strict,
                Some(receiver.id),
                now,
            )
            .await?;
            let row = row.filter(|r| !strict || r.registered);
            let refs = crate::sync::filter_refs(refs, &receiver.options.push_branch_filter)
                .unwrap_or_default();
            let row = if refs.is_empty() { None } else { row };
            (row.into_iter().collect(), refs, Reason::Push)
        }
    };
    for row in &rows {
        requests::request(
            conn,
            row,
            Some(receiver.id),
            &refs,
            receiver.options.min_sync_interval,
            reason,
            now,
        )
        .await?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_syncs_all_or_the_named_repository() {
        assert_eq!(target(b"", None), Ok(Target::All));
        assert_eq!(target(b"  \n", Some("")), Ok(Target::All));
        assert_eq!(
            target(b"", Some("group/app")),
            Ok(Target::Named("group/app".into()))
        );
    }

    #[test]
    fn a_github_or_gitlab_push_payload_names_its_repository_and_refs() {
        let github = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/github/push.branch-updated.json"),
        )
        .unwrap();
        let Ok(Target::Push { repository, refs }) = target(&github, None) else {
            panic!("a GitHub push is a push target");
        };
        assert_eq!(repository.name, "Codertocat/Hello-World");
        assert_eq!(refs[0].name, "refs/heads/master");

        let gitlab = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/gitlab/push.json"),
        )
        .unwrap();
        let Ok(Target::Push { repository, .. }) = target(&gitlab, None) else {
            panic!("a GitLab push is a push target");
        };
        assert_eq!(repository.name, "mike/diaspora");
    }

    #[test]
    fn any_other_body_is_refused() {
        assert!(target(b"not json", None).is_err());
        assert!(target(br#"{"hello": "world"}"#, None).is_err());
    }
}
