//! `/settings/api`: the signed-in user's API keys (create, list, delete).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use usher_domain::{
    clock::rfc3339,
    service::{
        api::scopes_for,
        auth::{Actor, Identity},
    },
};

use super::{Layout, PageError};
use crate::{
    AppState,
    error::ApiError,
    extract::{ClientOrigin, Who},
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

fn day(millis: i64) -> String {
    rfc3339(millis).chars().take(10).collect()
}

async fn render(
    state: &AppState,
    identity: &Identity,
    actor: &Actor,
    new_key: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let keys = match state.usher().api_keys(actor).await {
        Ok(keys) => keys,
        Err(e) => return PageError::new(state, Some(identity), e.into()).into_response(),
    };
    let mut layout = Layout::new(state, Some(identity));
    layout.settle_at = Some(state.path("/settings/api"));
    KeysPage {
        layout,
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
        scopes: scopes_for(actor.user.role).to_vec(),
        new_key,
        notice,
        error,
    }
    .into_response()
}

async fn view_api_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    match super::signed_in(&state, &identity, "/settings/api") {
        Ok(actor) => render(&state, &identity, &actor, None, None, None).await,
        Err(response) => response,
    }
}

async fn view_api_post(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/settings/api") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
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
    match state
        .usher()
        .create_api_key(&actor, &value("label"), scopes, expires, &origin)
        .await
    {
        Ok(created) => {
            let notice = "Copy the key now: it is not shown again.".to_owned();
            render(
                &state,
                &identity,
                &actor,
                Some(created.raw.expose().to_owned()),
                Some(notice),
                None,
            )
            .await
        }
        Err(error) => {
            render(
                &state,
                &identity,
                &actor,
                None,
                None,
                Some(ApiError::from(error).message),
            )
            .await
        }
    }
}

async fn view_api_delete(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/settings/api") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state.usher().delete_api_key(&actor, &id, &origin).await {
        Ok(()) => {
            render(
                &state,
                &identity,
                &actor,
                None,
                Some("The key is deleted; calls with it now fail.".into()),
                None,
            )
            .await
        }
        Err(error) => {
            render(
                &state,
                &identity,
                &actor,
                None,
                None,
                Some(ApiError::from(error).message),
            )
            .await
        }
    }
}
