//! Secrets at rest (credential data, TOTP secrets): AES-256-GCM with a key
//! derived from the instance's encryption key, a fresh random nonce per
//! value, stored as `v1:` + base64(nonce ‖ ciphertext). And tags: HMAC-SHA-256
//! under another key derived from the same instance key, for values Usher
//! hands out and must recognise later without storing them (form tokens).

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
    tag_key: [u8; 32],
}

type Mac = hmac::Hmac<Sha256>;

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    pub fn new(instance_key: &Secret) -> Self {
        let key = Sha256::digest(format!("usher-data-key:{}", instance_key.expose()));
        let tag_key = Sha256::digest(format!("usher-tag-key:{}", instance_key.expose()));
        Self {
            aead: Aes256Gcm::new(&key),
            tag_key: tag_key.into(),
        }
    }

    fn mac(&self, purpose: &str, data: &str) -> Mac {
        use hmac::Mac as _;
        // A key of any length is accepted: this cannot fail.
        let mut mac = <Mac as hmac::Mac>::new_from_slice(&self.tag_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        mac
    }

    /// A tag of `data` for `purpose`, base64url: whoever holds it shows it
    /// was handed out by this instance for exactly this.
    pub fn tag(&self, purpose: &str, data: &str) -> String {
        use hmac::Mac as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.mac(purpose, data).finalize().into_bytes())
    }

    /// Whether `tag` is [`Self::tag`] of `data` for `purpose`, compared in
    /// constant time.
    pub fn check_tag(&self, purpose: &str, data: &str, tag: &str) -> bool {
        use hmac::Mac as _;
        let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag.trim()) else {
            return false;
        };
        self.mac(purpose, data).verify_slice(&bytes).is_ok()
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
    fn tags_check_only_for_the_same_purpose_data_and_key() {
        let cipher = Cipher::new(&Secret::new("instance key"));
        let tag = cipher.tag("form", "session:abc");
        assert!(cipher.check_tag("form", "session:abc", &tag));
        assert!(!cipher.check_tag("form", "session:abd", &tag));
        assert!(!cipher.check_tag("other", "session:abc", &tag));
        assert!(!cipher.check_tag("form", "session:abc", "not base64 !"));
        let other = Cipher::new(&Secret::new("another key"));
        assert!(!other.check_tag("form", "session:abc", &tag));
    }

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
