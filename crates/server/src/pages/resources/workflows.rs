//! `/home/workflows` (the list, and creating one) and `/workflows/<id>`.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    Error,
    model::User,
    resources::WorkflowId,
    service::resources::{Access, WorkflowChange, WorkflowView},
};

use super::{
    NameForm, ProjectOption, Shown, Typed, access_label, notice_label, owners_of, project_label,
    writable_projects,
};
use crate::{
    AppState,
    extract::{ClientOrigin, Id, optional_id},
    pages::{
        Form, Layout, PageError, Result, SignedInPage,
        confirm::{self, Confirmation},
        day, done,
    },
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
}

pub(super) struct WorkflowRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub active: bool,
    pub tags: String,
    pub updated: String,
}

pub(super) fn workflow_rows(views: &[WorkflowView], owners: &[User]) -> Vec<WorkflowRow> {
    let mut rows: Vec<WorkflowRow> = views
        .iter()
        .map(|view| {
            let w = &view.workflow;
            WorkflowRow {
                id: w.id.to_string(),
                name: w.name.clone(),
                owner: project_label(&view.project, owners),
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

async fn workflows_page(state: &AppState, page: SignedInPage, shown: Shown) -> Result {
    let (usher, actor) = (state.usher(), &page.actor);
    let views = usher.workflows(actor).await?;
    let everyone = owners_of(state, actor, views.iter().map(|v| &v.project)).await?;
    let projects = writable_projects(state, actor, shown.with.project.as_deref()).await?;
    Ok(WorkflowsPage {
        layout: page.layout.at("/home/workflows"),
        sees_all: actor.user.role.manages_users(),
        rows: workflow_rows(&views, &everyone),
        projects,
        form: shown.with.form.unwrap_or_default(),
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

async fn view_workflows_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    workflows_page(&state, page, Shown::default()).await
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CreateWorkflowForm {
    name: String,
    project_id: String,
}

async fn view_workflows_create(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<CreateWorkflowForm>,
) -> Result {
    let result = async {
        let project = optional_id(Some(&input.project_id))?;
        let usher = state.usher();
        let change = WorkflowChange::default();
        usher
            .create_workflow(&page.actor, &input.name, project, change, &origin)
            .await
    }
    .await;
    let shown = match result {
        Ok(view) => {
            let notice = format!(
                "Workflow “{}” is created in {}.",
                view.workflow.name,
                notice_label(&state, &page.actor, &view.project).await?
            );
            return Ok(done(&state, "/home/workflows", notice, ()));
        }
        Err(error) => Shown::default().with(Typed {
            form: Some(Form::default().with("name", input.name).error(error, &[])),
            project: Some(input.project_id),
            ..Typed::default()
        }),
    };
    workflows_page(&state, page, shown).await
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
    page: SignedInPage,
    id: WorkflowId,
    shown: Shown,
) -> Result {
    let (usher, actor) = (state.usher(), &page.actor);
    let view = usher.workflow(actor, id).await.map_err(|error| {
        PageError::from(error).with_next("/home/workflows", "Back to the workflows")
    })?;
    let everyone = owners_of(state, actor, [&view.project]).await?;
    let all_tags = usher.tags(actor).await?;
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
        .with
        .form
        .unwrap_or_else(|| Form::default().with("name", w.name.clone()));
    Ok(WorkflowPage {
        layout: page.layout.at(&format!("/workflows/{}", w.id)),
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
    .into_response())
}

async fn view_workflow_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Id(id): Id<WorkflowId>,
) -> Result {
    workflow_page(&state, page, id, Shown::default()).await
}

async fn view_workflow_rename(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<WorkflowId>,
    axum::Form(input): axum::Form<NameForm>,
) -> Result {
    let change = WorkflowChange {
        name: Some(input.name.clone()),
        ..WorkflowChange::default()
    };
    let shown = match state
        .usher()
        .update_workflow(&page.actor, id, change, &origin)
        .await
    {
        Ok(view) => {
            let notice = format!("The workflow is now called “{}”.", view.workflow.name);
            return Ok(done(&state, &format!("/workflows/{id}"), notice, ()));
        }
        Err(error @ Error::InvalidField { .. }) => Shown::default().with(Typed::form(
            Form::default().with("name", input.name).error(error, &[]),
        )),
        Err(error) => Shown::refused(error),
    };
    workflow_page(&state, page, id, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ActiveForm {
    active: String,
}

async fn view_workflow_active(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<WorkflowId>,
    axum::Form(input): axum::Form<ActiveForm>,
) -> Result {
    let change = WorkflowChange {
        active: Some(input.active == "true"),
        ..WorkflowChange::default()
    };
    let result = state
        .usher()
        .update_workflow(&page.actor, id, change, &origin)
        .await;
    match result {
        Ok(view) => {
            let w = &view.workflow;
            let state_word = if w.active { "active" } else { "inactive" };
            let notice = format!("Workflow “{}” is {state_word}.", w.name);
            Ok(done(&state, &format!("/workflows/{id}"), notice, ()))
        }
        Err(error) => workflow_page(&state, page, id, Shown::refused(error)).await,
    }
}

/// The checked tags: `tag=<id>` once per box (a list, which a struct form
/// cannot hold).
async fn view_workflow_tags(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<WorkflowId>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result {
    let result = async {
        let tag_ids = pairs
            .iter()
            .filter(|(name, _)| name == "tag")
            .map(|(_, value)| value.parse())
            .collect::<usher_domain::Result<_>>()?;
        let change = WorkflowChange {
            tag_ids: Some(tag_ids),
            ..WorkflowChange::default()
        };
        let usher = state.usher();
        usher
            .update_workflow(&page.actor, id, change, &origin)
            .await
    }
    .await;
    match result {
        Ok(view) => {
            let w = &view.workflow;
            let names: Vec<&str> = w.tags.iter().map(|t| t.name.as_str()).collect();
            let notice = if names.is_empty() {
                format!("Workflow “{}” has no tags now.", w.name)
            } else {
                format!("Workflow “{}” is tagged {}.", w.name, names.join(", "))
            };
            Ok(done(&state, &format!("/workflows/{id}"), notice, ()))
        }
        Err(error) => workflow_page(&state, page, id, Shown::refused(error)).await,
    }
}

async fn view_workflow_delete(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<WorkflowId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    let view = state.usher().workflow(&page.actor, id).await?;
    let name = view.workflow.name;
    // Who may not delete it is not asked: the service refuses.
    if view.access >= Access::Write && !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            format!("Delete the workflow “{name}”?"),
            "It is gone for everyone who shares it. This cannot be undone.",
            "Delete workflow",
            &format!("/workflows/{id}/delete"),
            &format!("/workflows/{id}"),
            &form,
        ));
    }
    match state
        .usher()
        .delete_workflow(&page.actor, id, &origin)
        .await
    {
        Ok(()) => Ok(done(
            &state,
            "/home/workflows",
            format!("Workflow “{name}” is deleted."),
            (),
        )),
        Err(error) => workflow_page(&state, page, id, Shown::refused(error)).await,
    }
}
