//! API keys and the keyset-paged user list of `/api/v1/users`.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    resources::ProjectId,
    store::{ApiKey, ApiKeyStore, KeyUse, StoreError, StoreResult, UserCursor, UserRef},
};

use crate::{
    SqlStore,
    auth_cache::Lookup,
    db_error,
    inline::Lite,
    reads::on_reads,
    rows::{self, Readable, prefixed_user, user_columns},
};

prefixed_user!(TARGET, target_columns, "t", "t_");

/// The names a key's columns go by: as they are, or under the `k_` prefix a
/// join selects them with beside the user's.
struct KeyNames {
    id: &'static str,
    user_id: &'static str,
    label: &'static str,
    key_hash: &'static str,
    last_chars: &'static str,
    scopes: &'static str,
    expires_at: &'static str,
    created_at: &'static str,
    last_used_at: &'static str,
}

macro_rules! key_names {
    ($prefix:literal) => {
        KeyNames {
            id: concat!($prefix, "id"),
            user_id: concat!($prefix, "user_id"),
            label: concat!($prefix, "label"),
            key_hash: concat!($prefix, "key_hash"),
            last_chars: concat!($prefix, "last_chars"),
            scopes: concat!($prefix, "scopes"),
            expires_at: concat!($prefix, "expires_at"),
            created_at: concat!($prefix, "created_at"),
            last_used_at: concat!($prefix, "last_used_at"),
        }
    };
}

const KEY_NAMES: KeyNames = key_names!("");
const JOINED_KEY_NAMES: KeyNames = key_names!("k_");

/// A key from its columns, named by `names`.
fn api_key<R: Readable>(row: &R, names: &KeyNames) -> StoreResult<ApiKey> {
    let id = row.text(names.id)?;
    let scopes = row.text(names.scopes)?;
    Ok(ApiKey {
        id: uuid::Uuid::parse_str(&id)
            .map_err(|_| StoreError::Backend(format!("stored key id {id:?} is not a UUID")))?,
        user_id: rows::user_id(&row.text(names.user_id)?)?,
        label: row.text(names.label)?,
        key_hash: row.text(names.key_hash)?,
        last_chars: row.text(names.last_chars)?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        expires_at: row.maybe_number(names.expires_at)?,
        created_at: row.number(names.created_at)?,
        last_used_at: row.maybe_number(names.last_used_at)?,
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
        found.iter().map(|row| api_key(row, &KEY_NAMES)).collect()
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
        self.auth_changed().await;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_api_key(&self, user: UserId, id: uuid::Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        self.auth_changed().await;
        Ok(done.rows_affected() > 0)
    }

    async fn use_api_key(
        &self,
        key_hash: &str,
        now: Millis,
        target: Option<&UserRef>,
    ) -> StoreResult<Option<KeyUse>> {
        // The key's columns under `k_`, its user's as they are, and with a
        // target, that user's under `t_` (an outer join: an unknown target
        // still finds the key, so the caller gets 404 rather than 401).
        macro_rules! key_and_user {
            () => {
                "SELECT k.id AS k_id, k.user_id AS k_user_id, k.label AS k_label, \
                 k.key_hash AS k_key_hash, k.last_chars AS k_last_chars, k.scopes AS k_scopes, \
                 k.expires_at AS k_expires_at, k.created_at AS k_created_at, \
                 k.last_used_at AS k_last_used_at, u.*"
            };
        }
        const KEY: &str = concat!(
            key_and_user!(),
            " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1"
        );
        macro_rules! with_target_by {
            ($column:literal) => {
                concat!(
                    key_and_user!(),
                    ", ",
                    target_columns!(),
                    " FROM api_keys k JOIN users u ON u.id = k.user_id LEFT JOIN users t ON t.",
                    $column,
                    " = $2 WHERE k.key_hash = $1"
                )
            };
        }
        const BY_ID: &str = with_target_by!("id");
        const BY_EMAIL: &str = with_target_by!("email");
        let (sql, by) = match target {
            None => (KEY, None),
            Some(UserRef::Id(id)) => (BY_ID, Some(id.to_string())),
            Some(UserRef::Email(email)) => (BY_EMAIL, Some(email.as_str().to_owned())),
        };
        // Key, its user and the target, from a row of any driver.
        fn key_use<R: Readable>(row: &R, with_target: bool) -> StoreResult<KeyUse> {
            Ok(KeyUse {
                key: api_key(row, &JOINED_KEY_NAMES)?,
                user: rows::user(row)?,
                target: match with_target {
                    true => rows::maybe_user_named(row, &TARGET)?,
                    false => None,
                },
            })
        }
        let with_target = by.is_some();
        // One cache on either database: on SQLite it is checked against the
        // file first; on PostgreSQL every instance empties it before a change
        // returns (crate::auth_cache).
        if let Some(inline) = &self.inline {
            inline.refresh_cache()?;
        }
        let (hit, keep_under) = match self.key_cache().map(|c| c.lookup(key_hash, target)) {
            Some(Lookup::Hit(found)) => (Some(*found), None),
            Some(Lookup::Miss(generation)) => (None, Some(generation)),
            Some(Lookup::Off) | None => (None, None),
        };
        let found = if let Some(found) = hit {
            Some(found)
        } else if let Some(inline) = &self.inline {
            // By name: SQLite numbers `$n` parameters in the order they
            // appear, and `$2` comes first in the statements with a target.
            let decode = |row: &Lite<'_, '_>| key_use(row, with_target);
            match &by {
                Some(value) => inline.query_row(
                    sql,
                    rusqlite::named_params! {"$1": key_hash, "$2": value},
                    decode,
                )?,
                None => inline.query_row(sql, rusqlite::named_params! {"$1": key_hash}, decode)?,
            }
        } else {
            on_reads!(
                self,
                |conn| {
                    let query = sqlx::query(sql).bind(key_hash);
                    match &by {
                        Some(value) => query.bind(value.as_str()),
                        None => query,
                    }
                    .fetch_optional(conn)
                    .await
                },
                |row| row
                    .as_ref()
                    .map(|row| key_use(row, with_target))
                    .transpose()?
            )
        };
        let Some(mut found) = found else {
            return Ok(None);
        };
        if let (Some(cache), Some(generation)) = (self.key_cache(), keep_under) {
            cache.keep(generation, &found);
        }
        // Written at most once a minute per key, so reads stay reads (and
        // the cache is not emptied for it: the trigger ignores this column).
        if found.key.last_used_at.is_none_or(|at| now - at > 60_000) {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(found.key.id.to_string())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
            found.key.last_used_at = Some(now);
            if let Some(cache) = self.key_cache() {
                cache.used(key_hash, now);
            }
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
        on_reads!(
            self,
            |conn| match after {
                Some(cursor) => {
                    sqlx::query(AFTER)
                        .bind(cursor.created_at)
                        .bind(cursor.id.to_string())
                        .bind(project.as_str())
                        .bind(limit)
                        .fetch_all(conn)
                        .await
                }
                None => {
                    sqlx::query(FIRST)
                        .bind(project.as_str())
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(conn)
                        .await
                }
            },
            |found| found.iter().map(rows::user).collect()
        )
    }
}
