//! Owner set-up, sign-in and sign-out.

use axum::{
    Router,
    extract::State,
    response::Response,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use usher_domain::{
    secret::Secret,
    service::auth::{OwnerSetup, SignedIn as NewSession},
    service::mfa::SecondFactor,
};

use super::{UserJson, data, with_cookie};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Json, SignedIn, Who},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/owner/setup", post(owner_setup))
        .route("/owner/skip-setup", post(skip_setup))
        .route("/login", post(login).get(current_user))
        .route("/logout", post(logout))
}

pub fn settings_router() -> Router<AppState> {
    Router::new().route("/settings", get(instance_settings))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerSetupBody {
    email: String,
    first_name: String,
    last_name: String,
    password: Secret,
}

async fn owner_setup(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<OwnerSetupBody>,
) -> Result<Response> {
    let input = OwnerSetup {
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        password: body.password,
    };
    let session = state.usher().setup_owner(input, &origin).await?;
    Ok(signed_in(&state, session))
}

async fn skip_setup(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Response> {
    state.usher().skip_setup(&origin).await?;
    Ok(axum::response::IntoResponse::into_response(data(
        serde_json::json!({"success": true}),
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    #[serde(alias = "email")]
    email_or_ldap_login_id: String,
    password: Secret,
    #[serde(flatten)]
    factor: super::Factor,
}

async fn login(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<LoginBody>,
) -> Result<Response> {
    let session = state
        .usher()
        .login(
            &body.email_or_ldap_login_id,
            &body.password,
            &SecondFactor::from(body.factor),
            &origin,
        )
        .await?;
    Ok(signed_in(&state, session))
}

/// The answer to a new session: the user, and the cookie that carries it.
pub(crate) fn signed_in(state: &AppState, session: NewSession) -> Response {
    let cookie = state.session_cookie(&session);
    with_cookie(data(UserJson::from(&session.user)), cookie)
}

async fn current_user(SignedIn(actor): SignedIn) -> Json<super::Data<UserJson>> {
    data(UserJson::from(&actor.user))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoggedOut {
    logged_out: bool,
}

/// Signing out needs someone signed in: without a session it is 401, as
/// in n8n, so a script learns that its cookie was no good.
async fn logout(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    SignedIn(actor): SignedIn,
) -> Result<Response> {
    state.usher().logout(&actor, &origin).await?;
    Ok(with_cookie(
        data(LoggedOut { logged_out: true }),
        state.clear_cookie(),
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceSettings {
    user_management: UserManagement,
    password_min_length: usize,
    base_url: String,
    sso: Sso,
}

/// n8n's `sso` block: its OIDC part (the button's address and the
/// redirect URL to register at the provider) and its LDAP part.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Sso {
    oidc: SsoOidc,
    ldap: SsoLdap,
}

/// n8n's `sso.ldap`: whether the sign-in form takes a directory login, and
/// the label of its first field (empty: the front-end's own).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SsoLdap {
    login_enabled: bool,
    login_label: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SsoOidc {
    login_enabled: bool,
    login_url: String,
    callback_url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserManagement {
    enabled: bool,
    show_setup_on_first_load: bool,
    setup_skipped: bool,
    /// n8n's: `email`, or `oidc` when single sign-on is the only way in
    /// for all but the owner.
    authentication_method: &'static str,
}

/// Public facts a sign-in page or script needs before anyone signs in.
async fn instance_settings(
    State(state): State<AppState>,
    Who(identity): Who,
) -> Json<super::Data<InstanceSettings>> {
    let instance = identity.instance;
    let usher = state.usher();
    let sso_only = usher.sso_only().await.unwrap_or(false);
    let sso_on = usher.sso_button().await.ok().flatten().is_some();
    let (ldap_on, ldap_label) = usher.ldap_public_settings().await.unwrap_or_default();
    data(InstanceSettings {
        user_management: UserManagement {
            enabled: !instance.user_management_disabled,
            show_setup_on_first_load: !instance.user_management_disabled
                && !instance.owner_set_up
                && !instance.setup_skipped,
            setup_skipped: instance.setup_skipped && !instance.owner_set_up,
            authentication_method: if sso_only { "oidc" } else { "email" },
        },
        password_min_length: state.settings().password_min_length,
        base_url: state.settings().base_url.clone(),
        sso: Sso {
            oidc: SsoOidc {
                login_enabled: sso_on,
                login_url: usher.link(super::sso::LOGIN),
                callback_url: super::sso::callback_url(&state),
            },
            ldap: SsoLdap {
                login_enabled: ldap_on,
                login_label: ldap_label,
            },
        },
    })
}
