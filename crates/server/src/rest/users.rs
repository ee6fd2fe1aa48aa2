//! The user list.

use axum::{Router, extract::State, routing::get};
use serde::Serialize;

use super::{Data, data};
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
        .map(|user| super::user_seen_by(&actor, user))
        .collect();
    Ok(data(UserList {
        count: items.len(),
        items,
    }))
}
