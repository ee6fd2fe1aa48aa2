//! The session layer and the extractors `/rest` and the pages share: who is
//! asking ([`session_layer`], which also holds those who must first replace
//! a temporary password or set up MFA; [`Who`], [`SignedIn`]), from where
//! ([`ClientOrigin`]), ids parsed at the edge ([`Id`], [`Ids`]), and JSON
//! bodies refused in Usher's error shape ([`Json`]).

use std::{net::SocketAddr, str::FromStr};

mod json;

pub use json::{Json, from_param, nullable, parsed};

use axum::{
    extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use usher_domain::{
    model::Origin,
    service::{
        auth::{Actor, Identity},
        mfa::ENROL_REQUIRED,
        onboarding::CHANGE_REQUIRED,
    },
};

use crate::{
    AppState,
    error::ApiError,
    settings::{CookieSettings, SameSite},
};

/// Where the request came from: the peer address, or with N8N_PROXY_HOPS set,
/// the address the trusted proxies recorded in X-Forwarded-For.
pub struct ClientOrigin(pub Origin);

impl FromRequestParts<AppState> for ClientOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_default();
        let ip = forwarded_ip(&parts.headers, state.settings().proxy_hops).unwrap_or(peer);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let device = session_token(
            &parts.headers,
            &device_cookie_name(&state.settings().cookie),
        );
        Ok(ClientOrigin(Origin {
            ip,
            user_agent,
            device,
        }))
    }
}

/// The address `hops` proxies back in X-Forwarded-For (each proxy appends the
/// address it saw, so only the last `hops` entries can be trusted).
fn forwarded_ip(headers: &HeaderMap, hops: usize) -> Option<String> {
    if hops == 0 {
        return None;
    }
    let chain: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    chain
        .len()
        .checked_sub(hops)
        .and_then(|i| chain.get(i))
        .cloned()
}

/// Resolves the session cookie once per request and leaves the [`Identity`]
/// in the request's extensions; renews the cookie when the session slid.
pub async fn session_layer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = session_token(request.headers(), &state.settings().cookie.name);
    let identity = match state.usher().identify(token.as_deref()).await {
        Ok(identity) => identity,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let refreshed = identity
        .actor
        .as_ref()
        .and_then(|a| a.refreshed_until.map(|until| (token.clone(), until)));
    if let Some(hold) = Hold::of(&identity)
        && !hold.allows(request.method(), request.uri().path())
    {
        return hold.answer(&state, request.uri());
    }
    request.extensions_mut().insert(identity);
    let mut response = next.run(request).await;
    if let Some((Some(token), until)) = refreshed {
        let already_set = response.headers().contains_key(header::SET_COOKIE);
        if !already_set && let Some(cookie) = state.renewed_cookie(&token, until) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// A signed-in person who must do one thing before anything else. The
/// session layer holds them for every route, pages and `/rest` alike, and
/// lets through only what it lists, so a new route is held too.
#[derive(Clone, Copy)]
enum Hold {
    /// A temporary password (users added directly, forced resets).
    PasswordChange,
    /// The owner requires two-factor authentication and they have none.
    MfaEnrolment,
}

impl Hold {
    fn of(identity: &Identity) -> Option<Self> {
        let actor = identity.actor.as_ref()?;
        if actor.must_change_password() {
            Some(Self::PasswordChange)
        } else if actor.must_enrol_mfa(identity.instance.mfa_required) {
            Some(Self::MfaEnrolment)
        } else {
            None
        }
    }

    /// What they may do meanwhile: the one thing, see who they are, sign out.
    fn allows(self, method: &Method, path: &str) -> bool {
        let either = matches!(
            (method, path),
            (&Method::GET, "/rest/login" | "/rest/me" | "/rest/settings")
                | (&Method::POST, "/rest/logout")
                | (_, "/signout")
        );
        either
            || match self {
                Self::PasswordChange => matches!(
                    (method, path),
                    (&Method::PATCH, "/rest/me/password") | (_, "/set-password")
                ),
                Self::MfaEnrolment => matches!(
                    (method, path),
                    (&Method::GET, "/rest/mfa/qr")
                        | (
                            &Method::POST,
                            "/rest/mfa/enable"
                                | "/rest/mfa/can-enable"
                                | "/rest/mfa/qr/renew"
                                | "/settings/mfa/start"
                                | "/settings/mfa/enable"
                        )
                        | (_, "/settings/mfa")
                ),
            }
    }

    /// Anything else: 403 with what to do under `/rest`; on pages, the page
    /// to do it on.
    fn answer(self, state: &AppState, uri: &axum::http::Uri) -> Response {
        let path = uri.path();
        let (message, hint, page) = match self {
            Self::PasswordChange => (
                CHANGE_REQUIRED,
                "Choose a new password with PATCH /rest/me/password.",
                "/set-password",
            ),
            Self::MfaEnrolment => (
                ENROL_REQUIRED,
                "Set it up with GET /rest/mfa/qr and POST /rest/mfa/enable.",
                "/settings/mfa",
            ),
        };
        if path.starts_with("/rest/") {
            ApiError::new(StatusCode::FORBIDDEN, message)
                .with_hint(hint)
                .into_response()
        } else if path == crate::oidc::AUTHORIZE {
            // An app's sign-in goes on once the password is chosen or
            // two-factor is set up.
            let back = uri.path_and_query().map_or(path, |p| p.as_str());
            let page = format!(
                "{page}?redirect={}",
                crate::pages::percent_encode(back, b"/")
            );
            Redirect::to(&state.path(&page)).into_response()
        } else {
            Redirect::to(&state.path(page)).into_response()
        }
    }
}

pub fn session_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// `Set-Cookie` for a session; `max_age` 0 clears it.
pub fn session_cookie(
    settings: &CookieSettings,
    base_path: &str,
    token: &str,
    max_age: i64,
) -> Option<HeaderValue> {
    cookie(settings, &settings.name, base_path, token, max_age)
}

/// How long a browser keeps its device cookie.
pub const DEVICE_COOKIE_SECONDS: i64 = 365 * 24 * 3600;

/// The device cookie's name: the session cookie's, with `-device`.
pub fn device_cookie_name(settings: &CookieSettings) -> String {
    format!("{}-device", settings.name)
}

/// `Set-Cookie` for one of Usher's cookies, with the session cookie's
/// flags: HttpOnly, Secure and SameSite as set.
pub fn cookie(
    settings: &CookieSettings,
    name: &str,
    base_path: &str,
    value: &str,
    max_age: impl Into<Option<i64>>,
) -> Option<HeaderValue> {
    let same_site = match settings.same_site {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::None => cookie::SameSite::None,
    };
    let path = if base_path.is_empty() { "/" } else { base_path };
    let mut cookie = cookie::Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .secure(settings.secure)
        .same_site(same_site)
        .build();
    // None: a cookie for as long as the browser runs.
    if let Some(max_age) = max_age.into() {
        cookie.set_max_age(cookie::time::Duration::seconds(max_age.max(0)));
    }
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// The request's identity, as the session layer left it.
pub struct Who(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .map(Who)
            .ok_or_else(|| crate::error::internal("session layer missing on this route"))
    }
}

/// A signed-in user (or, with user management off or skipped, the owner).
pub struct SignedIn(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Who(identity) = Who::from_request_parts(parts, state).await?;
        identity
            .actor
            .map(SignedIn)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The route's one id (`/workflows/{id}`), parsed into its type here, at
/// the edge, so that services take typed ids. Text that is no id names
/// nothing there is: 404 with the type's "There is no such …", as for an
/// unknown id (JSON under `/rest`; on pages the error page shows it).
pub struct Id<T>(pub T);

impl<S: Send + Sync, T: FromStr<Err = usher_domain::Error>> FromRequestParts<S> for Id<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match path_texts(parts, state).await?.as_slice() {
            [id] => Ok(Id(parse_id(id)?)),
            _ => Err(crate::error::internal("Id used on a route without one id")),
        }
    }
}

/// A route's two ids in order (`/projects/{id}/members/{user_id}`), each
/// parsed as [`Id`] parses one.
pub struct Ids<A, B>(pub A, pub B);

impl<S, A, B> FromRequestParts<S> for Ids<A, B>
where
    S: Send + Sync,
    A: FromStr<Err = usher_domain::Error>,
    B: FromStr<Err = usher_domain::Error>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match path_texts(parts, state).await?.as_slice() {
            [a, b] => Ok(Ids(parse_id(a)?, parse_id(b)?)),
            _ => Err(crate::error::internal(
                "Ids used on a route without two ids",
            )),
        }
    }
}

/// The path's parameters as text, in order. A parameter that is not
/// UTF-8 once decoded cannot be an id: not found.
async fn path_texts<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Vec<String>, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::not_found())?;
    Ok(params.iter().map(|(_, value)| value.to_owned()).collect())
}

fn parse_id<T: FromStr<Err = usher_domain::Error>>(text: &str) -> Result<T, ApiError> {
    text.parse().map_err(ApiError::from)
}

/// An id a form or JSON body names where it may also name none (a
/// project to create in: none is one's own): empty is None, other text is
/// parsed as [`Id`] parses a path's.
pub fn optional_id<T: FromStr<Err = usher_domain::Error>>(
    text: Option<&str>,
) -> usher_domain::Result<Option<T>> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::parse)
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_read_only_as_far_as_the_trusted_hops() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 10.0.0.1, 10.0.0.2"),
        );
        assert_eq!(forwarded_ip(&headers, 0), None);
        assert_eq!(forwarded_ip(&headers, 1).as_deref(), Some("10.0.0.2"));
        assert_eq!(forwarded_ip(&headers, 2).as_deref(), Some("10.0.0.1"));
        assert_eq!(forwarded_ip(&headers, 5), None);
    }
}
