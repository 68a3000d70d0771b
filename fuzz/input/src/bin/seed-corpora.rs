//! Writes the seed corpora of the fuzz targets from `tests/fixtures/`, the real payloads of
//! every host: `fuzz/corpus/<target>/seed-...`. Each host's fixture bodies are seeded under each
//! of the host's known events, genuinely signed (GitHub's also as form deliveries); the trigger's
//! seeds are every fixture body, and an empty body with and without `?repository=`.
//!
//! Run from anywhere: `cargo run --manifest-path fuzz/Cargo.toml -p hookgate-fuzz-input --bin
//! seed-corpora`. Existing seeds are overwritten; other corpus entries are left alone.

use std::fs;
use std::path::{Path, PathBuf};

use hookgate_fuzz_input::{
    Delivery, EVENT_IN_BODY, FORM_BODY, FORM_CONTENT_TYPE, HostKind, LEGACY_SHA256, Mode,
    REQUIRE_SIGNATURE, SIGNING_TOKEN, SlotKind, TriggerCall, known_events, slots,
};

/// (fuzz target, fixture folder, host).
const TARGETS: [(&str, &str, HostKind); 6] = [
    ("github", "github", HostKind::GitHub),
    ("gitlab", "gitlab", HostKind::GitLab),
    (
        "bitbucket_server",
        "bitbucket-server",
        HostKind::BitbucketServer,
    ),
    (
        "bitbucket_cloud",
        "bitbucket-cloud",
        HostKind::BitbucketCloud,
    ),
    ("gitea", "gitea", HostKind::Gitea),
    ("azure_devops", "azure-devops", HostKind::AzureDevOps),
];

fn main() -> std::io::Result<()> {
    let input_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = input_crate.join("../../tests/fixtures");
    let corpus = input_crate.join("../corpus");
    let mut trigger_seeds = Vec::new();

    for (target, folder, host) in TARGETS {
        let out = corpus.join(target);
        fs::create_dir_all(&out)?;
        let mut written = 0;
        for (name, body) in fixture_bodies(&fixtures.join(folder))? {
            for index in 0..known_events(host).len() {
                let index = u8::try_from(index).expect("fewer than 256 known events");
                let mut delivery = Delivery::genuine(host, index, &body);
                let event = delivery.genuine_event(host);
                if host == HostKind::AzureDevOps {
                    // The fixture's own eventType is the seed without the flag (index 0).
                    if index == 0 {
                        fs::write(out.join(format!("seed-{name}")), delivery.encode())?;
                        written += 1;
                    }
                    delivery.flags = EVENT_IN_BODY;
                }
                // Without a signing token, a GitLab delivery carries no Standard Webhooks headers.
                let plain = without_slots(&delivery, host, |kind| {
                    matches!(
                        kind,
                        SlotKind::WebhookId
                            | SlotKind::WebhookTimestamp
                            | SlotKind::WebhookSignature
                    )
                });
                fs::write(out.join(format!("seed-{name}-{event}")), plain.encode())?;
                written += 1;
                if host == HostKind::GitHub {
                    delivery.flags = FORM_CONTENT_TYPE | FORM_BODY;
                    fs::write(
                        out.join(format!("seed-{name}-{event}-form")),
                        delivery.encode(),
                    )?;
                    // `X-Hub-Signature: sha256=...` alone, as some GitHub-compatible senders do.
                    delivery.flags = LEGACY_SHA256;
                    let legacy =
                        without_slots(&delivery, host, |kind| kind == SlotKind::HmacSha256);
                    fs::write(
                        out.join(format!("seed-{name}-{event}-legacy-sha256")),
                        legacy.encode(),
                    )?;
                    written += 2;
                }
                if host == HostKind::GitLab {
                    // A receiver with a signing token that requires the signature.
                    delivery.flags = SIGNING_TOKEN | REQUIRE_SIGNATURE;
                    fs::write(
                        out.join(format!("seed-{name}-{event}-signed")),
                        delivery.encode(),
                    )?;
                    written += 1;
                }
            }
            trigger_seeds.push((format!("{folder}-{name}"), body));
        }
        println!("{target}: {written} seeds in {}", out.display());
    }

    let out = corpus.join("trigger");
    fs::create_dir_all(&out)?;
    let mut calls: Vec<(String, TriggerCall)> = trigger_seeds
        .into_iter()
        .map(|(name, body)| {
            let call = TriggerCall {
                repository: None,
                body,
            };
            (name, call)
        })
        .collect();
    calls.push((
        "empty".into(),
        TriggerCall {
            repository: None,
            body: Vec::new(),
        },
    ));
    calls.push((
        "named".into(),
        TriggerCall {
            repository: Some("/octo-org/hello-world/".into()),
            body: b"  \n".to_vec(),
        },
    ));
    for (name, call) in &calls {
        fs::write(out.join(format!("seed-{name}")), call.encode())?;
    }
    println!("trigger: {} seeds in {}", calls.len(), out.display());
    Ok(())
}

/// `delivery` with the slots whose kind `drop` picks not sent.
fn without_slots(delivery: &Delivery, host: HostKind, drop: impl Fn(SlotKind) -> bool) -> Delivery {
    let mut delivery = delivery.clone();
    for (input, slot) in delivery.slots.iter_mut().zip(slots(host)) {
        if drop(slot.kind) {
            input.mode = Mode::Absent;
        }
    }
    delivery
}

/// The `.json` files of `folder`, by file stem, in name order.
fn fixture_bodies(folder: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(folder)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            fs::read(&path).map(|body| (stem, body))
        })
        .collect()
}
