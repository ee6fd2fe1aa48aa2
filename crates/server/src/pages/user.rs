//! A user's page, `/settings/users/<id>`: their role and project roles,
//! password resets by admins, handing over ownership, and deleting them with
//! their work.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    model::{Role, User},
    resources::{Project, ProjectKind},
    secret::Secret,
    service::auth::{Actor, Identity},
};

use super::{
    Layout, PageError,
    resources::{ProjectOption, kind_label, project_label},
    users,
};
use crate::{
    AppState,
    error::ApiError,
    extract::{ClientOrigin, Who},
    rest::user_id,
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

/// What a post on the user's page adds to it.
#[derive(Default)]
struct Shown {
    reset_link: Option<String>,
    temporary_password: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn user_page(
    state: &AppState,
    identity: &Identity,
    actor: &Actor,
    id: &str,
    shown: Shown,
) -> Response {
    let page_error = |error: ApiError| PageError::new(state, Some(identity), error).into_response();
    if let Err(error) = actor.user.role.require_user_manager() {
        return page_error(error.into());
    }
    let id = match user_id(id) {
        Ok(id) => id,
        Err(error) => return page_error(error),
    };
    let everyone = match state.usher().users(actor).await {
        Ok(users) => users,
        Err(error) => return page_error(error.into()),
    };
    let Some(user) = everyone.iter().find(|u| u.id == id) else {
        return page_error(ApiError::from(usher_domain::Error::not_found(
            "There is no such user.",
        )));
    };
    let work = match user_work(state, actor, user, &everyone).await {
        Ok(work) => work,
        Err(error) => return page_error(error.into()),
    };
    let mut layout = Layout::new(state, Some(identity));
    layout.settle_at = Some(state.path(&format!("/settings/users/{id}")));
    UserPage {
        layout,
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
        reset_link: shown.reset_link,
        temporary_password: shown.temporary_password,
        notice: shown.notice,
        error: shown.error,
        work,
        pending: user.is_pending(),
        can_delete: user.role != Role::Owner && user.id != actor.user.id,
    }
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserQuery {
    transferred: Option<String>,
}

async fn view_user_get(
    State(state): State<AppState>,
    Who(identity): Who,
    Path(id): Path<String>,
    Query(query): Query<UserQuery>,
) -> Response {
    let shown = Shown {
        notice: query
            .transferred
            .map(|_| "This user is now the owner; you are an admin.".to_owned()),
        ..Shown::default()
    };
    match super::signed_in(&state, &identity, &format!("/settings/users/{id}")) {
        Ok(actor) => user_page(&state, &identity, &actor, &id, shown).await,
        Err(response) => response,
    }
}

async fn view_user_reset_link(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/settings/users/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let shown = match user_id(&id) {
        Ok(target) => match state
            .usher()
            .password_reset_link(&actor, target, &origin)
            .await
        {
            Ok(link) => Shown {
                reset_link: Some(link),
                ..Shown::default()
            },
            Err(error) => Shown {
                error: Some(ApiError::from(error).message),
                ..Shown::default()
            },
        },
        Err(error) => Shown {
            error: Some(error.message),
            ..Shown::default()
        },
    };
    user_page(&state, &identity, &actor, &id, shown).await
}

async fn view_user_force_reset(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/settings/users/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let shown = match user_id(&id) {
        Ok(target) => match state
            .usher()
            .force_password_reset(&actor, target, &origin)
            .await
        {
            Ok(password) => Shown {
                temporary_password: Some(password.expose().to_owned()),
                notice: Some("The password is reset.".into()),
                ..Shown::default()
            },
            Err(error) => Shown {
                error: Some(ApiError::from(error).message),
                ..Shown::default()
            },
        },
        Err(error) => Shown {
            error: Some(error.message),
            ..Shown::default()
        },
    };
    user_page(&state, &identity, &actor, &id, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleForm {
    role: String,
}

async fn view_user_role(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<RoleForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/settings/users/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = match user_id(&id) {
        Ok(target) => state
            .usher()
            .change_role(&actor, target, &form.role, &origin)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    let shown = match result {
        Ok(user) => Shown {
            notice: Some(format!(
                "{} is now {}.",
                user.display_name(),
                user.role.label().to_lowercase()
            )),
            ..Shown::default()
        },
        Err(error) => Shown {
            error: Some(error.message),
            ..Shown::default()
        },
    };
    user_page(&state, &identity, &actor, &id, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OwnerForm {
    password: Secret,
}

async fn view_user_make_owner(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<OwnerForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/settings/users/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let result = match user_id(&id) {
        Ok(target) => state
            .usher()
            .transfer_ownership(&actor, target, &form.password, &origin)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match result {
        // The old owner is an admin now: a fresh page shows that standing.
        Ok(_) => Redirect::to(&state.path(&format!("/settings/users/{id}?transferred=1")))
            .into_response(),
        Err(error) => {
            user_page(
                &state,
                &identity,
                &actor,
                &id,
                Shown {
                    error: Some(error.message),
                    ..Shown::default()
                },
            )
            .await
        }
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
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ProjectRoleForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/settings/users/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let shown = match state
        .usher()
        .set_project_member(&actor, &form.project, &id, &form.role, &origin)
        .await
    {
        Ok(()) => Shown {
            notice: Some("The project role is saved.".into()),
            ..Shown::default()
        },
        Err(error) => Shown {
            error: Some(ApiError::from(error).message),
            ..Shown::default()
        },
    };
    user_page(&state, &identity, &actor, &id, shown).await
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
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DeleteForm>,
) -> Response {
    let actor = match super::signed_in(&state, &identity, &format!("/settings/users/{id}")) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let refused = |message: String| Shown {
        error: Some(message),
        ..Shown::default()
    };
    let target = match user_id(&id) {
        Ok(target) => target,
        Err(error) => {
            return user_page(&state, &identity, &actor, &id, refused(error.message)).await;
        }
    };
    let pending = match state.usher().users(&actor).await {
        Ok(everyone) => everyone
            .iter()
            .find(|u| u.id == target)
            .is_some_and(|u| u.is_pending()),
        Err(error) => {
            let message = ApiError::from(error).message;
            return user_page(&state, &identity, &actor, &id, refused(message)).await;
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
            let message = "Choose the project that takes their workflows and credentials.";
            return user_page(&state, &identity, &actor, &id, refused(message.into())).await;
        }
        (false, "delete") => (None, "deleted"),
        (false, _) => {
            let message =
                "Choose whether their workflows and credentials are transferred or deleted.";
            return user_page(&state, &identity, &actor, &id, refused(message.into())).await;
        }
    };
    match state
        .usher()
        .delete_user(&actor, target, transfer_to, &origin)
        .await
    {
        Ok(()) => {
            Redirect::to(&state.path(&format!("/settings/users?deleted={done}"))).into_response()
        }
        Err(error) => {
            let message = ApiError::from(error).message;
            user_page(&state, &identity, &actor, &id, refused(message)).await
        }
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
