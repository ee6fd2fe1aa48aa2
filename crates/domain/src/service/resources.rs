//! Projects, workflows, credentials and tags, and who may do what with them.
//!
//! The rules, in one place:
//! - the owner and admins may do everything, in every project;
//! - in a project, its personal owner, admins and editors create, edit and
//!   delete; viewers read; others see nothing of it;
//! - a credential's secret data is readable only by those who may edit it;
//! - everyone signed in sees and creates tags; only the owner and admins
//!   rename or delete them;
//! - the owner and admins create team projects; they and the project's
//!   admins manage its members.

use crate::{
    Error, Result,
    cipher::Cipher,
    model::{Origin, User, UserId},
    resources::{
        Credential, CredentialId, Project, ProjectId, ProjectKind, ProjectRole, Tag, TagId,
        Workflow, WorkflowId, resource_name,
    },
    store::Visible,
};

use super::{Usher, auth::Actor};

/// What a user may do in one project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Write,
    /// Write, and manage the members.
    Manage,
}

/// A workflow with its project and what the asking user may do with it.
#[derive(Clone, Debug)]
pub struct WorkflowView {
    pub workflow: Workflow,
    pub project: Project,
    pub access: Access,
}

#[derive(Clone, Debug)]
pub struct CredentialView {
    pub credential: Credential,
    pub project: Project,
    pub access: Access,
    /// The decrypted data, only when asked for and allowed.
    pub data: Option<serde_json::Value>,
}

/// Changes to a workflow; None leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct WorkflowChange {
    pub name: Option<String>,
    pub definition: Option<serde_json::Value>,
    pub active: Option<bool>,
    pub tag_ids: Option<Vec<TagId>>,
}

#[derive(Clone, Debug, Default)]
pub struct CredentialChange {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub data: Option<serde_json::Value>,
}

impl Usher {
    pub(super) fn cipher(&self) -> Result<&Cipher> {
        self.cipher
            .as_ref()
            .ok_or_else(|| Error::Internal("no encryption key".into()))
    }

    /// The actor's access to `project`.
    pub async fn access(&self, user: &User, project: &Project) -> Result<Access> {
        if user.role.manages_users() {
            return Ok(Access::Manage);
        }
        Ok(match self.store.membership(project.id, user.id).await? {
            Some(ProjectRole::Admin) => Access::Manage,
            Some(ProjectRole::PersonalOwner | ProjectRole::Editor) => Access::Write,
            Some(ProjectRole::Viewer) => Access::Read,
            None => Access::None,
        })
    }

    async fn project_with_access(
        &self,
        actor: &Actor,
        id: ProjectId,
        need: Access,
    ) -> Result<(Project, Access)> {
        let project = self
            .store
            .project(id)
            .await?
            .ok_or_else(|| Error::not_found("There is no such project."))?;
        let access = self.access(&actor.user, &project).await?;
        if access < need {
            return Err(denied(need, "project"));
        }
        Ok((project, access))
    }

    /// The project a new resource goes to: the one named, or the actor's own.
    async fn target_project(&self, actor: &Actor, project: Option<ProjectId>) -> Result<Project> {
        match project {
            Some(id) => Ok(self.project_with_access(actor, id, Access::Write).await?.0),
            None => Ok(self.store.personal_project(&actor.user, self.now()).await?),
        }
    }

    fn visible(actor: &Actor) -> Visible {
        if actor.user.role.manages_users() {
            Visible::All
        } else {
            Visible::MemberOf(actor.user.id)
        }
    }

    /// Projects by id, for the views.
    async fn project_map(&self) -> Result<Vec<Project>> {
        Ok(self.store.all_projects().await?)
    }

    // ---------------------------------------------------------------- workflows

    pub async fn workflows(&self, actor: &Actor) -> Result<Vec<WorkflowView>> {
        let projects = self.project_map().await?;
        let mut views = Vec::new();
        for workflow in self.store.workflows(Self::visible(actor)).await? {
            let Some(project) = projects
                .iter()
                .find(|p| p.id == workflow.project_id)
                .cloned()
            else {
                continue;
            };
            let access = self.access(&actor.user, &project).await?;
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
        self.store.insert_workflow(&workflow).await?;
        self.audit(
            Some(&actor.user),
            "workflow.created",
            None,
            format!("{} in {}", workflow.name, project.name),
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

    /// Logs an edit as "name: what changed, …"; an edit that changed
    /// nothing logs nothing.
    async fn audit_edit(
        &self,
        actor: &Actor,
        action: &str,
        name: &str,
        changed: &[String],
        origin: &Origin,
    ) {
        if !changed.is_empty() {
            let detail = format!("{name}: {}", changed.join(", "));
            self.audit(Some(&actor.user), action, None, detail, origin)
                .await;
        }
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

    // -------------------------------------------------------------- credentials

    pub async fn credentials(&self, actor: &Actor) -> Result<Vec<CredentialView>> {
        let projects = self.project_map().await?;
        let mut views = Vec::new();
        for credential in self.store.credentials(Self::visible(actor)).await? {
            let Some(project) = projects
                .iter()
                .find(|p| p.id == credential.project_id)
                .cloned()
            else {
                continue;
            };
            let access = self.access(&actor.user, &project).await?;
            views.push(CredentialView {
                credential,
                project,
                access,
                data: None,
            });
        }
        Ok(views)
    }

    /// One credential; its data only with `with_data` and the right to edit it.
    pub async fn credential(
        &self,
        actor: &Actor,
        id: CredentialId,
        with_data: bool,
    ) -> Result<CredentialView> {
        let credential = self
            .store
            .credential(id)
            .await?
            .ok_or_else(|| Error::not_found("There is no such credential."))?;
        let (project, access) = self
            .project_with_access(actor, credential.project_id, Access::Read)
            .await
            .map_err(|e| match e {
                Error::Forbidden(_) => {
                    Error::forbidden("You do not have access to this credential.")
                }
                other => other,
            })?;
        let data = if with_data {
            if access < Access::Write {
                return Err(Error::forbidden(
                    "Only those who may edit this credential can read its data.",
                ));
            }
            let text = self.cipher()?.open(&credential.sealed_data)?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| Error::Internal(format!("credential data: {e}")))?,
            )
        } else {
            None
        };
        Ok(CredentialView {
            credential,
            project,
            access,
            data,
        })
    }

    pub async fn create_credential(
        &self,
        actor: &Actor,
        name: &str,
        kind: &str,
        project: Option<ProjectId>,
        data: serde_json::Value,
        origin: &Origin,
    ) -> Result<CredentialView> {
        let name = resource_name("name", "credential", name)?;
        let kind = resource_name("type", "credential type", kind)?;
        let project = self.target_project(actor, project).await?;
        let now = self.now();
        let credential = Credential {
            id: CredentialId::new(),
            project_id: project.id,
            name,
            kind,
            sealed_data: self.cipher()?.seal(&data_text(&data)?)?,
            created_by: Some(actor.user.id),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_credential(&credential).await?;
        self.audit(
            Some(&actor.user),
            "credential.created",
            None,
            format!("{} in {}", credential.name, project.name),
            origin,
        )
        .await;
        let access = self.access(&actor.user, &project).await?;
        Ok(CredentialView {
            credential,
            project,
            access,
            data: None,
        })
    }

    pub async fn update_credential(
        &self,
        actor: &Actor,
        id: CredentialId,
        change: CredentialChange,
        origin: &Origin,
    ) -> Result<CredentialView> {
        let mut view = self.credential(actor, id, false).await?;
        if view.access < Access::Write {
            return Err(denied(Access::Write, "credential"));
        }
        let credential = &mut view.credential;
        let mut changed = Vec::new();
        if let Some(name) = change.name {
            let name = resource_name("name", "credential", &name)?;
            if name != credential.name {
                changed.push(format!("renamed from '{}'", credential.name));
                credential.name = name;
            }
        }
        if let Some(kind) = change.kind {
            let kind = resource_name("type", "credential type", &kind)?;
            if kind != credential.kind {
                changed.push(format!("type changed from '{}'", credential.kind));
                credential.kind = kind;
            }
        }
        if let Some(data) = change.data {
            // Sealed data differs on every seal; the log says it was set,
            // never what it is.
            credential.sealed_data = self.cipher()?.seal(&data_text(&data)?)?;
            changed.push("data replaced".to_owned());
        }
        credential.updated_at = self.now();
        self.store.update_credential(credential).await?;
        self.audit_edit(
            actor,
            "credential.updated",
            &view.credential.name,
            &changed,
            origin,
        )
        .await;
        Ok(view)
    }

    pub async fn delete_credential(
        &self,
        actor: &Actor,
        id: CredentialId,
        origin: &Origin,
    ) -> Result<()> {
        let view = self.credential(actor, id, false).await?;
        if view.access < Access::Write {
            return Err(denied(Access::Write, "credential"));
        }
        self.store.delete_credential(view.credential.id).await?;
        self.audit(
            Some(&actor.user),
            "credential.deleted",
            None,
            view.credential.name,
            origin,
        )
        .await;
        Ok(())
    }

    // --------------------------------------------------------------------- tags

    pub async fn tags(&self, _actor: &Actor) -> Result<Vec<Tag>> {
        Ok(self.store.tags().await?)
    }

    /// Any signed-in user may create tags (`_actor` is the proof).
    pub async fn create_tag(&self, _actor: &Actor, name: &str) -> Result<Tag> {
        let tag = Tag {
            id: TagId::new(),
            name: tag_name(name)?,
            created_at: self.now(),
        };
        self.store
            .insert_tag(&tag)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("A tag named '{}' exists already.", tag.name))
                }
                other => other,
            })?;
        Ok(tag)
    }

    pub async fn rename_tag(&self, actor: &Actor, id: TagId, name: &str) -> Result<()> {
        require_tag_admin(actor, "rename")?;
        let name = tag_name(name)?;
        let renamed = self
            .store
            .rename_tag(id, &name)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("A tag named '{name}' exists already."))
                }
                other => other,
            })?;
        if renamed {
            Ok(())
        } else {
            Err(Error::not_found("There is no such tag."))
        }
    }

    pub async fn delete_tag(&self, actor: &Actor, id: TagId, origin: &Origin) -> Result<()> {
        require_tag_admin(actor, "delete")?;
        if !self.store.delete_tag(id).await? {
            return Err(Error::not_found("There is no such tag."));
        }
        self.audit(
            Some(&actor.user),
            "tag.deleted",
            None,
            id.to_string(),
            origin,
        )
        .await;
        Ok(())
    }

    // ----------------------------------------------------------------- projects

    /// The projects the actor may see, with their own role where they have one.
    pub async fn projects(&self, actor: &Actor) -> Result<Vec<(Project, Option<ProjectRole>)>> {
        // Make sure the actor's own project exists before listing.
        if !actor.user.is_owner_shell() {
            self.store.personal_project(&actor.user, self.now()).await?;
        }
        let mine = self.store.projects_of(actor.user.id).await?;
        if !actor.user.role.manages_users() {
            return Ok(mine.into_iter().map(|(p, r)| (p, Some(r))).collect());
        }
        let all = self.store.all_projects().await?;
        Ok(all
            .into_iter()
            .map(|p| {
                let role = mine.iter().find(|(m, _)| m.id == p.id).map(|(_, r)| *r);
                (p, role)
            })
            .collect())
    }

    pub async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
        origin: &Origin,
    ) -> Result<Project> {
        actor
            .user
            .role
            .require_user_manager()
            .map_err(|_| Error::forbidden("Only the owner and admins can create projects."))?;
        let now = self.now();
        let project = Project {
            id: ProjectId::new(),
            name: resource_name("name", "project", name)?,
            kind: ProjectKind::Team,
            personal_owner: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_project(&project, actor.user.id).await?;
        self.audit(
            Some(&actor.user),
            "project.created",
            None,
            project.name.clone(),
            origin,
        )
        .await;
        Ok(project)
    }

    /// A project with its members, for those who may see it.
    pub async fn project(
        &self,
        actor: &Actor,
        id: ProjectId,
    ) -> Result<(Project, Access, Vec<(User, ProjectRole)>)> {
        let (project, access) = self.project_with_access(actor, id, Access::Read).await?;
        let members = self.store.members(project.id).await?;
        Ok((project, access, members))
    }

    pub async fn rename_project(&self, actor: &Actor, id: ProjectId, name: &str) -> Result<()> {
        let (project, _) = self.project_with_access(actor, id, Access::Manage).await?;
        if project.kind == ProjectKind::Personal {
            return Err(Error::invalid(
                "A personal project is named after its user and cannot be renamed.",
            ));
        }
        self.store
            .rename_project(
                project.id,
                &resource_name("name", "project", name)?,
                self.now(),
            )
            .await?;
        Ok(())
    }

    pub async fn delete_project(
        &self,
        actor: &Actor,
        id: ProjectId,
        origin: &Origin,
    ) -> Result<()> {
        actor
            .user
            .role
            .require_user_manager()
            .map_err(|_| Error::forbidden("Only the owner and admins can delete projects."))?;
        let project = self
            .store
            .project(id)
            .await?
            .ok_or_else(|| Error::not_found("There is no such project."))?;
        if project.kind == ProjectKind::Personal {
            return Err(Error::invalid(
                "A personal project goes when its user is deleted.",
            ));
        }
        self.store.delete_project(project.id).await?;
        self.audit(
            Some(&actor.user),
            "project.deleted",
            None,
            project.name,
            origin,
        )
        .await;
        Ok(())
    }

    /// Adds a user to a team project, or changes their role in it.
    pub async fn set_project_member(
        &self,
        actor: &Actor,
        project: ProjectId,
        user: UserId,
        role: &str,
        origin: &Origin,
    ) -> Result<()> {
        let (project, _) = self
            .project_with_access(actor, project, Access::Manage)
            .await?;
        if project.kind == ProjectKind::Personal {
            return Err(Error::invalid(
                "Personal projects have one member; share work through a team project.",
            ));
        }
        let role = match ProjectRole::parse(role) {
            Some(ProjectRole::PersonalOwner) | None => {
                return Err(Error::invalid(format!(
                    "'{role}' is not a project role. Use project:admin, project:editor or project:viewer."
                )));
            }
            Some(role) => role,
        };
        let user = self.existing_user(user).await?;
        self.store.set_member(project.id, user.id, role).await?;
        self.audit(
            Some(&actor.user),
            "project.member_set",
            Some(&user),
            format!("{} in {}", role.as_str(), project.name),
            origin,
        )
        .await;
        Ok(())
    }

    pub async fn remove_project_member(
        &self,
        actor: &Actor,
        project: ProjectId,
        user: UserId,
        origin: &Origin,
    ) -> Result<()> {
        let (project, _) = self
            .project_with_access(actor, project, Access::Manage)
            .await?;
        let user = self.existing_user(user).await?;
        if project.personal_owner == Some(user.id) {
            return Err(Error::invalid(
                "The owner of a personal project cannot leave it.",
            ));
        }
        if !self.store.remove_member(project.id, user.id).await? {
            return Err(Error::not_found(
                "This user is not a member of the project.",
            ));
        }
        self.audit(
            Some(&actor.user),
            "project.member_removed",
            Some(&user),
            project.name,
            origin,
        )
        .await;
        Ok(())
    }

    /// Where a leaving user's work can go: every team project and the
    /// personal project of every other active user (made now for those who
    /// never needed one yet: one query finds them, usually none).
    pub async fn transfer_targets(&self, actor: &Actor, leaving: UserId) -> Result<Vec<Project>> {
        actor.user.role.require_user_manager()?;
        let now = self.now();
        for user in self.store.users_without_personal_project().await? {
            if user.id != leaving {
                self.store.personal_project(&user, now).await?;
            }
        }
        Ok(self
            .store
            .all_projects()
            .await?
            .into_iter()
            .filter(|p| p.personal_owner != Some(leaving))
            .collect())
    }

    /// The project roles of one user, for their page.
    pub async fn project_roles_of(
        &self,
        actor: &Actor,
        user: UserId,
    ) -> Result<Vec<(Project, ProjectRole)>> {
        actor.user.role.require_user_manager()?;
        Ok(self.store.projects_of(user).await?)
    }
}

fn denied(need: Access, what: &str) -> Error {
    match need {
        Access::Read => Error::forbidden(format!("You do not have access to this {what}.")),
        Access::Manage => Error::forbidden(format!(
            "Only the owner, admins and the {what}'s admins can do this."
        )),
        _ => Error::forbidden(format!("You can view this {what} but not change it.")),
    }
}

fn require_tag_admin(actor: &Actor, verb: &str) -> Result<()> {
    if actor.user.role.manages_users() {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "Only the owner and admins can {verb} tags."
        )))
    }
}

fn tag_name(text: &str) -> Result<String> {
    let name = text.trim();
    if name.is_empty() || name.chars().count() > 24 {
        return Err(Error::field(
            "name",
            "A tag name is 1 to 24 characters long.",
        ));
    }
    Ok(name.to_owned())
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

fn data_text(data: &serde_json::Value) -> Result<String> {
    if data.is_object() {
        Ok(data.to_string())
    } else {
        Err(Error::field(
            "data",
            "Credential data is a JSON object, e.g. {\"apiKey\": \"…\"}.",
        ))
    }
}
