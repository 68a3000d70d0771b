//! The handler the delivery worker calls for every verified, recognised event: it parses the
//! event's effects (`hosts/`) and applies them in the worker's transaction, so effects and the
//! delivery's new state commit together or not at all.

use sea_orm::DatabaseTransaction;

use super::{changesets, repositories};
use crate::deliveries::{ClaimedDelivery, Handler, HandlerError, Outcome};
use crate::hosts::effects::{ChangesetEffect, Effect};
use crate::hosts::{self, Classified};
use crate::receivers::{CodeHostUrn, Receiver};
use crate::time::now_micros;

/// Batch-change sync (and, once it lands, push sync).
pub struct SyncHandler;

#[tonic::async_trait]
impl Handler for SyncHandler {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        receiver: &Receiver,
        delivery: &ClaimedDelivery,
        event: &Classified,
    ) -> Result<Outcome, HandlerError> {
        let Some(host) = receiver.code_host_kind.host() else {
            return Err(HandlerError::permanent(format!(
                "{} receivers have no event handler",
                receiver.code_host_kind
            )));
        };
        let effects = hosts::effects(host, &event.event, &event.payload)
            .map_err(|e| HandlerError::permanent(e.to_string()))?;
        if effects.is_empty() {
            return Ok(Outcome::Ignored(format!(
                "{} says nothing to sync",
                event.event
            )));
        }
        let mut applied = 0usize;
        let mut skipped = Vec::new();
        for effect in &effects {
            match effect {
                Effect::Changeset(e) => match apply_changeset(txn, receiver, e, delivery).await {
                    Ok(Ok(())) => applied += 1,
                    Ok(Err(reason)) => skipped.push(reason),
                    Err(db) => return Err(HandlerError::retry(format!("database: {db}"))),
                },
                Effect::Push(_) => skipped.push("push sync is not built yet".to_owned()),
            }
        }
        if applied > 0 {
            Ok(Outcome::Processed)
        } else {
            skipped.dedup();
            Ok(Outcome::Ignored(skipped.join("; ")))
        }
    }
}

/// Applies one changeset effect; `Ok(Err(reason))` when the receiver's rules skip it.
async fn apply_changeset(
    txn: &DatabaseTransaction,
    receiver: &Receiver,
    effect: &ChangesetEffect,
    delivery: &ClaimedDelivery,
) -> Result<Result<(), String>, sea_orm::DbErr> {
    let urn = &receiver.code_host_urn;
    let repo = &effect.repository;
    if !repo.url.is_empty() && !on_code_host(&repo.url, urn) {
        return Ok(Err(format!(
            "repository {} ({}) is not on this receiver's code host {}",
            repo.name,
            repo.url,
            urn.as_str()
        )));
    }
    let strict = receiver.options.ignore_unmatched;
    let Some(model) = repositories::seen(txn, urn.as_str(), repo, !strict, now_micros()).await?
    else {
        return Ok(Err(unmatched(&repo.name)));
    };
    if strict && !model.registered {
        return Ok(Err(unmatched(&repo.name)));
    }
    let time = effect.occur_time.unwrap_or(delivery.receive_time);
    let applied = changesets::apply(txn, &model, effect, delivery.id, time).await?;
    if applied.is_empty() {
        return Ok(Err(format!(
            "no changeset of {} matches {}",
            repo.name,
            match &effect.target {
                hosts::effects::Target::Number(n) => format!("#{n}"),
                hosts::effects::Target::HeadSha(sha) =>
                    format!("head commit {}", &sha[..sha.len().min(12)]),
            }
        )));
    }
    Ok(Ok(()))
}

fn unmatched(name: &str) -> String {
    format!(
        "repository {name} is not registered, and this receiver acts only on registered repositories (ignore_unmatched)"
    )
}

/// Whether a repository's web URL is on the code host `urn` names: same host and port, and
/// under its path. The scheme may differ (hosts report http behind TLS-terminating proxies).
pub fn on_code_host(repo_url: &str, urn: &CodeHostUrn) -> bool {
    let (Ok(repo), Ok(host)) = (url::Url::parse(repo_url), url::Url::parse(urn.as_str())) else {
        return false;
    };
    let port = |u: &url::Url| u.port().filter(|p| *p != 80 && *p != 443);
    repo.host_str().map(str::to_ascii_lowercase) == host.host_str().map(str::to_owned)
        && port(&repo) == port(&host)
        && format!("{}/", repo.path().trim_end_matches('/')).starts_with(host.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urn(s: &str) -> CodeHostUrn {
        CodeHostUrn::parse(s).unwrap()
    }

    #[test]
    fn a_repository_is_on_the_code_host_with_its_host_port_and_path() {
        assert!(on_code_host(
            "https://github.com/octo/hello",
            &urn("https://github.com")
        ));
        assert!(on_code_host(
            "http://GitHub.com/octo/hello",
            &urn("https://github.com")
        ));
        assert!(on_code_host(
            "https://example.com/gitlab/group/proj",
            &urn("https://example.com/gitlab")
        ));
        assert!(on_code_host(
            "http://localhost:7990/projects/P/repos/r/browse",
            &urn("http://localhost:7990")
        ));
    }

    #[test]
    fn a_repository_elsewhere_is_not() {
        assert!(!on_code_host(
            "https://gitlab.com/octo/hello",
            &urn("https://github.com")
        ));
        assert!(!on_code_host(
            "https://github.com.evil.io/x",
            &urn("https://github.com")
        ));
        assert!(!on_code_host(
            "http://localhost:7991/x",
            &urn("http://localhost:7990")
        ));
        assert!(!on_code_host(
            "https://example.com/other/proj",
            &urn("https://example.com/gitlab")
        ));
        assert!(!on_code_host("not a url", &urn("https://github.com")));
    }
}
