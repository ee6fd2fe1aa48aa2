//! Rate-limit counters, instance settings, the audit log and the health ping.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    store::{AuditEvent, AuditFilter, AuditStore, GuardStore, SettingStore, Store, StoreResult},
};

use crate::{SqlStore, rows, sql::Sql};

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
        let count: Option<(i64,)> = self
            .fetch_optional(
                Sql::new(
                    "INSERT INTO rate_limits (key, window_start, count, expires_at) \
                     VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limits.count + 1 \
                     RETURNING count",
                )
                .bind(key)
                .bind(window_start)
                .bind(expires_at),
            )
            .await?;
        Ok(count.map_or(0, |(count,)| count))
    }

    async fn forgive_hit(&self, key: &str, window_start: Millis) -> StoreResult<()> {
        self.execute(
            Sql::new(
                "UPDATE rate_limits SET count = count - 1 \
                 WHERE key = $1 AND window_start = $2 AND count > 0",
            )
            .bind(key)
            .bind(window_start),
        )
        .await
        .map(drop)
    }

    async fn purge_expired(&self, now: Millis) -> StoreResult<()> {
        for sql in [
            "DELETE FROM rate_limits WHERE expires_at <= $1",
            "DELETE FROM forward_auth_codes WHERE expires_at <= $1",
            "DELETE FROM login_challenges WHERE expires_at <= $1",
            "DELETE FROM oidc_codes WHERE expires_at <= $1 AND used_at IS NULL",
            "DELETE FROM sso_logins WHERE expires_at <= $1",
        ] {
            self.execute(Sql::new(sql).bind(now)).await?;
        }
        // Sessions, grants and tokens go through the write guard (the
        // cache holds them); their host sessions, codes and tokens go with
        // them.
        let mut write = self.auth_write().await?;
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM oidc_grants WHERE expires_at <= $1",
            "DELETE FROM oidc_tokens WHERE expires_at <= $1",
        ] {
            write.execute(Sql::new(sql).bind(now)).await?;
        }
        write.commit().await
    }
}

#[async_trait]
impl SettingStore for SqlStore {
    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = self
            .fetch_optional(Sql::new("SELECT value FROM settings WHERE key = $1").bind(key))
            .await?;
        Ok(row.map(|(value,)| value))
    }

    // Whether everyone must have two-factor is a setting forward
    // authentication answers from memory: settings change through the write
    // guard.
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value),
            )
            .await?;
        write.commit().await
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(Sql::new("DELETE FROM settings WHERE key = $1").bind(key))
            .await?;
        write.commit().await
    }
}

/// A row of `audit_events`.
#[derive(sqlx::FromRow)]
struct AuditRow {
    id: String,
    at: i64,
    actor_id: Option<String>,
    actor_email: Option<String>,
    action: String,
    target: Option<String>,
    detail: String,
    ip: String,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = usher_domain::store::StoreError;

    fn try_from(row: AuditRow) -> StoreResult<Self> {
        Ok(AuditEvent {
            id: rows::uuid(&row.id, "audit event")?,
            at: row.at,
            actor_id: row.actor_id.as_deref().map(rows::user_id).transpose()?,
            actor_email: row.actor_email,
            action: row.action,
            target: row.target,
            detail: row.detail,
            ip: row.ip,
        })
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        self.execute(
            Sql::new(
                "INSERT INTO audit_events (id, at, actor_id, actor_email, action, target, detail, ip) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(event.id)
            .bind(event.at)
            .bind(event.actor_id)
            .bind(event.actor_email.as_deref())
            .bind(&event.action)
            .bind(event.target.as_deref())
            .bind(&event.detail)
            .bind(&event.ip),
        )
        .await
        .map(drop)
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditEvent>, i64)> {
        // Static statements: an empty filter value matches every row. The
        // values are matched as typed: `%`, `_` and `\` in them are escaped.
        let person = like_literal(&filter.person.trim().to_lowercase());
        let action = like_literal(filter.action.trim());
        let action = action.as_str();
        let total: Option<(i64,)> = self
            .fetch_optional(
                Sql::new(
                    "SELECT COUNT(*) FROM audit_events \
                     WHERE ($1 = '' OR action LIKE $1 || '%' ESCAPE '\\') \
                     AND ($2 = '' OR LOWER(COALESCE(actor_email, '')) LIKE '%' || $2 || '%' ESCAPE '\\' \
                          OR LOWER(COALESCE(target, '')) LIKE '%' || $2 || '%' ESCAPE '\\')",
                )
                .bind(action)
                .bind(person.as_str()),
            )
            .await?;
        let found: Vec<AuditRow> = self
            .fetch_all(
                Sql::new(
                    "SELECT * FROM audit_events \
                     WHERE ($1 = '' OR action LIKE $1 || '%' ESCAPE '\\') \
                     AND ($2 = '' OR LOWER(COALESCE(actor_email, '')) LIKE '%' || $2 || '%' ESCAPE '\\' \
                          OR LOWER(COALESCE(target, '')) LIKE '%' || $2 || '%' ESCAPE '\\') \
                     ORDER BY at DESC, id DESC LIMIT $3 OFFSET $4",
                )
                .bind(action)
                .bind(person.as_str())
                .bind(limit)
                .bind(offset),
            )
            .await?;
        let events = found
            .into_iter()
            .map(AuditEvent::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((events, total.map_or(0, |(total,)| total)))
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await
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
