//! `/signup?token=…` (accept an invitation) and `/set-password` (replace a
//! temporary password).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;
use usher_domain::secret::Secret;

use super::{Form, Layout, PageError, password_rules};
use crate::{
    AppState,
    error::ApiError,
    extract::{ClientOrigin, Who},
    rest::with_cookie,
};

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
    password_rules: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

/// The accept page, or a page that says why the link leads nowhere.
async fn signup_page(
    state: &AppState,
    identity: &usher_domain::service::auth::Identity,
    token: &str,
    form: Form,
) -> Response {
    match state.usher().resolve_invitation(token).await {
        Ok(view) => SignupPage {
            layout: Layout::new(state, Some(identity)),
            form,
            token: token.to_owned(),
            inviter: format!("{} {}", view.inviter_first_name, view.inviter_last_name)
                .trim()
                .to_owned(),
            email: view.email.to_string(),
            password_rules: password_rules(state),
        }
        .into_response(),
        Err(error) => {
            let mut error = ApiError::from(error);
            if error.message == usher_domain::service::invitations::ALREADY_ACCEPTED {
                error.message = format!(
                    "{}. Sign in with the email and password you chose.",
                    error.message
                );
            }
            let mut page = PageError::new(state, Some(identity), error);
            page.page.heading = "This invitation link does not work".into();
            page.into_response()
        }
    }
}

async fn view_signup_get(
    State(state): State<AppState>,
    Who(identity): Who,
    Query(query): Query<TokenQuery>,
) -> Response {
    signup_page(&state, &identity, &query.token, Form::default()).await
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
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<SignupForm>,
) -> Response {
    let result = state
        .usher()
        .accept_invitation(
            &input.token,
            &input.first_name,
            &input.last_name,
            &input.password,
            &origin,
        )
        .await;
    match result {
        Ok(session) => with_cookie(
            Redirect::to(&state.path("/")),
            state.session_cookie(&session),
        ),
        Err(error) => {
            let form = Form::default()
                .with("firstName", input.first_name)
                .with("lastName", input.last_name)
                .error(error, &[]);
            signup_page(&state, &identity, &input.token, form).await
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/set_password.html")]
struct SetPasswordPage {
    layout: Layout,
    form: Form,
    password_rules: String,
}

async fn view_set_password_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    match &identity.actor {
        Some(actor) if actor.must_change_password() => SetPasswordPage {
            layout: Layout::new(&state, Some(&identity)),
            form: Form::default(),
            password_rules: password_rules(&state),
        }
        .into_response(),
        _ => Redirect::to(&state.path("/")).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SetPasswordForm {
    password: Secret,
}

async fn view_set_password_post(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<SetPasswordForm>,
) -> Response {
    let Some(actor) = &identity.actor else {
        return Redirect::to(&state.path("/signin")).into_response();
    };
    match state
        .usher()
        .replace_temporary_password(actor, &input.password, &origin)
        .await
    {
        Ok(()) => Redirect::to(&state.path("/")).into_response(),
        Err(error) => (
            StatusCode::OK,
            SetPasswordPage {
                layout: Layout::new(&state, Some(&identity)),
                form: Form::default().error(error, &[]),
                password_rules: password_rules(&state),
            },
        )
            .into_response(),
    }
}
