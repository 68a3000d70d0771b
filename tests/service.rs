//! The service as a whole: admin access, start-up rules, /healthz.

mod common;

use common::{Engine, TestApp, TestDatabase, test_config};
use hookgate::admin::proto::{CodeHostKind, CreateReceiverRequest, ListReceiversRequest};
use hookgate::app::Application;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

on_both_engines!(
    with_an_admin_token_every_admin_call_needs_it,
    health_and_reflection_stay_open_without_the_token,
    healthz_answers_200_when_the_database_answers,
    the_data_directory_and_database_files_it_makes_are_private,
    the_ingress_does_not_serve_metrics_by_default,
    the_pool_opens_at_most_database_max_connections,
);

/// `--database-max-connections`: the pool opens at most that many connections however many
/// queries wait for one, and by default 10 on PostgreSQL and 8 (readers) on SQLite; the flag
/// takes no fewer than 2 (PostgreSQL keeps one for LISTEN).
async fn the_pool_opens_at_most_database_max_connections(engine: Engine) {
    use clap::Parser as _;
    use hookgate::db::{SqliteDurability, connect_with};
    use sea_orm::ConnectionTrait;
    let flag = |value: &str| {
        hookgate::config::Cli::try_parse_from(["hookgate", "--database-max-connections", value])
            .map(|cli| cli.config.database_max_connections)
    };
    assert_eq!(flag("4").unwrap(), Some(4));
    let refused = flag("1").unwrap_err().to_string();
    assert!(refused.contains("--database-max-connections"), "{refused}");

    // A query that keeps its connection busy for a while.
    let slow = match engine {
        Engine::Postgres => "SELECT pg_sleep(0.2)",
        Engine::Sqlite => {
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) \
             SELECT COUNT(*) FROM n"
        }
    };
    let default = match engine {
        Engine::Postgres => hookgate::db::POSTGRES_MAX_CONNECTIONS,
        Engine::Sqlite => hookgate::db::SQLITE_MAX_READERS,
    };
    let db = TestDatabase::new(engine).await;
    for (max, expected) in [(Some(3), 3), (None, default)] {
        let conn = connect_with(&db.url, SqliteDurability::Full, max)
            .await
            .unwrap();
        let busy: Vec<_> = (0..16)
            .map(|_| {
                let conn = conn.clone();
                tokio::spawn(async move { conn.execute_unprepared(slow).await.unwrap() })
            })
            .collect();
        for task in busy {
            task.await.unwrap();
        }
        let opened = match engine {
            Engine::Postgres => conn.get_postgres_connection_pool().size(),
            Engine::Sqlite => conn.get_sqlite_connection_pool().size(),
        };
        assert_eq!(opened, expected, "--database-max-connections {max:?}");
        conn.close().await.unwrap();
    }
    db.drop_database().await;
}

async fn with_an_admin_token_every_admin_call_needs_it(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| c.admin_token = Some("s3cret-admin".into())).await;
    let mut client = app.receivers().await;
    let create = || CreateReceiverRequest {
        name: "guarded".into(),
        code_host_kind: CodeHostKind::Github as i32,
        code_host_urn: "https://github.com".into(),
        ..Default::default()
    };

    let err = client.create_receiver(create()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("authorization: Bearer"),
        "{}",
        err.message()
    );

    for bad in ["Bearer wrong", "s3cret-admin", "Basic czNjcmV0LWFkbWlu"] {
        let mut req = tonic::Request::new(create());
        req.metadata_mut()
            .insert("authorization", bad.parse().unwrap());
        let err = client.create_receiver(req).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{bad}");
    }
    let mut req = tonic::Request::new(ListReceiversRequest::default());
    req.metadata_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    assert_eq!(
        client.list_receivers(req).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // Nothing was created by the refused calls; the right token works.
    let listed = client
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0);
    client.create_receiver(app.req(create())).await.unwrap();
    app.stop().await;
}

async fn health_and_reflection_stay_open_without_the_token(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| c.admin_token = Some("s3cret-admin".into())).await;
    let mut health = HealthClient::new(app.channel().await);
    for service in ["", "hookgate.v1.ReceiverService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.status, 1, "{service:?} is SERVING");
    }

    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(app.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("reflection lists services");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"hookgate.v1.ReceiverService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    app.stop().await;
}

async fn the_ingress_does_not_serve_metrics_by_default(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, _) = app
        .create_receiver("listed", CodeHostKind::Github, "https://github.com")
        .await;
    // An unsigned attempt: counted under the receiver's id.
    assert_eq!(app.post(&id, &[], b"{}".to_vec()).await.status(), 401);
    let response = reqwest::get(format!("http://{}/metrics", app.http_addr))
        .await
        .expect("the ingress answers");
    let status = response.status();
    let body = response.text().await.expect("a body");
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains(&id), "{body}");
    app.stop().await;
}

/// The permission bits of `path`.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn the_data_directory_and_database_files_it_makes_are_private(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    // A data directory that does not exist yet, with a parent that does not either; on SQLite
    // the default database in it.
    let data_dir = db.dir.path().join("var/hookgate");
    let app = TestApp::start(db, |c| {
        c.data_dir = data_dir.clone();
        if engine == Engine::Sqlite {
            c.database_url = None;
        }
    })
    .await;
    // Something written, so SQLite's write-ahead log and shared-memory files are in use.
    app.create_receiver("private", CodeHostKind::Github, "https://github.com")
        .await;
    let mut files = vec!["secret.key"];
    if engine == Engine::Sqlite {
        files.extend(["hookgate.db", "hookgate.db-wal", "hookgate.db-shm"]);
    }
    let modes: Vec<(&str, String)> = std::iter::once(("the data directory", mode(&data_dir)))
        .chain(files.iter().map(|name| (*name, mode(&data_dir.join(name)))))
        .map(|(name, mode)| (name, format!("{mode:04o}")))
        .collect();
    let private: Vec<(&str, String)> = modes
        .iter()
        .map(|(name, _)| {
            (
                *name,
                if name.contains("directory") {
                    "0700"
                } else {
                    "0600"
                }
                .to_owned(),
            )
        })
        .collect();
    assert_eq!(modes, private);
    app.stop().await;
}

async fn healthz_answers_200_when_the_database_answers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = reqwest::get(format!("http://{}/healthz", app.http_addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn serve_refuses_a_non_loopback_admin_address_without_a_token() {
    let db = TestDatabase::new(Engine::Sqlite).await;
    let mut config = test_config(&db);
    config.grpc_addr = "0.0.0.0:0".parse().unwrap();
    let err = Application::build(&config)
        .await
        .err()
        .expect("start-up is refused");
    let message = format!("{err:#}");
    assert!(message.contains("--admin-token"), "{message}");
    assert!(message.contains("HOOKGATE_ADMIN_TOKEN"), "{message}");

    // A blank token counts as none; a real one lets it start.
    config.admin_token = Some("   ".into());
    assert!(Application::build(&config).await.is_err());
    config.admin_token = Some("a-real-token".into());
    assert!(Application::build(&config).await.is_ok());
}

#[tokio::test]
async fn a_public_url_sets_the_base_of_receiver_urls() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.public_url = Some("https://hooks.example.com/".into())
    })
    .await;
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: "public".into(),
            code_host_kind: CodeHostKind::Gitlab as i32,
            code_host_urn: "https://gitlab.com".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let r = created.receiver.unwrap();
    assert_eq!(
        r.url,
        format!("https://hooks.example.com/.api/webhooks/{}", r.id)
    );
    app.stop().await;
}

/// `--sqlite-synchronous`: `full` (the default) syncs SQLite's log at every commit, `normal`
/// leaves it to the operating system; both the pool and its write connection follow it, and the
/// write connection has the pool's other settings.
#[tokio::test]
async fn sqlite_commits_are_synced_as_sqlite_synchronous_says() {
    use hookgate::db::{SqliteDurability, connect_with};
    use sea_orm::{ConnectionTrait, Statement};
    for (durability, expected) in [(SqliteDurability::Full, 2), (SqliteDurability::Normal, 1)] {
        let db = TestDatabase::new(Engine::Sqlite).await;
        let conn = connect_with(&db.url, durability, None).await.unwrap();
        let pragma = Statement::from_string(conn.get_database_backend(), "PRAGMA synchronous");
        let read: i32 = conn
            .query_one_raw(pragma.clone())
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        let txn = conn.begin_write().await.unwrap();
        let written: i32 = txn
            .query_one_raw(pragma)
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        // The write connection has every other setting too (foreign keys, for the cascades).
        let foreign_keys: i32 = txn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                "PRAGMA foreign_keys",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        txn.rollback().await.unwrap();
        assert_eq!((read, written), (expected, expected), "{durability:?}");
        assert_eq!(foreign_keys, 1);
        conn.close().await.unwrap();
    }
    // The default is `full`.
    let config = test_config(&TestDatabase::new(Engine::Sqlite).await);
    assert_eq!(config.sqlite_synchronous, SqliteDurability::Full);
}
