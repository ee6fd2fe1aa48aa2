//! `/`: the home page, a welcome with the way to everything else.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};

use super::{Layout, Need, guard};
use crate::{AppState, extract::Who};

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct HomePage {
    layout: Layout,
    first_name: String,
}

pub async fn view_home_get(State(state): State<AppState>, Who(identity): Who) -> Response {
    let actor = match guard(&state, &identity, Need::SignedIn, "/") {
        Ok(actor) => actor,
        Err(redirect) => return redirect,
    };
    let first_name = actor.map(|a| a.user.first_name).unwrap_or_default();
    HomePage {
        layout: Layout::new(&state, Some(&identity)),
        first_name,
    }
    .into_response()
}
