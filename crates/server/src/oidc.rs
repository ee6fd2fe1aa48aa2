//! OpenID Connect over HTTP: discovery, JWKS, and the endpoints it names
//! under `/oidc/`. The rules are in `usher_domain::service::oidc`; this
//! module reads requests and writes answers in the protocol's shapes.
//!
//! Two kinds of route:
//! - [`protocol_router`]: what apps call server to server (token,
//!   UserInfo, revocation, introspection, JWKS, discovery). They take
//!   form bodies or bearer tokens from other origins, so they sit outside
//!   the session, same-origin and form-token layers, and answer errors as
//!   RFC 6749 `{error, error_description}`;
//! - [`browser_router`]: what people's browsers visit (authorize, the
//!   consent, sign-in-again and sign-out steps), which are pages like any
//!   other: the session layer knows who is there, and every step that
//!   changes something is a form posted with its token.

use std::collections::HashMap;

use axum::{
    Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use usher_domain::{
    secret::Secret,
    service::oidc::{
        Authorize, AuthorizeRequest, ClientAuth, OAuthError, SCOPES, TokenRequest, with_query,
    },
};

use crate::{
    AppState,
    error::ApiError,
    extract::ClientOrigin,
    pages::{self, Page, PageError, confirm, percent_encode},
    rest::with_cookie,
};

/// The endpoints' paths, under the base URL.
pub const AUTHORIZE: &str = "/oidc/authorize";
pub const TOKEN: &str = "/oidc/token";
pub const USERINFO: &str = "/oidc/userinfo";
pub const JWKS: &str = "/oidc/jwks";
pub const REVOKE: &str = "/oidc/revoke";
pub const INTROSPECT: &str = "/oidc/introspect";
pub const END_SESSION: &str = "/oidc/end-session";

pub fn protocol_router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route(JWKS, get(jwks))
        .route(TOKEN, post(token))
        .route(USERINFO, get(userinfo).post(userinfo))
        .route(REVOKE, post(revoke))
        .route(INTROSPECT, post(introspect))
}

pub fn browser_router() -> Router<AppState> {
    Router::new()
        .route(AUTHORIZE, get(view_authorize_get))
        .route("/oidc/consent", post(view_consent_post))
        .route("/oidc/consent/deny", get(view_consent_deny))
        .route("/oidc/sign-in-again", post(view_sign_in_again_post))
        .route(END_SESSION, get(view_end_session).post(view_end_session))
        .route("/oidc/sign-out", post(view_sign_out_post))
}

async fn discovery(State(state): State<AppState>) -> Response {
    let issuer = state.usher().issuer().to_owned();
    let at = |path: &str| format!("{issuer}{path}");
    let body = json!({
        "issuer": issuer,
        "authorization_endpoint": at(AUTHORIZE),
        "token_endpoint": at(TOKEN),
        "userinfo_endpoint": at(USERINFO),
        "jwks_uri": at(JWKS),
        "revocation_endpoint": at(REVOKE),
        "introspection_endpoint": at(INTROSPECT),
        "end_session_endpoint": at(END_SESSION),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES,
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "amr",
            "name", "given_name", "family_name", "preferred_username", "updated_at",
            "email", "email_verified", "groups", "roles",
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    axum::Json(body).into_response()
}

/// An OAuth error answer: its status, `{error, error_description}`, and
/// the header a client that failed Basic authentication expects.
fn oauth_error(error: OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        axum::Json(json!({"error": error.error, "error_description": error.description})),
    )
        .into_response();
    if error.status == 401 {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"usher\""),
        );
    }
    if let Some(seconds) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn jwks(State(state): State<AppState>) -> Response {
    match state.usher().jwks().await {
        Ok(keys) => axum::Json(keys).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// A form body as name → value; a parameter sent twice is refused, as
/// RFC 6749 §3.2 says.
fn form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut fields = HashMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if fields
            .insert(name.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::new(
                "invalid_request",
                format!("{name} was sent more than once."),
            ));
        }
    }
    Ok(fields)
}

/// The client's credentials: `Authorization: Basic` (each half
/// form-urlencoded, RFC 6749 §2.3.1) or `client_id`/`client_secret` in
/// the body, never both.
fn client_auth(
    headers: &HeaderMap,
    fields: &mut HashMap<String, String>,
) -> Result<ClientAuth, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
    let body_id = fields.remove("client_id");
    let body_secret = fields.remove("client_secret").map(Secret::new);
    let Some(encoded) = basic else {
        return Ok(ClientAuth {
            client_id: body_id,
            secret: body_secret,
        });
    };
    let malformed = || OAuthError {
        status: 401,
        ..OAuthError::new("invalid_client", "The Basic credentials are malformed.")
    };
    if body_secret.is_some() {
        return Err(OAuthError::new(
            "invalid_request",
            "Send the client secret in the Authorization header or in the body, not both.",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let unescape = |part: &str| {
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let id = unescape(id);
    if body_id.as_ref().is_some_and(|body| body != &id) {
        return Err(OAuthError::new(
            "invalid_request",
            "client_id differs between the header and the body.",
        ));
    }
    Ok(ClientAuth {
        client_id: Some(id),
        secret: Some(Secret::new(unescape(secret))),
    })
}

/// `Content-Type: application/x-www-form-urlencoded`, as RFC 6749 asks.
fn require_form(headers: &HeaderMap) -> Result<(), OAuthError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if essence.as_deref() == Some("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(OAuthError::new(
            "invalid_request",
            "Send the parameters as application/x-www-form-urlencoded.",
        ))
    }
}

async fn token(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = async {
        require_form(&headers)?;
        let mut fields = form(&body)?;
        let auth = client_auth(&headers, &mut fields)?;
        let request = TokenRequest {
            grant_type: fields.remove("grant_type"),
            code: fields.remove("code"),
            redirect_uri: fields.remove("redirect_uri"),
            code_verifier: fields.remove("code_verifier"),
            refresh_token: fields.remove("refresh_token"),
        };
        state.usher().token(&auth, &request, &origin).await
    };
    match answer.await {
        Ok(tokens) => {
            let mut response = axum::Json(json!({
                "access_token": tokens.access_token.expose(),
                "token_type": "Bearer",
                "expires_in": tokens.expires_in,
                "refresh_token": tokens.refresh_token.expose(),
                "id_token": tokens.id_token,
                "scope": tokens.scope,
            }))
            .into_response();
            response
                .headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => oauth_error(error),
    }
}

/// UserInfo, GET or POST, with the access token as a bearer token (RFC
/// 6750 §2.1).
async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let refuse = |error: &str, description: &str| {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response();
        let challenge = format!("Bearer realm=\"usher\", error=\"{error}\"");
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(bearer) = bearer else {
        return refuse(
            "invalid_request",
            "Send the access token as Authorization: Bearer.",
        );
    };
    match state.usher().userinfo(bearer).await {
        Ok(Some(claims)) => axum::Json(claims).into_response(),
        Ok(None) => refuse(
            "invalid_token",
            "The access token is invalid, expired or revoked.",
        ),
        Err(error) => ApiError::from(error).into_response(),
    }
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = async {
        require_form(&headers)?;
        let mut fields = form(&body)?;
        let auth = client_auth(&headers, &mut fields)?;
        let token = fields.remove("token").unwrap_or_default();
        if token.is_empty() {
            return Err(OAuthError::new(
                "invalid_request",
                "Send the token to revoke.",
            ));
        }
        state.usher().revoke(&auth, &token).await
    };
    match answer.await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => oauth_error(error),
    }
}

async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = async {
        require_form(&headers)?;
        let mut fields = form(&body)?;
        let auth = client_auth(&headers, &mut fields)?;
        let token = fields.remove("token").unwrap_or_default();
        state.usher().introspect(&auth, &token).await
    };
    match answer.await {
        Ok(value) => axum::Json(value).into_response(),
        Err(error) => oauth_error(error),
    }
}

/// The query of an authorization request, parsed; a parameter sent twice
/// counts as malformed (`None` here, an error for the caller).
fn authorize_request(query: &str) -> Option<AuthorizeRequest> {
    let mut seen: HashMap<String, String> = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if seen.insert(name.into_owned(), value.into_owned()).is_some() {
            return None;
        }
    }
    let mut take = |name: &str| seen.remove(name);
    Some(AuthorizeRequest {
        client_id: take("client_id"),
        redirect_uri: take("redirect_uri"),
        response_type: take("response_type"),
        scope: take("scope"),
        state: take("state"),
        nonce: take("nonce"),
        code_challenge: take("code_challenge"),
        code_challenge_method: take("code_challenge_method"),
        prompt: take("prompt"),
        max_age: take("max_age"),
        login_hint: take("login_hint"),
        login_after: take("login_after"),
    })
}

/// The query again, without `drop` (a prompt already answered) and with
/// `extra` added.
fn query_without(query: &str, drop: &[&str], extra: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if !drop.contains(&name.as_ref()) {
            out.append_pair(&name, &value);
        }
    }
    for (name, value) in extra {
        out.append_pair(name, value);
    }
    out.finish()
}

fn bad_request(message: impl Into<String>) -> PageError {
    PageError::from(ApiError::new(StatusCode::BAD_REQUEST, message))
}

/// `GET /oidc/authorize`: the authorization code flow's front door.
async fn view_authorize_get(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = query.unwrap_or_default();
    let request = authorize_request(&query)
        .ok_or_else(|| bad_request("The sign-in link repeats a parameter."))?;
    let usher = state.usher();
    let outcome = usher
        .authorize(&request, page.identity.actor.as_ref(), &origin)
        .await?;
    let here = format!("{AUTHORIZE}?{query}");
    Ok(match outcome {
        Authorize::ErrorPage(message) => return Err(bad_request(message)),
        Authorize::Error {
            redirect_uri,
            error,
            description,
            state: app_state,
        } => {
            let mut pairs = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(app_state) = app_state.as_deref() {
                pairs.push(("state", app_state));
            }
            Redirect::to(&with_query(&redirect_uri, &pairs)).into_response()
        }
        Authorize::SignIn { .. } => {
            let mut signin = format!("/signin?redirect={}", percent_encode(&here, b"/"));
            // `login_hint`: the app knows who is signing in; the form starts
            // with their address (they may change it).
            if let Some(hint) = request.login_hint.as_deref().filter(|h| h.len() <= 320) {
                signin.push_str(&format!("&email={}", percent_encode(hint, b"")));
            }
            Redirect::to(&state.path(&signin)).into_response()
        }
        Authorize::SignInAgain { app } => confirm::ask(
            page.layout,
            format!("Sign in again to continue to {}", app.name),
            format!(
                "{} asks you to confirm who you are with a fresh sign-in.",
                app.name
            ),
            "Sign in again",
            "/oidc/sign-in-again",
            "/",
            &Carried { request: query },
        ),
        Authorize::Consent { app, scopes } => confirm::ask(
            page.layout,
            format!("Allow {} to sign you in?", app.name),
            format!(
                "{} will learn: {}. It is not run by your Usher's admins.",
                app.name,
                describe_scopes(&scopes)
            ),
            "Allow",
            "/oidc/consent",
            &format!("/oidc/consent/deny?{query}"),
            &Carried { request: query },
        ),
        Authorize::SetUpMfa { app } => {
            return Err(PageError::Failed {
                error: ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "{} requires two-factor authentication. Set it up, then go on to the app.",
                        app.name
                    ),
                ),
                heading: Some("Two-factor authentication needed".into()),
                next: Some((
                    format!("/settings/mfa?redirect={}", percent_encode(&here, b"/")),
                    "Set up two-factor authentication".into(),
                )),
            });
        }
        Authorize::Code {
            redirect_uri,
            code,
            state: app_state,
        } => {
            let mut pairs = vec![("code", code.expose())];
            if let Some(app_state) = app_state.as_deref() {
                pairs.push(("state", app_state));
            }
            pairs.push(("iss", usher.issuer()));
            Redirect::to(&with_query(&redirect_uri, &pairs)).into_response()
        }
    })
}

fn describe_scopes(scopes: &[String]) -> String {
    let mut parts = vec!["your account id"];
    for scope in scopes {
        match scope.as_str() {
            "profile" => parts.push("your name"),
            "email" => parts.push("your email address"),
            "groups" => parts.push("your projects and your role in the app"),
            _ => {}
        }
    }
    parts.join(", ")
}

/// The authorization request a step carries through its form.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct Carried {
    request: String,
}

async fn view_consent_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<Carried>,
) -> Result<Response, PageError> {
    let Some(actor) = page.identity.actor.as_ref() else {
        return Err(PageError::Redirect(state.path("/signin")));
    };
    let request = authorize_request(&form.request)
        .ok_or_else(|| bad_request("The sign-in request repeats a parameter."))?;
    state.usher().give_consent(actor, &request, &origin).await?;
    let back = query_without(&form.request, &["prompt"], &[]);
    Ok(pages::onward(
        &state,
        &state.path(&format!("{AUTHORIZE}?{back}")),
    ))
}

/// "Cancel" on the consent page: back to the app with `access_denied`.
/// Nothing changes.
async fn view_consent_deny(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let request = authorize_request(&query.unwrap_or_default())
        .ok_or_else(|| bad_request("The sign-in request repeats a parameter."))?;
    let target = state.usher().deny_consent(&request).await?;
    Ok(Redirect::to(&target).into_response())
}

/// Ends the session and sends the person to sign in, then back to the
/// authorization request, marked so that the new session counts as fresh.
async fn view_sign_in_again_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<Carried>,
) -> Result<Response, PageError> {
    let usher = state.usher();
    if let Some(actor) = &page.identity.actor {
        usher.logout(actor, &origin).await?;
    }
    let marker = usher.login_after_now()?;
    let back = query_without(
        &form.request,
        &["prompt", "login_after"],
        &[("login_after", &marker)],
    );
    let target = state.path(&format!(
        "/signin?redirect={}",
        percent_encode(&format!("{AUTHORIZE}?{back}"), b"/")
    ));
    Ok(with_cookie(Redirect::to(&target), state.clear_cookie()))
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct EndSession {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

fn end_session_params(query: Option<&str>, body: &[u8]) -> EndSession {
    let text = match query {
        Some(query) if !query.is_empty() => query.as_bytes().to_vec(),
        _ => body.to_vec(),
    };
    let mut params = EndSession::default();
    for (name, value) in form_urlencoded::parse(&text) {
        let value = Some(value.into_owned());
        match name.as_ref() {
            "id_token_hint" => params.id_token_hint = value,
            "client_id" => params.client_id = value,
            "post_logout_redirect_uri" => params.post_logout_redirect_uri = value,
            "state" => params.state = value,
            _ => {}
        }
    }
    params
}

/// RP-initiated logout. Signed in: a page asks first (a GET never ends a
/// session), then [`view_sign_out_post`] does it. Not signed in: straight
/// on to the app's registered address.
async fn view_end_session(
    State(state): State<AppState>,
    page: Page,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = end_session_params(query.as_deref(), &body);
    let logout = state
        .usher()
        .check_logout(
            params.id_token_hint.as_deref(),
            params.client_id.as_deref(),
            params.post_logout_redirect_uri.as_deref(),
            params.state.as_deref(),
        )
        .await?;
    let signed_in = page
        .identity
        .actor
        .as_ref()
        .is_some_and(|a| a.session.is_some());
    if !signed_in {
        return Ok(match logout.redirect {
            Some(target) => Redirect::to(&target).into_response(),
            None => Redirect::to(&state.path("/signin?signedOut=1")).into_response(),
        });
    }
    let who = logout.app_name.unwrap_or_else(|| "An app".into());
    Ok(confirm::ask(
        page.layout,
        "Sign out of Usher?",
        format!("{who} signed you out and asks to end your Usher session on this browser too."),
        "Sign out",
        "/oidc/sign-out",
        "/",
        &params,
    ))
}

async fn view_sign_out_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(params): axum::Form<EndSession>,
) -> Result<Response, PageError> {
    let usher = state.usher();
    let logout = usher
        .check_logout(
            params.id_token_hint.as_deref(),
            params.client_id.as_deref(),
            params.post_logout_redirect_uri.as_deref(),
            params.state.as_deref(),
        )
        .await?;
    if let Some(actor) = &page.identity.actor {
        usher.logout(actor, &origin).await?;
    }
    let target = logout
        .redirect
        .unwrap_or_else(|| state.path("/signin?signedOut=1"));
    Ok(with_cookie(
        pages::onward(&state, &target),
        state.clear_cookie(),
    ))
}
