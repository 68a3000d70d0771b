//! The code host kind of a receiver: it decides how a delivery is verified and parsed.

use std::fmt;

/// The kind of code host a receiver takes deliveries from. Fixed when the receiver is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeHostKind {
    GitHub,
    GitLab,
    BitbucketServer,
    BitbucketCloud,
    /// A plain "sync now" trigger for systems that cannot sign their requests.
    Generic,
}

impl CodeHostKind {
    /// Every kind, in the order the admin API numbers them.
    pub const ALL: [CodeHostKind; 5] = [
        CodeHostKind::GitHub,
        CodeHostKind::GitLab,
        CodeHostKind::BitbucketServer,
        CodeHostKind::BitbucketCloud,
        CodeHostKind::Generic,
    ];

    /// The name stored in the database and shown in logs (`GITHUB`, `BITBUCKET_SERVER`).
    pub fn as_str(self) -> &'static str {
        match self {
            CodeHostKind::GitHub => "GITHUB",
            CodeHostKind::GitLab => "GITLAB",
            CodeHostKind::BitbucketServer => "BITBUCKET_SERVER",
            CodeHostKind::BitbucketCloud => "BITBUCKET_CLOUD",
            CodeHostKind::Generic => "GENERIC",
        }
    }

    /// The code host whose signing rules this kind's deliveries follow; `None` for the generic
    /// trigger, which is checked by its secret alone.
    pub fn host(self) -> Option<crate::hosts::Host> {
        use crate::hosts::Host;
        match self {
            CodeHostKind::GitHub => Some(Host::GitHub),
            CodeHostKind::GitLab => Some(Host::GitLab),
            CodeHostKind::BitbucketServer => Some(Host::BitbucketServer),
            CodeHostKind::BitbucketCloud => Some(Host::BitbucketCloud),
            CodeHostKind::Generic => None,
        }
    }

    /// The inverse of [`CodeHostKind::as_str`]; `None` for anything else.
    pub fn from_db(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for CodeHostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_stored_name() {
        for kind in CodeHostKind::ALL {
            assert_eq!(CodeHostKind::from_db(kind.as_str()), Some(kind));
        }
        assert_eq!(CodeHostKind::from_db("github"), None);
    }
}
