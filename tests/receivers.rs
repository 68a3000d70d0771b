//! The receiver registry over gRPC, rule by rule, against the real service on SQLite and
//! PostgreSQL.

mod common;

use common::{Engine, TestApp};
use hookgate::admin::proto::{
    self, CodeHostKind, CreateReceiverRequest, DeleteReceiverRequest, GetReceiverRequest,
    ListReceiversRequest, ReceiverOptions, RotateReceiverSecretRequest, UpdateReceiverRequest,
};
use hookgate::receivers::ReceiverStore;
use prost::Message;
use tonic::Code;

fn github(name: &str) -> CreateReceiverRequest {
    CreateReceiverRequest {
        name: name.to_owned(),
        code_host_kind: CodeHostKind::Github as i32,
        code_host_urn: "https://github.com/".to_owned(),
        ..Default::default()
    }
}

async fn create(app: &TestApp, req: CreateReceiverRequest) -> proto::CreateReceiverResponse {
    app.receivers()
        .await
        .create_receiver(app.req(req))
        .await
        .expect("the receiver is created")
        .into_inner()
}

async fn create_err(app: &TestApp, req: CreateReceiverRequest) -> tonic::Status {
    app.receivers()
        .await
        .create_receiver(app.req(req))
        .await
        .expect_err("the receiver is refused")
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn micros(t: Option<prost_types::Timestamp>) -> i64 {
    let t = t.expect("a timestamp");
    t.seconds * 1_000_000 + i64::from(t.nanos / 1000)
}

/// A store over the test's database, to look at what the API does not show (the secrets).
async fn store(app: &TestApp) -> ReceiverStore {
    let db = hookgate::db::connect(&app.db.url)
        .await
        .expect("the test database opens");
    // The key the service made in its data directory.
    let secrets = hookgate::secret_key::prepare(&db, None, app.db.dir.path())
        .await
        .expect("the service's key opens the test database");
    ReceiverStore::new(db, secrets)
}

on_both_engines!(
    a_created_receiver_has_an_id_a_url_a_generated_secret_and_its_creator,
    the_actor_metadata_is_recorded_as_creator_and_updater,
    a_name_is_required_trimmed_and_at_most_100_characters,
    a_name_already_in_use_is_already_exists_naming_the_clash,
    an_unspecified_code_host_kind_is_invalid,
    the_code_host_urn_is_stored_normalised,
    a_code_host_urn_that_is_not_an_absolute_http_url_is_invalid_with_an_example,
    a_given_secret_is_used_and_a_bad_one_is_invalid,
    the_secret_is_never_returned_by_get_list_or_update,
    options_are_stored_and_bad_options_are_invalid,
    rotation_returns_a_new_secret_and_keeps_the_previous_one_for_the_overlap,
    rotation_without_overlap_drops_the_previous_secret_at_once,
    update_changes_only_the_fields_in_the_mask,
    update_refuses_unknown_paths_id_kind_and_an_empty_mask,
    update_to_a_name_in_use_is_already_exists,
    listing_is_in_creation_order_and_pages_with_a_token,
    listing_filters_by_kind_and_counts_all_matches,
    listing_refuses_bad_page_sizes_and_tokens,
    missing_ids_are_not_found_and_malformed_ids_invalid,
    a_deleted_receiver_is_gone,
);

async fn a_created_receiver_has_an_id_a_url_a_generated_secret_and_its_creator(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let created = create(&app, github("github-main")).await;
    let r = created.receiver.expect("a receiver");
    let id = uuid::Uuid::parse_str(&r.id).expect("the id is a UUID");
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(r.url, format!("{}/.api/webhooks/{}", app.public_url, r.id));
    assert_eq!(
        r.url,
        format!("http://{}/.api/webhooks/{}", app.http_addr, r.id)
    );
    assert!(r.has_secret);
    assert_eq!(created.secret.len(), 40);
    assert!(hookgate::receivers::ReceiverSecret::parse(&created.secret).is_ok());
    assert_eq!(r.created_by, "admin");
    assert_eq!(r.updated_by, "admin");
    assert!(r.create_time.is_some());
    assert_eq!(r.create_time, r.update_time);
    assert_eq!(r.last_delivery_time, None);
    let other = create(&app, github("github-other")).await;
    assert_ne!(
        other.secret, created.secret,
        "each receiver gets its own secret"
    );
    assert_ne!(other.receiver.unwrap().id, r.id);
    app.stop().await;
}

async fn the_actor_metadata_is_recorded_as_creator_and_updater(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut client = app.receivers().await;
    let mut req = app.req(github("ci"));
    req.metadata_mut()
        .insert("x-hookgate-actor", "alice".parse().unwrap());
    let r = client
        .create_receiver(req)
        .await
        .unwrap()
        .into_inner()
        .receiver
        .unwrap();
    assert_eq!(
        (r.created_by.as_str(), r.updated_by.as_str()),
        ("alice", "alice")
    );

    let mut update = app.req(UpdateReceiverRequest {
        receiver: Some(proto::Receiver {
            id: r.id.clone(),
            name: "ci-2".into(),
            ..Default::default()
        }),
        update_mask: mask(&["name"]),
    });
    update
        .metadata_mut()
        .insert("x-hookgate-actor", "bob".parse().unwrap());
    let updated = client.update_receiver(update).await.unwrap().into_inner();
    assert_eq!(updated.created_by, "alice");
    assert_eq!(updated.updated_by, "bob");
    app.stop().await;
}

async fn a_name_is_required_trimmed_and_at_most_100_characters(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for bad in ["", "   "] {
        let err = create_err(&app, github(bad)).await;
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(err.message().contains("name"), "{}", err.message());
    }
    let err = create_err(&app, github(&"n".repeat(101))).await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("100"), "{}", err.message());

    let r = create(&app, github(&"n".repeat(100)))
        .await
        .receiver
        .unwrap();
    assert_eq!(r.name.len(), 100);
    let r = create(&app, github("  spaced  ")).await.receiver.unwrap();
    assert_eq!(r.name, "spaced");
    app.stop().await;
}

async fn a_name_already_in_use_is_already_exists_naming_the_clash(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    create(&app, github("main")).await;
    let err = create_err(&app, github(" main ")).await;
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("\"main\""), "{}", err.message());
    let listed = app
        .receivers()
        .await
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1, "the refused receiver was not stored");
    app.stop().await;
}

async fn an_unspecified_code_host_kind_is_invalid(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for kind in [CodeHostKind::Unspecified as i32, 99] {
        let mut req = github("x");
        req.code_host_kind = kind;
        let err = create_err(&app, req).await;
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().contains("code_host_kind"),
            "{}",
            err.message()
        );
    }
    app.stop().await;
}

async fn the_code_host_urn_is_stored_normalised(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cases = [
        ("HTTPS://GitHub.com:443", "https://github.com/"),
        (
            "http://GitLab.Example.com:80/",
            "http://gitlab.example.com/",
        ),
        (
            "https://bitbucket.example.com:7990/Stash",
            "https://bitbucket.example.com:7990/Stash/",
        ),
        ("https://github.com//", "https://github.com/"),
    ];
    for (i, (given, stored)) in cases.iter().enumerate() {
        let mut req = github(&format!("r{i}"));
        req.code_host_urn = given.to_string();
        let r = create(&app, req).await.receiver.unwrap();
        assert_eq!(r.code_host_urn, *stored, "{given}");
        let got = app
            .receivers()
            .await
            .get_receiver(app.req(GetReceiverRequest { id: r.id }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.code_host_urn, *stored);
    }
    app.stop().await;
}

async fn a_code_host_urn_that_is_not_an_absolute_http_url_is_invalid_with_an_example(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    for bad in [
        "github.com",
        "",
        "ftp://github.com/",
        "https://github.com/?a=b",
        "not a url",
    ] {
        let mut req = github("x");
        req.code_host_urn = bad.to_owned();
        let err = create_err(&app, req).await;
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(
            err.message().starts_with("code_host_urn"),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("https://github.com/"),
            "{}",
            err.message()
        );
    }
    app.stop().await;
}

async fn a_given_secret_is_used_and_a_bad_one_is_invalid(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut req = github("given");
    req.secret = "my.Secret_~-123".to_owned();
    let created = create(&app, req).await;
    assert_eq!(created.secret, "my.Secret_~-123");
    let id = uuid::Uuid::parse_str(&created.receiver.unwrap().id).unwrap();
    let secrets = store(&app).await.secrets(id).await.unwrap();
    assert_eq!(secrets.current.expose(), "my.Secret_~-123");

    let too_long = "a".repeat(256);
    for bad in [
        "short",
        "has space in it",
        "slash/inside",
        too_long.as_str(),
    ] {
        let mut req = github("bad");
        req.secret = bad.to_owned();
        let err = create_err(&app, req).await;
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("secret"), "{}", err.message());
        assert!(
            !err.message().contains(bad),
            "an error must not echo the secret"
        );
    }
    let mut req = github("longest");
    req.secret = "b".repeat(255);
    assert_eq!(create(&app, req).await.secret.len(), 255);
    app.stop().await;
}

async fn the_secret_is_never_returned_by_get_list_or_update(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let created = create(&app, github("quiet")).await;
    let secret = created.secret.as_bytes().to_vec();
    let id = created.receiver.unwrap().id;
    let contains = |bytes: Vec<u8>| bytes.windows(secret.len()).any(|w| w == secret.as_slice());
    let mut client = app.receivers().await;

    let got = client
        .get_receiver(app.req(GetReceiverRequest { id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert!(!contains(got.encode_to_vec()));
    let listed = client
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(!contains(listed.encode_to_vec()));
    let updated = client
        .update_receiver(app.req(UpdateReceiverRequest {
            receiver: Some(proto::Receiver {
                id,
                name: "quiet-2".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!contains(updated.encode_to_vec()));
    assert!(updated.has_secret);
    app.stop().await;
}

async fn options_are_stored_and_bad_options_are_invalid(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let options = ReceiverOptions {
        ignore_unmatched: true,
        min_sync_interval: Some(prost_types::Duration {
            seconds: 90,
            nanos: 0,
        }),
        push_branch_filter: vec!["main".into(), "release/*".into()],
        rate_limit_per_minute: 600,
        // Only GitLab receivers show the signature options (tests/gitlab_signing.rs).
        signature_tolerance: None,
        require_signature: None,
    };
    let mut req = github("opts");
    req.options = Some(options.clone());
    let r = create(&app, req).await.receiver.unwrap();
    assert_eq!(r.options, Some(options));

    let bad_options = [
        ReceiverOptions {
            min_sync_interval: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            ..Default::default()
        },
        ReceiverOptions {
            push_branch_filter: vec!["release/[".into()],
            ..Default::default()
        },
        ReceiverOptions {
            push_branch_filter: vec!["".into()],
            ..Default::default()
        },
    ];
    for bad in bad_options {
        let mut req = github("bad-opts");
        req.options = Some(bad.clone());
        let err = create_err(&app, req).await;
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(err.message().contains("options."), "{}", err.message());
    }
    app.stop().await;
}

async fn rotation_returns_a_new_secret_and_keeps_the_previous_one_for_the_overlap(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let created = create(&app, github("rotating")).await;
    let old = created.secret.clone();
    let r = created.receiver.unwrap();
    let before = hookgate::time::Timestamp::now().micros();
    let rotated = app
        .receivers()
        .await
        .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
            id: r.id.clone(),
            secret: String::new(),
            overlap: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.secret.len(), 40);
    assert_ne!(rotated.secret, old);
    let expire = rotated.previous_secret_expire_time.expect("an expiry");
    let expire_micros = micros(Some(expire));
    assert!(expire_micros >= before + 3_600_000_000);
    assert!(expire_micros <= hookgate::time::Timestamp::now().micros() + 3_600_000_000);

    let id = uuid::Uuid::parse_str(&r.id).unwrap();
    let secrets = store(&app).await.secrets(id).await.unwrap();
    let now = hookgate::time::Timestamp::now();
    assert_eq!(
        secrets.accepted_at(now),
        vec![rotated.secret.as_str(), old.as_str()]
    );
    assert_eq!(
        secrets.accepted_at(hookgate::time::Timestamp::from_micros(expire_micros)),
        vec![rotated.secret.as_str()],
        "the previous secret stops at its expiry"
    );
    let receiver = rotated.receiver.unwrap();
    assert!(micros(receiver.update_time) > micros(receiver.create_time));

    // A given secret is used as is.
    let given = app
        .receivers()
        .await
        .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
            id: r.id.clone(),
            secret: "chosen-secret-value".into(),
            overlap: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(given.secret, "chosen-secret-value");
    let err = app
        .receivers()
        .await
        .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
            id: r.id,
            secret: "bad secret".into(),
            overlap: Some(prost_types::Duration {
                seconds: -5,
                nanos: 0,
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    app.stop().await;
}

async fn rotation_without_overlap_drops_the_previous_secret_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = create(&app, github("rotating")).await.receiver.unwrap();
    let rotated = app
        .receivers()
        .await
        .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
            id: r.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.previous_secret_expire_time, None);
    let id = uuid::Uuid::parse_str(&r.id).unwrap();
    let secrets = store(&app).await.secrets(id).await.unwrap();
    assert_eq!(
        secrets.accepted_at(hookgate::time::Timestamp::now()),
        vec![rotated.secret.as_str()]
    );
    app.stop().await;
}

async fn update_changes_only_the_fields_in_the_mask(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut req = github("before");
    req.options = Some(ReceiverOptions {
        rate_limit_per_minute: 10,
        push_branch_filter: vec!["main".into()],
        ..Default::default()
    });
    let r = create(&app, req).await.receiver.unwrap();
    let mut client = app.receivers().await;

    // The request carries other values too; only the masked ones change.
    let updated = client
        .update_receiver(app.req(UpdateReceiverRequest {
            receiver: Some(proto::Receiver {
                id: r.id.clone(),
                name: "after".into(),
                code_host_urn: "https://IGNORED.example.com".into(),
                options: Some(ReceiverOptions {
                    min_sync_interval: Some(prost_types::Duration {
                        seconds: 30,
                        nanos: 0,
                    }),
                    rate_limit_per_minute: 999,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&["name", "options.min_sync_interval"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "after");
    assert_eq!(updated.code_host_urn, "https://github.com/");
    let o = updated.options.clone().unwrap();
    assert_eq!(
        o.min_sync_interval,
        Some(prost_types::Duration {
            seconds: 30,
            nanos: 0
        })
    );
    assert_eq!(o.rate_limit_per_minute, 10);
    assert_eq!(o.push_branch_filter, vec!["main"]);
    assert!(micros(updated.update_time) > micros(r.update_time));
    assert_eq!(updated.create_time, r.create_time);

    // The whole options message, and the URN, normalised.
    let updated = client
        .update_receiver(app.req(UpdateReceiverRequest {
            receiver: Some(proto::Receiver {
                id: r.id.clone(),
                code_host_urn: "HTTPS://GitHub.Example.com:443".into(),
                options: Some(ReceiverOptions {
                    ignore_unmatched: true,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&["code_host_urn", "options"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.code_host_urn, "https://github.example.com/");
    let o = updated.options.unwrap();
    assert!(o.ignore_unmatched);
    assert_eq!(o.rate_limit_per_minute, 0);
    assert!(o.push_branch_filter.is_empty());
    assert_eq!(o.min_sync_interval, None);

    // What Get shows is what Update answered.
    let got = client
        .get_receiver(app.req(GetReceiverRequest { id: r.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.code_host_urn, "https://github.example.com/");
    assert_eq!(got.name, "after");
    app.stop().await;
}

async fn update_refuses_unknown_paths_id_kind_and_an_empty_mask(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = create(&app, github("fixed")).await.receiver.unwrap();
    let mut client = app.receivers().await;
    for (paths, needle) in [
        (vec!["colour"], "unknown update_mask path"),
        (vec!["options.nope"], "unknown update_mask path"),
        (vec!["id"], "id cannot be changed"),
        (vec!["code_host_kind"], "code_host_kind cannot be changed"),
        (vec!["url"], "output only"),
        (vec![], "update_mask is required"),
        (
            vec!["name", "code_host_kind"],
            "code_host_kind cannot be changed",
        ),
    ] {
        let err = client
            .update_receiver(app.req(UpdateReceiverRequest {
                receiver: Some(proto::Receiver {
                    id: r.id.clone(),
                    name: "changed".into(),
                    code_host_kind: CodeHostKind::Gitlab as i32,
                    ..Default::default()
                }),
                update_mask: mask(&paths),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{paths:?}");
        assert!(
            err.message().contains(needle),
            "{paths:?}: {}",
            err.message()
        );
    }
    let got = client
        .get_receiver(app.req(GetReceiverRequest { id: r.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name, "fixed", "a refused update changes nothing");
    assert_eq!(got.code_host_kind, CodeHostKind::Github as i32);
    assert_eq!(got.update_time, r.update_time);
    app.stop().await;
}

async fn update_to_a_name_in_use_is_already_exists(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    create(&app, github("taken")).await;
    let r = create(&app, github("mine")).await.receiver.unwrap();
    let err = app
        .receivers()
        .await
        .update_receiver(app.req(UpdateReceiverRequest {
            receiver: Some(proto::Receiver {
                id: r.id,
                name: "taken".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("\"taken\""), "{}", err.message());
    app.stop().await;
}

async fn listing_is_in_creation_order_and_pages_with_a_token(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut created = Vec::new();
    for i in 0..53 {
        created.push(
            create(&app, github(&format!("r{i:02}")))
                .await
                .receiver
                .unwrap()
                .id,
        );
    }
    let mut client = app.receivers().await;
    // The default page is 50.
    let first = client
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.receivers.len(), 50);
    assert_eq!(first.total_size, 53);
    assert!(!first.next_page_token.is_empty());

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_receivers(app.req(ListReceiversRequest {
                page_size: 7,
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(page.receivers.len() <= 7);
        assert_eq!(page.total_size, 53);
        seen.extend(page.receivers.into_iter().map(|r| r.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, created, "every receiver once, oldest first");
    app.stop().await;
}

async fn listing_filters_by_kind_and_counts_all_matches(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for i in 0..3 {
        create(&app, github(&format!("gh{i}"))).await;
    }
    let mut lab = github("gl");
    lab.code_host_kind = CodeHostKind::Gitlab as i32;
    lab.code_host_urn = "https://gitlab.com".into();
    create(&app, lab).await;
    let page = app
        .receivers()
        .await
        .list_receivers(app.req(ListReceiversRequest {
            code_host_kind: CodeHostKind::Github as i32,
            page_size: 2,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_size, 3);
    assert_eq!(page.receivers.len(), 2);
    assert!(
        page.receivers
            .iter()
            .all(|r| r.code_host_kind == CodeHostKind::Github as i32)
    );
    // A token made for one filter is refused under another.
    let err = app
        .receivers()
        .await
        .list_receivers(app.req(ListReceiversRequest {
            code_host_kind: CodeHostKind::Gitlab as i32,
            page_token: page.next_page_token,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    app.stop().await;
}

async fn listing_refuses_bad_page_sizes_and_tokens(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    create(&app, github("one")).await;
    let mut client = app.receivers().await;
    for (size, token) in [(501, ""), (-1, ""), (10, "not-a-token"), (10, "djF8eHx5fA")] {
        let err = client
            .list_receivers(app.req(ListReceiversRequest {
                page_size: size,
                page_token: token.into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{size} {token:?}");
    }
    let page = client
        .list_receivers(app.req(ListReceiversRequest {
            page_size: 500,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.receivers.len(), 1);
    assert!(page.next_page_token.is_empty());
    app.stop().await;
}

async fn missing_ids_are_not_found_and_malformed_ids_invalid(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut client = app.receivers().await;
    let missing = uuid::Uuid::new_v4().to_string();
    for (id, code) in [
        (missing.as_str(), Code::NotFound),
        ("not-a-uuid", Code::InvalidArgument),
        ("", Code::InvalidArgument),
    ] {
        let get = client
            .get_receiver(app.req(GetReceiverRequest { id: id.into() }))
            .await
            .unwrap_err();
        assert_eq!(get.code(), code, "get {id:?}");
        let delete = client
            .delete_receiver(app.req(DeleteReceiverRequest { id: id.into() }))
            .await
            .unwrap_err();
        assert_eq!(delete.code(), code, "delete {id:?}");
        let rotate = client
            .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
                id: id.into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(rotate.code(), code, "rotate {id:?}");
        let update = client
            .update_receiver(app.req(UpdateReceiverRequest {
                receiver: Some(proto::Receiver {
                    id: id.into(),
                    name: "x".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
            }))
            .await
            .unwrap_err();
        assert_eq!(update.code(), code, "update {id:?}");
    }
    let get = client
        .get_receiver(app.req(GetReceiverRequest {
            id: missing.clone(),
        }))
        .await
        .unwrap_err();
    assert!(get.message().contains(&missing), "{}", get.message());
    app.stop().await;
}

async fn a_deleted_receiver_is_gone(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = create(&app, github("doomed")).await.receiver.unwrap();
    let kept = create(&app, github("kept")).await.receiver.unwrap();
    let mut client = app.receivers().await;
    client
        .delete_receiver(app.req(DeleteReceiverRequest { id: r.id.clone() }))
        .await
        .unwrap();
    let err = client
        .get_receiver(app.req(GetReceiverRequest { id: r.id.clone() }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .delete_receiver(app.req(DeleteReceiverRequest { id: r.id }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let listed = client
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.receivers.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&kept.id]
    );
    // The name is free again.
    create(&app, github("doomed")).await;
    app.stop().await;
}
