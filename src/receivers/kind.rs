//! The code host kind of a receiver: it decides how a delivery is verified and parsed. The enum
//! itself is the `receivers.code_host_kind` column's (`entity::receiver::CodeHostKind`); what a
//! kind means for deliveries is here.

pub use crate::entity::receiver::CodeHostKind;

use super::{CodeHostUrn, ValidationError};

/// How an Azure DevOps receiver's URN looks.
const AZURE_URN: &str = "https://dev.azure.com/<organization>/ (or, for Azure DevOps Server, the https URL of the collection, such as https://ado.example.com/DefaultCollection/)";

impl CodeHostKind {
    /// The code host whose signing rules this kind's deliveries follow; `None` for the generic
    /// trigger, which is checked by its secret alone.
    pub fn host(self) -> Option<crate::hosts::Host> {
        use crate::hosts::Host;
        match self {
            CodeHostKind::GitHub => Some(Host::GitHub),
            CodeHostKind::GitLab => Some(Host::GitLab),
            CodeHostKind::BitbucketServer => Some(Host::BitbucketServer),
            CodeHostKind::BitbucketCloud => Some(Host::BitbucketCloud),
            CodeHostKind::Gitea => Some(Host::Gitea),
            CodeHostKind::AzureDevOps => Some(Host::AzureDevOps),
            CodeHostKind::Generic => None,
        }
    }

    /// Checks that `urn` (already normalised) can name this kind's code host. An Azure DevOps
    /// receiver's is its organization, `https://dev.azure.com/<organization>/`, the form its
    /// deliveries are read in (the old `https://<organization>.visualstudio.com/` is refused,
    /// naming that form), or an Azure DevOps Server collection URL; always https, as Basic
    /// authentication sends the secret as it is. Any other kind takes any URN.
    pub fn check_urn(self, urn: &CodeHostUrn) -> Result<(), ValidationError> {
        if self != CodeHostKind::AzureDevOps {
            return Ok(());
        }
        let invalid = |why: String| {
            ValidationError::new(
                "code_host_urn",
                format!("{:?} {why}: give {AZURE_URN}", urn.as_str()),
            )
        };
        let url = url::Url::parse(urn.as_str())
            .map_err(|_| invalid("is not an absolute URL".to_owned()))?;
        if url.scheme() != "https" {
            return Err(invalid(
                "must use https for an Azure DevOps receiver (its service hooks send the secret as it is)"
                    .to_owned(),
            ));
        }
        let host = url.host_str().unwrap_or_default();
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if host == "dev.azure.com" && segments.len() != 1 {
            return Err(invalid(
                "is not an organization URL: it must name exactly the organization".to_owned(),
            ));
        }
        if let Some(org) = host.strip_suffix(".visualstudio.com") {
            return Err(invalid(format!(
                "is the old address of the organization: give https://dev.azure.com/{org}/, which deliveries from either address are read as"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_stored_name() {
        for kind in CodeHostKind::iter() {
            assert_eq!(
                CodeHostKind::try_from_value(&kind.to_string()).ok(),
                Some(kind)
            );
        }
        assert_eq!(CodeHostKind::GitHub.to_string(), "GITHUB");
        assert_eq!(
            CodeHostKind::BitbucketServer.to_string(),
            "BITBUCKET_SERVER"
        );
        assert!(CodeHostKind::try_from_value(&"github".to_owned()).is_err());
    }

    fn check(kind: CodeHostKind, urn: &str) -> Result<(), String> {
        kind.check_urn(&CodeHostUrn::parse(urn).expect("a URN"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_azure_devops_urn_is_an_https_organization_or_collection_url() {
        use CodeHostKind::AzureDevOps;
        assert_eq!(check(AzureDevOps, "https://dev.azure.com/fabrikam"), Ok(()));
        assert_eq!(
            check(AzureDevOps, "https://ado.example.com/DefaultCollection/"),
            Ok(())
        );
        for (urn, says) in [
            (
                "https://dev.azure.com/",
                "must name exactly the organization",
            ),
            (
                "https://dev.azure.com/fabrikam/project/",
                "must name exactly the organization",
            ),
            ("http://dev.azure.com/fabrikam/", "must use https"),
            (
                "https://fabrikam.visualstudio.com/",
                "give https://dev.azure.com/fabrikam/",
            ),
        ] {
            let e = check(AzureDevOps, urn).expect_err(urn);
            assert!(e.starts_with("code_host_urn"), "{e}");
            assert!(
                e.contains(says) && e.contains("https://dev.azure.com/<organization>/"),
                "{e}"
            );
        }
        assert_eq!(check(CodeHostKind::GitHub, "http://dev.azure.com/"), Ok(()));
    }
}
