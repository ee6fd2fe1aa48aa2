//! Forward authentication: the apps with a door, who a cookie names and
//! their place in an app (both answered from memory, `crate::cache`), the
//! single-use codes that carry a session to an app's host, and host
//! sessions.
//!
//! What the answers are made of (sessions, host sessions, users, apps and
//! their access, projects and their members) changes only through the
//! write guard (`crate::write`), and PostgreSQL's triggers (migrations 0007
//! and 0013) report changes made behind Usher's back, so an answer from
//! memory is as fresh as one read from the database: a session ended or an
//! access removed is refused at once, on every instance.

use std::sync::Arc;

use async_trait::async_trait;
use usher_domain::{
    apps::{App, AppId},
    clock::Millis,
    store::{
        AppStore, ForwardAccess, ForwardAuthStore, ForwardCode, ForwardCookie, HostSession,
        SettingStore, StoreResult, keys,
    },
};

use crate::{SqlStore, cache::Lookup, rows::UserRow, sql::Sql};

/// A cookie's session and its user, the user's columns as they are.
#[derive(sqlx::FromRow)]
struct AccessRow {
    #[sqlx(flatten)]
    user: UserRow,
    session_hash: String,
    session_expires_at: i64,
    session_mfa: i64,
    bound_host: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    code_hash: String,
    session_hash: String,
    url: String,
    host: String,
    state_hash: String,
    expires_at: i64,
}

impl SqlStore {
    /// Reads who `cookie` names and their place in `app`. A disabled
    /// person's cookie names nobody, as in the session lookup.
    async fn read_forward_access(
        &self,
        cookie: ForwardCookie<'_>,
        app: AppId,
        now: Millis,
    ) -> StoreResult<Option<ForwardAccess>> {
        let sql = match cookie {
            ForwardCookie::Session(hash) => Sql::new(
                "SELECT u.*, s.token_hash AS session_hash, s.expires_at AS session_expires_at, \
                 s.mfa AS session_mfa, NULL AS bound_host \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
            )
            .bind(hash),
            ForwardCookie::Host(hash) => Sql::new(
                "SELECT u.*, s.token_hash AS session_hash, s.expires_at AS session_expires_at, \
                 s.mfa AS session_mfa, h.host AS bound_host \
                 FROM forward_auth_sessions h \
                 JOIN sessions s ON s.token_hash = h.session_hash \
                 JOIN users u ON u.id = s.user_id \
                 WHERE h.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
            )
            .bind(hash),
        }
        .bind(now);
        let Some(row) = self.fetch_optional::<AccessRow>(sql).await? else {
            return Ok(None);
        };
        let user = usher_domain::model::User::try_from(row.user)?;
        // The one rule of who has which role in an app (crate::apps).
        let role = self.app_role(app, user.id).await?;
        let groups: Vec<(String,)> = self
            .fetch_all(
                Sql::new(
                    "SELECT p.name FROM project_members m JOIN projects p ON p.id = m.project_id \
                     WHERE m.user_id = $1 AND p.kind = 'team' ORDER BY p.name",
                )
                .bind(user.id),
            )
            .await?;
        Ok(Some(ForwardAccess {
            user,
            session_hash: row.session_hash,
            expires_at: row.session_expires_at,
            mfa: row.session_mfa != 0,
            host: row.bound_host,
            role,
            // A comma would split one name in two at the tool.
            groups: groups
                .into_iter()
                .map(|(name,)| name.replace(',', " "))
                .collect(),
        }))
    }
}

#[async_trait]
impl ForwardAuthStore for SqlStore {
    async fn forward_apps(&self) -> StoreResult<(Arc<[App]>, bool)> {
        self.db.before_cached_read().await?;
        let lookup = self.cache.forward_apps();
        if let Lookup::Hit(found) = lookup {
            return Ok(found);
        }
        let apps: Arc<[App]> = self
            .apps()
            .await?
            .into_iter()
            .filter(|app| app.forward_auth.is_some())
            .collect();
        let mfa_required = self.setting(keys::MFA_REQUIRED).await?.as_deref() == Some("true");
        if let Lookup::Miss(generation) = lookup {
            self.cache
                .keep_forward_apps(generation, (apps.clone(), mfa_required));
        }
        Ok((apps, mfa_required))
    }

    async fn forward_access(
        &self,
        cookie: ForwardCookie<'_>,
        app: AppId,
        now: Millis,
    ) -> StoreResult<Option<ForwardAccess>> {
        self.db.before_cached_read().await?;
        let key = match cookie {
            ForwardCookie::Session(hash) => format!("s:{hash}:{}", app.0),
            ForwardCookie::Host(hash) => format!("h:{hash}:{}", app.0),
        };
        let lookup = self.cache.forward(&key);
        match lookup {
            // A session that ran out since is read again (and is gone).
            Lookup::Hit(access) if access.expires_at > now => Ok(Some(access)),
            Lookup::Hit(_) => self.read_forward_access(cookie, app, now).await,
            Lookup::Miss(generation) => {
                let found = self.read_forward_access(cookie, app, now).await?;
                if let Some(access) = &found {
                    self.cache.keep_forward(generation, key, access);
                }
                Ok(found)
            }
            Lookup::Off => self.read_forward_access(cookie, app, now).await,
        }
    }

    async fn insert_forward_code(&self, code: &ForwardCode) -> StoreResult<()> {
        self.execute(
            Sql::new(
                "INSERT INTO forward_auth_codes (code_hash, session_hash, url, host, state_hash, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&code.code_hash)
            .bind(&code.session_hash)
            .bind(&code.url)
            .bind(&code.host)
            .bind(&code.state_hash)
            .bind(code.expires_at),
        )
        .await
        .map(drop)
    }

    async fn take_forward_code(
        &self,
        code_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<ForwardCode>> {
        // One conditional statement: of several uses at once, on any
        // instance, exactly one gets the row.
        let row: Option<CodeRow> = self
            .fetch_optional(
                Sql::new(
                    "UPDATE forward_auth_codes SET used_at = $2 \
                     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING code_hash, session_hash, url, host, state_hash, expires_at",
                )
                .bind(code_hash)
                .bind(now),
            )
            .await?;
        Ok(row.map(|row| ForwardCode {
            code_hash: row.code_hash,
            session_hash: row.session_hash,
            url: row.url,
            host: row.host,
            state_hash: row.state_hash,
            expires_at: row.expires_at,
        }))
    }

    async fn insert_host_session(&self, session: &HostSession, now: Millis) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        // Only on a live session: one that ended meanwhile starts nothing.
        let inserted = write
            .execute(
                Sql::new(
                    "INSERT INTO forward_auth_sessions (token_hash, session_hash, host, \
                     created_at) \
                     SELECT $1, token_hash, $3, $4 FROM sessions \
                     WHERE token_hash = $2 AND expires_at > $5",
                )
                .bind(&session.token_hash)
                .bind(&session.session_hash)
                .bind(&session.host)
                .bind(session.created_at)
                .bind(now),
            )
            .await?;
        if inserted == 0 {
            return Ok(false);
        }
        write.commit().await?;
        Ok(true)
    }

    async fn mark_session_mfa(&self, token_hash: &str) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(Sql::new("UPDATE sessions SET mfa = 1 WHERE token_hash = $1").bind(token_hash))
            .await?;
        write.commit().await
    }
}
