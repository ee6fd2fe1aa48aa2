//! Projects, memberships, and deleting a user with their work.

use async_trait::async_trait;
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    resources::{Project, ProjectId, ProjectKind, ProjectRole},
    store::{ProjectStore, StoreError, StoreResult},
};

use crate::{
    SqlStore,
    rows::{self, UserRow},
    sql::Sql,
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

#[async_trait]
impl ProjectStore for SqlStore {
    async fn personal_project(&self, user: &User, now: Millis) -> StoreResult<Project> {
        let id = ProjectId::new();
        let name = user
            .email
            .as_ref()
            .map_or_else(|| "Owner".to_owned(), |e| e.to_string());
        let mut write = self.write().await?;
        // Made once: the unique owner column turns a second insert into a no-op.
        write
            .execute(
                Sql::new(
                    "INSERT INTO projects (id, name, kind, personal_owner_id, created_at, updated_at) \
                     VALUES ($1, $2, 'personal', $3, $4, $4) ON CONFLICT DO NOTHING",
                )
                .bind(id.0)
                .bind(name)
                .bind(user.id)
                .bind(now),
            )
            .await?;
        let row: Option<ProjectRow> = write
            .fetch_optional(
                Sql::new("SELECT * FROM projects WHERE personal_owner_id = $1").bind(user.id),
            )
            .await?;
        let found = row
            .map(Project::try_from)
            .transpose()?
            .ok_or_else(|| StoreError::Backend("the personal project was not made".into()))?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO project_members (project_id, user_id, role) \
                     VALUES ($1, $2, 'project:personalOwner') ON CONFLICT DO NOTHING",
                )
                .bind(found.id.0)
                .bind(user.id),
            )
            .await?;
        write.commit().await?;
        Ok(found)
    }

    async fn users_without_personal_project(&self) -> StoreResult<Vec<User>> {
        let found = self
            .fetch_all(Sql::new(
                "SELECT * FROM users WHERE email IS NOT NULL AND password_hash IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.personal_owner_id = users.id)",
            ))
            .await?;
        rows::users(found)
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

    async fn insert_project(&self, project: &Project, admin: UserId) -> StoreResult<()> {
        let mut write = self.write().await?;
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
        let renamed = self
            .execute(
                Sql::new(
                    "UPDATE projects SET name = $1, updated_at = $2 WHERE id = $3 AND kind = 'team'",
                )
                .bind(name)
                .bind(now)
                .bind(id.0),
            )
            .await?;
        Ok(renamed > 0)
    }

    async fn delete_project(&self, id: ProjectId) -> StoreResult<bool> {
        let mut write = self.write().await?;
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
        self.execute(
            Sql::new(
                "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) \
                 ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(project.0)
            .bind(user)
            .bind(role.as_str()),
        )
        .await
        .map(drop)
    }

    async fn remove_member(&self, project: ProjectId, user: UserId) -> StoreResult<bool> {
        let removed = self
            .execute(
                Sql::new("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
                    .bind(project.0)
                    .bind(user),
            )
            .await?;
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
