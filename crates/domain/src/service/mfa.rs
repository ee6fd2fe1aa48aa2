//! Two-factor authentication with TOTP (RFC 6238) and recovery codes.
//!
//! Enrolment: a secret and ten recovery codes are made and kept pending; a
//! current code confirms them. The secret is sealed with the instance key;
//! recovery codes are stored as hashes and work once. An accepted time-step
//! is recorded in the database, so a code works once also across instances.

use totp_rs::{Builder, Totp};

use crate::{
    Error, Result,
    clock::{MINUTE, Millis},
    model::{Origin, User},
    secret::Secret,
    store::keys,
    token,
};

use super::{
    Usher,
    auth::{Actor, SignedIn},
};

pub const MFA_NEEDED: &str =
    "Enter the code from your authenticator app: this account uses two-factor authentication.";
pub const INVALID_CODE: &str = "Invalid two-factor code.";
pub const INVALID_RECOVERY_CODE: &str = "This recovery code is not valid, or it was used already.";
pub const MFA_OFF: &str =
    "Two-factor authentication is turned off on this instance (N8N_MFA_ENABLED).";
pub const ENROL_REQUIRED: &str = "This instance requires two-factor authentication: set it up on Personal settings before you go on.";
const RECOVERY_CODES: usize = 10;
pub(super) const CHALLENGE_LIFETIME: Millis = 5 * MINUTE;

/// What enrolment shows the user once.
#[derive(Debug)]
pub struct MfaSetup {
    /// The secret in base32, to type into an app.
    pub secret: String,
    /// `otpauth://totp/...`, for the QR code.
    pub otpauth_url: String,
    pub recovery_codes: Vec<Secret>,
}

/// A set-up under way, as it is kept (sealed) until confirmed.
#[derive(serde::Deserialize)]
struct Pending {
    secret: String,
    codes: Vec<String>,
}

/// A second factor as given at sign-in.
#[derive(Debug, Default, Clone)]
pub struct SecondFactor {
    pub code: Option<String>,
    pub recovery_code: Option<String>,
}

impl SecondFactor {
    pub fn is_empty(&self) -> bool {
        self.code.as_deref().is_none_or(|c| c.trim().is_empty())
            && self
                .recovery_code
                .as_deref()
                .is_none_or(|c| c.trim().is_empty())
    }
}

/// The outcome of a password check on the sign-in page.
#[derive(Debug)]
pub enum LoginStep {
    Done(Box<SignedIn>),
    /// The password was right; the code is next. The token names this
    /// half-finished sign-in for five minutes.
    NeedsCode(Secret),
}

fn totp(secret: &[u8], account: &str) -> Result<Totp> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(account.to_owned())
        .with_issuer(Some("Usher"))
        .build()
        .map_err(|e| Error::Internal(format!("totp: {e}")))
}

/// Letters and digits that cannot be mistaken for one another (no l, o, 0,
/// 1): 32 of them, 5 bits a character.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

fn recovery_code() -> Secret {
    // 80 bits: 16 characters, each drawn uniformly from the 32 (a random
    // byte's low 5 bits), in four groups easy to read out and type.
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
        .collect();
    let text: String = chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-");
    Secret::new(text)
}

fn recovery_hash(code: &str) -> String {
    token::hash(&code.trim().to_lowercase().replace([' ', '-'], ""))
}

impl Usher {
    fn mfa_feature(&self) -> Result<()> {
        if self.config.mfa_disabled {
            Err(Error::not_found(MFA_OFF))
        } else {
            Ok(())
        }
    }

    fn account(user: &User) -> String {
        user.email
            .as_ref()
            .map_or_else(|| user.id.to_string(), |e| e.to_string())
    }

    async fn open_secret(&self, sealed: &str) -> Result<Vec<u8>> {
        let base32 = self.cipher()?.open(sealed)?;
        totp_rs::Secret::try_from_base32(&base32)
            .map(|secret| secret.as_ref().to_vec())
            .map_err(|e| Error::Internal(format!("totp secret: {e:?}")))
    }

    /// `POST /rest/mfa/can-enable`: whether the caller may set up
    /// two-factor authentication now, with the reason when not: the feature
    /// is on (N8N_MFA_ENABLED) and they have none yet. The same checks
    /// start every set-up.
    pub fn can_enable_mfa(&self, actor: &Actor) -> Result<()> {
        self.mfa_feature()?;
        Self::not_enrolled(actor)
    }

    /// `GET /rest/mfa/qr`: the secret and recovery codes being set up,
    /// pending until confirmed with a code. The same ones every time until
    /// then (asking again, or a second tab, shows what the app scanned
    /// already), unless [`Self::renew_mfa_setup`] makes new ones.
    pub async fn start_mfa_setup(&self, actor: &Actor) -> Result<MfaSetup> {
        self.can_enable_mfa(actor)?;
        if let Some(sealed) = self.store.pending_mfa_secret(actor.user.id).await?
            && let Some(pending) = self.open_pending(&sealed)
        {
            return self.mfa_setup(actor, pending.secret, pending.codes);
        }
        self.renew_mfa_setup(actor).await
    }

    /// The set-up under way, as [`Self::start_mfa_setup`] showed it, or
    /// None; reads only, so that a page can show it again on a GET.
    pub async fn pending_mfa_setup(&self, actor: &Actor) -> Result<Option<MfaSetup>> {
        if actor.user.mfa_enabled || Self::not_enrolled(actor).is_err() {
            return Ok(None);
        }
        let Some(sealed) = self.store.pending_mfa_secret(actor.user.id).await? else {
            return Ok(None);
        };
        match self.open_pending(&sealed) {
            Some(pending) => self
                .mfa_setup(actor, pending.secret, pending.codes)
                .map(Some),
            None => Ok(None),
        }
    }

    /// A new secret and new recovery codes for a set-up under way; the
    /// earlier ones stop counting.
    pub async fn renew_mfa_setup(&self, actor: &Actor) -> Result<MfaSetup> {
        self.can_enable_mfa(actor)?;
        let base32 = totp_rs::Secret::generate().to_base32();
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| recovery_code().expose().to_owned())
            .collect();
        let hashes: Vec<String> = codes.iter().map(|c| recovery_hash(c)).collect();
        // The pending set-up keeps its codes (sealed) to show them again;
        // only their hashes outlive it.
        let pending = serde_json::json!({"secret": base32, "codes": codes}).to_string();
        self.store
            .set_pending_mfa(actor.user.id, &self.cipher()?.seal(&pending)?, &hashes)
            .await?;
        self.mfa_setup(actor, base32, codes)
    }

    /// Enrolment is for a signed-in account: not for the owner shell that
    /// everyone acts as while set-up is skipped (whoever passes by would
    /// choose the real owner's second factor), nor without a session.
    fn not_enrolled(actor: &Actor) -> Result<()> {
        if actor.session.is_none() || actor.user.is_owner_shell() {
            return Err(Error::forbidden(
                "Two-factor authentication is for signed-in accounts: set up the owner account \
                 and sign in first.",
            ));
        }
        if actor.user.mfa_enabled {
            return Err(Error::invalid(
                "Two-factor authentication is on already. Turn it off first to set up a new device.",
            ));
        }
        Ok(())
    }

    /// A sealed pending set-up; None if it cannot be read (one sealed by an
    /// earlier version holds only the secret: a new one is made).
    fn open_pending(&self, sealed: &str) -> Option<Pending> {
        serde_json::from_str(&self.cipher().ok()?.open(sealed).ok()?).ok()
    }

    fn mfa_setup(&self, actor: &Actor, secret: String, codes: Vec<String>) -> Result<MfaSetup> {
        let bytes = totp_rs::Secret::try_from_base32(&secret)
            .map(|s| s.as_ref().to_vec())
            .map_err(|e| Error::Internal(format!("totp secret: {e:?}")))?;
        let otpauth_url = totp(&bytes, &Self::account(&actor.user))?
            .to_url()
            .map_err(|e| Error::Internal(format!("otpauth: {e}")))?;
        Ok(MfaSetup {
            secret,
            otpauth_url,
            recovery_codes: codes.into_iter().map(Secret::new).collect(),
        })
    }

    /// `POST /rest/mfa/enable`: a current code confirms the pending set-up.
    pub async fn enable_mfa(&self, actor: &Actor, code: &str, origin: &Origin) -> Result<()> {
        self.mfa_feature()?;
        Self::not_enrolled(actor)?;
        let sealed = self
            .store
            .pending_mfa_secret(actor.user.id)
            .await?
            .ok_or_else(|| {
                Error::invalid("Start the set-up first: there is no secret to confirm.")
            })?;
        let pending = self.open_pending(&sealed).ok_or_else(|| {
            Error::invalid("Start the set-up again: the secret being set up cannot be read.")
        })?;
        let secret = totp_rs::Secret::try_from_base32(&pending.secret)
            .map(|s| s.as_ref().to_vec())
            .map_err(|e| Error::Internal(format!("totp secret: {e:?}")))?;
        let right = self
            .guarded(actor.user.id, self.accept_code(&actor.user, &secret, code))
            .await?;
        if !right {
            return Err(Error::MfaCodeRejected(format!(
                "{INVALID_CODE} Check the time on your phone and try the newest code."
            )));
        }
        // Only the secret goes on: the codes live on as hashes.
        let sealed_secret = self.cipher()?.seal(&pending.secret)?;
        self.store
            .confirm_mfa(actor.user.id, &sealed_secret, self.now())
            .await?;
        // This session just proved the second factor: apps that ask for one
        // (forward authentication) let it through without a new sign-in.
        if let Some(session) = &actor.session {
            self.store.mark_session_mfa(session).await?;
        }
        self.audit(
            Some(&actor.user),
            "mfa.enabled",
            Some(&actor.user),
            "",
            origin,
        )
        .await;
        Ok(())
    }

    /// Checks a TOTP code (one step of skew either way) and records its step:
    /// the same code does not work twice.
    async fn accept_code(&self, user: &User, secret: &[u8], code: &str) -> Result<bool> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let now_seconds = u64::try_from(self.now() / 1000).unwrap_or(0);
        let Some(step) = totp(secret, &Self::account(user))?.check(&code, now_seconds) else {
            return Ok(false);
        };
        Ok(self
            .store
            .use_totp_step(user.id, i64::try_from(step).unwrap_or(i64::MAX))
            .await?)
    }

    /// A code or a recovery code for a user with MFA on, within the user's
    /// limit of wrong answers (see [`super::throttle`]).
    async fn check_second_factor(&self, user: &User, factor: &SecondFactor) -> Result<bool> {
        self.guarded(user.id, async {
            if let Some(code) = factor.code.as_deref().filter(|c| !c.trim().is_empty()) {
                let sealed = self
                    .store
                    .mfa_secret(user.id)
                    .await?
                    .ok_or_else(|| Error::Internal("mfa on without a secret".into()))?;
                let secret = self.open_secret(&sealed).await?;
                return self.accept_code(user, &secret, code).await;
            }
            if let Some(code) = factor
                .recovery_code
                .as_deref()
                .filter(|c| !c.trim().is_empty())
            {
                return Ok(self
                    .store
                    .use_recovery_code(user.id, &recovery_hash(code), self.now())
                    .await?);
            }
            Ok(false)
        })
        .await
    }

    /// For every action MFA protects: no factor asks for one (998), a wrong
    /// one is refused with `wrong`, in words that say which kind was wrong.
    pub(super) async fn require_second_factor(
        &self,
        user: &User,
        factor: &SecondFactor,
        wrong: fn(String) -> Error,
    ) -> Result<()> {
        if !user.mfa_enabled {
            return Ok(());
        }
        if factor.is_empty() {
            return Err(Error::MfaRequired(MFA_NEEDED.into()));
        }
        if self.check_second_factor(user, factor).await? {
            return Ok(());
        }
        let by_app = factor.code.as_deref().is_some_and(|c| !c.trim().is_empty());
        Err(wrong(if by_app {
            INVALID_CODE.to_owned()
        } else {
            INVALID_RECOVERY_CODE.to_owned()
        }))
    }

    /// The otpauth URI of a secret being set up, to draw its QR code again.
    pub fn otpauth_url(&self, actor: &Actor, secret_base32: &str) -> Result<String> {
        let bytes = totp_rs::Secret::try_from_base32(secret_base32)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| Error::invalid("That is not a two-factor secret."))?;
        totp(&bytes, &Self::account(&actor.user))?
            .to_url()
            .map_err(|e| Error::Internal(format!("otpauth: {e}")))
    }

    /// `POST /rest/mfa/disable`: needs a code or a recovery code.
    pub async fn disable_mfa(
        &self,
        actor: &Actor,
        factor: &SecondFactor,
        origin: &Origin,
    ) -> Result<()> {
        if !actor.user.mfa_enabled {
            return Err(Error::invalid(
                "Two-factor authentication is not on for this account.",
            ));
        }
        self.require_second_factor(&actor.user, factor, Error::Forbidden)
            .await?;
        self.store.disable_mfa(actor.user.id, self.now()).await?;
        self.audit(
            Some(&actor.user),
            "mfa.disabled",
            Some(&actor.user),
            "",
            origin,
        )
        .await;
        Ok(())
    }

    /// `POST /rest/mfa/verify`: checks a code (for a client that wants to
    /// confirm the user holds the device).
    pub async fn verify_mfa(&self, actor: &Actor, factor: &SecondFactor) -> Result<()> {
        if !actor.user.mfa_enabled {
            return Err(Error::invalid(
                "Two-factor authentication is not on for this account.",
            ));
        }
        self.require_second_factor(&actor.user, factor, Error::MfaCodeRejected)
            .await
    }

    /// New recovery codes; the old ones stop working. Needs a current code.
    pub async fn regenerate_recovery_codes(
        &self,
        actor: &Actor,
        factor: &SecondFactor,
        origin: &Origin,
    ) -> Result<Vec<Secret>> {
        if !actor.user.mfa_enabled {
            return Err(Error::invalid(
                "Two-factor authentication is not on for this account.",
            ));
        }
        self.require_second_factor(&actor.user, factor, Error::Forbidden)
            .await?;
        let codes: Vec<Secret> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<String> = codes.iter().map(|c| recovery_hash(c.expose())).collect();
        self.store
            .replace_recovery_codes(actor.user.id, &hashes)
            .await?;
        self.audit(
            Some(&actor.user),
            "mfa.recovery_codes_regenerated",
            Some(&actor.user),
            "",
            origin,
        )
        .await;
        Ok(codes)
    }

    /// The owner requires (or stops requiring) MFA for everyone.
    pub async fn require_mfa_for_everyone(
        &self,
        actor: &Actor,
        required: bool,
        origin: &Origin,
    ) -> Result<()> {
        self.mfa_feature()?;
        if actor.user.role != crate::model::Role::Owner {
            return Err(Error::forbidden(
                "Only the owner can require two-factor authentication.",
            ));
        }
        self.store
            .put_setting(keys::MFA_REQUIRED, if required { "true" } else { "false" })
            .await?;
        let detail = if required {
            "required for everyone"
        } else {
            "optional"
        };
        self.audit(Some(&actor.user), "mfa.enforcement", None, detail, origin)
            .await;
        Ok(())
    }

    /// `usher mfa:disable`: for a user who lost their device. No actor:
    /// whoever runs the command owns the server.
    pub async fn operator_disable_mfa(&self, email: &str) -> Result<()> {
        let email = crate::model::Email::parse(email)?;
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .ok_or_else(|| Error::not_found(format!("No user has the email {email}.")))?;
        if !user.mfa_enabled {
            return Err(Error::invalid(format!(
                "Two-factor authentication is not on for {email}."
            )));
        }
        self.store.disable_mfa(user.id, self.now()).await?;
        let origin = crate::model::Origin::command_line();
        self.audit(
            None,
            "mfa.disabled",
            Some(&user),
            "usher mfa:disable",
            &origin,
        )
        .await;
        Ok(())
    }

    /// The sign-in page's first step: the password, then a code if needed.
    pub async fn begin_login(
        &self,
        login: &str,
        password: &Secret,
        origin: &Origin,
    ) -> Result<LoginStep> {
        let user = self.check_sign_in(login, password, origin).await?;
        if !user.mfa_enabled {
            self.audit(Some(&user), "login.succeeded", Some(&user), "", origin)
                .await;
            return Ok(LoginStep::Done(Box::new(
                self.start_session(user, origin).await?,
            )));
        }
        let challenge = token::generate();
        self.store
            .insert_challenge(&challenge.hash, user.id, self.now() + CHALLENGE_LIFETIME)
            .await?;
        Ok(LoginStep::NeedsCode(challenge.secret))
    }

    /// The sign-in page's second step. Wrong codes count toward the
    /// sign-in throttling like wrong passwords.
    pub async fn finish_login(
        &self,
        challenge: &str,
        factor: &SecondFactor,
        origin: &Origin,
    ) -> Result<SignedIn> {
        let hash = token::hash(challenge);
        let user = self
            .store
            .challenge(&hash, self.now())
            .await?
            .ok_or_else(|| {
                Error::Unauthorized(
                    "This sign-in took too long. Enter your email and password again.".into(),
                )
            })?;
        let email = user
            .email
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default();
        self.throttle(
            &self.login_key(&email, Some(&user), origin),
            super::auth::LOGIN_PER_EMAIL,
        )
        .await?;
        self.require_second_factor(&user, factor, Error::Unauthorized)
            .await?;
        self.store.delete_challenge(&hash).await?;
        self.audit(
            Some(&user),
            "login.succeeded",
            Some(&user),
            "with two-factor code",
            origin,
        )
        .await;
        self.start_session(user, origin).await
    }
}

impl Actor {
    /// MFA is required on the instance and this signed-in user has none yet.
    pub fn must_enrol_mfa(&self, required: bool) -> bool {
        required && self.session.is_some() && !self.user.mfa_enabled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B, SHA-1 secret "12345678901234567890": the
    /// 8-digit codes end in the 6-digit codes our authenticators show.
    #[test]
    fn rfc_6238_test_vectors_give_the_expected_codes() -> Result<()> {
        let totp = totp(b"12345678901234567890", "vector@example.com")?;
        for (time, eight_digits) in [
            (59_u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(
                totp.generate(time).to_string(),
                &eight_digits[2..],
                "t={time}"
            );
            assert!(totp.check(&eight_digits[2..], time).is_some());
        }
        Ok(())
    }

    /// 80 bits as the comment says: every character of the alphabet turns
    /// up about equally often, in every position.
    #[test]
    fn recovery_code_characters_are_uniform_over_the_alphabet() {
        let mut seen = [[0u32; 32]; 16];
        let draws = 4000;
        for _ in 0..draws {
            let code = recovery_code();
            let letters = code.expose().replace('-', "");
            for (position, c) in letters.bytes().enumerate() {
                let index = RECOVERY_ALPHABET
                    .iter()
                    .position(|&a| a == c)
                    .unwrap_or_else(|| panic!("{c} is not in the alphabet"));
                seen[position][index] += 1;
            }
        }
        // Expected 125 per cell; a uniform draw stays well inside 60..200,
        // the old byte-of-base64 mapping never drew five of the letters.
        for (position, counts) in seen.iter().enumerate() {
            for (index, &count) in counts.iter().enumerate() {
                assert!(
                    (60..200).contains(&count),
                    "position {position}: '{}' drawn {count} times of {draws}",
                    char::from(RECOVERY_ALPHABET[index])
                );
            }
        }
    }

    #[test]
    fn recovery_codes_are_readable_unique_and_forgiving_to_type() {
        let code = recovery_code();
        assert_eq!(code.expose().len(), 19, "xxxx-xxxx-xxxx-xxxx");
        assert_ne!(code, recovery_code());
        assert_eq!(
            recovery_hash(code.expose()),
            recovery_hash(&code.expose().to_uppercase().replace('-', " "))
        );
    }
}
