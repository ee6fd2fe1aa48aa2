//! `/api/v1` refuses what its OpenAPI document does not allow, before any
//! handler runs, as n8n's validator does: an unknown query parameter, a
//! value of the wrong type or out of range, a body that does not fit.
//!
//! The checks are read from the document [`super::openapi::spec`] serves,
//! once, when the router is made: an operation, a parameter or a bound
//! added to the document is checked from then on, and nothing is checked
//! that the document does not say. One layer on the router, so a new
//! operation is covered without anyone remembering to.
//!
//! The messages are those of n8n's validator (express-openapi-validator
//! over Ajv): `Unknown query parameter 'x'`, `request/query/limit must be
//! number`, `request/body/0/email must match format "email"`; the first
//! fault only, in Usher's error shape (`{code, message}`).
//!
//! Only the part of JSON Schema the document uses is read: `type`,
//! `nullable`, `enum`, `minimum`, `maximum`, `multipleOf`, `minLength`,
//! `maxLength`, `format: email`, `required`, `properties`,
//! `additionalProperties: false`, `items`, `minItems`, `maxItems`, `$ref`
//! within the document. Why not a JSON Schema crate: docs/architecture.md.
//!
//! The API key is looked at first, when the operation asks for one (as
//! n8n's validator checks security before the request): a call without a
//! valid key is 401 whatever its parameters. The caller found is handed to
//! the handler ([`Verified`]), which does not look it up again.

use std::sync::Arc;

use axum::{
    body::{Body, to_bytes},
    extract::{FromRequestParts, Request},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use usher_domain::{model::Email, service::api::ApiCaller};

use super::PresentedKey;
use crate::{AppState, error::ApiError, input};

/// The body limit the routes apply anyway (`DefaultBodyLimit`).
const BODY_LIMIT: usize = 1024 * 1024;

/// The caller the layer found behind the request's key, for the handler.
#[derive(Clone)]
pub struct Verified(pub ApiCaller);

/// Every operation of the document, with what it accepts.
pub struct Checks {
    document: Value,
    operations: Vec<Operation>,
}

struct Operation {
    method: Method,
    path: Vec<Segment>,
    parameters: Vec<Parameter>,
    body: Option<BodySchema>,
    secured: bool,
}

enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Location {
    Query,
    Path,
}

struct Parameter {
    name: String,
    location: Location,
    required: bool,
    schema: Value,
}

struct BodySchema {
    schema: Value,
}

const METHODS: [(&str, Method); 5] = [
    ("get", Method::GET),
    ("post", Method::POST),
    ("put", Method::PUT),
    ("patch", Method::PATCH),
    ("delete", Method::DELETE),
];

impl Checks {
    /// The checks the document asks for.
    pub fn from_document(document: Value) -> Self {
        let mut operations = Vec::new();
        let secured_by_default = document["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for (name, method) in METHODS {
                let Some(op) = item.get(name) else { continue };
                let declared = shared
                    .iter()
                    .chain(op["parameters"].as_array().into_iter().flatten());
                let parameters = declared
                    .map(|p| resolve(&document, p))
                    .filter_map(|p| {
                        let location = match p["in"].as_str() {
                            Some("query") => Location::Query,
                            Some("path") => Location::Path,
                            _ => return None,
                        };
                        Some(Parameter {
                            name: p["name"].as_str()?.to_owned(),
                            location,
                            required: p["required"].as_bool().unwrap_or(false),
                            schema: p["schema"].clone(),
                        })
                    })
                    .collect();
                let body = op
                    .get("requestBody")
                    .map(|b| resolve(&document, b))
                    .and_then(|b| {
                        // A missing body is the handler's `Json` to refuse.
                        Some(BodySchema {
                            schema: b["content"]["application/json"].get("schema")?.clone(),
                        })
                    });
                let secured = match op.get("security").and_then(Value::as_array) {
                    Some(own) => !own.is_empty(),
                    None => secured_by_default,
                };
                operations.push(Operation {
                    method,
                    path: segments(path),
                    parameters,
                    body,
                    secured,
                });
            }
        }
        Self {
            document,
            operations,
        }
    }

    /// The operation a request is for, with its path's values by name.
    fn operation(&self, method: &Method, path: &str) -> Option<(&Operation, Vec<(&str, String)>)> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let given: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method == method && op.path.len() == given.len())
            .find_map(|op| {
                let mut values = Vec::new();
                for (segment, text) in op.path.iter().zip(&given) {
                    match segment {
                        Segment::Literal(literal) if literal == text => {}
                        Segment::Literal(_) => return None,
                        // As the router: a parameter is never empty.
                        Segment::Param(_) if text.is_empty() => return None,
                        Segment::Param(name) => values.push((
                            name.as_str(),
                            percent_decode_str(text).decode_utf8_lossy().into_owned(),
                        )),
                    }
                }
                Some((op, values))
            })
    }
}

fn segments(path: &str) -> Vec<Segment> {
    path.trim_start_matches('/')
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(s.to_owned()),
            },
        )
        .collect()
}

/// `{"$ref": "#/components/…"}` followed within the document.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    let mut value = value;
    // A bound, so a reference to itself cannot loop.
    for _ in 0..8 {
        match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => match document.pointer(pointer) {
                Some(target) => value = target,
                None => break,
            },
            None => break,
        }
    }
    value
}

fn bad(message: String) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, message).into_response()
}

/// The layer: the key, then the query, the path and the body, each against
/// the operation the document describes. A request for no operation of the
/// document (its own pages, an unknown path) goes on unchecked.
pub async fn layer(state: AppState, checks: Arc<Checks>, request: Request, next: Next) -> Response {
    let Some((op, path_values)) = checks.operation(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    if op.secured {
        let Ok(PresentedKey(key)) = PresentedKey::from_request_parts(&mut parts, &state).await;
        match state.usher().api_caller(key.as_deref()).await {
            Ok(caller) => {
                parts.extensions.insert(Verified(caller));
            }
            Err(error) => return ApiError::from(error).into_response(),
        }
    }
    let doc = &checks.document;
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    if let Err(message) = check_query(doc, op, &query) {
        return bad(message);
    }
    for parameter in op
        .parameters
        .iter()
        .filter(|p| p.location == Location::Path)
    {
        let given = path_values
            .iter()
            .find(|(name, _)| *name == parameter.name)
            .map(|(_, text)| text.as_str());
        if let Some(text) = given
            && let Err(message) = check_text(
                doc,
                &parameter.schema,
                text,
                &format!("request/params/{}", parameter.name),
            )
        {
            return bad(message);
        }
    }
    let Some(expected) = &op.body else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    // A body that is not JSON, or not sent as JSON, is the handler's `Json`
    // to refuse (400 or 415, with its own message).
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(input::is_json_type);
    if !is_json {
        return next.run(Request::from_parts(parts, body)).await;
    }
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
    // A body that does not parse is the handler's `Json` to refuse too.
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes)
        && let Err(message) = check_value(doc, &expected.schema, &value, "request/body")
    {
        return bad(message);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Each query parameter known, given as often as its type allows, and of
/// its type; the required ones there.
fn check_query(doc: &Value, op: &Operation, query: &[(String, String)]) -> Result<(), String> {
    let declared: Vec<&Parameter> = op
        .parameters
        .iter()
        .filter(|p| p.location == Location::Query)
        .collect();
    if let Some((unknown, _)) = query
        .iter()
        .find(|(name, _)| !declared.iter().any(|p| &p.name == name))
    {
        return Err(format!("Unknown query parameter '{unknown}'"));
    }
    for parameter in declared {
        let at = format!("request/query/{}", parameter.name);
        let values: Vec<&str> = query
            .iter()
            .filter(|(name, _)| *name == parameter.name)
            .map(|(_, value)| value.as_str())
            .collect();
        let schema = resolve(doc, &parameter.schema);
        match values.as_slice() {
            [] if parameter.required => {
                return Err(format!(
                    "request/query must have required property '{}'",
                    parameter.name
                ));
            }
            [] => {}
            [one] => check_text(doc, schema, one, &at)?,
            _ if schema["type"] == "array" => {
                let items = resolve(doc, &schema["items"]);
                let coerced = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| coerce(items, v, &format!("{at}/{i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                check_value(doc, schema, &Value::Array(coerced), &at)?;
            }
            // Given twice where one value is wanted: not of its type.
            _ => return Err(format!("{at} must be {}", type_name(schema))),
        }
    }
    Ok(())
}

fn type_name(schema: &Value) -> &str {
    schema["type"].as_str().unwrap_or("string")
}

/// A value given as text (query, path), read as its schema's type says,
/// then checked.
fn check_text(doc: &Value, schema: &Value, text: &str, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    let value = coerce(schema, text, at)?;
    check_value(doc, schema, &value, at)
}

/// Text read as the type its schema names, as Ajv's type coercion does:
/// a number from its decimal form, a boolean from `true` or `false`.
fn coerce(schema: &Value, text: &str, at: &str) -> Result<Value, String> {
    let wrong = || format!("{at} must be {}", type_name(schema));
    match type_name(schema) {
        "number" | "integer" => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(wrong),
        "boolean" => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(wrong()),
        },
        "string" => Ok(Value::String(text.to_owned())),
        _ => Err(wrong()),
    }
}

/// A JSON value against its schema: the first fault, in Ajv's words.
fn check_value(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    if let Some(kind) = schema["type"].as_str() {
        let fits = match kind {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        };
        if !fits {
            return Err(format!("{at} must be {kind}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at} must be equal to one of the allowed values"));
    }
    if let Some(n) = value.as_f64() {
        check_number(schema, n, at)?;
    }
    if let Some(text) = value.as_str() {
        check_string(schema, text, at)?;
    }
    if let Some(items) = value.as_array() {
        let count = items.len() as u64;
        if let Some(min) = schema["minItems"].as_u64()
            && count < min
        {
            return Err(format!("{at} must NOT have fewer than {min} items"));
        }
        if let Some(max) = schema["maxItems"].as_u64()
            && count > max
        {
            return Err(format!("{at} must NOT have more than {max} items"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check_value(doc, item_schema, item, &format!("{at}/{i}"))?;
            }
        }
    }
    if let Some(fields) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            if let Some(name) = name.as_str()
                && !fields.contains_key(name)
            {
                return Err(format!("{at} must have required property '{name}'"));
            }
        }
        let properties = schema["properties"].as_object();
        if schema["additionalProperties"] == false
            && fields
                .keys()
                .any(|k| !properties.is_some_and(|p| p.contains_key(k)))
        {
            return Err(format!("{at} must NOT have additional properties"));
        }
        for (name, field) in fields {
            if let Some(field_schema) = properties.and_then(|p| p.get(name)) {
                check_value(doc, field_schema, field, &format!("{at}/{name}"))?;
            }
        }
    }
    Ok(())
}

fn check_number(schema: &Value, n: f64, at: &str) -> Result<(), String> {
    if let Some(min) = schema
        .get("minimum")
        .filter(|m| m.as_f64().is_some_and(|m| n < m))
    {
        return Err(format!("{at} must be >= {min}"));
    }
    if let Some(max) = schema
        .get("maximum")
        .filter(|m| m.as_f64().is_some_and(|m| n > m))
    {
        return Err(format!("{at} must be <= {max}"));
    }
    if let Some(step) = schema.get("multipleOf")
        && let Some(s) = step.as_f64().filter(|s| *s > 0.0)
        && (n / s).fract() != 0.0
    {
        return Err(format!("{at} must be multiple of {step}"));
    }
    Ok(())
}

fn check_string(schema: &Value, text: &str, at: &str) -> Result<(), String> {
    let length = text.chars().count() as u64;
    if let Some(min) = schema["minLength"].as_u64()
        && length < min
    {
        return Err(format!("{at} must NOT have fewer than {min} characters"));
    }
    if let Some(max) = schema["maxLength"].as_u64()
        && length > max
    {
        return Err(format!("{at} must NOT have more than {max} characters"));
    }
    // An email is what the domain takes for one (one rule, the domain's);
    // other formats are descriptions only.
    if schema["format"] == "email" && Email::parse(text).is_err() {
        return Err(format!("{at} must match format \"email\""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checks() -> Checks {
        Checks::from_document(super::super::openapi::spec("http://usher.test"))
    }

    fn query_fault(method: Method, path: &str, query: &str) -> Option<String> {
        let checks = checks();
        let (op, _) = checks.operation(&method, path)?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        check_query(&checks.document, op, &pairs).err()
    }

    #[test]
    fn query_parameters_are_checked_as_the_document_says() {
        let list = |q| query_fault(Method::GET, "/users", q);
        assert_eq!(list("limit=5&includeRole=true&cursor=x&offset=2"), None);
        assert_eq!(
            list("foo=1").as_deref(),
            Some("Unknown query parameter 'foo'")
        );
        assert_eq!(
            list("limit=abc").as_deref(),
            Some("request/query/limit must be number")
        );
        assert_eq!(
            list("limit=").as_deref(),
            Some("request/query/limit must be number")
        );
        assert_eq!(
            list("limit=251").as_deref(),
            Some("request/query/limit must be <= 250")
        );
        assert_eq!(
            list("limit=1.5").as_deref(),
            Some("request/query/limit must be multiple of 1")
        );
        assert_eq!(list("limit=0"), None);
        assert_eq!(
            list("offset=-1").as_deref(),
            Some("request/query/offset must be >= 0")
        );
        assert_eq!(
            list("includeRole=yes").as_deref(),
            Some("request/query/includeRole must be boolean")
        );
        assert_eq!(
            list("cursor=a&cursor=b").as_deref(),
            Some("request/query/cursor must be string")
        );
        assert_eq!(
            query_fault(Method::DELETE, "/users/x", "transferId=1").as_deref(),
            Some("Unknown query parameter 'transferId'")
        );
    }

    #[test]
    fn operations_are_found_by_method_and_path() {
        let checks = checks();
        assert!(checks.operation(&Method::GET, "/users").is_some());
        assert!(checks.operation(&Method::HEAD, "/users").is_some());
        let values = checks
            .operation(&Method::PATCH, "/users/a%40b.c/role")
            .map(|(_, values)| values);
        assert_eq!(values, Some(vec![("id", "a@b.c".to_owned())]));
        assert!(checks.operation(&Method::PUT, "/users").is_none());
        assert!(checks.operation(&Method::GET, "/openapi.json").is_none());
        assert!(checks.operation(&Method::GET, "/users/").is_none());
    }

    #[test]
    fn bodies_are_checked_against_their_schema() {
        let checks = checks();
        let body = |method, path, value: Value| {
            let (op, _) = checks.operation(&method, path)?;
            let schema = &op.body.as_ref()?.schema;
            check_value(&checks.document, schema, &value, "request/body").err()
        };
        assert_eq!(
            body(Method::POST, "/users", json!([{"email": "a@b.example"}])),
            None
        );
        assert_eq!(
            body(Method::POST, "/users", json!({"email": "a@b.example"})).as_deref(),
            Some("request/body must be array")
        );
        assert_eq!(
            body(
                Method::POST,
                "/users",
                json!([{"email": "a@b.example"}, {"email": "bad"}])
            )
            .as_deref(),
            Some("request/body/1/email must match format \"email\"")
        );
        assert_eq!(
            body(Method::POST, "/users", json!([{"role": "global:member"}])).as_deref(),
            Some("request/body/0 must have required property 'email'")
        );
        assert_eq!(
            body(
                Method::PATCH,
                "/users/x/role",
                json!({"newRoleName": "global:owner"})
            )
            .as_deref(),
            Some("request/body/newRoleName must be equal to one of the allowed values")
        );
    }
}
