//! Projects, memberships, and deleting a user with their work.

use async_trait::async_trait;
use sqlx::{Row as _, any::AnyRow};
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    resources::{Project, ProjectId, ProjectKind, ProjectRole},
    store::{ProjectStore, StoreError, StoreResult},
};

use crate::{SqlStore, db_error, rows, rows::user_columns};

pub(crate) fn project_id(text: &str) -> StoreResult<ProjectId> {
    uuid::Uuid::parse_str(text)
        .map(ProjectId)
        .map_err(|_| StoreError::Backend(format!("stored project id {text:?} is not a UUID")))
}

fn project(row: &AnyRow) -> StoreResult<Project> {
    let id: String = row.try_get("id").map_err(db_error)?;
    let kind: String = row.try_get("kind").map_err(db_error)?;
    let owner: Option<String> = row.try_get("personal_owner_id").map_err(db_error)?;
    Ok(Project {
        id: project_id(&id)?,
        name: row.try_get("name").map_err(db_error)?,
        kind: ProjectKind::parse(&kind).ok_or_else(|| {
            StoreError::Backend(format!("stored project kind {kind:?} is unknown"))
        })?,
        personal_owner: owner.as_deref().map(rows::user_id).transpose()?,
        created_at: row.try_get("created_at").map_err(db_error)?,
        updated_at: row.try_get("updated_at").map_err(db_error)?,
    })
}

fn role(text: &str) -> StoreResult<ProjectRole> {
    ProjectRole::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("stored project role {text:?} is unknown")))
}

#[async_trait]
impl ProjectStore for SqlStore {
    async fn personal_project(&self, user: &User, now: Millis) -> StoreResult<Project> {
        let id = ProjectId::new();
        let name = user
            .email
            .as_ref()
            .map_or_else(|| "Owner".to_owned(), |e| e.to_string());
        let mut tx = self.begin_write().await?;
        // Made once: the unique owner column turns a second insert into a no-op.
        sqlx::query(
            "INSERT INTO projects (id, name, kind, personal_owner_id, created_at, updated_at) \
             VALUES ($1, $2, 'personal', $3, $4, $4) ON CONFLICT DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&name)
        .bind(user.id.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let row = sqlx::query(
            "SELECT id, name, kind, personal_owner_id, created_at, updated_at FROM projects \
             WHERE personal_owner_id = $1",
        )
        .bind(user.id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let found = project(&row)?;
        sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, 'project:personalOwner') \
             ON CONFLICT DO NOTHING",
        )
        .bind(found.id.to_string())
        .bind(user.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(found)
    }

    async fn users_without_personal_project(&self) -> StoreResult<Vec<User>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email IS NOT NULL AND password_hash IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.personal_owner_id = users.id)"
        );
        let found = sqlx::query(SQL)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        found.iter().map(rows::user).collect()
    }

    async fn project(&self, id: ProjectId) -> StoreResult<Option<Project>> {
        let row = sqlx::query("SELECT id, name, kind, personal_owner_id, created_at, updated_at FROM projects WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(project).transpose()
    }

    async fn projects_of(&self, user: UserId) -> StoreResult<Vec<(Project, ProjectRole)>> {
        let found = sqlx::query(
            "SELECT p.id, p.name, p.kind, p.personal_owner_id, p.created_at, p.updated_at, m.role \
             FROM projects p JOIN project_members m ON m.project_id = p.id \
             WHERE m.user_id = $1 ORDER BY p.kind, p.name",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        found
            .iter()
            .map(|row| {
                let text: String = row.try_get("role").map_err(db_error)?;
                Ok((project(row)?, role(&text)?))
            })
            .collect()
    }

    async fn all_projects(&self) -> StoreResult<Vec<Project>> {
        let found = sqlx::query(
            "SELECT id, name, kind, personal_owner_id, created_at, updated_at FROM projects ORDER BY kind DESC, name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        found.iter().map(project).collect()
    }

    async fn insert_project(&self, project: &Project, admin: UserId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO projects (id, name, kind, personal_owner_id, created_at, updated_at) \
             VALUES ($1, $2, $3, NULL, $4, $5)",
        )
        .bind(project.id.to_string())
        .bind(&project.name)
        .bind(project.kind.as_str())
        .bind(project.created_at)
        .bind(project.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, 'project:admin')")
            .bind(project.id.to_string())
            .bind(admin.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn rename_project(&self, id: ProjectId, name: &str, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE projects SET name = $1, updated_at = $2 WHERE id = $3 AND kind = 'team'",
        )
        .bind(name)
        .bind(now)
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_project(&self, id: ProjectId) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM workflows WHERE project_id = $1",
            "DELETE FROM credentials WHERE project_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        let done = sqlx::query("DELETE FROM projects WHERE id = $1 AND kind = 'team'")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn membership(
        &self,
        project: ProjectId,
        user: UserId,
    ) -> StoreResult<Option<ProjectRole>> {
        let found: Option<(String,)> = sqlx::query_as(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project.to_string())
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        found.map(|(text,)| role(&text)).transpose()
    }

    async fn members(&self, project: ProjectId) -> StoreResult<Vec<(User, ProjectRole)>> {
        let found = sqlx::query(
            "SELECT m.role AS m_role, u.* FROM project_members m JOIN users u ON u.id = m.user_id \
             WHERE m.project_id = $1 ORDER BY u.email",
        )
        .bind(project.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        found
            .iter()
            .map(|row| {
                let text: String = row.try_get("m_role").map_err(db_error)?;
                Ok((rows::user(row)?, role(&text)?))
            })
            .collect()
    }

    async fn set_member(
        &self,
        project: ProjectId,
        user: UserId,
        role: ProjectRole,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(project.to_string())
        .bind(user.to_string())
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn remove_member(&self, project: ProjectId, user: UserId) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
                .bind(project.to_string())
                .bind(user.to_string())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user(&self, id: UserId, transfer_to: Option<ProjectId>) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let user = id.to_string();
        let statements: [&str; 2] = match transfer_to {
            Some(_) => [
                "UPDATE workflows SET project_id = $2 WHERE project_id IN (SELECT id FROM projects WHERE personal_owner_id = $1)",
                "UPDATE credentials SET project_id = $2 WHERE project_id IN (SELECT id FROM projects WHERE personal_owner_id = $1)",
            ],
            None => [
                "DELETE FROM workflows WHERE project_id IN (SELECT id FROM projects WHERE personal_owner_id = $1)",
                "DELETE FROM credentials WHERE project_id IN (SELECT id FROM projects WHERE personal_owner_id = $1)",
            ],
        };
        for sql in statements {
            let mut query = sqlx::query(sql).bind(&user);
            if let Some(target) = transfer_to {
                query = query.bind(target.to_string());
            }
            // A target that vanished meanwhile breaks the foreign key here,
            // and the whole transaction rolls back.
            query.execute(&mut *tx).await.map_err(db_error)?;
        }
        // Sessions, memberships, invitations, reset links and the personal
        // project go with the user (ON DELETE CASCADE).
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1 AND role <> 'global:owner'")
            .bind(&user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await.map_err(db_error)?;
        self.auth_changed().await;
        Ok(true)
    }
}
