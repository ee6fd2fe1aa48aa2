//! `/projects` (the list, creating a team project) and `/projects/<id>`
//! (its members and workflows).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::IntoResponse,
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    model::{User, UserId},
    resources::{ProjectId, ProjectKind, ProjectRole},
    service::resources::{Access, WorkflowView},
};

use super::{
    NameForm, Shown, Typed, access_label, kind_label, owners_of, project_label,
    workflows::{WorkflowRow, workflow_rows},
};
use crate::{
    AppState,
    extract::{ClientOrigin, Id, Ids},
    pages::{
        Form, Layout, PageError, Result, SignedInPage,
        confirm::{self, Confirmation},
        done,
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/projects",
            get(view_projects_get).post(view_projects_create),
        )
        .route("/projects/{id}", get(view_project_get))
        .route("/projects/{id}/members", post(view_project_member))
        .route("/projects/{id}/people", get(view_project_people))
        .route(
            "/projects/{id}/members/{user}/remove",
            post(view_project_remove),
        )
        .route("/projects/{id}/delete", post(view_project_delete))
}

struct ProjectRow {
    id: String,
    name: String,
    kind: &'static str,
    role: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/projects.html")]
struct ProjectsPage {
    layout: Layout,
    rows: Vec<ProjectRow>,
    /// Team projects are made by the owner and admins (the service says so
    /// too); others get no form.
    can_create: bool,
    form: Form,
    notice: Option<String>,
    error: Option<String>,
}

async fn projects_page(state: &AppState, page: SignedInPage, shown: Shown) -> Result {
    let (usher, actor) = (state.usher(), &page.actor);
    // Team projects and one's own personal project: everyone else's
    // personal project is on their user page (a list of a hundred thousand
    // personal projects would help no one).
    let projects = usher.working_projects(actor).await?;
    let everyone = owners_of(state, actor, projects.iter().map(|(p, _)| p)).await?;
    let mut rows: Vec<(bool, ProjectRow)> = projects
        .iter()
        .map(|(project, role)| {
            (
                project.kind == ProjectKind::Personal,
                ProjectRow {
                    id: project.id.to_string(),
                    name: project_label(project, &everyone),
                    kind: kind_label(project.kind),
                    role: role.map_or("", ProjectRole::label),
                },
            )
        })
        .collect();
    // Team projects first, then personal ones, each by name.
    rows.sort_by_key(|(personal, row)| (*personal, row.name.to_lowercase()));
    Ok(ProjectsPage {
        layout: page.layout.at("/projects"),
        rows: rows.into_iter().map(|(_, row)| row).collect(),
        can_create: actor.user.role.manages_users(),
        form: shown.with.form.unwrap_or_default(),
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

async fn view_projects_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    projects_page(&state, page, Shown::default()).await
}

async fn view_projects_create(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<NameForm>,
) -> Result {
    match state
        .usher()
        .create_project(&page.actor, &input.name, &origin)
        .await
    {
        // Its page is where members are added, the next thing to do.
        Ok(project) => Ok(done(
            &state,
            &format!("/projects/{}", project.id),
            format!(
                "Project “{}” is created. Add its members below.",
                project.name
            ),
            (),
        )),
        Err(error) => {
            let shown = Shown::default().with(Typed::form(
                Form::default().with("name", input.name).error(error, &[]),
            ));
            projects_page(&state, page, shown).await
        }
    }
}

struct MemberRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    removable: bool,
}

/// One of the people a typed name could mean.
struct UserOption {
    id: String,
    label: String,
}

/// The member form again after it named no one for sure: what was typed,
/// and the people it could mean, to choose from.
#[derive(Default)]
pub(super) struct MemberAgain {
    person: String,
    role: String,
    candidates: Vec<UserOption>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/project.html")]
struct ProjectPage {
    layout: Layout,
    id: String,
    name: String,
    kind: &'static str,
    is_team: bool,
    access: &'static str,
    can_manage: bool,
    /// A team project, for the owner and admins: the danger zone.
    can_delete: bool,
    workflow_count: usize,
    members: Vec<MemberRow>,
    /// The member form as typed, and whom it could mean.
    member: MemberAgain,
    workflows: Vec<WorkflowRow>,
    notice: Option<String>,
    error: Option<String>,
}

async fn project_page(state: &AppState, page: SignedInPage, id: ProjectId, shown: Shown) -> Result {
    let (usher, actor) = (state.usher(), &page.actor);
    let (project, access, members) = usher
        .project(actor, id)
        .await
        .map_err(|error| PageError::from(error).with_next("/projects", "Back to the projects"))?;
    let views = usher.workflows(actor).await?;
    let views: Vec<WorkflowView> = views
        .into_iter()
        .filter(|v| v.project.id == project.id)
        .collect();
    let everyone = owners_of(state, actor, [&project]).await?;
    let is_team = project.kind == ProjectKind::Team;
    let mut members: Vec<MemberRow> = members
        .iter()
        .map(|(user, role)| MemberRow {
            id: user.id.to_string(),
            name: user.display_name(),
            email: user
                .email
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            role: role.label(),
            removable: *role != ProjectRole::PersonalOwner,
        })
        .collect();
    members.sort_by_key(|m| m.name.to_lowercase());
    Ok(ProjectPage {
        layout: page.layout.at(&format!("/projects/{}", project.id)),
        id: project.id.to_string(),
        name: project_label(&project, &everyone),
        kind: kind_label(project.kind),
        is_team,
        access: access_label(access),
        // Personal projects have one member: the service refuses others.
        can_manage: access >= Access::Manage && is_team,
        can_delete: is_team && actor.user.role.manages_users(),
        workflow_count: views.len(),
        members,
        member: shown.with.member,
        workflows: workflow_rows(&views, &everyone),
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

async fn view_project_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Id(id): Id<ProjectId>,
) -> Result {
    project_page(&state, page, id, Shown::default()).await
}

/// The project's name as the pages show it, and a person's name, for the
/// notices and questions about them.
async fn names(
    state: &AppState,
    page: &SignedInPage,
    id: ProjectId,
    user: Option<UserId>,
) -> Result<(String, String)> {
    let usher = state.usher();
    let (project, _, _) = usher.project(&page.actor, id).await?;
    let owners = owners_of(state, &page.actor, [&project]).await?;
    let person = usher
        .users_named(&page.actor, user)
        .await?
        .first()
        .map(|u| u.display_name())
        .unwrap_or_default();
    Ok((project_label(&project, &owners), person))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MemberForm {
    /// A person chosen from a list (the candidates, or a script): wins
    /// over `person`.
    user_id: String,
    /// A person's email or name, as typed.
    person: String,
    role: String,
}

/// Whom the member form names: the person picked, else the one person the
/// typed email or name matches. Else the people it could mean (none when it
/// matches no one).
async fn member_named(
    state: &AppState,
    page: &SignedInPage,
    input: &MemberForm,
) -> usher_domain::Result<std::result::Result<UserId, Vec<User>>> {
    if !input.user_id.trim().is_empty() {
        return Ok(Ok(input.user_id.trim().parse()?));
    }
    crate::pages::person_named(state, page, "person", &input.person).await
}

fn role_label(role: &str) -> String {
    ProjectRole::parse(role).map_or_else(|| role.to_owned(), |r| r.label().to_lowercase())
}

async fn view_project_member(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<ProjectId>,
    axum::Form(input): axum::Form<MemberForm>,
) -> Result {
    let again = |candidates: Vec<User>| MemberAgain {
        person: input.person.clone(),
        role: input.role.clone(),
        candidates: candidates
            .iter()
            .map(|u| UserOption {
                id: u.id.to_string(),
                label: crate::pages::person_label(u),
            })
            .collect(),
    };
    let result = async {
        let user = match member_named(&state, &page, &input).await? {
            Ok(user) => user,
            Err(people) => return Ok(Err(people)),
        };
        state
            .usher()
            .set_project_member(&page.actor, id, user, &input.role, &origin)
            .await?;
        Ok(Ok(user))
    }
    .await;
    match result {
        Ok(Ok(user)) => {
            let (project, person) = names(&state, &page, id, Some(user)).await?;
            let notice = format!("{person} is {} of “{project}”.", role_label(&input.role));
            Ok(done(&state, &format!("/projects/{id}"), notice, ()))
        }
        Ok(Err(people)) => {
            let message = if people.is_empty() {
                format!(
                    "No one matches “{}”. Type their email.",
                    input.person.trim()
                )
            } else {
                format!(
                    "“{}” could be several people: choose one.",
                    input.person.trim()
                )
            };
            let shown = super::Shown {
                notice: None,
                error: Some(message),
                with: Typed {
                    member: again(people),
                    ..Typed::default()
                },
            };
            project_page(&state, page, id, shown).await
        }
        Err(error) => {
            let mut shown = Shown::refused(error);
            shown.with.member = again(Vec::new());
            project_page(&state, page, id, shown).await
        }
    }
}

/// People matching `q`, for the member field's suggestions (the page's
/// script fills its datalist from here; without script the form's answer
/// lists them instead).
async fn view_project_people(
    State(state): State<AppState>,
    page: SignedInPage,
    Id(_): Id<ProjectId>,
    Query(query): Query<crate::pages::PeopleQuery>,
) -> Result {
    crate::pages::people_suggestions(&state, &page, &query, |u| !u.is_owner_shell()).await
}

async fn view_project_remove(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Ids(id, user): Ids<ProjectId, UserId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    let (project, person) = names(&state, &page, id, Some(user)).await?;
    if !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            format!("Remove {person} from “{project}”?"),
            "They lose access to the project's workflows and credentials.",
            "Remove",
            &format!("/projects/{id}/members/{user}/remove"),
            &format!("/projects/{id}"),
            &form,
        ));
    }
    let result = state
        .usher()
        .remove_project_member(&page.actor, id, user, &origin)
        .await;
    match result {
        Ok(()) => Ok(done(
            &state,
            &format!("/projects/{id}"),
            format!("{person} is removed from “{project}”."),
            (),
        )),
        Err(error) => project_page(&state, page, id, Shown::refused(error)).await,
    }
}

async fn view_project_delete(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<ProjectId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    let (project, _) = names(&state, &page, id, None).await?;
    if !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            format!("Delete the project “{project}”?"),
            "Its workflows and credentials are deleted with it, for every member. This cannot be undone.",
            "Delete project",
            &format!("/projects/{id}/delete"),
            &format!("/projects/{id}"),
            &form,
        ));
    }
    match state.usher().delete_project(&page.actor, id, &origin).await {
        Ok(()) => Ok(done(
            &state,
            "/projects",
            format!("Project “{project}” is deleted, with its workflows and credentials."),
            (),
        )),
        Err(error) => project_page(&state, page, id, Shown::refused(error)).await,
    }
}
