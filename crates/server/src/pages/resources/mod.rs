//! The work pages: workflows, credentials, tags and projects.
//!
//! Who may do what is the domain's to say
//! ([`usher_domain::service::resources`]): a page lists what the services
//! return and hides the forms the services would refuse, and a post that is
//! refused anyway shows the services' message.
//!
//! - [`workflows`]: `/home/workflows`, `/workflows/<id>`;
//! - [`credentials`]: the credentials, `/home/credentials`;
//! - [`tags`]: the tags, `/home/tags`;
//! - [`projects`]: `/projects`, `/projects/<id>`.
//!
//! What they share (the message a post leaves, how a project is named, the
//! projects one may create in) is here.

mod credentials;
mod projects;
mod tags;
mod workflows;

use axum::Router;
use serde::Deserialize;
use usher_domain::{
    model::User,
    resources::{Project, ProjectKind},
    service::{auth::Actor, resources::Access},
};

use super::Form;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(workflows::router())
        .merge(credentials::router())
        .merge(tags::router())
        .merge(projects::router())
}

/// What a post adds to the page it shows next.
type Shown = super::Shown<Typed>;

/// A refused create or rename form, as typed, for the page to show again.
#[derive(Default)]
struct Typed {
    /// The form posted, with its values and errors.
    form: Option<Form>,
    /// The project chosen in a create form.
    project: Option<String>,
    /// A credential's data as typed, and what is wrong with it.
    data: Option<String>,
    data_error: Option<String>,
}

impl Typed {
    fn form(form: Form) -> Self {
        Self {
            form: Some(form),
            ..Self::default()
        }
    }
}

/// A project in words, the same everywhere a project is named: a team
/// project's name, or a personal project's person, `Ann Lee (personal)`
/// (their email where they have no name yet, and beside the name where
/// someone else has the same one: `Ann Lee (personal, ann@example.com)`).
pub(crate) fn project_label(project: &Project, everyone: &[User]) -> String {
    let Some(user) = project
        .personal_owner
        .and_then(|id| everyone.iter().find(|u| u.id == id))
    else {
        return project.name.clone();
    };
    let name = user.display_name();
    let shared = everyone
        .iter()
        .any(|other| other.id != user.id && other.display_name() == name);
    match &user.email {
        Some(email) if shared => format!("{name} (personal, {email})"),
        _ => format!("{name} (personal)"),
    }
}

/// [`project_label`] for a notice about something made in `project`: the
/// name the lists show, not the personal project's stored (n8n) name.
pub(super) async fn notice_label(
    state: &AppState,
    actor: &Actor,
    project: &Project,
) -> usher_domain::Result<String> {
    if project.personal_owner.is_none() {
        return Ok(project.name.clone());
    }
    let everyone = state.usher().users(actor).await?;
    Ok(project_label(project, &everyone))
}

pub(super) fn kind_label(kind: ProjectKind) -> &'static str {
    match kind {
        ProjectKind::Personal => "Personal",
        ProjectKind::Team => "Team",
    }
}

fn access_label(access: Access) -> &'static str {
    match access {
        Access::None => "None",
        Access::Read => "Can view",
        Access::Write => "Can edit",
        Access::Manage => "Can edit and manage members",
    }
}

/// A project to choose in a select.
pub(super) struct ProjectOption {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

/// The projects the actor may create things in (their own first, then by
/// name), with `chosen`, or else their own, selected.
async fn writable_projects(
    state: &AppState,
    actor: &Actor,
    everyone: &[User],
    chosen: Option<&str>,
) -> usher_domain::Result<Vec<ProjectOption>> {
    let usher = state.usher();
    let mut writable = Vec::new();
    for (project, _) in usher.projects(actor).await? {
        if usher.access(&actor.user, &project).await? >= Access::Write {
            writable.push(project);
        }
    }
    let own = |p: &Project| p.personal_owner == Some(actor.user.id);
    writable.sort_by_key(|p| (!own(p), project_label(p, everyone).to_lowercase()));
    let chosen = chosen
        .filter(|c| writable.iter().any(|p| p.id.to_string() == *c))
        .map(str::to_owned);
    Ok(writable
        .iter()
        .map(|p| ProjectOption {
            id: p.id.to_string(),
            label: project_label(p, everyone),
            selected: match &chosen {
                Some(id) => p.id.to_string() == *id,
                None => own(p),
            },
        })
        .collect())
}

// ---------------------------------------------------------------- workflows

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NameForm {
    pub name: String,
}
