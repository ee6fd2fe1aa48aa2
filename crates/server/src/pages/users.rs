//! `/settings/users`: the list first, as n8n and Budibase show it (search,
//! filters, orders and keyset pages, all in the address), with "Invite" and
//! "Add users" opening a dialog (the pages `/settings/users/invite` and
//! `/settings/users/add` without script), and per row the role as a small
//! form and a "…" menu of actions.
//!
//! Every form answers with a redirect (`done`): what it made to show once
//! (invitation links, temporary passwords) travels in the flash.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::IntoResponse,
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use usher_domain::{
    model::{Role, User, UserId},
    service::{
        invitations::{InviteRequest, Invited},
        onboarding::{Created, NewUser},
        user_browse::{Browse, Cursor},
    },
    store::{OrderKey, UserOrder, UserStatus},
};

use super::{
    Layout, Result, Shown, SignedInPage,
    confirm::{self, Confirmation},
    day, done, flash, initials, moment, percent_encode,
};
use crate::{
    AppState,
    extract::{ClientOrigin, Id},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/users", get(view_users_get))
        .route(
            "/settings/users/invite",
            get(view_users_invite_get).post(view_users_invite),
        )
        .route(
            "/settings/users/add",
            get(view_users_add_get).post(view_users_create),
        )
        // The form's address before the add page had its own.
        .route("/settings/users/create", post(view_users_create))
        .route("/settings/users/{id}/resend", post(view_users_resend))
        .route("/settings/users/{id}/link", post(view_users_link))
        .route("/settings/users/{id}/link/renew", post(view_users_renew))
        .route("/settings/users/{id}/revoke", post(view_users_revoke))
}

// ------------------------------------------------------------- the query

/// The list's state, all in the address so that a page can be linked and
/// reloaded: `q`, `role`, `status`, `sort` (`name`, `-name`, `email`, …),
/// and `after` or `before` a row.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct ListQuery {
    q: String,
    role: String,
    status: String,
    sort: String,
    after: String,
    before: String,
    /// Set by links from before the flash: what became of a deleted user.
    deleted: Option<String>,
}

const SORTS: [(&str, &str); 8] = [
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("email", "Email, A to Z"),
    ("-email", "Email, Z to A"),
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("-active", "Recently active"),
    ("active", "Least recently active"),
];

const ROLES: [(&str, &str); 3] = [("owner", "Owner"), ("admin", "Admin"), ("member", "Member")];

const STATUSES: [(&str, &str); 4] = [
    ("active", "Active"),
    ("pending", "Pending"),
    ("must-change", "Must change password"),
    ("2fa", "Two-factor on"),
];

fn parse_role(text: &str) -> Option<Role> {
    match text {
        "owner" => Some(Role::Owner),
        "admin" => Some(Role::Admin),
        "member" => Some(Role::Member),
        _ => None,
    }
}

fn parse_status(text: &str) -> Option<UserStatus> {
    match text {
        "active" => Some(UserStatus::Active),
        "pending" => Some(UserStatus::Pending),
        "must-change" => Some(UserStatus::MustChangePassword),
        "2fa" => Some(UserStatus::TwoFactor),
        _ => None,
    }
}

fn parse_sort(text: &str) -> (UserOrder, bool) {
    let (descending, field) = match text.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, text),
    };
    let order = match field {
        "email" => UserOrder::Email,
        "created" => UserOrder::Created,
        "active" => UserOrder::LastActive,
        _ => return (UserOrder::Name, false),
    };
    (order, descending)
}

/// A cursor in the address: its key (`t` text or `n` number, then the
/// value) in URL-safe base64, a dot, and the row's id.
fn encode_cursor((key, id): &Cursor) -> String {
    let key = match key {
        OrderKey::Text(text) => format!("t{text}"),
        OrderKey::Number(number) => format!("n{number}"),
    };
    format!("{}.{id}", URL_SAFE_NO_PAD.encode(key))
}

/// The cursor of an address; None (the first page) for anything else.
fn decode_cursor(text: &str) -> Option<Cursor> {
    let (key, id) = text.split_once('.')?;
    let id = UserId::parse(id)?;
    let key = String::from_utf8(URL_SAFE_NO_PAD.decode(key).ok()?).ok()?;
    let key = match key.split_at_checked(1)? {
        ("t", text) => OrderKey::Text(text.to_owned()),
        ("n", number) => OrderKey::Number(number.parse().ok()?),
        _ => return None,
    };
    Some((key, id))
}

impl ListQuery {
    /// The address of the list with these filters, and `extra` (a cursor).
    fn link(&self, base: &str, extra: Option<(&str, String)>) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("q", self.q.trim()),
            ("role", self.role.as_str()),
            ("status", self.status.as_str()),
            ("sort", self.sort.as_str()),
        ] {
            if !value.is_empty() {
                parts.push(format!("{name}={}", percent_encode(value, b"")));
            }
        }
        if let Some((name, value)) = extra {
            parts.push(format!("{name}={}", percent_encode(&value, b"")));
        }
        if parts.is_empty() {
            format!("{base}/settings/users")
        } else {
            format!("{base}/settings/users?{}", parts.join("&"))
        }
    }

    fn filtered(&self) -> bool {
        !self.q.trim().is_empty() || !self.role.is_empty() || !self.status.is_empty()
    }
}

/// Where a form on the list goes back to: the list as it was (its filters
/// and page, sent along as `back`), or `fallback`. Only addresses of the
/// users pages, made of the characters a query of ours has.
pub(super) fn back_to(back: &str, fallback: &str) -> String {
    let safe = back.starts_with("/settings/users")
        && !back.contains("//")
        && back
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/?&=%-._~".contains(&b));
    if safe {
        back.to_owned()
    } else {
        fallback.to_owned()
    }
}

// -------------------------------------------------------------- the page

struct UserRow {
    id: String,
    /// The name, or the email when there is none (a pending user).
    name: String,
    has_name: bool,
    email: String,
    initials: String,
    role: &'static str,
    role_name: &'static str,
    owner: bool,
    pending: bool,
    must_change: bool,
    mfa: bool,
    /// Signs in with the company directory (LDAP).
    directory: bool,
    /// Left the directory: cannot sign in.
    disabled: bool,
    last_active: String,
    /// The viewer may change their role here (not the owner, not oneself).
    can_change_role: bool,
    /// The viewer may act on them: a menu of actions.
    can_manage: bool,
    can_reset: bool,
    can_delete: bool,
}

/// What the page shows once after an invitation.
#[derive(Serialize, Deserialize, Default)]
struct InvitedRow {
    email: String,
    email_sent: bool,
    link: Option<String>,
    /// Until when the link works, in words.
    until: String,
    error: Option<String>,
}

/// What the page shows once after users were added directly.
#[derive(Serialize, Deserialize, Default)]
struct CreatedRow {
    email: String,
    first_name: String,
    last_name: String,
    role: String,
    password: Option<String>,
    error: Option<String>,
}

/// Who a post invited or added, for the list to show once with their links
/// or temporary passwords.
#[derive(Serialize, Deserialize, Default)]
struct Added {
    #[serde(default)]
    invited: Vec<InvitedRow>,
    #[serde(default)]
    created: Vec<CreatedRow>,
}

impl Added {
    fn invited(invited: Vec<Invited>) -> Self {
        Self {
            invited: invited.into_iter().map(invited_row).collect(),
            ..Self::default()
        }
    }
}

fn invited_row(i: Invited) -> InvitedRow {
    InvitedRow {
        email: i.email,
        email_sent: i.email_sent,
        link: i.accept_url,
        until: i.expires_at.map(moment).unwrap_or_default(),
        error: i.error,
    }
}

/// The invite and add forms as typed, shown again with the reason when
/// they were refused.
#[derive(Default)]
struct Typed {
    emails: String,
    lines: String,
    role: String,
    invite_error: Option<String>,
    add_error: Option<String>,
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
    rows: Vec<UserRow>,
    added: Added,
    csv: String,
    notice: Option<String>,
    error: Option<String>,
    q: String,
    role: String,
    status: String,
    sort: String,
    roles: [(&'static str, &'static str); 3],
    statuses: [(&'static str, &'static str); 4],
    sorts: Vec<(&'static str, &'static str)>,
    filtered: bool,
    next: Option<String>,
    previous: Option<String>,
    first: Option<String>,
    /// This list's address, for the forms on it to come back to.
    back: String,
    typed: Typed,
}

/// The page with the invite or the add form alone: where the buttons lead
/// without script, and where a refused form shows again.
#[derive(Template, WebTemplate)]
#[template(path = "pages/users_add.html")]
struct AddPage {
    layout: Layout,
    /// `invite` or `add`.
    mode: &'static str,
    mail_configured: bool,
    typed: Typed,
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

/// When someone was last active, in words: today, yesterday, or the day.
pub(super) fn last_active(user: &User, now: i64) -> String {
    const DAY: i64 = 86_400_000;
    match user.last_active_at {
        None => "Never".to_owned(),
        Some(at) => {
            let today = now - now.rem_euclid(DAY);
            if at >= today {
                "Today".to_owned()
            } else if at >= today - DAY {
                "Yesterday".to_owned()
            } else {
                day(at)
            }
        }
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn csv_of(created: &[CreatedRow]) -> String {
    if !created.iter().any(|c| c.password.is_some()) {
        return String::new();
    }
    let mut csv = String::from("email,first name,last name,role,temporary password\n");
    for row in created {
        if let Some(password) = &row.password {
            let fields = [
                row.email.as_str(),
                &row.first_name,
                &row.last_name,
                &row.role,
                password,
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&line.join(","));
            csv.push('\n');
        }
    }
    csv
}

fn user_row(actor: &usher_domain::service::auth::Actor, user: &User, now: i64) -> UserRow {
    let manages = actor.user.role.manages_users();
    let is_self = user.id == actor.user.id;
    let owner = user.role == Role::Owner;
    let name = format!("{} {}", user.first_name, user.last_name)
        .trim()
        .to_owned();
    UserRow {
        id: user.id.to_string(),
        has_name: !name.is_empty(),
        name: user.display_name(),
        email: user
            .email
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        initials: initials(user),
        role: user.role.label(),
        role_name: user.role.as_str(),
        owner,
        pending: user.is_pending(),
        must_change: user.password_change_required,
        mfa: user.mfa_enabled,
        directory: user.is_ldap(),
        disabled: user.disabled,
        last_active: last_active(user, now),
        can_change_role: manages && !owner && !is_self,
        can_manage: manages && !is_self,
        can_reset: manages
            && !is_self
            && !user.is_pending()
            && !user.is_ldap()
            && (!owner || actor.user.role == Role::Owner),
        can_delete: manages && !owner && !is_self,
    }
}

async fn render(
    state: &AppState,
    page: SignedInPage,
    query: &ListQuery,
    shown: Shown<Added>,
    typed: Typed,
) -> Result {
    let actor = &page.actor;
    let can_manage = actor.user.role.manages_users() && page.instance.owner_set_up;
    let (order, descending) = parse_sort(&query.sort);
    let browse = Browse {
        text: query.q.clone(),
        role: parse_role(&query.role),
        status: parse_status(&query.status).filter(|_| can_manage),
        order: if order == UserOrder::LastActive && !can_manage {
            UserOrder::Name
        } else {
            order
        },
        descending,
        after: decode_cursor(&query.after),
        before: decode_cursor(&query.before),
        ..Browse::default()
    };
    let browsed = state.usher().browse_users(actor, &browse).await?;
    let now = state.usher().now();
    let base = &page.layout.base;
    let on_later_page = browse.after.is_some() || browse.before.is_some();
    let Shown {
        notice,
        error,
        with: added,
    } = shown;
    let csv = csv_of(&added.created);
    let back = query
        .link(
            "",
            browse.after.as_ref().map(|c| ("after", encode_cursor(c))),
        )
        .to_owned();
    Ok(UsersPage {
        layout: page.layout.clone().at(&back),
        owner_set_up: page.instance.owner_set_up,
        can_manage,
        is_owner: actor.user.role == Role::Owner,
        mail_configured: state.usher().mail_configured(),
        links_allowed: !state.settings().mail.invite_links_email_only,
        rows: browsed
            .users
            .iter()
            .map(|u| user_row(actor, u, now))
            .collect(),
        added,
        csv: percent_encode(&csv, b""),
        notice,
        error,
        q: query.q.clone(),
        role: query.role.clone(),
        status: query.status.clone(),
        sort: query.sort.clone(),
        roles: ROLES,
        statuses: STATUSES,
        sorts: SORTS
            .into_iter()
            .filter(|(value, _)| can_manage || !value.ends_with("active"))
            .collect(),
        filtered: query.filtered(),
        next: browsed
            .next
            .as_ref()
            .map(|c| query.link(base, Some(("after", encode_cursor(c))))),
        previous: browsed
            .previous
            .as_ref()
            .map(|c| query.link(base, Some(("before", encode_cursor(c))))),
        first: on_later_page.then(|| query.link(base, None)),
        back,
        typed,
    }
    .into_response())
}

async fn view_users_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Query(query): Query<ListQuery>,
) -> Result {
    let notice = query.deleted.as_deref().map(|done| {
        match done {
            "transferred" => {
                "The user is deleted; their workflows and credentials were transferred."
            }
            "deleted" => "The user is deleted, with their workflows and credentials.",
            _ => "The user is deleted.",
        }
        .to_owned()
    });
    let added = flash::once::<Added>().unwrap_or_default();
    let shown = Shown {
        notice,
        error: None,
        with: added,
    };
    render(&state, page, &query, shown, Typed::default()).await
}

// ------------------------------------------------- inviting and adding

async fn view_users_invite_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    page.actor.user.role.require_user_manager()?;
    add_page(&state, page, "invite", Typed::default())
}

async fn view_users_add_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    page.actor.user.role.require_user_manager()?;
    add_page(&state, page, "add", Typed::default())
}

fn add_page(state: &AppState, page: SignedInPage, mode: &'static str, typed: Typed) -> Result {
    let path = format!("/settings/users/{mode}");
    Ok(AddPage {
        layout: page.layout.at(&path),
        mode,
        mail_configured: state.usher().mail_configured(),
        typed,
    }
    .into_response())
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

/// "Ann is invited", "3 people are invited", and who could not be.
fn invited_notice(invited: &[InvitedRow]) -> String {
    let done: Vec<&InvitedRow> = invited.iter().filter(|i| i.error.is_none()).collect();
    let failed = invited.len() - done.len();
    let mut notice = match done.as_slice() {
        [] => "No one is invited.".to_owned(),
        [one] => format!("{} is invited.", one.email),
        many => format!("{} people are invited.", many.len()),
    };
    if failed > 0 {
        notice.push_str(&format!(" {failed} could not be: see below."));
    }
    notice
}

async fn view_users_invite(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<InviteForm>,
) -> Result {
    let role = Some(form.role.clone()).filter(|r| !r.is_empty());
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
    // No one invited: the form again, as typed, with each reason.
    let invited = invited.and_then(|invited| {
        if invited.iter().all(|i| i.user.is_none()) {
            let reasons: Vec<String> = invited.into_iter().filter_map(|i| i.error).collect();
            Err(usher_domain::Error::field("emails", reasons.join(" ")))
        } else {
            Ok(invited)
        }
    });
    match invited {
        Ok(invited) => {
            let added = Added::invited(invited);
            let notice = invited_notice(&added.invited);
            Ok(done(&state, "/settings/users", notice, added))
        }
        Err(error) => {
            let typed = Typed {
                emails: form.emails,
                role: form.role,
                invite_error: Some(crate::error::ApiError::from(error).message),
                ..Typed::default()
            };
            add_page(&state, page, "invite", typed)
        }
    }
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
    let role = Some(form.role.clone()).filter(|r| !r.is_empty());
    let users: Vec<NewUser> = form
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
    let created = if users.is_empty() {
        Err(usher_domain::Error::field(
            "lines",
            "Add at least one user: an email, and optionally a first and last name.",
        ))
    } else {
        state
            .usher()
            .create_users(&page.actor, users, &origin)
            .await
    };
    match created {
        Ok(created) => {
            let rows: Vec<CreatedRow> = created.into_iter().map(created_row).collect();
            let made = rows.iter().filter(|r| r.password.is_some()).count();
            let notice = match made {
                0 => "No user is added.".to_owned(),
                1 => format!(
                    "{} is added: pass on the temporary password below.",
                    rows.iter()
                        .find(|r| r.password.is_some())
                        .map(|r| r.email.as_str())
                        .unwrap_or_default()
                ),
                n => format!("{n} users are added: pass on their temporary passwords below."),
            };
            let added = Added {
                created: rows,
                ..Added::default()
            };
            Ok(done(&state, "/settings/users", notice, added))
        }
        Err(error) => {
            let typed = Typed {
                lines: form.lines,
                role: form.role,
                add_error: Some(crate::error::ApiError::from(error).message),
                ..Typed::default()
            };
            add_page(&state, page, "add", typed)
        }
    }
}

fn created_row(c: Created) -> CreatedRow {
    CreatedRow {
        first_name: c
            .user
            .as_ref()
            .map(|u| u.first_name.clone())
            .unwrap_or_default(),
        last_name: c
            .user
            .as_ref()
            .map(|u| u.last_name.clone())
            .unwrap_or_default(),
        role: c
            .user
            .as_ref()
            .map(|u| u.role.as_str().to_owned())
            .unwrap_or_default(),
        email: c.email,
        password: c.temporary_password.map(|p| p.expose().to_owned()),
        error: c.error,
    }
}

// --------------------------------------------------- one invitation

/// The list to come back to, sent along by the row's forms.
#[derive(Deserialize, Serialize, Default)]
#[serde(default)]
struct RowForm {
    back: String,
    confirmed: Option<String>,
}

/// Emails a pending user their link again (the same one).
async fn view_users_resend(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<RowForm>,
) -> Result {
    let sent = state
        .usher()
        .resend_invitation(&page.actor, id, &origin)
        .await;
    link_done(&state, page, &form, sent).await
}

/// The link to copy, without an email: the one sent before, which still
/// works, unless it cannot be shown again.
async fn view_users_link(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<RowForm>,
) -> Result {
    let link = state.usher().invite_link(&page.actor, id, &origin).await;
    link_done(&state, page, &form, link).await
}

/// "Make a new link": the earlier links stop working.
async fn view_users_renew(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<RowForm>,
) -> Result {
    let made = state
        .usher()
        .renew_invite_link(&page.actor, id, &origin)
        .await;
    link_done(&state, page, &form, made).await
}

/// The list after an action on one invitation, with its link once, and
/// whether it is the one sent before or a new one (which voided the old).
async fn link_done(
    state: &AppState,
    page: SignedInPage,
    form: &RowForm,
    done_: usher_domain::Result<Invited>,
) -> Result {
    match done_ {
        Ok(invited) => {
            let notice = if invited.new_link {
                format!(
                    "A new invitation link is made for {}; earlier links no longer work.",
                    invited.email
                )
            } else if invited.email_sent {
                format!(
                    "The invitation is emailed to {} again, with the same link, which still works.",
                    invited.email
                )
            } else {
                format!(
                    "The invitation link for {} is the same link as before, which still works.",
                    invited.email
                )
            };
            let to = back_to(&form.back, "/settings/users");
            Ok(done(state, &to, notice, Added::invited(vec![invited])))
        }
        Err(error) => {
            let query = ListQuery::default();
            render(state, page, &query, Shown::refused(error), Typed::default()).await
        }
    }
}

async fn view_users_revoke(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<RowForm>,
) -> Result {
    let confirmation = Confirmation {
        confirmed: form.confirmed.clone(),
    };
    let who = state
        .usher()
        .users(&page.actor)
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .map(|u| u.display_name())
        .unwrap_or_else(|| "this person".to_owned());
    if !confirmation.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            format!("Withdraw the invitation for {who}?"),
            "Their link stops working and they are removed from the list.",
            "Withdraw invitation",
            &format!("/settings/users/{id}/revoke"),
            &back_to(&form.back, "/settings/users"),
            &form,
        ));
    }
    let revoked = state
        .usher()
        .revoke_invitation(&page.actor, id, &origin)
        .await;
    match revoked {
        Ok(()) => Ok(done(
            &state,
            &back_to(&form.back, "/settings/users"),
            format!("The invitation for {who} is withdrawn; its link no longer works."),
            (),
        )),
        Err(error) => {
            let query = ListQuery::default();
            render(
                &state,
                page,
                &query,
                Shown::refused(error),
                Typed::default(),
            )
            .await
        }
    }
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

    #[test]
    fn cursors_survive_the_address_and_nonsense_is_the_first_page() {
        let Some(id) = UserId::parse("0190a5a0-0000-7000-8000-000000000001") else {
            panic!("the test's id does not parse");
        };
        for key in [
            OrderKey::Text("ann lee, ümlaut & co".into()),
            OrderKey::Number(1_700_000_000_000),
            OrderKey::Text(String::new()),
        ] {
            let cursor = (key, id);
            assert_eq!(decode_cursor(&encode_cursor(&cursor)), Some(cursor));
        }
        for bad in [
            "",
            ".",
            "x.y",
            "dA.not-an-id",
            "!!!.0190a5a0-0000-7000-8000-000000000001",
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn forms_go_back_only_to_the_users_pages() {
        assert_eq!(
            back_to("/settings/users?q=ann&role=admin", "/x"),
            "/settings/users?q=ann&role=admin"
        );
        for bad in [
            "//evil.example",
            "/settings/users//evil",
            "https://evil",
            "/settings/users?q=\n",
            "/home",
        ] {
            assert_eq!(back_to(bad, "/settings/users"), "/settings/users", "{bad}");
        }
    }
}
