//! The code host URN: the normalised base URL that names a code host.

use super::ValidationError;

const EXAMPLE: &str = "such as https://github.com/ or https://gitlab.example.com/";

/// A code host's base URL, normalised: lower-case scheme and host, no default port, path kept,
/// exactly one trailing `/` (`HTTPS://GitHub.com:443` becomes `https://github.com/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeHostUrn(String);

impl CodeHostUrn {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |why: &str| {
            ValidationError::new(
                "code_host_urn",
                format!("{raw:?} {why}: give an absolute http(s) URL {EXAMPLE}"),
            )
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new(
                "code_host_urn",
                format!("is required: give an absolute http(s) URL {EXAMPLE}"),
            ));
        }
        let url = url::Url::parse(trimmed).map_err(|_| invalid("is not an absolute URL"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(invalid("must use http or https"));
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h,
            _ => return Err(invalid("has no host")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not have a query or fragment"));
        }
        // `url` already lower-cases scheme and host and drops the scheme's default port.
        let mut normalised = format!("{}://{}", url.scheme(), host);
        if let Some(port) = url.port() {
            normalised.push_str(&format!(":{port}"));
        }
        let path = url.path().trim_end_matches('/');
        normalised.push_str(path);
        normalised.push('/');
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        CodeHostUrn::parse(s).unwrap().as_str().to_owned()
    }

    #[test]
    fn scheme_and_host_are_lower_cased_and_the_default_port_dropped() {
        assert_eq!(norm("HTTPS://GitHub.com:443"), "https://github.com/");
        assert_eq!(
            norm("http://GitLab.example.com:80/"),
            "http://gitlab.example.com/"
        );
    }

    #[test]
    fn a_non_default_port_and_the_path_are_kept_with_one_trailing_slash() {
        assert_eq!(
            norm("https://bitbucket.example.com:7990/Stash//"),
            "https://bitbucket.example.com:7990/Stash/"
        );
        assert_eq!(norm("https://github.com"), "https://github.com/");
    }

    #[test]
    fn a_host_without_scheme_is_refused_with_an_example() {
        let err = CodeHostUrn::parse("github.com").unwrap_err();
        assert_eq!(err.field, "code_host_urn");
        assert!(err.to_string().contains("https://github.com/"), "{err}");
    }

    #[test]
    fn other_schemes_credentials_and_queries_are_refused() {
        for bad in [
            "ftp://github.com/",
            "ssh://git@github.com/",
            "https://user:pw@github.com/",
            "https://github.com/?x=1",
            "https://github.com/#top",
            "",
            "   ",
            "https://",
        ] {
            assert!(CodeHostUrn::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
