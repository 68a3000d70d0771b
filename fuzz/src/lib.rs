//! What every fuzz target runs: a delivery read from the fuzzer's bytes (see
//! `hookgate-fuzz-input`) goes through a host's whole pure entry point the way the ingress and
//! the worker call it: `hosts::verify` with the receiver's secret, `hosts::classify` (which the
//! ingress also runs on a rejected delivery, for the log), and, for a verified `Handled` event,
//! `hosts::effects`. Besides "no panic", two things are checked on every input: a delivery
//! passes `verify` only with a credential made from the secret, and one whose deciding credential
//! is genuine always passes.

use arbitrary::Unstructured;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hookgate::hosts::standard_webhooks::{self, SignatureCheck};
use hookgate::hosts::{self, Disposition, Host, Verified};
use hookgate_fuzz_input::{
    Delivery, EVENT_IN_BODY, FORM_BODY, FORM_CONTENT_TYPE, GENUINE_DELIVERY_KEY,
    GENUINE_WEBHOOK_ID, HostKind, LEGACY_SHA256, Mode, NOW, REQUIRE_SIGNATURE, SECRET, SIGNING_KEY,
    SIGNING_TOKEN, SlotKind, TriggerCall, slots, with_event_type,
};
use std::cell::OnceCell;

use http::{HeaderMap, HeaderName, HeaderValue};

/// Runs one fuzz input as a delivery to a receiver of `host`.
pub fn deliver(host: HostKind, data: &[u8]) {
    let Ok(delivery) = Delivery::read(host, &mut Unstructured::new(data)) else {
        return;
    };
    let body = body_of(host, &delivery);
    let genuine = Genuine::new(host, &delivery, &body);
    let headers = headers_of(host, &delivery, &genuine);
    let verified = if host == HostKind::GitLab && delivery.flags & SIGNING_TOKEN != 0 {
        // A receiver that also holds a signing token, as the ingress checks it.
        let required = delivery.flags & REQUIRE_SIGNATURE != 0;
        let check = SignatureCheck {
            keys: &[SIGNING_KEY],
            now: NOW,
            tolerance: std::time::Duration::from_secs(300),
        };
        let verified = hosts::verify_gitlab_signed(&headers, &body, &[SECRET], &check, required);
        check_signed_gitlab_verdict(&headers, &body, required, verified.is_ok());
        verified
    } else {
        let verified = hosts::verify(hookgate_host(host), &headers, &body, &[SECRET]);
        check_verdict(host, &headers, &genuine, verified.as_ref().ok());
        verified
    };

    let classified = hosts::classify(hookgate_host(host), &headers, &body);
    if let (Ok(_), Ok(classified)) = (&verified, &classified)
        && classified.disposition == Disposition::Handled
    {
        let _ = hosts::effects(hookgate_host(host), &classified.event, &classified.payload);
    }
}

/// Runs one fuzz input as a call to a generic trigger.
pub fn trigger(data: &[u8]) {
    let Ok(call) = TriggerCall::read(&mut Unstructured::new(data)) else {
        return;
    };
    let _ = hookgate::ingress::trigger::scope(&call.body, call.repository.as_deref());
}

fn hookgate_host(host: HostKind) -> Host {
    match host {
        HostKind::GitHub => Host::GitHub,
        HostKind::GitLab => Host::GitLab,
        HostKind::BitbucketServer => Host::BitbucketServer,
        HostKind::BitbucketCloud => Host::BitbucketCloud,
        HostKind::Gitea => Host::Gitea,
        HostKind::AzureDevOps => Host::AzureDevOps,
    }
}

/// The body as sent: as read (for Azure DevOps with [`EVENT_IN_BODY`], with the genuine event as
/// its `eventType`), or wrapped in a `payload` form field.
fn body_of(host: HostKind, delivery: &Delivery) -> Vec<u8> {
    let body = match host {
        HostKind::AzureDevOps if delivery.flags & EVENT_IN_BODY != 0 => {
            with_event_type(&delivery.body, delivery.genuine_event(host))
        }
        _ => delivery.body.clone(),
    };
    if delivery.flags & FORM_BODY == 0 {
        return body;
    }
    let json = String::from_utf8_lossy(&body);
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish()
        .into_bytes()
}

/// The genuine value of each of a delivery's slots, each made once, when first asked for (an
/// HMAC of a large body is much of an execution's cost).
struct Genuine<'d> {
    host: HostKind,
    delivery: &'d Delivery,
    body: &'d [u8],
    values: Vec<OnceCell<HeaderValue>>,
}

impl<'d> Genuine<'d> {
    fn new(host: HostKind, delivery: &'d Delivery, body: &'d [u8]) -> Self {
        let values = slots(host).iter().map(|_| OnceCell::new()).collect();
        Genuine {
            host,
            delivery,
            body,
            values,
        }
    }

    /// The genuine value of slot `index` of the host.
    fn value(&self, index: usize) -> &HeaderValue {
        self.values[index].get_or_init(|| {
            genuine_value(
                self.host,
                slots(self.host)[index].kind,
                self.delivery,
                self.body,
            )
        })
    }
}

/// The headers of the delivery, slot by slot, with the genuine values of `genuine`.
fn headers_of(host: HostKind, delivery: &Delivery, genuine: &Genuine<'_>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (index, (slot, input)) in slots(host).iter().zip(&delivery.slots).enumerate() {
        let name =
            HeaderName::from_bytes(slot.name.as_bytes()).expect("slot names are header names");
        let genuine = || genuine.value(index).clone();
        let text = || HeaderValue::from_bytes(&input.text).ok();
        let values = match input.mode {
            Mode::Absent => vec![],
            Mode::Text => vec![text()],
            Mode::Genuine => vec![Some(genuine())],
            Mode::GenuineThenText => vec![Some(genuine()), text()],
        };
        for value in values.into_iter().flatten() {
            headers.append(name.clone(), value);
        }
    }
    headers
}

/// What `host` would send in a header of `kind` for `body`.
fn genuine_value(host: HostKind, kind: SlotKind, delivery: &Delivery, body: &[u8]) -> HeaderValue {
    let text = match kind {
        SlotKind::Event => delivery.genuine_event(host).to_owned(),
        SlotKind::DeliveryKey => GENUINE_DELIVERY_KEY.to_owned(),
        SlotKind::HmacSha256 => format!("sha256={}", hosts::sign_hmac_sha256_hex(SECRET, body)),
        SlotKind::HmacSha1 if delivery.flags & LEGACY_SHA256 != 0 => {
            format!("sha256={}", hosts::sign_hmac_sha256_hex(SECRET, body))
        }
        SlotKind::HmacSha1 => format!("sha1={}", sign_hmac_sha1_hex(body)),
        SlotKind::HexSha256 => hosts::sign_hmac_sha256_hex(SECRET, body),
        SlotKind::Token => SECRET.to_owned(),
        SlotKind::BasicPassword => format!("Basic {}", STANDARD.encode(format!("fuzz:{SECRET}"))),
        SlotKind::ContentType if delivery.flags & FORM_CONTENT_TYPE != 0 => {
            "application/x-www-form-urlencoded; charset=utf-8".to_owned()
        }
        SlotKind::ContentType => "application/json".to_owned(),
        SlotKind::WebhookId => GENUINE_WEBHOOK_ID.to_owned(),
        SlotKind::WebhookTimestamp => NOW.to_string(),
        SlotKind::WebhookSignature => {
            standard_webhooks::sign(SIGNING_KEY, GENUINE_WEBHOOK_ID, NOW, body)
        }
    };
    HeaderValue::from_str(&text).expect("genuine header values are visible ASCII")
}

/// `HMAC-SHA1(SECRET, body)` as lowercase hex, as GitHub's legacy header carries it (hookgate
/// exports only the SHA-256 signer).
fn sign_hmac_sha1_hex(body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(SECRET.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `verify`'s verdict against the headers sent. A delivery may pass only when one of its
/// credential headers was sent once with the genuine value (or with the fuzzer's text that
/// happens to contain it); a ping may pass unsigned only on Bitbucket Server, with no signature
/// header at all. A delivery whose deciding credential header was sent once, genuine, must pass.
fn check_verdict(
    host: HostKind,
    headers: &HeaderMap,
    genuine: &Genuine<'_>,
    verdict: Option<&Verified>,
) {
    if host == HostKind::AzureDevOps {
        return check_azure_devops_verdict(headers, verdict);
    }
    // The one value of a header; `None` when it was sent no times or twice.
    let single = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.as_bytes().to_vec()),
            _ => None,
        }
    };
    // The genuine digits (or token) of slot `index`, lower-case.
    let digits = |index: usize, kind: SlotKind| {
        let text = genuine.value(index).as_bytes().to_ascii_lowercase();
        match text.iter().position(|b| *b == b'=') {
            Some(at) if kind != SlotKind::Token => text[at + 1..].to_vec(),
            _ => text,
        }
    };
    let credentials: Vec<_> = slots(host)
        .iter()
        .enumerate()
        .filter(|(_, slot)| {
            matches!(
                slot.kind,
                SlotKind::HmacSha256 | SlotKind::HmacSha1 | SlotKind::HexSha256 | SlotKind::Token
            )
        })
        .collect();
    match verdict {
        Some(Verified::Signed) => assert!(
            credentials
                .iter()
                .any(|&(index, slot)| single(slot.name).is_some_and(|sent| {
                    let sent = sent.to_ascii_lowercase();
                    let genuine = digits(index, slot.kind);
                    sent.windows(genuine.len()).any(|w| w == genuine.as_slice())
                })),
            "{host:?}: a delivery without a genuine credential passed verify"
        ),
        Some(Verified::UnsignedPing) => {
            assert_eq!(
                host,
                HostKind::BitbucketServer,
                "only Bitbucket Server pings"
            );
            assert!(
                credentials.iter().all(|(_, slot)| headers
                    .get_all(slot.name)
                    .iter()
                    .next()
                    .is_none()),
                "an unsigned ping passed with a signature header"
            );
        }
        None => {}
    }
    // The header that decides: GitHub's SHA-256 one when sent, else its legacy SHA-1 one;
    // Gitea's when its first value is text that is not blank, else Forgejo's.
    let gitea_sent = || {
        headers
            .get("X-Gitea-Signature")
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .is_some_and(|v| !v.trim().is_empty())
    };
    let (index, deciding) = match host {
        HostKind::GitHub if headers.contains_key("X-Hub-Signature-256") => credentials[0],
        HostKind::GitHub => credentials[1],
        HostKind::Gitea if gitea_sent() => credentials[0],
        HostKind::Gitea => credentials[1],
        _ => credentials[0],
    };
    if single(deciding.name).as_deref() == Some(genuine.value(index).as_bytes()) {
        assert_eq!(
            verdict,
            Some(&Verified::Signed),
            "{host:?}: a genuinely signed delivery failed verify"
        );
    }
}

/// [`check_verdict`] for Azure DevOps, where any user name passes with the secret as the Basic
/// password: a delivery passes only when it sent a credential (a header with a value that is not
/// blank), and each credential it sent is the secret, once (`X-Hook-Secret` exactly, or the
/// password of a well-formed `Basic` `Authorization`); a delivery whose credentials are all
/// the genuine ones, each once, passes.
fn check_azure_devops_verdict(headers: &HeaderMap, verdict: Option<&Verified>) {
    let values = |name: &str| -> Vec<Vec<u8>> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect()
    };
    let sent = |values: &[Vec<u8>]| {
        values
            .iter()
            .any(|v| !v.iter().all(u8::is_ascii_whitespace))
    };
    let password = |value: &[u8]| -> Option<String> {
        let text = std::str::from_utf8(value).ok()?;
        let (scheme, encoded) = text.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        decoded.split_once(':').map(|(_, p)| p.to_owned())
    };
    let (auth, hook) = (values("Authorization"), values("X-Hook-Secret"));
    let auth_ok = matches!(auth.as_slice(), [one] if password(one).as_deref() == Some(SECRET));
    let hook_ok = matches!(hook.as_slice(), [one] if one.as_slice() == SECRET.as_bytes());
    let (auth_sent, hook_sent) = (sent(&auth), sent(&hook));
    if verdict.is_some() {
        assert!(
            (auth_sent || hook_sent) && (!auth_sent || auth_ok) && (!hook_sent || hook_ok),
            "AzureDevOps: a delivery passed verify without the secret in each credential it sent"
        );
    }
    // Each header sent (if any) once and genuine, and at least one of them sent.
    let each_genuine = (auth.is_empty() || auth_ok) && (hook.is_empty() || hook_ok);
    if each_genuine && (auth_ok || hook_ok) {
        assert_eq!(
            verdict,
            Some(&Verified::Signed),
            "AzureDevOps: a delivery with only genuine credentials failed verify"
        );
    }
}

/// Checks the verdict of a GitLab receiver that holds a signing token. Whatever passed carried a
/// genuine credential: with `required`, both the token and a Standard Webhooks signature made
/// with the signing key over the `webhook-id`, `webhook-timestamp` and body as sent; without it,
/// at least one of the two, and each one sent genuine. And a delivery whose credentials were
/// sent once each, genuine, with the genuine timestamp, passes.
fn check_signed_gitlab_verdict(headers: &HeaderMap, body: &[u8], required: bool, passed: bool) {
    // The one value of a header, trimmed; `None` when sent no times, twice, or not as text.
    let single = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().ok().map(|v| v.trim().to_owned()),
            _ => None,
        }
    };
    let token_sent = headers.contains_key("X-Gitlab-Token");
    let token_genuine = single("X-Gitlab-Token").is_some_and(|t| t.contains(SECRET));
    let signature_sent = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .any(|h| headers.contains_key(*h));
    // The signature of the id and timestamp as sent, which no one without the key can make.
    let signature_genuine = match (
        single("webhook-id"),
        single("webhook-timestamp"),
        single("webhook-signature"),
    ) {
        (Some(id), Some(timestamp), Some(sent)) => {
            let expected = standard_webhooks_signature(&id, &timestamp, body);
            sent.contains(&expected)
        }
        _ => false,
    };
    if passed {
        if required {
            assert!(
                token_genuine && signature_genuine,
                "GitLab (signature required): passed without both a genuine token and signature"
            );
        } else {
            assert!(
                token_sent || signature_sent,
                "GitLab (signing token): passed with no credential at all"
            );
            assert!(
                !token_sent || token_genuine,
                "GitLab (signing token): passed with a token that is not genuine"
            );
            assert!(
                !signature_sent || signature_genuine,
                "GitLab (signing token): passed with a signature that is not genuine"
            );
        }
    }
    let genuine_token = single("X-Gitlab-Token").as_deref() == Some(SECRET);
    let genuine_signature = single("webhook-id").as_deref() == Some(GENUINE_WEBHOOK_ID)
        && single("webhook-timestamp") == Some(NOW.to_string())
        && single("webhook-signature")
            == Some(standard_webhooks::sign(
                SIGNING_KEY,
                GENUINE_WEBHOOK_ID,
                NOW,
                body,
            ));
    let must_pass = if required {
        genuine_token && genuine_signature
    } else {
        (genuine_token || !token_sent)
            && (genuine_signature || !signature_sent)
            && (token_sent || signature_sent)
    };
    if must_pass {
        assert!(
            passed,
            "GitLab (signing token): a delivery with genuine credentials failed verify"
        );
    }
}

/// `v1,<base64 HMAC-SHA256 with SIGNING_KEY of "id.timestamp.body">`, for any timestamp text.
fn standard_webhooks_signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SIGNING_KEY)
        .expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(digest))
}
