//! Role changes, ownership hand-over, and the audit log.

use axum::{
    Router,
    extract::{Query, State},
    routing::{get, patch, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_domain::{clock::rfc3339, model::UserId, secret::Secret, store::AuditFilter};

use super::{Data, UserJson, data};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Id, Json, SignedIn},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/{id}/role", patch(change_role))
        .route("/owner/transfer", post(transfer))
        .route("/audit", get(audit))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleBody {
    new_role_name: String,
}

async fn change_role(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<RoleBody>,
) -> Result<Json<Data<UserJson>>> {
    let user = state
        .usher()
        .change_role(&actor, id, &body.new_role_name, &origin)
        .await?;
    Ok(data(UserJson::from(&user)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferBody {
    new_owner_id: String,
    password: Secret,
}

async fn transfer(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<TransferBody>,
) -> Result<Json<Data<UserJson>>> {
    let owner = state
        .usher()
        .transfer_ownership(&actor, body.new_owner_id.parse()?, &body.password, &origin)
        .await?;
    Ok(data(UserJson::from(&owner)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuditQuery {
    action: String,
    person: String,
    take: Option<i64>,
    skip: Option<i64>,
}

pub(crate) fn event_json(event: &usher_domain::store::AuditEvent) -> Value {
    json!({
        "id": event.id.to_string(),
        "at": rfc3339(event.at),
        "actorId": event.actor_id.map(|id| id.to_string()),
        "actorEmail": event.actor_email,
        "action": event.action,
        "target": event.target,
        "detail": event.detail,
        "ip": event.ip,
    })
}

async fn audit(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Data<Value>>> {
    let filter = AuditFilter {
        action: query.action,
        person: query.person,
    };
    let (events, count) = state
        .usher()
        .audit_log(
            &actor,
            &filter,
            query.take.unwrap_or(50),
            query.skip.unwrap_or(0),
        )
        .await?;
    let items: Vec<Value> = events.iter().map(event_json).collect();
    Ok(data(json!({"count": count, "items": items})))
}
