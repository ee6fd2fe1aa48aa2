//! Projects, memberships, and deleting a user with their work.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    resources::{Project, ProjectId, ProjectKind, ProjectRole, personal_project_name},
    store::{ProjectStore, StoreError, StoreResult},
};

use crate::{
    SqlStore,
    rows::{self, UserRow},
    sql::Sql,
    write::AuthWrite,
};

/// A row of `projects`.
#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    kind: String,
    personal_owner_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ProjectRow> for Project {
    type Error = StoreError;

    fn try_from(row: ProjectRow) -> StoreResult<Self> {
        Ok(Project {
            id: ProjectId(rows::uuid(&row.id, "project")?),
            name: row.name,
            kind: ProjectKind::parse(&row.kind).ok_or_else(|| {
                StoreError::Backend(format!("stored project kind {:?} is unknown", row.kind))
            })?,
            personal_owner: row
                .personal_owner_id
                .as_deref()
                .map(rows::user_id)
                .transpose()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A project and someone's role in it (`p.*` and `m.role`).
#[derive(sqlx::FromRow)]
struct ProjectRoleRow {
    #[sqlx(flatten)]
    project: ProjectRow,
    role: String,
}

/// A member and their role (`u.*` and `m.role AS member_role`).
#[derive(sqlx::FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    user: UserRow,
    member_role: String,
}

fn role(text: &str) -> StoreResult<ProjectRole> {
    ProjectRole::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("stored project role {text:?} is unknown")))
}

fn projects(found: Vec<ProjectRow>) -> StoreResult<Vec<Project>> {
    found.into_iter().map(Project::try_from).collect()
}

/// Makes `user`'s personal project and their `project:personalOwner`
/// membership, inside the caller's transaction: the one that inserts the
/// user's row, so that no user is ever without one. A no-op for a user who
/// has one (the owner column is unique), so that instances filling in
/// projects for an existing database at once do not clash.
pub(crate) async fn add_personal_project(
    write: &mut AuthWrite,
    user: UserId,
    name: &str,
    now: Millis,
) -> StoreResult<()> {
    write
        .execute(
            Sql::new(
                "INSERT INTO projects (id, name, kind, personal_owner_id, created_at, updated_at) \
                 VALUES ($1, $2, 'personal', $3, $4, $4) ON CONFLICT DO NOTHING",
            )
            .bind(ProjectId::new().0)
            .bind(name)
            .bind(user)
            .bind(now),
        )
        .await?;
    // The project found by its owner, whichever insert made it.
    write
        .execute(
            Sql::new(
                "INSERT INTO project_members (project_id, user_id, role) \
                 SELECT id, personal_owner_id, 'project:personalOwner' FROM projects \
                 WHERE personal_owner_id = $1 ON CONFLICT DO NOTHING",
            )
            .bind(user),
        )
        .await?;
    Ok(())
}

/// Gives `user`'s personal project the name `name`, inside the caller's
/// transaction: the one that changes the names or email it is made of.
pub(crate) async fn rename_personal_project(
    write: &mut AuthWrite,
    user: UserId,
    name: &str,
    now: Millis,
) -> StoreResult<()> {
    write
        .execute(
            Sql::new(
                "UPDATE projects SET name = $1, updated_at = $2 \
                 WHERE personal_owner_id = $3 AND name <> $1",
            )
            .bind(name)
            .bind(now)
            .bind(user),
        )
        .await
        .map(drop)
}

/// A user and their personal project's name, if they have one: what the
/// fill at start-up compares.
#[derive(sqlx::FromRow)]
struct NamingRow {
    id: String,
    first_name: String,
    last_name: String,
    email: Option<String>,
    created_at: i64,
    updated_at: i64,
    project_name: Option<String>,
    project_updated_at: Option<i64>,
}

impl SqlStore {
    /// Gives every user without a personal project one, and every personal
    /// project n8n's name for it: for databases from before personal
    /// projects were made with their users (they were made when first
    /// needed, named after the email). Run at start, like
    /// `fill_email_skeletons`, because project ids are UUID v7 made in Rust;
    /// a no-op once done. It keeps no clock: a new project dates from its
    /// user's creation, a renamed one from the user's last change (which
    /// is what made the old name stale).
    pub(crate) async fn fill_personal_projects(&self) -> StoreResult<()> {
        let found: Vec<NamingRow> = self
            .fetch_all(Sql::new(
                "SELECT u.id, u.first_name, u.last_name, u.email, u.created_at, u.updated_at, \
                 p.name AS project_name, p.updated_at AS project_updated_at \
                 FROM users u LEFT JOIN projects p ON p.personal_owner_id = u.id",
            ))
            .await?;
        let due: Vec<(NamingRow, String)> = found
            .into_iter()
            .map(|row| {
                let name =
                    personal_project_name(&row.first_name, &row.last_name, row.email.as_deref());
                (row, name)
            })
            .filter(|(row, name)| row.project_name.as_ref() != Some(name))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let mut write = self.auth_write().await?;
        for (row, name) in &due {
            let user = rows::user_id(&row.id)?;
            match row.project_updated_at {
                None => add_personal_project(&mut write, user, name, row.created_at).await?,
                Some(at) => {
                    rename_personal_project(&mut write, user, name, at.max(row.updated_at)).await?;
                }
            }
        }
        write.commit().await
    }
}

#[async_trait]
impl ProjectStore for SqlStore {
    async fn personal_project(&self, user: UserId) -> StoreResult<Option<Project>> {
        let row: Option<ProjectRow> = self
            .fetch_optional(
                Sql::new("SELECT * FROM projects WHERE personal_owner_id = $1").bind(user),
            )
            .await?;
        row.map(Project::try_from).transpose()
    }

    async fn project(&self, id: ProjectId) -> StoreResult<Option<Project>> {
        let row: Option<ProjectRow> = self
            .fetch_optional(Sql::new("SELECT * FROM projects WHERE id = $1").bind(id.0))
            .await?;
        row.map(Project::try_from).transpose()
    }

    async fn projects_of(&self, user: UserId) -> StoreResult<Vec<(Project, ProjectRole)>> {
        let found: Vec<ProjectRoleRow> = self
            .fetch_all(
                Sql::new(
                    "SELECT p.*, m.role FROM projects p \
                     JOIN project_members m ON m.project_id = p.id \
                     WHERE m.user_id = $1 ORDER BY p.kind, p.name",
                )
                .bind(user),
            )
            .await?;
        found
            .into_iter()
            .map(|row| Ok((Project::try_from(row.project)?, role(&row.role)?)))
            .collect()
    }

    async fn all_projects(&self) -> StoreResult<Vec<Project>> {
        let found = self
            .fetch_all(Sql::new("SELECT * FROM projects ORDER BY kind DESC, name"))
            .await?;
        projects(found)
    }

    async fn team_projects(&self) -> StoreResult<Vec<Project>> {
        let found = self
            .fetch_all(Sql::new(
                "SELECT * FROM projects WHERE personal_owner_id IS NULL ORDER BY name, id",
            ))
            .await?;
        projects(found)
    }

    async fn projects_with_work(&self) -> StoreResult<Vec<Project>> {
        let found = self
            .fetch_all(Sql::new(
                "SELECT * FROM projects WHERE id IN \
                 (SELECT project_id FROM workflows UNION SELECT project_id FROM credentials)",
            ))
            .await?;
        projects(found)
    }

    async fn count_work(&self, project: ProjectId) -> StoreResult<(i64, i64)> {
        let counts: Option<(i64, i64)> = self
            .fetch_optional(
                Sql::new(
                    "SELECT (SELECT COUNT(*) FROM workflows WHERE project_id = $1), \
                            (SELECT COUNT(*) FROM credentials WHERE project_id = $1)",
                )
                .bind(project.0),
            )
            .await?;
        Ok(counts.unwrap_or_default())
    }

    async fn insert_project(&self, project: &Project, admin: UserId) -> StoreResult<()> {
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO projects (id, name, kind, personal_owner_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, NULL, $4, $5)",
                )
                .bind(project.id.0)
                .bind(&project.name)
                .bind(project.kind.as_str())
                .bind(project.created_at)
                .bind(project.updated_at),
            )
            .await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO project_members (project_id, user_id, role) \
                     VALUES ($1, $2, 'project:admin')",
                )
                .bind(project.id.0)
                .bind(admin),
            )
            .await?;
        write.commit().await
    }

    async fn rename_project(&self, id: ProjectId, name: &str, now: Millis) -> StoreResult<bool> {
        // Project names are people's groups at apps' doors (forward auth).
        let mut write = self.auth_write().await?;
        let renamed = write
            .execute(
                Sql::new(
                    "UPDATE projects SET name = $1, updated_at = $2 WHERE id = $3 AND kind = 'team'",
                )
                .bind(name)
                .bind(now)
                .bind(id.0),
            )
            .await?;
        write.commit().await?;
        Ok(renamed > 0)
    }

    async fn delete_project(&self, id: ProjectId) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        for sql in [
            "DELETE FROM workflows WHERE project_id = $1",
            "DELETE FROM credentials WHERE project_id = $1",
        ] {
            write.execute(Sql::new(sql).bind(id.0)).await?;
        }
        let deleted = write
            .execute(Sql::new("DELETE FROM projects WHERE id = $1 AND kind = 'team'").bind(id.0))
            .await?;
        if deleted == 0 {
            return Ok(false);
        }
        // Its members lose the apps they had through it.
        crate::apps::revoke_lapsed(&mut write).await?;
        write.commit().await?;
        Ok(true)
    }

    async fn membership(
        &self,
        project: ProjectId,
        user: UserId,
    ) -> StoreResult<Option<ProjectRole>> {
        let found: Option<(String,)> = self
            .fetch_optional(
                Sql::new("SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2")
                    .bind(project.0)
                    .bind(user),
            )
            .await?;
        found.map(|(text,)| role(&text)).transpose()
    }

    async fn members(&self, project: ProjectId) -> StoreResult<Vec<(User, ProjectRole)>> {
        let found: Vec<MemberRow> = self
            .fetch_all(
                Sql::new(
                    "SELECT u.*, m.role AS member_role FROM project_members m \
                     JOIN users u ON u.id = m.user_id WHERE m.project_id = $1 ORDER BY u.email",
                )
                .bind(project.0),
            )
            .await?;
        found
            .into_iter()
            .map(|row| Ok((User::try_from(row.user)?, role(&row.member_role)?)))
            .collect()
    }

    async fn set_member(
        &self,
        project: ProjectId,
        user: UserId,
        role: ProjectRole,
    ) -> StoreResult<()> {
        // A new member may get another role in an app: their grants that
        // no longer fit go in the same transaction.
        let mut write = self.auth_write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(project.0)
                .bind(user)
                .bind(role.as_str()),
            )
            .await?;
        crate::apps::revoke_lapsed_of_user(&mut write, user).await?;
        write.commit().await
    }

    async fn remove_member(&self, project: ProjectId, user: UserId) -> StoreResult<bool> {
        // Access to apps through this project ends with the membership.
        let mut write = self.auth_write().await?;
        let removed = write
            .execute(
                Sql::new("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
                    .bind(project.0)
                    .bind(user),
            )
            .await?;
        crate::apps::revoke_lapsed_of_user(&mut write, user).await?;
        write.commit().await?;
        Ok(removed > 0)
    }

    async fn delete_user(&self, id: UserId, transfer_to: Option<ProjectId>) -> StoreResult<bool> {
        let mut write = self.auth_write().await?;
        let moves = match transfer_to {
            Some(target) => [
                "UPDATE workflows SET project_id = $2 WHERE project_id IN \
                 (SELECT id FROM projects WHERE personal_owner_id = $1)",
                "UPDATE credentials SET project_id = $2 WHERE project_id IN \
                 (SELECT id FROM projects WHERE personal_owner_id = $1)",
            ]
            .map(|sql| Sql::new(sql).bind(id).bind(target.0)),
            None => [
                "DELETE FROM workflows WHERE project_id IN \
                 (SELECT id FROM projects WHERE personal_owner_id = $1)",
                "DELETE FROM credentials WHERE project_id IN \
                 (SELECT id FROM projects WHERE personal_owner_id = $1)",
            ]
            .map(|sql| Sql::new(sql).bind(id)),
        };
        for sql in moves {
            // A target that vanished meanwhile breaks the foreign key here,
            // and the whole transaction rolls back.
            write.execute(sql).await?;
        }
        // Sessions, memberships, invitations, reset links, API keys and the
        // personal project go with the user (ON DELETE CASCADE).
        let deleted = write
            .execute(
                Sql::new("DELETE FROM users WHERE id = $1 AND role <> 'global:owner'").bind(id),
            )
            .await?;
        if deleted == 0 {
            return Ok(false);
        }
        write.commit().await?;
        Ok(true)
    }
}
