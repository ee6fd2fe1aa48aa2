//! The OpenAPI 3 document of `/api/v1` (as JSON and, as n8n serves it, as
//! YAML), and a page that shows it, all served by the binary (no CDN). It
//! follows the fragments of spec 003, and says where Usher's answers differ
//! from them (see `description`s). It is also what `validate` checks each
//! request against: change the document and the checks follow.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{AppState, error::ApiError, extract::Json};

/// The document. Built once per request: it is small, and it carries the
/// instance's own base URL.
pub fn spec(base_url: &str) -> Value {
    let error = json!({"$ref": "#/components/responses/error"});
    json!({
        "openapi": "3.0.0",
        "info": {
            "title": "Usher Public API",
            "version": "1.1.1",
            "description": "n8n's public API v1 for users. Authenticate with an API key from Settings > API, sent as X-N8N-API-KEY or as a bearer token. Every error answers {code, message}."
        },
        "servers": [{"url": format!("{base_url}/api/v1")}],
        "security": [{"ApiKeyAuth": []}, {"BearerAuth": []}],
        "tags": [{"name": "User", "description": "Operations about users"}],
        "components": {
            "securitySchemes": {
                "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-N8N-API-KEY"},
                "BearerAuth": {"type": "http", "scheme": "bearer"}
            },
            "parameters": {
                "limit": {"name": "limit", "in": "query", "description": "The maximum number of items to return. 0 is the default page, as in n8n (whose nextCursor then never advances; Usher's does).", "required": false, "schema": {"type": "number", "default": 100, "minimum": 0, "maximum": 250, "multipleOf": 1}},
                "offset": {"name": "offset", "in": "query", "description": "The number of items to skip before starting to collect the result set (ignored with a cursor).", "required": false, "schema": {"type": "number", "default": 0, "minimum": 0, "multipleOf": 1}},
                "cursor": {"name": "cursor", "in": "query", "description": "Paginate by setting the cursor parameter to the nextCursor attribute returned by the previous request's response.", "required": false, "style": "form", "schema": {"type": "string"}},
                "includeRole": {"name": "includeRole", "in": "query", "description": "Whether to include the user's role or not.", "required": false, "schema": {"type": "boolean", "default": false}},
                "userIdentifier": {"name": "id", "in": "path", "description": "The ID or email of the user.", "required": true, "schema": {"type": "string"}}
            },
            "schemas": {
                "user": {
                    "type": "object",
                    "required": ["id", "email", "firstName", "lastName", "isPending", "createdAt", "updatedAt", "mfaEnabled"],
                    "properties": {
                        "id": {"type": "string", "readOnly": true},
                        "email": {"type": "string", "format": "email"},
                        "firstName": {"maxLength": 32, "type": "string", "description": "User's first name", "readOnly": true},
                        "lastName": {"maxLength": 32, "type": "string", "description": "User's last name", "readOnly": true},
                        "isPending": {"type": "boolean", "description": "Whether the user finished setting up their account in response to the invitation (true) or not (false).", "readOnly": true},
                        "createdAt": {"type": "string", "description": "Time the user was created.", "format": "date-time", "readOnly": true},
                        "updatedAt": {"type": "string", "description": "Last time the user was updated.", "format": "date-time", "readOnly": true},
                        "role": {"type": "string", "enum": ["global:owner", "global:admin", "global:member"], "readOnly": true},
                        "mfaEnabled": {"type": "boolean", "description": "Whether the user has multi-factor authentication (MFA/2FA) enabled.", "readOnly": true}
                    }
                },
                "userList": {
                    "type": "object",
                    "required": ["data", "nextCursor"],
                    "properties": {
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/user"}},
                        "nextCursor": {"type": "string", "nullable": true, "description": "Paginate through users by setting the cursor parameter to this value; null on the last page."}
                    }
                },
                "inviteResult": {
                    "type": "object",
                    "required": ["user", "error"],
                    "properties": {
                        "user": {
                            "type": "object",
                            "required": ["email", "emailSent"],
                            "properties": {
                                "id": {"type": "string"},
                                "email": {"type": "string"},
                                "inviteAcceptUrl": {"type": "string"},
                                "emailSent": {"type": "boolean"}
                            }
                        },
                        "error": {"type": "string", "description": "Why this email was not invited, or why its email did not go out; empty otherwise."}
                    }
                },
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "integer"},
                        "message": {"type": "string"},
                        "hint": {"type": "string"},
                        "requestId": {"type": "string"}
                    }
                }
            },
            "responses": {
                "error": {"description": "Bad input (400), no or bad key (401), not allowed (403), not found (404), conflict (409), too large (413), wrong content type (415).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}}
            }
        },
        "paths": {
            "/users": {
                "get": {
                    "tags": ["User"], "operationId": "listUsers", "summary": "Retrieve all users",
                    "description": "Retrieve all users from your instance. Only available for the owner and admins (key scope user:list).",
                    "parameters": [
                        {"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/offset"},
                        {"$ref": "#/components/parameters/cursor"}, {"$ref": "#/components/parameters/includeRole"},
                        {"name": "projectId", "in": "query", "required": false, "explode": false, "allowReserved": true, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "Operation successful.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/userList"}}}},
                        "400": error, "401": error, "403": error, "404": error
                    }
                },
                "post": {
                    "tags": ["User"], "operationId": "createUsers", "summary": "Create multiple users",
                    "description": "Invite one or more users (key scope user:create). One result per email, in an array, as n8n answers (spec 003's fragment shows a single object).",
                    "requestBody": {"description": "Array of users to be created.", "required": true, "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}, "role": {"type": "string", "enum": ["global:admin", "global:member"]}}, "required": ["email"]}}}}},
                    "responses": {
                        "200": {"description": "Operation successful.", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/inviteResult"}}}}},
                        "400": error, "401": error, "403": error, "413": error, "415": error
                    }
                }
            },
            "/users/{id}": {
                "get": {
                    "tags": ["User"], "operationId": "getUser", "summary": "Get user by ID/Email",
                    "description": "Retrieve a user from your instance (key scope user:read).",
                    "parameters": [{"$ref": "#/components/parameters/userIdentifier"}, {"$ref": "#/components/parameters/includeRole"}],
                    "responses": {
                        "200": {"description": "Operation successful.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/user"}}}},
                        "400": error, "401": error, "403": error, "404": error
                    }
                },
                "delete": {
                    "tags": ["User"], "operationId": "deleteUser", "summary": "Delete a user",
                    "description": "Delete a user from your instance (key scope user:delete). Their workflows and credentials go to the key user's personal project. Not the owner (403), not oneself (400, as n8n answers).",
                    "parameters": [{"$ref": "#/components/parameters/userIdentifier"}],
                    "responses": {"204": {"description": "Operation successful."}, "400": error, "401": error, "403": error, "404": error}
                }
            },
            "/users/{id}/role": {
                "patch": {
                    "tags": ["User"], "operationId": "changeRole", "summary": "Change a user's global role",
                    "description": "Change a user's global role (key scope user:changeRole). Never the owner's (403); nobody becomes owner this way (400).",
                    "parameters": [{"$ref": "#/components/parameters/userIdentifier"}],
                    "requestBody": {"description": "New role for the user", "required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"newRoleName": {"type": "string", "enum": ["global:admin", "global:member"]}}, "required": ["newRoleName"]}}}},
                    "responses": {
                        "200": {"description": "Operation successful.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/user"}}}},
                        "400": error, "401": error, "403": error, "404": error, "415": error
                    }
                }
            }
        }
    })
}

pub async fn document(State(state): State<AppState>) -> Json<Value> {
    Json(spec(&state.settings().base_url))
}

/// The same document as YAML (`/openapi.yml`, n8n's address for it).
pub async fn yaml_document(State(state): State<AppState>) -> Response {
    match serde_norway::to_string(&spec(&state.settings().base_url)) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/yaml")], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "the OpenAPI document did not turn into YAML");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The document could not be written as YAML.",
            )
            .into_response()
        }
    }
}

struct Operation {
    method: String,
    path: String,
    summary: String,
    description: String,
    statuses: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "api_docs.html")]
struct DocsPage {
    base: String,
    operations: Vec<Operation>,
}

/// A readable page of the document, rendered here from the same JSON.
pub async fn page(State(state): State<AppState>) -> impl IntoResponse {
    let spec = spec(&state.settings().base_url);
    let mut operations = Vec::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, methods) in paths {
            for (method, op) in methods.as_object().into_iter().flatten() {
                let statuses = op["responses"]
                    .as_object()
                    .map(|r| r.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                operations.push(Operation {
                    method: method.to_uppercase(),
                    path: format!("/api/v1{path}"),
                    summary: op["summary"].as_str().unwrap_or_default().to_owned(),
                    description: op["description"].as_str().unwrap_or_default().to_owned(),
                    statuses,
                });
            }
        }
    }
    DocsPage {
        base: state.settings().base_path.clone(),
        operations,
    }
}
