//! Invitations and pending users.

use async_trait::async_trait;
use sqlx::{Row as _, any::AnyRow};
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    store::{Acceptance, Invitation, InvitationStore, StoreResult},
};

use crate::{SqlStore, db_error, rows, rows::user_columns, users::insert_user_query};

fn insert_invitation(
    invitation: &Invitation,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO invitations (token_hash, user_id, inviter_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(invitation.token_hash.clone())
    .bind(invitation.user_id.to_string())
    .bind(invitation.inviter_id.map(|id| id.to_string()))
    .bind(invitation.created_at)
    .bind(invitation.expires_at)
}

fn invitation_from(row: &AnyRow) -> StoreResult<Invitation> {
    let user_id: String = row.try_get("i_user_id").map_err(db_error)?;
    let inviter_id: Option<String> = row.try_get("i_inviter_id").map_err(db_error)?;
    Ok(Invitation {
        token_hash: row.try_get("i_token_hash").map_err(db_error)?,
        user_id: rows::user_id(&user_id)?,
        inviter_id: inviter_id.as_deref().map(rows::user_id).transpose()?,
        created_at: row.try_get("i_created_at").map_err(db_error)?,
        expires_at: row.try_get("i_expires_at").map_err(db_error)?,
        used_at: row.try_get("i_used_at").map_err(db_error)?,
    })
}

#[async_trait]
impl InvitationStore for SqlStore {
    async fn insert_invited_user(&self, user: &User, invitation: &Invitation) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_user_query(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_invitation(invitation)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn replace_invitation(&self, invitation: &Invitation, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        // Touching the row first takes the write lock and proves the user is
        // still pending.
        let pending =
            sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2 AND password_hash IS NULL")
                .bind(now)
                .bind(invitation.user_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        if pending.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM invitations WHERE user_id = $1")
            .bind(invitation.user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_invitation(invitation)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(true)
    }

    async fn invitation(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(Invitation, User, Option<User>)>> {
        const SQL: &str = concat!(
            "SELECT i.token_hash AS i_token_hash, i.user_id AS i_user_id, i.inviter_id AS i_inviter_id, \
             i.created_at AS i_created_at, i.expires_at AS i_expires_at, i.used_at AS i_used_at, ",
            "u.*",
            " FROM invitations i JOIN users u ON u.id = i.user_id WHERE i.token_hash = $1"
        );
        let Some(row) = sqlx::query(SQL)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let invitation = invitation_from(&row)?;
        let invitee = rows::user(&row)?;
        let inviter = match invitation.inviter_id {
            Some(id) => usher_domain::store::UserStore::user_by_id(self, id).await?,
            None => None,
        };
        Ok(Some((invitation, invitee, inviter)))
    }

    async fn accept_invitation(
        &self,
        token_hash: &str,
        acceptance: &Acceptance,
    ) -> StoreResult<Option<User>> {
        let mut tx = self.begin_write().await?;
        // The conditional update is the single-use guarantee: only one
        // transaction finds the invitation unused.
        let claimed: Option<(String,)> = sqlx::query_as(
            "UPDATE invitations SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        )
        .bind(acceptance.now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some((user_id,)) = claimed else {
            return Ok(None);
        };
        const SQL: &str = concat!(
            "UPDATE users SET first_name = $1, last_name = $2, password_hash = $3, updated_at = $4 \
             WHERE id = $5 AND password_hash IS NULL RETURNING ",
            user_columns!()
        );
        let row = sqlx::query(SQL)
            .bind(&acceptance.first_name)
            .bind(&acceptance.last_name)
            .bind(&acceptance.password_hash)
            .bind(acceptance.now)
            .bind(&user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = rows::user(&row)?;
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(Some(user))
    }

    async fn delete_pending_user(&self, id: UserId) -> StoreResult<bool> {
        let deleted = sqlx::query(
            "DELETE FROM users WHERE id = $1 AND password_hash IS NULL AND email IS NOT NULL",
        )
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        self.auth_changed().await;
        Ok(deleted.rows_affected() > 0)
    }
}
