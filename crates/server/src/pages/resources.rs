//! The work pages: `/home/workflows`, `/workflows/<id>`, `/home/credentials`,
//! `/home/tags`, `/projects` and `/projects/<id>`.
//!
//! Who may do what is the domain's to say
//! ([`usher_domain::service::resources`]): a page lists what the services
//! return and hides the forms the services would refuse, and a post that is
//! refused anyway shows the services' message.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    Error,
    model::User,
    resources::{Project, ProjectKind, ProjectRole},
    service::{
        auth::{Actor, Identity},
        resources::{Access, WorkflowChange, WorkflowView},
    },
};

use super::{Form, Layout, PageError, users::day};
use crate::{
    AppState,
    error::ApiError,
    extract::{ClientOrigin, Who},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/home/workflows",
            get(view_workflows_get).post(view_workflows_create),
        )
        .route("/workflows/{id}", get(view_workflow_get))
        .route("/workflows/{id}/rename", post(view_workflow_rename))
        .route("/workflows/{id}/active", post(view_workflow_active))
        .route("/workflows/{id}/tags", post(view_workflow_tags))
        .route("/workflows/{id}/delete", post(view_workflow_delete))
        .route(
            "/home/credentials",
            get(view_credentials_get).post(view_credentials_create),
        )
        .route(
            "/home/credentials/{id}/delete",
            post(view_credentials_delete),
        )
        .route("/home/tags", get(view_tags_get).post(view_tags_create))
        .route("/home/tags/{id}/rename", post(view_tags_rename))
        .route("/home/tags/{id}/delete", post(view_tags_delete))
        .route(
            "/projects",
            get(view_projects_get).post(view_projects_create),
        )
        .route("/projects/{id}", get(view_project_get))
        .route("/projects/{id}/members", post(view_project_member))
        .route(
            "/projects/{id}/members/{user}/remove",
            post(view_project_remove),
        )
}

// ------------------------------------------------------------------- shared

fn page_error(state: &AppState, identity: &Identity, error: impl Into<ApiError>) -> Response {
    PageError::new(state, Some(identity), error.into()).into_response()
}

/// A page that cannot show `what`, with a way back to the list.
fn not_shown(state: &AppState, identity: &Identity, error: Error, back: (&str, &str)) -> Response {
    let mut page = PageError::new(state, Some(identity), error.into());
    page.page.next = Some((state.path(back.0), back.1.to_owned()));
    page.into_response()
}

/// What a post adds to the page it shows next.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    error: Option<String>,
    /// The form posted, with its values and errors, when it failed.
    form: Option<Form>,
    /// The project chosen in a create form.
    project: Option<String>,
    /// A credential's data as typed, and what is wrong with it.
    data: Option<String>,
    data_error: Option<String>,
}

impl Shown {
    fn notice(text: impl Into<String>) -> Self {
        Self {
            notice: Some(text.into()),
            ..Self::default()
        }
    }

    fn error(error: impl Into<ApiError>) -> Self {
        Self {
            error: Some(error.into().message),
            ..Self::default()
        }
    }

    /// The notice on success, the services' message otherwise.
    fn of<T>(result: usher_domain::Result<T>, notice: impl FnOnce(T) -> String) -> Self {
        match result {
            Ok(value) => Self::notice(notice(value)),
            Err(error) => Self::error(error),
        }
    }
}

/// Who a project belongs to, in words: a personal project's user (by email),
/// or a team project's name.
pub(super) fn project_label(project: &Project, everyone: &[User]) -> String {
    project
        .personal_owner
        .and_then(|id| everyone.iter().find(|u| u.id == id))
        .and_then(|u| u.email.as_ref().map(|e| e.to_string()))
        .unwrap_or_else(|| project.name.clone())
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
            label: if own(p) {
                format!("{} (yours)", project_label(p, everyone))
            } else {
                project_label(p, everyone)
            },
            selected: match &chosen {
                Some(id) => p.id.to_string() == *id,
                None => own(p),
            },
        })
        .collect())
}

// ---------------------------------------------------------------- workflows

struct WorkflowRow {
    id: String,
    name: String,
    owner: String,
    active: bool,
    tags: String,
    updated: String,
}

fn workflow_rows(views: &[WorkflowView], everyone: &[User]) -> Vec<WorkflowRow> {
    let mut rows: Vec<WorkflowRow> = views
        .iter()
        .map(|view| {
            let w = &view.workflow;
            WorkflowRow {
                id: w.id.to_string(),
                name: w.name.clone(),
                owner: project_label(&view.project, everyone),
                active: w.active,
                tags: w
                    .tags
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                updated: day(w.updated_at),
            }
        })
        .collect();
    rows.sort_by_key(|r| r.name.to_lowercase());
    rows
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/workflows.html")]
struct WorkflowsPage {
    layout: Layout,
    sees_all: bool,
    rows: Vec<WorkflowRow>,
    projects: Vec<ProjectOption>,
    form: Form,
    notice: Option<String>,
    error: Option<String>,
}

async fn workflows_page(
    state: &AppState,
    identity: &Identity,
    actor: &Actor,
    shown: Shown,
) -> Response {
    let usher = state.usher();
    let loaded = async {
        let everyone = usher.users(actor).await?;
        let views = usher.workflows(actor).await?;
        let projects = writable_projects(state, actor, &everyone, shown.project.as_deref()).await?;
        Ok::<_, Error>((workflow_rows(&views, &everyone), projects))
    };
    let (rows, projects) = match loaded.await {
        Ok(loaded) => loaded,
        Err(error) => return page_error(state, identity, error),
    };
    let mut layout = Layout::new(state, Some(identity));
    layout.settle_at = Some(state.path("/home/workflows"));
    WorkflowsPage {
        layout,
        sees_all: actor.user.role.manages_users(),
        rows,
        projects,
        form: shown.form.unwrap_or_default(),
        notice: shown.notice,
        error: shown.error,
    }
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DoneQuery {
    deleted: Option<String>,
    created: Option<String>,
}

async fn view_workflows_get(
    State(state): State<AppState>,
    Who(identity): Who,
    Query(query): Query<DoneQuery>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/home/workflows") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let shown = match query.deleted {
        Some(_) => Shown::notice("The workflow is deleted."),
        None => Shown::default(),
    };
    workflows_page(&state, &identity, &actor, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CreateWorkflowForm {
    name: String,
    project_id: String,
}

async fn view_workflows_create(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<CreateWorkflowForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/home/workflows") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = state
        .usher()
        .create_workflow(
            &actor,
            &input.name,
            Some(&input.project_id),
            WorkflowChange::default(),
            &origin,
        )
        .await;
    let shown = match result {
        Ok(view) => Shown::notice(format!(
            "The workflow {} is created in {}.",
            view.workflow.name, view.project.name
        )),
        Err(error) => Shown {
            form: Some(Form::default().with("name", input.name).error(error, &[])),
            project: Some(input.project_id),
            ..Shown::default()
        },
    };
    workflows_page(&state, &identity, &actor, shown).await
}

struct TagChoice {
    id: String,
    name: String,
    checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/workflow.html")]
struct WorkflowPage {
    layout: Layout,
    id: String,
    name: String,
    owner: String,
    project_id: String,
    active: bool,
    tag_names: String,
    tags: Vec<TagChoice>,
    access: &'static str,
    can_edit: bool,
    created: String,
    updated: String,
    form: Form,
    notice: Option<String>,
    error: Option<String>,
}

async fn workflow_page(
    state: &AppState,
    identity: &Identity,
    actor: &Actor,
    id: &str,
    shown: Shown,
) -> Response {
    let usher = state.usher();
    let view = match usher.workflow(actor, id).await {
        Ok(view) => view,
        Err(error) => {
            return not_shown(
                state,
                identity,
                error,
                ("/home/workflows", "Back to the workflows"),
            );
        }
    };
    let loaded = async { Ok::<_, Error>((usher.users(actor).await?, usher.tags(actor).await?)) };
    let (everyone, all_tags) = match loaded.await {
        Ok(loaded) => loaded,
        Err(error) => return page_error(state, identity, error),
    };
    let w = &view.workflow;
    let mut tags: Vec<TagChoice> = all_tags
        .iter()
        .map(|t| TagChoice {
            id: t.id.to_string(),
            name: t.name.clone(),
            checked: w.tags.iter().any(|mine| mine.id == t.id),
        })
        .collect();
    tags.sort_by_key(|t| t.name.to_lowercase());
    // A failed rename shows what was typed; otherwise the current name.
    let form = shown
        .form
        .unwrap_or_else(|| Form::default().with("name", w.name.clone()));
    let mut layout = Layout::new(state, Some(identity));
    layout.settle_at = Some(state.path(&format!("/workflows/{}", w.id)));
    WorkflowPage {
        layout,
        id: w.id.to_string(),
        name: w.name.clone(),
        owner: project_label(&view.project, &everyone),
        project_id: view.project.id.to_string(),
        active: w.active,
        tag_names: w
            .tags
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        tags,
        access: access_label(view.access),
        can_edit: view.access >= Access::Write,
        created: day(w.created_at),
        updated: day(w.updated_at),
        form,
        notice: shown.notice,
        error: shown.error,
    }
    .into_response()
}

async fn view_workflow_get(
    State(state): State<AppState>,
    Who(identity): Who,
    Path(id): Path<String>,
) -> Response {
    match super::signed_in(&state, &identity, &format!("/workflows/{id}")) {
        Ok(actor) => workflow_page(&state, &identity, &actor, &id, Shown::default()).await,
        Err(response) => response,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameForm {
    name: String,
}

async fn view_workflow_rename(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    axum::Form(input): axum::Form<NameForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/workflows/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let change = WorkflowChange {
        name: Some(input.name.clone()),
        ..WorkflowChange::default()
    };
    let shown = match state
        .usher()
        .update_workflow(&actor, &id, change, &origin)
        .await
    {
        Ok(view) => Shown::notice(format!(
            "The workflow is now called {}.",
            view.workflow.name
        )),
        Err(error @ Error::InvalidField { .. }) => Shown {
            form: Some(Form::default().with("name", input.name).error(error, &[])),
            ..Shown::default()
        },
        Err(error) => Shown::error(error),
    };
    workflow_page(&state, &identity, &actor, &id, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ActiveForm {
    active: String,
}

async fn view_workflow_active(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    axum::Form(input): axum::Form<ActiveForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/workflows/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let change = WorkflowChange {
        active: Some(input.active == "true"),
        ..WorkflowChange::default()
    };
    let result = state
        .usher()
        .update_workflow(&actor, &id, change, &origin)
        .await;
    let shown = Shown::of(result, |view| {
        if view.workflow.active {
            "The workflow is active.".to_owned()
        } else {
            "The workflow is inactive.".to_owned()
        }
    });
    workflow_page(&state, &identity, &actor, &id, shown).await
}

/// The checked tags: `tag=<id>` once per box (a list, which a struct form
/// cannot hold).
async fn view_workflow_tags(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/workflows/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let change = WorkflowChange {
        tag_ids: Some(
            pairs
                .into_iter()
                .filter(|(name, _)| name == "tag")
                .map(|(_, value)| value)
                .collect(),
        ),
        ..WorkflowChange::default()
    };
    let result = state
        .usher()
        .update_workflow(&actor, &id, change, &origin)
        .await;
    let shown = Shown::of(result, |view| {
        if view.workflow.tags.is_empty() {
            "The workflow has no tags now.".to_owned()
        } else {
            "The tags are saved.".to_owned()
        }
    });
    workflow_page(&state, &identity, &actor, &id, shown).await
}

async fn view_workflow_delete(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/workflows/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state.usher().delete_workflow(&actor, &id, &origin).await {
        Ok(()) => Redirect::to(&state.path("/home/workflows?deleted=1")).into_response(),
        Err(error) => workflow_page(&state, &identity, &actor, &id, Shown::error(error)).await,
    }
}

// -------------------------------------------------------------- credentials

struct CredentialRow {
    id: String,
    name: String,
    kind: String,
    owner: String,
    updated: String,
    can_delete: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/credentials.html")]
struct CredentialsPage {
    layout: Layout,
    rows: Vec<CredentialRow>,
    projects: Vec<ProjectOption>,
    form: Form,
    data: String,
    data_error: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn credentials_page(
    state: &AppState,
    identity: &Identity,
    actor: &Actor,
    shown: Shown,
) -> Response {
    let usher = state.usher();
    let loaded = async {
        let everyone = usher.users(actor).await?;
        let views = usher.credentials(actor).await?;
        let projects = writable_projects(state, actor, &everyone, shown.project.as_deref()).await?;
        Ok::<_, Error>((everyone, views, projects))
    };
    let (everyone, views, projects) = match loaded.await {
        Ok(loaded) => loaded,
        Err(error) => return page_error(state, identity, error),
    };
    let mut rows: Vec<CredentialRow> = views
        .iter()
        .map(|view| {
            let c = &view.credential;
            CredentialRow {
                id: c.id.to_string(),
                name: c.name.clone(),
                kind: c.kind.clone(),
                owner: project_label(&view.project, &everyone),
                updated: day(c.updated_at),
                can_delete: view.access >= Access::Write,
            }
        })
        .collect();
    rows.sort_by_key(|r| r.name.to_lowercase());
    let mut layout = Layout::new(state, Some(identity));
    layout.settle_at = Some(state.path("/home/credentials"));
    CredentialsPage {
        layout,
        rows,
        projects,
        form: shown.form.unwrap_or_default(),
        data: shown.data.unwrap_or_else(|| "{}".to_owned()),
        data_error: shown.data_error,
        notice: shown.notice,
        error: shown.error,
    }
    .into_response()
}

async fn view_credentials_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    match super::signed_in(&state, &identity, "/home/credentials") {
        Ok(actor) => credentials_page(&state, &identity, &actor, Shown::default()).await,
        Err(response) => response,
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CreateCredentialForm {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    project_id: String,
    data: String,
}

async fn view_credentials_create(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<CreateCredentialForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/home/credentials") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let text = input.data.trim();
    let parsed = if text.is_empty() {
        Ok(serde_json::json!({}))
    } else {
        serde_json::from_str::<serde_json::Value>(text)
    };
    let result = match parsed {
        Ok(data) => {
            state
                .usher()
                .create_credential(
                    &actor,
                    &input.name,
                    &input.kind,
                    Some(&input.project_id),
                    data,
                    &origin,
                )
                .await
        }
        Err(error) => Err(Error::field(
            "data",
            format!(
                "This is not valid JSON ({error}). Credential data is a JSON object, e.g. {{\"apiKey\": \"…\"}}."
            ),
        )),
    };
    let shown = match result {
        Ok(view) => Shown::notice(format!(
            "The credential {} is created in {}.",
            view.credential.name, view.project.name
        )),
        Err(error) => {
            let form = Form::default()
                .with("name", input.name)
                .with("type", input.kind);
            let (form, data_error) = if error.field_name() == Some("data") {
                (form, Some(ApiError::from(error).message))
            } else {
                (form.error(error, &[]), None)
            };
            Shown {
                form: Some(form),
                project: Some(input.project_id),
                data: Some(input.data),
                data_error,
                ..Shown::default()
            }
        }
    };
    credentials_page(&state, &identity, &actor, shown).await
}

async fn view_credentials_delete(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/home/credentials") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = state.usher().delete_credential(&actor, &id, &origin).await;
    let shown = Shown::of(result, |()| "The credential is deleted.".to_owned());
    credentials_page(&state, &identity, &actor, shown).await
}

// --------------------------------------------------------------------- tags

struct TagRow {
    id: String,
    name: String,
    created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/tags.html")]
struct TagsPage {
    layout: Layout,
    rows: Vec<TagRow>,
    /// Renaming and deleting are for the owner and admins: the buttons show
    /// for them only (the service refuses everyone else).
    can_admin: bool,
    form: Form,
    notice: Option<String>,
    error: Option<String>,
}

async fn tags_page(state: &AppState, identity: &Identity, actor: &Actor, shown: Shown) -> Response {
    let tags = match state.usher().tags(actor).await {
        Ok(tags) => tags,
        Err(error) => return page_error(state, identity, error),
    };
    let mut rows: Vec<TagRow> = tags
        .iter()
        .map(|t| TagRow {
            id: t.id.to_string(),
            name: t.name.clone(),
            created: day(t.created_at),
        })
        .collect();
    rows.sort_by_key(|r| r.name.to_lowercase());
    let mut layout = Layout::new(state, Some(identity));
    layout.settle_at = Some(state.path("/home/tags"));
    TagsPage {
        layout,
        rows,
        can_admin: actor.user.role.manages_users(),
        form: shown.form.unwrap_or_default(),
        notice: shown.notice,
        error: shown.error,
    }
    .into_response()
}

async fn view_tags_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    match super::signed_in(&state, &identity, "/home/tags") {
        Ok(actor) => tags_page(&state, &identity, &actor, Shown::default()).await,
        Err(response) => response,
    }
}

async fn view_tags_create(
    State(state): State<AppState>,
    Who(identity): Who,
    axum::Form(input): axum::Form<NameForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/home/tags") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let shown = match state.usher().create_tag(&actor, &input.name).await {
        Ok(tag) => Shown::notice(format!("The tag {} is created.", tag.name)),
        Err(error) => Shown {
            form: Some(Form::default().with("name", input.name).error(error, &[])),
            ..Shown::default()
        },
    };
    tags_page(&state, &identity, &actor, shown).await
}

async fn view_tags_rename(
    State(state): State<AppState>,
    Who(identity): Who,
    Path(id): Path<String>,
    axum::Form(input): axum::Form<NameForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/home/tags") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = state.usher().rename_tag(&actor, &id, &input.name).await;
    let shown = Shown::of(result, |()| {
        format!("The tag is now called {}.", input.name.trim())
    });
    tags_page(&state, &identity, &actor, shown).await
}

async fn view_tags_delete(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/home/tags") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = state.usher().delete_tag(&actor, &id, &origin).await;
    let shown = Shown::of(result, |()| "The tag is deleted.".to_owned());
    tags_page(&state, &identity, &actor, shown).await
}

// ----------------------------------------------------------------- projects

pub(super) fn kind_label(kind: ProjectKind) -> &'static str {
    match kind {
        ProjectKind::Personal => "Personal",
        ProjectKind::Team => "Team",
    }
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

async fn projects_page(
    state: &AppState,
    identity: &Identity,
    actor: &Actor,
    shown: Shown,
) -> Response {
    let usher = state.usher();
    let loaded =
        async { Ok::<_, Error>((usher.users(actor).await?, usher.projects(actor).await?)) };
    let (everyone, projects) = match loaded.await {
        Ok(loaded) => loaded,
        Err(error) => return page_error(state, identity, error),
    };
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
    let mut layout = Layout::new(state, Some(identity));
    layout.settle_at = Some(state.path("/projects"));
    ProjectsPage {
        layout,
        rows: rows.into_iter().map(|(_, row)| row).collect(),
        can_create: actor.user.role.manages_users(),
        form: shown.form.unwrap_or_default(),
        notice: shown.notice,
        error: shown.error,
    }
    .into_response()
}

async fn view_projects_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    match super::signed_in(&state, &identity, "/projects") {
        Ok(actor) => projects_page(&state, &identity, &actor, Shown::default()).await,
        Err(response) => response,
    }
}

async fn view_projects_create(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<NameForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/projects") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state
        .usher()
        .create_project(&actor, &input.name, &origin)
        .await
    {
        // Its page is where members are added, the next thing to do.
        Ok(project) => Redirect::to(&state.path(&format!("/projects/{}?created=1", project.id)))
            .into_response(),
        Err(error) => {
            let shown = Shown {
                form: Some(Form::default().with("name", input.name).error(error, &[])),
                ..Shown::default()
            };
            projects_page(&state, &identity, &actor, shown).await
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

struct UserOption {
    id: String,
    label: String,
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
    members: Vec<MemberRow>,
    candidates: Vec<UserOption>,
    workflows: Vec<WorkflowRow>,
    notice: Option<String>,
    error: Option<String>,
}

async fn project_page(
    state: &AppState,
    identity: &Identity,
    actor: &Actor,
    id: &str,
    shown: Shown,
) -> Response {
    let usher = state.usher();
    let (project, access, members) = match usher.project(actor, id).await {
        Ok(found) => found,
        Err(error) => {
            return not_shown(
                state,
                identity,
                error,
                ("/projects", "Back to the projects"),
            );
        }
    };
    let loaded =
        async { Ok::<_, Error>((usher.users(actor).await?, usher.workflows(actor).await?)) };
    let (everyone, views) = match loaded.await {
        Ok(loaded) => loaded,
        Err(error) => return page_error(state, identity, error),
    };
    let views: Vec<WorkflowView> = views
        .into_iter()
        .filter(|v| v.project.id == project.id)
        .collect();
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
    let mut candidates: Vec<UserOption> = everyone
        .iter()
        .filter(|u| !u.is_owner_shell())
        .map(|u| UserOption {
            id: u.id.to_string(),
            label: match &u.email {
                Some(email) if u.display_name() != email.to_string() => {
                    format!("{} ({email})", u.display_name())
                }
                _ => u.display_name(),
            },
        })
        .collect();
    candidates.sort_by_key(|c| c.label.to_lowercase());
    let mut layout = Layout::new(state, Some(identity));
    layout.settle_at = Some(state.path(&format!("/projects/{}", project.id)));
    ProjectPage {
        layout,
        id: project.id.to_string(),
        name: project_label(&project, &everyone),
        kind: kind_label(project.kind),
        is_team,
        access: access_label(access),
        // Personal projects have one member: the service refuses others.
        can_manage: access >= Access::Manage && is_team,
        members,
        candidates,
        workflows: workflow_rows(&views, &everyone),
        notice: shown.notice,
        error: shown.error,
    }
    .into_response()
}

async fn view_project_get(
    State(state): State<AppState>,
    Who(identity): Who,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/projects/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let shown = match query.created {
        Some(_) => Shown::notice("The project is created. Add its members below."),
        None => Shown::default(),
    };
    project_page(&state, &identity, &actor, &id, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MemberForm {
    user_id: String,
    role: String,
}

fn role_label(role: &str) -> String {
    ProjectRole::parse(role).map_or_else(|| role.to_owned(), |r| r.label().to_lowercase())
}

async fn view_project_member(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    axum::Form(input): axum::Form<MemberForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/projects/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = state
        .usher()
        .set_project_member(&actor, &id, &input.user_id, &input.role, &origin)
        .await;
    let shown = Shown::of(result, |()| {
        format!(
            "Saved: the member is {} of this project.",
            role_label(&input.role)
        )
    });
    project_page(&state, &identity, &actor, &id, shown).await
}

async fn view_project_remove(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path((id, user)): Path<(String, String)>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/projects/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = state
        .usher()
        .remove_project_member(&actor, &id, &user, &origin)
        .await;
    let shown = Shown::of(result, |()| {
        "The member is removed from the project.".to_owned()
    });
    project_page(&state, &identity, &actor, &id, shown).await
}
