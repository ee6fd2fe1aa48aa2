//! A user's page, `/settings/users/<id>`: their role and project roles,
//! password resets by admins, handing over ownership, and deleting them with
//! their work.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::{IntoResponse, Redirect},
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    Error,
    model::{Role, User, UserId},
    resources::{Project, ProjectKind},
    secret::Secret,
    service::auth::Actor,
};

use super::{
    Layout, Result, Shown, SignedInPage,
    resources::{ProjectOption, kind_label, project_label},
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
        .route("/settings/users/{id}/delete", post(view_user_delete))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/user.html")]
struct UserPage {
    layout: Layout,
    id: String,
    name: String,
    email: String,
    role: &'static str,
    status: String,
    role_name: &'static str,
    can_reset: bool,
    can_change_role: bool,
    can_make_owner: bool,
    reset_link: Option<String>,
    temporary_password: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    /// Their project roles, and the projects their work could go to.
    work: UserWork,
    pending: bool,
    /// Not for the owner, nor for oneself.
    can_delete: bool,
}

/// What an admin's reset shows once: a reset link, or a temporary password.
#[derive(Default)]
struct Reset {
    link: Option<String>,
    temporary_password: Option<String>,
}

/// The page of user `id`, for the owner and admins.
async fn render(state: &AppState, page: SignedInPage, id: UserId, shown: Shown<Reset>) -> Result {
    let actor = &page.actor;
    actor.user.role.require_user_manager()?;
    let everyone = state.usher().users(actor).await?;
    let user = everyone
        .iter()
        .find(|u| u.id == id)
        .ok_or_else(|| Error::not_found("There is no such user."))?;
    let work = user_work(state, actor, user, &everyone).await?;
    Ok(UserPage {
        layout: page.layout.at(&format!("/settings/users/{id}")),
        id: id.to_string(),
        name: user.display_name(),
        email: user
            .email
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        role: user.role.label(),
        status: users::status(user, &everyone),
        role_name: user.role.as_str(),
        can_reset: !user.is_pending()
            && (user.role != Role::Owner || actor.user.role == Role::Owner),
        can_change_role: user.role != Role::Owner && user.id != actor.user.id,
        can_make_owner: actor.user.role == Role::Owner
            && user.id != actor.user.id
            && !user.is_pending(),
        reset_link: shown.with.link,
        temporary_password: shown.with.temporary_password,
        notice: shown.notice,
        error: shown.error,
        work,
        pending: user.is_pending(),
        can_delete: user.role != Role::Owner && user.id != actor.user.id,
    }
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserQuery {
    transferred: Option<String>,
}

async fn view_user_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Id(id): Id<UserId>,
    Query(query): Query<UserQuery>,
) -> Result {
    let shown = match query.transferred {
        Some(_) => Shown::notice("This user is now the owner; you are an admin."),
        None => Shown::default(),
    };
    render(&state, page, id, shown).await
}

async fn view_user_reset_link(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
) -> Result {
    let link = state
        .usher()
        .password_reset_link(&page.actor, id, &origin)
        .await;
    let shown = Shown::of(link, |link| {
        Shown::default().with(Reset {
            link: Some(link),
            ..Reset::default()
        })
    });
    render(&state, page, id, shown).await
}

async fn view_user_force_reset(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
) -> Result {
    let reset = state
        .usher()
        .force_password_reset(&page.actor, id, &origin)
        .await;
    let shown = Shown::of(reset, |password| {
        Shown::notice("The password is reset.").with(Reset {
            temporary_password: Some(password.expose().to_owned()),
            ..Reset::default()
        })
    });
    render(&state, page, id, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleForm {
    role: String,
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
    let shown = Shown::of(changed, |user| {
        Shown::notice(format!(
            "{} is now {}.",
            user.display_name(),
            user.role.label().to_lowercase()
        ))
    });
    render(&state, page, id, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OwnerForm {
    password: Secret,
}

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
        // The old owner is an admin now: a fresh page shows that standing.
        Ok(_) => Ok(
            Redirect::to(&state.path(&format!("/settings/users/{id}?transferred=1")))
                .into_response(),
        ),
        Err(error) => render(&state, page, id, Shown::refused(error)).await,
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
            .await
    };
    let shown = Shown::of(saved.await, |()| {
        Shown::notice("The project role is saved.")
    });
    render(&state, page, id, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct DeleteForm {
    /// `transfer` (to `transfer_to`) or `delete`; nothing for a pending user.
    mode: String,
    transfer_to: String,
}

/// Deletes the user, with their work transferred or deleted as chosen, and
/// goes back to the list of users.
async fn view_user_delete(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<UserId>,
    axum::Form(form): axum::Form<DeleteForm>,
) -> Result {
    let pending = match state.usher().users(&page.actor).await {
        Ok(everyone) => everyone
            .iter()
            .find(|u| u.id == id)
            .is_some_and(|u| u.is_pending()),
        Err(error) => {
            return render(&state, page, id, Shown::refused(error)).await;
        }
    };
    // An active user's work is transferred or deleted only as chosen: a
    // transfer without a project must not become a deletion.
    let (transfer_to, done) = match (pending, form.mode.as_str()) {
        (true, _) => (None, "pending"),
        (false, "transfer") if !form.transfer_to.trim().is_empty() => {
            (Some(form.transfer_to.as_str()), "transferred")
        }
        (false, "transfer") => {
            let refused =
                Shown::error("Choose the project that takes their workflows and credentials.");
            return render(&state, page, id, refused).await;
        }
        (false, "delete") => (None, "deleted"),
        (false, _) => {
            let refused = Shown::error(
                "Choose whether their workflows and credentials are transferred or deleted.",
            );
            return render(&state, page, id, refused).await;
        }
    };
    let deleted = state
        .usher()
        .delete_user(&page.actor, id, transfer_to, &origin)
        .await;
    match deleted {
        Ok(()) => Ok(
            Redirect::to(&state.path(&format!("/settings/users?deleted={done}"))).into_response(),
        ),
        Err(error) => render(&state, page, id, Shown::refused(error)).await,
    }
}

// ------------------------------------------------- their projects and work

/// One of a user's project roles.
struct RoleRow {
    project_id: String,
    project: String,
    kind: &'static str,
    role: &'static str,
}

/// What a user's page shows of their projects and offers for their work.
#[derive(Default)]
struct UserWork {
    roles: Vec<RoleRow>,
    /// Team projects, to give the user a role in.
    team_projects: Vec<ProjectOption>,
    /// Other users' personal projects, where their work may go when they are
    /// deleted (team projects are the other choice).
    personal_projects: Vec<ProjectOption>,
}

/// The user's projects, and the projects that could take their work.
async fn user_work(
    state: &AppState,
    actor: &Actor,
    user: &User,
    everyone: &[User],
) -> usher_domain::Result<UserWork> {
    let usher = state.usher();
    let mut roles: Vec<RoleRow> = usher
        .project_roles_of(actor, user.id)
        .await?
        .iter()
        .map(|(project, role)| RoleRow {
            project_id: project.id.to_string(),
            project: project_label(project, everyone),
            kind: kind_label(project.kind),
            role: role.label(),
        })
        .collect();
    roles.sort_by_key(|r| (r.kind, r.project.to_lowercase()));
    let option = |project: &Project| ProjectOption {
        id: project.id.to_string(),
        label: project_label(project, everyone),
        selected: false,
    };
    let projects = usher.transfer_targets(actor, user.id).await?;
    let mut team_projects: Vec<ProjectOption> = projects
        .iter()
        .filter(|p| p.kind == ProjectKind::Team)
        .map(option)
        .collect();
    team_projects.sort_by_key(|p| p.label.to_lowercase());
    let mut personal_projects: Vec<ProjectOption> = projects
        .iter()
        .filter(|p| p.kind == ProjectKind::Personal)
        .map(option)
        .collect();
    personal_projects.sort_by_key(|p| p.label.to_lowercase());
    Ok(UserWork {
        roles,
        team_projects,
        personal_projects,
    })
}
