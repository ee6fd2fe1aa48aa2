//! `/settings/apps`: the apps people sign into through Usher (owner and
//! admins): register, change, renew the secret, delete. The same services as
//! `/rest/apps`.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::IntoResponse,
    routing::{get, post},
};
use usher_domain::{
    apps::{Access, App, AppId, AppInput, BUILT_IN_ROLES, ForwardAuth},
    model::UserId,
    resources::ProjectId,
};

use super::{
    Layout, Result, Shown, SignedInPage,
    confirm::{self, Confirmation},
    done,
};
use crate::{
    AppState,
    extract::{ClientOrigin, Id},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/apps", get(view_apps_get).post(view_apps_post))
        .route("/settings/apps/people", get(view_app_people))
        .route("/settings/apps/{id}", get(view_app_get).post(view_app_post))
        .route("/settings/apps/{id}/secret", post(view_app_secret))
        .route("/settings/apps/{id}/delete", post(view_app_delete))
}

/// A person or project that may be chosen, and how it is chosen now.
struct Choice {
    id: String,
    label: String,
    chosen: bool,
    role: String,
}

struct AppRow {
    id: String,
    name: String,
    client_id: String,
    access: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/apps.html")]
struct AppsPage {
    layout: Layout,
    apps: Vec<AppRow>,
    /// The form: empty for a new app, the app's values on its page.
    editing: Option<String>,
    values: Values,
    users: Vec<Choice>,
    projects: Vec<Choice>,
    roles: Vec<String>,
    issuer: String,
    /// Credentials made by the last post, shown once: (client id, secret).
    credentials: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

/// What the form shows in its fields.
#[derive(Default)]
struct Values {
    name: String,
    launch_url: String,
    icon: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    custom_roles: String,
    default_role: String,
    public: bool,
    third_party: bool,
    require_mfa: bool,
    everyone: bool,
    client_id: String,
    /// Forward authentication: hosts and public paths one a line.
    fa_hosts: String,
    fa_public_paths: String,
    fa_min_role: String,
    fa_require_mfa: bool,
    /// The people chosen (their ids) with the role each is given (empty:
    /// the default role).
    people: Vec<(UserId, String)>,
    /// The team projects chosen, with the role each is given.
    project_roles: Vec<(ProjectId, String)>,
    /// A person to add, as typed (email or name), and their role.
    add_person: String,
    add_person_role: String,
}

impl Values {
    fn of(app: &App) -> Self {
        Self {
            name: app.name.clone(),
            launch_url: app.launch_url.clone(),
            icon: app.icon.clone().unwrap_or_default(),
            redirect_uris: app.redirect_uris.join("\n"),
            post_logout_redirect_uris: app.post_logout_redirect_uris.join("\n"),
            custom_roles: custom_roles(app).join(", "),
            default_role: app.access.default_role.clone(),
            public: app.public,
            third_party: app.third_party,
            require_mfa: app.require_mfa,
            everyone: app.access.everyone,
            client_id: app.client_id.clone(),
            fa_hosts: app
                .forward_auth
                .as_ref()
                .map(|f| f.hosts.join("\n"))
                .unwrap_or_default(),
            fa_public_paths: app
                .forward_auth
                .as_ref()
                .map(|f| f.public_paths.join("\n"))
                .unwrap_or_default(),
            fa_min_role: app
                .forward_auth
                .as_ref()
                .map_or_else(|| "Basic".to_owned(), |f| f.min_role.clone()),
            fa_require_mfa: app.forward_auth.as_ref().is_some_and(|f| f.require_mfa),
            people: app.access.users.clone(),
            project_roles: app.access.projects.clone(),
            add_person: String::new(),
            add_person_role: String::new(),
        }
    }
}

fn custom_roles(app: &App) -> Vec<String> {
    app.roles
        .iter()
        .filter(|r| !BUILT_IN_ROLES.contains(&r.as_str()))
        .cloned()
        .collect()
}

fn describe(access: &Access) -> String {
    let mut parts = Vec::new();
    if access.everyone {
        parts.push(format!("everyone ({})", access.default_role));
    }
    if !access.projects.is_empty() {
        parts.push(format!("{} project(s)", access.projects.len()));
    }
    if !access.users.is_empty() {
        parts.push(format!("{} person/people", access.users.len()));
    }
    if parts.is_empty() {
        "nobody yet".into()
    } else {
        parts.join(", ")
    }
}

/// Credentials shown once after a post.
#[derive(serde::Serialize, serde::Deserialize)]
struct Credentials {
    client_id: String,
    secret: String,
}

async fn render(
    state: &AppState,
    page: SignedInPage,
    editing: Option<&App>,
    values: Values,
    shown: Shown,
) -> Result {
    let usher = state.usher();
    let apps = usher.apps(&page.actor).await?;
    // The people chosen so far, named: read by id, never a list of everyone.
    let named = usher
        .users_named(&page.actor, values.people.iter().map(|(id, _)| *id))
        .await?;
    let users = values
        .people
        .iter()
        .filter_map(|(id, role)| {
            let user = named.iter().find(|u| u.id == *id)?;
            Some(Choice {
                id: id.to_string(),
                label: super::person_label(user),
                chosen: true,
                role: role.clone(),
            })
        })
        .collect();
    let projects = usher
        .app_projects(&page.actor)
        .await?
        .into_iter()
        .map(|project| {
            let mapped = values
                .project_roles
                .iter()
                .find(|(id, _)| *id == project.id);
            Choice {
                id: project.id.to_string(),
                label: project.name.clone(),
                chosen: mapped.is_some(),
                role: mapped.map(|(_, r)| r.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let roles = editing.map_or_else(
        || BUILT_IN_ROLES.iter().map(|r| (*r).to_owned()).collect(),
        |a| a.roles.clone(),
    );
    let credentials = super::flash::once::<Credentials>().map(|c| (c.client_id, c.secret));
    let here = editing.map_or_else(
        || "/settings/apps".to_owned(),
        |a| format!("/settings/apps/{}", a.id),
    );
    Ok(AppsPage {
        layout: page.layout.at(&here),
        apps: apps
            .iter()
            .map(|a| AppRow {
                id: a.id.to_string(),
                name: a.name.clone(),
                client_id: a.client_id.clone(),
                access: describe(&a.access),
            })
            .collect(),
        editing: editing.map(|a| a.id.to_string()),
        values,
        users,
        projects,
        roles,
        issuer: usher.issuer().to_owned(),
        credentials,
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

async fn view_apps_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    let values = Values {
        everyone: true,
        default_role: "Basic".into(),
        fa_min_role: "Basic".into(),
        ..Values::default()
    };
    render(&state, page, None, values, Shown::default()).await
}

async fn view_app_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Id(id): Id<AppId>,
) -> Result {
    let app = state.usher().app(&page.actor, id).await?;
    render(&state, page, Some(&app), Values::of(&app), Shown::default()).await
}

/// The form's fields as an app's input; the values to show again if the
/// services refuse it.
fn input_of(form: &[(String, String)]) -> (AppInput, Values) {
    let value = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let flag = |name: &str| !value(name).is_empty();
    let lines = |name: &str| -> Vec<String> {
        value(name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let default_role = match value("default_role") {
        role if role.is_empty() => "Basic".to_owned(),
        role => role,
    };
    let role_of = |kind: &str, id: &str| match value(&format!("role_{kind}_{id}")) {
        role if role.is_empty() => default_role.clone(),
        role => role,
    };
    let chosen = |kind: &str| -> Vec<String> {
        form.iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let users: Vec<(UserId, String)> = chosen("user")
        .into_iter()
        .filter_map(|id| Some((UserId::parse(&id)?, role_of("user", &id))))
        .collect();
    let projects: Vec<(ProjectId, String)> = chosen("project")
        .into_iter()
        .filter_map(|id| Some((id.parse::<ProjectId>().ok()?, role_of("project", &id))))
        .collect();
    let custom_roles: Vec<String> = value("custom_roles")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    let values = Values {
        name: value("name"),
        launch_url: value("launch_url"),
        icon: value("icon"),
        redirect_uris: value("redirect_uris"),
        post_logout_redirect_uris: value("post_logout_redirect_uris"),
        custom_roles: custom_roles.join(", "),
        default_role: default_role.clone(),
        public: flag("public"),
        third_party: flag("third_party"),
        require_mfa: flag("require_mfa"),
        everyone: value("access") == "everyone",
        client_id: String::new(),
        fa_hosts: value("fa_hosts"),
        fa_public_paths: value("fa_public_paths"),
        fa_min_role: match value("fa_min_role") {
            role if role.is_empty() => "Basic".to_owned(),
            role => role,
        },
        fa_require_mfa: flag("fa_require_mfa"),
        people: users.clone(),
        project_roles: projects.clone(),
        add_person: value("add_person"),
        add_person_role: value("add_person_role"),
    };
    let fa_hosts = lines("fa_hosts");
    let forward_auth = (!fa_hosts.is_empty()).then(|| ForwardAuth {
        hosts: fa_hosts,
        public_paths: lines("fa_public_paths"),
        min_role: values.fa_min_role.clone(),
        require_mfa: values.fa_require_mfa,
    });
    let input = AppInput {
        name: values.name.clone(),
        launch_url: values.launch_url.clone(),
        icon: Some(values.icon.clone()),
        redirect_uris: lines("redirect_uris"),
        post_logout_redirect_uris: lines("post_logout_redirect_uris"),
        public: values.public,
        third_party: values.third_party,
        require_mfa: values.require_mfa,
        custom_roles,
        access: Access {
            everyone: values.everyone,
            default_role,
            projects,
            users,
        },
        forward_auth,
    };
    (input, values)
}

/// Adds the person typed in "Add a person" (if any) to the app's people,
/// with the role chosen beside it: the one person the email or name names,
/// else a refusal that says whom it could mean.
async fn add_person(
    state: &AppState,
    page: &SignedInPage,
    input: &mut AppInput,
    values: &mut Values,
) -> usher_domain::Result<()> {
    let typed = values.add_person.trim().to_owned();
    if typed.is_empty() {
        return Ok(());
    }
    let person = match super::person_named(state, page, "add_person", &typed).await? {
        Ok(person) => person,
        Err(people) if people.is_empty() => {
            return Err(usher_domain::Error::field(
                "add_person",
                format!("No one matches “{typed}”. Type their email."),
            ));
        }
        Err(people) => {
            let emails: Vec<String> = people
                .iter()
                .filter_map(|u| u.email.as_ref().map(ToString::to_string))
                .collect();
            return Err(usher_domain::Error::field(
                "add_person",
                format!(
                    "“{typed}” could be several people ({}): type the email of the one you mean.",
                    emails.join(", ")
                ),
            ));
        }
    };
    let role = match values.add_person_role.trim() {
        "" => input.access.default_role.clone(),
        role => role.to_owned(),
    };
    input.access.users.retain(|(id, _)| *id != person);
    input.access.users.push((person, role));
    values.people.retain(|(id, _)| *id != person);
    values.people.push((person, values.add_person_role.clone()));
    values.add_person.clear();
    Ok(())
}

/// Suggestions for "Add a person": a few people matching what is typed.
async fn view_app_people(
    State(state): State<AppState>,
    page: SignedInPage,
    Query(query): Query<super::PeopleQuery>,
) -> Result {
    state.usher().app_projects(&page.actor).await?;
    super::people_suggestions(&state, &page, &query, |u| !u.is_owner_shell()).await
}

async fn view_apps_post(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Result {
    let (mut input, mut values) = input_of(&form);
    if let Err(error) = add_person(&state, &page, &mut input, &mut values).await {
        return render(&state, page, None, values, Shown::refused(error)).await;
    }
    match state.usher().create_app(&page.actor, input, &origin).await {
        Ok(created) => Ok(done(
            &state,
            &format!("/settings/apps/{}", created.app.id),
            format!(
                "{} is registered. Copy its client secret now: it is not shown again.",
                created.app.name
            ),
            Credentials {
                client_id: created.app.client_id.clone(),
                secret: created
                    .client_secret
                    .map(|s| s.expose().to_owned())
                    .unwrap_or_default(),
            },
        )),
        Err(error) => render(&state, page, None, values, Shown::refused(error)).await,
    }
}

async fn view_app_post(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<AppId>,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Result {
    let usher = state.usher();
    let app = usher.app(&page.actor, id).await?;
    let (mut input, mut values) = input_of(&form);
    if let Err(error) = add_person(&state, &page, &mut input, &mut values).await {
        values.client_id = app.client_id.clone();
        return render(&state, page, Some(&app), values, Shown::refused(error)).await;
    }
    match usher.update_app(&page.actor, id, input, &origin).await {
        Ok(updated) => Ok(done(
            &state,
            &format!("/settings/apps/{id}"),
            "Saved. Whoever lost access or got another role is signed out of the app.",
            updated.client_secret.map(|secret| Credentials {
                client_id: updated.app.client_id.clone(),
                secret: secret.expose().to_owned(),
            }),
        )),
        Err(error) => {
            values.client_id = app.client_id.clone();
            render(&state, page, Some(&app), values, Shown::refused(error)).await
        }
    }
}

async fn view_app_secret(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<AppId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    let back = format!("/settings/apps/{id}");
    if !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            "Make a new client secret?",
            "The old secret stops working at once: the app cannot sign anyone in until it has the new one.",
            "Make a new secret",
            &format!("/settings/apps/{id}/secret"),
            &back,
            &form,
        ));
    }
    let usher = state.usher();
    let app = usher.app(&page.actor, id).await?;
    let secret = usher.renew_app_secret(&page.actor, id, &origin).await?;
    Ok(done(
        &state,
        &back,
        "Copy the new client secret now: it is not shown again.",
        Credentials {
            client_id: app.client_id,
            secret: secret.expose().to_owned(),
        },
    ))
}

async fn view_app_delete(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    Id(id): Id<AppId>,
    axum::Form(form): axum::Form<Confirmation>,
) -> Result {
    if !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            "Delete this app?",
            "Everyone signed into it through Usher is signed out, and it can no longer sign anyone in. This cannot be undone.",
            "Delete app",
            &format!("/settings/apps/{id}/delete"),
            &format!("/settings/apps/{id}"),
            &form,
        ));
    }
    state.usher().delete_app(&page.actor, id, &origin).await?;
    Ok(done(&state, "/settings/apps", "The app is deleted.", ()))
}
