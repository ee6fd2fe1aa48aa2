//! Rate-limit counters, instance settings, the audit log and the health ping.

use async_trait::async_trait;
use sqlx::Row as _;
use usher_domain::{
    clock::Millis,
    store::{AuditEvent, AuditFilter, AuditStore, GuardStore, SettingStore, Store, StoreResult},
};

use crate::{SqlStore, db_error, rows};

#[async_trait]
impl GuardStore for SqlStore {
    async fn count_hit(
        &self,
        key: &str,
        window_start: Millis,
        expires_at: Millis,
    ) -> StoreResult<i64> {
        // One upsert, atomic on both databases, so instances sharing the
        // database share the count.
        let (count,): (i64,) = sqlx::query_as(
            "INSERT INTO rate_limits (key, window_start, count, expires_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limits.count + 1 \
             RETURNING count",
        )
        .bind(key)
        .bind(window_start)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(count)
    }

    async fn forgive_hit(&self, key: &str, window_start: Millis) -> StoreResult<()> {
        sqlx::query(
            "UPDATE rate_limits SET count = count - 1 \
             WHERE key = $1 AND window_start = $2 AND count > 0",
        )
        .bind(key)
        .bind(window_start)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn purge_expired(&self, now: Millis) -> StoreResult<()> {
        for sql in [
            "DELETE FROM rate_limits WHERE expires_at <= $1",
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM login_challenges WHERE expires_at <= $1",
        ] {
            sqlx::query(sql)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SettingStore for SqlStore {
    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(row.map(|(value,)| value))
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, at, actor_id, actor_email, action, target, detail, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.id.to_string())
        .bind(event.at)
        .bind(event.actor_id.map(|id| id.to_string()))
        .bind(event.actor_email.as_deref())
        .bind(&event.action)
        .bind(event.target.as_deref())
        .bind(&event.detail)
        .bind(&event.ip)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditEvent>, i64)> {
        // Static statements: an empty filter value matches every row. The
        // values are matched as typed: `%`, `_` and `\` in them are escaped.
        macro_rules! matching {
            () => {
                " WHERE ($1 = '' OR action LIKE $1 || '%' ESCAPE '\\') \
                 AND ($2 = '' OR LOWER(COALESCE(actor_email, '')) LIKE '%' || $2 || '%' ESCAPE '\\' \
                      OR LOWER(COALESCE(target, '')) LIKE '%' || $2 || '%' ESCAPE '\\')"
            };
        }
        let person = like_literal(&filter.person.trim().to_lowercase());
        let action = like_literal(filter.action.trim());
        let action = action.as_str();
        let (total,): (i64,) =
            sqlx::query_as(concat!("SELECT COUNT(*) FROM audit_events", matching!()))
                .bind(action)
                .bind(&person)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
        let found = sqlx::query(concat!(
            "SELECT id, at, actor_id, actor_email, action, target, detail, ip FROM audit_events",
            matching!(),
            " ORDER BY at DESC, id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(action)
        .bind(&person)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let events = found
            .iter()
            .map(|row| {
                let id: String = row.try_get("id").map_err(db_error)?;
                let actor_id: Option<String> = row.try_get("actor_id").map_err(db_error)?;
                Ok(AuditEvent {
                    id: uuid::Uuid::parse_str(&id)
                        .map_err(|e| crate::pool::backend_error("audit id", e))?,
                    at: row.try_get("at").map_err(db_error)?,
                    actor_id: actor_id.as_deref().map(rows::user_id).transpose()?,
                    actor_email: row.try_get("actor_email").map_err(db_error)?,
                    action: row.try_get("action").map_err(db_error)?,
                    target: row.try_get("target").map_err(db_error)?,
                    detail: row.try_get("detail").map_err(db_error)?,
                    ip: row.try_get("ip").map_err(db_error)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((events, total))
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

/// `text` for a `LIKE … ESCAPE '\'` pattern that matches it literally.
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Both databases must have the same migration files, so neither falls behind.
    #[test]
    fn both_databases_have_the_same_migration_file_names() -> std::io::Result<()> {
        let names = |backend: &str| -> std::io::Result<BTreeSet<String>> {
            let folder = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_dir(folder)?
                .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        };
        let sqlite = names("sqlite")?;
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, names("postgres")?);
        Ok(())
    }
}
