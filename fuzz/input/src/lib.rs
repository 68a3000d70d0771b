//! The bytes of a fuzz input, read as a delivery a code host might send: which headers it carries
//! and with what values, and its body. The format is laid out front to back so that a fixture
//! body becomes a seed by prefixing a few bytes ([`Delivery::encode`]), and every field is read
//! with [`arbitrary::Unstructured`], so that any byte string is some delivery.
//!
//! ```text
//! byte 0        event index: which of the host's known events a `Genuine` event header names
//! byte 1        flags (FORM_CONTENT_TYPE, FORM_BODY, LEGACY_SHA256, SIGNING_TOKEN,
//!               REQUIRE_SIGNATURE, EVENT_IN_BODY)
//! per slot      mode byte, length byte, that many bytes of text (the host's slots, in order)
//! the rest      the body
//! ```
//!
//! This crate knows nothing of hookgate (the fuzz targets do): that keeps `seed-corpora` a
//! small build, not a second build of the whole service outside cargo-fuzz.

use arbitrary::{Result, Unstructured};

/// The secret every fuzzed receiver has; a `Genuine` signature or token is made with it.
pub const SECRET: &str = "fuzz-receiver-secret-0123456789";

/// The delivery key a `Genuine` delivery key header carries.
pub const GENUINE_DELIVERY_KEY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

/// Flag: a `Genuine` content type is `application/x-www-form-urlencoded` instead of JSON.
pub const FORM_CONTENT_TYPE: u8 = 1;
/// Flag: the body is sent as GitHub's form hooks send it, `payload=<the body, URL-encoded>`.
pub const FORM_BODY: u8 = 2;
/// Flag (GitHub): a `Genuine` legacy `X-Hub-Signature` is `sha256=<hex>`, as some
/// GitHub-compatible senders put it, instead of `sha1=<hex>`.
pub const LEGACY_SHA256: u8 = 4;
/// Flag (GitLab): the receiver also holds a signing token ([`SIGNING_KEY`]), so the Standard
/// Webhooks headers are checked beside `X-Gitlab-Token`.
pub const SIGNING_TOKEN: u8 = 8;
/// Flag (GitLab, with [`SIGNING_TOKEN`]): the receiver's `require_signature` option: both the
/// token and the signature must be sent and match.
pub const REQUIRE_SIGNATURE: u8 = 16;

/// The HMAC key of the signing token a GitLab receiver holds under [`SIGNING_TOKEN`] (the bytes
/// its `whsec_` base64 decodes to).
pub const SIGNING_KEY: &[u8] = b"fuzz-signing-token-key-32-bytes!";
/// "Now" for the Standard Webhooks timestamp check, in Unix seconds; a `Genuine`
/// `webhook-timestamp` is this.
pub const NOW: i64 = 1_700_000_000;
/// What a `Genuine` `webhook-id` carries.
pub const GENUINE_WEBHOOK_ID: &str = "msg_2fuzzDeliveryId0123456789";
/// Flag (Azure DevOps): the known event at the event index is written into the body as its
/// `eventType` ([`with_event_type`]): Azure DevOps names its event only there.
pub const EVENT_IN_BODY: u8 = 32;

/// The code hosts, as the fuzz targets name them (hookgate's own `Host` is mapped to these there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    GitHub,
    GitLab,
    BitbucketServer,
    BitbucketCloud,
    Gitea,
    AzureDevOps,
}

/// What a header a host reads is for, which says what its `Genuine` value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// The event header; genuine: the known event at the input's event index.
    Event,
    /// A delivery key header; genuine: [`GENUINE_DELIVERY_KEY`].
    DeliveryKey,
    /// An HMAC-SHA256 signature header; genuine: `sha256=<hex HMAC of the body with SECRET>`.
    HmacSha256,
    /// GitHub's legacy header; genuine: `sha1=<hex HMAC of the body with SECRET>`, or
    /// `sha256=<hex>` under [`LEGACY_SHA256`].
    HmacSha1,
    /// Gitea's (and Forgejo's) signature header; genuine: `<hex HMAC-SHA256 of the body with
    /// SECRET>`, no prefix.
    HexSha256,
    /// GitLab's token header (and Azure DevOps' `X-Hook-Secret`); genuine: [`SECRET`].
    Token,
    /// Azure DevOps' Basic authentication; genuine: `Basic base64(fuzz:<SECRET>)` (any user
    /// name passes: the password is the credential).
    BasicPassword,
    /// `Content-Type`; genuine: JSON, or a form when [`FORM_CONTENT_TYPE`] is set.
    ContentType,
    /// Standard Webhooks `webhook-id` (also the delivery key); genuine: [`GENUINE_WEBHOOK_ID`].
    WebhookId,
    /// Standard Webhooks `webhook-timestamp`; genuine: [`NOW`].
    WebhookTimestamp,
    /// Standard Webhooks `webhook-signature`; genuine: `v1,<base64 HMAC-SHA256 with
    /// SIGNING_KEY of "GENUINE_WEBHOOK_ID.NOW.body">`.
    WebhookSignature,
}

/// One header a host reads: its name and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub name: &'static str,
    pub kind: SlotKind,
}

/// How one slot's header is sent: the mode byte modulo 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not sent.
    Absent,
    /// Sent once with the fuzzer's text (skipped when the text is not a valid header value).
    Text,
    /// Sent once with what the host would send (see [`SlotKind`]).
    Genuine,
    /// Sent twice: the genuine value, then the fuzzer's text.
    GenuineThenText,
}

impl Mode {
    fn from_byte(byte: u8) -> Self {
        match byte % 4 {
            0 => Mode::Absent,
            1 => Mode::Text,
            2 => Mode::Genuine,
            _ => Mode::GenuineThenText,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Mode::Absent => 0,
            Mode::Text => 1,
            Mode::Genuine => 2,
            Mode::GenuineThenText => 3,
        }
    }
}

/// One slot's header as the input chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInput {
    pub mode: Mode,
    /// The fuzzer's text for it (at most 255 bytes, any bytes).
    pub text: Vec<u8>,
}

/// A delivery as the input describes it, before the headers are made (signing needs hookgate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_index: u8,
    pub flags: u8,
    /// One per [`slots`] of the host, in that order.
    pub slots: Vec<SlotInput>,
    /// The body as the input has it (before [`FORM_BODY`] wraps it).
    pub body: Vec<u8>,
}

const fn slot(name: &'static str, kind: SlotKind) -> Slot {
    Slot { name, kind }
}

const GITHUB: &[Slot] = &[
    slot("X-GitHub-Event", SlotKind::Event),
    slot("X-GitHub-Delivery", SlotKind::DeliveryKey),
    slot("X-Hub-Signature-256", SlotKind::HmacSha256),
    slot("X-Hub-Signature", SlotKind::HmacSha1),
    slot("Content-Type", SlotKind::ContentType),
];
const GITLAB: &[Slot] = &[
    slot("X-Gitlab-Event", SlotKind::Event),
    slot("Idempotency-Key", SlotKind::DeliveryKey),
    slot("X-Gitlab-Event-UUID", SlotKind::DeliveryKey),
    slot("X-Gitlab-Token", SlotKind::Token),
    slot("Content-Type", SlotKind::ContentType),
    slot("webhook-id", SlotKind::WebhookId),
    slot("webhook-timestamp", SlotKind::WebhookTimestamp),
    slot("webhook-signature", SlotKind::WebhookSignature),
];
const BITBUCKET_SERVER: &[Slot] = &[
    slot("X-Event-Key", SlotKind::Event),
    slot("X-Request-Id", SlotKind::DeliveryKey),
    slot("X-Hub-Signature", SlotKind::HmacSha256),
    slot("Content-Type", SlotKind::ContentType),
];
const BITBUCKET_CLOUD: &[Slot] = &[
    slot("X-Event-Key", SlotKind::Event),
    slot("X-Request-UUID", SlotKind::DeliveryKey),
    slot("X-Hub-Signature", SlotKind::HmacSha256),
    slot("Content-Type", SlotKind::ContentType),
];

const GITEA: &[Slot] = &[
    slot("X-Gitea-Event-Type", SlotKind::Event),
    slot("X-Gitea-Delivery", SlotKind::DeliveryKey),
    slot("X-Forgejo-Delivery", SlotKind::DeliveryKey),
    slot("X-Gitea-Signature", SlotKind::HexSha256),
    slot("X-Forgejo-Signature", SlotKind::HexSha256),
    slot("Content-Type", SlotKind::ContentType),
];

/// Azure DevOps sends no event or key header: its event and key are in the body.
const AZURE_DEVOPS: &[Slot] = &[
    slot("Authorization", SlotKind::BasicPassword),
    slot("X-Hook-Secret", SlotKind::Token),
    slot("Content-Type", SlotKind::ContentType),
];

/// The headers `host` reads, in the order the input describes them.
pub fn slots(host: HostKind) -> &'static [Slot] {
    match host {
        HostKind::GitHub => GITHUB,
        HostKind::GitLab => GITLAB,
        HostKind::BitbucketServer => BITBUCKET_SERVER,
        HostKind::BitbucketCloud => BITBUCKET_CLOUD,
        HostKind::Gitea => GITEA,
        HostKind::AzureDevOps => AZURE_DEVOPS,
    }
}

/// The event names `host` sends that hookgate reads (and one or two it ignores), for a
/// `Genuine` event header. The fuzzer's own text reaches every other name.
pub fn known_events(host: HostKind) -> &'static [&'static str] {
    match host {
        HostKind::GitHub => &[
            "pull_request",
            "pull_request_review",
            "pull_request_review_comment",
            "pull_request_review_thread",
            "merge_group",
            "issue_comment",
            "check_run",
            "check_suite",
            "status",
            "push",
            "ping",
            "issues",
        ],
        HostKind::GitLab => &[
            "Merge Request Hook",
            "Pipeline Hook",
            "Note Hook",
            "Push Hook",
            "Tag Push Hook",
            "Issue Hook",
            "Job Hook",
        ],
        HostKind::BitbucketServer => &[
            "pr:opened",
            "pr:modified",
            "pr:from_ref_updated",
            "pr:merged",
            "pr:declined",
            "pr:deleted",
            "pr:comment:added",
            "pr:comment:edited",
            "pr:comment:deleted",
            "pr:reviewer:approved",
            "pr:reviewer:unapproved",
            "pr:reviewer:needs_work",
            "pr:reviewer:changes_requested",
            "pr:reviewer:updated",
            "pr:activity:reviewers",
            "pr:activity:comment",
            "pr:activity:status",
            "repo:refs_changed",
            "repo:build_status",
            "diagnostics:ping",
            "repo:modified",
        ],
        HostKind::BitbucketCloud => &[
            "pullrequest:created",
            "pullrequest:updated",
            "pullrequest:approved",
            "pullrequest:unapproved",
            "pullrequest:changes_request_created",
            "pullrequest:changes_request_removed",
            "pullrequest:fulfilled",
            "pullrequest:rejected",
            "pullrequest:comment_created",
            "pullrequest:comment_updated",
            "pullrequest:comment_deleted",
            "repo:commit_status_created",
            "repo:commit_status_updated",
            "repo:push",
            "repo:fork",
        ],
        HostKind::Gitea => &[
            "pull_request",
            "pull_request_sync",
            "pull_request_review_request",
            "pull_request_review_approved",
            "pull_request_review_rejected",
            "pull_request_review_comment",
            "pull_request_comment",
            "issue_comment",
            "push",
            "create",
            "delete",
            "issues",
        ],
        // The body's `eventType`, written in by [`EVENT_IN_BODY`].
        HostKind::AzureDevOps => &[
            "git.pullrequest.created",
            "git.pullrequest.updated",
            "git.pullrequest.merged",
            "ms.vss-code.git-pullrequest-comment-event",
            "git.push",
            "build.complete",
            "workitem.created",
        ],
    }
}

/// `body` with `"eventType": event` added as its last member, when it is (by its first and
/// last non-blank bytes) a JSON object; else `body` as it is. A JSON reader keeps the last of
/// two members of one name, so the added one is the event.
pub fn with_event_type(body: &[u8], event: &str) -> Vec<u8> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let end = body.iter().rposition(|b| !b.is_ascii_whitespace());
    let (Some(start), Some(end)) = (start, end) else {
        return body.to_vec();
    };
    if body[start] != b'{' || body[end] != b'}' || start == end {
        return body.to_vec();
    }
    let empty = body[start + 1..end].iter().all(u8::is_ascii_whitespace);
    let mut out = body[..end].to_vec();
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(format!("\"eventType\":\"{event}\"").as_bytes());
    out.extend_from_slice(&body[end..]);
    out
}

impl Delivery {
    /// Reads a delivery for `host` from `u`; never fails: missing bytes read as zeros and a
    /// short text is as long as the bytes left.
    pub fn read(host: HostKind, u: &mut Unstructured<'_>) -> Result<Self> {
        let event_index = u.arbitrary::<u8>()?;
        let flags = u.arbitrary::<u8>()?;
        let mut slots_read = Vec::with_capacity(slots(host).len());
        for _ in slots(host) {
            let mode = Mode::from_byte(u.arbitrary::<u8>()?);
            let len = usize::from(u.arbitrary::<u8>()?).min(u.len());
            let text = u.bytes(len)?.to_vec();
            slots_read.push(SlotInput { mode, text });
        }
        Ok(Delivery {
            event_index,
            flags,
            slots: slots_read,
            body: u.bytes(u.len())?.to_vec(),
        })
    }

    /// The input bytes that [`Delivery::read`] reads back as this delivery (texts are cut at
    /// 255 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.event_index, self.flags];
        for slot in &self.slots {
            let text = &slot.text[..slot.text.len().min(255)];
            out.push(slot.mode.byte());
            out.push(u8::try_from(text.len()).expect("cut at 255 bytes above"));
            out.extend_from_slice(text);
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// A delivery of `body` as `host` sends it: every slot genuine, the event the known one at
    /// `event_index`.
    pub fn genuine(host: HostKind, event_index: u8, body: &[u8]) -> Self {
        let slots = slots(host)
            .iter()
            .map(|_| SlotInput {
                mode: Mode::Genuine,
                text: Vec::new(),
            })
            .collect();
        Delivery {
            event_index,
            flags: 0,
            slots,
            body: body.to_vec(),
        }
    }

    /// The event a `Genuine` event header names.
    pub fn genuine_event(&self, host: HostKind) -> &'static str {
        let events = known_events(host);
        events[usize::from(self.event_index) % events.len()]
    }
}

/// A call to the generic trigger: the `?repository=` parameter and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerCall {
    /// `None` when the query has no `repository` (mode byte even), else its text (lossy UTF-8,
    /// as a decoded query string is always text).
    pub repository: Option<String>,
    pub body: Vec<u8>,
}

impl TriggerCall {
    /// Reads a call: a mode byte, a length byte and the parameter's bytes, then the body.
    pub fn read(u: &mut Unstructured<'_>) -> Result<Self> {
        let present = u.arbitrary::<u8>()? % 2 == 1;
        let len = usize::from(u.arbitrary::<u8>()?).min(u.len());
        let text = u.bytes(len)?;
        let repository = present.then(|| String::from_utf8_lossy(text).into_owned());
        Ok(TriggerCall {
            repository,
            body: u.bytes(u.len())?.to_vec(),
        })
    }

    /// The input bytes that [`TriggerCall::read`] reads back as this call.
    pub fn encode(&self) -> Vec<u8> {
        let text = self.repository.as_deref().unwrap_or_default().as_bytes();
        let text = &text[..text.len().min(255)];
        let mut out = vec![
            u8::from(self.repository.is_some()),
            u8::try_from(text.len()).expect("cut at 255 bytes above"),
        ];
        out.extend_from_slice(text);
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: [HostKind; 6] = [
        HostKind::GitHub,
        HostKind::GitLab,
        HostKind::BitbucketServer,
        HostKind::BitbucketCloud,
        HostKind::Gitea,
        HostKind::AzureDevOps,
    ];

    #[test]
    fn the_event_type_is_added_as_the_last_member_of_an_object_only() {
        assert_eq!(
            with_event_type(b" {\"a\": 1}\n", "git.push"),
            b" {\"a\": 1,\"eventType\":\"git.push\"}\n".to_vec()
        );
        assert_eq!(
            with_event_type(b"{ }", "e"),
            b"{ \"eventType\":\"e\"}".to_vec()
        );
        for body in [&b""[..], b"[1]", b"{", b"}", b"nope"] {
            assert_eq!(with_event_type(body, "e"), body.to_vec());
        }
    }

    #[test]
    fn an_encoded_delivery_reads_back_as_itself() {
        for host in HOSTS {
            let mut delivery = Delivery::genuine(host, 3, b"{\"a\": 1}");
            delivery.flags = FORM_BODY;
            delivery.slots[0] = SlotInput {
                mode: Mode::Text,
                text: b"pull_request".to_vec(),
            };
            delivery.slots[1].mode = Mode::GenuineThenText;
            let bytes = delivery.encode();
            let read = Delivery::read(host, &mut Unstructured::new(&bytes)).expect("it reads");
            assert_eq!(read, delivery, "{host:?}");
        }
    }

    #[test]
    fn any_bytes_read_as_some_delivery_even_too_few() {
        for host in HOSTS {
            for bytes in [
                &b""[..],
                b"\x02",
                b"\x00\x00\x01\xff",
                b"\x07\x00\x02\x00{}",
            ] {
                let read = Delivery::read(host, &mut Unstructured::new(bytes)).expect("it reads");
                assert_eq!(read.slots.len(), slots(host).len());
            }
        }
    }

    #[test]
    fn an_encoded_trigger_call_reads_back_as_itself() {
        for call in [
            TriggerCall {
                repository: None,
                body: b"{}".to_vec(),
            },
            TriggerCall {
                repository: Some("octo-org/hello-world".into()),
                body: Vec::new(),
            },
        ] {
            let bytes = call.encode();
            let read = TriggerCall::read(&mut Unstructured::new(&bytes)).expect("it reads");
            assert_eq!(read, call);
        }
    }
}
