//! `/settings/email`: the owner's wording of the invitation email.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{get, post},
};
use serde::Deserialize;

use super::{Layout, Result, Shown, SignedInPage, done};
use crate::{AppState, extract::ClientOrigin, mail};

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

/// The page with the wording as saved (the standard email where none is),
/// or the draft a refused post brought (`shown.with`: subject and HTML).
async fn render(
    state: &AppState,
    page: SignedInPage,
    shown: Shown<Option<(String, String)>>,
) -> Result {
    let (subject, html) = match shown.with {
        Some(draft) => draft,
        None => {
            let (subject, html) = state.usher().invite_wording(&page.actor).await?;
            (
                subject
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| mail::DEFAULT_INVITE_SUBJECT.to_owned()),
                html.filter(|h| !h.is_empty())
                    .unwrap_or_else(|| mail::default_invite_html(state.settings())),
            )
        }
    };
    Ok(EmailPage {
        layout: page.layout.at("/settings/email"),
        subject,
        html,
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

async fn view_email_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    render(&state, page, Shown::default()).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EmailForm {
    subject: String,
    html: String,
}

async fn view_email_post(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<EmailForm>,
) -> Result {
    // Checked before it is saved: a broken template would break every invitation.
    if let Err(problem) = mail::validate_template(&form.subject, &form.html) {
        let shown = Shown::error(problem).with(Some((form.subject, form.html)));
        return render(&state, page, shown).await;
    }
    let wording = Some((form.subject.as_str(), form.html.as_str()));
    state
        .usher()
        .save_invite_wording(&page.actor, wording, &origin)
        .await?;
    let notice = format!(
        "The invitation email “{}” is saved: invitations from now on use it.",
        form.subject.trim()
    );
    Ok(done(&state, "/settings/email", notice, ()))
}

async fn view_email_reset(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
) -> Result {
    state
        .usher()
        .save_invite_wording(&page.actor, None, &origin)
        .await?;
    let notice = "Invitations use the standard email again.";
    Ok(done(&state, "/settings/email", notice, ()))
}
