//! One error type for `/rest` and `/api/v1`, and how each becomes a response.
//!
//! The body is always `{"code", "message", "hint"?}`. A 5xx shows no internal
//! text: it carries the request id, and the log line that holds the cause
//! carries the same id. The response also keeps the error in its extensions,
//! so that on a page (an extractor's refusal, a handler's `?`) a layer shows
//! the same message inside the layout instead (`pages::error`).

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use usher_domain::Error;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub hint: Option<String>,
    /// n8n's own codes where scripts rely on them (998: MFA needed).
    pub code: Option<u16>,
    /// For 429: seconds until a new attempt is counted (`Retry-After`).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: u16,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            hint: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "You are not signed in, or your session has ended.",
        )
        .with_hint("Sign in and try again.")
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "There is nothing at this address.")
    }
}

/// The status each domain error gets: one `match`, here.
impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = match &error {
            Error::Invalid(_) | Error::InvalidField { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::TooManyRequests {
                message,
                retry_after,
            } => {
                let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, message.clone());
                error.retry_after = Some(*retry_after);
                return error;
            }
            Error::MfaRequired(message) => {
                let mut error = Self::new(StatusCode::UNAUTHORIZED, message.clone());
                error.code = Some(998);
                return error;
            }
            Error::MfaCodeRejected(message) => {
                let mut error = Self::new(StatusCode::BAD_REQUEST, message.clone());
                error.code = Some(997);
                return error;
            }
            Error::Internal(cause) => return internal(cause),
        };
        Self::new(status, error.to_string())
    }
}

/// Logs the cause with the request id and answers without it.
pub fn internal(cause: &str) -> ApiError {
    tracing::error!(cause, "request failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side. If it happens again, give the request id to your administrator.",
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = self
            .status
            .is_server_error()
            .then(crate::request_id::current)
            .flatten();
        let body = Body {
            code: self.code.unwrap_or(self.status.as_u16()),
            message: &self.message,
            hint: self.hint.as_deref(),
            request_id,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response.extensions_mut().insert(self);
        response
    }
}
