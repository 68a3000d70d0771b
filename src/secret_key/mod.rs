//! The key that encrypts receivers' secrets at rest, and everything that depends on which key
//! is in force: where the key comes from (`--secret-key-file`, else `<data-dir>/secret.key`, made
//! on first start), how one secret is sealed (AES-256-GCM, bound to its receiver and column), the
//! record in the database of the key its secrets are under (so a replica with another key, or
//! none, refuses to start instead of reading garbage), the one-time encryption of secrets an
//! older hookgate stored in plain text, and `hookgate rotate-key`.
//!
//! It is separate from `receivers/` because the key is the service's, not a receiver's: the
//! receiver store only asks a [`SecretBox`] to seal and open its two secret columns.

mod in_force;
mod key;
mod rotate;
mod sealed;

use std::path::{Path, PathBuf};

pub use in_force::{key_in_force, prepare};
pub use key::{KEY_LEN, KeyFileError, KeyId, SecretKey};
pub use rotate::{Rotation, rotate_key};
pub use sealed::{SealError, SealedSecret, SecretBox, Slot};

/// The key file hookgate makes, and reads when `--secret-key-file` is not given.
pub const DATA_DIR_KEY_FILE: &str = "secret.key";

/// Why the key in force cannot be had or changed. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error(
        "the receiver secrets in this database are encrypted under key {recorded}, but no key was given and {} does not exist: \
         give the key file with --secret-key-file (HOOKGATE_SECRET_KEY_FILE), or copy secret.key from the data directory this database came from. \
         A new key is not made for a database that already has one: its secrets could never be read again",
        .expected.display()
    )]
    Missing { recorded: KeyId, expected: PathBuf },
    #[error(
        "the secret key {} (key id {ours}) is not the key this database's receiver secrets are encrypted under (key id {recorded}): \
         start with the key file the database was used with; every replica sharing a database needs the same --secret-key-file, \
         and after `hookgate rotate-key` that is the new key file",
        .path.display()
    )]
    WrongKey {
        path: PathBuf,
        ours: KeyId,
        recorded: KeyId,
    },
    #[error(
        "rotate-key needs the key in force: give it with --secret-key-file (HOOKGATE_SECRET_KEY_FILE), or run rotate-key with the --data-dir whose {DATA_DIR_KEY_FILE} the service uses ({} does not exist)",
        .expected.display()
    )]
    NoCurrentKey { expected: PathBuf },
    #[error(
        "{} holds the key already in force (key id {id}): make a new key with `openssl rand -base64 32 > new.key` and pass that to --new-key-file",
        .path.display()
    )]
    SameKey { path: PathBuf, id: KeyId },
    #[error(
        "the secret of receiver {receiver} cannot be read ({column}): {source}; nothing was changed"
    )]
    Unreadable {
        receiver: String,
        column: &'static str,
        source: SealError,
    },
    #[error(
        "the database now uses key {new}, but {}: {why}; copy the new key file there yourself (mode 0600) before starting hookgate",
        .path.display()
    )]
    KeyFileSwap {
        new: KeyId,
        path: PathBuf,
        why: String,
    },
    #[error("cannot read or write the secret key record or the receiver secrets: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// Where the key in force was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `--secret-key-file` (or `HOOKGATE_SECRET_KEY_FILE`).
    Given(PathBuf),
    /// `<data-dir>/secret.key`, made by an earlier start.
    DataDir(PathBuf),
}

impl KeyOrigin {
    pub fn path(&self) -> &Path {
        match self {
            KeyOrigin::Given(p) | KeyOrigin::DataDir(p) => p,
        }
    }
}

/// The key file in force, if there is one: the given one, else the data directory's.
fn find_key(
    key_file: Option<&Path>,
    data_dir: &Path,
) -> Result<Option<(SecretKey, KeyOrigin)>, KeyFileError> {
    if let Some(path) = key_file {
        return Ok(Some((
            SecretKey::read(path)?,
            KeyOrigin::Given(path.to_owned()),
        )));
    }
    let path = data_dir.join(DATA_DIR_KEY_FILE);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok(Some((SecretKey::read(&path)?, KeyOrigin::DataDir(path)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyFileError::Unreadable { path, source }),
    }
}
