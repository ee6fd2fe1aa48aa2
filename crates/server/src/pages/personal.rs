//! `/settings/personal`: one's names, email and password.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    model::User,
    secret::Secret,
    service::{me::ProfileUpdate, mfa::SecondFactor},
};

use super::{Form, Layout, Result, SignedInPage, done, password_rules};
use crate::{AppState, extract::ClientOrigin};

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
    password_rules: super::PasswordRules,
    mfa_enabled: bool,
    /// A directory (LDAP) user's email: shown, not changed here, and no
    /// password form.
    directory_email: Option<String>,
}

impl PersonalPage {
    fn new(state: &AppState, page: SignedInPage) -> Self {
        let user = page.actor.user;
        Self {
            layout: page.layout.at("/settings/personal"),
            profile: profile_form(&user),
            password: Form::default(),
            password_rules: password_rules(state),
            mfa_enabled: user.mfa_enabled,
            directory_email: user.is_ldap().then(|| {
                user.email
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            }),
        }
    }
}

/// The profile form holding `user`'s names and email.
fn profile_form(user: &User) -> Form {
    let email = user.email.as_ref().map(|e| e.to_string());
    Form::default()
        .with("firstName", user.first_name.clone())
        .with("lastName", user.last_name.clone())
        .with("email", email.unwrap_or_default())
}

async fn view_personal_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    Ok(PersonalPage::new(&state, page).into_response())
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
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<ProfileForm>,
) -> Result {
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
    let updated = state
        .usher()
        .update_profile(&page.actor, update, &origin)
        .await;
    match updated {
        Ok(user) => Ok(done(
            &state,
            "/settings/personal",
            format!(
                "Your details are saved: {}, {}.",
                user.display_name(),
                user.email.map(|e| e.to_string()).unwrap_or_default()
            ),
            (),
        )),
        Err(error) => {
            let mut shown = PersonalPage::new(&state, page);
            shown.profile = form.error(error, &[]);
            Ok(shown.into_response())
        }
    }
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
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<PasswordForm>,
) -> Result {
    let factor = SecondFactor {
        code: Some(input.mfa_code),
        recovery_code: None,
    };
    let changed = state
        .usher()
        .change_own_password(
            &page.actor,
            &input.current_password,
            &input.new_password,
            &factor,
            &origin,
        )
        .await;
    match changed {
        Ok(()) => Ok(done(
            &state,
            "/settings/personal",
            "Your password is changed. Other sessions of yours have been signed out.",
            (),
        )),
        Err(error) => {
            let mut shown = PersonalPage::new(&state, page);
            shown.password = Form::default().error(error, &[("password", "newPassword")]);
            Ok(shown.into_response())
        }
    }
}
