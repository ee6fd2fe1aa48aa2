//! `/rest/api-keys`: the signed-in user's keys for `/api/v1`.

use axum::{Router, extract::State, routing::get};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_domain::{clock::rfc3339, model::ApiKeyId, service::api::scopes_for, store::ApiKey};

use super::{Data, data};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Id, Json, SignedIn, nullable},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/scopes", get(scopes))
        .route(
            "/api-keys/{id}",
            axum::routing::patch(update).delete(remove),
        )
}

/// A key as listed: never the key itself, only its last characters.
pub(crate) fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id.to_string(),
        "label": key.label,
        "apiKey": format!("******{}", key.last_chars),
        "scopes": key.scopes,
        "expiresAt": key.expires_at.map(|at| at / 1000),
        "createdAt": rfc3339(key.created_at),
        "lastUsedAt": key.last_used_at.map(rfc3339),
    })
}

async fn scopes(SignedIn(actor): SignedIn) -> Json<Data<Vec<&'static str>>> {
    data(scopes_for(actor.user.role).to_vec())
}

async fn list(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Vec<Value>>>> {
    Ok(data(
        state
            .usher()
            .api_keys(&actor)
            .await?
            .iter()
            .map(key_json)
            .collect(),
    ))
}

/// n8n's `CreateApiKeyRequestDto`: every field is required, and
/// `expiresAt` may be null (a key that does not expire) but not left out.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewKeyBody {
    label: String,
    scopes: Vec<String>,
    /// Unix seconds, or null for a key that does not expire.
    #[serde(deserialize_with = "nullable")]
    expires_at: Option<i64>,
}

/// n8n's `UpdateApiKeyRequestDto`: label and scopes.
#[derive(Deserialize)]
struct KeyBody {
    label: String,
    scopes: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<NewKeyBody>,
) -> Result<Json<Data<Value>>> {
    let created = state
        .usher()
        .create_api_key(&actor, &body.label, body.scopes, body.expires_at, &origin)
        .await?;
    let mut value = key_json(&created.key);
    value["rawApiKey"] = json!(created.raw.expose());
    Ok(data(value))
}

async fn update(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<ApiKeyId>,
    Json(body): Json<KeyBody>,
) -> Result<Json<Data<Value>>> {
    state
        .usher()
        // The service still takes text: service/api.rs moves to ApiKeyId
        // with the storage work.
        .update_api_key(&actor, &id.to_string(), &body.label, body.scopes)
        .await?;
    Ok(data(json!({"success": true})))
}

async fn remove(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<ApiKeyId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    state
        .usher()
        .delete_api_key(&actor, &id.to_string(), &origin)
        .await?;
    Ok(data(json!({"success": true})))
}
