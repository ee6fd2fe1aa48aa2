//! Budibase's basic onboarding: an admin creates users directly, each with a
//! generated temporary password shown once; such a user must choose a new
//! password at the first sign-in before anything else works.

use crate::{
    Error, Result,
    model::{Email, Name, Origin, User, UserId},
    password::generate_temporary,
    secret::Secret,
};

use super::{
    Usher,
    auth::Actor,
    invitations::{assignable_role, check_batch},
};

#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Option<String>,
}

/// The outcome for one user of a creation request.
#[derive(Clone, Debug)]
pub struct Created {
    pub email: String,
    pub user: Option<User>,
    /// Shown once, to the admin who created the user.
    pub temporary_password: Option<Secret>,
    pub error: Option<String>,
}

pub const CHANGE_REQUIRED: &str =
    "You signed in with a temporary password: choose your own password before you go on.";

impl Actor {
    /// A temporary password is in use: nothing but choosing a new one (and
    /// signing out) is allowed.
    pub fn must_change_password(&self) -> bool {
        self.user.password_change_required && self.session.is_some()
    }
}

impl Usher {
    #[tracing::instrument(skip_all, fields(actor = %actor.user.id, count = users.len()), err(level = "info"))]
    pub async fn create_users(
        &self,
        actor: &Actor,
        users: Vec<NewUser>,
        origin: &Origin,
    ) -> Result<Vec<Created>> {
        actor.user.role.require_user_manager()?;
        check_batch(users.len())?;
        let roles = users
            .iter()
            .map(|u| assignable_role(u.role.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let mut outcomes = Vec::with_capacity(users.len());
        for (new, role) in users.into_iter().zip(roles) {
            let outcome = match self.create_one(actor, &new, role, origin).await {
                Ok(outcome) => outcome,
                Err(Error::Internal(cause)) => return Err(Error::Internal(cause)),
                Err(refused) => Created {
                    email: new.email.trim().to_owned(),
                    user: None,
                    temporary_password: None,
                    error: Some(refused.to_string()),
                },
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn create_one(
        &self,
        actor: &Actor,
        new: &NewUser,
        role: crate::model::Role,
        origin: &Origin,
    ) -> Result<Created> {
        let email = Email::parse(&new.email)?;
        self.refuse_look_alike(&email, None).await?;
        let optional = |text: &str, parse: fn(&str) -> Result<Name>| -> Result<String> {
            if text.trim().is_empty() {
                Ok(String::new())
            } else {
                parse(text).map(|n| n.as_str().to_owned())
            }
        };
        let first_name = optional(&new.first_name, Name::first)?;
        let last_name = optional(&new.last_name, Name::last)?;
        let temporary = generate_temporary();
        let now = self.now();
        let user = User {
            id: UserId::new(),
            email: Some(email.clone()),
            // Set by an admin, who vouches for it (as n8n's admins do).
            email_verified: true,
            first_name,
            last_name,
            role,
            password_hash: Some(self.hasher.hash(&temporary).await?),
            password_change_required: true,
            mfa_enabled: false,
            invited_by: Some(actor.user.id),
            invited_at: None,
            created_at: now,
            updated_at: now,
            last_active_at: None,
            ldap_id: None,
            disabled: false,
        };
        self.store
            .insert_user(&user)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => Error::Conflict(format!("{email} already has an account.")),
                other => other,
            })?;
        self.audit(
            Some(&actor.user),
            "user.created",
            Some(&user),
            format!("basic onboarding, {}", role.as_str()),
            origin,
        )
        .await;
        Ok(Created {
            email: email.to_string(),
            user: Some(user),
            temporary_password: Some(temporary),
            error: None,
        })
    }

    /// The new password of a user who signed in with a temporary one. The
    /// temporary password was given at sign-in, so it is not asked again;
    /// the new one must differ from it.
    pub async fn replace_temporary_password(
        &self,
        actor: &Actor,
        new: &Secret,
        origin: &Origin,
    ) -> Result<()> {
        if !actor.must_change_password() {
            return Err(Error::invalid(
                "Your password is not temporary: change it in Personal settings.",
            ));
        }
        self.config.password_policy.check(new)?;
        let same = self
            .hasher
            .verify(new, actor.user.password_hash.as_deref())
            .await?;
        if same.matches {
            return Err(Error::field(
                "password",
                "Choose a password different from the temporary one.",
            ));
        }
        let hash = self.hasher.hash(new).await?;
        self.store
            .set_password(
                actor.user.id,
                &hash,
                false,
                self.now(),
                actor.session.as_deref(),
            )
            .await?;
        self.audit(
            Some(&actor.user),
            "user.password_changed",
            Some(&actor.user),
            "temporary password replaced",
            origin,
        )
        .await;
        Ok(())
    }
}
