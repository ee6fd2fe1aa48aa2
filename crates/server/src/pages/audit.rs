//! `/settings/audit`: who did what, to whom, when and from where.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::IntoResponse,
    routing::get,
};
use serde::Deserialize;
use usher_domain::{clock::rfc3339, store::AuditFilter};

use super::{Layout, Result, SignedInPage, percent_encode};
use crate::AppState;

const PAGE: i64 = 50;

/// The filter's choices: prefixes of the actions Usher records.
const ACTIONS: &[(&str, &str)] = &[
    ("login.", "Sign-ins"),
    ("logout", "Sign-outs"),
    ("owner.", "Owner set-up and hand-over"),
    ("invitation.", "Invitations"),
    ("user.", "User changes"),
    ("password_reset.", "Password resets"),
    ("settings.", "Settings"),
    ("user_management.", "Resets of user management"),
];

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/audit", get(view_audit_get))
}

struct EventRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
    ip: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/audit.html")]
struct AuditPage {
    layout: Layout,
    actions: Vec<(&'static str, &'static str)>,
    action: String,
    person: String,
    count: i64,
    first: i64,
    last: i64,
    events: Vec<EventRow>,
    newer: Option<String>,
    older: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuditQuery {
    action: String,
    person: String,
    skip: i64,
}

async fn view_audit_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Query(query): Query<AuditQuery>,
) -> Result {
    let filter = AuditFilter {
        action: query.action.clone(),
        person: query.person.clone(),
    };
    let skip = query.skip.max(0);
    let (events, count) = state
        .usher()
        .audit_log(&page.actor, &filter, PAGE, skip)
        .await?;
    let page_url = |skip: i64| {
        format!(
            "{}?action={}&person={}&skip={skip}",
            state.path("/settings/audit"),
            percent_encode(&query.action, b""),
            percent_encode(&query.person, b"")
        )
    };
    let shown = events.len() as i64;
    Ok(AuditPage {
        layout: page.layout,
        actions: ACTIONS.to_vec(),
        action: query.action.clone(),
        person: query.person.clone(),
        count,
        first: skip + 1,
        last: skip + shown,
        newer: (skip > 0).then(|| page_url((skip - PAGE).max(0))),
        older: (skip + shown < count).then(|| page_url(skip + PAGE)),
        events: events
            .into_iter()
            .map(|e| EventRow {
                at: rfc3339(e.at)
                    .replace('T', " ")
                    .trim_end_matches('Z')
                    .chars()
                    .take(19)
                    .collect(),
                actor: e.actor_email.unwrap_or_else(|| "(nobody signed in)".into()),
                action: e.action,
                target: e.target.unwrap_or_default(),
                detail: e.detail,
                ip: e.ip,
            })
            .collect(),
    }
    .into_response())
}
