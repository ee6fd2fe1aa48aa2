//! Operator commands that run outside any request.

use crate::{Error, Result};

use super::Usher;

impl Usher {
    /// Back to the first-run state; see `UserStore::reset_user_management`.
    pub async fn reset_user_management(&self) -> Result<()> {
        self.store.reset_user_management(self.now()).await?;
        let origin = crate::model::Origin {
            ip: "command line".into(),
            user_agent: String::new(),
        };
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
    /// Everyone with an account. Any signed-in user may list them (n8n shows
    /// members the list too); `_actor` is the proof of being signed in.
    pub async fn users(&self, _actor: &super::auth::Actor) -> Result<Vec<crate::model::User>> {
        Ok(self.store.list_users().await?)
    }
}
