//! Apps, their access, and what Usher as their OpenID Connect provider
//! keeps: grants (one sign-in of a person into an app), codes, tokens,
//! consents and signing keys.
//!
//! The rule "which role does this person have in this app" (see
//! `usher_domain::apps`) is written here in SQL and nowhere else: issuing a
//! code, redeeming it, listing a person's apps and revoking lapsed grants
//! all use it. A change to who may use an app (the app's access, a project's
//! members, a project deleted) revokes, in its own transaction, every grant
//! whose role is no longer the person's role (`REVOKE_LAPSED_*`), so a
//! removed or demoted person's tokens stop working at once, on every
//! instance; deleting a person or an app revokes theirs by `ON DELETE
//! CASCADE`.

use async_trait::async_trait;
use usher_domain::{
    apps::{Access, App, AppId, ForwardAuth},
    clock::Millis,
    model::UserId,
    resources::ProjectId,
    store::{
        AppStore, OidcCode, OidcGrant, OidcStore, OidcToken, SigningKey, StoreError, StoreResult,
        TokenKind,
    },
};

use crate::{
    SqlStore,
    cache::Lookup,
    rows::{user_id, uuid},
    sql::Sql,
    write::{AuthWrite, Statements},
};

/// Revokes the grants of one app whose role is no longer the holder's.
const REVOKE_LAPSED_OF_APP: &str = "DELETE FROM oidc_grants WHERE app_id = $1 \
     AND role IS DISTINCT FROM COALESCE(\
     (SELECT au.role FROM app_users au \
      WHERE au.app_id = oidc_grants.app_id AND au.user_id = oidc_grants.user_id), \
     (SELECT ap.role FROM app_projects ap \
      JOIN project_members pm ON pm.project_id = ap.project_id \
      WHERE ap.app_id = oidc_grants.app_id AND pm.user_id = oidc_grants.user_id \
      ORDER BY ap.position LIMIT 1), \
     (SELECT a.default_role FROM apps a WHERE a.id = oidc_grants.app_id AND a.everyone = 1))";

/// Revokes the grants of one person whose role is no longer theirs.
const REVOKE_LAPSED_OF_USER: &str = "DELETE FROM oidc_grants WHERE user_id = $1 \
     AND role IS DISTINCT FROM COALESCE(\
     (SELECT au.role FROM app_users au \
      WHERE au.app_id = oidc_grants.app_id AND au.user_id = oidc_grants.user_id), \
     (SELECT ap.role FROM app_projects ap \
      JOIN project_members pm ON pm.project_id = ap.project_id \
      WHERE ap.app_id = oidc_grants.app_id AND pm.user_id = oidc_grants.user_id \
      ORDER BY ap.position LIMIT 1), \
     (SELECT a.default_role FROM apps a WHERE a.id = oidc_grants.app_id AND a.everyone = 1))";

/// Revokes every grant whose role is no longer its holder's (after a
/// project was deleted).
const REVOKE_LAPSED: &str = "DELETE FROM oidc_grants \
     WHERE role IS DISTINCT FROM COALESCE(\
     (SELECT au.role FROM app_users au \
      WHERE au.app_id = oidc_grants.app_id AND au.user_id = oidc_grants.user_id), \
     (SELECT ap.role FROM app_projects ap \
      JOIN project_members pm ON pm.project_id = ap.project_id \
      WHERE ap.app_id = oidc_grants.app_id AND pm.user_id = oidc_grants.user_id \
      ORDER BY ap.position LIMIT 1), \
     (SELECT a.default_role FROM apps a WHERE a.id = oidc_grants.app_id AND a.everyone = 1))";

/// Runs the revocation that follows a change to a project's members or a
/// project's deletion, in the transaction of that change.
pub(crate) async fn revoke_lapsed_of_user(write: &mut AuthWrite, user: UserId) -> StoreResult<()> {
    write
        .execute(Sql::new(REVOKE_LAPSED_OF_USER).bind(user))
        .await
        .map(drop)
}

pub(crate) async fn revoke_lapsed(write: &mut AuthWrite) -> StoreResult<()> {
    write.execute(Sql::new(REVOKE_LAPSED)).await.map(drop)
}

#[derive(sqlx::FromRow)]
struct AppRow {
    id: String,
    name: String,
    launch_url: String,
    icon: Option<String>,
    client_id: String,
    secret_hash: Option<String>,
    public: i64,
    third_party: i64,
    require_mfa: i64,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    roles: String,
    everyone: i64,
    default_role: String,
    created_at: i64,
    updated_at: i64,
    forward_hosts: String,
    forward_public_paths: String,
    forward_min_role: String,
    forward_require_mfa: i64,
}

/// An app's forward authentication as its columns: no hosts, none.
struct ForwardColumns {
    hosts: Vec<String>,
    public_paths: Vec<String>,
    min_role: String,
    require_mfa: bool,
}

impl ForwardColumns {
    fn of(app: &App) -> Self {
        match &app.forward_auth {
            Some(f) => Self {
                hosts: f.hosts.clone(),
                public_paths: f.public_paths.clone(),
                min_role: f.min_role.clone(),
                require_mfa: f.require_mfa,
            },
            None => Self {
                hosts: Vec::new(),
                public_paths: Vec::new(),
                min_role: usher_domain::apps::DEFAULT_ROLE.into(),
                require_mfa: false,
            },
        }
    }
}

/// An app row with the caller's role in it (`apps_of`).
#[derive(sqlx::FromRow)]
struct AppRoleRow {
    #[sqlx(flatten)]
    app: AppRow,
    app_role: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AppUserRow {
    app_id: String,
    user_id: String,
    role: String,
}

#[derive(sqlx::FromRow)]
struct AppProjectRow {
    app_id: String,
    project_id: String,
    role: String,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn app_id(text: &str) -> StoreResult<AppId> {
    uuid(text, "app").map(AppId)
}

impl AppRow {
    fn into_app(self, users: &[AppUserRow], projects: &[AppProjectRow]) -> StoreResult<App> {
        let users = users
            .iter()
            .filter(|r| r.app_id == self.id)
            .map(|r| Ok((user_id(&r.user_id)?, r.role.clone())))
            .collect::<StoreResult<Vec<_>>>()?;
        let projects = projects
            .iter()
            .filter(|r| r.app_id == self.id)
            .map(|r| Ok((ProjectId(uuid(&r.project_id, "project")?), r.role.clone())))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(App {
            id: app_id(&self.id)?,
            name: self.name,
            launch_url: self.launch_url,
            icon: self.icon,
            client_id: self.client_id,
            secret_hash: self.secret_hash,
            public: self.public != 0,
            third_party: self.third_party != 0,
            require_mfa: self.require_mfa != 0,
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            roles: lines(&self.roles),
            access: Access {
                everyone: self.everyone != 0,
                default_role: self.default_role,
                projects,
                users,
            },
            forward_auth: (!self.forward_hosts.is_empty()).then(|| ForwardAuth {
                hosts: lines(&self.forward_hosts),
                public_paths: lines(&self.forward_public_paths),
                min_role: self.forward_min_role,
                require_mfa: self.forward_require_mfa != 0,
            }),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    app_id: String,
    user_id: String,
    role: String,
    scope: String,
    nonce: Option<String>,
    auth_time: i64,
    amr: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<GrantRow> for OidcGrant {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> StoreResult<Self> {
        Ok(OidcGrant {
            id: uuid(&row.id, "grant")?,
            app_id: app_id(&row.app_id)?,
            user_id: user_id(&row.user_id)?,
            role: row.role,
            scope: row.scope,
            nonce: row.nonce,
            auth_time: row.auth_time,
            amr: row.amr,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

/// A code with its grant's columns under `g_`.
#[derive(sqlx::FromRow)]
struct CodeRow {
    code_hash: String,
    grant_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    c_expires_at: i64,
    used_at: Option<i64>,
    #[sqlx(flatten)]
    grant: GrantRow,
}

/// A token with its grant's columns.
#[derive(sqlx::FromRow)]
struct TokenRow {
    token_hash: String,
    grant_id: String,
    kind: String,
    t_created_at: i64,
    t_expires_at: i64,
    used_at: Option<i64>,
    #[sqlx(flatten)]
    grant: GrantRow,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    sealed_key: String,
    public_jwk: String,
    created_at: i64,
    retired_at: Option<i64>,
}

impl SqlStore {
    async fn access_rows(&self) -> StoreResult<(Vec<AppUserRow>, Vec<AppProjectRow>)> {
        let users = self
            .fetch_all(Sql::new("SELECT app_id, user_id, role FROM app_users"))
            .await?;
        let projects = self
            .fetch_all(Sql::new(
                "SELECT app_id, project_id, role FROM app_projects ORDER BY position",
            ))
            .await?;
        Ok((users, projects))
    }

    async fn one_app(&self, row: Option<AppRow>) -> StoreResult<Option<App>> {
        let Some(row) = row else { return Ok(None) };
        let users: Vec<AppUserRow> = self
            .fetch_all(
                Sql::new("SELECT app_id, user_id, role FROM app_users WHERE app_id = $1")
                    .bind(&row.id),
            )
            .await?;
        let projects: Vec<AppProjectRow> = self
            .fetch_all(
                Sql::new(
                    "SELECT app_id, project_id, role FROM app_projects WHERE app_id = $1 \
                     ORDER BY position",
                )
                .bind(&row.id),
            )
            .await?;
        row.into_app(&users, &projects).map(Some)
    }
}

/// Writes the app's access rows (after they were deleted).
async fn write_access(write: &mut AuthWrite, app: &App) -> StoreResult<()> {
    for (user, role) in &app.access.users {
        write
            .execute(
                Sql::new("INSERT INTO app_users (app_id, user_id, role) VALUES ($1, $2, $3)")
                    .bind(app.id.0)
                    .bind(*user)
                    .bind(role),
            )
            .await?;
    }
    for (position, (project, role)) in app.access.projects.iter().enumerate() {
        write
            .execute(
                Sql::new(
                    "INSERT INTO app_projects (app_id, project_id, role, position) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(app.id.0)
                .bind(project.0)
                .bind(role)
                .bind(i64::try_from(position).unwrap_or(i64::MAX)),
            )
            .await?;
    }
    Ok(())
}

/// A person or project that does not exist breaks a foreign key: say so.
fn missing_reference(error: StoreError) -> StoreError {
    match error {
        StoreError::Backend(text) if text.to_ascii_lowercase().contains("foreign key") => {
            StoreError::Conflict("a chosen person or project does not exist".into())
        }
        other => other,
    }
}

#[async_trait]
impl AppStore for SqlStore {
    async fn insert_app(&self, app: &App) -> StoreResult<()> {
        let forward = ForwardColumns::of(app);
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO apps (id, name, launch_url, icon, client_id, secret_hash, \
                     public, third_party, require_mfa, redirect_uris, \
                     post_logout_redirect_uris, roles, everyone, default_role, created_at, \
                     updated_at, forward_hosts, forward_public_paths, forward_min_role, \
                     forward_require_mfa) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                     $15, $16, $17, $18, $19, $20)",
                )
                .bind(app.id.0)
                .bind(&app.name)
                .bind(&app.launch_url)
                .bind(app.icon.as_deref())
                .bind(&app.client_id)
                .bind(app.secret_hash.as_deref())
                .bind(app.public)
                .bind(app.third_party)
                .bind(app.require_mfa)
                .bind(app.redirect_uris.join("\n"))
                .bind(app.post_logout_redirect_uris.join("\n"))
                .bind(app.roles.join("\n"))
                .bind(app.access.everyone)
                .bind(&app.access.default_role)
                .bind(app.created_at)
                .bind(app.updated_at)
                .bind(forward.hosts.join("\n"))
                .bind(forward.public_paths.join("\n"))
                .bind(&forward.min_role)
                .bind(forward.require_mfa),
            )
            .await?;
        write_access(&mut write, app)
            .await
            .map_err(missing_reference)?;
        write.commit().await
    }

    async fn update_app(&self, app: &App) -> StoreResult<bool> {
        // Revokes lapsed grants: a change the cache of tokens must hear of.
        let forward = ForwardColumns::of(app);
        let mut write = self.auth_write().await?;
        let changed = write
            .execute(
                Sql::new(
                    "UPDATE apps SET name = $2, launch_url = $3, icon = $4, public = $5, \
                     third_party = $6, require_mfa = $7, redirect_uris = $8, \
                     post_logout_redirect_uris = $9, roles = $10, everyone = $11, \
                     default_role = $12, updated_at = $13, forward_hosts = $14, \
                     forward_public_paths = $15, forward_min_role = $16, \
                     forward_require_mfa = $17 WHERE id = $1",
                )
                .bind(app.id.0)
                .bind(&app.name)
                .bind(&app.launch_url)
                .bind(app.icon.as_deref())
                .bind(app.public)
                .bind(app.third_party)
                .bind(app.require_mfa)
                .bind(app.redirect_uris.join("\n"))
                .bind(app.post_logout_redirect_uris.join("\n"))
                .bind(app.roles.join("\n"))
                .bind(app.access.everyone)
                .bind(&app.access.default_role)
                .bind(app.updated_at)
                .bind(forward.hosts.join("\n"))
                .bind(forward.public_paths.join("\n"))
                .bind(&forward.min_role)
                .bind(forward.require_mfa),
            )
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM app_users WHERE app_id = $1",
            "DELETE FROM app_projects WHERE app_id = $1",
        ] {
            write.execute(Sql::new(sql).bind(app.id.0)).await?;
        }
        write_access(&mut write, app)
            .await
            .map_err(missing_reference)?;
        write
            .execute(Sql::new(REVOKE_LAPSED_OF_APP).bind(app.id.0))
            .await?;
        write.commit().await?;
        Ok(true)
    }

    async fn set_app_secret(&self, id: AppId, secret_hash: Option<&str>) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        let changed = write
            .execute(
                Sql::new("UPDATE apps SET secret_hash = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(secret_hash),
            )
            .await?;
        write.commit().await?;
        Ok(changed > 0)
    }

    async fn delete_app(&self, id: AppId) -> StoreResult<bool> {
        // Access rows, grants, codes, tokens and consents go with it.
        let mut write = self.auth_write().await?;
        let deleted = write
            .execute(Sql::new("DELETE FROM apps WHERE id = $1").bind(id.0))
            .await?;
        write.commit().await?;
        Ok(deleted > 0)
    }

    async fn app(&self, id: AppId) -> StoreResult<Option<App>> {
        let row: Option<AppRow> = self
            .fetch_optional(Sql::new("SELECT * FROM apps WHERE id = $1").bind(id.0))
            .await?;
        self.one_app(row).await
    }

    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
        let row: Option<AppRow> = self
            .fetch_optional(Sql::new("SELECT * FROM apps WHERE client_id = $1").bind(client_id))
            .await?;
        self.one_app(row).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        let rows: Vec<AppRow> = self
            .fetch_all(Sql::new("SELECT * FROM apps ORDER BY name, id"))
            .await?;
        let (users, projects) = self.access_rows().await?;
        rows.into_iter()
            .map(|row| row.into_app(&users, &projects))
            .collect()
    }

    async fn apps_of(&self, user: UserId) -> StoreResult<Vec<(App, String)>> {
        let rows: Vec<AppRoleRow> = self
            .fetch_all(
                Sql::new(
                    "SELECT a.*, COALESCE(\
                     (SELECT au.role FROM app_users au \
                      WHERE au.app_id = a.id AND au.user_id = $1), \
                     (SELECT ap.role FROM app_projects ap \
                      JOIN project_members pm ON pm.project_id = ap.project_id \
                      WHERE ap.app_id = a.id AND pm.user_id = $1 \
                      ORDER BY ap.position LIMIT 1), \
                     CASE WHEN a.everyone = 1 THEN a.default_role END) AS app_role \
                     FROM apps a ORDER BY a.name, a.id",
                )
                .bind(user),
            )
            .await?;
        let (users, projects) = self.access_rows().await?;
        let mut found = Vec::new();
        for row in rows {
            if let Some(role) = row.app_role {
                found.push((row.app.into_app(&users, &projects)?, role));
            }
        }
        Ok(found)
    }

    async fn app_role(&self, app: AppId, user: UserId) -> StoreResult<Option<String>> {
        let row: Option<(Option<String>,)> = self
            .fetch_optional(
                Sql::new(
                    "SELECT COALESCE(\
                     (SELECT au.role FROM app_users au \
                      WHERE au.app_id = a.id AND au.user_id = $2), \
                     (SELECT ap.role FROM app_projects ap \
                      JOIN project_members pm ON pm.project_id = ap.project_id \
                      WHERE ap.app_id = a.id AND pm.user_id = $2 \
                      ORDER BY ap.position LIMIT 1), \
                     CASE WHEN a.everyone = 1 THEN a.default_role END) \
                     FROM apps a WHERE a.id = $1",
                )
                .bind(app.0)
                .bind(user),
            )
            .await?;
        Ok(row.and_then(|(role,)| role))
    }
}

fn token_kind(text: &str) -> StoreResult<TokenKind> {
    match text {
        "access" => Ok(TokenKind::Access),
        "refresh" => Ok(TokenKind::Refresh),
        other => Err(StoreError::Backend(format!("stored token kind {other:?}"))),
    }
}

async fn insert_tokens(write: &mut impl Statements, tokens: &[OidcToken]) -> StoreResult<()> {
    for token in tokens {
        write
            .execute(
                Sql::new(
                    "INSERT INTO oidc_tokens (token_hash, grant_id, kind, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.token_hash)
                .bind(token.grant_id)
                .bind(token.kind.as_str())
                .bind(token.created_at)
                .bind(token.expires_at),
            )
            .await?;
    }
    Ok(())
}

impl SqlStore {
    /// A token and its grant, from the database.
    async fn read_token(&self, token_hash: &str) -> StoreResult<Option<(OidcToken, OidcGrant)>> {
        let row: Option<TokenRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT t.token_hash, t.grant_id, t.kind, t.created_at AS t_created_at, \
                     t.expires_at AS t_expires_at, t.used_at, g.* FROM oidc_tokens t \
                     JOIN oidc_grants g ON g.id = t.grant_id WHERE t.token_hash = $1",
                )
                .bind(token_hash),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let token = OidcToken {
            token_hash: row.token_hash,
            grant_id: uuid(&row.grant_id, "grant")?,
            kind: token_kind(&row.kind)?,
            created_at: row.t_created_at,
            expires_at: row.t_expires_at,
            used_at: row.used_at,
        };
        Ok(Some((token, OidcGrant::try_from(row.grant)?)))
    }
}

#[async_trait]
impl OidcStore for SqlStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let rows: Vec<KeyRow> = self
            .fetch_all(Sql::new(
                "SELECT * FROM oidc_keys ORDER BY created_at DESC, kid DESC",
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| SigningKey {
                kid: row.kid,
                sealed_key: row.sealed_key,
                public_jwk: row.public_jwk,
                created_at: row.created_at,
                retired_at: row.retired_at,
            })
            .collect())
    }

    async fn insert_signing_key(
        &self,
        key: &SigningKey,
        retire_at: Option<Millis>,
    ) -> StoreResult<()> {
        let mut write = self.write().await?;
        if let Some(at) = retire_at {
            write
                .execute(
                    Sql::new("UPDATE oidc_keys SET retired_at = $1 WHERE retired_at IS NULL")
                        .bind(at),
                )
                .await?;
        }
        write
            .execute(
                Sql::new(
                    "INSERT INTO oidc_keys (kid, sealed_key, public_jwk, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&key.kid)
                .bind(&key.sealed_key)
                .bind(&key.public_jwk)
                .bind(key.created_at),
            )
            .await?;
        write.commit().await
    }

    async fn insert_grant(&self, grant: &OidcGrant, code: &OidcCode) -> StoreResult<()> {
        let mut write = self.write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO oidc_grants (id, app_id, user_id, role, scope, nonce, \
                     auth_time, amr, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(grant.id)
                .bind(grant.app_id.0)
                .bind(grant.user_id)
                .bind(&grant.role)
                .bind(&grant.scope)
                .bind(grant.nonce.as_deref())
                .bind(grant.auth_time)
                .bind(&grant.amr)
                .bind(grant.created_at)
                .bind(grant.expires_at),
            )
            .await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO oidc_codes (code_hash, grant_id, redirect_uri, \
                     code_challenge, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&code.code_hash)
                .bind(code.grant_id)
                .bind(&code.redirect_uri)
                .bind(code.code_challenge.as_deref())
                .bind(code.expires_at),
            )
            .await?;
        write.commit().await
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<(OidcCode, OidcGrant)>> {
        let row: Option<CodeRow> = self
            .fetch_optional(
                Sql::new(
                    "SELECT c.code_hash, c.grant_id, c.redirect_uri, c.code_challenge, \
                     c.expires_at AS c_expires_at, c.used_at, g.* FROM oidc_codes c \
                     JOIN oidc_grants g ON g.id = c.grant_id WHERE c.code_hash = $1",
                )
                .bind(code_hash),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let code = OidcCode {
            code_hash: row.code_hash,
            grant_id: uuid(&row.grant_id, "grant")?,
            redirect_uri: row.redirect_uri,
            code_challenge: row.code_challenge,
            expires_at: row.c_expires_at,
            used_at: row.used_at,
        };
        Ok(Some((code, OidcGrant::try_from(row.grant)?)))
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        now: Millis,
        tokens: &[OidcToken],
    ) -> StoreResult<bool> {
        let mut write = self.write().await?;
        let used = write
            .execute(
                Sql::new(
                    "UPDATE oidc_codes SET used_at = $2 WHERE code_hash = $1 \
                     AND used_at IS NULL AND expires_at > $2 \
                     AND EXISTS (SELECT 1 FROM oidc_grants g WHERE g.id = oidc_codes.grant_id \
                     AND g.expires_at > $2 AND g.role = COALESCE(\
                     (SELECT au.role FROM app_users au \
                      WHERE au.app_id = g.app_id AND au.user_id = g.user_id), \
                     (SELECT ap.role FROM app_projects ap \
                      JOIN project_members pm ON pm.project_id = ap.project_id \
                      WHERE ap.app_id = g.app_id AND pm.user_id = g.user_id \
                      ORDER BY ap.position LIMIT 1), \
                     (SELECT a.default_role FROM apps a \
                      WHERE a.id = g.app_id AND a.everyone = 1)))",
                )
                .bind(code_hash)
                .bind(now),
            )
            .await?;
        if used == 0 {
            return Ok(false);
        }
        insert_tokens(&mut write, tokens).await?;
        write.commit().await?;
        Ok(true)
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: Millis,
        tokens: &[OidcToken],
    ) -> StoreResult<bool> {
        // Marks a token used: the cache of tokens must hear of it.
        let mut write = self.auth_write().await?;
        let used = write
            .execute(
                Sql::new(
                    "UPDATE oidc_tokens SET used_at = $2 WHERE token_hash = $1 \
                     AND kind = 'refresh' AND used_at IS NULL AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(now),
            )
            .await?;
        if used == 0 {
            return Ok(false);
        }
        insert_tokens(&mut write, tokens).await?;
        write.commit().await?;
        Ok(true)
    }

    async fn token(&self, token_hash: &str) -> StoreResult<Option<(OidcToken, OidcGrant)>> {
        // From memory when the cache holds it (crate::cache): UserInfo runs
        // on every request of some apps.
        self.db.before_cached_read().await?;
        let lookup = self.cache.token(token_hash);
        if let Lookup::Hit(found) = lookup {
            return Ok(Some(found));
        }
        let found = self.read_token(token_hash).await?;
        if let (Lookup::Miss(generation), Some((token, grant))) = (lookup, &found) {
            self.cache.keep_token(generation, token, grant);
        }
        Ok(found)
    }

    async fn delete_token(&self, token_hash: &str) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(Sql::new("DELETE FROM oidc_tokens WHERE token_hash = $1").bind(token_hash))
            .await?;
        write.commit().await
    }

    async fn revoke_grant(&self, id: uuid::Uuid) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(Sql::new("DELETE FROM oidc_grants WHERE id = $1").bind(id))
            .await?;
        write.commit().await
    }

    async fn consent(&self, app: AppId, user: UserId) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = self
            .fetch_optional(
                Sql::new("SELECT scope FROM oidc_consents WHERE app_id = $1 AND user_id = $2")
                    .bind(app.0)
                    .bind(user),
            )
            .await?;
        Ok(row.map(|(scope,)| scope))
    }

    async fn put_consent(
        &self,
        app: AppId,
        user: UserId,
        scope: &str,
        now: Millis,
    ) -> StoreResult<()> {
        self.execute(
            Sql::new(
                "INSERT INTO oidc_consents (app_id, user_id, scope, granted_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (app_id, user_id) \
                 DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
            )
            .bind(app.0)
            .bind(user)
            .bind(scope)
            .bind(now),
        )
        .await
        .map(drop)
    }
}
