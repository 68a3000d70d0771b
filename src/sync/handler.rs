//! The handler the delivery worker calls for every verified, recognised event: it applies the
//! event's effects (read from the payload by `hosts/`, once, before the worker's transaction
//! opens) in the worker's transaction, so effects and the delivery's new state commit together
//! or not at all.

use sea_orm::{ConnectionTrait, DatabaseTransaction};

use super::tracked::Stamp;
use super::{changesets, push, repositories};
use crate::deliveries::{ClaimedDelivery, Event, Handler, HandlerError, Outcome};
use crate::entity::repository;
use crate::hosts;
use crate::hosts::effects::{ChangesetEffect, Effect, RepositoryRef};
use crate::receivers::{CodeHostUrn, Receiver};
use crate::time::Timestamp;

/// Batch-change sync and push sync: the delivery worker's handler.
pub struct SyncHandler;

#[tonic::async_trait]
impl Handler for SyncHandler {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        receiver: &Receiver,
        delivery: &ClaimedDelivery,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        let effects = event
            .effects
            .as_ref()
            .map_err(|e| HandlerError::permanent(e.to_string()))?;
        if effects.is_empty() {
            let reason = event.nothing_to_sync.clone();
            return Ok(Outcome::Ignored(reason.unwrap_or_else(|| {
                format!("{} says nothing to sync", event.name)
            })));
        }
        let mut applied = 0usize;
        let mut skipped = Vec::new();
        for effect in effects {
            match effect {
                Effect::Changeset(e) => match apply_changeset(txn, receiver, e, delivery).await {
                    Ok(Ok(())) => applied += 1,
                    Ok(Err(reason)) => skipped.push(reason),
                    Err(db) => return Err(HandlerError::retry(format!("database: {db}"))),
                },
                Effect::Push(p) => match push::request_push_sync(
                    txn,
                    receiver,
                    &p.repository,
                    &p.refs,
                    delivery.id,
                    Timestamp::now(),
                )
                .await
                {
                    Ok(Ok(())) => applied += 1,
                    Ok(Err(reason)) => skipped.push(reason),
                    Err(db) => return Err(HandlerError::retry(format!("database: {db}"))),
                },
                Effect::Repository(r) => match apply_repository(txn, receiver, r).await {
                    Ok(Ok(())) => applied += 1,
                    Ok(Err(reason)) => skipped.push(reason),
                    Err(db) => return Err(HandlerError::retry(format!("database: {db}"))),
                },
            }
        }
        if applied > 0 {
            Ok(Outcome::Processed)
        } else {
            skipped.dedup();
            Ok(Outcome::Ignored(skipped.join("; ")))
        }
    }

    /// Reads, and holds, the repositories the chunk's effects name by their host's id, the
    /// changesets they name by number, the kept results of the head commits they name, and the
    /// outstanding sync requests of those its pushes name, a statement each for the chunk (per
    /// code host), so that applying each effect reads none of them again
    /// ([`crate::deliveries::chunk`]). With
    /// PostgreSQL the repositories are held in the order of their ids: two chunks never wait for
    /// each other's in a circle.
    async fn prepare(
        &self,
        txn: &DatabaseTransaction,
        events: &[(&Receiver, &Event)],
    ) -> Result<(), sea_orm::DbErr> {
        use std::collections::{BTreeMap, BTreeSet};

        use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

        use crate::deliveries::chunk;
        use crate::entity::{changeset, commit_check, sync_request};
        use crate::hosts::effects::Target;

        // The host's ids of the repositories, and the numbers of their changesets, per code host.
        let mut wanted: BTreeMap<&str, BTreeMap<&str, BTreeSet<i64>>> = BTreeMap::new();
        // The host's ids of the repositories pushed to, per code host.
        let mut pushed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        // The head commits (lower case) the changeset effects name, per code host and
        // repository: a changeset moved to one reads its kept results.
        let mut heads: BTreeMap<&str, BTreeMap<&str, BTreeSet<String>>> = BTreeMap::new();
        for (receiver, event) in events {
            let urn = &receiver.code_host_urn;
            for effect in event.effects.as_deref().unwrap_or_default() {
                let repo = effect.repository();
                if repo.external_id.is_empty() || elsewhere(repo, urn).is_some() {
                    continue;
                }
                if let Effect::Push(_) = effect {
                    pushed
                        .entry(urn.as_str())
                        .or_default()
                        .insert(repo.external_id.as_str());
                }
                let numbers = wanted
                    .entry(urn.as_str())
                    .or_default()
                    .entry(repo.external_id.as_str())
                    .or_default();
                if let Effect::Changeset(ChangesetEffect {
                    target: Target::Number(n),
                    ..
                }) = effect
                {
                    numbers.insert(*n);
                }
                if let Effect::Changeset(c) = effect
                    && let Some(head) = c.snapshot.head_sha.as_deref().filter(|h| !h.is_empty())
                {
                    heads
                        .entry(urn.as_str())
                        .or_default()
                        .entry(repo.external_id.as_str())
                        .or_default()
                        .insert(head.to_ascii_lowercase());
                }
            }
        }
        for (urn, repositories) in wanted {
            let models = repository::Entity::find()
                .filter(repository::Column::CodeHostUrn.eq(urn))
                .filter(repository::Column::ExternalId.is_in(repositories.keys().copied()))
                .order_by_asc(repository::Column::Id)
                .lock_exclusive()
                .all(txn)
                .await?;
            let changesets: Vec<_> = models
                .iter()
                .flat_map(|m| {
                    let numbers = repositories.get(m.external_id.as_str());
                    numbers.into_iter().flatten().map(move |n| (m.id, *n))
                })
                .collect();
            let pushed: Vec<_> = pushed.get(urn).map_or_else(Vec::new, |ids| {
                models
                    .iter()
                    .filter(|m| ids.contains(m.external_id.as_str()))
                    .map(|m| m.id)
                    .collect()
            });
            let wanted_heads: Vec<(crate::entity::Id, String)> = heads
                .get(urn)
                .map(|of| {
                    models
                        .iter()
                        .flat_map(|m| {
                            let heads = of.get(m.external_id.as_str());
                            heads.into_iter().flatten().map(|h| (m.id, h.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            chunk::keep_repositories(models);
            if !wanted_heads.is_empty() {
                use commit_check::Column as K;
                let backend = txn.get_database_backend();
                let any = wanted_heads
                    .iter()
                    .fold(Condition::any(), |any, (id, head)| {
                        any.add(
                            Condition::all()
                                .add(K::RepositoryId.eq(*id))
                                .add(super::changesets::sha_starts_with(backend, head)),
                        )
                    });
                let found = commit_check::Entity::find().filter(any).all(txn).await?;
                chunk::keep_commit_checks(&wanted_heads, &found);
            }
            if !pushed.is_empty() {
                // After their repositories' rows, as `requests::request` reads them.
                let found = sync_request::Entity::find()
                    .filter(sync_request::Column::RepositoryId.is_in(pushed.iter().copied()))
                    .filter(sync_request::Column::State.is_in(super::requests::OUTSTANDING))
                    .lock_exclusive()
                    .all(txn)
                    .await?;
                chunk::keep_outstanding(&pushed, found);
            }
            if changesets.is_empty() {
                continue;
            }
            // Each repository's own numbers (an index range each), not every number of the chunk
            // in every repository of it: over a hundred repositories that read twice the rows.
            let mut numbers: BTreeMap<_, BTreeSet<i64>> = BTreeMap::new();
            for (id, n) in &changesets {
                numbers.entry(*id).or_default().insert(*n);
            }
            use changeset::Column as K;
            let any = numbers.into_iter().fold(Condition::any(), |any, (id, ns)| {
                any.add(
                    Condition::all()
                        .add(K::RepositoryId.eq(id))
                        .add(K::Number.is_in(ns)),
                )
            });
            let found = changeset::Entity::find().filter(any).all(txn).await?;
            chunk::keep_changesets(&changesets, found);
        }
        Ok(())
    }

    /// [`lock_order`] of the event's effects (none when they could not be read).
    fn lock_order(&self, receiver: &Receiver, event: &Event) -> Option<String> {
        lock_order(receiver, event.effects.as_deref().ok()?)
    }
}

/// The repository of the first of `effects`, by the host's id (else its name), then code host
/// (`receiver`'s): the row [`SyncHandler`] holds for them (`repositories::seen`, which finds it
/// by that id first). `None` when there are no effects.
pub fn lock_order(receiver: &Receiver, effects: &[Effect]) -> Option<String> {
    let repository = effects.first()?.repository();
    let identity = match repository.external_id.as_str() {
        "" => format!("name\u{0}{}", repository.name),
        id => format!("id\u{0}{id}"),
    };
    Some(format!(
        "{identity}\u{0}{}",
        receiver.code_host_urn.as_str()
    ))
}

/// Applies one changeset effect; `Ok(Err(reason))` when the receiver's rules skip it.
async fn apply_changeset(
    txn: &DatabaseTransaction,
    receiver: &Receiver,
    effect: &ChangesetEffect,
    delivery: &ClaimedDelivery,
) -> Result<Result<(), String>, sea_orm::DbErr> {
    let model = match matched(txn, receiver, &effect.repository, Timestamp::now()).await? {
        Ok(model) => model,
        Err(reason) => return Ok(Err(reason)),
    };
    // The host's time of it (the delivery's when the host gives none); of two facts the host
    // stamps with the same time, the one that arrived later is the later.
    let arrival = delivery.receive_time;
    let at = Stamp {
        time: effect.occur_time.unwrap_or(arrival),
        arrival,
    };
    let applied = changesets::apply(txn, &model, effect, delivery.id, receiver.id, at).await?;
    // A commit's result that matched no changeset yet is kept for the repository (see
    // `changesets::apply`), so it is not skipped.
    let kept_for_later =
        matches!(effect.target, hosts::effects::Target::HeadSha(_)) && effect.check.is_some();
    if applied.is_empty() && !kept_for_later {
        use hosts::effects::Target;
        return Ok(Err(match &effect.target {
            Target::Number(n) => format!("no changeset of {} matches #{n}", model.name),
            Target::HeadSha(sha) => format!(
                "no changeset of {} matches head commit {}",
                model.name,
                sha.chars().take(12).collect::<String>()
            ),
            Target::MergeGroup {
                head_ref,
                number: Some(n),
            } => format!(
                "merge group {head_ref} is for #{n}, and no changeset of {} is #{n}",
                model.name
            ),
            Target::MergeGroup {
                head_ref,
                number: None,
            } => format!(
                "merge group head ref {head_ref} names no pull request (expected refs/heads/gh-readonly-queue/<base>/pr-<number>-<sha>)"
            ),
        }));
    }
    Ok(Ok(()))
}

/// A rename or transfer on the host: the repository with that id takes its new name
/// (`repositories::seen` does it). An unknown repository is not created by it.
async fn apply_repository(
    txn: &DatabaseTransaction,
    receiver: &Receiver,
    repo: &RepositoryRef,
) -> Result<Result<(), String>, sea_orm::DbErr> {
    let urn = &receiver.code_host_urn;
    if let Some(reason) = elsewhere(repo, urn) {
        return Ok(Err(reason));
    }
    let seen = repositories::seen(
        txn,
        urn.as_str(),
        repo,
        false,
        Some(receiver.id),
        Timestamp::now(),
    )
    .await?;
    Ok(match seen {
        Some(_) => Ok(()),
        None => Err(format!(
            "repository {} (id {}) is not known on {}: there is nothing to rename",
            repo.name,
            repo.external_id,
            urn.as_str()
        )),
    })
}

/// The stored repository an effect is about, created if new unless the receiver acts only on
/// registered ones; `Ok(Err(reason))` when the receiver's rules skip it.
pub(super) async fn matched<C: ConnectionTrait>(
    conn: &C,
    receiver: &Receiver,
    repo: &RepositoryRef,
    now: Timestamp,
) -> Result<Result<repository::Model, String>, sea_orm::DbErr> {
    let urn = &receiver.code_host_urn;
    if let Some(reason) = elsewhere(repo, urn) {
        return Ok(Err(reason));
    }
    let strict = receiver.options.ignore_unmatched;
    let seen =
        repositories::seen(conn, urn.as_str(), repo, !strict, Some(receiver.id), now).await?;
    Ok(match seen {
        Some(model) if !strict || model.registered => Ok(model),
        Some(model) => Err(unmatched(&model.name)),
        None if repo.name.is_empty() => Err(format!(
            "the event names its repository only by its id {}, and no repository of {} has that id: register it with RegisterRepository and its external_id",
            repo.external_id,
            urn.as_str()
        )),
        None => Err(unmatched(&repo.name)),
    })
}

/// Why a repository is skipped when its web page is on another host than the receiver's.
pub(super) fn elsewhere(repo: &RepositoryRef, urn: &CodeHostUrn) -> Option<String> {
    (!repo.url.is_empty() && !on_code_host(&repo.url, urn)).then(|| {
        format!(
            "repository {} ({}) is not on this receiver's code host {}",
            repo.name,
            repo.url,
            urn.as_str()
        )
    })
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
