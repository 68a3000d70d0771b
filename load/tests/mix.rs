//! The realistic mix as hookgate reads it: every delivery verifies with hookgate's own
//! `hosts::verify` under the receiver's secret (and not under another), classifies as a handled
//! event under its fresh delivery id, and gives the effects the mix meant: a changeset effect on
//! the pull request's number in the delivery's repository (a check run's too, by the pull
//! request it lists, on the head SHA the pull request's own events carry), or a push effect on
//! the repository.

use std::collections::HashMap;

use hookgate::hosts::effects::Target;
use hookgate::hosts::{self, Effect, Verified};
use hookgate_load::bodies::Deliveries;
use hookgate_load::mix::{Kind, Mix};

const SECRET: &str = "load-mix-secret-0123456789";

#[test]
fn every_delivery_of_the_mix_verifies_and_names_its_pull_request_to_hookgate() {
    let deliveries = Deliveries::mixed(Mix::load(SECRET, 5, 20).expect("the mix"));
    let mix = deliveries.mix.clone().expect("a mix");
    let mut heads: HashMap<(String, i64), String> = HashMap::new();
    let mut kinds: HashMap<Kind, u32> = HashMap::new();
    for n in 0..600u64 {
        let pick = mix.pick(n);
        *kinds.entry(pick.kind).or_default() += 1;
        let signed = deliveries.signed(n);
        let mut headers = signed.headers.clone();
        let id = format!("00000000-0000-4000-8000-{n:012}");
        for name in &deliveries.id_headers {
            headers.insert(name.clone(), id.parse().expect("a header value"));
        }
        assert_eq!(
            hosts::verify(hosts::Host::GitHub, &headers, &signed.body, &[SECRET]),
            Ok(Verified::Signed),
            "delivery {n} ({:?})",
            pick.kind
        );
        assert!(
            hosts::verify(hosts::Host::GitHub, &headers, &signed.body, &["another"]).is_err(),
            "delivery {n} verified under another secret"
        );
        let classified = hosts::classify(hosts::Host::GitHub, &headers, &signed.body)
            .unwrap_or_else(|e| panic!("delivery {n} ({:?}): {e}", pick.kind));
        assert_eq!(classified.delivery_key.as_deref(), Some(id.as_str()));
        assert_eq!(
            classified.disposition,
            hosts::Disposition::Handled,
            "delivery {n} ({:?}) is {}",
            pick.kind,
            classified.event
        );
        let effects = hosts::effects(hosts::Host::GitHub, &classified.event, &classified.payload)
            .unwrap_or_else(|e| panic!("delivery {n} ({:?}): {e}", pick.kind));
        let repository = format!("Codertocat/Hello-World-{}", pick.repository + 1);
        assert_eq!(
            effects.len(),
            1,
            "delivery {n} ({:?}): {effects:?}",
            pick.kind
        );
        match &effects[0] {
            Effect::Changeset(changeset) => {
                assert_ne!(pick.kind, Kind::Push);
                assert_eq!(changeset.repository.name, repository, "delivery {n}");
                assert_eq!(
                    changeset.repository.external_id,
                    (900_000_000 + pick.repository + 1).to_string()
                );
                assert_eq!(
                    changeset.target,
                    Target::Number(pick.number as i64),
                    "delivery {n} ({:?})",
                    pick.kind
                );
                if let Some(head) = &changeset.snapshot.head_sha {
                    let known = heads
                        .entry((repository.clone(), pick.number as i64))
                        .or_insert_with(|| head.clone());
                    assert_eq!(known, head, "delivery {n}: the head SHA moved");
                }
                if let Some(check) = &changeset.check {
                    assert_eq!(Some(&check.sha), changeset.snapshot.head_sha.as_ref());
                }
            }
            Effect::Push(push) => {
                assert_eq!(pick.kind, Kind::Push, "delivery {n}");
                assert_eq!(push.repository.name, repository, "delivery {n}");
                assert_eq!(push.refs.len(), 1);
            }
            Effect::Repository(_) => panic!("delivery {n}: a repository effect"),
        }
    }
    assert_eq!(kinds.len(), Kind::ALL.len(), "{kinds:?}");
    assert_eq!(heads.len(), 20, "every pull request's head SHA was seen");
}
