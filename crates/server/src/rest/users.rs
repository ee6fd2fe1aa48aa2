//! The user list.

use axum::{Router, extract::State, routing::get};
use serde::Serialize;

use usher_domain::service::Usher;

use super::{Data, UserJson, data};
use crate::{
    AppState,
    error::Result,
    extract::{Json, SignedIn},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/users", get(list_users))
}

#[derive(Serialize)]
struct UserList {
    count: usize,
    items: Vec<serde_json::Value>,
}

async fn list_users(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<UserList>>> {
    let users = state.usher().users(&actor).await?;
    let items: Vec<serde_json::Value> = users
        .iter()
        .map(|user| {
            let full = serde_json::to_value(UserJson::from(user)).unwrap_or_default();
            if Usher::sees_full_profile(&actor, user) {
                full
            } else {
                // What n8n shows a member of other users.
                serde_json::json!({
                    "id": full["id"],
                    "email": full["email"],
                    "firstName": full["firstName"],
                    "lastName": full["lastName"],
                    "role": full["role"],
                })
            }
        })
        .collect();
    Ok(data(UserList {
        count: items.len(),
        items,
    }))
}
