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
//!
//! One module per kind: `workflows`, `credentials`, `tags`, `projects`; what
//! decides access is here.

mod credentials;
mod projects;
mod tags;
mod workflows;

pub use credentials::{CredentialChange, CredentialView};
pub use workflows::{WorkflowChange, WorkflowView};

use std::collections::HashMap;

use crate::{
    Error, Result,
    model::{Origin, User},
    resources::{Project, ProjectId, ProjectRole},
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

impl Usher {
    /// A project as the audit log names it: a team project's name, or
    /// `Ann Lee (personal)` for a personal one (never its stored n8n name,
    /// `Ann Lee <ann@example.com>`, which reads as an address).
    async fn audit_project_label(&self, project: &Project) -> Result<String> {
        let Some(owner) = project.personal_owner else {
            return Ok(project.name.clone());
        };
        Ok(match self.store.user_by_id(owner).await? {
            Some(user) => format!("{} (personal)", user.display_name()),
            None => project.name.clone(),
        })
    }

    /// The actor's access to `project`.
    pub async fn access(&self, user: &User, project: &Project) -> Result<Access> {
        if user.role.manages_users() {
            return Ok(Access::Manage);
        }
        Ok(access_of(self.store.membership(project.id, user.id).await?))
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
            None => self.personal_project_of(&actor.user).await,
        }
    }

    /// A user's personal project. The store makes it with the user's row, so
    /// a user without one is a broken database, not a case to handle.
    pub(crate) async fn personal_project_of(&self, user: &User) -> Result<Project> {
        self.store
            .personal_project(user.id)
            .await?
            .ok_or_else(|| Error::Internal(format!("user {} has no personal project", user.id)))
    }

    fn visible(actor: &Actor) -> Visible {
        if actor.user.role.manages_users() {
            Visible::All
        } else {
            Visible::MemberOf(actor.user.id)
        }
    }

    /// The projects whose work the actor's lists show, each with the actor's
    /// access: for the owner and admins, every project that holds work (not
    /// every user's personal project); for others, the projects they belong
    /// to. One read, whatever the number of users or of rows in the list.
    async fn projects_in_view(
        &self,
        actor: &Actor,
    ) -> Result<HashMap<ProjectId, (Project, Access)>> {
        let projects = if actor.user.role.manages_users() {
            self.store
                .projects_with_work()
                .await?
                .into_iter()
                .map(|p| (p, Access::Manage))
                .collect::<Vec<_>>()
        } else {
            self.store
                .projects_of(actor.user.id)
                .await?
                .into_iter()
                .map(|(p, role)| (p, access_of(Some(role))))
                .collect()
        };
        Ok(projects.into_iter().map(|(p, a)| (p.id, (p, a))).collect())
    }

    /// The projects the actor works in: every team project for the owner
    /// and admins (who may act in all of them), the ones they belong to for
    /// others, and their own personal project; with their role where they
    /// have one. Not other people's personal projects, which for a large
    /// team would be a list of everyone.
    pub async fn working_projects(
        &self,
        actor: &Actor,
    ) -> Result<Vec<(Project, Option<ProjectRole>)>> {
        let mine = self.store.projects_of(actor.user.id).await?;
        if !actor.user.role.manages_users() {
            return Ok(mine.into_iter().map(|(p, r)| (p, Some(r))).collect());
        }
        let role_in = |id: ProjectId| mine.iter().find(|(m, _)| m.id == id).map(|(_, r)| *r);
        let mut projects: Vec<_> = self
            .store
            .team_projects()
            .await?
            .into_iter()
            .map(|p| {
                let role = role_in(p.id);
                (p, role)
            })
            .collect();
        projects.extend(
            mine.iter()
                .filter(|(p, _)| p.personal_owner == Some(actor.user.id))
                .map(|(p, r)| (p.clone(), Some(*r))),
        );
        Ok(projects)
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
}

/// The access a project role gives (none without one).
fn access_of(role: Option<ProjectRole>) -> Access {
    match role {
        Some(ProjectRole::Admin) => Access::Manage,
        Some(ProjectRole::PersonalOwner | ProjectRole::Editor) => Access::Write,
        Some(ProjectRole::Viewer) => Access::Read,
        None => Access::None,
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
