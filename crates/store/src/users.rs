//! Users and the owner shell.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{Email, Role, User, UserId},
    resources::UNNAMED_PROJECT,
    store::{
        OrderKey, OwnerClaim, ProfileChange, SetupState, StoreError, StoreResult, UserRef,
        UserSearch, UserStore, keys,
    },
};

use crate::{
    SqlStore,
    cache::Lookup,
    projects::{add_personal_project, rename_personal_project},
    rows::{self, UserRow},
    sql::Sql,
    write::AuthWrite,
};

#[async_trait]
impl UserStore for SqlStore {
    async fn ensure_owner_shell(&self, id: UserId, now: Millis) -> StoreResult<()> {
        // The partial unique index on the owner role makes this a no-op when
        // an owner exists, also when several instances start together.
        let mut write = self.auth_write().await?;
        let inserted = write
            .execute(
                Sql::new(
                    "INSERT INTO users (id, role, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(Role::Owner.as_str())
                .bind(now),
            )
            .await?;
        if inserted > 0 {
            add_personal_project(&mut write, id, UNNAMED_PROJECT, now).await?;
        }
        write.commit().await
    }

    async fn setup_state(&self) -> StoreResult<SetupState> {
        // One query per request: everything pages and routes decide on.
        let (owner_set_up, setup_skipped, mfa_required): (i64, i64, i64) = self
            .fetch_optional(
                Sql::new(
                    "SELECT \
                       (SELECT COUNT(*) FROM users WHERE role = $1 AND email IS NOT NULL), \
                       (SELECT COUNT(*) FROM settings WHERE key = $2 AND value = 'true'), \
                       (SELECT COUNT(*) FROM settings WHERE key = $3 AND value = 'true')",
                )
                .bind(Role::Owner.as_str())
                .bind(keys::SETUP_SKIPPED)
                .bind(keys::MFA_REQUIRED),
            )
            .await?
            .unwrap_or_default();
        Ok(SetupState {
            owner_set_up: owner_set_up > 0,
            setup_skipped: setup_skipped > 0,
            mfa_required: mfa_required > 0,
        })
    }

    async fn owner(&self) -> StoreResult<Option<User>> {
        let row = self
            .fetch_optional(
                Sql::new("SELECT * FROM users WHERE role = $1").bind(Role::Owner.as_str()),
            )
            .await?;
        rows::maybe_user(row)
    }

    async fn claim_owner(&self, claim: &OwnerClaim) -> StoreResult<Option<User>> {
        // One conditional statement: only the request that finds the shell
        // still empty fills it.
        let mut write = self.auth_write().await?;
        let row: Option<UserRow> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE users SET email = $1, first_name = $2, last_name = $3, \
                     password_hash = $4, password_change_required = 0, updated_at = $5, \
                     email_skeleton = $7, email_verified = 1, mfa_enabled = 0, mfa_secret = NULL, \
                     mfa_pending_secret = NULL \
                     WHERE role = $6 AND email IS NULL RETURNING *",
                )
                .bind(claim.email.as_str())
                .bind(&claim.first_name)
                .bind(&claim.last_name)
                .bind(&claim.password_hash)
                .bind(claim.now)
                .bind(Role::Owner.as_str())
                .bind(claim.email.skeleton()),
            )
            .await?;
        let Some(owner) = rows::maybe_user(row)? else {
            return Ok(None);
        };
        rename_personal_project(
            &mut write,
            owner.id,
            &owner.personal_project_name(),
            claim.now,
        )
        .await?;
        // Nothing made for the row before it had an owner opens it now: no
        // reset link, no session.
        for statement in [
            "DELETE FROM password_resets WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
            "DELETE FROM mfa_used_steps WHERE user_id = $1",
            "DELETE FROM login_challenges WHERE user_id = $1",
        ] {
            write.execute(Sql::new(statement).bind(owner.id)).await?;
        }
        write.commit().await?;
        Ok(Some(owner))
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        insert_user(&mut write, user).await?;
        write.commit().await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.cached_user(&UserRef::Id(id)).await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        self.cached_user(&UserRef::Email(email.clone())).await
    }

    async fn search_users(&self, search: &UserSearch) -> StoreResult<Vec<(User, OrderKey)>> {
        self.search_user_page(search).await
    }

    async fn touch_user(&self, id: UserId, now: Millis, since: Millis) -> StoreResult<()> {
        // Through the write guard like every change to users, so that every
        // instance's cache learns the new time; at most once a day a user.
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "UPDATE users SET last_active_at = $1 WHERE id = $2 AND last_active_at < $3",
                )
                .bind(now)
                .bind(id)
                .bind(since),
            )
            .await?;
        write.commit().await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let found = self
            .fetch_all(Sql::new(
                "SELECT * FROM users WHERE email IS NOT NULL ORDER BY created_at, id",
            ))
            .await?;
        rows::users(found)
    }

    async fn update_profile(
        &self,
        id: UserId,
        change: &ProfileChange,
        keep_session: Option<&str>,
    ) -> StoreResult<Option<User>> {
        let mut write = self.auth_write().await?;
        let before: Option<(Option<String>,)> = write
            .fetch_optional(Sql::new("SELECT email FROM users WHERE id = $1").bind(id))
            .await?;
        let Some((old_email,)) = before else {
            return Ok(None);
        };
        let row: Option<UserRow> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE users SET email = $1, first_name = $2, last_name = $3, updated_at = $4, \
                     email_skeleton = $6, \
                     email_verified = CASE WHEN email = $1 THEN email_verified ELSE 0 END \
                     WHERE id = $5 RETURNING *",
                )
                .bind(change.email.as_str())
                .bind(&change.first_name)
                .bind(&change.last_name)
                .bind(change.now)
                .bind(id)
                .bind(change.email.skeleton()),
            )
            .await?;
        let user = rows::maybe_user(row)?;
        if let Some(user) = &user {
            rename_personal_project(&mut write, id, &user.personal_project_name(), change.now)
                .await?;
        }
        if old_email.as_deref() != Some(change.email.as_str()) {
            end_sessions(&mut write, id, keep_session).await?;
            write
                .execute(Sql::new("DELETE FROM email_verifications WHERE user_id = $1").bind(id))
                .await?;
        }
        write.commit().await?;
        Ok(user)
    }

    async fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        change_required: bool,
        now: Millis,
        keep_session: Option<&str>,
    ) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "UPDATE users SET password_hash = $1, password_change_required = $2, \
                     updated_at = $3 WHERE id = $4",
                )
                .bind(password_hash)
                .bind(change_required)
                .bind(now)
                .bind(id),
            )
            .await?;
        end_sessions(&mut write, id, keep_session).await?;
        write.commit().await
    }

    async fn set_role(&self, id: UserId, role: Role, now: Millis) -> StoreResult<Option<User>> {
        let mut write = self.auth_write().await?;
        let row: Option<UserRow> = write
            .fetch_optional(
                Sql::new(
                    "UPDATE users SET role = $1, updated_at = $2 \
                     WHERE id = $3 AND role <> 'global:owner' RETURNING *",
                )
                .bind(role.as_str())
                .bind(now)
                .bind(id),
            )
            .await?;
        write.commit().await?;
        rows::maybe_user(row)
    }

    async fn transfer_ownership(&self, from: UserId, to: UserId, now: Millis) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        // The old owner steps down first: the partial unique index allows
        // one owner at any moment, also inside the transaction.
        let stepped_down = write
            .execute(
                Sql::new(
                    "UPDATE users SET role = 'global:admin', updated_at = $1 \
                     WHERE id = $2 AND role = 'global:owner'",
                )
                .bind(now)
                .bind(from),
            )
            .await?;
        if stepped_down == 0 {
            return Ok(false);
        }
        let promoted = write
            .execute(
                Sql::new(
                    "UPDATE users SET role = 'global:owner', password_change_required = 0, \
                     updated_at = $1 WHERE id = $2 AND password_hash IS NOT NULL \
                     AND disabled = 0 AND ldap_id IS NULL",
                )
                .bind(now)
                .bind(to),
            )
            .await?;
        if promoted == 0 {
            return Ok(false);
        }
        write.commit().await?;
        Ok(true)
    }

    async fn rehash_password(&self, id: UserId, password_hash: &str) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(id),
            )
            .await?;
        write.commit().await
    }

    async fn user_looking_like(&self, email: &Email) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT * FROM users WHERE email_skeleton = $1 AND email <> $2 \
                     ORDER BY created_at LIMIT 1",
                )
                .bind(email.skeleton())
                .bind(email.as_str()),
            )
            .await?;
        rows::maybe_user(row)
    }

    async fn revoke_open_access(&self) -> StoreResult<(u64, u64)> {
        let mut write = self.auth_write().await?;
        let api_keys = write.execute(Sql::new("DELETE FROM api_keys")).await?;
        let invitations = write
            .execute(Sql::new(
                "DELETE FROM users WHERE password_hash IS NULL AND role <> 'global:owner' \
                 AND id IN (SELECT user_id FROM invitations)",
            ))
            .await?;
        // Every session of that time (of users who accepted an invitation,
        // or were added directly), and every setting then written (the
        // invitation email's wording, MFA enforcement): only the instance's
        // own key fingerprint and the set-up flags are the instance's.
        write.execute(Sql::new("DELETE FROM sessions")).await?;
        write
            .execute(
                Sql::new("DELETE FROM settings WHERE key <> $1 AND key <> $2")
                    .bind(keys::KEY_FINGERPRINT)
                    .bind(keys::SETUP_SKIPPED),
            )
            .await?;
        write.commit().await?;
        Ok((api_keys, invitations))
    }

    async fn reset_user_management(&self, new_owner: UserId, now: Millis) -> StoreResult<()> {
        // In one transaction, so that a failure leaves the instance as it
        // was. The owner shell gets a new id: whatever was keyed to the old
        // owner (API keys, reset links, sessions, two-factor secrets and
        // recovery codes, challenges) goes with the old row, by cascade, and
        // nothing held by someone from before can reach the new owner.
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO users (id, role, created_at, updated_at) \
                     VALUES ($1, 'global:member', $2, $2)",
                )
                .bind(new_owner)
                .bind(now),
            )
            .await?;
        let old: Option<(String,)> = write
            .fetch_optional(Sql::new("SELECT id FROM users WHERE role = 'global:owner'"))
            .await?;
        let old = old.map(|(id,)| id).unwrap_or_default();
        // The owner's personal project and team memberships pass to the new
        // shell (which has none yet), the personal project renamed for a
        // shell (the names and email it was named after are gone); a database
        // whose owner had none gets one here. Everyone else's work joins it.
        for statement in [
            "UPDATE projects SET personal_owner_id = $1 WHERE personal_owner_id = $2",
            "UPDATE project_members SET user_id = $1 WHERE user_id = $2",
        ] {
            write
                .execute(Sql::new(statement).bind(new_owner).bind(old.as_str()))
                .await?;
        }
        add_personal_project(&mut write, new_owner, UNNAMED_PROJECT, now).await?;
        rename_personal_project(&mut write, new_owner, UNNAMED_PROJECT, now).await?;
        let personal: Option<(String,)> = write
            .fetch_optional(
                Sql::new("SELECT id FROM projects WHERE personal_owner_id = $1").bind(new_owner),
            )
            .await?;
        let personal = personal
            .map(|(id,)| id)
            .ok_or_else(|| StoreError::Backend("the owner shell has no personal project".into()))?;
        for table in [
            "UPDATE workflows SET project_id = $1 WHERE project_id IN \
             (SELECT id FROM projects WHERE kind = 'personal' AND id <> $1)",
            "UPDATE credentials SET project_id = $1 WHERE project_id IN \
             (SELECT id FROM projects WHERE kind = 'personal' AND id <> $1)",
        ] {
            write
                .execute(Sql::new(table).bind(personal.as_str()))
                .await?;
        }
        for statement in [
            // Everyone but the new shell, the old owner included; their
            // sessions, keys, links, invitations, second factors and
            // memberships go by cascade.
            "DELETE FROM users WHERE id <> $1",
            "UPDATE users SET role = 'global:owner' WHERE id = $1",
        ] {
            write.execute(Sql::new(statement).bind(new_owner)).await?;
        }
        // Back to the first run: no setting survives (the invitation email's
        // wording, MFA enforcement, reports) but the instance key's
        // fingerprint, which belongs to the instance, not to its users.
        write
            .execute(Sql::new("DELETE FROM settings WHERE key <> $1").bind(keys::KEY_FINGERPRINT))
            .await?;
        write.commit().await
    }
}

impl SqlStore {
    /// Gives rows from before migration 0008 their email's skeleton, which
    /// only Rust can make. Run at start; a no-op once done.
    pub(crate) async fn fill_email_skeletons(&self) -> StoreResult<()> {
        let missing: Vec<(String, String)> = self
            .fetch_all(Sql::new(
                "SELECT id, email FROM users WHERE email IS NOT NULL AND email_skeleton IS NULL",
            ))
            .await?;
        if missing.is_empty() {
            return Ok(());
        }
        let mut write = self.auth_write().await?;
        for (id, email) in &missing {
            let skeleton = Email::parse(email)
                .map(|e| e.skeleton())
                .unwrap_or_default();
            write
                .execute(
                    Sql::new("UPDATE users SET email_skeleton = $1 WHERE id = $2")
                        .bind(skeleton)
                        .bind(id.as_str()),
                )
                .await?;
        }
        write.commit().await
    }

    /// A user by id or email, from memory when the cache holds it (see
    /// [`crate::cache`]).
    pub(crate) async fn cached_user(&self, target: &UserRef) -> StoreResult<Option<User>> {
        self.db.before_cached_read().await?;
        let lookup = self.cache.user(target);
        if let Lookup::Hit(user) = lookup {
            return Ok(Some(user));
        }
        let row = match target {
            UserRef::Id(id) => {
                self.fetch_optional(Sql::new("SELECT * FROM users WHERE id = $1").bind(*id))
                    .await?
            }
            UserRef::Email(email) => {
                self.fetch_optional(
                    Sql::new("SELECT * FROM users WHERE email = $1").bind(email.as_str()),
                )
                .await?
            }
        };
        let found = rows::maybe_user(row)?;
        if let (Lookup::Miss(generation), Some(user)) = (lookup, &found) {
            self.cache.keep_user(generation, user);
        }
        Ok(found)
    }
}

/// Ends every session of `user` but `keep` and voids their password reset
/// links, inside the caller's transaction: what a password or email change
/// must do.
pub(crate) async fn end_sessions(
    write: &mut AuthWrite,
    user: UserId,
    keep: Option<&str>,
) -> StoreResult<()> {
    write
        .execute(
            Sql::new("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
                .bind(user)
                .bind(keep.unwrap_or("")),
        )
        .await?;
    write
        .execute(Sql::new("DELETE FROM password_resets WHERE user_id = $1").bind(user))
        .await?;
    Ok(())
}

/// `INSERT` of a whole user with their personal project, inside the
/// caller's transaction: every path that adds a user row (direct creation,
/// invitation) goes through here, so none can leave one without it.
pub(crate) async fn insert_user(write: &mut AuthWrite, user: &User) -> StoreResult<()> {
    write
        .execute(
            Sql::new(
                "INSERT INTO users (id, email, first_name, last_name, role, password_hash, \
                 password_change_required, mfa_enabled, invited_by, invited_at, created_at, \
                 updated_at, email_skeleton, ldap_id, disabled, email_verified) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(user.id)
            .bind(user.email.as_ref().map(Email::as_str))
            .bind(&user.first_name)
            .bind(&user.last_name)
            .bind(user.role.as_str())
            .bind(user.password_hash.as_deref())
            .bind(user.password_change_required)
            .bind(user.mfa_enabled)
            .bind(user.invited_by)
            .bind(user.invited_at)
            .bind(user.created_at)
            .bind(user.updated_at)
            .bind(user.email.as_ref().map(Email::skeleton))
            .bind(user.ldap_id.as_deref())
            .bind(user.disabled)
            .bind(user.email_verified),
        )
        .await?;
    add_personal_project(
        write,
        user.id,
        &user.personal_project_name(),
        user.created_at,
    )
    .await
}
