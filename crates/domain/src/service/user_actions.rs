//! What the owner and admins do to another user's account from that user's
//! page, beyond roles and resets: removing their two-factor authentication
//! when they lost their device (the page's way to `usher mfa:disable`).

use crate::{
    Error, Result,
    model::{Origin, Role, User, UserId},
    resources::{Project, ProjectId},
};

use super::{Usher, auth::Actor};

impl Usher {
    /// Whether `viewer` (the owner or an admin) may turn `user`'s
    /// two-factor authentication off: the service's rule, which the pages
    /// also show their buttons and confirm steps by.
    pub fn may_remove_two_factor(viewer: &User, user: &User) -> Result<()> {
        if user.id == viewer.id {
            return Err(Error::invalid(
                "Turn your own two-factor authentication off on your two-factor page.",
            ));
        }
        if user.role == Role::Owner && viewer.role != Role::Owner {
            return Err(Error::forbidden(
                "Only the owner can remove the owner's two-factor authentication.",
            ));
        }
        if !user.mfa_enabled {
            return Err(Error::invalid(format!(
                "Two-factor authentication is not on for {}.",
                user.display_name()
            )));
        }
        Ok(())
    }

    /// Turns two-factor authentication off for `id`. The owner and admins,
    /// not for themselves (their own page asks for a code), and only the
    /// owner for the owner.
    pub async fn remove_two_factor(
        &self,
        actor: &Actor,
        id: UserId,
        origin: &Origin,
    ) -> Result<()> {
        actor.user.role.require_user_manager()?;
        // Yourself exists, so "yourself" is still answered before "no such
        // user".
        let user = self.existing_user(id).await?;
        Self::may_remove_two_factor(&actor.user, &user)?;
        self.store.disable_mfa(user.id, self.now()).await?;
        self.audit(
            Some(&actor.user),
            "mfa.disabled",
            Some(&user),
            "removed by an admin",
            origin,
        )
        .await;
        Ok(())
    }
}

/// What a user's page needs without reading every user: the user, and
/// where their work could go.
impl Usher {
    /// One user, for the owner and admins.
    pub async fn user_for_admin(&self, actor: &Actor, id: UserId) -> Result<User> {
        actor.user.role.require_user_manager()?;
        self.existing_user(id).await
    }

    /// The team projects, which may take a leaving user's work (people are
    /// found with [`Usher::find_people`], never listed all at once).
    pub async fn team_projects(&self, actor: &Actor) -> Result<Vec<Project>> {
        actor.user.role.require_user_manager()?;
        Ok(self.store.team_projects().await?)
    }

    /// A user's personal project, for the owner and admins.
    pub async fn personal_project_for_admin(&self, actor: &Actor, id: UserId) -> Result<Project> {
        actor.user.role.require_user_manager()?;
        self.store
            .personal_project(id)
            .await?
            .ok_or_else(|| Error::not_found("That person has no project to take the work."))
    }

    /// How many workflows and credentials a project holds.
    pub async fn count_work(&self, actor: &Actor, project: ProjectId) -> Result<(i64, i64)> {
        actor.user.role.require_user_manager()?;
        Ok(self.store.count_work(project).await?)
    }
}
