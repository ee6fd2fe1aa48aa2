//! The input check every request passes before any handler: no query value,
//! form value or JSON string may carry a control character other than tab,
//! line feed and carriage return.
//!
//! Nothing Usher stores needs one, PostgreSQL refuses NUL in text (a 500 if
//! it got that far), and a control character in a name, a label or an email
//! is at best invisible and at worst rewrites a log line or a header. Doing
//! it here, once, means a new field or route is covered without anyone
//! remembering to; the answer is a 400 that names the field. Whether a tab or
//! a line break belongs in a field is the domain's to say (names and labels
//! are single lines; a workflow definition is not).

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::Value;

use crate::{AppState, error::ApiError, pages};

/// The body limit the routes apply anyway (`DefaultBodyLimit`).
const BODY_LIMIT: usize = 1024 * 1024;

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_page = !state.is_api_path(request.uri().path());
    if let Some(query) = request.uri().query()
        && let Some(field) = form_pairs(query.as_bytes())
    {
        return refuse(&state, is_page, &field);
    }
    let kind = body_kind(&request);
    if kind == BodyKind::Other {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is larger than 1 MiB.",
            )
            .into_response();
        }
    };
    let found = match kind {
        BodyKind::Form => form_pairs(&bytes),
        // A body that is not JSON is the Json extractor's to refuse, with
        // its own message.
        BodyKind::Json => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|value| json_strings(&value, "")),
        BodyKind::Other => None,
    };
    if let Some(field) = found {
        return refuse(&state, is_page, &field);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Other,
}

fn body_kind(request: &Request) -> BodyKind {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if essence(&content_type) == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else if is_json_type(&content_type) {
        BodyKind::Json
    } else {
        BodyKind::Other
    }
}

/// The media type of a `Content-Type` value, without its parameters.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a `Content-Type` says JSON (`application/json`, or a type with
/// `+json`): what this check reads as JSON, the `Json` extractor takes.
pub fn is_json_type(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A character no field takes: C0 controls but tab, line feed and carriage
/// return; DEL; C1 controls.
pub fn forbidden(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The first name or value of `name=value&…` pairs with a forbidden
/// character, as the field to name.
fn form_pairs(encoded: &[u8]) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(name, value)| name.chars().any(forbidden) || value.chars().any(forbidden))
        .map(|(name, _)| printable(&name))
}

/// The path (`email`, `[0].email`, `nodes[2].name`) of the first JSON
/// string, or object key, with a forbidden character.
fn json_strings(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) => text.chars().any(forbidden).then(|| path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| json_strings(item, &format!("{path}[{index}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let here = if path.is_empty() {
                printable(key)
            } else {
                format!("{path}.{}", printable(key))
            };
            if key.chars().any(forbidden) {
                Some(here)
            } else {
                json_strings(item, &here)
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

fn printable(name: &str) -> String {
    name.chars()
        .take(64)
        .flat_map(|c| {
            if forbidden(c) {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A 400 that names the field: Usher's JSON error for `/rest` and `/api`,
/// the error page for pages.
fn refuse(state: &AppState, is_page: bool, field: &str) -> Response {
    let message = if field.is_empty() {
        "The request contains a control character (such as NUL); remove it and try again."
            .to_owned()
    } else {
        format!("{field} contains a control character (such as NUL); remove it and try again.")
    };
    let error = ApiError::new(StatusCode::BAD_REQUEST, message);
    if is_page {
        pages::error_page_without_visitor(state, error)
    } else {
        error.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_field_with_a_control_character() {
        assert_eq!(form_pairs(b"a=1&b=x%00y"), Some("b".into()));
        assert_eq!(form_pairs(b"a=line%0Abreak&b=tab%09"), None);
        let json = serde_json::json!({"ok": "fine", "list": [{"email": "a\u{0}@x.io"}]});
        assert_eq!(json_strings(&json, ""), Some("list[0].email".into()));
        let key = serde_json::json!({"bad\u{1b}": 1});
        assert_eq!(json_strings(&key, ""), Some("bad\\u{1b}".into()));
        assert_eq!(
            json_strings(&serde_json::json!(["a\u{7f}"]), ""),
            Some("[0]".into())
        );
    }
}
