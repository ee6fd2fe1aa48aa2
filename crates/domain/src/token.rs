//! Random secrets (session, invitation, reset, API key tokens).
//!
//! 256 random bits, shown to the user once as URL-safe base64; the database
//! keeps only the SHA-256 of it, so a leaked table opens nothing. Lookups go
//! by hash, so comparing a presented token never compares secret bytes.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::secret::Secret;

/// A freshly made token: `secret` goes to the user, `hash` to the store.
#[derive(Debug)]
pub struct NewToken {
    pub secret: Secret,
    pub hash: String,
}

pub fn generate() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&secret);
    NewToken {
        secret: Secret::new(secret),
        hash,
    }
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_long_and_stored_only_as_their_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.expose().len(), 43);
        assert_eq!(a.hash, hash(a.secret.expose()));
        assert!(!a.hash.contains(a.secret.expose()));
    }
}
