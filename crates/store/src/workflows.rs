//! Workflows, credentials and tags.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{Row as _, any::AnyRow};
use usher_domain::{
    model::UserId,
    resources::{Credential, CredentialId, Tag, TagId, Workflow, WorkflowId},
    store::{StoreError, StoreResult, Visible, WorkflowStore},
};

use crate::{SqlStore, db_error, projects::project_id, rows};

fn uuid(text: &str, what: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(text)
        .map_err(|_| StoreError::Backend(format!("stored {what} id {text:?} is not a UUID")))
}

fn workflow(row: &AnyRow) -> StoreResult<Workflow> {
    let id: String = row.try_get("id").map_err(db_error)?;
    let project: String = row.try_get("project_id").map_err(db_error)?;
    let created_by: Option<String> = row.try_get("created_by").map_err(db_error)?;
    Ok(Workflow {
        id: WorkflowId(uuid(&id, "workflow")?),
        project_id: project_id(&project)?,
        name: row.try_get("name").map_err(db_error)?,
        definition: row.try_get("definition").map_err(db_error)?,
        active: rows::flag(row, "active")?,
        tags: Vec::new(),
        created_by: created_by.as_deref().map(rows::user_id).transpose()?,
        created_at: row.try_get("created_at").map_err(db_error)?,
        updated_at: row.try_get("updated_at").map_err(db_error)?,
    })
}

fn credential(row: &AnyRow) -> StoreResult<Credential> {
    let id: String = row.try_get("id").map_err(db_error)?;
    let project: String = row.try_get("project_id").map_err(db_error)?;
    let created_by: Option<String> = row.try_get("created_by").map_err(db_error)?;
    Ok(Credential {
        id: CredentialId(uuid(&id, "credential")?),
        project_id: project_id(&project)?,
        name: row.try_get("name").map_err(db_error)?,
        kind: row.try_get("kind").map_err(db_error)?,
        sealed_data: row.try_get("data").map_err(db_error)?,
        created_by: created_by.as_deref().map(rows::user_id).transpose()?,
        created_at: row.try_get("created_at").map_err(db_error)?,
        updated_at: row.try_get("updated_at").map_err(db_error)?,
    })
}

fn tag(row: &AnyRow) -> StoreResult<Tag> {
    let id: String = row.try_get("id").map_err(db_error)?;
    Ok(Tag {
        id: TagId(uuid(&id, "tag")?),
        name: row.try_get("name").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
    })
}

/// Whose tags to load: the same rows the workflows were selected by.
enum TagsOf {
    All,
    MemberOf(UserId),
    One(WorkflowId),
}

impl SqlStore {
    /// Fills in the tags of `workflows` with one query over the tag rows of
    /// just those workflows.
    async fn with_tags(
        &self,
        mut workflows: Vec<Workflow>,
        of: TagsOf,
    ) -> StoreResult<Vec<Workflow>> {
        if workflows.is_empty() {
            return Ok(workflows);
        }
        macro_rules! tags_where {
            ($rest:literal) => {
                concat!(
                    "SELECT wt.workflow_id, t.id, t.name, t.created_at FROM workflow_tags wt \
                     JOIN tags t ON t.id = wt.tag_id",
                    $rest
                )
            };
        }
        let found = match of {
            TagsOf::All => {
                sqlx::query(tags_where!(" ORDER BY t.name"))
                    .fetch_all(&self.pool)
                    .await
            }
            TagsOf::MemberOf(user) => {
                sqlx::query(tags_where!(
                    " JOIN workflows w ON w.id = wt.workflow_id \
                     JOIN project_members m ON m.project_id = w.project_id \
                     WHERE m.user_id = $1 ORDER BY t.name"
                ))
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await
            }
            TagsOf::One(id) => {
                sqlx::query(tags_where!(" WHERE wt.workflow_id = $1 ORDER BY t.name"))
                    .bind(id.to_string())
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(db_error)?;
        let index: HashMap<String, usize> = workflows
            .iter()
            .enumerate()
            .map(|(at, w)| (w.id.to_string(), at))
            .collect();
        for row in &found {
            let workflow_id: String = row.try_get("workflow_id").map_err(db_error)?;
            if let Some(&at) = index.get(&workflow_id) {
                workflows[at].tags.push(tag(row)?);
            }
        }
        Ok(workflows)
    }
}

async fn write_tags(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    workflow: &Workflow,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM workflow_tags WHERE workflow_id = $1")
        .bind(workflow.id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    for tag in &workflow.tags {
        sqlx::query("INSERT INTO workflow_tags (workflow_id, tag_id) VALUES ($1, $2)")
            .bind(workflow.id.to_string())
            .bind(tag.id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl WorkflowStore for SqlStore {
    async fn workflows(&self, visible: Visible) -> StoreResult<Vec<Workflow>> {
        let found = match visible {
            Visible::All => {
                sqlx::query("SELECT * FROM workflows ORDER BY name, id")
                    .fetch_all(&self.pool)
                    .await
            }
            Visible::MemberOf(user) => sqlx::query(
                "SELECT w.* FROM workflows w JOIN project_members m ON m.project_id = w.project_id \
                     WHERE m.user_id = $1 ORDER BY w.name, w.id",
            )
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await,
        }
        .map_err(db_error)?;
        let workflows = found
            .iter()
            .map(workflow)
            .collect::<StoreResult<Vec<_>>>()?;
        let of = match visible {
            Visible::All => TagsOf::All,
            Visible::MemberOf(user) => TagsOf::MemberOf(user),
        };
        self.with_tags(workflows, of).await
    }

    async fn workflow(&self, id: WorkflowId) -> StoreResult<Option<Workflow>> {
        let row = sqlx::query("SELECT * FROM workflows WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        let Some(found) = row.as_ref().map(workflow).transpose()? else {
            return Ok(None);
        };
        Ok(self.with_tags(vec![found], TagsOf::One(id)).await?.pop())
    }

    async fn insert_workflow(&self, workflow: &Workflow) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO workflows (id, project_id, name, definition, active, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(workflow.id.to_string())
        .bind(workflow.project_id.to_string())
        .bind(&workflow.name)
        .bind(&workflow.definition)
        .bind(i64::from(workflow.active))
        .bind(workflow.created_by.map(|id| id.to_string()))
        .bind(workflow.created_at)
        .bind(workflow.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        write_tags(&mut tx, workflow).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn update_workflow(&self, workflow: &Workflow) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE workflows SET name = $1, definition = $2, active = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&workflow.name)
        .bind(&workflow.definition)
        .bind(i64::from(workflow.active))
        .bind(workflow.updated_at)
        .bind(workflow.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        write_tags(&mut tx, workflow).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn delete_workflow(&self, id: WorkflowId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM workflows WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn credentials(&self, visible: Visible) -> StoreResult<Vec<Credential>> {
        let found = match visible {
            Visible::All => sqlx::query("SELECT * FROM credentials ORDER BY name, id").fetch_all(&self.pool).await,
            Visible::MemberOf(user) => {
                sqlx::query(
                    "SELECT c.* FROM credentials c JOIN project_members m ON m.project_id = c.project_id \
                     WHERE m.user_id = $1 ORDER BY c.name, c.id",
                )
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(db_error)?;
        found.iter().map(credential).collect()
    }

    async fn credential(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        let row = sqlx::query("SELECT * FROM credentials WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(credential).transpose()
    }

    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO credentials (id, project_id, name, kind, data, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(credential.id.to_string())
        .bind(credential.project_id.to_string())
        .bind(&credential.name)
        .bind(&credential.kind)
        .bind(&credential.sealed_data)
        .bind(credential.created_by.map(|id| id.to_string()))
        .bind(credential.created_at)
        .bind(credential.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn update_credential(&self, credential: &Credential) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE credentials SET name = $1, kind = $2, data = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&credential.name)
        .bind(&credential.kind)
        .bind(&credential.sealed_data)
        .bind(credential.updated_at)
        .bind(credential.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM credentials WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn tags(&self) -> StoreResult<Vec<Tag>> {
        let found = sqlx::query("SELECT id, name, created_at FROM tags ORDER BY name_key")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        found.iter().map(tag).collect()
    }

    async fn insert_tag(&self, tag: &Tag) -> StoreResult<()> {
        sqlx::query("INSERT INTO tags (id, name, name_key, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tag.id.to_string())
            .bind(&tag.name)
            .bind(tag.name.to_lowercase())
            .bind(tag.created_at)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn rename_tag(&self, id: TagId, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE tags SET name = $1, name_key = $2 WHERE id = $3")
            .bind(name)
            .bind(name.to_lowercase())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, id: TagId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tags WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }
}
