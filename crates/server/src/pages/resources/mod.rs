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
    /// A project's member form as typed, and whom it could mean.
    member: projects::MemberAgain,
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
/// another person on the same page has the same one:
/// `Ann Lee (personal, ann@example.com)`). `owners` are the people whose
/// personal projects the page names ([`owners_of`]), never everyone: a
/// page stays as fast with a hundred thousand users as with ten.
pub(crate) fn project_label(project: &Project, owners: &[User]) -> String {
    let Some(user) = project
        .personal_owner
        .and_then(|id| owners.iter().find(|u| u.id == id))
    else {
        return project.name.clone();
    };
    let name = user.display_name();
    let shared = owners
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
    let owners = owners_of(state, actor, [project]).await?;
    Ok(project_label(project, &owners))
}

/// The people whose personal projects are among `projects`, for
/// [`project_label`].
pub(crate) fn owners_of<'a, 's>(
    state: &'s AppState,
    actor: &'s Actor,
    projects: impl IntoIterator<Item = &'a Project>,
) -> impl Future<Output = usher_domain::Result<Vec<User>>> + Send + 's {
    // Collected before the future starts, so that it holds no borrowing
    // iterator (handlers' futures must be Send for every lifetime).
    let ids: Vec<_> = projects
        .into_iter()
        .filter_map(|p| p.personal_owner)
        .collect();
    owners_by_id(state, actor, ids)
}

async fn owners_by_id(
    state: &AppState,
    actor: &Actor,
    ids: Vec<usher_domain::model::UserId>,
) -> usher_domain::Result<Vec<User>> {
    let usher = state.usher();
    let mut owners = usher.users_named(actor, ids).await?;
    // Their namesakes too, so that two people called Ann Lee read apart:
    // a search by name each, never a read of everyone.
    let mut namesakes = Vec::new();
    for owner in &owners {
        let name = owner.display_name();
        namesakes.extend(
            usher
                .find_people(actor, &name, 5)
                .await?
                .into_iter()
                .filter(|u| u.id != owner.id && u.display_name() == name),
        );
    }
    for namesake in namesakes {
        if !owners.iter().any(|u| u.id == namesake.id) {
            owners.push(namesake);
        }
    }
    Ok(owners)
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
    chosen: Option<&str>,
) -> usher_domain::Result<Vec<ProjectOption>> {
    let usher = state.usher();
    let mut writable = Vec::new();
    for (project, _) in usher.working_projects(actor).await? {
        if usher.access(&actor.user, &project).await? >= Access::Write {
            writable.push(project);
        }
    }
    let everyone = &owners_of(state, actor, &writable).await?;
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
