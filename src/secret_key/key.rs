//! The key itself: 32 random bytes, kept in a file as base64, read at start-up or made on first
//! start, and named by an id that can be shown and stored without giving the key away.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// How many bytes a key has (AES-256).
pub const KEY_LEN: usize = 32;

/// The key that encrypts receivers' secrets at rest. It only exists with exactly [`KEY_LEN`]
/// bytes; its `Debug` shows its id, never the bytes, and the bytes are wiped when it is dropped.
pub struct SecretKey {
    /// The key's bytes.
    bytes: Zeroizing<[u8; KEY_LEN]>,
    /// Its name, derived from the bytes.
    id: KeyId,
}

/// A key's public name: the first 8 bytes of SHA-256 over the key's 32 bytes, as 16 lower-case
/// hex characters. An operator can compute it by hand
/// (`base64 -d secret.key | sha256sum | cut -c1-16`); it says which key a value needs without
/// saying anything about the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

/// Why a key file cannot be used. Each message names the file and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(
        "cannot read the secret key file {path}: {source}; check the path given to --secret-key-file (HOOKGATE_SECRET_KEY_FILE) and that hookgate may read it"
    )]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the secret key file {path} is empty: it must hold 32 random bytes in base64, as `openssl rand -base64 32` prints"
    )]
    Empty { path: PathBuf },
    #[error(
        "the secret key file {path} is not base64 ({why}): it must hold 32 random bytes in base64, as `openssl rand -base64 32` prints"
    )]
    NotBase64 { path: PathBuf, why: String },
    #[error(
        "the secret key file {path} holds {len} bytes once base64-decoded, not 32: make a key with `openssl rand -base64 32`"
    )]
    WrongLength { path: PathBuf, len: usize },
    #[error(
        "cannot write a new secret key to {path}: {source}; check that the data directory is writable, or give a key with --secret-key-file"
    )]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Accepts standard base64 with or without its `=` padding (`openssl rand -base64 32` pads).
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

impl SecretKey {
    /// A fresh key from the OS's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut()).expect("the OS random number generator is available");
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let digest = Sha256::digest(bytes.as_ref());
        let id = KeyId(hex::encode(&digest[..8]));
        Self { bytes, id }
    }

    /// Reads a key file: base64 of exactly 32 bytes, surrounding whitespace ignored. A file that
    /// its group or others may read or write is used, with a warning.
    pub fn read(path: &Path) -> Result<Self, KeyFileError> {
        let raw =
            Zeroizing::new(
                std::fs::read(path).map_err(|source| KeyFileError::Unreadable {
                    path: path.to_owned(),
                    source,
                })?,
            );
        let text = std::str::from_utf8(&raw).map_err(|_| KeyFileError::NotBase64 {
            path: path.to_owned(),
            why: "it is not text; a raw 32-byte key must be base64-encoded first, e.g. `base64 < raw.key`"
                .to_owned(),
        })?;
        let key = Self::parse(path, text.trim())?;
        warn_if_open_to_others(path);
        Ok(key)
    }

    fn parse(path: &Path, text: &str) -> Result<Self, KeyFileError> {
        if text.is_empty() {
            return Err(KeyFileError::Empty {
                path: path.to_owned(),
            });
        }
        let decoded = Zeroizing::new(BASE64.decode(text).map_err(|e| KeyFileError::NotBase64 {
            path: path.to_owned(),
            why: e.to_string(),
        })?);
        let bytes: [u8; KEY_LEN] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| KeyFileError::WrongLength {
                    path: path.to_owned(),
                    len: decoded.len(),
                })?;
        Ok(Self::from_bytes(Zeroizing::new(bytes)))
    }

    /// Writes the key to a new file at `path` with mode 0600 (never over an existing file), and
    /// makes it durable.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyFileError> {
        let unwritable = |source| KeyFileError::Unwritable {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(unwritable)?;
        // The umask can only take bits away, but say 0600 outright all the same.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(unwritable)?;
        let mut text = Zeroizing::new(BASE64.encode(self.bytes.as_ref()));
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(unwritable)?;
        file.sync_all().map_err(unwritable)?;
        if let Some(dir) = path.parent() {
            // The file's name must survive a crash too.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(unwritable)?;
        }
        Ok(())
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The key's bytes, for the cipher alone.
    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(id {}, [REDACTED])", self.id)
    }
}

impl KeyId {
    /// A key id as stored in the database.
    pub fn from_stored(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key anyone on the machine can read is not much of a secret; one they can write can be
/// swapped. Warned about rather than refused: secret stores such as Kubernetes mount files 0644
/// by default, and refusing would stop a service that is otherwise configured right.
fn warn_if_open_to_others(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:04o}"),
                "the secret key file may be read or written by its group or others: run `chmod 600 {}` (and chown it to the user hookgate runs as)",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SecretKey, KeyFileError> {
        SecretKey::parse(Path::new("/etc/hookgate/key"), text)
    }

    #[test]
    fn base64_of_32_bytes_is_a_key_with_or_without_padding() {
        let padded = BASE64.encode([7u8; 32]);
        assert!(padded.ends_with('='));
        let a = parse(&padded).unwrap();
        let b = parse(padded.trim_end_matches('=')).unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.bytes(), &[7u8; 32]);
    }

    #[test]
    fn the_key_id_is_the_first_8_bytes_of_sha256_in_hex() {
        let key = parse(&BASE64.encode([0u8; 32])).unwrap();
        // sha256 of 32 zero bytes: 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925
        assert_eq!(key.id().as_str(), "66687aadf862bd77");
    }

    #[test]
    fn a_key_file_of_another_length_is_refused_naming_the_file_and_the_length() {
        let err = parse(&BASE64.encode([1u8; 16])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/etc/hookgate/key"), "{message}");
        assert!(message.contains("holds 16 bytes"), "{message}");
    }

    #[test]
    fn a_key_file_that_is_not_base64_or_empty_is_refused() {
        let err = parse("this is not base64!").unwrap_err();
        assert!(matches!(err, KeyFileError::NotBase64 { .. }), "{err}");
        assert!(err.to_string().contains("openssl rand -base64 32"), "{err}");
        let err = parse("").unwrap_err();
        assert!(matches!(err, KeyFileError::Empty { .. }), "{err}");
    }

    #[test]
    fn a_raw_binary_key_file_is_refused_with_how_to_encode_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.key");
        std::fs::write(&path, [0xffu8; 32]).unwrap();
        let err = SecretKey::read(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::NotBase64 { .. }), "{err}");
        assert!(err.to_string().contains("base64 < raw.key"), "{err}");
    }

    #[test]
    fn debug_shows_the_key_id_and_never_the_key() {
        let key = SecretKey::generate();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.id().as_str()), "{shown}");
        assert!(!shown.contains(&BASE64.encode(key.bytes())), "{shown}");
        assert!(!shown.contains(&hex::encode(key.bytes())), "{shown}");
    }

    #[test]
    fn a_written_key_reads_back_the_same_and_is_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let key = SecretKey::generate();
        key.write_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(SecretKey::read(&path).unwrap().id(), key.id());
        assert!(
            SecretKey::generate().write_new(&path).is_err(),
            "an existing key file is never overwritten"
        );
    }
}
