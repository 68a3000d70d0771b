//! Receiver secrets at rest, on SQLite and PostgreSQL: never stored in plain text (the raw
//! database files and columns are searched), readable with the key in force and with no other,
//! the key made on first start, start-up errors for a missing, wrong or malformed key (through
//! the built binary, as an operator meets them), `hookgate rotate-key`, and the upgrade of a
//! database an older hookgate filled with plain-text secrets.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::binary::{Served, hookgate, run_to_exit};
use common::{Engine, TestApp, TestDatabase, fixture, host_headers};
use hookgate::admin::proto::{
    CodeHostKind, CreateReceiverRequest, RotateReceiverSecretRequest,
    RotateReceiverSigningTokenRequest, SendTestDeliveryRequest,
};
use hookgate::secret_key::SecretKey;
use sea_orm::{ConnectionTrait, Database, Statement};

use CodeHostKind::{Generic, Github as Gh, Gitlab as Gl};

on_both_engines!(
    no_secret_current_or_previous_is_ever_stored_in_the_database,
    deliveries_signed_with_the_current_and_previous_secret_verify_after_a_restart_with_the_same_key,
    a_database_copied_without_its_key_does_not_start_and_holds_no_readable_secret,
    a_wrong_key_file_stops_start_up_with_exit_code_1_and_names_the_key_needed,
    rotate_key_re_encrypts_every_secret_so_that_only_the_new_key_opens_them,
    rotate_key_with_a_wrong_current_key_fails_and_changes_nothing,
    a_rotate_key_that_fails_midway_leaves_every_secret_as_it_was,
    plain_text_secrets_of_an_older_hookgate_are_encrypted_at_start_up_and_still_verify,
    a_replica_left_running_through_rotate_key_writes_and_reads_no_secret_with_the_old_key,
    rotate_key_re_encrypts_gitlab_signing_tokens_too,
);

/// A receiver's secret columns as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawSecrets {
    id: String,
    secret: String,
    secret_key_id: Option<String>,
    previous_secret: Option<String>,
    previous_secret_key_id: Option<String>,
}

/// Every receiver's secret columns, in creation order, read straight from the database.
async fn raw_secrets(url: &str) -> Vec<RawSecrets> {
    let db = Database::connect(url)
        .await
        .expect("the test database opens");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, secret, secret_key_id, previous_secret, previous_secret_key_id \
             FROM receivers ORDER BY create_time, id",
        ))
        .await
        .expect("the receivers are read");
    let raw = rows
        .iter()
        .map(|r| RawSecrets {
            id: r.try_get("", "id").unwrap(),
            secret: r.try_get("", "secret").unwrap(),
            secret_key_id: r.try_get("", "secret_key_id").unwrap(),
            previous_secret: r.try_get("", "previous_secret").unwrap(),
            previous_secret_key_id: r.try_get("", "previous_secret_key_id").unwrap(),
        })
        .collect();
    db.close().await.ok();
    raw
}

/// The key id the database records as in force.
async fn recorded_key_id(url: &str) -> Option<String> {
    let db = Database::connect(url)
        .await
        .expect("the test database opens");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT key_id FROM secret_key",
        ))
        .await
        .expect("the key record is read");
    db.close().await.ok();
    row.map(|r| r.try_get("", "key_id").unwrap())
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The SQLite database's files as they are on disk: the database, and its write-ahead log and
/// shared-memory index where they exist.
fn sqlite_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let files: Vec<_> = ["hookgate.db", "hookgate.db-wal", "hookgate.db-shm"]
        .iter()
        .map(|name| dir.join(name))
        .filter(|path| path.exists())
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a database file can be read");
            (path, bytes)
        })
        .collect();
    assert!(
        files.iter().any(|(p, _)| p.ends_with("hookgate.db")),
        "the database file exists in {}",
        dir.display()
    );
    files
}

/// What `strings -a` prints for the file, or `None` (with a printed reason) without `strings`.
fn strings_of(path: &Path) -> Option<String> {
    match Command::new("strings").arg("-a").arg(path).output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => {
            eprintln!("skipped: `strings` is not installed, so only the raw bytes are searched");
            None
        }
    }
}

/// Every table of a PostgreSQL database, each row as PostgreSQL prints it.
async fn postgres_text(url: &str) -> String {
    let db = Database::connect(url)
        .await
        .expect("the test database opens");
    let backend = db.get_database_backend();
    let tables = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'public'",
        ))
        .await
        .unwrap();
    let mut text = String::new();
    for table in tables {
        let name: String = table.try_get("", "name").unwrap();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT t::text AS row FROM \"{name}\" t"),
            ))
            .await
            .unwrap();
        for row in rows {
            let row: String = row.try_get("", "row").unwrap();
            text.push_str(&row);
            text.push('\n');
        }
    }
    db.close().await.ok();
    text
}

/// Asserts that none of `secrets` is stored anywhere in the database: on SQLite in the raw bytes
/// (and `strings`) of its files, on PostgreSQL in any row of any table, the raw secret columns
/// included. `known` is a value that is stored in plain text (a receiver's name): finding it
/// proves the search looks at the stored data.
async fn assert_no_secret_stored(db: &TestDatabase, secrets: &[String], known: &str) {
    if db.url.starts_with("sqlite:") {
        let files = sqlite_files(db.dir.path());
        assert!(
            files.iter().any(|(_, bytes)| contains(bytes, known)),
            "{known:?} is stored, so the search reads the stored data"
        );
        for (path, bytes) in &files {
            for secret in secrets {
                assert!(
                    !contains(bytes, secret),
                    "secret {secret} occurs in {}",
                    path.display()
                );
            }
            if let Some(text) = strings_of(path) {
                for secret in secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "`strings {}` shows secret {secret}",
                        path.display()
                    );
                }
            }
        }
    } else {
        let text = postgres_text(&db.url).await;
        assert!(
            text.contains(known),
            "{known:?} is stored, so the search reads the stored data"
        );
        for secret in secrets {
            assert!(!text.contains(secret.as_str()), "secret {secret} is stored");
        }
    }
    for row in raw_secrets(&db.url).await {
        for secret in secrets {
            assert!(!row.secret.contains(secret.as_str()), "{row:?}");
            assert!(
                !row.previous_secret
                    .as_deref()
                    .unwrap_or_default()
                    .contains(secret.as_str()),
                "{row:?}"
            );
        }
    }
}

/// A new key file `name` in `dir` (mode 0600); returns its path and its key id.
fn key_file(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let key = SecretKey::generate();
    key.write_new(&path).expect("a key file can be written");
    (path, key.id().to_string())
}

/// The key id of the key in a file.
fn key_id_of(path: &Path) -> String {
    SecretKey::read(path)
        .expect("the key file reads")
        .id()
        .to_string()
}

/// Rotates the receiver's secret with an overlap of an hour; returns the new secret.
async fn rotate_with_overlap(app: &TestApp, id: &str) -> String {
    let rotated = app
        .receivers()
        .await
        .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
            id: id.to_owned(),
            secret: String::new(),
            overlap: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
        }))
        .await
        .expect("the secret is rotated")
        .into_inner();
    assert!(rotated.previous_secret_expire_time.is_some());
    rotated.secret
}

/// Posts a GitHub push signed with `secret`; returns the status.
async fn github_push(app: &TestApp, id: &str, secret: &str) -> u16 {
    let body = fixture("github/push.branch-updated.json");
    let key = uuid::Uuid::new_v4().to_string();
    let headers = host_headers(Gh, "push", &key, Some(secret), &body);
    app.post(id, &headers, body).await.status().as_u16()
}

/// Posts a GitLab merge request event with `token`; returns the status.
async fn gitlab_merge_request(app: &TestApp, id: &str, token: &str) -> u16 {
    let body = fixture("gitlab/merge_request.open.json");
    let key = uuid::Uuid::new_v4().to_string();
    let headers = host_headers(Gl, "Merge Request Hook", &key, Some(token), &body);
    app.post(id, &headers, body).await.status().as_u16()
}

/// `hookgate serve` on the test's database with `args` added; it must fail at start-up. Returns
/// what it printed.
fn serve_fails(db: &TestDatabase, args: &[&OsStr]) -> String {
    let mut command = hookgate(db);
    command
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .args(args);
    let out = run_to_exit(command);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "start-up must fail: {stderr}");
    stderr
}

/// `hookgate rotate-key --new-key-file new` on the test's database, with `args` added.
fn rotate_key(db: &TestDatabase, new: &Path, args: &[&OsStr]) -> std::process::Output {
    let mut command = hookgate(db);
    command
        .arg("rotate-key")
        .arg("--new-key-file")
        .arg(new)
        .args(args);
    run_to_exit(command)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn no_secret_current_or_previous_is_ever_stored_in_the_database(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("github-main", Gh, "https://github.com")
        .await;
    let gitlab = app
        .create_receiver("gitlab-main", Gl, "https://gitlab.example.com")
        .await;
    let trigger = app
        .create_receiver("trigger-main", Generic, "https://git.example.com")
        .await;
    let rotated = rotate_with_overlap(&app, &github.0).await;

    // Deliveries that carry or prove every secret: signed with the previous and the current
    // secret, a GitLab token in a header, a trigger secret in the path, a test delivery.
    assert_eq!(github_push(&app, &github.0, &github.1).await, 202);
    assert_eq!(github_push(&app, &github.0, &rotated).await, 202);
    assert_eq!(gitlab_merge_request(&app, &gitlab.0, &gitlab.1).await, 202);
    let called = reqwest::Client::new()
        .post(format!(
            "http://{}/.api/webhooks/{}/{}",
            app.http_addr, trigger.0, trigger.1
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 202);
    let sent = app
        .receivers()
        .await
        .send_test_delivery(app.req(SendTestDeliveryRequest {
            id: gitlab.0.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    // A test delivery is stored as a test at once: 200, not 202.
    assert_eq!(sent.http_status, 200, "{sent:?}");

    let secrets = vec![github.1, rotated, gitlab.1, trigger.1];
    // While the service runs (on SQLite the write-ahead log holds the latest pages)...
    assert_no_secret_stored(&app.db, &secrets, "github-main").await;
    let db = app.shut_down().await;
    // ...and once it has stopped.
    assert_no_secret_stored(&db, &secrets, "github-main").await;
    let raw = raw_secrets(&db.url).await;
    let key_id = recorded_key_id(&db.url).await.expect("a key is recorded");
    assert_eq!(key_id, key_id_of(&db.dir.path().join("secret.key")));
    for row in &raw {
        assert_eq!(
            row.secret_key_id.as_deref(),
            Some(key_id.as_str()),
            "{row:?}"
        );
    }
    assert!(
        raw.iter()
            .any(|r| r.previous_secret_key_id.as_deref() == Some(key_id.as_str())),
        "the previous secret is sealed too: {raw:?}"
    );
    db.drop_database().await;
}

async fn deliveries_signed_with_the_current_and_previous_secret_verify_after_a_restart_with_the_same_key(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, old) = app.create_receiver("gh", Gh, "https://github.com").await;
    let new = rotate_with_overlap(&app, &id).await;
    let db = app.shut_down().await;

    let app = TestApp::start(db, |_| {}).await;
    assert_eq!(
        github_push(&app, &id, &old).await,
        202,
        "the previous secret"
    );
    assert_eq!(
        github_push(&app, &id, &new).await,
        202,
        "the current secret"
    );
    assert_eq!(github_push(&app, &id, "not-the-secret").await, 401);
    app.stop().await;
}

#[tokio::test]
async fn a_key_made_on_first_start_is_mode_0600_and_its_making_is_logged() {
    let db = TestDatabase::new(Engine::Sqlite).await;
    let path = db.dir.path().join("secret.key");
    assert!(!path.exists());
    let (status, log) = Served::start(&db).terminate();
    assert!(status.success(), "{log}");
    let mode = std::fs::metadata(&path)
        .expect("the key file is made")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{log}");
    let id = key_id_of(&path);
    assert!(log.contains("generated a new secret key"), "{log}");
    assert!(log.contains(&path.display().to_string()), "{log}");
    assert!(log.contains(&id), "{log}");
    assert!(log.contains("back it up"), "{log}");

    // The next start uses it, and makes none.
    let made = std::fs::read(&path).unwrap();
    let (status, log) = Served::start(&db).terminate();
    assert!(status.success(), "{log}");
    assert!(!log.contains("generated a new secret key"), "{log}");
    assert!(log.contains(&id), "{log}");
    assert_eq!(std::fs::read(&path).unwrap(), made);
}

async fn a_database_copied_without_its_key_does_not_start_and_holds_no_readable_secret(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, old) = app
        .create_receiver("github-main", Gh, "https://github.com")
        .await;
    let new = rotate_with_overlap(&app, &id).await;
    let db = app.shut_down().await;
    let key_id = key_id_of(&db.dir.path().join("secret.key"));

    let copy = db.copy_to_new_data_dir();
    let stderr = serve_fails(&copy, &[]);
    assert!(stderr.contains(&key_id), "{stderr}");
    assert!(stderr.contains("no key was given"), "{stderr}");
    assert!(stderr.contains("--secret-key-file"), "{stderr}");
    assert!(
        !copy.dir.path().join("secret.key").exists(),
        "no new key is made for a database that has one"
    );
    assert_no_secret_stored(&copy, &[old.clone(), new.clone()], "github-main").await;

    // With its key, the original starts and verifies as before.
    let app = TestApp::start(db, |_| {}).await;
    assert_eq!(github_push(&app, &id, &new).await, 202);
    assert_eq!(github_push(&app, &id, &old).await, 202);
    app.stop().await;
}

async fn a_wrong_key_file_stops_start_up_with_exit_code_1_and_names_the_key_needed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let db = app.shut_down().await;
    let right = db.dir.path().join("secret.key");
    let keys = tempfile::tempdir().unwrap();
    let (wrong, wrong_id) = key_file(keys.path(), "wrong.key");

    let stderr = serve_fails(&db, &[OsStr::new("--secret-key-file"), wrong.as_os_str()]);
    for expected in [
        wrong.display().to_string(),
        wrong_id.clone(),
        key_id_of(&right),
        "every replica sharing a database needs the same --secret-key-file".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} missing: {stderr}");
    }
    // The environment variable is the same setting.
    let mut command = hookgate(&db);
    command
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .env("HOOKGATE_SECRET_KEY_FILE", &wrong);
    let out = run_to_exit(command);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&wrong_id),
        "{}",
        text(&out.stderr)
    );

    // The right key, given the same way, starts it.
    let app = TestApp::start(db, |c| c.secret_key_file = Some(right)).await;
    assert_eq!(github_push(&app, &id, &secret).await, 202);
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_key_file_stops_start_up_naming_the_file_and_what_is_wrong() {
    use base64::Engine as _;
    let db = TestDatabase::new(Engine::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
    let cases = [
        (
            "not-base64.key",
            Some("this is not a key!\n"),
            "is not base64",
        ),
        (
            "short.key",
            Some(short.as_str()),
            "holds 16 bytes once base64-decoded, not 32",
        ),
        ("empty.key", Some(""), "is empty"),
        ("missing.key", None, "cannot read the secret key file"),
    ];
    for (name, content, expected) in cases {
        let path = keys.path().join(name);
        if let Some(content) = content {
            std::fs::write(&path, content).unwrap();
        }
        let stderr = serve_fails(&db, &[OsStr::new("--secret-key-file"), path.as_os_str()]);
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
    }
    assert!(
        !db.dir.path().join("secret.key").exists(),
        "a bad key file given is an error, never a reason to make a key"
    );
}

#[tokio::test]
async fn a_key_file_its_group_or_others_may_read_is_used_with_a_warning() {
    let db = TestDatabase::new(Engine::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    let (path, id) = key_file(keys.path(), "open.key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let served = Served::start_with(&db, &[OsStr::new("--secret-key-file"), path.as_os_str()]);
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!("chmod 600 {}", path.display())),
        "{log}"
    );
    assert!(log.contains("0644"), "{log}");
    assert!(log.contains(&id), "the key is used: {log}");
}

async fn rotate_key_re_encrypts_every_secret_so_that_only_the_new_key_opens_them(engine: Engine) {
    let keys = tempfile::tempdir().unwrap();
    let (old_key, old_id) = key_file(keys.path(), "old.key");
    let (new_key, new_id) = key_file(keys.path(), "new.key");
    let app = TestApp::spawn_with(engine, |c| c.secret_key_file = Some(old_key.clone())).await;
    let (gh, gh_old) = app.create_receiver("gh", Gh, "https://github.com").await;
    let gh_new = rotate_with_overlap(&app, &gh).await;
    let (gl, gl_token) = app
        .create_receiver("gl", Gl, "https://gitlab.example.com")
        .await;
    let db = app.shut_down().await;
    let before = raw_secrets(&db.url).await;
    assert_eq!(
        recorded_key_id(&db.url).await.as_deref(),
        Some(old_id.as_str())
    );

    let out = rotate_key(
        &db,
        &new_key,
        &[OsStr::new("--secret-key-file"), old_key.as_os_str()],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "Re-encrypted 3 secrets of 2 receivers under key {new_id} (was {old_id})"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "Point --secret-key-file (HOOKGATE_SECRET_KEY_FILE) of every replica at {}",
            new_key.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("Keep the old key"), "{stdout}");

    let after = raw_secrets(&db.url).await;
    assert_eq!(
        recorded_key_id(&db.url).await.as_deref(),
        Some(new_id.as_str())
    );
    assert_eq!(after.len(), before.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.secret_key_id.as_deref(), Some(new_id.as_str()), "{a:?}");
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.previous_secret.is_some(), b.previous_secret.is_some());
        if a.previous_secret.is_some() {
            assert_eq!(a.previous_secret_key_id.as_deref(), Some(new_id.as_str()));
            assert_ne!(a.previous_secret, b.previous_secret);
        }
    }

    // The old key no longer starts the service...
    let stderr = serve_fails(&db, &[OsStr::new("--secret-key-file"), old_key.as_os_str()]);
    assert!(stderr.contains(&new_id), "{stderr}");
    // ...the new one does, and the receivers' unchanged secrets verify.
    let app = TestApp::start(db, |c| c.secret_key_file = Some(new_key.clone())).await;
    assert_eq!(
        github_push(&app, &gh, &gh_old).await,
        202,
        "the previous secret"
    );
    assert_eq!(
        github_push(&app, &gh, &gh_new).await,
        202,
        "the current secret"
    );
    assert_eq!(gitlab_merge_request(&app, &gl, &gl_token).await, 202);
    app.stop().await;
}

async fn rotate_key_with_a_wrong_current_key_fails_and_changes_nothing(engine: Engine) {
    let keys = tempfile::tempdir().unwrap();
    let (key, key_id) = key_file(keys.path(), "in-force.key");
    let (wrong, _) = key_file(keys.path(), "wrong.key");
    let (new_key, _) = key_file(keys.path(), "new.key");
    let app = TestApp::spawn_with(engine, |c| c.secret_key_file = Some(key.clone())).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let db = app.shut_down().await;
    let before = raw_secrets(&db.url).await;

    let out = rotate_key(
        &db,
        &new_key,
        &[OsStr::new("--secret-key-file"), wrong.as_os_str()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not the key this database's receiver secrets are encrypted under"),
        "{stderr}"
    );
    assert_eq!(raw_secrets(&db.url).await, before);
    assert_eq!(recorded_key_id(&db.url).await, Some(key_id));

    let app = TestApp::start(db, |c| c.secret_key_file = Some(key)).await;
    assert_eq!(github_push(&app, &id, &secret).await, 202);
    app.stop().await;
}

async fn a_rotate_key_that_fails_midway_leaves_every_secret_as_it_was(engine: Engine) {
    let keys = tempfile::tempdir().unwrap();
    let (key, key_id) = key_file(keys.path(), "in-force.key");
    let (new_key, _) = key_file(keys.path(), "new.key");
    let app = TestApp::spawn_with(engine, |c| c.secret_key_file = Some(key.clone())).await;
    let first = app.create_receiver("first", Gh, "https://github.com").await;
    let second = app
        .create_receiver("second", Gh, "https://github.com")
        .await;
    rotate_with_overlap(&app, &second.0).await;
    let last = app.create_receiver("last", Gh, "https://github.com").await;
    let db = app.shut_down().await;

    // The last receiver (rotated last) gets the first one's ciphertext, as if copied across
    // rows: same key, but bound to another receiver, so it does not open.
    let raw = raw_secrets(&db.url).await;
    assert_eq!(raw.last().map(|r| r.id.as_str()), Some(last.0.as_str()));
    let conn = Database::connect(db.url.as_str()).await.unwrap();
    conn.execute_unprepared(&format!(
        "UPDATE receivers SET secret = '{}' WHERE id = '{}'",
        raw[0].secret, last.0
    ))
    .await
    .unwrap();
    conn.close().await.ok();
    let before = raw_secrets(&db.url).await;

    let out = rotate_key(
        &db,
        &new_key,
        &[OsStr::new("--secret-key-file"), key.as_os_str()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&last.0), "{stderr}");
    assert!(stderr.contains("does not open"), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(
        raw_secrets(&db.url).await,
        before,
        "the receivers re-encrypted before the failure are rolled back"
    );
    assert_eq!(recorded_key_id(&db.url).await, Some(key_id));

    let app = TestApp::start(db, |c| c.secret_key_file = Some(key)).await;
    assert_eq!(github_push(&app, &first.0, &first.1).await, 202);
    assert_eq!(
        github_push(&app, &last.0, &first.1).await,
        503,
        "a ciphertext copied from another receiver opens for neither"
    );
    app.stop().await;
}

#[tokio::test]
async fn rotate_key_of_the_made_key_puts_the_new_key_in_the_data_dir_and_keeps_the_old_one() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let db = app.shut_down().await;
    let in_data_dir = db.dir.path().join("secret.key");
    let old_id = key_id_of(&in_data_dir);
    let keys = tempfile::tempdir().unwrap();
    let (new_key, new_id) = key_file(keys.path(), "new.key");

    let out = rotate_key(&db, &new_key, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let retired = db.dir.path().join(format!("secret.key.{old_id}.old"));
    assert!(
        stdout.contains(&format!(
            "{} now holds the new key; the old key was moved to {}",
            in_data_dir.display(),
            retired.display()
        )),
        "{stdout}"
    );
    assert_eq!(key_id_of(&in_data_dir), new_id);
    assert_eq!(key_id_of(&retired), old_id);
    let mode = std::fs::metadata(&in_data_dir)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // The same command line as before starts it, with the new key.
    let app = TestApp::start(db, |_| {}).await;
    assert_eq!(github_push(&app, &id, &secret).await, 202);
    app.stop().await;
}

async fn plain_text_secrets_of_an_older_hookgate_are_encrypted_at_start_up_and_still_verify(
    engine: Engine,
) {
    use migration::MigratorTrait;
    let db = TestDatabase::new(engine).await;
    // The schema of the version before secrets were encrypted, with its rows.
    let conn = hookgate::db::connect(&db.url).await.unwrap();
    migration::Migrator::up(conn.pool(), Some(5)).await.unwrap();
    let github = (
        uuid::Uuid::new_v4().to_string(),
        "plain-current-secret-0123456789".to_owned(),
    );
    let previous = "plain-previous-secret-0123456789".to_owned();
    let gitlab = (
        uuid::Uuid::new_v4().to_string(),
        "plain-gitlab-token-0123456789".to_owned(),
    );
    let far = 4_102_444_800_000_000i64; // 2100-01-01
    for (id, name, kind, urn, secret, prev, expire) in [
        (
            &github.0,
            "old-github",
            "GITHUB",
            "https://github.com/",
            &github.1,
            format!("'{previous}'"),
            far.to_string(),
        ),
        (
            &gitlab.0,
            "old-gitlab",
            "GITLAB",
            "https://gitlab.example.com/",
            &gitlab.1,
            "NULL".to_owned(),
            "NULL".to_owned(),
        ),
    ] {
        conn.execute_unprepared(&format!(
            "INSERT INTO receivers (id, name, code_host_kind, code_host_urn, secret, previous_secret, \
             previous_secret_expire_time, ignore_unmatched, min_sync_interval_ms, push_branch_filter, \
             rate_limit_per_minute, create_time, update_time, created_by, updated_by) \
             VALUES ('{id}', '{name}', '{kind}', '{urn}', '{secret}', {prev}, {expire}, FALSE, 0, '[]', 0, 1, 1, 'admin', 'admin')"
        ))
        .await
        .unwrap();
    }
    // More receivers, so the table spans pages whose freed space SQLite does not clear.
    let mut plain = vec![github.1.clone(), previous.clone(), gitlab.1.clone()];
    for n in 0..40 {
        let secret = format!("plain-filler-secret-{n:02}-0123456789");
        conn.execute_unprepared(&format!(
            "INSERT INTO receivers (id, name, code_host_kind, code_host_urn, secret, previous_secret, \
             previous_secret_expire_time, ignore_unmatched, min_sync_interval_ms, push_branch_filter, \
             rate_limit_per_minute, create_time, update_time, created_by, updated_by) \
             VALUES ('{}', 'filler-{n}', 'GITHUB', 'https://github.com/', '{secret}', '{secret}-previous', {far}, FALSE, 0, '[]', 0, 2, 2, 'admin', 'admin')",
            uuid::Uuid::new_v4()
        ))
        .await
        .unwrap();
        plain.push(format!("{secret}-previous"));
        plain.push(secret);
    }
    conn.close().await.ok();
    if engine == Engine::Sqlite {
        let files = sqlite_files(db.dir.path());
        assert!(
            files.iter().any(|(_, bytes)| contains(bytes, &github.1)),
            "the old database holds the secret in plain text, as the old version left it"
        );
    }

    let app = TestApp::start(db, |_| {}).await;
    let key_id = key_id_of(&app.db.dir.path().join("secret.key"));
    for row in raw_secrets(&app.db.url).await {
        assert_eq!(
            row.secret_key_id.as_deref(),
            Some(key_id.as_str()),
            "{row:?}"
        );
        if row.id == github.0 {
            assert_eq!(row.previous_secret_key_id.as_deref(), Some(key_id.as_str()));
        }
    }
    // Right after the upgrade (VACUUM, the log emptied), and after deliveries.
    assert_no_secret_stored(&app.db, &plain, "old-github").await;
    assert_eq!(github_push(&app, &github.0, &github.1).await, 202);
    assert_eq!(github_push(&app, &github.0, &previous).await, 202);
    assert_eq!(gitlab_merge_request(&app, &gitlab.0, &gitlab.1).await, 202);
    let db = app.shut_down().await;
    assert_no_secret_stored(&db, &plain, "old-github").await;

    // A second start finds nothing left to encrypt and changes nothing.
    let before = raw_secrets(&db.url).await;
    let app = TestApp::start(db, |_| {}).await;
    assert_eq!(raw_secrets(&app.db.url).await, before);
    app.stop().await;
}

async fn a_replica_left_running_through_rotate_key_writes_and_reads_no_secret_with_the_old_key(
    engine: Engine,
) {
    let keys = tempfile::tempdir().unwrap();
    let (old_key, _) = key_file(keys.path(), "old.key");
    let (new_key, new_id) = key_file(keys.path(), "new.key");
    let app = TestApp::spawn_with(engine, |c| c.secret_key_file = Some(old_key.clone())).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;

    // Against the documented procedure, the service is still running.
    let out = rotate_key(
        &app.db,
        &new_key,
        &[OsStr::new("--secret-key-file"), old_key.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let refused = app
        .receivers()
        .await
        .create_receiver(app.req(hookgate::admin::proto::CreateReceiverRequest {
            name: "after".to_owned(),
            code_host_kind: Gh as i32,
            code_host_urn: "https://github.com".to_owned(),
            ..Default::default()
        }))
        .await
        .expect_err("no secret is written under a retired key");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("restart this replica"),
        "{refused:?}"
    );
    assert!(refused.message().contains(&new_id), "{refused:?}");
    // The replica learns of the new key (a notification on PostgreSQL, the registry's version
    // on SQLite) and can open no secret under it: its deliveries are answered 503, so the code
    // host retries, until it is restarted with the new key.
    let mut status = 0;
    for _ in 0..50 {
        status = github_push(&app, &id, &secret).await;
        if status == 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 503,
        "a secret under the new key cannot be read: the code host retries"
    );
    let db = app.shut_down().await;
    assert!(
        raw_secrets(&db.url)
            .await
            .iter()
            .all(|r| r.secret_key_id.as_deref() == Some(new_id.as_str())),
        "every secret stays under the key in force"
    );

    let app = TestApp::start(db, |c| c.secret_key_file = Some(new_key)).await;
    assert_eq!(github_push(&app, &id, &secret).await, 202);
    app.stop().await;
}

#[tokio::test]
async fn a_lost_key_is_recovered_by_recording_a_new_one_and_rotating_each_secret_without_overlap() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (id, _) = app.create_receiver("gh", Gh, "https://github.com").await;
    let db = app.shut_down().await;
    std::fs::remove_file(db.dir.path().join("secret.key")).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, key_id) = key_file(keys.path(), "replacement.key");

    // docs/operations.md, "If the key is lost".
    let conn = Database::connect(db.url.as_str()).await.unwrap();
    conn.execute_unprepared(&format!(
        "DELETE FROM secret_key; INSERT INTO secret_key (id, key_id, update_time) VALUES (1, '{key_id}', 0);"
    ))
    .await
    .unwrap();
    conn.close().await.ok();
    let app = TestApp::start(db, |c| c.secret_key_file = Some(key)).await;
    let rotated = app
        .receivers()
        .await
        .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .expect("a rotation without overlap needs no old secret")
        .into_inner();
    assert_eq!(github_push(&app, &id, &rotated.secret).await, 202);
    app.stop().await;
}

/// A receiver's signing token columns as stored: (token, its key id, previous, its key id).
type RawTokens = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn raw_signing_tokens(url: &str) -> Vec<RawTokens> {
    let db = Database::connect(url)
        .await
        .expect("the test database opens");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT signing_token, signing_token_key_id, previous_signing_token, \
             previous_signing_token_key_id FROM receivers ORDER BY create_time, id",
        ))
        .await
        .expect("the receivers are read");
    let raw = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "signing_token").unwrap(),
                r.try_get("", "signing_token_key_id").unwrap(),
                r.try_get("", "previous_signing_token").unwrap(),
                r.try_get("", "previous_signing_token_key_id").unwrap(),
            )
        })
        .collect();
    db.close().await.ok();
    raw
}

/// Posts a GitLab push with `secret` as its token, signed with the signing token `token`.
async fn signed_gitlab_push(app: &TestApp, id: &str, secret: &str, token: &str) -> u16 {
    let body = fixture("gitlab/push.json");
    let webhook_id = uuid::Uuid::new_v4().to_string();
    let key = hookgate::receivers::SigningToken::parse(token)
        .expect("a valid token")
        .key();
    let now = hookgate::time::Timestamp::now().micros() / 1_000_000;
    let mut headers = host_headers(Gl, "Push Hook", &webhook_id, Some(secret), &body);
    headers.extend([
        ("webhook-id", webhook_id.clone()),
        ("webhook-timestamp", now.to_string()),
        (
            "webhook-signature",
            hookgate::hosts::standard_webhooks::sign(&key, &webhook_id, now, &body),
        ),
    ]);
    app.post(id, &headers, body).await.status().as_u16()
}

async fn rotate_key_re_encrypts_gitlab_signing_tokens_too(engine: Engine) {
    let keys = tempfile::tempdir().unwrap();
    let (old_key, old_id) = key_file(keys.path(), "old.key");
    let (new_key, new_id) = key_file(keys.path(), "new.key");
    let app = TestApp::spawn_with(engine, |c| c.secret_key_file = Some(old_key.clone())).await;
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: "gl".to_owned(),
            code_host_kind: Gl as i32,
            code_host_urn: "https://gitlab.example.com".to_owned(),
            generate_signing_token: true,
            ..Default::default()
        }))
        .await
        .expect("created")
        .into_inner();
    let id = created.receiver.unwrap().id;
    let old_token = created.signing_token;
    let new_token = app
        .receivers()
        .await
        .rotate_receiver_signing_token(app.req(RotateReceiverSigningTokenRequest {
            id: id.clone(),
            overlap: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
            ..Default::default()
        }))
        .await
        .expect("rotated")
        .into_inner()
        .signing_token;
    let db = app.shut_down().await;
    let before = raw_signing_tokens(&db.url).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].1.as_deref(), Some(old_id.as_str()));
    assert_eq!(before[0].3.as_deref(), Some(old_id.as_str()));

    let out = rotate_key(
        &db,
        &new_key,
        &[OsStr::new("--secret-key-file"), old_key.as_os_str()],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    // The secret, the signing token and the previous signing token.
    assert!(
        stdout.contains(&format!(
            "Re-encrypted 3 secrets of 1 receivers under key {new_id}"
        )),
        "{stdout}"
    );
    let after = raw_signing_tokens(&db.url).await;
    let (token, token_key, previous, previous_key) = &after[0];
    assert_eq!(token_key.as_deref(), Some(new_id.as_str()));
    assert_eq!(previous_key.as_deref(), Some(new_id.as_str()));
    assert_ne!(token, &before[0].0);
    assert_ne!(previous, &before[0].2);
    for plain in [&old_token, &new_token] {
        let base64 = plain.strip_prefix("whsec_").unwrap();
        for stored in [token, previous] {
            assert!(!stored.as_deref().unwrap().contains(base64));
        }
    }

    // Under the new key both tokens still verify.
    let app = TestApp::start(db, |c| c.secret_key_file = Some(new_key.clone())).await;
    for token in [&new_token, &old_token] {
        assert_eq!(
            signed_gitlab_push(&app, &id, &created.secret, token).await,
            202
        );
    }
    app.stop().await;
}

/// `hookgate rotate-key` takes the receivers' rows in the order an intake batch marks them (their
/// ids), so a replica left running on PostgreSQL cannot deadlock with it. Here the receiver with
/// the higher id was made first, and a transaction (an intake committer, marking receivers in id
/// order) holds the lower one's row while the rotation runs; once the rotation waits for a row,
/// the transaction takes the higher one's too. A rotation in creation order would hold the higher
/// row and wait for the lower: a deadlock, which PostgreSQL breaks by aborting one of the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hookgate_postgres),
    ignore = "set HOOKGATE_TEST_DATABASE_URL to run this PostgreSQL test"
)]
async fn rotate_key_takes_the_receivers_in_the_order_intake_marks_them() {
    use sea_orm::TransactionTrait;

    let keys = tempfile::tempdir().unwrap();
    let (old_key, _) = key_file(keys.path(), "old.key");
    let (new_key, new_id) = key_file(keys.path(), "new.key");
    let app = TestApp::spawn_with(Engine::Postgres, |c| {
        c.secret_key_file = Some(old_key.clone())
    })
    .await;
    let (a, _) = app.create_receiver("a", Gh, "https://github.com").await;
    let (b, _) = app.create_receiver("b", Gh, "https://github.com").await;
    let db = std::sync::Arc::new(app.shut_down().await);
    let (lower, higher) = if a < b { (a, b) } else { (b, a) };
    let conn = Database::connect(db.url.as_str()).await.unwrap();
    conn.execute_unprepared(&format!(
        "UPDATE receivers SET create_time = (SELECT MIN(create_time) FROM receivers) - 1 \
         WHERE id = '{higher}'"
    ))
    .await
    .unwrap();
    let take = |id: &str| {
        format!("UPDATE receivers SET last_delivery_time = last_delivery_time WHERE id = '{id}'")
    };

    let held = conn.begin().await.unwrap();
    held.execute_unprepared(&take(&lower)).await.unwrap();
    let (test_db, new) = (db.clone(), new_key.clone());
    let rotation = tokio::task::spawn_blocking(move || {
        rotate_key(
            &test_db,
            &new,
            &[OsStr::new("--secret-key-file"), old_key.as_os_str()],
        )
    });
    // Until the rotation waits for a row (the lower one, or with the higher one in hand).
    let watcher = Database::connect(db.url.as_str()).await.unwrap();
    let mut waiting = 0;
    for _ in 0..300 {
        let row = watcher
            .query_one_raw(Statement::from_string(
                watcher.get_database_backend(),
                "SELECT COUNT(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .unwrap()
            .unwrap();
        waiting = row.try_get::<i64>("", "n").unwrap();
        if waiting > 0 || rotation.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(waiting, 1, "the rotation waits for the held receiver row");
    let second = held.execute_unprepared(&take(&higher)).await;
    held.commit().await.unwrap();
    let out = rotation.await.unwrap();
    assert!(
        second.is_ok() && out.status.success(),
        "the transaction's second row: {second:?}; the rotation: {}",
        text(&out.stderr)
    );
    let after = raw_secrets(&db.url).await;
    assert_eq!(after.len(), 2);
    assert!(
        after
            .iter()
            .all(|r| r.secret_key_id.as_deref() == Some(new_id.as_str())),
        "{after:?}"
    );
    watcher.close().await.ok();
    conn.close().await.ok();
    db.drop_database().await;
}
