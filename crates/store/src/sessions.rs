//! Server-side sessions.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::User,
    store::{Session, SessionStore, StoreError, StoreResult},
};

use crate::{SqlStore, rows::UserRow, sql::Sql};

/// A session and its user: the user's columns as they are (`u.*`), the
/// session's beside them.
#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    token_hash: String,
    session_created_at: i64,
    expires_at: i64,
    ip: String,
    user_agent: String,
    session_mfa: i64,
}

impl TryFrom<SessionRow> for (Session, User) {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> StoreResult<Self> {
        let user = User::try_from(row.user)?;
        let session = Session {
            token_hash: row.token_hash,
            user_id: user.id,
            created_at: row.session_created_at,
            expires_at: row.expires_at,
            ip: row.ip,
            user_agent: row.user_agent,
            mfa: row.session_mfa != 0,
        };
        Ok((session, user))
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    // Sessions are among what forward authentication answers from memory
    // (crate::cache), so every change to them goes through the write guard.
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, ip, \
                     user_agent, mfa) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&session.token_hash)
                .bind(session.user_id)
                .bind(session.created_at)
                .bind(session.expires_at)
                .bind(&session.ip)
                .bind(&session.user_agent)
                .bind(session.mfa),
            )
            .await?;
        write.commit().await
    }

    async fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(Session, User)>> {
        let row: Option<SessionRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT u.*, s.token_hash, s.created_at AS session_created_at, s.expires_at, \
                     s.ip, s.user_agent, s.mfa AS session_mfa \
                     FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
                )
                .bind(token_hash)
                .bind(now),
            )
            .await?;
        row.map(<(Session, User)>::try_from).transpose()
    }

    async fn extend_session(&self, token_hash: &str, expires_at: Millis) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new("UPDATE sessions SET expires_at = $1 WHERE token_hash = $2")
                    .bind(expires_at)
                    .bind(token_hash),
            )
            .await?;
        write.commit().await
    }

    /// Ends the session, and with it (by `ON DELETE CASCADE`) every host
    /// cookie's session made from it: signing out of Usher signs out of
    /// every app behind a proxy.
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(Sql::new("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash))
            .await?;
        write.commit().await
    }
}
