//! Confirming an email address. Relying parties of the OpenID provider
//! link accounts by a verified address, so Usher says `email_verified:
//! true` only for an address known to reach its user: set by an admin,
//! proved by an invitation, or given by the directory or a provider. A
//! member who changes their own address gets a link mailed to the new one;
//! until they follow it the address is unconfirmed.
//!
//! The links follow the password reset links: a random token stored only
//! as its hash, single use, expiring, the newest replacing the earlier
//! ones; bound to the address it was sent to, so a later change makes it
//! useless.

use crate::{
    Error, Result,
    clock::{HOUR, Millis},
    mail::VerifyMail,
    model::{Email, Origin, User},
    store::EmailVerification,
    token,
};

use super::{Usher, auth::Actor, throttle::Limit};

pub const VERIFY_LIFETIME: Millis = 24 * HOUR;
/// "Send the link again", per user.
const RESEND_PER_USER: Limit = Limit {
    attempts: 3,
    window: HOUR,
};

pub const LINK_NOT_VALID: &str = "This confirmation link is not valid: it has been used, has \
     expired (links last 24 hours), was replaced by a newer one, or the address changed since. \
     Send a new one from your personal settings.";
pub const INVALID_VERIFY_URL: &str = "Invalid confirmation link: the token in it is incomplete \
     or damaged. Copy the whole link, or send a new one from your personal settings.";
pub const NO_EMAIL: &str = "Email is not set up on this instance, so Usher cannot send a link \
     to confirm your address. Until it is confirmed, apps that sign you in through Usher are \
     told it is unconfirmed.";
pub const ALREADY_CONFIRMED: &str = "Your email address is confirmed already.";

/// What became of a confirmation email.
#[derive(Clone, Debug)]
pub struct ConfirmationMail {
    /// Where it went.
    pub email: Email,
    /// Why it was not sent (the mail server's words), None when it was.
    pub error: Option<String>,
}

impl Usher {
    /// "Send the link again": mails a new confirmation link to the
    /// signed-in user's unconfirmed address (3 an hour).
    #[tracing::instrument(skip_all, fields(user = %actor.user.id), err(level = "info"))]
    pub async fn resend_email_confirmation(
        &self,
        actor: &Actor,
        origin: &Origin,
    ) -> Result<ConfirmationMail> {
        let user = self.existing_user(actor.user.id).await?;
        let Some(email) = user.email.clone() else {
            return Err(Error::invalid("Set up the owner account first."));
        };
        if user.email_verified {
            return Err(Error::invalid(ALREADY_CONFIRMED));
        }
        if !self.mailer.is_configured() {
            return Err(Error::invalid(NO_EMAIL));
        }
        self.throttle(&format!("verify-email:{}", user.id), RESEND_PER_USER)
            .await?;
        Ok(self.mail_confirmation(&user, email, origin).await)
    }

    /// Makes a confirmation link for `email`, the user's address now, and
    /// mails it there. A failed send is reported, not raised: the address
    /// change it follows is done.
    pub(super) async fn mail_confirmation(
        &self,
        user: &User,
        email: Email,
        origin: &Origin,
    ) -> ConfirmationMail {
        let token = token::generate();
        let now = self.now();
        let link = EmailVerification {
            token_hash: token.hash,
            user_id: user.id,
            email: email.clone(),
            created_at: now,
            expires_at: now + VERIFY_LIFETIME,
        };
        if let Err(error) = self.store.insert_email_verification(&link).await {
            tracing::warn!(%error, "confirmation link not stored");
            return ConfirmationMail {
                email,
                error: Some("Usher could not store the link; try again in a moment.".into()),
            };
        }
        let mail = VerifyMail {
            verify_url: self.link(&format!("/verify-email?token={}", token.secret.expose())),
            first_name: user.first_name.clone(),
        };
        let error = match self.mailer.send_email_verification(&email, &mail).await {
            Ok(()) => None,
            Err(failure) => {
                tracing::warn!(%failure, "confirmation email not sent");
                Some(format!(
                    "The confirmation email could not be sent: {failure}"
                ))
            }
        };
        let detail = match &error {
            None => format!("link sent to {email}"),
            Some(_) => format!("link to {email} not sent"),
        };
        self.audit(
            Some(user),
            "user.email_confirmation_sent",
            Some(user),
            detail,
            origin,
        )
        .await;
        ConfirmationMail { email, error }
    }

    /// Whose address a confirmation link would confirm, for the page that
    /// asks to follow it (a GET changes nothing).
    pub async fn resolve_email_confirmation(&self, token: &str) -> Result<Email> {
        if !token::is_well_formed(token) {
            return Err(Error::field("token", INVALID_VERIFY_URL));
        }
        self.store
            .email_verification(&token::hash(token), self.now())
            .await?
            .map(|(link, _)| link.email)
            .ok_or_else(|| Error::not_found(LINK_NOT_VALID))
    }

    /// Follows a confirmation link: the address it was sent to counts as
    /// the user's from now on. Works once.
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn confirm_email(&self, token: &str, origin: &Origin) -> Result<User> {
        if !token::is_well_formed(token) {
            return Err(Error::field("token", INVALID_VERIFY_URL));
        }
        let user = self
            .store
            .consume_email_verification(&token::hash(token), self.now())
            .await?
            .ok_or_else(|| Error::not_found(LINK_NOT_VALID))?;
        let detail = user
            .email
            .as_ref()
            .map(Email::to_string)
            .unwrap_or_default();
        self.audit(
            Some(&user),
            "user.email_confirmed",
            Some(&user),
            detail,
            origin,
        )
        .await;
        Ok(user)
    }
}
