//! `hookgate rotate-key --new-key-file F`: every receiver secret re-encrypted under a new key,
//! and the new key recorded as the one in force, in one transaction. The receivers' secrets
//! themselves do not change, so code hosts need no new settings.
//!
//! It is run with every replica stopped: a replica still running holds the old key, and from
//! the commit on it can neither read a secret it has not cached nor write one (see
//! `SecretBox::check_in_force`), until it is restarted with the new key.

use std::fmt;
use std::path::{Path, PathBuf};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use zeroize::Zeroizing;

use super::in_force::{lock_key_in_force, record_key, scrub_sqlite, sealed_under};
use super::{
    DATA_DIR_KEY_FILE, KeyId, KeyOrigin, SecretBox, SecretKey, SecretKeyError, Slot, find_key,
};
use crate::db::Db;
use crate::entity::receiver;

/// What a rotation did, and (as its `Display`) what the operator does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key the secrets were under.
    pub old: KeyId,
    /// The key they are under now.
    pub new: KeyId,
    /// Where the old key came from.
    pub origin: KeyOrigin,
    /// The file the new key was read from.
    pub new_key_file: PathBuf,
    /// How many receivers there are, and how many secrets (current and previous, and GitLab signing
    /// tokens) were sealed.
    pub receivers: usize,
    pub secrets: usize,
    /// When the old key was the data directory's: where it was moved once the new key took
    /// its place.
    pub retired_key_file: Option<PathBuf>,
}

/// Re-encrypts every receiver secret (and GitLab signing token) under the key in `new_key_file`. The current key is the
/// `--secret-key-file` given, else `<data-dir>/secret.key`; it must be the key in force, else
/// nothing changes. When it was the data directory's, that file then holds the new key, and the
/// old one is kept beside it as `secret.key.<old key id>.old`.
pub async fn rotate_key(
    db: &Db,
    key_file: Option<&Path>,
    data_dir: &Path,
    new_key_file: &Path,
) -> Result<Rotation, SecretKeyError> {
    let (current, origin) =
        find_key(key_file, data_dir)?.ok_or_else(|| SecretKeyError::NoCurrentKey {
            expected: data_dir.join(DATA_DIR_KEY_FILE),
        })?;
    let new = SecretKey::read(new_key_file)?;
    if new.id() == current.id() {
        return Err(SecretKeyError::SameKey {
            path: new_key_file.to_owned(),
            id: new.id().clone(),
        });
    }
    let (old_box, new_box) = (SecretBox::new(&current), SecretBox::new(&new));

    let txn = db.begin_write().await?;
    let recorded = match lock_key_in_force(&txn).await? {
        Some(id) => Some(id),
        None => sealed_under(&txn).await?,
    };
    if let Some(recorded) = recorded
        && &recorded != current.id()
    {
        return Err(SecretKeyError::WrongKey {
            path: origin.path().to_owned(),
            ours: current.id().clone(),
            recorded,
        });
    }
    use receiver::Column as C;
    let mut rows = receiver::Entity::find().all(&txn).await?;
    // In the order of their ids, as an intake batch marks them (`deliveries::store`): on
    // PostgreSQL a replica left running takes receiver rows while this runs, and two
    // transactions taking the same rows in two orders can each wait for the other's (the
    // database then aborts one: this rotation, or a batch answered 503).
    rows.sort_unstable_by_key(|m| m.id);
    let mut secrets = 0;
    for m in &rows {
        let id = m.id.to_string();
        let current_secret = reopen(&old_box, m, Slot::Current)?;
        let sealed = new_box.seal(&id, Slot::Current, &current_secret);
        let mut update = receiver::Entity::update_many()
            .col_expr(C::Secret, Expr::value(sealed.value))
            .col_expr(C::SecretKeyId, Expr::value(sealed.key_id));
        secrets += 1;
        if m.previous_secret.is_some() {
            let previous = reopen(&old_box, m, Slot::Previous)?;
            let sealed = new_box.seal(&id, Slot::Previous, &previous);
            update = update
                .col_expr(C::PreviousSecret, Expr::value(sealed.value))
                .col_expr(C::PreviousSecretKeyId, Expr::value(sealed.key_id));
            secrets += 1;
        }
        if m.signing_token.is_some() {
            let token = reopen(&old_box, m, Slot::SigningToken)?;
            let sealed = new_box.seal(&id, Slot::SigningToken, &token);
            update = update
                .col_expr(C::SigningToken, Expr::value(sealed.value))
                .col_expr(C::SigningTokenKeyId, Expr::value(sealed.key_id));
            secrets += 1;
        }
        if m.previous_signing_token.is_some() {
            let token = reopen(&old_box, m, Slot::PreviousSigningToken)?;
            let sealed = new_box.seal(&id, Slot::PreviousSigningToken, &token);
            update = update
                .col_expr(C::PreviousSigningToken, Expr::value(sealed.value))
                .col_expr(C::PreviousSigningTokenKeyId, Expr::value(sealed.key_id));
            secrets += 1;
        }
        update.filter(C::Id.eq(m.id)).exec(&txn).await?;
    }
    record_key(&txn, new.id(), true).await?;
    // Dropping the transaction on any error above rolls every change back.
    txn.commit().await?;

    let retired_key_file = match &origin {
        KeyOrigin::DataDir(path) => Some(swap_data_dir_key(path, &current, &new)?),
        KeyOrigin::Given(_) => None,
    };
    scrub_sqlite(db).await;
    Ok(Rotation {
        old: current.id().clone(),
        new: new.id().clone(),
        origin,
        new_key_file: new_key_file.to_owned(),
        receivers: rows.len(),
        secrets,
        retired_key_file,
    })
}

/// The plain secret in `slot` of row `m`: opened with the old key, or as it is when an older
/// hookgate stored it in plain text.
fn reopen(
    old: &SecretBox,
    m: &receiver::Model,
    slot: Slot,
) -> Result<Zeroizing<String>, SecretKeyError> {
    let (value, key_id) = slot.stored(m);
    match key_id {
        None => Ok(Zeroizing::new(value.to_owned())),
        Some(_) => old
            .open(&m.id.to_string(), slot, key_id, value)
            .map_err(|source| SecretKeyError::Unreadable {
                receiver: m.id.to_string(),
                column: slot.column(),
                source,
            }),
    }
}

/// Puts the new key in the data directory's key file, keeping the old key beside it. The new
/// file is written in full before the old one is moved, so a crash leaves a complete key at
/// both names or at one.
fn swap_data_dir_key(
    path: &Path,
    old: &SecretKey,
    new: &SecretKey,
) -> Result<PathBuf, SecretKeyError> {
    let failed = |why: String| SecretKeyError::KeyFileSwap {
        new: new.id().clone(),
        path: path.to_owned(),
        why,
    };
    let staged = path.with_file_name(format!("{DATA_DIR_KEY_FILE}.new"));
    let retired = path.with_file_name(format!("{DATA_DIR_KEY_FILE}.{}.old", old.id()));
    match std::fs::remove_file(&staged) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(failed(format!(
                "{} cannot be removed: {e}",
                staged.display()
            )));
        }
    }
    new.write_new(&staged).map_err(|e| failed(e.to_string()))?;
    std::fs::rename(path, &retired).map_err(|e| {
        failed(format!(
            "the old key cannot be moved to {}: {e}",
            retired.display()
        ))
    })?;
    std::fs::rename(&staged, path)
        .map_err(|e| failed(format!("the new key cannot be moved into place: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| failed(format!("the data directory cannot be synced: {e}")))?;
    }
    Ok(retired)
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Re-encrypted {} secrets of {} receivers under key {} (was {}), in one transaction; the receivers' secrets themselves are unchanged.",
            self.secrets, self.receivers, self.new, self.old
        )?;
        match &self.retired_key_file {
            Some(retired) => {
                writeln!(
                    f,
                    "{} now holds the new key; the old key was moved to {}.",
                    self.origin.path().display(),
                    retired.display()
                )?;
                writeln!(f, "Next:")?;
                writeln!(
                    f,
                    "  1. Restart hookgate (every replica that uses this data directory): one still running holds the old key and can no longer read or write receiver secrets."
                )?;
                writeln!(
                    f,
                    "  2. Back up the new key. Keep {} as long as you keep database backups taken before now: they open only with the old key. {} holds a copy of the new key: keep it safe or delete it.",
                    retired.display(),
                    self.new_key_file.display()
                )
            }
            None => {
                writeln!(f, "Next:")?;
                writeln!(
                    f,
                    "  1. Point --secret-key-file (HOOKGATE_SECRET_KEY_FILE) of every replica at {}, and restart them all: one still running holds the old key and can no longer read or write receiver secrets.",
                    self.new_key_file.display()
                )?;
                writeln!(
                    f,
                    "  2. Keep the old key ({}) until every replica runs with the new one, and as long as you keep database backups taken before now: they open only with the old key.",
                    self.origin.path().display()
                )
            }
        }
    }
}
