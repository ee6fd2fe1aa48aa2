//! Every check of something a person must know or hold is counted here, in
//! the database, so that every instance shares the counts:
//!
//! - [`Usher::throttle`] counts every attempt against a key (sign-in per
//!   email and per address, password reset requests) and refuses past a
//!   limit per window;
//! - [`Usher::guarded`] runs one check of a secret a *known* user presents (a
//!   two-factor code, a recovery code, the current password) and counts only
//!   the wrong answers, per user: after [`WRONG_SECRETS`] wrong answers in
//!   its window, every check of that user's secrets is refused with 429 until
//!   the window ends, whichever route asked. Each attempt takes its place in
//!   the count *before* it is checked and gives it back only when it was
//!   right, so that many guesses sent at once cannot all slip under the
//!   limit;
//! - sign-in attempts are counted per email, except from a browser that
//!   signed in as that user before: it shows a *device cookie* (OWASP's
//!   advice against targeted lock-out) and its attempts count against that
//!   cookie only, so a stranger sending wrong passwords for the owner's
//!   email cannot keep the owner out.

use crate::{
    Error, Result,
    clock::{MINUTE, Millis},
    model::{Origin, User, UserId},
    secret::Secret,
    token,
};

use super::Usher;

/// How many attempts a window allows.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub attempts: i64,
    pub window: Millis,
}

/// Wrong two-factor codes, recovery codes and current passwords, per user.
pub const WRONG_SECRETS: Limit = Limit {
    attempts: 5,
    window: 5 * MINUTE,
};

/// A place taken in a window's count.
struct Slot {
    key: String,
    window_start: Millis,
}

/// A place taken within the window's limit, or past it.
enum Taken {
    Within(Slot),
    Over(Slot, Error),
}

impl Usher {
    /// Counts one attempt against `key`; refuses once the window's limit is
    /// passed.
    pub(super) async fn throttle(&self, key: &str, limit: Limit) -> Result<()> {
        match self.take_slot(key.to_owned(), limit).await? {
            Taken::Within(_) => Ok(()),
            Taken::Over(_, refusal) => Err(refusal),
        }
    }

    /// Counts one attempt against `key`: the place it took, and whether the
    /// window's limit is passed (with the refusal to answer then).
    async fn take_slot(&self, key: String, limit: Limit) -> Result<Taken> {
        let now = self.now();
        let window_start = now - now.rem_euclid(limit.window);
        let window_end = window_start + limit.window;
        let count = self.store.count_hit(&key, window_start, window_end).await?;
        let slot = Slot { key, window_start };
        if count > limit.attempts {
            let wait = u64::try_from((window_end - now + 999) / 1000).unwrap_or(1);
            return Ok(Taken::Over(slot, Error::slow_down(wait.max(1))));
        }
        Ok(Taken::Within(slot))
    }

    /// Runs `check`, a check of a secret that `user` presents, within the
    /// user's [`WRONG_SECRETS`] limit; a right answer does not count.
    pub(super) async fn guarded(
        &self,
        user: UserId,
        check: impl Future<Output = Result<bool>>,
    ) -> Result<bool> {
        self.guarded_key(format!("secret:{user}"), WRONG_SECRETS, check)
            .await
    }

    /// Runs `check`, a check of a secret counted against `key` (a client
    /// secret, per client), within `limit`; a right answer does not count,
    /// and neither does an attempt refused unchecked: otherwise right
    /// answers arriving together, refused only because they were in flight
    /// at once, would fill the window and keep refusing until it ends.
    pub(super) async fn guarded_key(
        &self,
        key: String,
        limit: Limit,
        check: impl Future<Output = Result<bool>>,
    ) -> Result<bool> {
        let (slot, refused) = match self.take_slot(key, limit).await? {
            Taken::Within(slot) => (slot, None),
            Taken::Over(slot, refusal) => (slot, Some(refusal)),
        };
        let right = match refused {
            Some(refusal) => Err(refusal),
            None => check.await,
        };
        if !matches!(right, Ok(false)) {
            self.store.forgive_hit(&slot.key, slot.window_start).await?;
        }
        right
    }

    /// The counter a sign-in attempt for `login` (an email, lower-cased)
    /// goes to: its device cookie's, when the browser shows a valid one for
    /// that login and `user` (its account, if there is one), else the
    /// login's own, which strangers share.
    pub(super) fn login_key(&self, login: &str, user: Option<&User>, origin: &Origin) -> String {
        match user.and_then(|user| self.trusted_device(login, user, origin)) {
            Some(device) => format!("login:device:{device}"),
            None => format!("login:email:{login}"),
        }
    }

    /// A device cookie for a browser that just signed in as `user`: the
    /// email, a random id, when it was made and a fingerprint of the
    /// password it was made with, sealed with the instance key (so it
    /// cannot be forged or read), kept by the browser.
    pub(super) fn device_token(&self, user: &User) -> Option<Secret> {
        let email = user.email.as_ref()?;
        let id = token::generate().hash;
        let now = self.now();
        let password = password_fingerprint(user);
        let sealed = self
            .cipher()
            .ok()?
            .seal(&format!("{DEVICE}{email}\n{id}\n{now}\n{password}"))
            .ok()?;
        Some(Secret::new(sealed))
    }

    /// The id of the device cookie `origin` shows, if it is one of ours,
    /// was made for `login`, within [`DEVICE_LIFETIME`], and with the
    /// password `user` has now (a password change or reset ends every
    /// device's standing).
    fn trusted_device(&self, login: &str, user: &User, origin: &Origin) -> Option<String> {
        let plain = self.cipher().ok()?.open(origin.device.as_deref()?).ok()?;
        let mut parts = plain.strip_prefix(DEVICE)?.split('\n');
        let (email, id, made, password) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let made: Millis = made.parse().ok()?;
        let fresh = self.now() - made < DEVICE_LIFETIME;
        (email == login && fresh && password == password_fingerprint(user)).then(|| id.to_owned())
    }

    /// The one check of a signed-in user's current password (changing the
    /// password or the email, handing over ownership), within the user's
    /// [`WRONG_SECRETS`] limit; a wrong one is refused naming `field`.
    pub(super) async fn check_current_password(
        &self,
        user: &User,
        password: &Secret,
        field: &'static str,
    ) -> Result<()> {
        let check = async {
            let verified = self
                .hasher
                .verify(password, user.password_hash.as_deref())
                .await?;
            Ok(verified.matches)
        };
        if self.guarded(user.id, check).await? {
            Ok(())
        } else {
            Err(Error::field(field, super::me::WRONG_CURRENT_PASSWORD))
        }
    }
}

/// What a sealed device cookie starts with, so that no other sealed value
/// passes for one.
const DEVICE: &str = "device:v2:";

/// How long a device cookie counts: as long as the browser keeps it.
const DEVICE_LIFETIME: Millis = 365 * 24 * 60 * MINUTE;

/// Which password a device cookie was made with: a few bytes of a hash of
/// the stored hash, nothing a copy of the cookie could be checked against.
fn password_fingerprint(user: &User) -> String {
    use sha2::Digest as _;
    let hash = user.password_hash.as_deref().unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(format!("usher-device:{hash}"))[..8])
}

#[cfg(test)]
mod tests {
    /// Every check of a password goes through this module (or sign-in,
    /// which has its own counters): a new `hasher.verify` elsewhere would be
    /// a way to guess without limit.
    #[test]
    fn passwords_are_checked_only_under_a_limit() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/service");
        let mut folders = vec![folder];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{e}")) {
                let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // The code, not its tests.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let verifies = code.matches(".verify(").count();
                let allowed = match name {
                    // check_current_password
                    "throttle.rs" => 1,
                    // login, after its per-email and per-address counters
                    "auth.rs" => 1,
                    // an unlinked admin's Usher password while LDAP sign-in
                    // is on: inside login, after the same counters
                    "ldap.rs" => 1,
                    // the new password must differ from the temporary one,
                    // which the session's holder signed in with: nothing to
                    // guess there
                    "onboarding.rs" => 1,
                    _ => 0,
                };
                assert!(
                    verifies <= allowed,
                    "{}: a password is checked outside the limits",
                    path.display()
                );
            }
        }
    }
}
