//! `/home/tags`: the list, creating, renaming and deleting tags.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use usher_domain::service::auth::{Actor, Identity};

use super::{NameForm, Shown, page_error};
use crate::{
    AppState,
    extract::{ClientOrigin, Who},
    pages::{Form, Layout, users::day},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/home/tags", get(view_tags_get).post(view_tags_create))
        .route("/home/tags/{id}/rename", post(view_tags_rename))
        .route("/home/tags/{id}/delete", post(view_tags_delete))
}

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
    match crate::pages::signed_in(&state, &identity, "/home/tags") {
        Ok(actor) => tags_page(&state, &identity, &actor, Shown::default()).await,
        Err(response) => response,
    }
}

async fn view_tags_create(
    State(state): State<AppState>,
    Who(identity): Who,
    axum::Form(input): axum::Form<NameForm>,
) -> Response {
    let actor = match crate::pages::signed_in(&state, &identity, "/home/tags") {
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
    let actor = match crate::pages::signed_in(&state, &identity, "/home/tags") {
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
    let actor = match crate::pages::signed_in(&state, &identity, "/home/tags") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = state.usher().delete_tag(&actor, &id, &origin).await;
    let shown = Shown::of(result, |()| "The tag is deleted.".to_owned());
    tags_page(&state, &identity, &actor, shown).await
}

// ----------------------------------------------------------------- projects
