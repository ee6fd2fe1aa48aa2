//! `/settings/email`: the owner's wording of the invitation email.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::service::auth::{Actor, Identity};

use super::{Layout, PageError};
use crate::{
    AppState,
    extract::{ClientOrigin, Who},
    mail,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/email", get(view_email_get).post(view_email_post))
        .route("/settings/email/reset", post(view_email_reset))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/email.html")]
struct EmailPage {
    layout: Layout,
    subject: String,
    html: String,
    notice: Option<String>,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    identity: &Identity,
    actor: &Actor,
    notice: Option<String>,
    error: Option<String>,
    draft: Option<(String, String)>,
) -> Response {
    let (subject, html) = match draft {
        Some(draft) => draft,
        None => match state.usher().invite_wording(actor).await {
            Ok((subject, html)) => (
                subject
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| mail::DEFAULT_INVITE_SUBJECT.to_owned()),
                html.filter(|h| !h.is_empty())
                    .unwrap_or_else(|| mail::default_invite_html(state.settings())),
            ),
            Err(error) => {
                return PageError::new(state, Some(identity), error.into()).into_response();
            }
        },
    };
    EmailPage {
        layout: Layout::new(state, Some(identity)),
        subject,
        html,
        notice,
        error,
    }
    .into_response()
}

async fn view_email_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    match super::signed_in(&state, &identity, "/settings/email") {
        Ok(actor) => page(&state, &identity, &actor, None, None, None).await,
        Err(response) => response,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EmailForm {
    subject: String,
    html: String,
}

async fn view_email_post(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<EmailForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/settings/email") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    // Checked before it is saved: a broken template would break every invitation.
    if let Err(problem) = mail::validate_template(&form.subject, &form.html) {
        return page(
            &state,
            &identity,
            &actor,
            None,
            Some(problem),
            Some((form.subject, form.html)),
        )
        .await;
    }
    match state
        .usher()
        .save_invite_wording(&actor, Some((&form.subject, &form.html)), &origin)
        .await
    {
        Ok(()) => {
            page(
                &state,
                &identity,
                &actor,
                Some("Saved: invitations from now on use this email.".into()),
                None,
                None,
            )
            .await
        }
        Err(error) => PageError::new(&state, Some(&identity), error.into()).into_response(),
    }
}

async fn view_email_reset(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
) -> Response {
    let actor = match super::signed_in(&state, &identity, "/settings/email") {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state
        .usher()
        .save_invite_wording(&actor, None, &origin)
        .await
    {
        Ok(()) => {
            page(
                &state,
                &identity,
                &actor,
                Some("Invitations use the standard email again.".into()),
                None,
                None,
            )
            .await
        }
        Err(error) => PageError::new(&state, Some(&identity), error.into()).into_response(),
    }
}
