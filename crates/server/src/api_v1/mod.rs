//! `/api/v1`: n8n's public API for users (spec 003), with API keys sent as
//! `X-N8N-API-KEY: <key>` or `Authorization: Bearer <key>`. Answers are not
//! wrapped in `{"data": …}`, as in n8n; errors have Usher's one shape.
//!
//! - [`openapi`]: the OpenAPI 3 document of these operations (JSON and
//!   YAML) and its page.
//! - [`validate`]: the layer that refuses, before any handler, what the
//!   document does not allow (n8n's validator's answers).
//!
//! People make their keys on `/settings/api` (`pages::api_keys`).

pub mod openapi;
pub mod validate;

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    extract::{FromRequestParts, Path, Query, State},
    http::{StatusCode, header, request::Parts},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, patch},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use usher_domain::{
    clock::rfc3339,
    model::User,
    service::{api::ApiCaller, invitations::InviteRequest},
};

use crate::{
    AppState,
    error::{ApiError, Result},
    extract::{ClientOrigin, Json},
};

pub fn router(state: &AppState) -> Router<AppState> {
    if state.settings().public_api_disabled {
        return Router::new();
    }
    // The checks come from the very document `/openapi.json` serves.
    let checks = Arc::new(validate::Checks::from_document(openapi::spec(
        &state.settings().base_url,
    )));
    let layer_state = state.clone();
    Router::new()
        .route("/users", get(list_users).post(create_users))
        .route("/users/{id}", get(get_user).delete(delete_user))
        .route("/users/{id}/role", patch(change_role))
        .route("/openapi.json", get(openapi::document))
        .route("/openapi.yml", get(openapi::yaml_document))
        .route("/docs", get(openapi::page))
        .route("/docs/", get(openapi::page))
        .layer(middleware::from_fn(move |request, next| {
            validate::layer(layer_state.clone(), checks.clone(), request, next)
        }))
}

/// The API key the request presents, as `X-N8N-API-KEY: <key>` or
/// `Authorization: Bearer <key>`; not yet looked up.
pub struct PresentedKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for PresentedKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header_key = parts
            .headers
            .get("x-n8n-api-key")
            .and_then(|v| v.to_str().ok());
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        Ok(PresentedKey(header_key.or(bearer).map(str::to_owned)))
    }
}

/// The caller behind the request's API key.
pub struct Caller(pub ApiCaller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The validator looked the key up already, for every operation of
        // the document.
        if let Some(validate::Verified(caller)) = parts.extensions.remove() {
            return Ok(Caller(caller));
        }
        let Ok(PresentedKey(key)) = PresentedKey::from_request_parts(parts, state).await;
        let caller = state.usher().api_caller(key.as_deref()).await?;
        Ok(Caller(caller))
    }
}

/// The public user object; `role` only when asked for. Serialised straight
/// from the record (a page holds up to 250 of them).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PublicUser<'a> {
    id: String,
    email: Option<&'a str>,
    first_name: &'a str,
    last_name: &'a str,
    is_pending: bool,
    created_at: String,
    updated_at: String,
    mfa_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

impl<'a> PublicUser<'a> {
    fn of(user: &'a User, include_role: bool) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_ref().map(|e| e.as_str()),
            first_name: &user.first_name,
            last_name: &user.last_name,
            is_pending: user.is_pending(),
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
            mfa_enabled: user.mfa_enabled,
            role: include_role.then(|| user.role.as_str()),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PublicUserPage<'a> {
    data: Vec<PublicUser<'a>>,
    next_cursor: Option<String>,
}

/// A query number. The validator let through only what the document
/// allows (a number, whole, in range), so anything else is its default.
fn number(query: &HashMap<String, String>, name: &str, default: i64) -> i64 {
    query
        .get(name)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|n| n.is_finite())
        .map_or(default, |n| n as i64)
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v == "true")
}

/// The page size when none is asked for, and for `limit=0` (as n8n).
const DEFAULT_LIMIT: i64 = 100;

async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    // n8n answers `limit=0` with the default page, and a cursor that keeps
    // the 0 and so never moves on; this one is made for the page given.
    let limit = match number(&query, "limit", DEFAULT_LIMIT) {
        0 => DEFAULT_LIMIT,
        limit => limit,
    };
    let offset = number(&query, "offset", 0);
    let include_role = flag(&query, "includeRole");
    let page = state
        .usher()
        .public_users(
            &caller,
            limit,
            offset,
            query.get("cursor").map(String::as_str),
            query.get("projectId").map(String::as_str),
        )
        .await?;
    Ok(Json(PublicUserPage {
        data: page
            .users
            .iter()
            .map(|u| PublicUser::of(u, include_role))
            .collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

#[derive(Deserialize)]
struct NewUser {
    email: String,
    role: Option<String>,
}

async fn create_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<Vec<NewUser>>,
) -> Result<Json<Vec<Value>>> {
    let requests = body
        .into_iter()
        .map(|u| InviteRequest {
            email: u.email,
            role: u.role,
        })
        .collect();
    let outcomes = state
        .usher()
        .public_invite(&caller, requests, &origin)
        .await?;
    Ok(Json(
        outcomes
            .into_iter()
            .map(|o| {
                let mut user = json!({"email": o.email, "emailSent": o.email_sent});
                if let Some(pending) = &o.user {
                    user["id"] = json!(pending.id.to_string());
                }
                if let Some(url) = &o.accept_url {
                    user["inviteAcceptUrl"] = json!(url);
                }
                json!({"user": user, "error": o.error.unwrap_or_default()})
            })
            .collect(),
    ))
}

async fn get_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let user = state.usher().public_user(&caller, &id).await?;
    let include_role = flag(&query, "includeRole");
    Ok(Json(PublicUser::of(&user, include_role)).into_response())
}

async fn delete_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> Result<Response> {
    state
        .usher()
        .public_delete_user(&caller, &id, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleBody {
    new_role_name: String,
}

async fn change_role(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    Json(body): Json<RoleBody>,
) -> Result<Response> {
    let user = state
        .usher()
        .public_change_role(&caller, &id, &body.new_role_name, &origin)
        .await?;
    Ok(Json(PublicUser::of(&user, true)).into_response())
}
