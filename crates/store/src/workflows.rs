//! Workflows, credentials and tags.

use std::collections::HashMap;

use async_trait::async_trait;
use usher_domain::{
    model::UserId,
    resources::{Credential, CredentialId, ProjectId, Tag, TagId, Workflow, WorkflowId},
    store::{StoreError, StoreResult, Visible, WorkflowStore},
};

use crate::{SqlStore, rows, sql::Sql, write::Write};

/// A row of `workflows`.
#[derive(sqlx::FromRow)]
struct WorkflowRow {
    id: String,
    project_id: String,
    name: String,
    definition: String,
    /// BIGINT 0/1.
    active: i64,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<WorkflowRow> for Workflow {
    type Error = StoreError;

    fn try_from(row: WorkflowRow) -> StoreResult<Self> {
        Ok(Workflow {
            id: WorkflowId(rows::uuid(&row.id, "workflow")?),
            project_id: ProjectId(rows::uuid(&row.project_id, "project")?),
            name: row.name,
            definition: row.definition,
            active: row.active != 0,
            tags: Vec::new(),
            created_by: row.created_by.as_deref().map(rows::user_id).transpose()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A row of `credentials`.
#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: String,
    project_id: String,
    name: String,
    kind: String,
    /// Sealed with the instance key.
    data: String,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<CredentialRow> for Credential {
    type Error = StoreError;

    fn try_from(row: CredentialRow) -> StoreResult<Self> {
        Ok(Credential {
            id: CredentialId(rows::uuid(&row.id, "credential")?),
            project_id: ProjectId(rows::uuid(&row.project_id, "project")?),
            name: row.name,
            kind: row.kind,
            sealed_data: row.data,
            created_by: row.created_by.as_deref().map(rows::user_id).transpose()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A row of `tags`.
#[derive(sqlx::FromRow)]
struct TagRow {
    id: String,
    name: String,
    created_at: i64,
}

impl TryFrom<TagRow> for Tag {
    type Error = StoreError;

    fn try_from(row: TagRow) -> StoreResult<Self> {
        Ok(Tag {
            id: TagId(rows::uuid(&row.id, "tag")?),
            name: row.name,
            created_at: row.created_at,
        })
    }
}

/// A tag and a workflow that has it.
#[derive(sqlx::FromRow)]
struct WorkflowTagRow {
    workflow_id: String,
    #[sqlx(flatten)]
    tag: TagRow,
}

fn credentials(found: Vec<CredentialRow>) -> StoreResult<Vec<Credential>> {
    found.into_iter().map(Credential::try_from).collect()
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
        let sql = match of {
            TagsOf::All => Sql::new(
                "SELECT wt.workflow_id, t.* FROM workflow_tags wt JOIN tags t ON t.id = wt.tag_id \
                 ORDER BY t.name",
            ),
            TagsOf::MemberOf(user) => Sql::new(
                "SELECT wt.workflow_id, t.* FROM workflow_tags wt JOIN tags t ON t.id = wt.tag_id \
                 JOIN workflows w ON w.id = wt.workflow_id \
                 JOIN project_members m ON m.project_id = w.project_id \
                 WHERE m.user_id = $1 ORDER BY t.name",
            )
            .bind(user),
            TagsOf::One(id) => Sql::new(
                "SELECT wt.workflow_id, t.* FROM workflow_tags wt JOIN tags t ON t.id = wt.tag_id \
                 WHERE wt.workflow_id = $1 ORDER BY t.name",
            )
            .bind(id.0),
        };
        let found: Vec<WorkflowTagRow> = self.fetch_all(sql).await?;
        let index: HashMap<String, usize> = workflows
            .iter()
            .enumerate()
            .map(|(at, w)| (w.id.to_string(), at))
            .collect();
        for row in found {
            if let Some(&at) = index.get(&row.workflow_id) {
                workflows[at].tags.push(Tag::try_from(row.tag)?);
            }
        }
        Ok(workflows)
    }
}

/// Replaces a workflow's tags, inside the caller's transaction.
async fn write_tags(write: &mut Write, workflow: &Workflow) -> StoreResult<()> {
    write
        .execute(Sql::new("DELETE FROM workflow_tags WHERE workflow_id = $1").bind(workflow.id.0))
        .await?;
    for tag in &workflow.tags {
        write
            .execute(
                Sql::new("INSERT INTO workflow_tags (workflow_id, tag_id) VALUES ($1, $2)")
                    .bind(workflow.id.0)
                    .bind(tag.id.0),
            )
            .await?;
    }
    Ok(())
}

#[async_trait]
impl WorkflowStore for SqlStore {
    async fn workflows(&self, visible: Visible) -> StoreResult<Vec<Workflow>> {
        let (sql, of) = match visible {
            Visible::All => (
                Sql::new("SELECT * FROM workflows ORDER BY name, id"),
                TagsOf::All,
            ),
            Visible::MemberOf(user) => (
                Sql::new(
                    "SELECT w.* FROM workflows w \
                     JOIN project_members m ON m.project_id = w.project_id \
                     WHERE m.user_id = $1 ORDER BY w.name, w.id",
                )
                .bind(user),
                TagsOf::MemberOf(user),
            ),
        };
        let found: Vec<WorkflowRow> = self.fetch_all(sql).await?;
        let workflows = found
            .into_iter()
            .map(Workflow::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        self.with_tags(workflows, of).await
    }

    async fn workflow(&self, id: WorkflowId) -> StoreResult<Option<Workflow>> {
        let row: Option<WorkflowRow> = self
            .fetch_optional(Sql::new("SELECT * FROM workflows WHERE id = $1").bind(id.0))
            .await?;
        let Some(found) = row.map(Workflow::try_from).transpose()? else {
            return Ok(None);
        };
        Ok(self.with_tags(vec![found], TagsOf::One(id)).await?.pop())
    }

    async fn insert_workflow(&self, workflow: &Workflow) -> StoreResult<()> {
        let mut write = self.write().await?;
        write
            .execute(
                Sql::new(
                    "INSERT INTO workflows \
                     (id, project_id, name, definition, active, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(workflow.id.0)
                .bind(workflow.project_id.0)
                .bind(&workflow.name)
                .bind(&workflow.definition)
                .bind(workflow.active)
                .bind(workflow.created_by)
                .bind(workflow.created_at)
                .bind(workflow.updated_at),
            )
            .await?;
        write_tags(&mut write, workflow).await?;
        write.commit().await
    }

    async fn update_workflow(&self, workflow: &Workflow) -> StoreResult<bool> {
        let mut write = self.write().await?;
        let updated = write
            .execute(
                Sql::new(
                    "UPDATE workflows SET name = $1, definition = $2, active = $3, updated_at = $4 \
                     WHERE id = $5",
                )
                .bind(&workflow.name)
                .bind(&workflow.definition)
                .bind(workflow.active)
                .bind(workflow.updated_at)
                .bind(workflow.id.0),
            )
            .await?;
        if updated == 0 {
            return Ok(false);
        }
        write_tags(&mut write, workflow).await?;
        write.commit().await?;
        Ok(true)
    }

    async fn delete_workflow(&self, id: WorkflowId) -> StoreResult<bool> {
        let deleted = self
            .execute(Sql::new("DELETE FROM workflows WHERE id = $1").bind(id.0))
            .await?;
        Ok(deleted > 0)
    }

    async fn credentials(&self, visible: Visible) -> StoreResult<Vec<Credential>> {
        let sql = match visible {
            Visible::All => Sql::new("SELECT * FROM credentials ORDER BY name, id"),
            Visible::MemberOf(user) => Sql::new(
                "SELECT c.* FROM credentials c \
                 JOIN project_members m ON m.project_id = c.project_id \
                 WHERE m.user_id = $1 ORDER BY c.name, c.id",
            )
            .bind(user),
        };
        credentials(self.fetch_all(sql).await?)
    }

    async fn credential(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        let row: Option<CredentialRow> = self
            .fetch_optional(Sql::new("SELECT * FROM credentials WHERE id = $1").bind(id.0))
            .await?;
        row.map(Credential::try_from).transpose()
    }

    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()> {
        self.execute(
            Sql::new(
                "INSERT INTO credentials \
                 (id, project_id, name, kind, data, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(credential.id.0)
            .bind(credential.project_id.0)
            .bind(&credential.name)
            .bind(&credential.kind)
            .bind(&credential.sealed_data)
            .bind(credential.created_by)
            .bind(credential.created_at)
            .bind(credential.updated_at),
        )
        .await
        .map(drop)
    }

    async fn update_credential(&self, credential: &Credential) -> StoreResult<bool> {
        let updated = self
            .execute(
                Sql::new(
                    "UPDATE credentials SET name = $1, kind = $2, data = $3, updated_at = $4 \
                     WHERE id = $5",
                )
                .bind(&credential.name)
                .bind(&credential.kind)
                .bind(&credential.sealed_data)
                .bind(credential.updated_at)
                .bind(credential.id.0),
            )
            .await?;
        Ok(updated > 0)
    }

    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool> {
        let deleted = self
            .execute(Sql::new("DELETE FROM credentials WHERE id = $1").bind(id.0))
            .await?;
        Ok(deleted > 0)
    }

    async fn tags(&self) -> StoreResult<Vec<Tag>> {
        let found: Vec<TagRow> = self
            .fetch_all(Sql::new("SELECT * FROM tags ORDER BY name_key"))
            .await?;
        found.into_iter().map(Tag::try_from).collect()
    }

    async fn insert_tag(&self, tag: &Tag) -> StoreResult<()> {
        self.execute(
            Sql::new("INSERT INTO tags (id, name, name_key, created_at) VALUES ($1, $2, $3, $4)")
                .bind(tag.id.0)
                .bind(&tag.name)
                .bind(tag.name.to_lowercase())
                .bind(tag.created_at),
        )
        .await
        .map(drop)
    }

    async fn rename_tag(&self, id: TagId, name: &str) -> StoreResult<bool> {
        let renamed = self
            .execute(
                Sql::new("UPDATE tags SET name = $1, name_key = $2 WHERE id = $3")
                    .bind(name)
                    .bind(name.to_lowercase())
                    .bind(id.0),
            )
            .await?;
        Ok(renamed > 0)
    }

    async fn delete_tag(&self, id: TagId) -> StoreResult<bool> {
        let deleted = self
            .execute(Sql::new("DELETE FROM tags WHERE id = $1").bind(id.0))
            .await?;
        Ok(deleted > 0)
    }
}
