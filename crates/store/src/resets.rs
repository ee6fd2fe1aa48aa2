//! Password reset links.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::User,
    store::{PasswordReset, ResetStore, StoreError, StoreResult},
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
}
