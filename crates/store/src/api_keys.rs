//! API keys and the keyset-paged user list of `/api/v1/users`.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    resources::ProjectId,
    store::{ApiKey, ApiKeyStore, KeyUse, StoreResult, UserCursor},
};

use crate::{
    SqlStore,
    cache::Lookup,
    rows::{self, KeyRow, UserRow},
    sql::Sql,
};

/// A key and its user, read in one query: the user's columns as they are
/// (`u.*`), the key's under `key_`.
#[derive(sqlx::FromRow)]
struct KeyUseRow {
    #[sqlx(flatten)]
    user: UserRow,
    key_id: String,
    key_user_id: String,
    key_label: String,
    key_hash: String,
    key_last_chars: String,
    key_scopes: String,
    key_expires_at: Option<i64>,
    key_created_at: i64,
    key_last_used_at: Option<i64>,
}

impl TryFrom<KeyUseRow> for KeyUse {
    type Error = usher_domain::store::StoreError;

    fn try_from(row: KeyUseRow) -> StoreResult<Self> {
        let key = KeyRow {
            id: row.key_id,
            user_id: row.key_user_id,
            label: row.key_label,
            key_hash: row.key_hash,
            last_chars: row.key_last_chars,
            scopes: row.key_scopes,
            expires_at: row.key_expires_at,
            created_at: row.key_created_at,
            last_used_at: row.key_last_used_at,
        };
        Ok(KeyUse {
            key: ApiKey::try_from(key)?,
            user: User::try_from(row.user)?,
        })
    }
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO api_keys \
                     (id, user_id, label, key_hash, last_chars, scopes, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(key.id)
                .bind(key.user_id)
                .bind(&key.label)
                .bind(&key.key_hash)
                .bind(&key.last_chars)
                .bind(key.scopes.join(" "))
                .bind(key.expires_at)
                .bind(key.created_at),
            )
            .await?;
        write.commit().await
    }

    async fn api_keys_of(&self, user: UserId) -> StoreResult<Vec<ApiKey>> {
        let found: Vec<KeyRow> = self
            .fetch_all(
                Sql::new("SELECT * FROM api_keys WHERE user_id = $1 ORDER BY created_at, id")
                    .bind(user),
            )
            .await?;
        found.into_iter().map(ApiKey::try_from).collect()
    }

    async fn update_api_key(
        &self,
        user: UserId,
        id: uuid::Uuid,
        label: &str,
        scopes: &[String],
    ) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        let changed = write
            .execute(
                Sql::new(
                    "UPDATE api_keys SET label = $1, scopes = $2 WHERE id = $3 AND user_id = $4",
                )
                .bind(label)
                .bind(scopes.join(" "))
                .bind(id)
                .bind(user),
            )
            .await?;
        write.commit().await?;
        Ok(changed > 0)
    }

    async fn delete_api_key(&self, user: UserId, id: uuid::Uuid) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        let deleted = write
            .execute(
                Sql::new("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user),
            )
            .await?;
        write.commit().await?;
        Ok(deleted > 0)
    }

    async fn use_api_key(&self, key_hash: &str, now: Millis) -> StoreResult<Option<KeyUse>> {
        // From memory when the cache holds the key (crate::cache).
        self.db.before_cached_read().await?;
        let lookup = self.cache.key(key_hash);
        let found = match lookup {
            Lookup::Hit((key, user)) => Some(KeyUse { key, user }),
            Lookup::Miss(_) | Lookup::Off => {
                let row: Option<KeyUseRow> = self
                    .fetch_optional(
                        Sql::new(
                            "SELECT u.*, k.id AS key_id, k.user_id AS key_user_id, \
                             k.label AS key_label, k.key_hash, k.last_chars AS key_last_chars, \
                             k.scopes AS key_scopes, k.expires_at AS key_expires_at, \
                             k.created_at AS key_created_at, k.last_used_at AS key_last_used_at \
                             FROM api_keys k JOIN users u ON u.id = k.user_id \
                             WHERE k.key_hash = $1",
                        )
                        .bind(key_hash),
                    )
                    .await?;
                let found = row.map(KeyUse::try_from).transpose()?;
                if let (Lookup::Miss(generation), Some(found)) = (lookup, &found) {
                    self.cache.keep_key(generation, &found.key, &found.user);
                }
                found
            }
        };
        // A disabled user's keys open nothing, whichever path found them
        // (disabling deletes them too, but a row changed at a SQL prompt,
        // or a key added later, must not outlive the rule).
        let Some(mut found) = found.filter(|found| !found.user.disabled) else {
            return Ok(None);
        };
        // Written at most once a minute per key, so reads stay reads.
        if found.key.last_used_at.is_none_or(|at| now - at > 60_000) {
            self.stamp_key_use(found.key.id, now).await?;
            found.key.last_used_at = Some(now);
            self.cache.used(key_hash, now);
        }
        Ok(Some(found))
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
        let project = project.map(|p| p.to_string()).unwrap_or_default();
        let sql = match after {
            Some(cursor) => Sql::new(
                "SELECT * FROM users WHERE email IS NOT NULL \
                 AND (created_at, id) > ($1, $2) \
                 AND ($3 = '' OR id IN (SELECT user_id FROM project_members WHERE project_id = $3)) \
                 ORDER BY created_at, id LIMIT $4",
            )
            .bind(cursor.created_at)
            .bind(cursor.id)
            .bind(project.as_str())
            .bind(limit),
            None => Sql::new(
                "SELECT * FROM users WHERE email IS NOT NULL \
                 AND ($1 = '' OR id IN (SELECT user_id FROM project_members WHERE project_id = $1)) \
                 ORDER BY created_at, id LIMIT $2 OFFSET $3",
            )
            .bind(project.as_str())
            .bind(limit)
            .bind(offset),
        };
        rows::users(self.fetch_all(sql).await?)
    }
}
