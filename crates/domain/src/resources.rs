//! Projects and what they hold: workflows, credentials, tags. Usher stores
//! and governs them; it does not run workflows.

use crate::{
    Error, Result,
    clock::Millis,
    model::{UserId, id_type},
};

id_type!(
    /// A project's id.
    ProjectId,
    "project"
);
id_type!(
    /// A workflow's id.
    WorkflowId,
    "workflow"
);
id_type!(
    /// A credential's id.
    CredentialId,
    "credential"
);
id_type!(
    /// A tag's id.
    TagId,
    "tag"
);

impl ProjectId {
    /// The id in `text`, trimmed; "There is no such project." otherwise.
    pub fn parse(text: &str) -> Result<Self> {
        text.parse()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectKind {
    Personal,
    Team,
}

impl ProjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectKind::Personal => "personal",
            ProjectKind::Team => "team",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "personal" => Some(ProjectKind::Personal),
            "team" => Some(ProjectKind::Team),
            _ => None,
        }
    }
}

/// A member's role in one project (n8n's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectRole {
    /// The user whose personal project it is.
    PersonalOwner,
    /// Manages the members, and edits everything in the project.
    Admin,
    /// Creates, edits and deletes the project's workflows and credentials.
    Editor,
    /// Reads only.
    Viewer,
}

impl ProjectRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::PersonalOwner => "project:personalOwner",
            ProjectRole::Admin => "project:admin",
            ProjectRole::Editor => "project:editor",
            ProjectRole::Viewer => "project:viewer",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "project:personalOwner" => Some(ProjectRole::PersonalOwner),
            "project:admin" | "admin" => Some(ProjectRole::Admin),
            "project:editor" | "editor" => Some(ProjectRole::Editor),
            "project:viewer" | "viewer" => Some(ProjectRole::Viewer),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ProjectRole::PersonalOwner => "Owner",
            ProjectRole::Admin => "Admin",
            ProjectRole::Editor => "Editor",
            ProjectRole::Viewer => "Viewer",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub kind: ProjectKind,
    /// For a personal project, whose it is.
    pub personal_owner: Option<UserId>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone, Debug)]
pub struct Tag {
    pub id: TagId,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Clone, Debug)]
pub struct Workflow {
    pub id: WorkflowId,
    pub project_id: ProjectId,
    pub name: String,
    /// The workflow's JSON definition (nodes, connections), kept as given.
    pub definition: String,
    pub active: bool,
    pub tags: Vec<Tag>,
    pub created_by: Option<UserId>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone, Debug)]
pub struct Credential {
    pub id: CredentialId,
    pub project_id: ProjectId,
    pub name: String,
    pub kind: String,
    /// Encrypted with the instance key; see [`crate::cipher`].
    pub sealed_data: String,
    pub created_by: Option<UserId>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A resource or project name: trimmed, 1 to 128 characters.
pub fn resource_name(field: &'static str, what: &str, text: &str) -> Result<String> {
    let name = text.trim();
    if name.is_empty() {
        return Err(Error::field(field, format!("Give the {what} a name.")));
    }
    if name.chars().count() > 128 {
        return Err(Error::field(
            field,
            format!("A {what} name is at most 128 characters long."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::field(
            field,
            format!("A {what} name cannot contain control characters."),
        ));
    }
    Ok(name.to_owned())
}
