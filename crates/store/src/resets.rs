//! Links sent by email: password resets and email confirmations.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{Email, User},
    store::{EmailVerification, PasswordReset, ResetStore, StoreError, StoreResult},
};

use crate::{SqlStore, rows::UserRow, sql::Sql, users::end_sessions};

/// A reset link and its user: the user's columns as they are (`u.*`), the
/// link's under `reset_`.
#[derive(sqlx::FromRow)]
struct ResetRow {
    #[sqlx(flatten)]
    user: UserRow,
    reset_token_hash: String,
    reset_created_at: i64,
    reset_expires_at: i64,
    reset_used_at: Option<i64>,
}

impl TryFrom<ResetRow> for (PasswordReset, User) {
    type Error = StoreError;

    fn try_from(row: ResetRow) -> StoreResult<Self> {
        let user = User::try_from(row.user)?;
        let reset = PasswordReset {
            token_hash: row.reset_token_hash,
            user_id: user.id,
            created_at: row.reset_created_at,
            expires_at: row.reset_expires_at,
            used_at: row.reset_used_at,
        };
        Ok((reset, user))
    }
}

/// A confirmation link and its user, the link's columns under `link_`.
#[derive(sqlx::FromRow)]
struct VerificationRow {
    #[sqlx(flatten)]
    user: UserRow,
    link_token_hash: String,
    link_email: String,
    link_created_at: i64,
    link_expires_at: i64,
}

impl TryFrom<VerificationRow> for (EmailVerification, User) {
    type Error = StoreError;

    fn try_from(row: VerificationRow) -> StoreResult<Self> {
        let user = User::try_from(row.user)?;
        let link = EmailVerification {
            token_hash: row.link_token_hash,
            user_id: user.id,
            email: Email::parse(&row.link_email)
                .map_err(|e| StoreError::Backend(format!("stored email: {e}")))?,
            created_at: row.link_created_at,
            expires_at: row.link_expires_at,
        };
        Ok((link, user))
    }
}

#[async_trait]
impl ResetStore for SqlStore {
    async fn insert_reset(&self, reset: &PasswordReset) -> StoreResult<()> {
        let mut write = self.write().await?;
        // The newest link replaces the earlier ones.
        write
            .execute(Sql::new("DELETE FROM password_resets WHERE user_id = $1").bind(reset.user_id))
            .await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&reset.token_hash)
                .bind(reset.user_id)
                .bind(reset.created_at)
                .bind(reset.expires_at),
            )
            .await?;
        write.commit().await
    }

    async fn reset(&self, token_hash: &str) -> StoreResult<Option<(PasswordReset, User)>> {
        let row: Option<ResetRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT u.*, r.token_hash AS reset_token_hash, \
                     r.created_at AS reset_created_at, r.expires_at AS reset_expires_at, \
                     r.used_at AS reset_used_at \
                     FROM password_resets r JOIN users u ON u.id = r.user_id \
                     WHERE r.token_hash = $1",
                )
                .bind(token_hash),
            )
            .await?;
        row.map(<(PasswordReset, User)>::try_from).transpose()
    }

    async fn consume_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<User>> {
        let mut write = self.auth_write().await?;
        // Single use: only one transaction finds the link unused.
        let claimed: Option<(String,)> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE password_resets SET used_at = $1 \
                     WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
                     RETURNING user_id",
                )
                .bind(now)
                .bind(token_hash),
            )
            .await?;
        let Some((user_id,)) = claimed else {
            return Ok(None);
        };
        let row: Option<UserRow> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE users SET password_hash = $1, password_change_required = 0, \
                     updated_at = $2 WHERE id = $3 AND password_hash IS NOT NULL RETURNING *",
                )
                .bind(password_hash)
                .bind(now)
                .bind(user_id),
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = User::try_from(row)?;
        end_sessions(&mut write, user.id, None).await?;
        write.commit().await?;
        Ok(Some(user))
    }

    async fn void_reset(&self, token_hash: &str) -> StoreResult<()> {
        self.execute(Sql::new("DELETE FROM password_resets WHERE token_hash = $1").bind(token_hash))
            .await
            .map(drop)
    }

    async fn insert_email_verification(&self, link: &EmailVerification) -> StoreResult<()> {
        let mut write = self.write().await?;
        // The newest link replaces the earlier ones.
        write
            .execute(
                Sql::new("DELETE FROM email_verifications WHERE user_id = $1").bind(link.user_id),
            )
            .await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO email_verifications \
                     (token_hash, user_id, email, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&link.token_hash)
                .bind(link.user_id)
                .bind(link.email.as_str())
                .bind(link.created_at)
                .bind(link.expires_at),
            )
            .await?;
        write.commit().await
    }

    async fn email_verification(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<(EmailVerification, User)>> {
        let row: Option<VerificationRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT u.*, v.token_hash AS link_token_hash, v.email AS link_email, \
                     v.created_at AS link_created_at, v.expires_at AS link_expires_at \
                     FROM email_verifications v JOIN users u ON u.id = v.user_id \
                     WHERE v.token_hash = $1 AND v.used_at IS NULL AND v.expires_at > $2 \
                     AND u.email = v.email",
                )
                .bind(token_hash)
                .bind(now),
            )
            .await?;
        row.map(<(EmailVerification, User)>::try_from).transpose()
    }

    async fn consume_email_verification(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<User>> {
        let mut write = self.auth_write().await?;
        // Single use: only one transaction finds the link unused.
        let claimed: Option<(String, String)> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE email_verifications SET used_at = $1 \
                     WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
                     RETURNING user_id, email",
                )
                .bind(now)
                .bind(token_hash),
            )
            .await?;
        let Some((user_id, email)) = claimed else {
            return Ok(None);
        };
        // Only the address the link was sent to: one changed since stays
        // unconfirmed.
        let row: Option<UserRow> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE users SET email_verified = 1, updated_at = $1 \
                     WHERE id = $2 AND email = $3 RETURNING *",
                )
                .bind(now)
                .bind(user_id)
                .bind(email),
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = User::try_from(row)?;
        write.commit().await?;
        Ok(Some(user))
    }
}
