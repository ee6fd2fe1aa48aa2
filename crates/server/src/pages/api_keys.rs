//! `/settings/api`: the signed-in user's API keys (create, list, delete).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{get, post},
};
use usher_domain::{model::ApiKeyId, service::api::scopes_for};

use super::{
    Layout, Result, Shown, SignedInPage,
    confirm::{self, Confirmation},
    day, done,
};
use crate::{
    AppState,
    extract::{ClientOrigin, Id},
};

pub fn router(state: &AppState) -> Router<AppState> {
    if state.settings().public_api_disabled {
        return Router::new();
    }
    Router::new()
        .route("/settings/api", get(view_api_get).post(view_api_post))
        .route("/settings/api/{id}/delete", post(view_api_delete))
}

struct KeyRow {
    id: String,
    label: String,
    masked: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/api_keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    scopes: Vec<&'static str>,
    new_key: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// The page; a key just made (`shown.with`) is shown once.
async fn render(state: &AppState, page: SignedInPage, shown: Shown<Option<String>>) -> Result {
    let keys = state.usher().api_keys(&page.actor).await?;
    Ok(KeysPage {
        layout: page.layout.at("/settings/api"),
        keys: keys
            .iter()
            .map(|k| KeyRow {
                id: k.id.to_string(),
                label: k.label.clone(),
                masked: format!("******{}", k.last_chars),
                scopes: if k.scopes.is_empty() {
                    "none".into()
                } else {
                    k.scopes.join(", ")
                },
                created: day(k.created_at),
                expires: k.expires_at.map_or_else(|| "never".into(), day),
                last_used: k.last_used_at.map_or_else(|| "never".into(), day),
            })
            .collect(),
        scopes: scopes_for(page.actor.user.role).to_vec(),
        new_key: shown.with,
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

/// What the page shows once after a key is made: the key itself.
#[derive(serde::Serialize, serde::Deserialize)]
struct NewKey {
    key: String,
}

async fn view_api_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    let new_key = super::flash::once::<NewKey>().map(|new| new.key);
    render(&state, page, Shown::default().with(new_key)).await
}

async fn view_api_post(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Result {
    let value = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let scopes: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let expires = match value("expires").parse::<i64>() {
        Ok(days) if days > 0 => Some(state.usher().now() / 1000 + days * 86_400),
        _ => None,
    };
    let created = state
        .usher()
        .create_api_key(&page.actor, &value("label"), scopes, expires, &origin)
        .await;
    match created {
        Ok(created) => Ok(done(
            &state,
            "/settings/api",
            format!(
                "API key “{}” is created. Copy it now: it is not shown again.",
                value("label").trim()
            ),
            NewKey {
                key: created.raw.expose().to_owned(),
            },
        )),
        Err(error) => render(&state, page, Shown::refused(error)).await,
    }
}

async fn view_api_delete(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<ApiKeyId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    let label = state
        .usher()
        .api_keys(&page.actor)
        .await?
        .into_iter()
        .find(|k| k.id.to_string() == id.to_string())
        .map(|k| k.label)
        .unwrap_or_default();
    if !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            format!("Delete the API key “{label}”?"),
            "Scripts that use it stop working at once. This cannot be undone.",
            "Delete key",
            &format!("/settings/api/{id}/delete"),
            "/settings/api",
            &form,
        ));
    }
    // The service still takes text: service/api.rs moves to ApiKeyId with
    // the storage work.
    let deleted = state
        .usher()
        .delete_api_key(&page.actor, &id.to_string(), &origin)
        .await;
    match deleted {
        Ok(()) => Ok(done(
            &state,
            "/settings/api",
            format!("API key “{label}” is deleted; calls with it now fail."),
            (),
        )),
        Err(error) => render(&state, page, Shown::refused(error)).await,
    }
}
