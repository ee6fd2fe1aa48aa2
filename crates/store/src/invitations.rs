//! Invitations and pending users.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    store::{Acceptance, Invitation, InvitationStore, StoreError, StoreResult, UserStore},
};

use crate::{
    SqlStore,
    projects::rename_personal_project,
    rows::{self, UserRow},
    sql::Sql,
    users::insert_user,
    write::AuthWrite,
};

/// An invitation and its pending user: the user's columns as they are
/// (`u.*`), the invitation's under `invitation_`.
#[derive(sqlx::FromRow)]
struct InvitationRow {
    #[sqlx(flatten)]
    user: UserRow,
    invitation_token_hash: String,
    invitation_user_id: String,
    invitation_inviter_id: Option<String>,
    invitation_created_at: i64,
    invitation_expires_at: i64,
    invitation_used_at: Option<i64>,
    invitation_sealed_token: Option<String>,
}

impl TryFrom<InvitationRow> for (Invitation, User) {
    type Error = StoreError;

    fn try_from(row: InvitationRow) -> StoreResult<Self> {
        let invitation = Invitation {
            token_hash: row.invitation_token_hash,
            user_id: rows::user_id(&row.invitation_user_id)?,
            inviter_id: row
                .invitation_inviter_id
                .as_deref()
                .map(rows::user_id)
                .transpose()?,
            created_at: row.invitation_created_at,
            expires_at: row.invitation_expires_at,
            used_at: row.invitation_used_at,
            sealed_token: row.invitation_sealed_token,
        };
        Ok((invitation, User::try_from(row.user)?))
    }
}

/// Stores `invitation`, inside the caller's transaction.
async fn insert_invitation(write: &mut AuthWrite, invitation: &Invitation) -> StoreResult<()> {
    write
        .execute(
            Sql::new(
                "INSERT INTO invitations \
                 (token_hash, user_id, inviter_id, created_at, expires_at, sealed_token) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&invitation.token_hash)
            .bind(invitation.user_id)
            .bind(invitation.inviter_id)
            .bind(invitation.created_at)
            .bind(invitation.expires_at)
            .bind(invitation.sealed_token.as_deref()),
        )
        .await
        .map(drop)
}

#[async_trait]
impl InvitationStore for SqlStore {
    async fn insert_invited_user(&self, user: &User, invitation: &Invitation) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        insert_user(&mut write, user).await?;
        insert_invitation(&mut write, invitation).await?;
        write.commit().await
    }

    async fn replace_invitation(&self, invitation: &Invitation, now: Millis) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        // Touching the row first takes the write lock and proves the user is
        // still pending.
        let pending = write
            .execute(
                Sql::new(
                    "UPDATE users SET updated_at = $1 WHERE id = $2 AND password_hash IS NULL",
                )
                .bind(now)
                .bind(invitation.user_id),
            )
            .await?;
        if pending == 0 {
            return Ok(false);
        }
        write
            .execute(
                Sql::new("DELETE FROM invitations WHERE user_id = $1").bind(invitation.user_id),
            )
            .await?;
        insert_invitation(&mut write, invitation).await?;
        write.commit().await?;
        Ok(true)
    }

    async fn invitation(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(Invitation, User, Option<User>)>> {
        let row: Option<InvitationRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT u.*, i.token_hash AS invitation_token_hash, \
                     i.user_id AS invitation_user_id, i.inviter_id AS invitation_inviter_id, \
                     i.created_at AS invitation_created_at, i.expires_at AS invitation_expires_at, \
                     i.used_at AS invitation_used_at, i.sealed_token AS invitation_sealed_token \
                     FROM invitations i JOIN users u ON u.id = i.user_id WHERE i.token_hash = $1",
                )
                .bind(token_hash),
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (invitation, invitee) = <(Invitation, User)>::try_from(row)?;
        let inviter = match invitation.inviter_id {
            Some(id) => self.user_by_id(id).await?,
            None => None,
        };
        Ok(Some((invitation, invitee, inviter)))
    }

    async fn live_invitation(&self, user: UserId, now: Millis) -> StoreResult<Option<Invitation>> {
        let row: Option<InvitationRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT u.*, i.token_hash AS invitation_token_hash, \
                     i.user_id AS invitation_user_id, i.inviter_id AS invitation_inviter_id, \
                     i.created_at AS invitation_created_at, i.expires_at AS invitation_expires_at, \
                     i.used_at AS invitation_used_at, i.sealed_token AS invitation_sealed_token \
                     FROM invitations i JOIN users u ON u.id = i.user_id \
                     WHERE i.user_id = $1 AND i.used_at IS NULL AND i.expires_at > $2 \
                     ORDER BY i.created_at DESC LIMIT 1",
                )
                .bind(user)
                .bind(now),
            )
            .await?;
        row.map(|row| <(Invitation, User)>::try_from(row).map(|(invitation, _)| invitation))
            .transpose()
    }

    async fn accept_invitation(
        &self,
        token_hash: &str,
        acceptance: &Acceptance,
    ) -> StoreResult<Option<User>> {
        let mut write = self.auth_write().await?;
        // The conditional update is the single-use guarantee: only one
        // transaction finds the invitation unused.
        let claimed: Option<(String,)> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE invitations SET used_at = $1 \
                     WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
                     RETURNING user_id",
                )
                .bind(acceptance.now)
                .bind(token_hash),
            )
            .await?;
        let Some((user_id,)) = claimed else {
            return Ok(None);
        };
        let row: Option<UserRow> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE users SET first_name = $1, last_name = $2, password_hash = $3, \
                     email_verified = 1, updated_at = $4 \
                     WHERE id = $5 AND password_hash IS NULL RETURNING *",
                )
                .bind(&acceptance.first_name)
                .bind(&acceptance.last_name)
                .bind(&acceptance.password_hash)
                .bind(acceptance.now)
                .bind(user_id),
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = User::try_from(row)?;
        rename_personal_project(
            &mut write,
            user.id,
            &user.personal_project_name(),
            acceptance.now,
        )
        .await?;
        write.commit().await?;
        Ok(Some(user))
    }

    async fn delete_pending_user(&self, id: UserId) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        let deleted = write
            .execute(
                Sql::new(
                    "DELETE FROM users WHERE id = $1 AND password_hash IS NULL \
                     AND email IS NOT NULL",
                )
                .bind(id),
            )
            .await?;
        write.commit().await?;
        Ok(deleted > 0)
    }
}
