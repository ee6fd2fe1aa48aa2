//! `/rest/ldap`: the company directory's settings, a test of them, and
//! synchronisation, under n8n's paths and field names (owner and admins).
//!
//! - `GET /rest/ldap/config` → `{data: {loginEnabled, …, warnings}}`, the
//!   binding password as a placeholder; `warnings` (read-only, beside n8n's
//!   fields) says what is unsafe, such as plain LDAP;
//! - `PUT /rest/ldap/config {…}`: the fields sent replace the saved ones
//!   (a placeholder password keeps the saved one, `warnings` sent back is
//!   ignored); answers the settings as `GET` does;
//! - `POST /rest/ldap/test-connection` → `{data: {success: true}}`, or 400
//!   saying what failed;
//! - `POST /rest/ldap/sync {type: "dry" | "live"}` → the run;
//! - `GET /rest/ldap/sync?page&perPage` → the runs, newest first.

use axum::{
    Router,
    extract::{Query, State},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use usher_domain::{Error, clock::rfc3339, ldap::LdapConfig, store::SyncRun};

use super::{Data, data};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Json, SignedIn},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ldap/config", get(config).put(save))
        .route("/ldap/test-connection", post(test_connection))
        .route("/ldap/sync", get(runs).post(sync))
}

/// The settings as answered: n8n's fields and, read-only, what is unsafe
/// in them.
#[derive(Serialize)]
struct ConfigAnswer {
    #[serde(flatten)]
    config: LdapConfig,
    warnings: Vec<&'static str>,
}

impl From<LdapConfig> for ConfigAnswer {
    fn from(config: LdapConfig) -> Self {
        Self {
            warnings: config.warnings(),
            config,
        }
    }
}

/// The answers' read-only field, which a client may send back with the rest.
const READ_ONLY: &str = "warnings";

async fn config(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<ConfigAnswer>>> {
    Ok(data(state.usher().ldap_config(&actor).await?.into()))
}

async fn save(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<Map<String, Value>>,
) -> Result<Json<Data<ConfigAnswer>>> {
    let current = state.usher().ldap_config(&actor).await?;
    let input = merged(&current, body)?;
    Ok(data(
        state
            .usher()
            .save_ldap_config(&actor, input, &origin)
            .await?
            .into(),
    ))
}

/// The saved settings with the fields of `body` put over them; each field
/// must be one of n8n's and of its type.
pub(crate) fn merged(current: &LdapConfig, body: Map<String, Value>) -> Result<LdapConfig, Error> {
    let Value::Object(mut fields) = serde_json::to_value(current)
        .map_err(|e| Error::Internal(format!("LDAP settings: {e}")))?
    else {
        return Err(Error::Internal("LDAP settings are not an object".into()));
    };
    for (name, value) in body {
        if name == READ_ONLY {
            continue;
        }
        let Some(known) = fields.get(&name) else {
            return Err(Error::invalid(format!(
                "{name} is not an LDAP setting. The settings are n8n's: {}.",
                fields.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let kind_ok = match known {
            Value::Bool(_) => value.is_boolean(),
            Value::Number(_) => value.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)),
            _ => value.is_string(),
        };
        if !kind_ok {
            let kind = match known {
                Value::Bool(_) => "true or false",
                Value::Number(_) => "a whole number, 0 or more",
                _ if name == "connectionSecurity" => "\"none\", \"tls\" or \"startTls\"",
                _ => "a string",
            };
            return Err(field_error(&name, format!("{name} must be {kind}.")));
        }
        fields.insert(name, value);
    }
    serde_json::from_value(Value::Object(fields)).map_err(|_| {
        field_error(
            "connectionSecurity",
            "connectionSecurity must be \"none\", \"tls\" or \"startTls\".".into(),
        )
    })
}

/// An error on one of n8n's fields (the names are `&'static` in the
/// domain's errors).
fn field_error(name: &str, message: String) -> Error {
    const FIELDS: [&str; 19] = [
        "loginEnabled",
        "loginLabel",
        "connectionUrl",
        "allowUnauthorizedCerts",
        "connectionSecurity",
        "connectionPort",
        "baseDn",
        "bindingAdminDn",
        "bindingAdminPassword",
        "firstNameAttribute",
        "lastNameAttribute",
        "emailAttribute",
        "loginIdAttribute",
        "ldapIdAttribute",
        "userFilter",
        "synchronizationEnabled",
        "synchronizationInterval",
        "searchPageSize",
        "searchTimeout",
    ];
    match FIELDS.iter().find(|f| **f == name) {
        Some(field) => Error::field(field, message),
        None => Error::invalid(message),
    }
}

async fn test_connection(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Value>>> {
    state.usher().test_ldap_connection(&actor).await?;
    Ok(data(json!({"success": true})))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SyncBody {
    /// Checked by the service, after who may ask (so a member is told 403
    /// whatever the body).
    #[serde(rename = "type")]
    kind: String,
}

async fn sync(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<SyncBody>,
) -> Result<Json<Data<Value>>> {
    let run = state.usher().sync_ldap(&actor, &body.kind, &origin).await?;
    Ok(data(run_json(&run)))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RunsQuery {
    page: Option<String>,
    per_page: Option<String>,
}

/// A whole number from the query, or a 400 naming the parameter.
fn number(name: &'static str, text: Option<&str>, default: i64, max: i64) -> Result<i64, Error> {
    match text {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=max).contains(n))
            .ok_or_else(|| {
                Error::field(
                    name,
                    format!("{name} must be a whole number from 0 to {max}."),
                )
            }),
    }
}

async fn runs(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Data<Vec<Value>>>> {
    let per_page = number("perPage", query.per_page.as_deref(), 20, 100)?.max(1);
    let page = number("page", query.page.as_deref(), 0, 1000)?;
    let runs = state
        .usher()
        .ldap_sync_runs(&actor, per_page * (page + 1))
        .await?;
    let skip = usize::try_from(per_page * page).unwrap_or(0);
    Ok(data(runs.iter().skip(skip).map(run_json).collect()))
}

/// A run as n8n's sync history shows it.
pub(crate) fn run_json(run: &SyncRun) -> Value {
    json!({
        "id": run.id.to_string(),
        "providerType": "ldap",
        "runMode": run.run_mode,
        "status": run.status,
        "startedAt": rfc3339(run.started_at),
        "endedAt": rfc3339(run.ended_at),
        "scanned": run.scanned,
        "created": run.created,
        "updated": run.updated,
        "disabled": run.disabled,
        "error": run.error,
    })
}
