//! `/settings/personal`: one's names, email and password.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    secret::Secret,
    service::{auth::Actor, me::ProfileUpdate, mfa::SecondFactor},
};

use super::{Form, Layout, Need, guard};
use crate::{
    AppState,
    extract::{ClientOrigin, Who},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/settings/personal",
            get(view_personal_get).post(view_personal_post),
        )
        .route(
            "/settings/personal/password",
            post(view_personal_password_post),
        )
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/personal.html")]
struct PersonalPage {
    layout: Layout,
    profile: Form,
    password: Form,
    notice: Option<String>,
    password_rules: String,
    mfa_enabled: bool,
}

impl PersonalPage {
    fn new(
        state: &AppState,
        identity: &usher_domain::service::auth::Identity,
        actor: &Actor,
    ) -> Self {
        let user = &actor.user;
        let profile = Form::default()
            .with("firstName", user.first_name.clone())
            .with("lastName", user.last_name.clone())
            .with(
                "email",
                user.email
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            );
        Self {
            layout: Layout::new(state, Some(identity)),
            profile,
            password: Form::default(),
            notice: None,
            password_rules: super::password_rules(state),
            mfa_enabled: user.mfa_enabled,
        }
    }
}

/// The signed-in actor, or the response that sends the visitor elsewhere.
fn signed_in(
    state: &AppState,
    identity: &usher_domain::service::auth::Identity,
    here: &str,
) -> Result<Actor, Response> {
    match guard(state, identity, Need::SignedIn, here)? {
        Some(actor) if !actor.user.is_owner_shell() => Ok(actor),
        // Set-up skipped: there is no account to edit until the owner exists.
        _ => Err(axum::response::Redirect::to(&state.path("/settings/users")).into_response()),
    }
}

async fn view_personal_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    match signed_in(&state, &identity, "/settings/personal") {
        Ok(actor) => PersonalPage::new(&state, &identity, &actor).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ProfileForm {
    first_name: String,
    last_name: String,
    email: String,
    current_password: Secret,
    mfa_code: String,
}

async fn view_personal_post(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<ProfileForm>,
) -> Response {
    let actor = match signed_in(&state, &identity, "/settings/personal") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let mut page = PersonalPage::new(&state, &identity, &actor);
    let form = Form::default()
        .with("firstName", input.first_name.clone())
        .with("lastName", input.last_name.clone())
        .with("email", input.email.clone());
    let update = ProfileUpdate {
        email: input.email,
        first_name: input.first_name,
        last_name: input.last_name,
        current_password: Some(input.current_password).filter(|p| !p.is_empty()),
        factor: SecondFactor {
            code: Some(input.mfa_code),
            recovery_code: None,
        },
    };
    match state.usher().update_profile(&actor, update, &origin).await {
        Ok(user) => {
            page.profile = Form::default()
                .with("firstName", user.first_name.clone())
                .with("lastName", user.last_name.clone())
                .with(
                    "email",
                    user.email
                        .as_ref()
                        .map(|e| e.to_string())
                        .unwrap_or_default(),
                );
            page.layout.who = Some(user.display_name());
            page.notice = Some("Your details are saved.".to_owned());
        }
        Err(error) => page.profile = form.error(error, &[]),
    }
    page.into_response()
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PasswordForm {
    current_password: Secret,
    new_password: Secret,
    mfa_code: String,
}

async fn view_personal_password_post(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<PasswordForm>,
) -> Response {
    let actor = match signed_in(&state, &identity, "/settings/personal") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let mut page = PersonalPage::new(&state, &identity, &actor);
    match state
        .usher()
        .change_own_password(
            &actor,
            &input.current_password,
            &input.new_password,
            &SecondFactor {
                code: Some(input.mfa_code),
                recovery_code: None,
            },
            &origin,
        )
        .await
    {
        Ok(()) => {
            page.notice = Some(
                "Your password is changed. Other sessions of yours have been signed out."
                    .to_owned(),
            )
        }
        Err(error) => page.password = Form::default().error(error, &[("password", "newPassword")]),
    }
    page.into_response()
}
