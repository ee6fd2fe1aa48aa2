//! A user's page, `/settings/users/<id>`: who they are, their role and
//! project roles, a password reset link, and at the bottom a danger zone
//! (force a reset, remove two-factor, hand over ownership, delete with
//! their work), each action asking first and answering with a redirect
//! whose notice names the person.
//!
//! The page reads the one user, never the whole list: it stays as fast
//! with a hundred thousand users as with ten. The person who takes a
//! leaving user's work is found by a search (`find_people`), not a list.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::IntoResponse,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use usher_domain::{
    Error,
    model::{Role, User, UserId},
    resources::{Project, ProjectKind},
    secret::Secret,
    service::{Usher, auth::Actor},
};

use super::{
    Layout, Result, Shown, SignedInPage,
    confirm::{self, Confirmation},
    day, done, flash, initials,
    resources::kind_label,
    users,
};
use crate::{
    AppState,
    extract::{ClientOrigin, Id},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/users/{id}", get(view_user_get))
        .route(
            "/settings/users/{id}/reset-link",
            post(view_user_reset_link),
        )
        .route(
            "/settings/users/{id}/force-reset",
            post(view_user_force_reset),
        )
        .route("/settings/users/{id}/role", post(view_user_role))
        .route(
            "/settings/users/{id}/make-owner",
            post(view_user_make_owner),
        )
        .route(
            "/settings/users/{id}/project-role",
            post(view_user_project_role),
        )
        .route(
            "/settings/users/{id}/two-factor",
            post(view_user_two_factor),
        )
        .route("/settings/users/{id}/delete", post(view_user_delete))
        .route("/settings/users/{id}/people", get(view_user_people))
}

/// A person offered for a "pick a person" field.
struct PersonOption {
    /// What the field takes: their email.
    value: String,
    label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/user.html")]
struct UserPage {
    layout: Layout,
    id: String,
    name: String,
    email: String,
    initials: String,
    role: &'static str,
    status: String,
    last_active: String,
    created: String,
    role_name: &'static str,
    owner: bool,
    mfa: bool,
    must_change: bool,
    can_reset: bool,
    can_change_role: bool,
    can_make_owner: bool,
    can_remove_mfa: bool,
    reset_link: Option<String>,
    temporary_password: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    /// Their project roles, and the team projects their work could go to.
    work: UserWork,
    pending: bool,
    /// Not for the owner, nor for oneself.
    can_delete: bool,
    /// The delete form as typed, and the people it could mean.
    delete: DeleteForm,
    candidates: Vec<PersonOption>,
}

/// What an admin's reset shows once: a reset link, or a temporary password.
#[derive(Default, Serialize, Deserialize)]
struct Reset {
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    temporary_password: Option<String>,
}

/// What a refused delete shows again.
#[derive(Default)]
struct Again {
    delete: DeleteForm,
    candidates: Vec<PersonOption>,
}

/// What the viewer may do to a user: the services' own rules
/// (`Usher::may_*`), so the page shows a button, and a post without script
/// its confirm step, only where the action can succeed. Resetting one's own
/// password is done on the personal page, so the user page offers it to
/// others only.
struct Allowed {
    reset: std::result::Result<(), Error>,
    remove_mfa: std::result::Result<(), Error>,
    delete: std::result::Result<(), Error>,
}

fn allowed(viewer: &User, user: &User) -> Allowed {
    Allowed {
        reset: if viewer.id == user.id {
            Err(Error::invalid(
                "Change your own password on your personal settings page.",
            ))
        } else {
            Usher::may_reset_password(viewer, user)
        },
        remove_mfa: Usher::may_remove_two_factor(viewer, user),
        delete: Usher::may_delete_user(viewer, user),
    }
}

/// Refuses before the confirm step when the viewer may not do it at all:
/// nobody is asked "Are you sure?" about something that will be refused.
async fn may(
    state: &AppState,
    actor: &Actor,
    id: UserId,
    rule: fn(Allowed) -> std::result::Result<(), Error>,
) -> std::result::Result<(), Error> {
    let user = state.usher().user_for_admin(actor, id).await?;
    rule(allowed(&actor.user, &user))
}

/// The page of user `id`, for the owner and admins.
async fn render(
    state: &AppState,
    page: SignedInPage,
    id: UserId,
    shown: Shown<Reset>,
    again: Again,
) -> Result {
    let actor = &page.actor;
    let usher = state.usher();
    let user = usher.user_for_admin(actor, id).await?;
    let work = user_work(state, actor, &user).await?;
    let is_self = user.id == actor.user.id;
    let owner = user.role == Role::Owner;
    let permits = allowed(&actor.user, &user);
    Ok(UserPage {
        layout: page.layout.at(&format!("/settings/users/{id}")),
        id: id.to_string(),
        name: user.display_name(),
        email: user
            .email
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        initials: initials(&user),
        role: user.role.label(),
        status: users::status(&user, &[]),
        last_active: users::last_active(&user, usher.now()),
        created: day(user.created_at),
        role_name: user.role.as_str(),
        owner,
        mfa: user.mfa_enabled,
        must_change: user.password_change_required,
        can_reset: permits.reset.is_ok(),
        can_change_role: !owner && !is_self,
        can_make_owner: Usher::may_become_owner(&actor.user, &user).is_ok(),
        can_remove_mfa: permits.remove_mfa.is_ok(),
        reset_link: shown.with.link,
        temporary_password: shown.with.temporary_password,
        notice: shown.notice,
        error: shown.error,
        work,
        pending: user.is_pending(),
        can_delete: permits.delete.is_ok(),
        delete: again.delete,
        candidates: again.candidates,
    }
    .into_response())
}

async fn view_user_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Id(id): Id<UserId>,
) -> Result {
    let reset = flash::once::<Reset>().unwrap_or_default();
    render(
        &state,
        page,
        id,
        Shown::default().with(reset),
        Again::default(),
    )
    .await
}

/// The user's name for a notice ("Ann Lee"), or their email.
async fn name_of(state: &AppState, actor: &Actor, id: UserId) -> String {
    state
        .usher()
        .user_for_admin(actor, id)
        .await
        .map(|u| u.display_name())
        .unwrap_or_else(|_| "The user".to_owned())
}

fn user_path(id: UserId) -> String {
    format!("/settings/users/{id}")
}

/// The list's forms send `back`, the list as it was; the page's own don't.
#[derive(Deserialize, Serialize, Default)]
#[serde(default)]
struct ActionForm {
    back: String,
    confirmed: Option<String>,
}

async fn view_user_reset_link(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(_form): axum::Form<ActionForm>,
) -> Result {
    let link = state
        .usher()
        .password_reset_link(&page.actor, id, &origin)
        .await;
    match link {
        Ok(link) => {
            let name = name_of(&state, &page.actor, id).await;
            Ok(done(
                &state,
                &user_path(id),
                format!("A password reset link for {name} is ready to copy below."),
                Reset {
                    link: Some(link),
                    ..Reset::default()
                },
            ))
        }
        Err(error) => refused(&state, page, id, error).await,
    }
}

async fn refused(state: &AppState, page: SignedInPage, id: UserId, error: Error) -> Result {
    render(state, page, id, Shown::refused(error), Again::default()).await
}

async fn view_user_force_reset(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result {
    let name = name_of(&state, &page.actor, id).await;
    if form.confirmed.as_deref() != Some("yes") {
        if let Err(error) = may(&state, &page.actor, id, |a| a.reset).await {
            return refused(&state, page, id, error).await;
        }
        return Ok(confirm::ask(
            page.layout,
            format!("Reset {name}'s password now?"),
            "They are signed out everywhere and get a temporary password, which you pass on.",
            "Reset password",
            &format!("/settings/users/{id}/force-reset"),
            &user_path(id),
            &form,
        ));
    }
    let reset = state
        .usher()
        .force_password_reset(&page.actor, id, &origin)
        .await;
    match reset {
        Ok(password) => Ok(done(
            &state,
            &user_path(id),
            format!("{name}'s password is reset; they are signed out everywhere."),
            Reset {
                temporary_password: Some(password.expose().to_owned()),
                ..Reset::default()
            },
        )),
        Err(error) => refused(&state, page, id, error).await,
    }
}

async fn view_user_two_factor(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    let name = name_of(&state, &page.actor, id).await;
    if !form.confirmed() {
        if let Err(error) = may(&state, &page.actor, id, |a| a.remove_mfa).await {
            return refused(&state, page, id, error).await;
        }
        return Ok(confirm::ask(
            page.layout,
            format!("Remove {name}'s two-factor authentication?"),
            "They sign in with their password alone until they set it up again.",
            "Remove two-factor",
            &format!("/settings/users/{id}/two-factor"),
            &user_path(id),
            &form,
        ));
    }
    match state
        .usher()
        .remove_two_factor(&page.actor, id, &origin)
        .await
    {
        Ok(()) => Ok(done(
            &state,
            &user_path(id),
            format!("{name}'s two-factor authentication is removed."),
            (),
        )),
        Err(error) => refused(&state, page, id, error).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleForm {
    role: String,
    back: String,
}

async fn view_user_role(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<RoleForm>,
) -> Result {
    let changed = state
        .usher()
        .change_role(&page.actor, id, &form.role, &origin)
        .await;
    match changed {
        Ok(user) => Ok(done(
            &state,
            &users::back_to(&form.back, &user_path(id)),
            format!(
                "{} is now {}.",
                user.display_name(),
                match user.role {
                    Role::Admin => "an admin",
                    Role::Member => "a member",
                    Role::Owner => "the owner",
                }
            ),
            (),
        )),
        Err(error) => refused(&state, page, id, error).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OwnerForm {
    password: Secret,
}

/// Hands over ownership. Typing one's password is the confirmation, with
/// or without script (the browser asks too).
async fn view_user_make_owner(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<OwnerForm>,
) -> Result {
    let transferred = state
        .usher()
        .transfer_ownership(&page.actor, id, &form.password, &origin)
        .await;
    match transferred {
        Ok(_) => {
            let name = name_of(&state, &page.actor, id).await;
            Ok(done(
                &state,
                &user_path(id),
                format!("{name} is now the owner; you are an admin."),
                (),
            ))
        }
        Err(error) => refused(&state, page, id, error).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProjectRoleForm {
    project: String,
    role: String,
}

/// Gives the user a role in a team project (or changes it).
async fn view_user_project_role(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<ProjectRoleForm>,
) -> Result {
    let saved = async {
        let project = form.project.parse()?;
        let usher = state.usher();
        usher
            .set_project_member(&page.actor, project, id, &form.role, &origin)
            .await?;
        usher.project(&page.actor, project).await
    };
    match saved.await {
        Ok(project) => {
            let name = name_of(&state, &page.actor, id).await;
            let role = form.role.strip_prefix("project:").unwrap_or(&form.role);
            Ok(done(
                &state,
                &user_path(id),
                format!("{name} is now {role} in {}.", project.0.name),
                (),
            ))
        }
        Err(error) => refused(&state, page, id, error).await,
    }
}

#[derive(Deserialize, Serialize, Default, Clone)]
#[serde(default, rename_all = "camelCase")]
struct DeleteForm {
    /// `transfer` (to `transfer_to`) or `delete`; nothing for a pending user.
    mode: String,
    /// The email of the person who takes the work, a team project's name,
    /// or a project's id.
    transfer_to: String,
    /// One of the people listed when the text matched several: wins over
    /// the text.
    transfer_pick: String,
    confirmed: Option<String>,
}

/// Where a leaving user's work goes, from what was typed: a person's email
/// (their personal project), a team project's name or id. None with the
/// people the text could mean, when it names no one exactly.
async fn transfer_target(
    state: &AppState,
    actor: &Actor,
    leaving: UserId,
    typed: &str,
) -> usher_domain::Result<std::result::Result<(Project, String), Vec<User>>> {
    let usher = state.usher();
    let typed = typed.trim();
    if let Ok(project) = typed.parse() {
        let (project, _, _) = usher.project(actor, project).await?;
        if project.personal_owner == Some(leaving) {
            return Err(Error::invalid(
                "Choose another user's project to transfer to: this one goes with the user.",
            ));
        }
        // The person, when it is someone's own project: their work goes to them.
        let label = match project.personal_owner {
            Some(owner) => name_of(state, actor, owner).await,
            None => project.name.clone(),
        };
        return Ok(Ok((project, label)));
    }
    let people = usher.find_people(actor, typed, 10).await?;
    let exact = people.iter().find(|u| {
        u.email
            .as_ref()
            .is_some_and(|e| e.as_str().eq_ignore_ascii_case(typed))
    });
    if let Some(person) = exact {
        if person.id == leaving {
            return Err(Error::field(
                "transferTo",
                "Choose someone else: their own project goes with them.",
            ));
        }
        let project = usher.personal_project_for_admin(actor, person.id).await?;
        return Ok(Ok((project, person.display_name())));
    }
    let team = usher
        .team_projects(actor)
        .await?
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(typed));
    if let Some(project) = team {
        let label = project.name.clone();
        return Ok(Ok((project, label)));
    }
    Ok(Err(people
        .into_iter()
        .filter(|u| u.id != leaving)
        .collect()))
}

/// A project as a person reads it: a team project's name, or the name of
/// the person whose personal project it is.
async fn project_label(state: &AppState, actor: &Actor, project: &Project) -> String {
    match project.personal_owner {
        Some(owner) => format!("{} (personal)", name_of(state, actor, owner).await),
        None => project.name.clone(),
    }
}

/// "4 workflows and 1 credential".
fn work_words(workflows: i64, credentials: i64) -> String {
    let plural = |n: i64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    format!(
        "{} and {}",
        plural(workflows, "workflow"),
        plural(credentials, "credential")
    )
}

/// Deletes the user, with their work transferred or deleted as chosen, and
/// goes back to the list of users with a notice that says what became of
/// their work.
async fn view_user_delete(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(mut form): axum::Form<DeleteForm>,
) -> Result {
    if !form.transfer_pick.is_empty() {
        form.transfer_to = std::mem::take(&mut form.transfer_pick);
    }
    let usher = state.usher();
    let user = usher.user_for_admin(&page.actor, id).await?;
    if let Err(why) = allowed(&page.actor.user, &user).delete {
        return refused(&state, page, id, why).await;
    }
    let name = user.display_name();
    let again = |error: &str, candidates: Vec<User>| {
        Again {
            delete: form.clone(),
            candidates: candidates
                .iter()
                .filter_map(|u| {
                    u.email.as_ref().map(|e| PersonOption {
                        value: e.to_string(),
                        label: format!("{} ({e})", u.display_name()),
                    })
                })
                .collect(),
        }
        .with_error(error)
    };
    // An active user's work is transferred or deleted only as chosen: a
    // transfer to no one must not become a deletion.
    let (project, what) = match (user.is_pending(), form.mode.as_str()) {
        (true, _) => (None, String::new()),
        (false, "transfer") if form.transfer_to.trim().is_empty() => {
            let (again, error) = again(
                "Type the email of the person who takes their work, or a team project's name.",
                vec![],
            );
            return render(&state, page, id, Shown::error(error), again).await;
        }
        (false, "transfer") => {
            match transfer_target(&state, &page.actor, id, &form.transfer_to).await {
                Ok(Ok((project, label))) => (Some(project), label),
                Ok(Err(people)) => {
                    let message = if people.is_empty() {
                        format!(
                            "No one matches “{}”. Type their email.",
                            form.transfer_to.trim()
                        )
                    } else {
                        format!(
                            "“{}” could be several people: choose one.",
                            form.transfer_to.trim()
                        )
                    };
                    let (again, error) = again(&message, people);
                    return render(&state, page, id, Shown::error(error), again).await;
                }
                Err(error) => {
                    let message = crate::error::ApiError::from(error).message;
                    let (again, error) = again(&message, vec![]);
                    return render(&state, page, id, Shown::error(error), again).await;
                }
            }
        }
        (false, "delete") => (None, String::new()),
        (false, _) => {
            let (again, error) = again(
                "Choose whether their workflows and credentials are transferred or deleted.",
                vec![],
            );
            return render(&state, page, id, Shown::error(error), again).await;
        }
    };
    let personal = if user.is_pending() {
        None
    } else {
        usher.personal_project_for_admin(&page.actor, id).await.ok()
    };
    let (workflows, credentials) = match &personal {
        Some(p) => usher.count_work(&page.actor, p.id).await?,
        None => (0, 0),
    };
    let work = work_words(workflows, credentials);
    let notice = match (&project, user.is_pending()) {
        (_, true) => format!("{name} is deleted; their invitation no longer works."),
        (Some(_), false) => format!("{name} is deleted; their {work} now belong to {what}."),
        (None, false) => format!("{name} is deleted, with their {work}."),
    };
    if form.confirmed.as_deref() != Some("yes") {
        let detail = match (&project, user.is_pending()) {
            (_, true) => "Their invitation stops working.".to_owned(),
            (Some(_), false) => format!("Their {work} go to {what}. This cannot be undone."),
            (None, false) => format!("Their {work} are deleted too. This cannot be undone."),
        };
        let mut form = form.clone();
        if let Some(project) = &project {
            // The confirmation names the project, not the text typed.
            form.transfer_to = project.id.to_string();
        }
        return Ok(confirm::ask(
            page.layout,
            format!("Delete {name}?"),
            detail,
            "Delete user",
            &format!("/settings/users/{id}/delete"),
            &user_path(id),
            &form,
        ));
    }
    let transfer = project.as_ref().map(|p| p.id.to_string());
    match usher
        .delete_user(&page.actor, id, transfer.as_deref(), &origin)
        .await
    {
        Ok(()) => Ok(done(&state, "/settings/users", notice, ())),
        Err(error) => {
            let message = crate::error::ApiError::from(error).message;
            let (again, error) = again(&message, vec![]);
            render(&state, page, id, Shown::error(error), again).await
        }
    }
}

impl Again {
    fn with_error(self, error: &str) -> (Self, String) {
        (self, error.to_owned())
    }
}

/// People matching `q`, for the transfer field's suggestions (the page's
/// script fills its datalist from here; without script the form's answer
/// lists them instead).
async fn view_user_people(
    State(state): State<AppState>,
    page: SignedInPage,
    Id(id): Id<UserId>,
    Query(query): Query<super::PeopleQuery>,
) -> Result {
    page.actor.user.role.require_user_manager()?;
    super::people_suggestions(&state, &page, &query, |u| {
        u.id != id && !u.is_pending() && !u.disabled
    })
    .await
}

// ------------------------------------------------- their projects and work

/// One of a user's project roles.
struct RoleRow {
    project_id: String,
    project: String,
    kind: &'static str,
    role: &'static str,
}

/// A team project, to give the user a role in or to take their work.
struct TeamOption {
    id: String,
    name: String,
}

/// What a user's page shows of their projects and offers for their work.
#[derive(Default)]
struct UserWork {
    roles: Vec<RoleRow>,
    team_projects: Vec<TeamOption>,
}

/// The user's projects, and the team projects that could take their work.
async fn user_work(state: &AppState, actor: &Actor, user: &User) -> usher_domain::Result<UserWork> {
    let usher = state.usher();
    let mut roles = Vec::new();
    for (project, role) in usher.project_roles_of(actor, user.id).await? {
        let label = if project.personal_owner == Some(user.id) {
            format!("{} (personal)", user.display_name())
        } else {
            project_label(state, actor, &project).await
        };
        roles.push(RoleRow {
            project_id: project.id.to_string(),
            project: label,
            kind: kind_label(project.kind),
            role: role.label(),
        });
    }
    roles.sort_by_key(|r| (r.kind, r.project.to_lowercase()));
    let team_projects = usher
        .team_projects(actor)
        .await?
        .into_iter()
        .filter(|p| p.kind == ProjectKind::Team)
        .map(|p| TeamOption {
            id: p.id.to_string(),
            name: p.name,
        })
        .collect();
    Ok(UserWork {
        roles,
        team_projects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_counted_in_words() {
        assert_eq!(work_words(4, 1), "4 workflows and 1 credential");
        assert_eq!(work_words(1, 0), "1 workflow and 0 credentials");
    }
}
