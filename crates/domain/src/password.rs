//! The password policy (n8n's, with its messages) and hashing.
//!
//! Hashes are argon2id PHC strings with OWASP's parameters (m=19 MiB, t=2, p=1).
//! bcrypt hashes imported from n8n still verify and are replaced on the next
//! sign-in. Hashing is CPU-bound (about 18 ms), so it runs on tokio's blocking
//! pool behind a semaphore: a burst of sign-ins queues there instead of
//! stalling the async workers that serve every other request.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use crate::{Error, Result, secret::Secret};

pub const MAX_LENGTH: usize = 64;

#[derive(Clone, Copy, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8 }
    }
}

impl PasswordPolicy {
    /// Every rule the password breaks, in n8n's words and order.
    pub fn problems(&self, password: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let length = password.chars().count();
        if length < self.min_length || length > MAX_LENGTH {
            problems.push(format!(
                "Password must be {} to {MAX_LENGTH} characters long.",
                self.min_length
            ));
        }
        if !password.chars().any(|c| c.is_ascii_digit()) {
            problems.push("Password must contain at least 1 number.".to_owned());
        }
        if !password.chars().any(char::is_uppercase) {
            problems.push("Password must contain at least 1 uppercase letter.".to_owned());
        }
        problems
    }

    /// n8n joins the messages with a space.
    pub fn check(&self, password: &Secret) -> Result<()> {
        let problems = self.problems(password.expose());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::field("password", problems.join(" ")))
        }
    }
}

/// A temporary password for basic onboarding and forced resets: 16
/// characters (about 90 bits) without look-alikes, and always with a digit
/// and a capital, so it passes the policy it will be replaced under.
pub fn generate_temporary() -> Secret {
    use rand::Rng as _;
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    let mut rng = rand::rng();
    let all: Vec<u8> = [LOWER, UPPER, DIGITS].concat();
    let pick = |rng: &mut rand::rngs::ThreadRng, set: &[u8]| {
        char::from(set[rng.random_range(0..set.len())])
    };
    let mut chars: Vec<char> = (0..14).map(|_| pick(&mut rng, &all)).collect();
    // The required classes go in at random places.
    for set in [UPPER, DIGITS] {
        let at = rng.random_range(0..=chars.len());
        chars.insert(at, pick(&mut rng, set));
    }
    Secret::new(chars.into_iter().collect::<String>())
}

/// What a verification found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash is not argon2id with today's parameters: store a new one.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Verified against when the account does not exist, so that an unknown
    /// email costs as much time as a wrong password (no account discovery).
    dummy_hash: Arc<String>,
}

/// The prefix every current hash starts with.
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

impl PasswordHasher {
    /// `concurrency`: how many hashes may run at once (the number of cores).
    pub fn new(concurrency: usize) -> Result<Self> {
        let params = Params::new(19 * 1024, 2, 1, None)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = argon
            .hash_password(b"not a password anyone has")
            .map_err(|e| Error::Internal(format!("argon2: {e}")))?
            .to_string();
        Ok(Self {
            argon,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    pub async fn hash(&self, password: &Secret) -> Result<String> {
        let argon = self.argon.clone();
        let password = password.clone();
        self.off_runtime(move || {
            argon
                .hash_password(password.expose().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| Error::Internal(format!("argon2: {e}")))
        })
        .await
    }

    /// Checks `password` against `hash`; with no hash (unknown user, pending
    /// user) it burns the same time and answers no.
    pub async fn verify(&self, password: &Secret, hash: Option<&str>) -> Result<Verified> {
        let argon = self.argon.clone();
        let password = password.clone();
        let (hash, real) = match hash {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.as_str().to_owned(), false),
        };
        self.off_runtime(move || {
            let bytes = password.expose().as_bytes();
            let matches = if hash.starts_with("$2") {
                bcrypt::verify(bytes, &hash).unwrap_or(false)
            } else {
                argon.verify_password(bytes, hash.as_str()).is_ok()
            };
            Ok(Verified {
                matches: matches && real,
                needs_rehash: !hash.starts_with(CURRENT_PREFIX),
            })
        })
        .await
    }

    async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(format!("password hashing task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::default()
    }

    #[test]
    fn a_short_password_without_digit_or_capital_gets_all_three_messages_joined() {
        let error = policy()
            .check(&Secret::new("abc"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "Password must be 8 to 64 characters long. Password must contain at least 1 number. \
                 Password must contain at least 1 uppercase letter."
            )
        );
    }

    #[test]
    fn a_raised_minimum_length_shows_in_the_message() {
        let policy = PasswordPolicy { min_length: 12 };
        assert_eq!(
            policy.problems("Abcdefgh1"),
            vec!["Password must be 12 to 64 characters long."]
        );
    }

    #[test]
    fn sixty_five_characters_are_too_many() {
        let long = format!("A1{}", "a".repeat(63));
        assert_eq!(policy().problems(&long).len(), 1);
        assert!(policy().problems(&long[..64]).is_empty());
    }

    #[test]
    fn temporary_passwords_pass_the_policy_and_differ() {
        let a = generate_temporary();
        assert_eq!(a.expose().len(), 16);
        assert!(policy().problems(a.expose()).is_empty(), "{}", a.expose());
        assert_ne!(a, generate_temporary());
    }

    #[tokio::test]
    async fn argon2_hashes_verify_and_wrong_passwords_do_not() -> Result<()> {
        let hasher = PasswordHasher::new(1)?;
        let hash = hasher.hash(&Secret::new("Correct1horse")).await?;
        assert!(hash.starts_with(CURRENT_PREFIX));
        let good = hasher
            .verify(&Secret::new("Correct1horse"), Some(&hash))
            .await?;
        assert_eq!(
            good,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        assert!(
            !hasher
                .verify(&Secret::new("Wrong1horse"), Some(&hash))
                .await?
                .matches
        );
        Ok(())
    }

    #[tokio::test]
    async fn bcrypt_hashes_from_n8n_verify_and_ask_to_be_rehashed() -> Result<()> {
        let hasher = PasswordHasher::new(1)?;
        let bcrypt_hash =
            bcrypt::hash("Imported1", 4).map_err(|e| Error::Internal(e.to_string()))?;
        let verified = hasher
            .verify(&Secret::new("Imported1"), Some(&bcrypt_hash))
            .await?;
        assert_eq!(
            verified,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
        Ok(())
    }

    #[tokio::test]
    async fn no_hash_never_matches() -> Result<()> {
        let hasher = PasswordHasher::new(1)?;
        assert!(!hasher.verify(&Secret::new("anything"), None).await?.matches);
        Ok(())
    }
}
