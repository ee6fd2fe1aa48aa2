//! `/`: the home page, a welcome with the way to everything else.

use askama::Template;
use askama_web::WebTemplate;
use axum::response::IntoResponse;

use super::{Layout, Result, SignedInPage};

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct HomePage {
    layout: Layout,
    first_name: String,
}

pub async fn view_home_get(page: SignedInPage) -> Result {
    Ok(HomePage {
        layout: page.layout,
        first_name: page.actor.user.first_name,
    }
    .into_response())
}
