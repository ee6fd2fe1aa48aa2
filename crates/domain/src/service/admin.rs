//! Operator commands that run outside any request.

use crate::{Error, Result};

use super::Usher;

impl Usher {
    /// Back to the first-run state; see `UserStore::reset_user_management`.
    pub async fn reset_user_management(&self) -> Result<()> {
        self.store
            .reset_user_management(crate::model::UserId::new(), self.now())
            .await?;
        let origin = crate::model::Origin::command_line();
        self.audit(
            None,
            "user_management.reset",
            None,
            "usher user-management:reset",
            &origin,
        )
        .await;
        Ok(())
    }

    /// Whether the database answers (`/healthz/readiness`).
    pub async fn database_ready(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Removes expired sessions and rate-limit windows (run every few
    /// minutes by `usher start`).
    pub async fn purge_expired(&self) -> Result<()> {
        Ok(self.store.purge_expired(self.now()).await?)
    }

    /// Instances that share a database must share the encryption key, or one
    /// cannot read what another encrypted. The first start records a
    /// fingerprint of its key; a start with another key is refused.
    pub async fn check_encryption_key(&self, key: &crate::secret::Secret) -> Result<()> {
        use sha2::Digest as _;
        let fingerprint = hex::encode(sha2::Sha256::digest(format!(
            "usher-key-check:{}",
            key.expose()
        )));
        match self
            .store
            .setting(crate::store::keys::KEY_FINGERPRINT)
            .await?
        {
            None => Ok(self
                .store
                .put_setting(crate::store::keys::KEY_FINGERPRINT, &fingerprint)
                .await?),
            Some(stored) if stored == fingerprint => Ok(()),
            Some(_) => Err(Error::invalid(
                "this database was set up with another encryption key; give every instance the same \
                 N8N_ENCRYPTION_KEY (the first instance keeps its key in <N8N_USER_FOLDER>/.usher/encryption-key)",
            )),
        }
    }
}

impl Usher {
    /// Whether `actor` may see all of `user`'s profile (pending state, MFA,
    /// dates) or, as n8n shows members, only id, email, names and role.
    pub fn sees_full_profile(actor: &super::auth::Actor, user: &crate::model::User) -> bool {
        actor.user.role.manages_users() || actor.user.id == user.id
    }

    /// Everyone with an account. Any signed-in user may list them (n8n shows
    /// members the list too, trimmed by [`Self::sees_full_profile`]); `_actor`
    /// is the proof of being signed in.
    pub async fn users(&self, _actor: &super::auth::Actor) -> Result<Vec<crate::model::User>> {
        Ok(self.store.list_users().await?)
    }

    /// The people among `ids` who exist, for naming them (a personal
    /// project's person): what [`Self::users`] would say of them, without
    /// reading everyone. Each is read by id, which the store answers from
    /// memory.
    pub async fn users_named(
        &self,
        _actor: &super::auth::Actor,
        ids: impl IntoIterator<Item = crate::model::UserId>,
    ) -> Result<Vec<crate::model::User>> {
        let mut ids: Vec<_> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(user) = self.store.user_by_id(id).await? {
                found.push(user);
            }
        }
        Ok(found)
    }
}

/// The owner's own wording of the invitation email (Budibase: "customize the
/// invitation email"). The server checks the template compiles before saving.
impl Usher {
    fn require_owner(actor: &super::auth::Actor) -> Result<()> {
        if actor.user.role == crate::model::Role::Owner {
            Ok(())
        } else {
            Err(Error::forbidden(
                "Only the owner can change the invitation email.",
            ))
        }
    }

    /// (subject, HTML) as saved, or None where the standard one is used.
    pub async fn invite_wording(
        &self,
        actor: &super::auth::Actor,
    ) -> Result<(Option<String>, Option<String>)> {
        Self::require_owner(actor)?;
        Ok((
            self.store
                .setting(crate::store::keys::INVITE_SUBJECT)
                .await?,
            self.store
                .setting(crate::store::keys::INVITE_TEMPLATE)
                .await?,
        ))
    }

    pub async fn save_invite_wording(
        &self,
        actor: &super::auth::Actor,
        wording: Option<(&str, &str)>,
        origin: &crate::model::Origin,
    ) -> Result<()> {
        Self::require_owner(actor)?;
        let (subject, html) = wording.unwrap_or(("", ""));
        self.store
            .put_setting(crate::store::keys::INVITE_SUBJECT, subject)
            .await?;
        self.store
            .put_setting(crate::store::keys::INVITE_TEMPLATE, html)
            .await?;
        let detail = if wording.is_some() {
            "custom wording saved"
        } else {
            "back to the standard email"
        };
        self.audit(
            Some(&actor.user),
            "settings.invite_email",
            None,
            detail,
            origin,
        )
        .await;
        Ok(())
    }
}
