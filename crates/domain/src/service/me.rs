//! Personal settings: names, email and password of the signed-in user.

use crate::{
    Error, Result,
    model::{Email, Name, Origin, User},
    secret::Secret,
    store::ProfileChange,
};

use super::{Usher, auth::Actor};

pub const WRONG_CURRENT_PASSWORD: &str = "Provided current password is incorrect.";

#[derive(Debug, Default)]
pub struct ProfileUpdate {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Needed when the email changes.
    pub current_password: Option<Secret>,
    /// Needed too when the email changes and MFA is on.
    pub factor: super::mfa::SecondFactor,
}

/// A changed profile, and the email that asks to confirm a new address
/// (None when the address did not change or email is not set up).
#[derive(Debug)]
pub struct ProfileUpdated {
    pub user: User,
    pub confirmation: Option<super::email_verification::ConfirmationMail>,
}

impl Usher {
    /// The signed-in user's account as stored now: for a page that shows
    /// what a change made earlier in the same request did to it.
    pub async fn current_user(&self, actor: &Actor) -> Result<User> {
        self.existing_user(actor.user.id).await
    }

    #[tracing::instrument(skip_all, fields(user = %actor.user.id), err(level = "info"))]
    pub async fn update_profile(
        &self,
        actor: &Actor,
        update: ProfileUpdate,
        origin: &Origin,
    ) -> Result<ProfileUpdated> {
        let user = &actor.user;
        if user.is_owner_shell() {
            return Err(Error::invalid("Set up the owner account first."));
        }
        let email = Email::parse(&update.email)?;
        self.refuse_look_alike(&email, Some(user.id)).await?;
        let first_name = Name::first(&update.first_name)?;
        let last_name = Name::last(&update.last_name)?;
        let email_changed = user.email.as_ref() != Some(&email);
        if email_changed && user.is_ldap() {
            return Err(Error::field("email", super::ldap::EMAIL_IN_DIRECTORY));
        }
        if email_changed {
            let password = update.current_password.unwrap_or_default();
            if password.is_empty() {
                return Err(Error::field(
                    "currentPassword",
                    "Enter your current password to change your email address.",
                ));
            }
            self.check_current_password(user, &password, "currentPassword")
                .await?;
            self.require_second_factor(user, &update.factor, |message| {
                Error::field("mfaCode", message)
            })
            .await?;
        }
        let change = ProfileChange {
            first_name: first_name.as_str().to_owned(),
            last_name: last_name.as_str().to_owned(),
            email,
            now: self.now(),
        };
        let updated = self
            .store
            .update_profile(user.id, &change, actor.session.as_deref())
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => Error::Conflict(format!(
                    "The email address {} is already in use by another user.",
                    change.email
                )),
                other => other,
            })?
            .ok_or_else(|| Error::not_found("This user no longer exists."))?;
        let detail = if email_changed {
            "email and names"
        } else {
            "names"
        };
        self.audit(
            Some(&updated),
            "user.profile_updated",
            Some(&updated),
            detail,
            origin,
        )
        .await;
        // The new address is the member's word only (the store marked it
        // unconfirmed): a link to it proves it reaches them.
        let confirmation = match &updated.email {
            Some(email)
                if email_changed && !updated.email_verified && self.mailer.is_configured() =>
            {
                Some(
                    self.mail_confirmation(&updated, email.clone(), origin)
                        .await,
                )
            }
            _ => None,
        };
        Ok(ProfileUpdated {
            user: updated,
            confirmation,
        })
    }

    /// Changes the signed-in user's password; every other session of theirs ends.
    #[tracing::instrument(skip_all, fields(user = %actor.user.id), err(level = "info"))]
    pub async fn change_own_password(
        &self,
        actor: &Actor,
        current: &Secret,
        new: &Secret,
        factor: &super::mfa::SecondFactor,
        origin: &Origin,
    ) -> Result<()> {
        let user = &actor.user;
        if user.is_ldap() {
            return Err(Error::invalid(super::ldap::PASSWORD_IN_DIRECTORY));
        }
        self.check_current_password(user, current, "currentPassword")
            .await?;
        self.require_second_factor(user, factor, |message| Error::field("mfaCode", message))
            .await?;
        self.config.password_policy.check(new)?;
        if user.password_change_required && new == current {
            return Err(Error::field(
                "password",
                "Choose a password different from the temporary one.",
            ));
        }
        let hash = self.hasher.hash(new).await?;
        self.store
            .set_password(user.id, &hash, false, self.now(), actor.session.as_deref())
            .await?;
        self.audit(Some(user), "user.password_changed", Some(user), "", origin)
            .await;
        Ok(())
    }
}
