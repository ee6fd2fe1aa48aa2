//! Credentials: like workflows, with secret data sealed by the instance key
//! and readable only by those who may edit it.

use crate::{
    Error, Result,
    model::Origin,
    resources::{Credential, CredentialId, Project, ProjectId, resource_name},
};

use super::{Access, denied};
use crate::service::{Usher, auth::Actor};

#[derive(Clone, Debug)]
pub struct CredentialView {
    pub credential: Credential,
    pub project: Project,
    pub access: Access,
    /// The decrypted data, only when asked for and allowed.
    pub data: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default)]
pub struct CredentialChange {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub data: Option<serde_json::Value>,
}

impl Usher {
    pub async fn credentials(&self, actor: &Actor) -> Result<Vec<CredentialView>> {
        let projects = self.projects_in_view(actor).await?;
        let mut views = Vec::new();
        for credential in self.store.credentials(Self::visible(actor)).await? {
            let Some((project, access)) = projects.get(&credential.project_id).cloned() else {
                continue;
            };
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
        // Named before the insert, so a failed lookup cannot follow a made one.
        let place = self.audit_project_label(&project).await?;
        self.store.insert_credential(&credential).await?;
        self.audit(
            Some(&actor.user),
            "credential.created",
            None,
            format!("{} in {place}", credential.name),
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
