//! Users, the owner shell and resets.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{Email, Role, User, UserId},
    store::{OwnerClaim, ProfileChange, SetupState, StoreResult, UserStore, keys},
};

use crate::{SqlStore, db_error, reads::on_reads, rows, rows::user_columns};

#[async_trait]
impl UserStore for SqlStore {
    async fn ensure_owner_shell(&self, id: UserId, now: Millis) -> StoreResult<()> {
        // The partial unique index on the owner role makes this a no-op when
        // an owner exists, also when several instances start together.
        sqlx::query(
            "INSERT INTO users (id, role, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.to_string())
        .bind(Role::Owner.as_str())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn setup_state(&self) -> StoreResult<SetupState> {
        // One query per request: everything pages and routes decide on.
        let row: (i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT COUNT(*) FROM users WHERE role = $1 AND email IS NOT NULL), \
               (SELECT COUNT(*) FROM settings WHERE key = $2 AND value = 'true'), \
               (SELECT COUNT(*) FROM settings WHERE key = $3 AND value = 'true')",
        )
        .bind(Role::Owner.as_str())
        .bind(keys::SETUP_SKIPPED)
        .bind(keys::MFA_REQUIRED)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(SetupState {
            owner_set_up: row.0 > 0,
            setup_skipped: row.1 > 0,
            mfa_required: row.2 > 0,
        })
    }

    async fn owner(&self) -> StoreResult<Option<User>> {
        const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE role = $1");
        let row = sqlx::query(SQL)
            .bind(Role::Owner.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn claim_owner(&self, claim: &OwnerClaim) -> StoreResult<Option<User>> {
        // One statement: only the request that finds the shell still empty
        // fills it.
        const SQL: &str = concat!(
            "UPDATE users SET email = $1, first_name = $2, last_name = $3, password_hash = $4, \
             password_change_required = 0, updated_at = $5 \
             WHERE role = $6 AND email IS NULL RETURNING ",
            user_columns!(),
            ""
        );
        let row = sqlx::query(SQL)
            .bind(claim.email.as_str())
            .bind(&claim.first_name)
            .bind(&claim.last_name)
            .bind(&claim.password_hash)
            .bind(claim.now)
            .bind(Role::Owner.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        insert_user_query(user)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        self.user_where(SQL, &id.to_string()).await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1");
        self.user_where(SQL, email.as_str()).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email IS NOT NULL ORDER BY created_at, id"
        );
        let found = sqlx::query(SQL)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        found.iter().map(rows::user).collect()
    }

    async fn update_profile(
        &self,
        id: UserId,
        change: &ProfileChange,
        keep_session: Option<&str>,
    ) -> StoreResult<Option<User>> {
        let mut tx = self.begin_write().await?;
        let before: Option<(Option<String>,)> =
            sqlx::query_as("SELECT email FROM users WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        let Some((old_email,)) = before else {
            return Ok(None);
        };
        const SQL: &str = concat!(
            "UPDATE users SET email = $1, first_name = $2, last_name = $3, updated_at = $4 \
             WHERE id = $5 RETURNING ",
            user_columns!(),
            ""
        );
        let row = sqlx::query(SQL)
            .bind(change.email.as_str())
            .bind(&change.first_name)
            .bind(&change.last_name)
            .bind(change.now)
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        if old_email.as_deref() != Some(change.email.as_str()) {
            end_sessions(&mut tx, id, keep_session).await?;
        }
        let user = rows::user(&row)?;
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(Some(user))
    }

    async fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        change_required: bool,
        now: Millis,
        keep_session: Option<&str>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_change_required = $2, updated_at = $3 \
             WHERE id = $4",
        )
        .bind(password_hash)
        .bind(i64::from(change_required))
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        end_sessions(&mut tx, id, keep_session).await?;
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(())
    }

    async fn set_role(&self, id: UserId, role: Role, now: Millis) -> StoreResult<Option<User>> {
        const SQL: &str = concat!(
            "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 AND role <> 'global:owner' RETURNING ",
            user_columns!()
        );
        let row = sqlx::query(SQL)
            .bind(role.as_str())
            .bind(now)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        self.auth_changed().await;
        row.as_ref().map(rows::user).transpose()
    }

    async fn transfer_ownership(&self, from: UserId, to: UserId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        // The old owner steps down first: the partial unique index allows
        // one owner at any moment, also inside the transaction.
        let stepped_down = sqlx::query(
            "UPDATE users SET role = 'global:admin', updated_at = $1 WHERE id = $2 AND role = 'global:owner'",
        )
        .bind(now)
        .bind(from.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if stepped_down.rows_affected() == 0 {
            return Ok(false);
        }
        let promoted = sqlx::query(
            "UPDATE users SET role = 'global:owner', password_change_required = 0, updated_at = $1 \
             WHERE id = $2 AND password_hash IS NOT NULL",
        )
        .bind(now)
        .bind(to.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if promoted.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(true)
    }

    async fn rehash_password(&self, id: UserId, password_hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn reset_user_management(&self, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for statement in [
            "DELETE FROM sessions",
            "DELETE FROM users WHERE role <> 'global:owner'",
            "DELETE FROM settings WHERE key = 'userManagement.setupSkipped'",
        ] {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        sqlx::query(
            "UPDATE users SET email = NULL, first_name = '', last_name = '', \
             password_hash = NULL, password_change_required = 0, mfa_enabled = 0, \
             mfa_secret = NULL, mfa_pending_secret = NULL, \
             updated_at = $1 WHERE role = 'global:owner'",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(())
    }
}

impl SqlStore {
    /// The one user `sql` finds by its `$1`, on the native read pool.
    async fn user_where(&self, sql: &'static str, value: &str) -> StoreResult<Option<User>> {
        on_reads!(
            self,
            |conn| sqlx::query(sql).bind(value).fetch_optional(conn).await,
            |row| row.as_ref().map(rows::user).transpose()
        )
    }
}

/// Ends every session of `user` but `keep` and voids their password reset
/// links, inside the caller's transaction: what a password or email change
/// must do.
pub(crate) async fn end_sessions(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: UserId,
    keep: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user.to_string())
        .bind(keep.unwrap_or(""))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
        .bind(user.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// `INSERT` of a whole user, to run on the pool or inside a transaction.
pub(crate) fn insert_user_query(
    user: &User,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    const SQL: &str = concat!(
        "INSERT INTO users (",
        user_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    sqlx::query(SQL)
        .bind(user.id.to_string())
        .bind(user.email.as_ref().map(|e| e.as_str().to_owned()))
        .bind(user.first_name.clone())
        .bind(user.last_name.clone())
        .bind(user.role.as_str())
        .bind(user.password_hash.clone())
        .bind(i64::from(user.password_change_required))
        .bind(i64::from(user.mfa_enabled))
        .bind(user.invited_by.map(|id| id.to_string()))
        .bind(user.invited_at)
        .bind(user.created_at)
        .bind(user.updated_at)
}
