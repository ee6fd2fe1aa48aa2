//! Two-factor authentication: secrets, recovery codes, used steps, and
//! sign-in challenges.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    store::{MfaStore, StoreResult},
};

use crate::{SqlStore, rows, sql::Sql, write::Statements};

#[async_trait]
impl MfaStore for SqlStore {
    async fn set_pending_mfa(
        &self,
        user: UserId,
        sealed_secret: &str,
        code_hashes: &[String],
    ) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new("UPDATE users SET mfa_pending_secret = $1 WHERE id = $2")
                    .bind(sealed_secret)
                    .bind(user),
            )
            .await?;
        write
            .execute(
                Sql::new("DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND pending = 1")
                    .bind(user),
            )
            .await?;
        insert_codes(&mut write, user, code_hashes, true).await?;
        write.commit().await
    }

    async fn pending_mfa_secret(&self, user: UserId) -> StoreResult<Option<String>> {
        let found: Option<(Option<String>,)> = self
            .fetch_optional(
                Sql::new("SELECT mfa_pending_secret FROM users WHERE id = $1").bind(user),
            )
            .await?;
        Ok(found.and_then(|(secret,)| secret))
    }

    async fn confirm_mfa(
        &self,
        user: UserId,
        sealed_secret: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        let confirmed = write
            .execute(
                Sql::new(
                    "UPDATE users SET mfa_secret = $3, mfa_pending_secret = NULL, \
                     mfa_enabled = 1, updated_at = $1 \
                     WHERE id = $2 AND mfa_pending_secret IS NOT NULL",
                )
                .bind(now)
                .bind(user)
                .bind(sealed_secret),
            )
            .await?;
        if confirmed == 0 {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND pending = 0",
            "UPDATE mfa_recovery_codes SET pending = 0 WHERE user_id = $1",
        ] {
            write.execute(Sql::new(sql).bind(user)).await?;
        }
        write.commit().await?;
        Ok(true)
    }

    async fn mfa_secret(&self, user: UserId) -> StoreResult<Option<String>> {
        let found: Option<(Option<String>,)> = self
            .fetch_optional(
                Sql::new("SELECT mfa_secret FROM users WHERE id = $1 AND mfa_enabled = 1")
                    .bind(user),
            )
            .await?;
        Ok(found.and_then(|(secret,)| secret))
    }

    async fn disable_mfa(&self, user: UserId, now: Millis) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "UPDATE users SET mfa_secret = NULL, mfa_pending_secret = NULL, \
                     mfa_enabled = 0, updated_at = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(user),
            )
            .await?;
        write
            .execute(Sql::new("DELETE FROM mfa_recovery_codes WHERE user_id = $1").bind(user))
            .await?;
        write.commit().await
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        code_hashes: &[String],
    ) -> StoreResult<()> {
        let mut write = self.write().await?;
        write
            .execute(
                Sql::new("DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND pending = 0")
                    .bind(user),
            )
            .await?;
        insert_codes(&mut write, user, code_hashes, false).await?;
        write.commit().await
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code_hash: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let used = self
            .execute(
                Sql::new(
                    "UPDATE mfa_recovery_codes SET used_at = $1 \
                     WHERE user_id = $2 AND code_hash = $3 AND pending = 0 AND used_at IS NULL",
                )
                .bind(now)
                .bind(user)
                .bind(code_hash),
            )
            .await?;
        Ok(used > 0)
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        let inserted = self
            .execute(
                Sql::new(
                    "INSERT INTO mfa_used_steps (user_id, step) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(user)
                .bind(step),
            )
            .await?;
        Ok(inserted > 0)
    }

    async fn insert_challenge(
        &self,
        token_hash: &str,
        user: UserId,
        expires_at: Millis,
    ) -> StoreResult<()> {
        self.execute(
            Sql::new(
                "INSERT INTO login_challenges (token_hash, user_id, expires_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(token_hash)
            .bind(user)
            .bind(expires_at),
        )
        .await
        .map(drop)
    }

    async fn challenge(&self, token_hash: &str, now: Millis) -> StoreResult<Option<User>> {
        let row = self
            .fetch_optional(
                Sql::new(
                    "SELECT * FROM users WHERE id = \
                     (SELECT user_id FROM login_challenges WHERE token_hash = $1 AND expires_at > $2)",
                )
                .bind(token_hash)
                .bind(now),
            )
            .await?;
        rows::maybe_user(row)
    }

    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<()> {
        self.execute(
            Sql::new("DELETE FROM login_challenges WHERE token_hash = $1").bind(token_hash),
        )
        .await
        .map(drop)
    }
}

/// Stores recovery code hashes, pending (until enrolment is confirmed) or
/// active, inside the caller's transaction.
async fn insert_codes(
    write: &mut impl Statements,
    user: UserId,
    code_hashes: &[String],
    pending: bool,
) -> StoreResult<()> {
    for hash in code_hashes {
        write
            .execute(
                Sql::new(
                    "INSERT INTO mfa_recovery_codes (user_id, code_hash, pending) \
                     VALUES ($1, $2, $3)",
                )
                .bind(user)
                .bind(hash)
                .bind(pending),
            )
            .await?;
    }
    Ok(())
}
