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
    /// What happened, in a sentence ("Olivia Owner forced a password reset
    /// for Ann Lee").
    words: String,
    /// The code, kept for filters (`password_reset.forced`).
    action: String,
    /// The address of the log filtered by this code.
    action_filter: String,
    target: String,
    ip: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/audit.html")]
struct AuditPage {
    layout: Layout,
    actions: Vec<(&'static str, &'static str)>,
    action: String,
    /// Whether `action` is one of the choices (a code from a row's link is
    /// added as a choice of its own).
    known_action: bool,
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
    let names = state.usher().audit_names(&page.actor, &events).await?;
    Ok(AuditPage {
        layout: page.layout,
        actions: ACTIONS.to_vec(),
        known_action: ACTIONS.iter().any(|(value, _)| *value == query.action),
        action: query.action.clone(),
        person: query.person.clone(),
        count,
        first: skip + 1,
        last: skip + shown,
        newer: (skip > 0).then(|| page_url((skip - PAGE).max(0))),
        older: (skip + shown < count).then(|| page_url(skip + PAGE)),
        events: events
            .into_iter()
            .map(|e| {
                let who = e
                    .actor_id
                    .and_then(|id| names.get(&id.to_string()).cloned())
                    .or_else(|| e.actor_email.clone());
                let whom = e
                    .target
                    .as_ref()
                    .map(|t| names.get(t).cloned().unwrap_or_else(|| t.clone()));
                EventRow {
                    at: rfc3339(e.at)
                        .replace('T', " ")
                        .trim_end_matches('Z')
                        .chars()
                        .take(19)
                        .collect(),
                    words: in_words(&e.action, who.as_deref(), whom.as_deref(), &e.detail),
                    actor: e.actor_email.unwrap_or_else(|| "(nobody signed in)".into()),
                    action_filter: format!(
                        "{}?action={}",
                        state.path("/settings/audit"),
                        percent_encode(&e.action, b"")
                    ),
                    action: e.action,
                    target: e.target.unwrap_or_default(),
                    ip: e.ip,
                }
            })
            .collect(),
    }
    .into_response())
}

/// A role as people say it: `global:admin` is "admin", `project:editor` is
/// "editor".
fn role_words(text: &str) -> String {
    text.replace("global:", "")
        .replace("project:personalOwner", "owner")
        .replace("project:", "")
}

/// An event as a sentence: who did what to whom. `who` and `whom` are
/// names where the people still exist, else what the event kept; codes
/// Usher does not know yet read as the code with its details.
fn in_words(action: &str, who: Option<&str>, whom: Option<&str>, detail: &str) -> String {
    let who = who.unwrap_or("Someone not signed in");
    let whom = whom.unwrap_or("someone");
    let same = who == whom;
    let own = |what: &str| {
        if same {
            format!("{who} {what}")
        } else {
            format!("{who} {what} for {whom}")
        }
    };
    let quoted = |what: &str| format!("{who} {what} “{detail}”");
    // `<name> in <project>`, as the services write it.
    let created_in = |what: &str| match detail.rsplit_once(" in ") {
        Some((name, project)) => format!("{who} created the {what} “{name}” in {project}"),
        None => format!("{who} created the {what} “{detail}”"),
    };
    let with_detail = |sentence: String| {
        if detail.is_empty() {
            sentence
        } else {
            format!("{sentence} ({detail})")
        }
    };
    match action {
        "login.succeeded" => format!("{whom} signed in"),
        "login.failed" => with_detail("A sign-in failed".to_owned()),
        "logout" => format!("{who} signed out"),
        "owner.setup" => format!("{who} set up the owner account"),
        "owner.setup_skipped" => {
            "Owner set-up was skipped: anyone who could reach the instance had full access"
                .to_owned()
        }
        "owner.transferred" => format!("{who} handed ownership to {whom}"),
        "owner.open_access_revoked" => with_detail(format!(
            "{who} revoked what was made while the instance was open"
        )),
        "invitation.sent" => format!("{who} invited {whom}"),
        "invitation.accepted" => format!("{whom} accepted their invitation"),
        "invitation.revoked" => format!("{who} withdrew the invitation of {whom}"),
        "invitation.link_renewed" => format!("{who} renewed the invitation link of {whom}"),
        "user.created" => format!("{who} added {whom} with a temporary password"),
        "user.deleted" => with_detail(format!("{who} deleted {whom}")),
        "user.role_changed" => format!(
            "{who} changed the role of {whom} from {}",
            role_words(detail)
        ),
        "user.profile_updated" => with_detail(if same {
            format!("{who} changed their details")
        } else {
            format!("{who} changed the details of {whom}")
        }),
        "user.password_changed" => {
            if same {
                format!("{who} changed their password")
            } else {
                format!("{who} changed the password of {whom}")
            }
        }
        "password_reset.requested" => format!("A password reset link was sent to {whom}"),
        "password_reset.link_created" => own("made a password reset link"),
        "password_reset.forced" => format!("{who} forced a password reset for {whom}"),
        "password_reset.completed" => format!("{whom} chose a new password with a reset link"),
        "password_reset.voided" => {
            with_detail(format!("The password reset link of {whom} was voided"))
        }
        "mfa.enabled" => own("turned on two-factor authentication"),
        "mfa.disabled" => own("turned off two-factor authentication"),
        "mfa.recovery_codes_regenerated" => own("made new recovery codes"),
        "mfa.enforcement" => with_detail(format!(
            "{who} changed whether everyone must use two-factor authentication"
        )),
        "api_key.created" => quoted("created the API key"),
        "api_key.deleted" => quoted("deleted the API key"),
        "settings.invite_email" => format!("{who} changed the invitation email"),
        "ldap.settings_saved" => with_detail(format!("{who} saved the LDAP settings")),
        "ldap.user_created" => with_detail(format!("{whom} was added from the directory")),
        "ldap.user_linked" => with_detail(format!("{whom} was linked to the directory")),
        "ldap.sync" if who.starts_with("Someone") => {
            format!("Scheduled LDAP synchronisation: {detail}")
        }
        "ldap.sync" => format!("{who} synchronised with the directory: {detail}"),
        "user_management.reset" => "User management was reset to its first-run state".to_owned(),
        "workflow.created" => created_in("workflow"),
        "workflow.updated" => quoted("changed the workflow"),
        "workflow.deleted" => quoted("deleted the workflow"),
        "credential.created" => created_in("credential"),
        "credential.updated" => quoted("changed the credential"),
        "credential.deleted" => quoted("deleted the credential"),
        "tag.deleted" => quoted("deleted the tag"),
        "project.created" => quoted("created the project"),
        "project.deleted" => quoted("deleted the project"),
        "project.member_set" => format!("{who} made {whom} {}", role_words(detail)),
        "project.member_removed" => format!("{who} removed {whom} from “{detail}”"),
        other => with_detail(format!("{who}: {other}, {whom}")),
    }
}

#[cfg(test)]
mod tests {
    use super::in_words;

    #[test]
    fn events_read_as_sentences_naming_both_people() {
        assert_eq!(
            in_words(
                "password_reset.forced",
                Some("Olivia Owner"),
                Some("Ann Lee"),
                ""
            ),
            "Olivia Owner forced a password reset for Ann Lee"
        );
        assert_eq!(
            in_words(
                "user.role_changed",
                Some("Olivia Owner"),
                Some("Ann Lee"),
                "global:member to global:admin"
            ),
            "Olivia Owner changed the role of Ann Lee from member to admin"
        );
        assert_eq!(
            in_words("mfa.enabled", Some("Ann Lee"), Some("Ann Lee"), ""),
            "Ann Lee turned on two-factor authentication"
        );
        assert_eq!(
            in_words("something.new", None, None, "x"),
            "Someone not signed in: something.new, someone (x)"
        );
    }
}
