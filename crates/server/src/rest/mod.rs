//! `/rest`: the JSON API the pages' scripts and operators' scripts use,
//! following n8n's internal REST where it exists. Successes are `{"data": …}`.
//!
//! Each resource module owns its `router()`; handlers extract, call one domain
//! service and map the result.

mod api_keys;
pub(crate) mod apps;
mod auth;
mod invitations;
mod ldap;
mod me;
mod mfa;
mod recovery;
mod resources;
mod roles;
pub(crate) mod sso;
mod users;

use axum::{
    Router,
    http::HeaderValue,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use usher_domain::{clock::rfc3339, model::User};

use crate::{AppState, extract::Json};

pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new().merge(auth::settings_router());
    if !state.settings().user_management_disabled {
        router = router
            .merge(auth::router())
            .merge(me::router())
            .merge(invitations::router())
            .merge(recovery::router())
            .merge(roles::router())
            .merge(resources::router())
            .merge(api_keys::router())
            .merge(apps::router())
            .merge(mfa::router())
            .merge(ldap::router())
            .merge(sso::router())
            .merge(users::router());
    }
    router
}

/// `{"data": …}`
#[derive(Serialize)]
pub struct Data<T> {
    pub data: T,
}

pub fn data<T: Serialize>(value: T) -> Json<Data<T>> {
    Json(Data { data: value })
}

/// A response with a session cookie set (or cleared, with max_age 0).
pub fn with_cookie(
    response: impl IntoResponse,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Response {
    let mut response = response.into_response();
    for cookie in cookies {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
    response
}

/// A second factor as `/rest` bodies carry it (n8n's names), to flatten
/// into a body: `{"mfaCode": "123456"}` or `{"mfaRecoveryCode": "…"}`.
#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Factor {
    pub mfa_code: Option<String>,
    pub mfa_recovery_code: Option<String>,
}

impl From<Factor> for usher_domain::service::mfa::SecondFactor {
    fn from(factor: Factor) -> Self {
        Self {
            code: factor.mfa_code,
            recovery_code: factor.mfa_recovery_code,
        }
    }
}

/// The user object of `/rest`, as n8n shapes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserJson {
    pub id: String,
    pub email: Option<String>,
    /// False for an address the user changed themselves and has not yet
    /// confirmed by the link mailed to it.
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub role: &'static str,
    pub is_owner: bool,
    pub is_pending: bool,
    pub mfa_enabled: bool,
    pub password_change_required: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A user as `viewer` may see them, wherever `/rest` shows another person
/// (the user list, a project's members): the owner and admins, and the user
/// themself, see everything; a member sees what n8n shows members of other
/// users (id, email, names, role), never MFA state, flags or dates.
pub fn user_seen_by(viewer: &usher_domain::service::auth::Actor, user: &User) -> serde_json::Value {
    let full = serde_json::to_value(UserJson::from(user)).unwrap_or_default();
    if usher_domain::service::Usher::sees_full_profile(viewer, user) {
        return full;
    }
    serde_json::json!({
        "id": full["id"],
        "email": full["email"],
        "firstName": full["firstName"],
        "lastName": full["lastName"],
        "role": full["role"],
    })
}

impl From<&User> for UserJson {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_ref().map(|e| e.to_string()),
            email_verified: user.email_verified,
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            role: user.role.as_str(),
            is_owner: user.role == usher_domain::model::Role::Owner,
            is_pending: user.is_pending(),
            mfa_enabled: user.mfa_enabled,
            password_change_required: user.password_change_required,
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}
