//! Projects: team projects made by the owner and admins, the personal
//! project every user has from the moment their row exists (the store makes
//! it with the row and renames it with the user), their members, and where
//! a leaving user's work can go.

use crate::{
    Error, Result,
    model::{Origin, User, UserId},
    resources::{Project, ProjectId, ProjectKind, ProjectRole, resource_name},
};

use super::Access;
use crate::service::{Usher, auth::Actor};

impl Usher {
    /// The projects the actor may see, with their own role where they have one.
    pub async fn projects(&self, actor: &Actor) -> Result<Vec<(Project, Option<ProjectRole>)>> {
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

    /// `GET /rest/projects/personal`: the actor's own personal project and
    /// its members (its owner alone).
    pub async fn own_personal_project(
        &self,
        actor: &Actor,
    ) -> Result<(Project, Vec<(User, ProjectRole)>)> {
        let project = self.personal_project_of(&actor.user).await?;
        let members = self.store.members(project.id).await?;
        Ok((project, members))
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
