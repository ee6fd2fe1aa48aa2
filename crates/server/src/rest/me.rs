//! The signed-in user's own account.

use axum::{
    Router,
    extract::State,
    response::Response,
    routing::{get, patch},
};
use serde::Deserialize;
use usher_domain::{secret::Secret, service::me::ProfileUpdate, service::mfa::SecondFactor};

use super::{Data, UserJson, data};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Json, SignedIn},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me).patch(update_me))
        .route("/me/password", patch(change_password))
}

async fn me(SignedIn(actor): SignedIn) -> Json<Data<UserJson>> {
    data(UserJson::from(&actor.user))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateMeBody {
    email: String,
    first_name: String,
    last_name: String,
    current_password: Option<Secret>,
    #[serde(flatten)]
    factor: super::Factor,
}

async fn update_me(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<UpdateMeBody>,
) -> Result<Json<Data<UserJson>>> {
    let update = ProfileUpdate {
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        current_password: body.current_password,
        factor: SecondFactor::from(body.factor),
    };
    let user = state
        .usher()
        .update_profile(&actor, update, &origin)
        .await?;
    Ok(data(UserJson::from(&user)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePasswordBody {
    current_password: Secret,
    new_password: Secret,
    #[serde(flatten)]
    factor: super::Factor,
}

async fn change_password(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<ChangePasswordBody>,
) -> Result<Response> {
    state
        .usher()
        .change_own_password(
            &actor,
            &body.current_password,
            &body.new_password,
            &SecondFactor::from(body.factor),
            &origin,
        )
        .await?;
    Ok(axum::response::IntoResponse::into_response(data(
        serde_json::json!({"success": true}),
    )))
}
