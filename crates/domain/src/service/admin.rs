//! Operator commands that run outside any request.

use crate::Result;

use super::Usher;

impl Usher {
    /// Back to the first-run state; see `UserStore::reset_user_management`.
    pub async fn reset_user_management(&self) -> Result<()> {
        self.store.reset_user_management(self.now()).await?;
        Ok(())
    }
}

impl Usher {
    /// Everyone with an account. Any signed-in user may list them (n8n shows
    /// members the list too); `_actor` is the proof of being signed in.
    pub async fn users(&self, _actor: &super::auth::Actor) -> Result<Vec<crate::model::User>> {
        Ok(self.store.list_users().await?)
    }
}
