//! Server-side sessions.

use async_trait::async_trait;
use sqlx::Row as _;
use usher_domain::{
    clock::Millis,
    model::User,
    store::{Session, SessionStore, StoreResult},
};

use crate::{SqlStore, db_error, rows};

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.token_hash)
        .bind(session.user_id.to_string())
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(&session.ip)
        .bind(&session.user_agent)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(Session, User)>> {
        const SQL: &str = concat!(
            "SELECT s.token_hash, s.created_at AS s_created_at, s.expires_at, s.ip, s.user_agent, ",
            "u.*",
            " FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2"
        );
        let Some(row) = sqlx::query(SQL)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let user = rows::user(&row)?;
        let session = Session {
            token_hash: row.try_get("token_hash").map_err(db_error)?,
            user_id: user.id,
            created_at: row.try_get("s_created_at").map_err(db_error)?,
            expires_at: row.try_get("expires_at").map_err(db_error)?,
            ip: row.try_get("ip").map_err(db_error)?,
            user_agent: row.try_get("user_agent").map_err(db_error)?,
        };
        Ok(Some((session, user)))
    }

    async fn extend_session(&self, token_hash: &str, expires_at: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET expires_at = $1 WHERE token_hash = $2")
            .bind(expires_at)
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
