//! `/home/credentials`: the list, creating one, deleting one.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{Error, resources::CredentialId, service::resources::Access};

use super::{
    ProjectOption, Shown, Typed, notice_label, owners_of, project_label, writable_projects,
};
use crate::{
    AppState,
    extract::{ClientOrigin, Id, optional_id},
    pages::{
        Form, Layout, Result, SignedInPage,
        confirm::{self, Confirmation},
        day, done, refused,
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/home/credentials",
            get(view_credentials_get).post(view_credentials_create),
        )
        .route(
            "/home/credentials/{id}/delete",
            post(view_credentials_delete),
        )
}

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

async fn credentials_page(state: &AppState, page: SignedInPage, shown: Shown) -> Result {
    let (usher, actor) = (state.usher(), &page.actor);
    let views = usher.credentials(actor).await?;
    let everyone = owners_of(state, actor, views.iter().map(|v| &v.project)).await?;
    let projects = writable_projects(state, actor, shown.with.project.as_deref()).await?;
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
    Ok(CredentialsPage {
        layout: page.layout.at("/home/credentials"),
        rows,
        projects,
        form: shown.with.form.unwrap_or_default(),
        data: shown.with.data.unwrap_or_else(|| "{}".to_owned()),
        data_error: shown.with.data_error,
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

async fn view_credentials_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    credentials_page(&state, page, Shown::default()).await
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
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<CreateCredentialForm>,
) -> Result {
    let text = input.data.trim();
    let parsed = if text.is_empty() {
        Ok(serde_json::json!({}))
    } else {
        serde_json::from_str::<serde_json::Value>(text)
    };
    let result = async {
        let data = parsed.map_err(|error| Error::field(
            "data",
            format!(
                "This is not valid JSON ({error}). Credential data is a JSON object, e.g. {{\"apiKey\": \"…\"}}."
            ),
        ))?;
        let project = optional_id(Some(&input.project_id))?;
        state
            .usher()
            .create_credential(&page.actor, &input.name, &input.kind, project, data, &origin)
            .await
    }
    .await;
    let shown = match result {
        Ok(view) => {
            let notice = format!(
                "Credential “{}” is created in {}.",
                view.credential.name,
                notice_label(&state, &page.actor, &view.project).await?
            );
            return Ok(done(&state, "/home/credentials", notice, ()));
        }
        Err(error) => {
            let form = Form::default()
                .with("name", input.name)
                .with("type", input.kind);
            let (form, data_error) = if error.field_name() == Some("data") {
                (form, Some(refused(error)))
            } else {
                (form.error(error, &[]), None)
            };
            Shown::default().with(Typed {
                form: Some(form),
                project: Some(input.project_id),
                data: Some(input.data),
                data_error,
                ..Typed::default()
            })
        }
    };
    credentials_page(&state, page, shown).await
}

async fn view_credentials_delete(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<CredentialId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    let name = state
        .usher()
        .credentials(&page.actor)
        .await?
        .into_iter()
        .find(|view| view.credential.id == id)
        .map(|view| view.credential.name);
    // One the visitor cannot see is not asked about: the service refuses.
    if let Some(name) = name.as_deref()
        && !form.confirmed()
    {
        return Ok(confirm::ask(
            page.layout,
            format!("Delete the credential “{name}”?"),
            "Workflows that use it stop working. This cannot be undone.",
            "Delete credential",
            &format!("/home/credentials/{id}/delete"),
            "/home/credentials",
            &form,
        ));
    }
    let result = state
        .usher()
        .delete_credential(&page.actor, id, &origin)
        .await;
    match result {
        Ok(()) => Ok(done(
            &state,
            "/home/credentials",
            format!("Credential “{}” is deleted.", name.unwrap_or_default()),
            (),
        )),
        Err(error) => credentials_page(&state, page, Shown::refused(error)).await,
    }
}
