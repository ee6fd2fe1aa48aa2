//! `/settings/users`: everyone, invitations, and users added directly.

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
    model::{Role, User, UserId},
    service::{
        Usher,
        invitations::{InviteRequest, Invited},
        onboarding::{Created, NewUser},
    },
};

use super::{Layout, Result, Shown, SignedInPage, day, moment, percent_encode};
use crate::{
    AppState,
    extract::{ClientOrigin, Id},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/users", get(view_users_get))
        .route("/settings/users/invite", post(view_users_invite))
        .route("/settings/users/create", post(view_users_create))
        .route("/settings/users/{id}/resend", post(view_users_resend))
        .route("/settings/users/{id}/link", post(view_users_link))
        .route("/settings/users/{id}/link/renew", post(view_users_renew))
        .route("/settings/users/{id}/revoke", post(view_users_revoke))
}

struct UserRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    status: String,
    pending: bool,
}

struct InvitedRow {
    email: String,
    email_sent: bool,
    link: Option<String>,
    /// Until when the link works, in words.
    until: String,
    error: Option<String>,
}

struct CreatedRow {
    email: String,
    password: Option<String>,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/users.html")]
struct UsersPage {
    layout: Layout,
    owner_set_up: bool,
    can_manage: bool,
    is_owner: bool,
    mail_configured: bool,
    links_allowed: bool,
    users: Vec<UserRow>,
    invited: Vec<InvitedRow>,
    created: Vec<CreatedRow>,
    csv: String,
    notice: Option<String>,
    error: Option<String>,
}

/// Who a post invited or added, for the page to list with their links or
/// temporary passwords (shown once).
#[derive(Default)]
struct Added {
    invited: Vec<Invited>,
    created: Vec<Created>,
}

impl Added {
    fn invited(invited: Vec<Invited>) -> Self {
        Self {
            invited,
            ..Self::default()
        }
    }
}

pub(super) fn status(user: &User, everyone: &[User]) -> String {
    if user.is_pending() {
        let by = user
            .invited_by
            .and_then(|id| everyone.iter().find(|u| u.id == id))
            .map(|u| format!(" by {}", u.display_name()))
            .unwrap_or_default();
        format!(
            "Pending: invited {}{by}",
            day(user.invited_at.unwrap_or(user.created_at))
        )
    } else if user.password_change_required {
        "Active: must choose a password at next sign-in".to_owned()
    } else {
        format!("Active since {}", day(user.created_at))
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

async fn render(state: &AppState, page: SignedInPage, shown: Shown<Added>) -> Result {
    let actor = &page.actor;
    let everyone = state.usher().users(actor).await?;
    let users = everyone
        .iter()
        .map(|u| UserRow {
            id: u.id.to_string(),
            // A pending user has no name yet: the email column says who it is.
            name: format!("{} {}", u.first_name, u.last_name)
                .trim()
                .to_owned(),
            email: u.email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
            role: u.role.label(),
            // Members see others' names, emails and roles only, as in the API.
            status: if Usher::sees_full_profile(actor, u) {
                status(u, &everyone)
            } else {
                String::new()
            },
            pending: u.is_pending(),
        })
        .collect();
    let mut csv = String::new();
    let Shown {
        notice,
        error,
        with: added,
    } = shown;
    if added.created.iter().any(|c| c.temporary_password.is_some()) {
        csv.push_str("email,first name,last name,role,temporary password\n");
        for created in &added.created {
            if let (Some(user), Some(password)) = (&created.user, &created.temporary_password) {
                let fields = [
                    created.email.as_str(),
                    &user.first_name,
                    &user.last_name,
                    user.role.as_str(),
                    password.expose(),
                ];
                csv.push_str(
                    &fields
                        .iter()
                        .map(|f| csv_field(f))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                csv.push('\n');
            }
        }
    }
    let owner_set_up = page.instance.owner_set_up;
    Ok(UsersPage {
        layout: page.layout.at("/settings/users"),
        owner_set_up,
        can_manage: actor.user.role.manages_users() && owner_set_up,
        is_owner: actor.user.role == Role::Owner,
        mail_configured: state.usher().mail_configured(),
        links_allowed: !state.settings().mail.invite_links_email_only,
        users,
        invited: added
            .invited
            .into_iter()
            .map(|i| InvitedRow {
                email: i.email,
                email_sent: i.email_sent,
                link: i.accept_url,
                until: i.expires_at.map(moment).unwrap_or_default(),
                error: i.error,
            })
            .collect(),
        created: added
            .created
            .into_iter()
            .map(|c| CreatedRow {
                email: c.email,
                password: c.temporary_password.map(|p| p.expose().to_owned()),
                error: c.error,
            })
            .collect(),
        csv: percent_encode(&csv, b""),
        notice,
        error,
    }
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsersQuery {
    /// Set after a user was deleted from their page: what became of their work.
    deleted: Option<String>,
}

async fn view_users_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Query(query): Query<UsersQuery>,
) -> Result {
    let notice = query.deleted.map(|done| {
        match done.as_str() {
            "transferred" => {
                "The user is deleted; their workflows and credentials were transferred."
            }
            "deleted" => "The user is deleted, with their workflows and credentials.",
            _ => "The user is deleted.",
        }
        .to_owned()
    });
    render(&state, page, notice.map(Shown::notice).unwrap_or_default()).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InviteForm {
    emails: String,
    role: String,
}

/// Emails separated by commas, semicolons, spaces or new lines.
fn split_emails(text: &str) -> Vec<String> {
    text.split([',', ';', '\n', '\r', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn view_users_invite(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<InviteForm>,
) -> Result {
    let role = Some(form.role).filter(|r| !r.is_empty());
    let requests: Vec<InviteRequest> = split_emails(&form.emails)
        .into_iter()
        .map(|email| InviteRequest {
            email,
            role: role.clone(),
        })
        .collect();
    let invited = if requests.is_empty() {
        // The service takes an empty list as nothing to do (n8n's `[]`);
        // on the form it is a form sent blank.
        Err(usher_domain::Error::field(
            "emails",
            "Add at least one email address.",
        ))
    } else {
        state.usher().invite(&page.actor, requests, &origin).await
    };
    let shown = Shown::of(invited, |invited| {
        Shown::default().with(Added::invited(invited))
    });
    render(&state, page, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateForm {
    lines: String,
    role: String,
}

async fn view_users_create(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<CreateForm>,
) -> Result {
    let role = Some(form.role).filter(|r| !r.is_empty());
    let users = form
        .lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.split(',').map(str::trim);
            NewUser {
                email: parts.next().unwrap_or_default().to_owned(),
                first_name: parts.next().unwrap_or_default().to_owned(),
                last_name: parts.next().unwrap_or_default().to_owned(),
                role: role.clone(),
            }
        })
        .collect();
    let created = state
        .usher()
        .create_users(&page.actor, users, &origin)
        .await;
    let shown = Shown::of(created, |created| {
        Shown::default().with(Added {
            created,
            ..Added::default()
        })
    });
    render(&state, page, shown).await
}

/// Emails a pending user their link again (the same one).
async fn view_users_resend(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
) -> Result {
    let sent = state
        .usher()
        .resend_invitation(&page.actor, id, &origin)
        .await;
    render_link(&state, page, sent).await
}

/// The link to copy, without an email: the one sent before, which still
/// works, unless it cannot be shown again.
async fn view_users_link(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
) -> Result {
    let link = state.usher().invite_link(&page.actor, id, &origin).await;
    render_link(&state, page, link).await
}

/// "Make a new link": the earlier links stop working.
async fn view_users_renew(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
) -> Result {
    let made = state
        .usher()
        .renew_invite_link(&page.actor, id, &origin)
        .await;
    render_link(&state, page, made).await
}

/// The page after an action on one invitation: its link, and whether it is
/// the one sent before or a new one (which voided the old: made on request,
/// or because the old one could not be shown again).
async fn render_link(
    state: &AppState,
    page: SignedInPage,
    done: usher_domain::Result<Invited>,
) -> Result {
    let shown = Shown::of(done, |invited| {
        Shown::notice(if invited.new_link {
            "A new invitation link is made; earlier links for this person no longer work."
        } else {
            "The invitation link is the same link as before, which still works."
        })
        .with(Added::invited(vec![invited]))
    });
    render(state, page, shown).await
}

async fn view_users_revoke(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
) -> Result {
    let revoked = state
        .usher()
        .revoke_invitation(&page.actor, id, &origin)
        .await;
    let shown = Shown::of(revoked, |()| {
        Shown::notice("The invitation is withdrawn; its link no longer works.")
    });
    render(&state, page, shown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_can_be_separated_by_commas_spaces_or_lines() {
        assert_eq!(
            split_emails("a@x.io, b@x.io\nc@x.io;  d@x.io"),
            vec!["a@x.io", "b@x.io", "c@x.io", "d@x.io"]
        );
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("Lee, Ann"), "\"Lee, Ann\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
