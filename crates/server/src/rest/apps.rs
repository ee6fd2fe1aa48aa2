//! `/rest/apps`: the apps people sign into through Usher (owner and admins).
//!
//! The scripts' contract: `POST /rest/apps {name, launchUrl, redirectUris,
//! postLogoutRedirectUris, public, access: "everyone" | {projects: [ids],
//! users: [ids]}}` answers `{data: {id, clientId, clientSecret}}`, the
//! secret this once (none for a public app). Beside that: `icon`,
//! `thirdParty`, `requireMfa`, `roles` (custom roles beside Admin, Power,
//! Basic), `defaultRole`, and in `access` each id may be `{id, role}`.
//! Forward authentication (docs/forward-auth.md) is `forwardAuth: {hosts,
//! publicPaths, minRole, requireMfa}`, or `null` for none; an app has
//! `redirectUris` (OpenID Connect), `forwardAuth`, or both.

use axum::{Router, extract::State, routing::get};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_domain::{
    Error,
    apps::{Access, App, AppId, AppInput, BUILT_IN_ROLES, DEFAULT_ROLE, ForwardAuth},
    clock::rfc3339,
    model::UserId,
    resources::ProjectId,
};

use super::{Data, data};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Id, Json, SignedIn},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps", get(list).post(create))
        .route("/apps/mine", get(mine))
        .route("/apps/{id}", get(one).patch(update).delete(remove))
        .route("/apps/{id}/secret", axum::routing::post(renew_secret))
}

/// An app as listed: never its secret.
pub(crate) fn app_json(app: &App) -> Value {
    let mapped = |id: String, role: &str| json!({"id": id, "role": role});
    let access =
        if app.access.everyone && app.access.projects.is_empty() && app.access.users.is_empty() {
            json!("everyone")
        } else {
            json!({
                "everyone": app.access.everyone,
                "projects": app.access.projects.iter()
                    .map(|(id, role)| mapped(id.to_string(), role)).collect::<Vec<_>>(),
                "users": app.access.users.iter()
                    .map(|(id, role)| mapped(id.to_string(), role)).collect::<Vec<_>>(),
            })
        };
    json!({
        "id": app.id.to_string(),
        "name": app.name,
        "launchUrl": app.launch_url,
        "icon": app.icon,
        "clientId": app.client_id,
        "public": app.public,
        "thirdParty": app.third_party,
        "requireMfa": app.require_mfa,
        "redirectUris": app.redirect_uris,
        "postLogoutRedirectUris": app.post_logout_redirect_uris,
        "roles": app.roles,
        "defaultRole": app.access.default_role,
        "access": access,
        "forwardAuth": app.forward_auth.as_ref().map(|f| json!({
            "hosts": f.hosts,
            "publicPaths": f.public_paths,
            "minRole": f.min_role,
            "requireMfa": f.require_mfa,
        })),
        "createdAt": rfc3339(app.created_at),
        "updatedAt": rfc3339(app.updated_at),
    })
}

/// Every field may be left out of a PATCH; POST needs name, launchUrl and
/// redirectUris (the domain says so, naming the field).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppBody {
    name: Option<String>,
    launch_url: Option<String>,
    icon: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    public: Option<bool>,
    third_party: Option<bool>,
    require_mfa: Option<bool>,
    roles: Option<Vec<String>>,
    default_role: Option<String>,
    access: Option<Value>,
    /// Left out: as it was; `null`: none.
    #[serde(default, deserialize_with = "present")]
    forward_auth: Option<Option<ForwardAuthBody>>,
}

/// `forwardAuth`: in a PATCH, what is left out stays as it was.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForwardAuthBody {
    hosts: Option<Vec<String>>,
    public_paths: Option<Vec<String>>,
    min_role: Option<String>,
    require_mfa: Option<bool>,
}

impl ForwardAuthBody {
    fn into_forward_auth(self, old: Option<&ForwardAuth>) -> ForwardAuth {
        ForwardAuth {
            hosts: self
                .hosts
                .or_else(|| old.map(|o| o.hosts.clone()))
                .unwrap_or_default(),
            public_paths: self
                .public_paths
                .or_else(|| old.map(|o| o.public_paths.clone()))
                .unwrap_or_default(),
            min_role: self
                .min_role
                .or_else(|| old.map(|o| o.min_role.clone()))
                .unwrap_or_else(|| DEFAULT_ROLE.to_owned()),
            require_mfa: self
                .require_mfa
                .or(old.map(|o| o.require_mfa))
                .unwrap_or(false),
        }
    }
}

/// A field that is there, `null` included: `Some(None)` for `null`, and
/// (with `#[serde(default)]`) `None` when it is left out.
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// `"everyone"`, or `{everyone?, projects: [id | {id, role}], users: [..]}`.
fn parse_access(value: &Value, default_role: &str) -> Result<Access, Error> {
    let bad = || {
        Error::field(
            "access",
            "access is \"everyone\" or {projects: [ids], users: [ids]}; an id may be {id, role}.",
        )
    };
    if value.as_str() == Some("everyone") {
        return Ok(Access {
            everyone: true,
            default_role: default_role.to_owned(),
            ..Access::default()
        });
    }
    let object = value.as_object().ok_or_else(bad)?;
    if object
        .keys()
        .any(|k| !matches!(k.as_str(), "everyone" | "projects" | "users"))
    {
        return Err(bad());
    }
    let list = |name: &str| -> Result<Vec<(String, String)>, Error> {
        let Some(items) = object.get(name) else {
            return Ok(Vec::new());
        };
        items
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|item| match item {
                Value::String(id) => Ok((id.clone(), default_role.to_owned())),
                Value::Object(map) => {
                    let id = map.get("id").and_then(Value::as_str).ok_or_else(bad)?;
                    let role = match map.get("role") {
                        None | Some(Value::Null) => default_role,
                        Some(role) => role.as_str().ok_or_else(bad)?,
                    };
                    Ok((id.to_owned(), role.to_owned()))
                }
                _ => Err(bad()),
            })
            .collect()
    };
    let unknown =
        |what: &str, id: &str| Error::field("access", format!("{id} is not the id of any {what}."));
    let projects = list("projects")?
        .into_iter()
        .map(|(id, role)| {
            let parsed = id
                .parse::<ProjectId>()
                .map_err(|_| unknown("project", &id))?;
            Ok((parsed, role))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let users = list("users")?
        .into_iter()
        .map(|(id, role)| {
            let parsed = UserId::parse(&id).ok_or_else(|| unknown("user", &id))?;
            Ok((parsed, role))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let everyone = match object.get("everyone") {
        None | Some(Value::Null) => false,
        Some(flag) => flag.as_bool().ok_or_else(bad)?,
    };
    Ok(Access {
        everyone,
        default_role: default_role.to_owned(),
        projects,
        users,
    })
}

impl AppBody {
    /// The input for a new app, or for `old` with this body's changes.
    fn into_input(self, old: Option<&App>) -> Result<AppInput, Error> {
        let custom_roles = match (self.roles, old) {
            (Some(roles), _) => roles,
            (None, Some(old)) => old
                .roles
                .iter()
                .filter(|r| !BUILT_IN_ROLES.contains(&r.as_str()))
                .cloned()
                .collect(),
            (None, None) => Vec::new(),
        };
        let default_role = self
            .default_role
            .or_else(|| old.map(|o| o.access.default_role.clone()))
            .unwrap_or_else(|| DEFAULT_ROLE.to_owned());
        let access = match (&self.access, old) {
            (Some(value), _) => parse_access(value, &default_role)?,
            (None, Some(old)) => Access {
                default_role: default_role.clone(),
                ..old.access.clone()
            },
            (None, None) => Access {
                default_role: default_role.clone(),
                ..Access::default()
            },
        };
        Ok(AppInput {
            name: self
                .name
                .or_else(|| old.map(|o| o.name.clone()))
                .unwrap_or_default(),
            launch_url: self
                .launch_url
                .or_else(|| old.map(|o| o.launch_url.clone()))
                .unwrap_or_default(),
            icon: self.icon.or_else(|| old.and_then(|o| o.icon.clone())),
            redirect_uris: self
                .redirect_uris
                .or_else(|| old.map(|o| o.redirect_uris.clone()))
                .unwrap_or_default(),
            post_logout_redirect_uris: self
                .post_logout_redirect_uris
                .or_else(|| old.map(|o| o.post_logout_redirect_uris.clone()))
                .unwrap_or_default(),
            public: self.public.or(old.map(|o| o.public)).unwrap_or(false),
            third_party: self
                .third_party
                .or(old.map(|o| o.third_party))
                .unwrap_or(false),
            require_mfa: self
                .require_mfa
                .or(old.map(|o| o.require_mfa))
                .unwrap_or(false),
            custom_roles,
            access,
            forward_auth: match self.forward_auth {
                Some(Some(body)) => {
                    Some(body.into_forward_auth(old.and_then(|o| o.forward_auth.as_ref())))
                }
                Some(None) => None,
                None => old.and_then(|o| o.forward_auth.clone()),
            },
        })
    }
}

async fn list(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Vec<Value>>>> {
    let apps = state.usher().apps(&actor).await?;
    Ok(data(apps.iter().map(app_json).collect()))
}

/// The apps the caller may open (the home page's list), with their role.
async fn mine(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Vec<Value>>>> {
    let apps = state.usher().my_apps(&actor).await?;
    Ok(data(
        apps.iter()
            .map(|(app, role)| {
                json!({
                    "id": app.id.to_string(),
                    "name": app.name,
                    "launchUrl": app.launch_url,
                    "icon": app.icon,
                    "role": role,
                })
            })
            .collect(),
    ))
}

async fn one(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<AppId>,
) -> Result<Json<Data<Value>>> {
    Ok(data(app_json(&state.usher().app(&actor, id).await?)))
}

async fn create(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<AppBody>,
) -> Result<Json<Data<Value>>> {
    let input = body.into_input(None)?;
    let created = state.usher().create_app(&actor, input, &origin).await?;
    let mut value = app_json(&created.app);
    value["clientSecret"] = json!(created.client_secret.as_ref().map(|s| s.expose()));
    Ok(data(value))
}

async fn update(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<AppId>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<AppBody>,
) -> Result<Json<Data<Value>>> {
    let usher = state.usher();
    let old = usher.app(&actor, id).await?;
    let input = body.into_input(Some(&old))?;
    let updated = usher.update_app(&actor, id, input, &origin).await?;
    let mut value = app_json(&updated.app);
    if let Some(secret) = &updated.client_secret {
        value["clientSecret"] = json!(secret.expose());
    }
    Ok(data(value))
}

async fn renew_secret(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<AppId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    let secret = state.usher().renew_app_secret(&actor, id, &origin).await?;
    Ok(data(json!({"clientSecret": secret.expose()})))
}

async fn remove(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<AppId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    state.usher().delete_app(&actor, id, &origin).await?;
    Ok(data(json!({"success": true})))
}
