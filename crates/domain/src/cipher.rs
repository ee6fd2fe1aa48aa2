//! Secrets at rest (credential data, later TOTP secrets): AES-256-GCM with a
//! key derived from the instance's encryption key, a fresh random nonce per
//! value. Stored as `v1:` + base64(nonce ‖ ciphertext).

use aes_gcm::{
    Aes256Gcm, KeyInit as _, Nonce,
    aead::{Aead as _, AeadCore as _, OsRng},
};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::{Error, Result, secret::Secret};

#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    pub fn new(instance_key: &Secret) -> Self {
        let key = Sha256::digest(format!("usher-data-key:{}", instance_key.expose()));
        Self {
            aead: Aes256Gcm::new(&key),
        }
    }

    pub fn seal(&self, plain: &str) -> Result<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .aead
            .encrypt(&nonce, plain.as_bytes())
            .map_err(|_| Error::Internal("encryption failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "v1:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    pub fn open(&self, sealed: &str) -> Result<String> {
        let broken = || {
            Error::Internal("stored secret cannot be decrypted (another encryption key?)".into())
        };
        let encoded = sealed.strip_prefix("v1:").ok_or_else(broken)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| broken())?;
        if bytes.len() < 12 {
            return Err(broken());
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| broken())?;
        let plain = self
            .aead
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| broken())?;
        String::from_utf8(plain).map_err(|_| broken())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() -> Result<()> {
        let cipher = Cipher::new(&Secret::new("instance key"));
        let sealed = cipher.seal("{\"apiKey\":\"s3cret\"}")?;
        assert!(!sealed.contains("s3cret"));
        assert_ne!(
            sealed,
            cipher.seal("{\"apiKey\":\"s3cret\"}")?,
            "a fresh nonce each time"
        );
        assert_eq!(cipher.open(&sealed)?, "{\"apiKey\":\"s3cret\"}");
        assert!(
            Cipher::new(&Secret::new("another key"))
                .open(&sealed)
                .is_err()
        );
        Ok(())
    }
}
