//! `/rest/mfa/...`: two-factor authentication for the signed-in user, and
//! the owner's switch that requires it for everyone.

use axum::{
    Router,
    extract::State,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_domain::service::mfa::MfaSetup;

use super::{Data, data};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Json, SignedIn},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mfa/can-enable", post(can_enable))
        .route("/mfa/qr", get(qr))
        .route("/mfa/qr/renew", post(renew))
        .route("/mfa/enable", post(enable))
        .route("/mfa/disable", post(disable))
        .route("/mfa/verify", post(verify))
        .route("/mfa/recovery-codes", post(recovery_codes))
        .route("/mfa/enforce-mfa", post(enforce))
}

/// n8n's question before a set-up: `{}` when the caller may enrol, else
/// the reason (404 with the feature off, 400 when enrolled already).
async fn can_enable(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Value>>> {
    state.usher().can_enable_mfa(&actor)?;
    Ok(data(json!({})))
}

/// The secret being set up (`qrCode` is the otpauth URI, as n8n names it)
/// and ten recovery codes, pending until `enable`: the same ones on every
/// call until then.
async fn qr(State(state): State<AppState>, SignedIn(actor): SignedIn) -> Result<Json<Data<Value>>> {
    setup_json(state.usher().start_mfa_setup(&actor).await?)
}

/// Usher's own: a new secret and codes for a set-up under way (the app
/// scanned the old one on a lost phone, say).
async fn renew(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Value>>> {
    setup_json(state.usher().renew_mfa_setup(&actor).await?)
}

fn setup_json(setup: MfaSetup) -> Result<Json<Data<Value>>> {
    Ok(data(json!({
        "secret": setup.secret,
        "qrCode": setup.otpauth_url,
        "recoveryCodes": setup.recovery_codes.iter().map(|c| c.expose().to_owned()).collect::<Vec<_>>(),
    })))
}

async fn enable(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<super::Factor>,
) -> Result<Json<Data<Value>>> {
    state
        .usher()
        .enable_mfa(
            &actor,
            body.mfa_code.as_deref().unwrap_or_default(),
            &origin,
        )
        .await?;
    Ok(data(json!({"success": true})))
}

async fn disable(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<super::Factor>,
) -> Result<Json<Data<Value>>> {
    state
        .usher()
        .disable_mfa(&actor, &body.into(), &origin)
        .await?;
    Ok(data(json!({"success": true})))
}

async fn verify(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Json(body): Json<super::Factor>,
) -> Result<Json<Data<Value>>> {
    state.usher().verify_mfa(&actor, &body.into()).await?;
    Ok(data(json!({"success": true})))
}

async fn recovery_codes(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<super::Factor>,
) -> Result<Json<Data<Value>>> {
    let codes = state
        .usher()
        .regenerate_recovery_codes(&actor, &body.into(), &origin)
        .await?;
    Ok(data(
        json!({"recoveryCodes": codes.iter().map(|c| c.expose().to_owned()).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
struct EnforceBody {
    enforce: bool,
}

async fn enforce(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<EnforceBody>,
) -> Result<Json<Data<Value>>> {
    state
        .usher()
        .require_mfa_for_everyone(&actor, body.enforce, &origin)
        .await?;
    Ok(data(json!({"success": true})))
}
