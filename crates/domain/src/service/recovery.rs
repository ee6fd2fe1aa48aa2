//! Getting back in: reset by email, reset links and forced resets by admins,
//! and a link for the operator on the command line.
//!
//! Reset links live 20 minutes, work once, and die as soon as the password
//! or email changes. Asking for one answers the same, at once, whether or
//! not the email has an account: the lookup and the email happen after the
//! answer, in the background.

use crate::{
    Error, Result,
    clock::{HOUR, MINUTE, Millis},
    mail::ResetMail,
    model::{Email, Origin, Role, User, UserId},
    password::generate_temporary,
    secret::Secret,
    store::PasswordReset,
    token,
};

use super::{
    Usher,
    auth::{Actor, SignedIn},
    throttle::Limit,
};

pub const RESET_LIFETIME: Millis = 20 * MINUTE;
/// Wrong two-factor codes after which a reset link stops working.
pub const RESET_WRONG_CODES: i64 = 10;
const FORGOT_PER_EMAIL: Limit = Limit {
    attempts: 3,
    window: HOUR,
};
const FORGOT_PER_IP: Limit = Limit {
    attempts: 5,
    window: 5 * MINUTE,
};

pub const NO_EMAIL: &str = "Password reset by email is not set up on this instance. Ask the owner \
     or an admin for a reset link.";
pub const LINK_NOT_VALID: &str = "This password reset link is not valid: it has been used, has \
     expired (links last 20 minutes) or was replaced by a newer one. Ask for a new one.";

/// A link whose token cannot be one (missing, cut short): 400, where a
/// well-formed token that names no live link is 404 ([`LINK_NOT_VALID`]).
pub const INVALID_RESET_URL: &str = "Invalid password reset link: the token in it is \
     incomplete or damaged. Copy the whole link, or ask for a new one.";

impl Usher {
    /// "Forgot password": the same answer for every email.
    pub async fn forgot_password(&self, email: &str, origin: &Origin) -> Result<()> {
        self.user_management_enabled()?;
        if !self.mailer.is_configured() {
            return Err(Error::invalid(NO_EMAIL));
        }
        // Counted by the address as stored (IDNA, lower case), so that
        // `ann@ｅxample.com` counts as `ann@example.com`; what does not
        // parse counts by the per-address limit only.
        let parsed = Email::parse(email);
        if let Ok(email) = &parsed {
            self.throttle(&format!("forgot:email:{email}"), FORGOT_PER_EMAIL)
                .await?;
        }
        self.throttle(&format!("forgot:ip:{}", origin.ip), FORGOT_PER_IP)
            .await?;
        let email = parsed?;
        // SSO only: the same answer for every email, and the email only
        // for the owner (the others sign in with the provider).
        let owner_only = self.sso_only().await?;
        let usher = self.clone();
        let origin = origin.clone();
        tokio::spawn(async move {
            if let Err(error) = usher.send_reset_email(&email, owner_only, &origin).await {
                tracing::warn!(%error, "password reset email not sent");
            }
        });
        Ok(())
    }

    async fn send_reset_email(
        &self,
        email: &Email,
        owner_only: bool,
        origin: &Origin,
    ) -> Result<()> {
        let Some(user) = self.store.user_by_email(email).await? else {
            return Ok(());
        };
        // The directory keeps a directory user's password, and with single
        // sign-on only the owner has one here: the pages say so; nothing is
        // sent.
        // Nor to an address the person typed in and has not confirmed: a
        // typo or a lapsed domain would hand the account to whoever reads it.
        if user.is_pending()
            || user.is_ldap()
            || !user.email_verified
            || (owner_only && user.role != Role::Owner)
        {
            return Ok(());
        }
        let reset_url = self.new_reset_link(&user).await?;
        self.audit(
            None,
            "password_reset.requested",
            Some(&user),
            "by email",
            origin,
        )
        .await;
        let mail = ResetMail {
            reset_url,
            first_name: user.first_name.clone(),
        };
        self.mailer
            .send_password_reset(email, &mail)
            .await
            .map_err(|e| Error::Internal(format!("reset email: {e}")))
    }

    async fn new_reset_link(&self, user: &User) -> Result<String> {
        let token = token::generate();
        let now = self.now();
        let reset = PasswordReset {
            token_hash: token.hash,
            user_id: user.id,
            created_at: now,
            expires_at: now + RESET_LIFETIME,
            used_at: None,
        };
        self.store.insert_reset(&reset).await?;
        Ok(self.link(&format!("/change-password?token={}", token.secret.expose())))
    }

    /// Whether a reset link can still be used, and for whom.
    pub async fn resolve_password_reset(&self, token: &str) -> Result<User> {
        self.user_management_enabled()?;
        if !token::is_well_formed(token) {
            return Err(Error::field("token", INVALID_RESET_URL));
        }
        match self.store.reset(&token::hash(token)).await? {
            Some((reset, user))
                if reset.used_at.is_none()
                    && reset.expires_at > self.now()
                    && !user.is_pending() =>
            {
                Ok(user)
            }
            _ => Err(Error::not_found(LINK_NOT_VALID)),
        }
    }

    /// Sets a new password through a reset link: every session of the user
    /// ends, and the user is signed in anew.
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn reset_password(
        &self,
        token: &str,
        password: &Secret,
        factor: &super::mfa::SecondFactor,
        origin: &Origin,
    ) -> Result<SignedIn> {
        let user = self.resolve_password_reset(token).await?;
        if user.role != Role::Owner && self.sso_only().await? {
            return Err(Error::forbidden(super::sso::RESET_REFUSED));
        }
        self.config.password_policy.check(password)?;
        // A reset by email must not get round the second factor, and a link
        // is not a way to guess it: past RESET_WRONG_CODES wrong codes the
        // link stops working (on top of the user's limit per window).
        let hash = token::hash(token);
        let checked = self
            .require_second_factor(&user, factor, Error::Unauthorized)
            .await;
        if let Err(Error::Unauthorized(_)) = &checked {
            let now = self.now();
            let wrong = self
                .store
                .count_hit(&format!("reset-codes:{hash}"), 0, now + RESET_LIFETIME)
                .await?;
            if wrong >= RESET_WRONG_CODES {
                self.store.void_reset(&hash).await?;
                self.audit(
                    None,
                    "password_reset.voided",
                    Some(&user),
                    format!("{wrong} wrong two-factor codes"),
                    origin,
                )
                .await;
            }
        }
        checked?;
        let password_hash = self.hasher.hash(password).await?;
        let user = self
            .store
            .consume_reset(&hash, &password_hash, self.now())
            .await?
            .ok_or_else(|| Error::not_found(LINK_NOT_VALID))?;
        self.audit(
            Some(&user),
            "password_reset.completed",
            Some(&user),
            "",
            origin,
        )
        .await;
        self.start_session(user, origin).await
    }

    /// The user an admin acts on for a reset: active, and not the owner
    /// unless the owner asks.
    async fn reset_target(&self, actor: &Actor, id: UserId) -> Result<User> {
        actor.user.role.require_user_manager()?;
        let user = self.existing_user(id).await?;
        Self::may_reset_password(&actor.user, &user)?;
        Ok(user)
    }

    /// Whether `viewer` (the owner or an admin) may reset `user`'s
    /// password, by link or by force: the services' rule, which the pages
    /// also show their buttons and confirm steps by.
    pub fn may_reset_password(viewer: &User, user: &User) -> Result<()> {
        if user.role == Role::Owner && viewer.role != Role::Owner {
            return Err(Error::forbidden(
                "Only the owner can reset the owner's password.",
            ));
        }
        if user.is_pending() {
            return Err(Error::invalid(
                "This user has not accepted the invitation yet: resend the invitation instead.",
            ));
        }
        if user.is_ldap() {
            return Err(Error::invalid(super::ldap::RESET_IN_DIRECTORY));
        }
        Ok(())
    }

    /// A reset link for an admin to pass on (works without SMTP).
    pub async fn password_reset_link(
        &self,
        actor: &Actor,
        id: UserId,
        origin: &Origin,
    ) -> Result<String> {
        let user = self.reset_target(actor, id).await?;
        let link = self.new_reset_link(&user).await?;
        self.audit(
            Some(&actor.user),
            "password_reset.link_created",
            Some(&user),
            "",
            origin,
        )
        .await;
        Ok(link)
    }

    /// Budibase's forced reset: a new temporary password, shown once to the
    /// admin; the user's sessions end and the next sign-in must change it.
    pub async fn force_password_reset(
        &self,
        actor: &Actor,
        id: UserId,
        origin: &Origin,
    ) -> Result<Secret> {
        let user = self.reset_target(actor, id).await?;
        let temporary = generate_temporary();
        let hash = self.hasher.hash(&temporary).await?;
        self.store
            .set_password(user.id, &hash, true, self.now(), None)
            .await?;
        self.audit(
            Some(&actor.user),
            "password_reset.forced",
            Some(&user),
            "",
            origin,
        )
        .await;
        Ok(temporary)
    }

    /// `usher user:reset-password`: a link for an operator locked out of an
    /// instance without email. No actor: whoever runs the command owns the
    /// server.
    pub async fn operator_reset_link(&self, email: &str) -> Result<String> {
        let email = Email::parse(email)?;
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .filter(|u| !u.is_pending())
            .ok_or_else(|| Error::not_found(format!("No active user has the email {email}.")))?;
        if user.is_ldap() {
            return Err(Error::invalid(super::ldap::RESET_IN_DIRECTORY));
        }
        let link = self.new_reset_link(&user).await?;
        let origin = crate::model::Origin::command_line();
        self.audit(
            None,
            "password_reset.link_created",
            Some(&user),
            "usher user:reset-password",
            &origin,
        )
        .await;
        Ok(link)
    }
}
