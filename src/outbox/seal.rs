//! Passwords waiting in the outbox are sealed with ChaCha20-Poly1305 under the outbox key;
//! the job id's connector and resource are bound in as associated data, so a sealed value
//! cannot be moved to another job's row and still open.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SealError {
    #[error("the outbox key must be 32 bytes in base64 (openssl rand -base64 32)")]
    BadKey,
    #[error("a sealed password cannot be opened with this key (was the outbox key changed?)")]
    Open,
}

/// The key that seals passwords at rest. `Debug` never shows it.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(***)")
    }
}

impl Sealer {
    /// From a base64 key of 32 bytes.
    pub fn from_base64(key: &str) -> Result<Sealer, SealError> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// A key made for this process only: sealed passwords do not survive a restart.
    pub fn ephemeral() -> Sealer {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// `base64(nonce || ciphertext)`.
    pub fn seal(&self, plaintext: &str, aad: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encryption with a fresh nonce and a buffer in memory cannot fail.
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<String, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Open)?;
        if bytes.len() < 12 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = bytes.split_at(12);
        let pt = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(pt).map_err(|_| SealError::Open)
    }
}

/// What a sealed password is bound to: its connector and resource.
pub fn aad(connector: &str, resource_id: &str) -> String {
    format!("{connector}\u{0}{resource_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_password_opens_only_with_its_key_and_its_job() {
        let s = Sealer::ephemeral();
        let sealed = s.seal("Secr3t!", &aad("openiam", "u1"));
        assert!(!sealed.contains("Secr3t"));
        assert_eq!(
            s.open(&sealed, &aad("openiam", "u1")).as_deref(),
            Ok("Secr3t!")
        );
        assert_eq!(s.open(&sealed, &aad("openiam", "u2")), Err(SealError::Open));
        assert_eq!(
            Sealer::ephemeral().open(&sealed, &aad("openiam", "u1")),
            Err(SealError::Open)
        );
    }

    #[test]
    fn a_key_must_be_32_bytes_of_base64() {
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
        assert!(Sealer::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
    }
}
