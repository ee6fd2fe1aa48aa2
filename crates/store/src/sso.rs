//! Single sign-on through an outside OpenID Connect provider: who a
//! provider's person is in Usher, and the sign-ins under way.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{Role, User, UserId},
    store::{SsoStore, StoreResult},
};

use crate::{SqlStore, rows::UserRow, sql::Sql, users::insert_user};

#[async_trait]
impl SsoStore for SqlStore {
    async fn insert_sso_login(
        &self,
        state_hash: &str,
        sealed: &str,
        expires_at: Millis,
    ) -> StoreResult<()> {
        self.execute(
            Sql::new("INSERT INTO sso_logins (state_hash, sealed, expires_at) VALUES ($1, $2, $3)")
                .bind(state_hash)
                .bind(sealed)
                .bind(expires_at),
        )
        .await
        .map(drop)
    }

    async fn take_sso_login(&self, state_hash: &str) -> StoreResult<Option<(String, Millis)>> {
        // One statement: of several callbacks with one state, exactly one
        // gets the row back, whatever instance they reach.
        self.fetch_optional(
            Sql::new("DELETE FROM sso_logins WHERE state_hash = $1 RETURNING sealed, expires_at")
                .bind(state_hash),
        )
        .await
    }

    async fn sso_user(&self, issuer: &str, subject: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT u.* FROM sso_identities i JOIN users u ON u.id = i.user_id \
                     WHERE i.issuer = $1 AND i.subject = $2",
                )
                .bind(issuer)
                .bind(subject),
            )
            .await?;
        row.map(User::try_from).transpose()
    }

    async fn link_sso(
        &self,
        issuer: &str,
        subject: &str,
        user: UserId,
        now: Millis,
    ) -> StoreResult<bool> {
        // Enabled members only, decided by the row as it is when the link
        // is made: the owner and admins are never linked by email, nor a
        // disabled member. Nor an account with another subject of this
        // issuer: the provider may have given its address to someone new.
        let linked = self
            .execute(
                Sql::new(
                    "INSERT INTO sso_identities (issuer, subject, user_id, created_at) \
                     SELECT $1, $2, id, $4 FROM users \
                     WHERE id = $3 AND role = $5 AND disabled = 0 \
                     AND NOT EXISTS (SELECT 1 FROM sso_identities \
                         WHERE issuer = $1 AND user_id = $3)",
                )
                .bind(issuer)
                .bind(subject)
                .bind(user)
                .bind(now)
                .bind(Role::Member.as_str()),
            )
            .await?;
        Ok(linked == 1)
    }

    async fn insert_sso_user(&self, user: &User, issuer: &str, subject: &str) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        insert_user(&mut write, user).await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO sso_identities (issuer, subject, user_id, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(issuer)
                .bind(subject)
                .bind(user.id)
                .bind(user.created_at),
            )
            .await?;
        write.commit().await
    }
}
