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

/// What n8n calls a project that has no user with an email yet: in Usher,
/// the owner shell's (before set-up, and again after
/// `usher user-management:reset`).
pub const UNNAMED_PROJECT: &str = "Unnamed Project";

/// A personal project's name, as n8n makes it (`User.createPersonalProjectName`):
/// `First Last <email>` when both names are there, `<email>` while either is
/// empty, and [`UNNAMED_PROJECT`] without an email. The store names every
/// personal project with this, when it makes the project and in the same
/// transaction as any change to the names or the email.
pub fn personal_project_name(first_name: &str, last_name: &str, email: Option<&str>) -> String {
    match email {
        Some(email) if !first_name.is_empty() && !last_name.is_empty() => {
            format!("{first_name} {last_name} <{email}>")
        }
        Some(email) => format!("<{email}>"),
        None => UNNAMED_PROJECT.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_projects_are_named_as_n8n_names_them() {
        let email = Some("ann@example.com");
        assert_eq!(
            personal_project_name("Ann", "Lee", email),
            "Ann Lee <ann@example.com>"
        );
        // n8n wants both names; one alone gives the address only.
        assert_eq!(personal_project_name("", "", email), "<ann@example.com>");
        assert_eq!(personal_project_name("Ann", "", email), "<ann@example.com>");
        assert_eq!(personal_project_name("", "Lee", email), "<ann@example.com>");
        assert_eq!(personal_project_name("Ann", "Lee", None), UNNAMED_PROJECT);
    }
}
