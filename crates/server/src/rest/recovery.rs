//! Password recovery: by email, by an admin's link or forced reset.

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_domain::{model::UserId, secret::Secret, service::mfa::SecondFactor};

use super::{Data, auth::signed_in, data};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Id, Json, SignedIn},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/forgot-password", post(forgot))
        .route("/resolve-password-token", get(resolve))
        .route("/change-password", post(change))
        .route("/users/{id}/password-reset-link", get(reset_link))
        .route("/users/{id}/force-password-reset", post(force_reset))
}

#[derive(Deserialize)]
struct ForgotBody {
    email: String,
}

/// The same answer whether or not the email has an account.
async fn forgot(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<ForgotBody>,
) -> Result<Json<Data<Value>>> {
    state.usher().forgot_password(&body.email, &origin).await?;
    Ok(data(json!({})))
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn resolve(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Data<Value>>> {
    state.usher().resolve_password_reset(&query.token).await?;
    Ok(data(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeBody {
    token: String,
    password: Secret,
    #[serde(flatten)]
    factor: super::Factor,
}

async fn change(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<ChangeBody>,
) -> Result<Response> {
    let session = state
        .usher()
        .reset_password(
            &body.token,
            &body.password,
            &SecondFactor::from(body.factor),
            &origin,
        )
        .await?;
    Ok(signed_in(&state, session))
}

async fn reset_link(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    let link = state
        .usher()
        .password_reset_link(&actor, id, &origin)
        .await?;
    Ok(data(json!({"link": link})))
}

async fn force_reset(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    let temporary = state
        .usher()
        .force_password_reset(&actor, id, &origin)
        .await?;
    Ok(data(json!({"temporaryPassword": temporary.expose()})))
}
