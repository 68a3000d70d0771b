//! The code host kind of a receiver: it decides how a delivery is verified and parsed. The enum
//! itself is the `receivers.code_host_kind` column's (`entity::receiver::CodeHostKind`); what a
//! kind means for deliveries is here.

pub use crate::entity::receiver::CodeHostKind;

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
            CodeHostKind::Generic => None,
        }
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
}
