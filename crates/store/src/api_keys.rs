//! API keys and the keyset-paged user list of `/api/v1/users`.

use async_trait::async_trait;
use sqlx::{Row as _, any::AnyRow};
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    resources::ProjectId,
    store::{ApiKey, ApiKeyStore, StoreError, StoreResult, UserCursor},
};

use crate::{SqlStore, db_error, rows, rows::user_columns};

fn api_key(row: &AnyRow, prefix: &str) -> StoreResult<ApiKey> {
    let column = |name: &str| format!("{prefix}{name}");
    let id: String = row.try_get(column("id").as_str()).map_err(db_error)?;
    let user_id: String = row.try_get(column("user_id").as_str()).map_err(db_error)?;
    let scopes: String = row.try_get(column("scopes").as_str()).map_err(db_error)?;
    Ok(ApiKey {
        id: uuid::Uuid::parse_str(&id)
            .map_err(|_| StoreError::Backend(format!("stored key id {id:?} is not a UUID")))?,
        user_id: rows::user_id(&user_id)?,
        label: row.try_get(column("label").as_str()).map_err(db_error)?,
        key_hash: row.try_get(column("key_hash").as_str()).map_err(db_error)?,
        last_chars: row
            .try_get(column("last_chars").as_str())
            .map_err(db_error)?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        expires_at: row
            .try_get(column("expires_at").as_str())
            .map_err(db_error)?,
        created_at: row
            .try_get(column("created_at").as_str())
            .map_err(db_error)?,
        last_used_at: row
            .try_get(column("last_used_at").as_str())
            .map_err(db_error)?,
    })
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, label, key_hash, last_chars, scopes, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id.to_string())
        .bind(key.user_id.to_string())
        .bind(&key.label)
        .bind(&key.key_hash)
        .bind(&key.last_chars)
        .bind(key.scopes.join(" "))
        .bind(key.expires_at)
        .bind(key.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn api_keys_of(&self, user: UserId) -> StoreResult<Vec<ApiKey>> {
        let found =
            sqlx::query("SELECT * FROM api_keys WHERE user_id = $1 ORDER BY created_at, id")
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        found.iter().map(|row| api_key(row, "")).collect()
    }

    async fn update_api_key(
        &self,
        user: UserId,
        id: uuid::Uuid,
        label: &str,
        scopes: &[String],
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET label = $1, scopes = $2 WHERE id = $3 AND user_id = $4",
        )
        .bind(label)
        .bind(scopes.join(" "))
        .bind(id.to_string())
        .bind(user.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_api_key(&self, user: UserId, id: uuid::Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn use_api_key(
        &self,
        key_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<(ApiKey, User)>> {
        let row = sqlx::query(
            "SELECT k.id AS k_id, k.user_id AS k_user_id, k.label AS k_label, k.key_hash AS k_key_hash, \
             k.last_chars AS k_last_chars, k.scopes AS k_scopes, k.expires_at AS k_expires_at, \
             k.created_at AS k_created_at, k.last_used_at AS k_last_used_at, u.* \
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let key = api_key(&row, "k_")?;
        let user = rows::user(&row)?;
        // Written at most once a minute per key, so reads stay reads.
        if key.last_used_at.is_none_or(|at| now - at > 60_000) {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(key.id.to_string())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        Ok(Some((key, user)))
    }

    async fn user_page(
        &self,
        after: Option<&UserCursor>,
        offset: i64,
        limit: i64,
        project: Option<ProjectId>,
    ) -> StoreResult<Vec<User>> {
        // Two static statements, with and without a cursor, so that even a
        // generic plan walks the (created_at, id) index: a page costs the
        // same wherever it starts. The keyset condition is a row-value
        // comparison because both databases serve that from the index, where
        // the spelled-out `a > x OR (a = x AND b > y)` makes SQLite scan.
        // An empty project turns that filter off.
        const AFTER: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email IS NOT NULL \
             AND (created_at, id) > ($1, $2) \
             AND ($3 = '' OR id IN (SELECT user_id FROM project_members WHERE project_id = $3)) \
             ORDER BY created_at, id LIMIT $4"
        );
        const FIRST: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email IS NOT NULL \
             AND ($1 = '' OR id IN (SELECT user_id FROM project_members WHERE project_id = $1)) \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        );
        let project = project.map(|p| p.to_string()).unwrap_or_default();
        let found = match after {
            Some(cursor) => {
                sqlx::query(AFTER)
                    .bind(cursor.created_at)
                    .bind(cursor.id.to_string())
                    .bind(project)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query(FIRST)
                    .bind(project)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(db_error)?;
        found.iter().map(rows::user).collect()
    }
}
