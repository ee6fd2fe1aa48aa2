//! `/`: the home page, a welcome with the way to everything else, and after
//! set-up of an instance that was open, what was made in that time.

use askama::Template;
use askama_web::WebTemplate;
use axum::{extract::State, response::IntoResponse};

use super::{Layout, Result, SignedInPage};
use crate::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct HomePage {
    layout: Layout,
    first_name: String,
    /// What was made while the instance was open (set-up skipped).
    open_period: Option<Vec<String>>,
    /// The apps this person may open: (name, launch URL, role).
    apps: Vec<(String, String, String)>,
}

pub async fn view_home_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    let open_period = state.usher().open_period_report(&page.actor).await?;
    let apps = state
        .usher()
        .my_apps(&page.actor)
        .await?
        .into_iter()
        .map(|(app, role)| (app.name, app.launch_url, role))
        .collect();
    Ok(HomePage {
        layout: page.layout,
        first_name: page.actor.user.first_name,
        open_period,
        apps,
    }
    .into_response())
}

/// The owner has read what was made while the instance was open.
pub async fn view_home_dismiss(State(state): State<AppState>, page: SignedInPage) -> Result {
    state
        .usher()
        .dismiss_open_period_report(&page.actor)
        .await?;
    Ok(super::done(
        &state,
        "/",
        "The report of the open time is dismissed; the audit log keeps the details.",
        (),
    ))
}
