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

/// How long a token is as text: 256 bits in URL-safe base64 without
/// padding.
pub const TOKEN_LENGTH: usize = 43;

/// Whether `text` has the shape of a token Usher makes: 43 characters of
/// URL-safe base64 that decode to 32 bytes. A link cut short, or text that
/// was never a link, is told apart from a link that is simply not (or no
/// longer) valid, and no lookup is spent on it.
pub fn is_well_formed(text: &str) -> bool {
    text.len() == TOKEN_LENGTH
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .is_ok_and(|bytes| bytes.len() == 32)
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_of_a_tokens_shape_is_well_formed() {
        let token = generate().secret.expose().to_owned();
        assert!(is_well_formed(&token));
        for bad in [
            String::new(),
            token[..42].to_owned(),
            format!("{token}A"),
            format!("{}+", &token[..42]),
            format!("{}=", &token[..42]),
            " ".repeat(43),
        ] {
            assert!(!is_well_formed(&bad), "{bad}");
        }
        // 43 characters carry 258 bits: the last one's low two bits are 0,
        // so a last character of B (0b000001) is no token's.
        assert!(!is_well_formed(&format!("{}B", &token[..42])));
        assert!(is_well_formed(&format!("{}A", &token[..42])));
    }

    #[test]
    fn tokens_are_distinct_long_and_stored_only_as_their_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.expose().len(), TOKEN_LENGTH);
        assert!(is_well_formed(a.secret.expose()));
        assert_eq!(a.hash, hash(a.secret.expose()));
        assert!(!a.hash.contains(a.secret.expose()));
    }
}
