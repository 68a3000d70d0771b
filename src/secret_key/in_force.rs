//! The key in force, as the database records it: checked at every start before anything reads
//! a secret, written on first start, and the one-time encryption of secrets that an older
//! hookgate stored in plain text.

use std::path::Path;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set, Statement,
};

use super::{
    DATA_DIR_KEY_FILE, KeyFileError, KeyId, KeyOrigin, SecretBox, SecretKey, SecretKeyError, Slot,
    find_key,
};
use crate::db::Db;
use crate::entity::{receiver, secret_key};
use crate::time::Timestamp;

/// How many receivers a warning names at most.
const NAMED_AT_MOST: usize = 10;

/// Finds the key for this database and makes it the one in force, at start-up, after the
/// migrations: the `--secret-key-file` given, else `<data-dir>/secret.key`, else (only for a
/// database that has no key yet) a new key written there with mode 0600. A key other than the
/// database's, or a missing one, is an error; secrets still in plain text are encrypted, in one
/// transaction.
pub async fn prepare(
    db: &Db,
    key_file: Option<&Path>,
    data_dir: &Path,
) -> Result<SecretBox, SecretKeyError> {
    let recorded = recorded_key(db).await?;
    let mut generated = false;
    let (key, origin) = match find_key(key_file, data_dir)? {
        Some(found) => found,
        None => {
            let path = data_dir.join(DATA_DIR_KEY_FILE);
            if let Some(recorded) = recorded {
                return Err(SecretKeyError::Missing {
                    recorded,
                    expected: path,
                });
            }
            let key = SecretKey::generate();
            match key.write_new(&path) {
                Ok(()) => {
                    tracing::warn!(
                        path = %path.display(),
                        key_id = %key.id(),
                        "generated a new secret key for receiver secrets: back it up with the database, which cannot be read without it"
                    );
                    generated = true;
                    (key, KeyOrigin::DataDir(path))
                }
                // Another process on this data directory made one just now: use that.
                Err(KeyFileError::Unwritable { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    (SecretKey::read(&path)?, KeyOrigin::DataDir(path))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let wrong_key = |recorded: KeyId| SecretKeyError::WrongKey {
        path: origin.path().to_owned(),
        ours: key.id().clone(),
        recorded,
    };
    match recorded {
        Some(recorded) if &recorded != key.id() => return Err(wrong_key(recorded)),
        Some(_) => {}
        None => {
            // First start on this database (or on one an older hookgate made). Another replica
            // may be doing the same right now: the first record wins, and a replica that holds
            // another key finds out here.
            record_key(db, key.id(), false).await?;
            match recorded_key(db).await? {
                Some(now) if &now == key.id() => {}
                Some(other) => {
                    if generated {
                        // A key no secret is under: leave no file that a restart would take
                        // for the database's key.
                        let _ = std::fs::remove_file(origin.path());
                    }
                    return Err(wrong_key(other));
                }
                None => {
                    return Err(DbErr::RecordNotFound(
                        "the secret key record just written is gone".to_owned(),
                    )
                    .into());
                }
            }
        }
    }
    let sbox = SecretBox::new(&key);
    let encrypted = encrypt_plaintext(db, &sbox).await?;
    if encrypted > 0 {
        tracing::info!(
            secrets = encrypted,
            key_id = %key.id(),
            "encrypted the receiver secrets an older hookgate stored in plain text"
        );
        scrub_sqlite(db).await;
    }
    warn_about_other_keys(db, &sbox).await?;
    tracing::info!(
        key_id = %key.id(),
        path = %origin.path().display(),
        "receiver secrets are encrypted at rest with this key"
    );
    Ok(sbox)
}

/// The key in force: the record's, else (a record lost by hand) the key any sealed secret is
/// under, else none (a database no key has touched yet).
async fn recorded_key(db: &Db) -> Result<Option<KeyId>, DbErr> {
    if let Some(id) = key_in_force(db).await? {
        return Ok(Some(id));
    }
    sealed_under(db).await
}

/// The key id any sealed secret is under, if there is one.
pub(super) async fn sealed_under<C: ConnectionTrait>(conn: &C) -> Result<Option<KeyId>, DbErr> {
    let row = receiver::Entity::find()
        .filter(
            Condition::any()
                .add(receiver::Column::SecretKeyId.is_not_null())
                .add(receiver::Column::PreviousSecretKeyId.is_not_null()),
        )
        .one(conn)
        .await?;
    Ok(row.and_then(|m| {
        m.secret_key_id
            .or(m.previous_secret_key_id)
            .map(|id| KeyId::from_stored(&id))
    }))
}

/// The key the database has in force, read with a shared lock on PostgreSQL: inside a
/// transaction, a `rotate-key` cannot change it until that transaction ends (on SQLite a write
/// transaction already excludes every other writer).
pub async fn key_in_force<C: ConnectionTrait>(conn: &C) -> Result<Option<KeyId>, DbErr> {
    Ok(secret_key::Entity::find_by_id(secret_key::ROW_ID)
        .lock_shared()
        .one(conn)
        .await?
        .map(|m| KeyId::from_stored(&m.key_id)))
}

/// The key in force, locked for a change (PostgreSQL's `FOR UPDATE`): the upgrade and
/// `rotate-key` run one at a time, and no secret is written under a key while it is replaced.
pub(super) async fn lock_key_in_force<C: ConnectionTrait>(
    conn: &C,
) -> Result<Option<KeyId>, DbErr> {
    Ok(secret_key::Entity::find_by_id(secret_key::ROW_ID)
        .lock_exclusive()
        .one(conn)
        .await?
        .map(|m| KeyId::from_stored(&m.key_id)))
}

/// Records `id` as the key in force: only if none is recorded yet, or (`replace`) over the one
/// that is.
pub(super) async fn record_key<C: ConnectionTrait>(
    conn: &C,
    id: &KeyId,
    replace: bool,
) -> Result<(), DbErr> {
    let row = secret_key::ActiveModel {
        id: Set(secret_key::ROW_ID),
        key_id: Set(id.as_str().to_owned()),
        update_time: Set(Timestamp::now()),
    };
    let mut on_conflict = OnConflict::column(secret_key::Column::Id);
    if replace {
        on_conflict.update_columns([secret_key::Column::KeyId, secret_key::Column::UpdateTime]);
    } else {
        on_conflict.do_nothing();
    }
    secret_key::Entity::insert(row)
        .on_conflict(on_conflict)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Seals every secret still in plain text (key id NULL), in one transaction; returns how many.
async fn encrypt_plaintext(db: &Db, sbox: &SecretBox) -> Result<u64, DbErr> {
    use receiver::Column as C;
    let txn = db.begin_write().await?;
    // Replicas starting together upgrade one at a time; the second finds nothing left.
    lock_key_in_force(&txn).await?;
    let plain = receiver::Entity::find()
        .filter(
            Condition::any().add(C::SecretKeyId.is_null()).add(
                Condition::all()
                    .add(C::PreviousSecret.is_not_null())
                    .add(C::PreviousSecretKeyId.is_null()),
            ),
        )
        .all(&txn)
        .await?;
    let mut sealed = 0;
    for m in plain {
        let id = m.id.to_string();
        let mut update = receiver::Entity::update_many().filter(C::Id.eq(m.id));
        if m.secret_key_id.is_none() {
            let s = sbox.seal(&id, Slot::Current, &m.secret);
            update = update
                .col_expr(C::Secret, Expr::value(s.value))
                .col_expr(C::SecretKeyId, Expr::value(s.key_id));
            sealed += 1;
        }
        if let (Some(previous), None) = (&m.previous_secret, &m.previous_secret_key_id) {
            let s = sbox.seal(&id, Slot::Previous, previous);
            update = update
                .col_expr(C::PreviousSecret, Expr::value(s.value))
                .col_expr(C::PreviousSecretKeyId, Expr::value(s.key_id));
            sealed += 1;
        }
        update.exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(sealed)
}

/// On SQLite, rewrites the database file and empties its write-ahead log, so that values just
/// replaced (plain text, or ciphertext under a retired key) do not linger in free pages or old
/// log frames. Best effort: a failure is logged, the service still starts.
pub(super) async fn scrub_sqlite(db: &Db) {
    if db.is_postgres() {
        return;
    }
    if let Err(e) = db.execute_unprepared("VACUUM").await {
        tracing::warn!(error = %e, "could not VACUUM the SQLite database: replaced secrets may linger in its free pages until it is vacuumed");
        return;
    }
    let checkpoint = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ))
        .await;
    match checkpoint {
        Ok(Some(row)) if row.try_get_by_index::<i32>(0).unwrap_or(1) == 0 => {}
        Ok(_) => tracing::warn!(
            "the SQLite write-ahead log could not be emptied (a reader was busy): replaced secrets may linger in it until the next checkpoint"
        ),
        Err(e) => tracing::warn!(error = %e, "could not checkpoint the SQLite write-ahead log"),
    }
}

/// Warns about secrets sealed under a key other than the one in force (rows copied in from
/// another database): they cannot be read, so their receivers reject every delivery.
async fn warn_about_other_keys(db: &Db, sbox: &SecretBox) -> Result<(), DbErr> {
    use receiver::Column as C;
    let ours = sbox.key_id().as_str();
    let stray = receiver::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(C::SecretKeyId.is_not_null())
                        .add(C::SecretKeyId.ne(ours)),
                )
                .add(
                    Condition::all()
                        .add(C::PreviousSecretKeyId.is_not_null())
                        .add(C::PreviousSecretKeyId.ne(ours)),
                ),
        )
        .all(db)
        .await?;
    if !stray.is_empty() {
        let named: Vec<String> = stray
            .iter()
            .take(NAMED_AT_MOST)
            .map(|m| m.id.to_string())
            .collect();
        tracing::warn!(
            count = stray.len(),
            receivers = ?named,
            key_id = %sbox.key_id(),
            "receivers whose secrets are encrypted under another key than the one in force cannot verify deliveries: rotate their secrets with overlap 0, or restore them from the database they came from"
        );
    }
    Ok(())
}
