//! `/forgot-password` and `/change-password?token=…`: a password reset by
//! email. Admins' resets are on a user's page ([`super::user`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::IntoResponse,
    routing::get,
};
use serde::Deserialize;
use usher_domain::{secret::Secret, service::mfa::SecondFactor};

use super::{Form, Layout, Page, PageError, Result, done, password_rules};
use crate::{AppState, error::ApiError, extract::ClientOrigin, rest::with_cookie};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/forgot-password",
            get(view_forgot_get).post(view_forgot_post),
        )
        .route(
            "/change-password",
            get(view_change_get).post(view_change_post),
        )
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/forgot.html")]
struct ForgotPage {
    layout: Layout,
    form: Form,
    mail_configured: bool,
    sent: bool,
    /// LDAP sign-in is on: directory users reset their password there.
    ldap: bool,
    /// With SSO only: the provider's button, since only the owner's
    /// password can be reset.
    sso_only: Option<(String, String)>,
}

/// The sign-in button, when single sign-on is the only way in for all but
/// the owner.
async fn sso_only(state: &AppState) -> Option<(String, String)> {
    if !state.usher().sso_only().await.unwrap_or(false) {
        return None;
    }
    crate::rest::sso::button(state, "").await
}

/// What the page shows once after a request: that it was sent.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sent {
    sent: bool,
}

async fn view_forgot_get(State(state): State<AppState>, page: Page) -> Result {
    Ok(ForgotPage {
        layout: page.layout,
        form: Form::default(),
        mail_configured: state.usher().mail_configured(),
        sent: super::flash::once::<Sent>().is_some_and(|s| s.sent),
        ldap: state.usher().ldap_login_label().await?.is_some(),
        sso_only: sso_only(&state).await,
    }
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ForgotForm {
    email: String,
}

async fn view_forgot_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<ForgotForm>,
) -> Result {
    let form = match state.usher().forgot_password(&input.email, &origin).await {
        Ok(()) => {
            let notice = format!(
                "If an account uses {}, a link to choose a new password is on its way.",
                input.email.trim()
            );
            return Ok(done(
                &state,
                "/forgot-password",
                notice,
                Sent { sent: true },
            ));
        }
        Err(error) => Form::default().with("email", input.email).error(error, &[]),
    };
    Ok(ForgotPage {
        layout: page.layout.at("/forgot-password"),
        form,
        mail_configured: state.usher().mail_configured(),
        sent: false,
        ldap: state.usher().ldap_login_label().await?.is_some(),
        sso_only: sso_only(&state).await,
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/change_password.html")]
struct ChangePage {
    layout: Layout,
    form: Form,
    token: String,
    email: String,
    password_rules: super::PasswordRules,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

/// The form, or a page that says the link is dead and what to do instead.
async fn change_page(state: &AppState, layout: Layout, token: &str, form: Form) -> Result {
    let mail = state.usher().mail_configured();
    let user = match state.usher().resolve_password_reset(token).await {
        Ok(user) => user,
        Err(error) => {
            let mut error = ApiError::from(error);
            if !mail {
                error.message = error.message.replace(
                    "Ask for a new one.",
                    "Ask the owner or an admin for a new one.",
                );
            }
            let refused =
                PageError::from(error).with_heading("This password reset link does not work");
            return Err(if mail {
                refused.with_next("/forgot-password", "Ask for a new link")
            } else {
                refused
            });
        }
    };
    Ok(ChangePage {
        layout: layout.at(&format!("/change-password?token={token}")),
        form,
        token: token.to_owned(),
        email: user.email.map(|e| e.to_string()).unwrap_or_default(),
        password_rules: password_rules(state),
    }
    .into_response())
}

async fn view_change_get(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<TokenQuery>,
) -> Result {
    change_page(&state, page.layout, &query.token, Form::default()).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
#[serde(rename_all = "camelCase")]
struct ChangeForm {
    token: String,
    password: Secret,
    mfa_code: String,
}

async fn view_change_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<ChangeForm>,
) -> Result {
    let factor = SecondFactor {
        code: Some(input.mfa_code),
        recovery_code: None,
    };
    let reset = state
        .usher()
        .reset_password(&input.token, &input.password, &factor, &origin)
        .await;
    match reset {
        Ok(session) => Ok(with_cookie(
            done(
                &state,
                "/",
                format!(
                    "The password of {} is changed; you are signed in, and signed out everywhere else.",
                    session.user.display_name()
                ),
                (),
            ),
            state.session_cookie(&session),
        )),
        Err(error) => {
            let form = Form::default().error(error, &[]);
            change_page(&state, page.layout, &input.token, form).await
        }
    }
}
