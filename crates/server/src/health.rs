//! `/healthz` (the process answers) and `/healthz/readiness` (the database does).

use axum::{Router, extract::State, http::StatusCode, routing::get};

use crate::{AppState, error::ApiError, extract::Json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(live))
        .route("/healthz/readiness", get(ready))
}

async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match state.usher().database_ready().await {
        Ok(()) => Ok(Json(serde_json::json!({"status": "ok"}))),
        Err(error) => {
            tracing::warn!(%error, "readiness: database does not answer");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database does not answer.",
            ))
        }
    }
}
