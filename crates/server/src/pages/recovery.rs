//! `/forgot-password` and `/change-password?token=…`: a password reset by
//! email. Admins' resets are on a user's page ([`super::user`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;
use usher_domain::{secret::Secret, service::auth::Identity};

use super::{Form, Layout, PageError, password_rules};
use crate::{
    AppState,
    error::ApiError,
    extract::{ClientOrigin, Who},
    rest::with_cookie,
};

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
}

async fn view_forgot_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    ForgotPage {
        layout: Layout::new(&state, Some(&identity)),
        form: Form::default(),
        mail_configured: state.usher().mail_configured(),
        sent: false,
    }
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ForgotForm {
    email: String,
}

async fn view_forgot_post(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<ForgotForm>,
) -> Response {
    let mut layout = Layout::new(&state, Some(&identity));
    layout.settle_at = Some(state.path("/forgot-password"));
    let (sent, form) = match state.usher().forgot_password(&input.email, &origin).await {
        Ok(()) => (true, Form::default()),
        Err(error) => (
            false,
            Form::default().with("email", input.email).error(error, &[]),
        ),
    };
    ForgotPage {
        layout,
        form,
        mail_configured: state.usher().mail_configured(),
        sent,
    }
    .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/change_password.html")]
struct ChangePage {
    layout: Layout,
    form: Form,
    token: String,
    email: String,
    password_rules: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

/// The form, or a page that says the link is dead and what to do instead.
async fn change_page(state: &AppState, identity: &Identity, token: &str, form: Form) -> Response {
    match state.usher().resolve_password_reset(token).await {
        Ok(user) => ChangePage {
            layout: {
                let mut layout = Layout::new(state, Some(identity));
                layout.settle_at = Some(state.path(&format!("/change-password?token={token}")));
                layout
            },
            form,
            token: token.to_owned(),
            email: user.email.map(|e| e.to_string()).unwrap_or_default(),
            password_rules: password_rules(state),
        }
        .into_response(),
        Err(error) => {
            let mut error = ApiError::from(error);
            if !state.usher().mail_configured() {
                error.message = error.message.replace(
                    "Ask for a new one.",
                    "Ask the owner or an admin for a new one.",
                );
            }
            let mut page = PageError::new(state, Some(identity), error);
            page.page.heading = "This password reset link does not work".into();
            if state.usher().mail_configured() {
                page.page.next =
                    Some((state.path("/forgot-password"), "Ask for a new link".into()));
            }
            page.into_response()
        }
    }
}

async fn view_change_get(
    State(state): State<AppState>,
    Who(identity): Who,
    Query(query): Query<TokenQuery>,
) -> Response {
    change_page(&state, &identity, &query.token, Form::default()).await
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
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<ChangeForm>,
) -> Response {
    match state
        .usher()
        .reset_password(
            &input.token,
            &input.password,
            &usher_domain::service::mfa::SecondFactor {
                code: Some(input.mfa_code),
                recovery_code: None,
            },
            &origin,
        )
        .await
    {
        Ok(session) => with_cookie(
            Redirect::to(&state.path("/")),
            state.session_cookie(&session),
        ),
        Err(error) => {
            change_page(
                &state,
                &identity,
                &input.token,
                Form::default().error(error, &[]),
            )
            .await
        }
    }
}
