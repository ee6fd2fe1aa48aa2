//! Workflows: listed, read, created, edited and deleted by those with access
//! to their project.

use crate::{
    Error, Result,
    model::Origin,
    resources::{Project, ProjectId, Tag, TagId, Workflow, WorkflowId, resource_name},
};

use super::{Access, denied};
use crate::service::{Usher, auth::Actor};

/// A workflow with its project and what the asking user may do with it.
#[derive(Clone, Debug)]
pub struct WorkflowView {
    pub workflow: Workflow,
    pub project: Project,
    pub access: Access,
}

/// Changes to a workflow; None leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct WorkflowChange {
    pub name: Option<String>,
    pub definition: Option<serde_json::Value>,
    pub active: Option<bool>,
    pub tag_ids: Option<Vec<TagId>>,
}

impl Usher {
    pub async fn workflows(&self, actor: &Actor) -> Result<Vec<WorkflowView>> {
        let projects = self.projects_in_view(actor).await?;
        let mut views = Vec::new();
        for workflow in self.store.workflows(Self::visible(actor)).await? {
            let Some((project, access)) = projects.get(&workflow.project_id).cloned() else {
                continue;
            };
            views.push(WorkflowView {
                workflow,
                project,
                access,
            });
        }
        Ok(views)
    }

    pub async fn workflow(&self, actor: &Actor, id: WorkflowId) -> Result<WorkflowView> {
        let workflow = self
            .store
            .workflow(id)
            .await?
            .ok_or_else(|| Error::not_found("There is no such workflow."))?;
        let (project, access) = self
            .project_with_access(actor, workflow.project_id, Access::Read)
            .await
            .map_err(|e| match e {
                Error::Forbidden(_) => Error::forbidden("You do not have access to this workflow."),
                other => other,
            })?;
        Ok(WorkflowView {
            workflow,
            project,
            access,
        })
    }

    async fn tags_by_id(&self, ids: &[TagId]) -> Result<Vec<Tag>> {
        let all = self.store.tags().await?;
        ids.iter()
            .map(|id| {
                all.iter()
                    .find(|t| t.id == *id)
                    .cloned()
                    .ok_or_else(|| Error::invalid("One of the tags does not exist."))
            })
            .collect()
    }

    pub async fn create_workflow(
        &self,
        actor: &Actor,
        name: &str,
        project: Option<ProjectId>,
        change: WorkflowChange,
        origin: &Origin,
    ) -> Result<WorkflowView> {
        let name = resource_name("name", "workflow", name)?;
        let project = self.target_project(actor, project).await?;
        let now = self.now();
        let workflow = Workflow {
            id: WorkflowId::new(),
            project_id: project.id,
            name,
            definition: definition_text(change.definition)?,
            active: change.active.unwrap_or(false),
            tags: self.tags_by_id(&change.tag_ids.unwrap_or_default()).await?,
            created_by: Some(actor.user.id),
            created_at: now,
            updated_at: now,
        };
        // Named before the insert, so a failed lookup cannot follow a made one.
        let place = self.audit_project_label(&project).await?;
        self.store.insert_workflow(&workflow).await?;
        self.audit(
            Some(&actor.user),
            "workflow.created",
            None,
            format!("{} in {place}", workflow.name),
            origin,
        )
        .await;
        let access = self.access(&actor.user, &project).await?;
        Ok(WorkflowView {
            workflow,
            project,
            access,
        })
    }

    pub async fn update_workflow(
        &self,
        actor: &Actor,
        id: WorkflowId,
        change: WorkflowChange,
        origin: &Origin,
    ) -> Result<WorkflowView> {
        let mut view = self.workflow(actor, id).await?;
        if view.access < Access::Write {
            return Err(denied(Access::Write, "workflow"));
        }
        let workflow = &mut view.workflow;
        let mut changed = Vec::new();
        if let Some(name) = change.name {
            let name = resource_name("name", "workflow", &name)?;
            if name != workflow.name {
                changed.push(format!("renamed from '{}'", workflow.name));
                workflow.name = name;
            }
        }
        if let Some(definition) = change.definition {
            let definition = definition_text(Some(definition))?;
            if definition != workflow.definition {
                changed.push("definition changed".to_owned());
                workflow.definition = definition;
            }
        }
        if let Some(active) = change.active
            && active != workflow.active
        {
            changed.push(if active { "activated" } else { "deactivated" }.to_owned());
            workflow.active = active;
        }
        if let Some(ids) = change.tag_ids {
            let tags = self.tags_by_id(&ids).await?;
            let ids = |tags: &[crate::resources::Tag]| {
                tags.iter()
                    .map(|t| t.id)
                    .collect::<std::collections::HashSet<_>>()
            };
            if ids(&tags) != ids(&workflow.tags) {
                changed.push("tags changed".to_owned());
                workflow.tags = tags;
            }
        }
        workflow.updated_at = self.now();
        if !self.store.update_workflow(workflow).await? {
            return Err(Error::not_found("There is no such workflow."));
        }
        self.audit_edit(
            actor,
            "workflow.updated",
            &view.workflow.name,
            &changed,
            origin,
        )
        .await;
        Ok(view)
    }

    pub async fn delete_workflow(
        &self,
        actor: &Actor,
        id: WorkflowId,
        origin: &Origin,
    ) -> Result<()> {
        let view = self.workflow(actor, id).await?;
        if view.access < Access::Write {
            return Err(denied(Access::Write, "workflow"));
        }
        self.store.delete_workflow(view.workflow.id).await?;
        self.audit(
            Some(&actor.user),
            "workflow.deleted",
            None,
            view.workflow.name,
            origin,
        )
        .await;
        Ok(())
    }
}

/// A workflow definition: a JSON object, `{}` when none is given.
fn definition_text(definition: Option<serde_json::Value>) -> Result<String> {
    match definition {
        None => Ok("{\"nodes\":[],\"connections\":{}}".into()),
        Some(value @ serde_json::Value::Object(_)) => Ok(value.to_string()),
        Some(_) => Err(Error::field(
            "definition",
            "A workflow definition is a JSON object (nodes and connections).",
        )),
    }
}
