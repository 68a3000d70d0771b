//! The deliveries the load tool makes are ones hookgate accepts: for every host, the headers and
//! signature over each body variant verify with hookgate's own `hosts::verify`, classify as the
//! event and delivery key meant, and for `--distinct` variants name the changeset numbered as
//! the variant. The tool's model of the hosts is checked against hookgate's, not against itself.

use hookgate::hosts::effects::Target;
use hookgate::hosts::{self, Effect, Verified};
use hookgate_load::bodies::{Deliveries, read_fixture};
use hookgate_load::hosts::Host;

const SECRET: &str = "load-test-secret-0123456789";

/// hookgate's name for the load tool's host.
fn hookgate_host(host: Host) -> hosts::Host {
    match host {
        Host::GitHub => hosts::Host::GitHub,
        Host::GitLab => hosts::Host::GitLab,
        Host::BitbucketServer => hosts::Host::BitbucketServer,
        Host::BitbucketCloud => hosts::Host::BitbucketCloud,
    }
}

/// The default deliveries of `host` in `distinct` variants, as a run would prepare them.
fn prepared(host: Host, secret: &str, distinct: u32) -> Deliveries {
    let fixture = read_fixture(host.default_fixture().as_ref()).expect("the default fixture");
    Deliveries::prepare(host, &fixture, host.default_event(), secret, distinct)
        .expect("the default fixture prepares")
}

/// The headers of variant `i` with the delivery id set, as they go on the wire.
fn wire_headers(deliveries: &Deliveries, i: usize, id: &str) -> http::HeaderMap {
    let mut headers = deliveries.variants[i].headers.clone();
    for name in &deliveries.id_headers {
        headers.insert(name.clone(), id.parse().expect("a header value"));
    }
    headers
}

#[test]
fn every_hosts_signed_variants_verify_with_hookgates_own_check() {
    for host in Host::ALL {
        let deliveries = prepared(host, SECRET, 3);
        for (i, variant) in deliveries.variants.iter().enumerate() {
            let headers = wire_headers(&deliveries, i, "6f1c8a3e-2b7d-4f0a-9c1e-5d2b8a7f3e10");
            assert_eq!(
                hosts::verify(hookgate_host(host), &headers, &variant.body, &[SECRET]),
                Ok(Verified::Signed),
                "{host:?} variant {i}"
            );
        }
    }
}

#[test]
fn every_hosts_deliveries_fail_hookgates_check_under_another_secret() {
    for host in Host::ALL {
        let deliveries = prepared(host, "not-the-receivers-secret", 1);
        let headers = wire_headers(&deliveries, 0, "6f1c8a3e-2b7d-4f0a-9c1e-5d2b8a7f3e10");
        assert!(
            hosts::verify(
                hookgate_host(host),
                &headers,
                &deliveries.variants[0].body,
                &[SECRET]
            )
            .is_err(),
            "{host:?} verified with the wrong secret"
        );
    }
}

#[test]
fn a_signature_over_one_variant_does_not_verify_another() {
    for host in [Host::GitHub, Host::BitbucketServer, Host::BitbucketCloud] {
        let deliveries = prepared(host, SECRET, 2);
        let headers = wire_headers(&deliveries, 0, "6f1c8a3e-2b7d-4f0a-9c1e-5d2b8a7f3e10");
        assert!(
            hosts::verify(
                hookgate_host(host),
                &headers,
                &deliveries.variants[1].body,
                &[SECRET]
            )
            .is_err(),
            "{host:?}"
        );
    }
}

#[test]
fn every_hosts_delivery_is_the_handled_event_under_the_fresh_delivery_id() {
    let expected_event = |host| match host {
        Host::GitHub => "pull_request/opened",
        Host::GitLab => "Merge Request Hook/open",
        Host::BitbucketServer => "pr:opened",
        Host::BitbucketCloud => "pullrequest:created",
    };
    for host in Host::ALL {
        let deliveries = prepared(host, SECRET, 1);
        let id = "0d9e4c1b-7a2f-4e3d-8b6c-1f0a9e8d7c6b";
        let headers = wire_headers(&deliveries, 0, id);
        let classified =
            hosts::classify(hookgate_host(host), &headers, &deliveries.variants[0].body)
                .unwrap_or_else(|e| panic!("{host:?}: {e}"));
        assert_eq!(classified.event, expected_event(host), "{host:?}");
        assert_eq!(classified.delivery_key.as_deref(), Some(id), "{host:?}");
        assert_eq!(
            classified.disposition,
            hosts::Disposition::Handled,
            "{host:?}"
        );
    }
}

#[test]
fn distinct_variants_name_changesets_one_to_k_to_hookgate() {
    for host in Host::ALL {
        let deliveries = prepared(host, SECRET, 4);
        for (i, variant) in deliveries.variants.iter().enumerate() {
            let headers = wire_headers(&deliveries, i, "5b3e2d1c-0f9a-4b8c-9d7e-6a5f4e3d2c1b");
            let classified = hosts::classify(hookgate_host(host), &headers, &variant.body)
                .unwrap_or_else(|e| panic!("{host:?}: {e}"));
            let effects =
                hosts::effects(hookgate_host(host), &classified.event, &classified.payload)
                    .unwrap_or_else(|e| panic!("{host:?}: {e}"));
            let targets: Vec<&Target> = effects
                .iter()
                .filter_map(|effect| match effect {
                    Effect::Changeset(changeset) => Some(&changeset.target),
                    Effect::Push(_) | Effect::Repository(_) => None,
                })
                .collect();
            assert_eq!(
                targets,
                vec![&Target::Number(i as i64 + 1)],
                "{host:?} variant {i}"
            );
        }
    }
}

#[test]
fn variants_keep_the_fixtures_size_but_for_the_digits() {
    for host in Host::ALL {
        let fixture = read_fixture(host.default_fixture().as_ref()).expect("fixture");
        let deliveries = prepared(host, SECRET, 1000);
        let last = &deliveries.variants[999].body;
        let slack = 4 * host.number_pointers().len();
        assert!(
            last.len().abs_diff(fixture.len()) <= slack,
            "{host:?}: {} bytes from a {} byte fixture",
            last.len(),
            fixture.len()
        );
    }
}
