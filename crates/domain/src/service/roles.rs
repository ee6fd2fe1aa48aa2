//! Global roles, handing over ownership, and reading the audit log.

use crate::{
    Error, Result,
    model::{Origin, Role, User, UserId},
    secret::Secret,
    store::{AuditEvent, AuditFilter},
};

use super::{Usher, auth::Actor, invitations::NOT_ASSIGNABLE};

/// n8n's answer to deleting yourself, on `/rest` and `/api/v1` alike.
pub const CANNOT_DELETE_YOURSELF: &str = "Cannot delete your own user";

impl Usher {
    /// `PATCH /rest/users/<id>/role`: owner and admins; the owner's role is
    /// not changed this way, nobody becomes owner this way, and nobody
    /// changes their own role. Rights follow on the user's next request
    /// (sessions carry no roles).
    pub async fn change_role(
        &self,
        actor: &Actor,
        id: UserId,
        new_role: &str,
        origin: &Origin,
    ) -> Result<User> {
        actor.user.role.require_user_manager()?;
        let role = match Role::parse(new_role.trim()) {
            Some(Role::Owner) => return Err(Error::invalid(NOT_ASSIGNABLE)),
            Some(role) => role,
            None => {
                return Err(Error::invalid(format!(
                    "'{new_role}' is not a role. Use global:member or global:admin."
                )));
            }
        };
        let target = self.existing_user(id).await?;
        if target.role == Role::Owner {
            return Err(Error::forbidden(
                "The owner's role cannot be changed. To hand over the instance, make another user the owner.",
            ));
        }
        if target.id == actor.user.id {
            return Err(Error::forbidden("You cannot change your own role."));
        }
        let before = target.role;
        let user = self
            .store
            .set_role(id, role, self.now())
            .await?
            .ok_or_else(|| Error::not_found("There is no such user."))?;
        let detail = format!("{} to {}", before.as_str(), role.as_str());
        self.audit(
            Some(&actor.user),
            "user.role_changed",
            Some(&user),
            detail,
            origin,
        )
        .await;
        Ok(user)
    }

    /// Hands the instance to another active user, confirmed with the owner's
    /// password; the old owner becomes an admin. One transaction. Never to
    /// a disabled user, nor to one linked to the directory (the owner signs
    /// in with the Usher password, whatever the directory says).
    pub async fn transfer_ownership(
        &self,
        actor: &Actor,
        to: UserId,
        password: &Secret,
        origin: &Origin,
    ) -> Result<User> {
        if actor.user.role != Role::Owner || actor.session.is_none() {
            return Err(Error::forbidden(
                "Only the signed-in owner can hand over ownership.",
            ));
        }
        self.check_current_password(&actor.user, password, "password")
            .await?;
        let target = self.existing_user(to).await?;
        Self::may_become_owner(&actor.user, &target)?;
        if !self
            .store
            .transfer_ownership(actor.user.id, to, self.now())
            .await?
        {
            return Err(Error::Conflict(
                "Ownership could not be handed over: the instance changed meanwhile. Try again."
                    .into(),
            ));
        }
        self.audit(
            Some(&actor.user),
            "owner.transferred",
            Some(&target),
            "the old owner is now an admin",
            origin,
        )
        .await;
        self.existing_user(to).await
    }

    /// Whether `viewer` may hand the instance to `user`: only the owner
    /// may, and only to another user who has accepted their invitation, is
    /// not disabled, and signs in with an Usher password (not the company
    /// directory: the owner's door must not depend on it). The service's
    /// rule, which the user page shows its button by.
    pub fn may_become_owner(viewer: &User, user: &User) -> Result<()> {
        if viewer.role != Role::Owner {
            return Err(Error::forbidden(
                "Only the signed-in owner can hand over ownership.",
            ));
        }
        if user.id == viewer.id {
            return Err(Error::invalid("You are the owner already."));
        }
        if user.is_pending() {
            return Err(Error::invalid(
                "Ownership can only go to a user who has accepted their invitation.",
            ));
        }
        if user.disabled {
            return Err(Error::invalid(format!(
                "Ownership cannot go to {}: their account is disabled (they are no longer in \
                 the company directory).",
                user.display_name()
            )));
        }
        if user.is_ldap() {
            return Err(Error::invalid(format!(
                "Ownership cannot go to {}: they sign in with the company directory (LDAP), and \
                 the owner signs in with an Usher password, so that a directory that is down or \
                 changed never locks the instance. Choose someone who signs in with an Usher \
                 password.",
                user.display_name()
            )));
        }
        Ok(())
    }

    /// Whether `viewer` (the owner or an admin) may delete `user`: the
    /// service's rule, which the pages also show their buttons and confirm
    /// steps by.
    pub fn may_delete_user(viewer: &User, user: &User) -> Result<()> {
        if user.id == viewer.id {
            return Err(Error::invalid(CANNOT_DELETE_YOURSELF));
        }
        if user.role == Role::Owner {
            return Err(Error::forbidden("Instance owner cannot be deleted."));
        }
        Ok(())
    }

    /// Deletes a user (spec 000, "Manage users"), in n8n's order of
    /// checks: yourself (400), then a user there is not (404), then the
    /// owner (403). The user's personal project's workflows and credentials
    /// go to the project `transfer_to` (a team project, or another user's
    /// personal project), or are deleted with them when it is None: all of
    /// them, or none, in one transaction. Their sessions end with them.
    pub async fn delete_user(
        &self,
        actor: &Actor,
        id: UserId,
        transfer_to: Option<&str>,
        origin: &Origin,
    ) -> Result<()> {
        actor.user.role.require_user_manager()?;
        // Yourself exists, so "yourself" is still answered before "no such
        // user".
        let target = self.existing_user(id).await?;
        Self::may_delete_user(&actor.user, &target)?;
        let transfer = match transfer_to.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(text) => {
                let project_id = crate::resources::ProjectId::parse(text)
                    .map_err(|_| Error::not_found("The project to transfer to does not exist."))?;
                let project = self.store.project(project_id).await?.ok_or_else(|| {
                    Error::not_found("The project to transfer to does not exist.")
                })?;
                if project.personal_owner == Some(target.id) {
                    return Err(Error::invalid(
                        "Choose another user's project to transfer to: this one goes with the user.",
                    ));
                }
                if let Some(owner) = project.personal_owner
                    && let Some(owner) = self.store.user_by_id(owner).await?
                    && owner.disabled
                {
                    return Err(Error::invalid(format!(
                        "{} is disabled (no longer in the company directory), so their project \
                         cannot take the work: choose an active user or a team project.",
                        owner.display_name()
                    )));
                }
                Some(project)
            }
        };
        if !self
            .store
            .delete_user(id, transfer.as_ref().map(|p| p.id))
            .await?
        {
            return Err(Error::not_found("There is no such user."));
        }
        let detail = match (&transfer, target.is_pending()) {
            (_, true) => "pending invitation withdrawn".to_owned(),
            (Some(project), false) => {
                format!("workflows and credentials transferred to {}", project.name)
            }
            (None, false) => "workflows and credentials deleted".to_owned(),
        };
        self.audit(
            Some(&actor.user),
            "user.deleted",
            Some(&target),
            detail,
            origin,
        )
        .await;
        Ok(())
    }

    /// The audit log, newest first, for the owner and admins.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditEvent>, i64)> {
        actor.user.role.require_user_manager()?;
        if !(1..=500).contains(&limit) {
            return Err(Error::invalid("take must be from 1 to 500."));
        }
        if offset < 0 {
            return Err(Error::invalid("skip cannot be negative."));
        }
        Ok(self.store.audit_events(filter, limit, offset).await?)
    }

    /// The names of the people `events` mention, for the log in words:
    /// keyed by the actor's id and by the target as the event keeps it
    /// (an email, or an id where there was none). People deleted since are
    /// missing; the page shows what the event kept instead.
    pub async fn audit_names(
        &self,
        actor: &Actor,
        events: &[AuditEvent],
    ) -> Result<std::collections::HashMap<String, String>> {
        actor.user.role.require_user_manager()?;
        let mut names = std::collections::HashMap::new();
        for event in events {
            if let Some(id) = event.actor_id
                && !names.contains_key(&id.to_string())
                && let Some(user) = self.store.user_by_id(id).await?
            {
                names.insert(id.to_string(), user.display_name());
            }
            let Some(target) = event.target.as_deref() else {
                continue;
            };
            if names.contains_key(target) {
                continue;
            }
            let user = match UserId::parse(target) {
                Some(id) => self.store.user_by_id(id).await?,
                None => match crate::model::Email::parse(target) {
                    Ok(email) => self.store.user_by_email(&email).await?,
                    Err(_) => None,
                },
            };
            if let Some(user) = user {
                names.insert(target.to_owned(), user.display_name());
            }
        }
        Ok(names)
    }
}
