//! The setup guide on a receiver's page: for its code host, where to paste the URL and the
//! secret, which content type, and which events to tick for batch-change sync and for push sync.
//! The facts are docs/hosts/*.md's, shortened; the page links nowhere outside.

use maud::{Markup, html};

use super::html::copyable;
use crate::admin::proto::CodeHostKind;

/// The guide for a receiver of `kind` reached at `url`.
pub fn for_kind(kind: i32, url: &str) -> Markup {
    let url_cell = || copyable("guide-url", url);
    let secret_cell = html! {
        "the receiver's secret (shown once, when the receiver was made or its secret rotated; "
        "rotate it here if it is lost)"
    };
    match CodeHostKind::try_from(kind) {
        Ok(CodeHostKind::Github) => html! {
            p { "Repository (or organization) → " b { "Settings" } " → " b { "Webhooks" } " → " b { "Add webhook" } ". You need admin access." }
            table {
                tr { td { "Payload URL" } td { (url_cell()) } }
                tr { td { "Content type" } td { code { "application/json" } " (form-encoded works too)" } }
                tr { td { "Secret" } td { (secret_cell) ". GitHub then signs each delivery (" code { "X-Hub-Signature-256" } ")." } }
                tr { td { "SSL verification" } td { "leave it enabled" } }
                tr { td { "Events" } td { b { "Let me select individual events" } ", then the ones below" } }
                tr { td { "Batch-change sync" } td { "Pull requests, Pull request reviews, Pull request review comments, Issue comments, Check runs, Check suites, Statuses" } }
                tr { td { "Push sync" } td { "Pushes" } }
                tr { td { "Renames" } td { "Repositories" } }
            }
            p.muted { "GitHub sends a " code { "ping" } " when the webhook is saved; " b { "Send test delivery" } " above sends the same." }
        },
        Ok(CodeHostKind::Gitlab) => html! {
            p { "Project (or group) → " b { "Settings" } " → " b { "Webhooks" } " → " b { "Add new webhook" } ". You need the Maintainer role." }
            table {
                tr { td { "URL" } td { (url_cell()) } }
                tr { td { "Secret token" } td { (secret_cell) ". GitLab sends it as " code { "X-Gitlab-Token" } "." } }
                tr { td { "Content type" } td { "none to choose: GitLab always sends JSON" } }
                tr { td { "Enable SSL verification" } td { "leave it checked" } }
                tr { td { "Batch-change sync" } td { "Merge request events, Pipeline events, Comments" } }
                tr { td { "Push sync" } td { "Push events, Tag push events" } }
            }
            p.muted { "GitLab's " b { "Test" } " → " b { "Push events" } " sends a push; " b { "Send test delivery" } " above sends a zero-commit push." }
        },
        Ok(CodeHostKind::BitbucketServer) => html! {
            p { "Repository (or project) → " b { "Settings" } " → " b { "Webhooks" } " → " b { "Create webhook" } ". You need admin permission." }
            table {
                tr { td { "URL" } td { (url_cell()) } }
                tr { td { "Secret" } td { (secret_cell) ". Bitbucket then signs each delivery (" code { "X-Hub-Signature" } ")." } }
                tr { td { "Authentication" } td { "none (hookgate checks the signature)" } }
                tr { td { "Content type" } td { "none to choose: Bitbucket sends JSON" } }
                tr { td { "Batch-change sync" } td { "under Pull request: Opened, Source branch updated, Modified, Reviewers updated, Approved, Unapproved, Needs work, Merged, Declined, Deleted, and the Comment events" } }
                tr { td { "Push sync" } td { "under Repository: Push (" code { "repo:refs_changed" } ")" } }
            }
            p.muted { b { "Test connection" } " sends " code { "diagnostics:ping" } "; so does " b { "Send test delivery" } " above." }
        },
        Ok(CodeHostKind::BitbucketCloud) => html! {
            p { "Repository → " b { "Repository settings" } " → " b { "Webhooks" } " → " b { "Add webhook" } ". You need admin permission. The URL must be reachable from the internet." }
            table {
                tr { td { "URL" } td { (url_cell()) } }
                tr { td { "Secret" } td { (secret_cell) " (paste hookgate's; do not let Bitbucket generate one)." } }
                tr { td { "Content type" } td { "none to choose: Bitbucket sends JSON" } }
                tr { td { "Triggers" } td { b { "Choose from a full list of triggers" } ", then the ones below" } }
                tr { td { "Batch-change sync" } td { "under Pull Request: Created, Updated, Approved, Approval removed, Changes request created, Changes request removed, Merged, Declined, and the Comment triggers; under Repository: Build status created, Build status updated" } }
                tr { td { "Push sync" } td { "under Repository: Push (" code { "repo:push" } ")" } }
            }
            p.muted { "Bitbucket Cloud has no test button; " b { "Send test delivery" } " above sends a signed zero-commit push." }
        },
        Ok(CodeHostKind::Gitea) => html! {
            p { "Repository (or organization) → " b { "Settings" } " → " b { "Webhooks" } " → " b { "Add webhook" } " → " b { "Gitea" } " (on Forgejo: " b { "Forgejo" } "). You need admin access." }
            table {
                tr { td { "Target URL" } td { (url_cell()) } }
                tr { td { "HTTP method" } td { code { "POST" } } }
                tr { td { "POST content type" } td { code { "application/json" } } }
                tr { td { "Secret" } td { (secret_cell) ". Gitea then signs each delivery (" code { "X-Gitea-Signature" } "; Forgejo also " code { "X-Forgejo-Signature" } ")." } }
                tr { td { "Trigger on" } td { b { "Custom events" } ", then the ones below" } }
                tr { td { "Batch-change sync" } td { "Pull request (and its Assigned, Labeled, Milestoned, Synchronized, Reviewed, Review requested), Pull request comments, Issue comment" } }
                tr { td { "Push sync" } td { "Push, Create, Delete" } }
            }
            p.muted { "Gitea's " b { "Test Delivery" } " sends a push whose before equals its after; " b { "Send test delivery" } " above sends the same." }
        },
        Ok(CodeHostKind::AzureDevops) => html! {
            p { "Project → " b { "Project settings" } " → " b { "Service hooks" } " → " b { "Create subscription" } " → " b { "Web Hooks" } ", once per event below. You need the project's administrator permission." }
            table {
                tr { td { "URL" } td { (url_cell()) " (https only: Basic authentication sends the secret as it is)" } }
                tr { td { "Basic authentication" } td { "any user name; password: " (secret_cell) } }
                tr { td { "or HTTP headers" } td { code { "X-Hook-Secret:" } " followed by the secret (each credential you set must match)" } }
                tr { td { "Resource details to send" } td { code { "All" } } }
                tr { td { "Resource version" } td { code { "2.0" } " where offered (comments and builds need it to name their pull request and repository)" } }
                tr { td { "Batch-change sync" } td { "Pull request created, Pull request updated, Pull request merge attempted, Pull request commented on, Build completed" } }
                tr { td { "Push sync" } td { "Code pushed" } }
            }
            p.muted { "The subscription's " b { "Test" } " sends a sample event; " b { "Send test delivery" } " above sends a push of no ref with the secret as Basic password and " code { "X-Hook-Secret" } "." }
        },
        Ok(CodeHostKind::Generic) => html! {
            p { "A plain \"sync now\" URL for cron or a CI step. Call it with the secret in a header:" }
            pre.body { "curl -fsS -X POST -H \"X-Hook-Secret: $SECRET\" " (url) }
            table {
                tr { td { "Method" } td { code { "POST" } ", " code { "GET" } " or " code { "PUT" } } }
                tr { td { "Secret" } td { "in " code { "X-Hook-Secret" } ", or as the last path segment (" code { "<url>/<secret>" } ")" } }
                tr { td { "One repository" } td { code { "?repository=<name>" } " (a registered one), or a GitHub or GitLab push payload as the body" } }
                tr { td { "All repositories" } td { "an empty body: every repository known on the receiver's code host" } }
            }
        },
        _ => html! { p.muted { "No guide for this kind." } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_host_kind_has_a_guide_and_gitea_names_its_signature_and_test_push() {
        for kind in [
            CodeHostKind::Github,
            CodeHostKind::Gitlab,
            CodeHostKind::BitbucketServer,
            CodeHostKind::BitbucketCloud,
            CodeHostKind::Gitea,
            CodeHostKind::AzureDevops,
            CodeHostKind::Generic,
        ] {
            let page =
                for_kind(kind as i32, "https://hooks.example.com/.api/webhooks/x").into_string();
            assert!(!page.contains("No guide for this kind"), "{kind:?}");
            assert!(
                page.contains("https://hooks.example.com/.api/webhooks/x"),
                "{kind:?}"
            );
        }
        let gitea = for_kind(CodeHostKind::Gitea as i32, "u").into_string();
        assert!(gitea.contains("X-Gitea-Signature"), "{gitea}");
        assert!(gitea.contains("application/json"), "{gitea}");
        assert!(gitea.contains("Push, Create, Delete"), "{gitea}");
        let azure = for_kind(CodeHostKind::AzureDevops as i32, "u").into_string();
        assert!(azure.contains("X-Hook-Secret"), "{azure}");
        assert!(azure.contains("Service hooks"), "{azure}");
        assert!(azure.contains("Code pushed"), "{azure}");
    }
}
