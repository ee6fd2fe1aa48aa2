//! `/home/tags`: the list, creating, renaming and deleting tags.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{get, post},
};
use usher_domain::resources::TagId;

use super::{NameForm, Shown, Typed};
use crate::{
    AppState,
    extract::{ClientOrigin, Id},
    pages::{
        Form, Layout, Result, SignedInPage,
        confirm::{self, Confirmation},
        day, done,
    },
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

async fn tags_page(state: &AppState, page: SignedInPage, shown: Shown) -> Result {
    let tags = state.usher().tags(&page.actor).await?;
    let mut rows: Vec<TagRow> = tags
        .iter()
        .map(|t| TagRow {
            id: t.id.to_string(),
            name: t.name.clone(),
            created: day(t.created_at),
        })
        .collect();
    rows.sort_by_key(|r| r.name.to_lowercase());
    Ok(TagsPage {
        layout: page.layout.at("/home/tags"),
        rows,
        can_admin: page.actor.user.role.manages_users(),
        form: shown.with.form.unwrap_or_default(),
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

async fn view_tags_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    tags_page(&state, page, Shown::default()).await
}

async fn view_tags_create(
    State(state): State<AppState>,
    page: SignedInPage,
    axum::Form(input): axum::Form<NameForm>,
) -> Result {
    match state.usher().create_tag(&page.actor, &input.name).await {
        Ok(tag) => Ok(done(
            &state,
            "/home/tags",
            format!("Tag “{}” is created.", tag.name),
            (),
        )),
        Err(error) => {
            let shown = Shown::default().with(Typed::form(
                Form::default().with("name", input.name).error(error, &[]),
            ));
            tags_page(&state, page, shown).await
        }
    }
}

async fn view_tags_rename(
    State(state): State<AppState>,
    page: SignedInPage,
    Id(id): Id<TagId>,
    axum::Form(input): axum::Form<NameForm>,
) -> Result {
    let before = tag_name(&state, &page, id).await?;
    match state.usher().rename_tag(&page.actor, id, &input.name).await {
        Ok(()) => Ok(done(
            &state,
            "/home/tags",
            format!("Tag “{before}” is now called “{}”.", input.name.trim()),
            (),
        )),
        Err(error) => tags_page(&state, page, Shown::refused(error)).await,
    }
}

async fn view_tags_delete(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<TagId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    let name = tag_name(&state, &page, id).await?;
    if !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            format!("Delete the tag “{name}”?"),
            "It goes from every workflow that has it. This cannot be undone.",
            "Delete tag",
            &format!("/home/tags/{id}/delete"),
            "/home/tags",
            &form,
        ));
    }
    match state.usher().delete_tag(&page.actor, id, &origin).await {
        Ok(()) => Ok(done(
            &state,
            "/home/tags",
            format!("Tag “{name}” is deleted."),
            (),
        )),
        Err(error) => tags_page(&state, page, Shown::refused(error)).await,
    }
}

/// A tag's name, for the notices and questions about it.
async fn tag_name(state: &AppState, page: &SignedInPage, id: TagId) -> Result<String> {
    let tags = state.usher().tags(&page.actor).await?;
    Ok(tags
        .into_iter()
        .find(|t| t.id == id)
        .map(|t| t.name)
        .unwrap_or_default())
}
