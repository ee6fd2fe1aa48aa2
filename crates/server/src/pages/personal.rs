//! `/settings/personal`: one's names, email and password; and
//! `/verify-email?token=…`, the link that confirms a new address.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::IntoResponse,
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    model::User,
    secret::Secret,
    service::{me::ProfileUpdate, mfa::SecondFactor},
};

use super::{Form, Layout, Page, PageError, Result, SignedInPage, done, password_rules};
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
        .route(
            "/settings/personal/confirm-email",
            post(view_personal_confirm_email_post),
        )
        .route(
            "/verify-email",
            get(view_verify_email_get).post(view_verify_email_post),
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
    /// The address, while it is unconfirmed (changed by the user, the
    /// mailed link not followed yet).
    unconfirmed_email: Option<String>,
    /// Email is set up: the link can be sent again.
    mail_configured: bool,
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
            unconfirmed_email: user
                .email
                .as_ref()
                .filter(|_| !user.email_verified)
                .map(|e| e.to_string()),
            mail_configured: state.usher().mail_configured(),
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
        Ok(updated) => {
            let user = updated.user;
            let email = user
                .email
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
            let mut notice = format!("Your details are saved: {}, {email}.", user.display_name());
            if !user.email_verified {
                notice.push_str(&match updated.confirmation.and_then(|m| m.error) {
                    _ if !state.usher().mail_configured() => format!(
                        " {email} is unconfirmed: email is not set up on this instance, so no \
                         link can be sent to confirm it."
                    ),
                    None => format!(
                        " {email} is unconfirmed until you follow the link we sent to it; apps \
                         that sign you in through Usher are told so."
                    ),
                    Some(error) => format!(" {email} is unconfirmed. {error}"),
                });
            }
            Ok(done(&state, "/settings/personal", notice, ()))
        }
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

/// "Send the link again" for an unconfirmed address.
async fn view_personal_confirm_email_post(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
) -> Result {
    let sent = state
        .usher()
        .resend_email_confirmation(&page.actor, &origin)
        .await;
    match sent {
        Ok(mail) => {
            let notice = match mail.error {
                None => format!(
                    "We sent a new link to {}: follow it to confirm the address.",
                    mail.email
                ),
                Some(error) => error,
            };
            Ok(done(&state, "/settings/personal", notice, ()))
        }
        Err(error) => {
            let mut shown = PersonalPage::new(&state, page);
            shown.profile = shown.profile.error(error, &[]);
            Ok(shown.into_response())
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/verify_email.html")]
struct VerifyEmailPage {
    layout: Layout,
    token: String,
    email: String,
    /// The link was followed: the address is confirmed.
    confirmed: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenInput {
    token: String,
}

/// A dead or damaged link: what happened, and where to get a new one.
fn link_refused(error: usher_domain::Error) -> PageError {
    PageError::from(error)
        .with_heading("This confirmation link does not work")
        .with_next("/settings/personal", "Go to your personal settings")
}

/// The link from the email: a page with a button, since a GET changes
/// nothing (mail scanners open links too).
async fn view_verify_email_get(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<TokenInput>,
) -> Result {
    let email = state
        .usher()
        .resolve_email_confirmation(&query.token)
        .await
        .map_err(link_refused)?;
    Ok(VerifyEmailPage {
        layout: page.layout,
        token: query.token,
        email: email.to_string(),
        confirmed: false,
    }
    .into_response())
}

async fn view_verify_email_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<TokenInput>,
) -> Result {
    let user = state
        .usher()
        .confirm_email(&input.token, &origin)
        .await
        .map_err(link_refused)?;
    Ok(VerifyEmailPage {
        layout: page.layout,
        token: String::new(),
        email: user.email.map(|e| e.to_string()).unwrap_or_default(),
        confirmed: true,
    }
    .into_response())
}
