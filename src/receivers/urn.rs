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

/// The normaliser's promises, over generated URLs: it is idempotent; the case of the scheme and
/// host, a default port and trailing slashes make no difference; anything but an absolute
/// http(s) URL without credentials, query or fragment is refused with a message that says what
/// to give instead.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// `s` with the letters whose bit in `mask` is set upper-cased.
    fn recase(s: &str, mask: u64) -> String {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    fn scheme() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("http"), Just("https")]
    }

    /// A lower-case DNS name of one to four labels, or an IPv4 address.
    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(
                // `xn--` would be an IDNA label, which must be valid punycode.
                "[a-z]([a-z0-9-]{0,8}[a-z0-9])?".prop_filter("no IDNA", |l| !l.starts_with("xn--")),
                1..5,
            )
            .prop_map(|labels| labels.join(".")),
            (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
                .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        ]
    }

    /// A path without trailing slash (empty, or `/seg/seg`), of segments that are not dot
    /// segments, in any case: the path is kept as it is.
    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec("[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,7}", 0..4)
            .prop_map(|segments| segments.iter().map(|s| format!("/{s}")).collect())
    }

    fn default_port(scheme: &str) -> u16 {
        if scheme == "https" { 443 } else { 80 }
    }

    fn assert_refused(raw: &str) -> Result<(), TestCaseError> {
        let err = CodeHostUrn::parse(raw)
            .err()
            .ok_or_else(|| TestCaseError::fail(format!("{raw:?} was accepted")))?;
        prop_assert_eq!(err.field, "code_host_urn");
        prop_assert!(
            err.message
                .contains("give an absolute http(s) URL such as https://github.com/"),
            "{raw:?}: {}",
            err.message
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn normalising_a_normalised_urn_gives_it_back(
            scheme in scheme(), host in host(), port in any::<Option<u16>>(), path in path(),
            slashes in 0usize..4, mask in any::<u64>(),
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let raw = recase(&format!("{scheme}://{host}{port}{path}{}", "/".repeat(slashes)), mask);
            let urn = CodeHostUrn::parse(&raw).expect("a generated http(s) URL is accepted");
            prop_assert_eq!(CodeHostUrn::parse(urn.as_str()), Ok(urn));
        }

        #[test]
        fn any_text_the_normaliser_accepts_it_accepts_again_unchanged(
            raw in prop_oneof!["\\PC{0,40}", "[hH][tT][tT][pP][sS]?://\\PC{0,40}"],
        ) {
            if let Ok(urn) = CodeHostUrn::parse(&raw) {
                prop_assert_eq!(CodeHostUrn::parse(urn.as_str()), Ok(urn));
            }
        }

        #[test]
        fn the_case_of_scheme_and_host_does_not_matter_and_the_path_is_kept(
            scheme in scheme(), host in host(), path in path(), mask in any::<u64>(),
        ) {
            let lower = CodeHostUrn::parse(&format!("{scheme}://{host}{path}"))
                .expect("a generated http(s) URL is accepted");
            let upper = recase(&format!("{scheme}://{host}"), mask);
            let mixed = CodeHostUrn::parse(&format!("{upper}{path}"))
                .expect("a generated http(s) URL is accepted");
            prop_assert_eq!(mixed.as_str(), format!("{scheme}://{host}{path}/"));
            prop_assert_eq!(mixed, lower);
        }

        #[test]
        fn the_default_port_of_the_scheme_is_dropped_and_any_other_kept(
            scheme in scheme(), host in host(), path in path(),
            // Either default port, of either scheme, as often as any other.
            port in prop_oneof![Just(80u16), Just(443u16), any::<u16>()],
        ) {
            let urn = CodeHostUrn::parse(&format!("{scheme}://{host}:{port}{path}"))
                .expect("a generated http(s) URL is accepted");
            let expected = if port == default_port(scheme) {
                format!("{scheme}://{host}{path}/")
            } else {
                format!("{scheme}://{host}:{port}{path}/")
            };
            prop_assert_eq!(urn.as_str(), expected);
        }

        #[test]
        fn any_number_of_trailing_slashes_becomes_exactly_one(
            scheme in scheme(), host in host(), path in path(), slashes in 0usize..6,
        ) {
            let bare = format!("{scheme}://{host}{path}");
            let urn = CodeHostUrn::parse(&format!("{bare}{}", "/".repeat(slashes)))
                .expect("a generated http(s) URL is accepted");
            prop_assert!(urn.as_str().ends_with('/') && !urn.as_str().ends_with("//"), "{}", urn.as_str());
            prop_assert_eq!(urn, CodeHostUrn::parse(&bare).expect("accepted"));
        }

        #[test]
        fn another_scheme_is_refused_with_a_message(
            scheme in "[a-z][a-z0-9+.-]{0,8}".prop_filter("not http(s)", |s| s != "http" && s != "https"),
            host in host(), path in path(), mask in any::<u64>(),
        ) {
            assert_refused(&recase(&format!("{scheme}://{host}{path}"), mask))?;
        }

        #[test]
        fn a_url_without_a_scheme_is_refused_with_a_message(host in host(), path in path()) {
            assert_refused(&format!("{host}{path}"))?;
            assert_refused(&format!("//{host}{path}"))?;
            assert_refused(&format!("{path}/"))?;
        }

        #[test]
        fn credentials_a_query_or_a_fragment_are_refused_with_a_message(
            scheme in scheme(), host in host(), path in path(),
            user in "[a-z]{1,8}", secret in proptest::option::of("[a-z0-9]{0,8}"), rest in "[a-z0-9=&]{0,8}",
        ) {
            let credentials = match &secret {
                Some(password) => format!("{user}:{password}"),
                None => user.clone(),
            };
            assert_refused(&format!("{scheme}://{credentials}@{host}{path}"))?;
            assert_refused(&format!("{scheme}://{host}{path}?{rest}"))?;
            assert_refused(&format!("{scheme}://{host}{path}/#{rest}"))?;
        }

        #[test]
        fn a_port_beyond_65535_is_refused_with_a_message(
            scheme in scheme(), host in host(), port in 65_536u32..10_000_000,
        ) {
            assert_refused(&format!("{scheme}://{host}:{port}/"))?;
        }
    }
}
