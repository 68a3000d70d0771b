//! Sealing one receiver secret: AES-256-GCM with a fresh random nonce per value, bound to the
//! receiver and the column it is stored in, so a ciphertext copied onto another row or into the
//! other column does not open.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use zeroize::Zeroizing;

use super::{KeyId, SecretKey};

/// How many bytes a nonce has (GCM's 96 bits).
const NONCE_LEN: usize = 12;

/// Which of a receiver's sealed columns a value is for (its two secrets and its two GitLab
/// signing tokens). It is part of the associated data: the current secret's ciphertext does not
/// open as the previous one, nor as a signing token, nor the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `receivers.secret`.
    Current,
    /// `receivers.previous_secret`.
    Previous,
    /// `receivers.signing_token`.
    SigningToken,
    /// `receivers.previous_signing_token`.
    PreviousSigningToken,
}

impl Slot {
    /// The column the slot is stored in.
    pub fn column(self) -> &'static str {
        match self {
            Slot::Current => "secret",
            Slot::Previous => "previous_secret",
            Slot::SigningToken => "signing_token",
            Slot::PreviousSigningToken => "previous_signing_token",
        }
    }

    /// What row `m` stores in the slot: the (sealed) value, empty when the column is NULL, and
    /// the id of the key it is sealed under (`None` for a secret an older hookgate stored in
    /// plain text, or an empty column).
    pub fn stored(self, m: &crate::entity::receiver::Model) -> (&str, Option<&str>) {
        match self {
            Slot::Current => (m.secret.as_str(), m.secret_key_id.as_deref()),
            Slot::Previous => (
                m.previous_secret.as_deref().unwrap_or_default(),
                m.previous_secret_key_id.as_deref(),
            ),
            Slot::SigningToken => (
                m.signing_token.as_deref().unwrap_or_default(),
                m.signing_token_key_id.as_deref(),
            ),
            Slot::PreviousSigningToken => (
                m.previous_signing_token.as_deref().unwrap_or_default(),
                m.previous_signing_token_key_id.as_deref(),
            ),
        }
    }
}

/// A secret as it is stored: the ciphertext and, in the column beside it, the key's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// base64 of the nonce, the ciphertext and the tag.
    pub value: String,
    /// The key it is sealed under.
    pub key_id: String,
}

/// Seals and opens receiver secrets with one key. Cheap to clone (the cipher is shared); its
/// `Debug` shows the key id only. Every store that reads or writes secrets holds one, made at
/// start-up once the key is known to be the one in force.
#[derive(Clone)]
pub struct SecretBox {
    /// AES-256-GCM with the key's schedule (wiped when the last clone is dropped).
    cipher: Arc<Aes256Gcm>,
    /// The id of the key the cipher holds.
    key_id: KeyId,
}

/// Why a secret cannot be opened, or sealed for storing. The messages say what the operator can
/// do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "this process holds key {ours}, but the key in force is {in_force}: restart this replica with the key in force (after `hookgate rotate-key`, the new key file)"
    )]
    NotInForce { in_force: String, ours: KeyId },
    #[error(
        "it is encrypted under key {found}, but this process holds key {ours}: start every replica with the key in force (a replica still running after `hookgate rotate-key` must be restarted with the new key)"
    )]
    OtherKey { found: String, ours: KeyId },
    #[error(
        "it is stored in plain text (written by an older hookgate?): restart hookgate, which encrypts such values at start-up"
    )]
    Plaintext,
    #[error(
        "it does not open with key {ours}: the stored value was altered or copied from another receiver or column; rotate the receiver's secret with overlap 0"
    )]
    Forged { ours: KeyId },
}

impl SecretBox {
    pub fn new(key: &SecretKey) -> Self {
        let key_bytes = Key::<Aes256Gcm>::from(*key.bytes());
        let cipher = Aes256Gcm::new(&key_bytes);
        Self {
            cipher: Arc::new(cipher),
            key_id: key.id().clone(),
        }
    }

    /// The id of the key this box seals under.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Whether this box may seal secrets for storing, given the key the database has in force
    /// (see `key_in_force`): a replica that missed a `rotate-key` must not write under the
    /// retired key.
    pub fn check_in_force(&self, in_force: Option<&KeyId>) -> Result<(), SealError> {
        match in_force {
            Some(id) if id == &self.key_id => Ok(()),
            other => Err(SealError::NotInForce {
                in_force: other.map_or_else(|| "none".to_owned(), |id| id.to_string()),
                ours: self.key_id.clone(),
            }),
        }
    }

    /// Seals `secret` for `slot` of the receiver whose id is `receiver` (as stored).
    pub fn seal(&self, receiver: &str, slot: Slot, secret: &str) -> SealedSecret {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random number generator is available");
        let aad = associated_data(receiver, slot);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any secret shorter than 64 GiB");
        let mut stored = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&ciphertext);
        SealedSecret {
            value: base64::engine::general_purpose::STANDARD_NO_PAD.encode(stored),
            key_id: self.key_id.as_str().to_owned(),
        }
    }

    /// Opens the value stored in `slot` of receiver `receiver`, sealed under `key_id` (`None`:
    /// plain text from an older hookgate, which is refused).
    pub fn open(
        &self,
        receiver: &str,
        slot: Slot,
        key_id: Option<&str>,
        value: &str,
    ) -> Result<Zeroizing<String>, SealError> {
        let Some(key_id) = key_id else {
            return Err(SealError::Plaintext);
        };
        if key_id != self.key_id.as_str() {
            return Err(SealError::OtherKey {
                found: key_id.to_owned(),
                ours: self.key_id.clone(),
            });
        }
        let forged = || SealError::Forged {
            ours: self.key_id.clone(),
        };
        let stored = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(value)
            .map_err(|_| forged())?;
        if stored.len() < NONCE_LEN {
            return Err(forged());
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| forged())?;
        let aad = associated_data(receiver, slot);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    &nonce,
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| forged())?,
        );
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| forged())
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBox(key {})", self.key_id)
    }
}

/// What a ciphertext is bound to: the format, the column and the receiver's id.
fn associated_data(receiver: &str, slot: Slot) -> Vec<u8> {
    format!("hookgate/v1 receivers.{} {receiver}", slot.column()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b1c2d3e-8a6b-4d2e-9f4a-4f2c1c3e0000";

    #[test]
    fn a_sealed_secret_opens_to_itself_and_does_not_contain_it() {
        let sbox = SecretBox::new(&SecretKey::generate());
        let sealed = sbox.seal(ID, Slot::Current, "supersecretvalue");
        assert!(!sealed.value.contains("supersecret"));
        assert_eq!(sealed.key_id, sbox.key_id().as_str());
        let opened = sbox
            .open(ID, Slot::Current, Some(&sealed.key_id), &sealed.value)
            .unwrap();
        assert_eq!(opened.as_str(), "supersecretvalue");
    }

    #[test]
    fn every_seal_takes_a_fresh_nonce() {
        let sbox = SecretBox::new(&SecretKey::generate());
        let a = sbox.seal(ID, Slot::Current, "supersecretvalue");
        let b = sbox.seal(ID, Slot::Current, "supersecretvalue");
        assert_ne!(a.value, b.value);
    }

    #[test]
    fn a_ciphertext_copied_to_another_receiver_or_column_does_not_open() {
        let sbox = SecretBox::new(&SecretKey::generate());
        let sealed = sbox.seal(ID, Slot::Current, "supersecretvalue");
        let key = Some(sealed.key_id.as_str());
        let other = "0b1c2d3e-8a6b-4d2e-9f4a-4f2c1c3e0001";
        assert!(matches!(
            sbox.open(other, Slot::Current, key, &sealed.value),
            Err(SealError::Forged { .. })
        ));
        assert!(matches!(
            sbox.open(ID, Slot::Previous, key, &sealed.value),
            Err(SealError::Forged { .. })
        ));
    }

    #[test]
    fn a_value_sealed_under_another_key_names_both_keys() {
        let ours = SecretBox::new(&SecretKey::generate());
        let theirs = SecretBox::new(&SecretKey::generate());
        let sealed = theirs.seal(ID, Slot::Current, "supersecretvalue");
        let err = ours
            .open(ID, Slot::Current, Some(&sealed.key_id), &sealed.value)
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains(theirs.key_id().as_str()), "{message}");
        assert!(message.contains(ours.key_id().as_str()), "{message}");
        // The same key id on a value sealed by another key (a forged id) fails the tag.
        let err = ours
            .open(
                ID,
                Slot::Current,
                Some(ours.key_id().as_str()),
                &sealed.value,
            )
            .unwrap_err();
        assert!(matches!(err, SealError::Forged { .. }), "{err}");
    }

    #[test]
    fn altered_or_plain_values_are_refused() {
        let sbox = SecretBox::new(&SecretKey::generate());
        let sealed = sbox.seal(ID, Slot::Current, "supersecretvalue");
        let key = Some(sealed.key_id.as_str());
        let mut bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&sealed.value)
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        for value in [altered.as_str(), "", "c2hvcnQ", "not base64!"] {
            assert!(
                matches!(
                    sbox.open(ID, Slot::Current, key, value),
                    Err(SealError::Forged { .. })
                ),
                "{value}"
            );
        }
        assert_eq!(
            sbox.open(ID, Slot::Current, None, "supersecretvalue"),
            Err(SealError::Plaintext)
        );
    }

    #[test]
    fn debug_shows_the_key_id_only() {
        let sbox = SecretBox::new(&SecretKey::generate());
        assert_eq!(
            format!("{sbox:?}"),
            format!("SecretBox(key {})", sbox.key_id())
        );
    }
}
