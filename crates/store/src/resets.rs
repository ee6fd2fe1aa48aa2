//! Password reset links.

use async_trait::async_trait;
use sqlx::Row as _;
use usher_domain::{
    clock::Millis,
    model::User,
    store::{PasswordReset, ResetStore, StoreResult},
};

use crate::{SqlStore, db_error, rows, rows::user_columns, users::end_sessions};

#[async_trait]
impl ResetStore for SqlStore {
    async fn insert_reset(&self, reset: &PasswordReset) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // The newest link replaces the earlier ones.
        sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
            .bind(reset.user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&reset.token_hash)
        .bind(reset.user_id.to_string())
        .bind(reset.created_at)
        .bind(reset.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn reset(&self, token_hash: &str) -> StoreResult<Option<(PasswordReset, User)>> {
        let row = sqlx::query(
            "SELECT r.token_hash AS r_token_hash, r.created_at AS r_created_at, \
             r.expires_at AS r_expires_at, r.used_at AS r_used_at, u.* \
             FROM password_resets r JOIN users u ON u.id = r.user_id WHERE r.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = rows::user(&row)?;
        let reset = PasswordReset {
            token_hash: row.try_get("r_token_hash").map_err(db_error)?,
            user_id: user.id,
            created_at: row.try_get("r_created_at").map_err(db_error)?,
            expires_at: row.try_get("r_expires_at").map_err(db_error)?,
            used_at: row.try_get("r_used_at").map_err(db_error)?,
        };
        Ok(Some((reset, user)))
    }

    async fn consume_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<User>> {
        let mut tx = self.begin_write().await?;
        // Single use: only one transaction finds the link unused.
        let claimed: Option<(String,)> = sqlx::query_as(
            "UPDATE password_resets SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some((user_id,)) = claimed else {
            return Ok(None);
        };
        const SQL: &str = concat!(
            "UPDATE users SET password_hash = $1, password_change_required = 0, updated_at = $2 \
             WHERE id = $3 AND password_hash IS NOT NULL RETURNING ",
            user_columns!()
        );
        let Some(row) = sqlx::query(SQL)
            .bind(password_hash)
            .bind(now)
            .bind(&user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let user = rows::user(&row)?;
        end_sessions(&mut tx, user.id, None).await?;
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(Some(user))
    }

    async fn void_reset(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM password_resets WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
