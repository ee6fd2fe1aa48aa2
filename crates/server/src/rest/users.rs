//! The user list.

use axum::{Router, extract::State, routing::get};
use serde::Serialize;

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
    items: Vec<UserJson>,
}

async fn list_users(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<UserList>>> {
    let users = state.usher().users(&actor).await?;
    let items: Vec<UserJson> = users.iter().map(UserJson::from).collect();
    Ok(data(UserList {
        count: items.len(),
        items,
    }))
}
