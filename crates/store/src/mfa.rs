//! Two-factor authentication: secrets, recovery codes, used steps, and
//! sign-in challenges.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    store::{MfaStore, StoreResult},
};

use crate::{SqlStore, db_error, rows, rows::user_columns};

#[async_trait]
impl MfaStore for SqlStore {
    async fn set_pending_mfa(
        &self,
        user: UserId,
        sealed_secret: &str,
        code_hashes: &[String],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET mfa_pending_secret = $1 WHERE id = $2")
            .bind(sealed_secret)
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND pending = 1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_codes(&mut tx, user, code_hashes, true).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn pending_mfa_secret(&self, user: UserId) -> StoreResult<Option<String>> {
        let found: Option<(Option<String>,)> =
            sqlx::query_as("SELECT mfa_pending_secret FROM users WHERE id = $1")
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(found.and_then(|(secret,)| secret))
    }

    async fn confirm_mfa(&self, user: UserId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET mfa_secret = mfa_pending_secret, mfa_pending_secret = NULL, mfa_enabled = 1, \
             updated_at = $1 WHERE id = $2 AND mfa_pending_secret IS NOT NULL",
        )
        .bind(now)
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND pending = 0",
            "UPDATE mfa_recovery_codes SET pending = 0 WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(true)
    }

    async fn mfa_secret(&self, user: UserId) -> StoreResult<Option<String>> {
        let found: Option<(Option<String>,)> =
            sqlx::query_as("SELECT mfa_secret FROM users WHERE id = $1 AND mfa_enabled = 1")
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(found.and_then(|(secret,)| secret))
    }

    async fn disable_mfa(&self, user: UserId, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET mfa_secret = NULL, mfa_pending_secret = NULL, mfa_enabled = 0, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(())
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        code_hashes: &[String],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND pending = 0")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_codes(&mut tx, user, code_hashes, false).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code_hash: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE mfa_recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND code_hash = $3 AND pending = 0 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user.to_string())
        .bind(code_hash)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO mfa_used_steps (user_id, step) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(user.to_string())
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_challenge(
        &self,
        token_hash: &str,
        user: UserId,
        expires_at: Millis,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO login_challenges (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user.to_string())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn challenge(&self, token_hash: &str, now: Millis) -> StoreResult<Option<User>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = (SELECT user_id FROM login_challenges WHERE token_hash = $1 AND expires_at > $2)"
        );
        let row = sqlx::query(SQL)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_challenges WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

/// Stores recovery code hashes, pending (until enrolment is confirmed) or
/// active, inside the caller's transaction.
async fn insert_codes(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: UserId,
    code_hashes: &[String],
    pending: bool,
) -> StoreResult<()> {
    for hash in code_hashes {
        sqlx::query(
            "INSERT INTO mfa_recovery_codes (user_id, code_hash, pending) VALUES ($1, $2, $3)",
        )
        .bind(user.to_string())
        .bind(hash)
        .bind(i64::from(pending))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}
