//! `/signup?token=…` (accept an invitation) and `/set-password` (replace a
//! temporary password).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::{IntoResponse, Redirect},
    routing::get,
};
use serde::Deserialize;
use usher_domain::{secret::Secret, service::invitations::ALREADY_ACCEPTED};

use super::{Form, Layout, Page, PageError, Result, done, password_rules};
use crate::{AppState, error::ApiError, extract::ClientOrigin, rest::with_cookie};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", get(view_signup_get).post(view_signup_post))
        .route(
            "/set-password",
            get(view_set_password_get).post(view_set_password_post),
        )
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/signup.html")]
struct SignupPage {
    layout: Layout,
    form: Form,
    token: String,
    inviter: String,
    email: String,
    password_rules: super::PasswordRules,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

/// The accept page, or a page that says why the link leads nowhere.
async fn signup_page(state: &AppState, layout: Layout, token: &str, form: Form) -> Result {
    let view = match state.usher().resolve_invitation(token).await {
        Ok(view) => view,
        Err(error) => {
            let mut error = ApiError::from(error);
            if error.message == ALREADY_ACCEPTED {
                error.message = format!(
                    "{}. Sign in with the email and password you chose.",
                    error.message
                );
            }
            return Err(PageError::from(error).with_heading("This invitation link does not work"));
        }
    };
    Ok(SignupPage {
        layout,
        form,
        token: token.to_owned(),
        inviter: format!("{} {}", view.inviter_first_name, view.inviter_last_name)
            .trim()
            .to_owned(),
        email: view.email.to_string(),
        password_rules: password_rules(state),
    }
    .into_response())
}

async fn view_signup_get(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<TokenQuery>,
) -> Result {
    signup_page(&state, page.layout, &query.token, Form::default()).await
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SignupForm {
    token: String,
    first_name: String,
    last_name: String,
    password: Secret,
}

async fn view_signup_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<SignupForm>,
) -> Result {
    let accepted = state
        .usher()
        .accept_invitation(
            &input.token,
            &input.first_name,
            &input.last_name,
            &input.password,
            &origin,
        )
        .await;
    match accepted {
        Ok(session) => Ok(with_cookie(
            done(
                &state,
                "/",
                format!(
                    "Welcome, {}: your account is set up.",
                    session.user.display_name()
                ),
                (),
            ),
            state.session_cookie(&session),
        )),
        Err(error) => {
            let form = Form::default()
                .with("firstName", input.first_name)
                .with("lastName", input.last_name)
                .error(error, &[]);
            signup_page(&state, page.layout, &input.token, form).await
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/set_password.html")]
struct SetPasswordPage {
    layout: Layout,
    form: Form,
    password_rules: super::PasswordRules,
    /// Where to go on afterwards (an app's sign-in), inside Usher.
    redirect: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SetPasswordQuery {
    redirect: String,
}

/// Only for a person with a temporary password; anyone else goes home.
async fn view_set_password_get(
    State(state): State<AppState>,
    page: Page,
    axum::extract::Query(query): axum::extract::Query<SetPasswordQuery>,
) -> Result {
    let held = page.identity.actor.as_ref();
    if !held.is_some_and(|actor| actor.must_change_password()) {
        return Ok(Redirect::to(&state.path("/")).into_response());
    }
    Ok(SetPasswordPage {
        layout: page.layout,
        form: Form::default(),
        password_rules: password_rules(&state),
        redirect: query.redirect,
    }
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SetPasswordForm {
    password: Secret,
    redirect: String,
}

async fn view_set_password_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<SetPasswordForm>,
) -> Result {
    let Some(actor) = &page.identity.actor else {
        return Ok(Redirect::to(&state.path("/signin")).into_response());
    };
    let replaced = state
        .usher()
        .replace_temporary_password(actor, &input.password, &origin)
        .await;
    Ok(match replaced {
        Ok(()) if !input.redirect.is_empty() => {
            super::onward(&state, &super::safe_redirect(&state, &input.redirect))
        }
        Ok(()) => done(&state, "/", "Your new password is saved.", ()),
        Err(error) => SetPasswordPage {
            layout: page.layout,
            form: Form::default().error(error, &[]),
            password_rules: password_rules(&state),
            redirect: input.redirect,
        }
        .into_response(),
    })
}
