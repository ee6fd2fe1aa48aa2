//! [`Json`]: request bodies read into the handler's struct, and refused in
//! Usher's error shape with a message that names the field, as n8n's
//! request schemas do (`label is required.`, `[1].email must be a string.`).
//!
//! A body struct says what n8n's schema says: a field without a default is
//! required, `Option` is "may be left out", and [`nullable`] is "must be
//! there, may be null" (`expiresAt`). This module turns serde's refusal
//! into the sentence, once for every route, and for query parameters that
//! carry JSON ([`from_param`]).

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::error::Category;

use crate::{error::ApiError, input};

/// `axum::Json`, but bad input gets Usher's error body: 400 naming the
/// field for JSON that does not fit, 400 for JSON that does not parse, 415
/// for another content type, 413 past the limit.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Send the request body as JSON, with the header Content-Type: application/json.",
            ));
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "The request body is larger than 1 MiB.",
                    ),
                    status => ApiError::new(status, "The request body could not be read."),
                })?;
        from_body(&bytes).map(Json)
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(input::is_json_type)
}

/// The body read into `T`, or the 400 that says what is wrong with it.
fn from_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    from_json(bytes, None)
}

/// A query parameter that carries JSON (`filter={…}`), read and refused as
/// a body is, with the parameter's name in front of each field
/// (`filter.isOwner must be true or false.`).
pub fn from_param<T: DeserializeOwned>(name: &str, text: &str) -> Result<T, ApiError> {
    from_json(text.as_bytes(), Some(name))
}

/// JSON read into `T`: the body (`root` None) or a parameter's value.
fn from_json<T: DeserializeOwned>(bytes: &[u8], root: Option<&str>) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let place = Place::new(root, &error.path().to_string());
        ApiError::new(StatusCode::BAD_REQUEST, place.refusal(error.inner()))
    })?;
    // Anything after the value (`{} x`) makes it not JSON.
    json.end()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, not_json(root)))?;
    Ok(value)
}

const NOT_JSON: &str = "The request body is not valid JSON.";

fn not_json(root: Option<&str>) -> String {
    root.map_or_else(
        || NOT_JSON.to_owned(),
        |name| format!("{name} is not valid JSON."),
    )
}

/// Where serde refused a value: the body itself, or a field in it named as
/// `input.rs` names fields (`[0].email`, `filter.ids[2]`).
struct Place<'a> {
    root: Option<&'a str>,
    /// None: the whole body.
    path: Option<String>,
}

impl<'a> Place<'a> {
    fn new(root: Option<&'a str>, path: &str) -> Self {
        // serde_path_to_error writes the top as ".".
        let inner = (path != ".").then_some(path);
        let path = match (root, inner) {
            (None, inner) => inner.map(str::to_owned),
            (Some(root), None) => Some(root.to_owned()),
            (Some(root), Some(inner)) if inner.starts_with('[') => Some(format!("{root}{inner}")),
            (Some(root), Some(inner)) => Some(format!("{root}.{inner}")),
        };
        Self { root, path }
    }

    /// How a sentence about this value begins.
    fn subject(&self) -> &str {
        self.path.as_deref().unwrap_or("The request body")
    }

    /// A field of this value.
    fn field(&self, name: &str) -> String {
        match &self.path {
            None => name.to_owned(),
            Some(path) => format!("{path}.{name}"),
        }
    }

    /// The sentence for serde's refusal of this value.
    fn refusal(&self, error: &serde_json::Error) -> String {
        if !matches!(error.classify(), Category::Data) {
            return not_json(self.root);
        }
        // serde_json ends its text with the position; the path says more.
        let text = error.to_string();
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let text = text.strip_suffix(&suffix).unwrap_or(&text);
        let subject = self.subject();
        if let Some(field) = between(text, "missing field `", "`") {
            return format!("{} is required.", self.field(field));
        }
        if let Some(field) = between(text, "duplicate field `", "`") {
            return format!("{} is given twice; give it once.", self.field(field));
        }
        // The path already ends with the unknown field.
        if let Some(rest) = text.strip_prefix("unknown field `")
            && let Some((_, expected)) = rest.split_once("`, expected ")
        {
            let choices = expected.trim_start_matches("one of ").replace('`', "");
            return format!("{subject} is not known here: use {choices}.");
        }
        if let Some(rest) = text
            .strip_prefix("invalid type: ")
            .or_else(|| text.strip_prefix("invalid value: "))
            && let Some((_, expected)) = rest.split_once(", expected ")
        {
            return format!("{subject} must be {}.", in_words(expected));
        }
        if let Some(rest) = text.strip_prefix("unknown variant `")
            && let Some((given, expected)) = rest.split_once("`, expected ")
        {
            let choices = expected.trim_start_matches("one of ").replace('`', "");
            return format!("{subject} must be one of {choices}, not '{given}'.");
        }
        if let Some(rest) = text.strip_prefix("invalid length ")
            && let Some((_, expected)) = rest.split_once(", expected ")
        {
            // serde takes a struct from a list of its fields too; what a
            // person sent as a list, an object was wanted for.
            if expected.starts_with("struct ") {
                return format!("{subject} must be an object.");
            }
            return format!("{subject} must have {expected}.");
        }
        // A field's own check (`parsed`) speaks for itself, in a sentence.
        let end = if text.ends_with('.') { "" } else { "." };
        match &self.path {
            None => format!("The request body does not have the expected fields: {text}{end}"),
            Some(path) => format!("{path}: {text}{end}"),
        }
    }
}

/// The text between `start` and the next `end` in a text that begins with
/// `start`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(start)?;
    rest.split_once(end).map(|(inside, _)| inside)
}

/// serde's name of the type it wanted, as a person says it of JSON.
fn in_words(expected: &str) -> String {
    let words = match expected {
        "a string" | "a borrowed string" | "a string or bytes" => "a string",
        "a boolean" => "true or false",
        "a sequence" => "a list",
        "a map" => "an object",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "f32" | "f64" => "a number",
        "unit" => "null",
        other if other.starts_with("struct ") => "an object",
        other => return other.to_owned(),
    };
    words.to_owned()
}

/// For a field that must be there and may be `null` (n8n's
/// `z.….nullable()`): `#[serde(deserialize_with = "nullable")]` on an
/// `Option`. serde then no longer treats a missing `Option` as `None`, so
/// leaving it out is refused with "… is required.".
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// For a field the domain parses where it arrives (`Email`):
/// `#[serde(deserialize_with = "parsed")]`. The domain's refusal is the
/// 400, after the field's path (`[1].email: 'x' is not a valid email
/// address.`), and nothing else in the body is acted on.
pub fn parsed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = usher_domain::Error>,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Key {
        label: String,
        scopes: Vec<String>,
        #[serde(deserialize_with = "nullable")]
        expires_at: Option<i64>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Invite {
        email: String,
        role: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Address {
        #[serde(deserialize_with = "parsed")]
        email: usher_domain::model::Email,
    }

    fn message<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        match from_body::<T>(body.as_bytes()) {
            Ok(value) => panic!("{body} was taken: {value:?}"),
            Err(error) => error.message,
        }
    }

    #[test]
    fn a_refused_body_names_the_field_and_what_it_must_be() {
        let cases = [
            (r#"{"scopes": [], "expiresAt": null}"#, "label is required."),
            (r#"{"label": "k", "scopes": []}"#, "expiresAt is required."),
            (
                r#"{"label": "k", "scopes": "user:read", "expiresAt": null}"#,
                "scopes must be a list.",
            ),
            (
                r#"{"label": "k", "scopes": [], "expiresAt": "soon"}"#,
                "expiresAt must be a whole number.",
            ),
            (
                r#"{"label": 5, "scopes": [], "expiresAt": null}"#,
                "label must be a string.",
            ),
            (r#""text""#, "The request body must be an object."),
        ];
        for (body, expected) in cases {
            assert_eq!(message::<Key>(body), expected, "{body}");
        }
        assert_eq!(
            message::<Vec<Invite>>(r#"[{"email": "a@x.io"}, {"role": "global:admin"}]"#),
            "[1].email is required."
        );
        assert_eq!(
            message::<Vec<Invite>>(r#"[{"email": 7}]"#),
            "[0].email must be a string."
        );
        assert_eq!(
            message::<Vec<Invite>>(r#"{"email": "a@x.io"}"#),
            "The request body must be a list."
        );
        assert_eq!(
            message::<Vec<Address>>(r#"[{"email": "a@x.io"}, {"email": "bad"}]"#),
            "[1].email: 'bad' is not a valid email address."
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Filter {
        is_owner: Option<bool>,
        ids: Option<Vec<String>>,
    }

    #[test]
    fn a_parameter_of_json_is_refused_under_its_name() {
        let refused = |text: &str| match from_param::<Filter>("filter", text) {
            Ok(value) => panic!("{text} was taken: {value:?}"),
            Err(error) => error.message,
        };
        assert_eq!(refused("{bad"), "filter is not valid JSON.");
        assert_eq!(refused("[]"), "filter must be an object.");
        assert_eq!(
            refused(r#"{"isOwner": "yes"}"#),
            "filter.isOwner must be true or false."
        );
        assert_eq!(
            refused(r#"{"ids": [1]}"#),
            "filter.ids[0] must be a string."
        );
        assert_eq!(
            refused(r#"{"role": "x"}"#),
            "filter.role is not known here: use isOwner or ids."
        );
    }

    #[test]
    fn null_is_a_value_for_a_nullable_field_and_bad_json_is_not_json() {
        let key: Result<Key, _> = from_body(br#"{"label": "k", "scopes": [], "expiresAt": null}"#);
        assert!(key.is_ok_and(|k| k.expires_at.is_none()));
        assert_eq!(message::<Key>("{bad"), NOT_JSON);
        assert_eq!(
            message::<Key>(r#"{"label": "k", "scopes": [], "expiresAt": null} x"#),
            NOT_JSON
        );
    }
}
