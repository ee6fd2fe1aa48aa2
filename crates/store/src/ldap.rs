//! Directory (LDAP) users, synchronisation runs and the lease that lets one
//! instance at a time synchronise.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{DIRECTORY_PASSWORD, User, UserId},
    store::{DirectoryProfile, LdapStore, StoreResult, SyncRun},
};

use crate::{
    SqlStore,
    projects::rename_personal_project,
    rows::{self, UserRow},
    sql::Sql,
};

#[derive(sqlx::FromRow)]
struct SyncRunRow {
    id: String,
    run_mode: String,
    status: String,
    started_at: i64,
    ended_at: i64,
    scanned: i64,
    created: i64,
    updated: i64,
    disabled: i64,
    error: String,
}

impl TryFrom<SyncRunRow> for SyncRun {
    type Error = usher_domain::store::StoreError;

    fn try_from(row: SyncRunRow) -> StoreResult<Self> {
        Ok(SyncRun {
            id: rows::uuid(&row.id, "sync run")?,
            run_mode: row.run_mode,
            status: row.status,
            started_at: row.started_at,
            ended_at: row.ended_at,
            scanned: row.scanned,
            created: row.created,
            updated: row.updated,
            disabled: row.disabled,
            error: row.error,
        })
    }
}

#[async_trait]
impl LdapStore for SqlStore {
    async fn user_by_ldap_id(&self, ldap_id: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = self
            .fetch_optional(Sql::new("SELECT * FROM users WHERE ldap_id = $1").bind(ldap_id))
            .await?;
        rows::maybe_user(row)
    }

    async fn ldap_users(&self) -> StoreResult<Vec<User>> {
        let found = self
            .fetch_all(Sql::new(
                "SELECT * FROM users WHERE ldap_id IS NOT NULL ORDER BY created_at, id",
            ))
            .await?;
        rows::users(found)
    }

    async fn link_ldap_user(
        &self,
        id: UserId,
        profile: &DirectoryProfile,
        now: Millis,
    ) -> StoreResult<Option<User>> {
        let mut write = self.auth_write().await?;
        // The password kept here stops working (the directory's is the one
        // now), and so do links that would set one. Only a user linked to
        // this entry already, or an active member who is not linked yet, is
        // changed: never the owner, and never an admin's account taken over
        // (also when they were promoted after the domain looked).
        let row: Option<UserRow> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE users SET email = $1, first_name = $2, last_name = $3, \
                     email_skeleton = $4, email_verified = 1, ldap_id = $5, password_hash = $6, \
                     password_change_required = 0, disabled = 0, updated_at = $7 \
                     WHERE id = $8 AND role <> 'global:owner' \
                     AND (ldap_id = $5 OR (ldap_id IS NULL AND role = 'global:member' \
                     AND disabled = 0)) RETURNING *",
                )
                .bind(profile.email.as_str())
                .bind(&profile.first_name)
                .bind(&profile.last_name)
                .bind(profile.email.skeleton())
                .bind(&profile.ldap_id)
                .bind(DIRECTORY_PASSWORD)
                .bind(now)
                .bind(id),
            )
            .await?;
        let Some(user) = rows::maybe_user(row)? else {
            return Ok(None);
        };
        rename_personal_project(&mut write, id, &user.personal_project_name(), now).await?;
        for statement in [
            "DELETE FROM invitations WHERE user_id = $1",
            "DELETE FROM password_resets WHERE user_id = $1",
        ] {
            write.execute(Sql::new(statement).bind(id)).await?;
        }
        write.commit().await?;
        Ok(Some(user))
    }

    async fn disable_users(&self, ids: &[UserId], now: Millis) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut write = self.auth_write().await?;
        let mut disabled = 0;
        for id in ids {
            // The owner signs in with the local password and is never a
            // directory user's to disable.
            disabled += write
                .execute(
                    Sql::new(
                        "UPDATE users SET disabled = 1, updated_at = $1 \
                         WHERE id = $2 AND role <> 'global:owner' AND disabled = 0",
                    )
                    .bind(now)
                    .bind(*id),
                )
                .await?;
            // Everything that lets them in goes in the same transaction, so
            // "disabled" is true at once on every instance. App grants take
            // their codes and tokens with them (ON DELETE CASCADE).
            for statement in [
                "DELETE FROM sessions WHERE user_id = $1",
                "DELETE FROM api_keys WHERE user_id = $1",
                "DELETE FROM oidc_grants WHERE user_id = $1",
                "DELETE FROM login_challenges WHERE user_id = $1",
                "DELETE FROM password_resets WHERE user_id = $1",
                "DELETE FROM invitations WHERE user_id = $1",
            ] {
                write.execute(Sql::new(statement).bind(*id)).await?;
            }
        }
        write.commit().await?;
        Ok(disabled)
    }

    async fn insert_sync_run(&self, run: &SyncRun) -> StoreResult<()> {
        self.execute(
            Sql::new(
                "INSERT INTO ldap_sync_runs (id, run_mode, status, started_at, ended_at, \
                 scanned, created, updated, disabled, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(run.id)
            .bind(&run.run_mode)
            .bind(&run.status)
            .bind(run.started_at)
            .bind(run.ended_at)
            .bind(run.scanned)
            .bind(run.created)
            .bind(run.updated)
            .bind(run.disabled)
            .bind(&run.error),
        )
        .await
        .map(drop)
    }

    async fn sync_runs(&self, limit: i64) -> StoreResult<Vec<SyncRun>> {
        let found: Vec<SyncRunRow> = self
            .fetch_all(
                Sql::new("SELECT * FROM ldap_sync_runs ORDER BY started_at DESC, id DESC LIMIT $1")
                    .bind(limit),
            )
            .await?;
        found.into_iter().map(SyncRun::try_from).collect()
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> StoreResult<bool> {
        // One statement, atomic on both databases: a free or lapsed lease
        // (or one this holder has) is taken; a held one is left alone and
        // nothing comes back.
        let taken: Option<(String,)> = self
            .fetch_optional(
                Sql::new(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
                     WHERE leases.expires_at <= $4 OR leases.holder = $2 \
                     RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now),
            )
            .await?;
        Ok(taken.is_some_and(|(h,)| h == holder))
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.execute(
            Sql::new("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder),
        )
        .await
        .map(drop)
    }
}
