//! The signed-in user's own account.

use axum::{
    Router,
    extract::State,
    response::Response,
    routing::{get, patch, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_domain::{
    secret::Secret,
    service::{email_verification::ConfirmationMail, me::ProfileUpdate, mfa::SecondFactor},
};

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
        .route("/me/email-confirmation", post(resend_confirmation))
        .route("/verify-email", post(verify_email))
}

/// What became of a confirmation email, as `/rest` tells it.
fn confirmation_json(mail: &ConfirmationMail) -> Value {
    json!({
        "email": mail.email.to_string(),
        "emailSent": mail.error.is_none(),
        "error": mail.error,
    })
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
) -> Result<Json<Data<Value>>> {
    let update = ProfileUpdate {
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        current_password: body.current_password,
        factor: SecondFactor::from(body.factor),
    };
    let updated = state
        .usher()
        .update_profile(&actor, update, &origin)
        .await?;
    // The user as n8n answers, and after a change of address the
    // confirmation email's fate: `emailVerified` stays false until its link
    // is followed.
    let mut answer = serde_json::to_value(UserJson::from(&updated.user)).unwrap_or_default();
    if let (Some(mail), Some(fields)) = (&updated.confirmation, answer.as_object_mut()) {
        fields.insert("emailConfirmation".into(), confirmation_json(mail));
    }
    Ok(data(answer))
}

/// "Send the link again" for an unconfirmed address.
async fn resend_confirmation(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    let mail = state
        .usher()
        .resend_email_confirmation(&actor, &origin)
        .await?;
    Ok(data(confirmation_json(&mail)))
}

#[derive(Deserialize)]
struct VerifyBody {
    token: String,
}

/// Follows a confirmation link (the token from `/verify-email?token=…`).
async fn verify_email(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<VerifyBody>,
) -> Result<Json<Data<Value>>> {
    let user = state.usher().confirm_email(&body.token, &origin).await?;
    Ok(data(json!({
        "email": user.email.map(|e| e.to_string()),
        "emailVerified": user.email_verified,
    })))
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
