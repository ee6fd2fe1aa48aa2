//! Forward authentication over HTTP: what reverse proxies ask before each
//! request to a tool they protect, and the steps that give a browser a
//! cookie on an app's host. The rules are in
//! `usher_domain::service::forward_auth`; this module reads the proxies'
//! headers and writes their answers.
//!
//! - `GET /api/authz/forward-auth`: Caddy's `forward_auth` and Traefik's
//!   `ForwardAuth` (`X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`);
//! - `GET /api/authz/auth-request`: nginx's `auth_request`
//!   (`X-Original-URL`, `X-Original-Method`); it answers 401 rather than a
//!   redirect (nginx passes on only 2xx, 401 and 403), with the sign-in
//!   address in `Location` for `error_page 401 =302 $that`;
//! - `GET /.usher/start` and `GET /.usher/callback`: on an app's host (the
//!   proxy routes `/.usher/` there to Usher), for hosts outside the cookie
//!   domain: a state cookie when the browser sets out, and the host cookie
//!   for a single-use code when it comes back;
//! - `GET /forward-auth/begin`: on Usher's host, between `/.usher/start`
//!   and sign-in: keeps the state's hash in a cookie on Usher's host, so
//!   that only this browser's `/forward-auth/continue` makes a code for it;
//! - `GET /forward-auth/continue`: a page of Usher's (signed in) that sends
//!   the browser back to the app, with such a code when needed.
//!
//! An allowed answer also carries `Cookie`: the browser's cookies without
//! Usher's own (or a placeholder pair when none is left, never an empty
//! value), which the documented proxy configurations pass to the tool
//! instead of the browser's, so no tool ever holds an Usher session.
//!
//! The proxies' routes sit outside the session, same-origin and form-token
//! layers: they are asked about requests to other hosts, and change
//! nothing but cookies on the host they are asked for.

use axum::{
    Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use usher_domain::{
    forward_auth::{Target, UNREADABLE},
    service::forward_auth::{
        FORWARD_BEGIN, FORWARD_CONTINUE, ForwardAnswer, ForwardQuestion, Refusal, Remote,
        StateCookies,
    },
};

use crate::{
    AppState,
    error::ApiError,
    extract::session_token,
    pages::{PageError, SignedInPage, error_page_elsewhere},
};

pub const FORWARD_AUTH: &str = "/api/authz/forward-auth";
pub const AUTH_REQUEST: &str = "/api/authz/auth-request";
/// Usher's page that leads back to the app after sign-in.
pub const CONTINUE: &str = FORWARD_CONTINUE;

/// The headers an allowed answer carries, always all six (empty when
/// there is nothing to say), so that a proxy that copies them overwrites
/// whatever a client sent under those names.
pub const REMOTE_HEADERS: [&str; 6] = [
    "remote-user",
    "remote-email",
    "remote-name",
    "remote-groups",
    "remote-role",
    "remote-id",
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route(FORWARD_AUTH, get(forward_auth))
        .route(AUTH_REQUEST, get(auth_request))
        .route("/.usher/start", get(start))
        .route("/.usher/callback", get(callback))
}

/// The page on Usher's host (session layer, signed in).
pub fn browser_router() -> Router<AppState> {
    Router::new()
        .route(FORWARD_BEGIN, get(begin))
        .route(CONTINUE, get(view_continue_get))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The host cookie's name: the session cookie's, with `-host`; on https
/// with the `__Host-` prefix, so the browser takes it only from that very
/// host over https (Secure, no Domain, Path=/), and no plain-http answer or
/// sibling host can plant one.
fn host_cookie_name(state: &AppState, https: bool) -> String {
    let prefix = if https { "__Host-" } else { "" };
    format!("{prefix}{}-host", state.settings().cookie.name)
}

/// The state cookie's name: the session cookie's, with `-state`; on https
/// with the `__Host-` prefix.
fn state_cookie_name(state: &AppState, https: bool) -> String {
    let prefix = if https { "__Host-" } else { "" };
    format!("{prefix}{}-state", state.settings().cookie.name)
}

/// The state cookie's path: `/` as `__Host-` requires on https; on http
/// only Usher's steps see it.
fn state_cookie_path(https: bool) -> &'static str {
    if https { "/" } else { "/.usher/" }
}

/// The cookie on Usher's host that binds a state to this browser, named
/// after the state's hash so that several sign-ins at once keep theirs.
fn begin_cookie_name(state: &AppState, state_hash: &str) -> String {
    let short = state_hash.get(..16).unwrap_or(state_hash);
    format!("{}-fa-{short}", state.settings().cookie.name)
}

/// Whether `name` is one of Usher's cookies (the session cookie's name,
/// alone or with a suffix, with or without a `__Host-`/`__Secure-` prefix).
fn is_usher_cookie(name: &str, usher: &str) -> bool {
    let name = name
        .strip_prefix("__Host-")
        .or_else(|| name.strip_prefix("__Secure-"))
        .unwrap_or(name);
    name.strip_prefix(usher)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// What the `Cookie` answer holds when no cookie is left for the tool: a
/// harmless pair rather than nothing, because Caddy 2.9.0 to 2.11.1 skip
/// an empty header in `copy_headers` and pass on the browser's own
/// `Cookie`, Usher's session with it (GHSA-7r4p-vjf4-gxv4, fixed in
/// 2.11.2).
pub const NO_TOOL_COOKIES: &str = "usher-none=1";

/// The pairs of the browser's `Cookie` lines, as bytes: split on `;`,
/// trimmed, empty ones left out. Bytes, not text: a pair may carry any
/// byte a header can (a UTF-8 name in a tool's cookie), and that must not
/// cost the other pairs.
fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .flat_map(|line| {
            line.as_bytes()
                .split(|b| *b == b';')
                .map(<[u8]>::trim_ascii)
                .filter(|pair| !pair.is_empty())
        })
}

/// A pair's name, trimmed (the whole pair when it has no `=`).
fn pair_name(pair: &[u8]) -> &[u8] {
    pair.split(|b| *b == b'=')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// The value of the first cookie named `name`, read byte-wise as
/// [`tool_cookies`] reads the pairs, so that a tool's cookie with bytes
/// beyond ASCII on the same line does not hide Usher's.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie_pairs(headers)
        .find(|pair| pair_name(pair) == name.as_bytes())
        .and_then(|pair| pair.splitn(2, |b| *b == b'=').nth(1))
        .and_then(|value| std::str::from_utf8(value.trim_ascii()).ok())
        .map(str::to_owned)
}

/// Whether a byte may stand in a header value (no control character but
/// tab), so that the pairs kept always make one.
fn header_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// The browser's cookies without Usher's, as one `Cookie` value, for the
/// proxy to pass to the tool in place of the browser's; never empty
/// ([`NO_TOOL_COOKIES`] when nothing is left).
fn tool_cookies(headers: &HeaderMap, usher: &str) -> HeaderValue {
    let mut kept: Vec<u8> = Vec::new();
    for pair in cookie_pairs(headers) {
        let name = pair_name(pair);
        // A name that is not text is no name of Usher's.
        let usher_cookie = std::str::from_utf8(name).is_ok_and(|n| is_usher_cookie(n, usher));
        if usher_cookie || !pair.iter().copied().all(header_byte) {
            continue;
        }
        if !kept.is_empty() {
            kept.extend_from_slice(b"; ");
        }
        kept.extend_from_slice(pair);
    }
    if kept.is_empty() {
        return HeaderValue::from_static(NO_TOOL_COOKIES);
    }
    HeaderValue::from_bytes(&kept).unwrap_or(HeaderValue::from_static(NO_TOOL_COOKIES))
}

/// Whether the request behind the question comes from a browser that can
/// follow a redirect to a sign-in page: it asks for HTML, and the method
/// can be repeated after sign-in.
fn browser(headers: &HeaderMap, method: Option<&str>) -> bool {
    let html = header(headers, "accept").is_some_and(|a| a.contains("text/html"));
    let repeatable =
        method.is_none_or(|m| m.eq_ignore_ascii_case("GET") || m.eq_ignore_ascii_case("HEAD"));
    html && repeatable
}

/// Which proxy asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proxy {
    /// Caddy, Traefik: a redirect goes to the browser as it is.
    Forward,
    /// nginx: only 2xx, 401 and 403 mean something to `auth_request`.
    AuthRequest,
}

/// A header that carries (part of) the address asked about, as text: None
/// when it is absent or empty, an error when it is there but not UTF-8.
/// Proxies pass the request target as the client sent it, bytes beyond
/// ASCII too (a raw `K` in a path), and such a header must never read as
/// absent: the address would be judged as `/` while the proxy routes the
/// path.
fn address_header<'a>(headers: &'a HeaderMap, name: &str) -> usher_domain::Result<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => std::str::from_utf8(value.as_bytes())
            .map(|v| Some(v.trim()).filter(|v| !v.is_empty()))
            .map_err(|_| usher_domain::Error::invalid(UNREADABLE)),
    }
}

async fn forward_auth(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let read = |name| address_header(&headers, name);
    let target = match (
        read("x-forwarded-host"),
        read("x-forwarded-uri"),
        read("x-forwarded-proto"),
    ) {
        (Ok(None), _, _) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "Usher needs the headers X-Forwarded-Proto, X-Forwarded-Host and \
                 X-Forwarded-Uri from the proxy to tell which address this is about. See \
                 docs/forward-auth.md.",
            )
            .into_response();
        }
        (Ok(Some(host)), Ok(uri), Ok(proto)) => {
            Target::new(proto.unwrap_or("http"), host, uri.unwrap_or("/"))
        }
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => Err(error),
    };
    let method = header(&headers, "x-forwarded-method");
    answer(&state, &headers, target, method, Proxy::Forward).await
}

async fn auth_request(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let url = match address_header(&headers, "x-original-url") {
        Ok(Some(url)) => Target::from_url(url),
        Ok(None) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "Usher needs the header X-Original-URL from nginx to tell which address this is \
                 about. See docs/forward-auth.md.",
            )
            .into_response();
        }
        Err(error) => Err(error),
    };
    let method = header(&headers, "x-original-method");
    answer(&state, &headers, url, method, Proxy::AuthRequest).await
}

/// A question Usher does not decide on (an address it cannot read, or a
/// path servers read in different ways): 400 for Caddy and Traefik, which
/// pass it to the client; 403 for nginx, whose `auth_request` turns any
/// answer but 2xx, 401 and 403 into a 500 (its `error_page 403` then shows
/// Usher's page with the reason).
fn not_decided(
    state: &AppState,
    headers: &HeaderMap,
    error: usher_domain::Error,
    proxy: Proxy,
) -> Response {
    let mut error = ApiError::from(error);
    if proxy == Proxy::AuthRequest && error.status == StatusCode::BAD_REQUEST {
        error.status = StatusCode::FORBIDDEN;
    }
    if browser(headers, None) && error.status.is_client_error() {
        let heading = "Usher does not decide on this address".to_owned();
        return elsewhere(state, error_page_elsewhere(state, error, heading, None));
    }
    error.into_response()
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    target: usher_domain::Result<Target>,
    method: Option<&str>,
    proxy: Proxy,
) -> Response {
    let target = match target {
        Ok(target) => target,
        Err(error) => return not_decided(state, headers, error, proxy),
    };
    let name = &state.settings().cookie.name;
    let session = cookie_value(headers, name);
    let host = cookie_value(headers, &host_cookie_name(state, target.https));
    let question = ForwardQuestion {
        session_cookie: session.as_deref(),
        host_cookie: host.as_deref(),
    };
    let answer = match state.usher().forward_auth(&target, &question).await {
        Ok(answer) => answer,
        Err(error) => return not_decided(state, headers, error, proxy),
    };
    match answer {
        ForwardAnswer::Allowed(remote) => allowed(remote.as_ref(), tool_cookies(headers, name)),
        ForwardAnswer::SignIn { sign_in } => {
            if proxy == Proxy::Forward && browser(headers, method) {
                return found(&sign_in);
            }
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!("Sign in to Usher first: {sign_in}"),
            )
            .into_response();
            if let Ok(location) = HeaderValue::from_str(&sign_in) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        ForwardAnswer::Refused(refusal) => {
            if browser(headers, None) {
                refused_page(state, refusal)
            } else {
                ApiError::new(StatusCode::FORBIDDEN, refusal.message).into_response()
            }
        }
    }
}

fn allowed(remote: Option<&Remote>, cookies: HeaderValue) -> Response {
    let mut response = StatusCode::OK.into_response();
    // On a public path, nobody: the six headers empty (a proxy that copies
    // a header Usher leaves out may pass on the client's, or in Caddy 2.6
    // the unfilled placeholder).
    let nobody = String::new();
    let values = match remote {
        Some(remote) => [
            &remote.user,
            &remote.email,
            &remote.name,
            &remote.groups,
            &remote.role,
            &remote.id,
        ],
        None => [&nobody; 6],
    };
    for (name, value) in REMOTE_HEADERS.iter().zip(values) {
        // Names may hold any Unicode: sent as their UTF-8 bytes, as
        // Authelia sends them. A value no header can carry is sent empty.
        let value =
            HeaderValue::from_bytes(value.as_bytes()).unwrap_or(HeaderValue::from_static(""));
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    // Always sent, and never empty (see NO_TOOL_COOKIES).
    response.headers_mut().insert(header::COOKIE, cookies);
    response
}

/// The 403 page, shown on the app's host: it says which app and who to ask.
fn refused_page(state: &AppState, refusal: Refusal) -> Response {
    let heading = match &refusal.app {
        Some(app) => format!("Not allowed into {app}"),
        None => "Not allowed".to_owned(),
    };
    let base = state.settings().base_url.clone();
    let next = refusal
        .link
        .map(|(path, label)| (format!("{base}{path}"), label));
    elsewhere(
        state,
        error_page_elsewhere(
            state,
            ApiError::new(StatusCode::FORBIDDEN, refusal.message),
            heading,
            next,
        ),
    )
}

/// A page shown on an app's host loads its style and script from Usher.
fn elsewhere(state: &AppState, mut response: Response) -> Response {
    let origin = origin_of(&state.settings().base_url);
    let policy = format!(
        "default-src 'none'; script-src {origin}; style-src {origin}; img-src {origin} data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

fn origin_of(base_url: &str) -> String {
    match base_url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        None => base_url.to_owned(),
    }
}

/// An error on an app's host, as a page.
fn error_elsewhere(state: &AppState, error: usher_domain::Error) -> Response {
    let error = ApiError::from(error);
    let heading = if error.status.is_server_error() {
        "Something went wrong"
    } else {
        "This did not work"
    }
    .to_owned();
    elsewhere(state, error_page_elsewhere(state, error, heading, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StartQuery {
    rd: String,
}

/// The request's `Host`, as the proxy passed it on.
fn request_host(headers: &HeaderMap) -> &str {
    header(headers, "host").unwrap_or_default()
}

/// A cookie only for the app's host (no Domain): HttpOnly, SameSite=Lax
/// (it must come along on the top-level navigation back from Usher), and
/// Secure when the app is on https.
fn host_only_cookie(
    name: &str,
    value: &str,
    path: &'static str,
    https: bool,
    max_age: Option<i64>,
) -> Option<HeaderValue> {
    let mut cookie = cookie::Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .secure(https)
        .same_site(cookie::SameSite::Lax)
        .build();
    if let Some(seconds) = max_age {
        cookie.set_max_age(cookie::time::Duration::seconds(seconds));
    }
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// `/.usher/start?rd=<address>` on an app's host: keeps a state in a cookie
/// on this host and goes to Usher's sign-in.
async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StartQuery>,
) -> Response {
    let host = request_host(&headers).to_owned();
    match state.usher().forward_start(&host, &query.rd).await {
        Ok((secret, https, begin)) => {
            let mut response = found(&begin);
            if let Some(cookie) = host_only_cookie(
                &state_cookie_name(&state, https),
                secret.expose(),
                state_cookie_path(https),
                https,
                Some(600),
            ) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => error_elsewhere(&state, error),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CallbackQuery {
    code: String,
}

/// `/.usher/callback?code=<code>` on an app's host: the host cookie for a
/// code, then on to the address the code was made for.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let host = request_host(&headers).to_owned();
    let secure = cookie_value(&headers, &state_cookie_name(&state, true));
    let plain = cookie_value(&headers, &state_cookie_name(&state, false));
    let cookies = StateCookies {
        secure: secure.as_deref(),
        plain: plain.as_deref(),
    };
    let result = state
        .usher()
        .forward_callback(&host, &query.code, cookies)
        .await;
    let mut response = match result {
        Ok((secret, https, url)) => {
            let mut response = found(&url);
            if let Some(cookie) = host_only_cookie(
                &host_cookie_name(&state, https),
                secret.expose(),
                "/",
                https,
                None,
            ) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => error_elsewhere(&state, error),
    };
    // The state is spent either way (a `__Host-` cookie is cleared with
    // its own flags).
    for (present, https) in [(secure.is_some(), true), (plain.is_some(), false)] {
        if let Some(clear) = present
            .then(|| {
                host_only_cookie(
                    &state_cookie_name(&state, https),
                    "",
                    state_cookie_path(https),
                    https,
                    Some(0),
                )
            })
            .flatten()
        {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
    }
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BeginQuery {
    rd: String,
    state: String,
}

/// `/forward-auth/begin?rd=<address>&state=<hash>` on Usher's host: keeps
/// the state's hash in a cookie here (ten minutes, only sent to
/// `/forward-auth/`), then on to sign-in.
async fn begin(
    State(state): State<AppState>,
    Query(query): Query<BeginQuery>,
) -> Result<Response, PageError> {
    let sign_in = state.usher().forward_begin(&query.rd, &query.state).await?;
    let mut response = found(&sign_in);
    if let Some(cookie) = begin_cookie(&state, &query.state, &query.state, 600) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The cookie [`begin`] sets: HttpOnly, SameSite=Lax (it must come along
/// on the way back from the sign-in page), Secure as Usher's cookies are.
fn begin_cookie(
    state: &AppState,
    state_hash: &str,
    value: &str,
    max_age: i64,
) -> Option<HeaderValue> {
    let settings = state.settings();
    let path = format!("{}/forward-auth/", settings.base_path);
    let mut cookie = cookie::Cookie::build((begin_cookie_name(state, state_hash), value))
        .path(path)
        .http_only(true)
        .secure(settings.cookie.secure)
        .same_site(cookie::SameSite::Lax)
        .build();
    cookie.set_max_age(cookie::time::Duration::seconds(max_age));
    HeaderValue::from_str(&cookie.to_string()).ok()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContinueQuery {
    rd: String,
    state: Option<String>,
}

/// `/forward-auth/continue?rd=<address>[&state=<hash>]`: signed in to Usher,
/// back to the app (the address is checked against the apps' hosts; the
/// state against this browser's cookie from [`begin`], then spent).
async fn view_continue_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    page: SignedInPage,
    Query(query): Query<ContinueQuery>,
) -> Result<Response, PageError> {
    let bound = query
        .state
        .as_deref()
        .and_then(|hash| session_token(&headers, &begin_cookie_name(&state, hash)));
    let next = state
        .usher()
        .forward_continue(
            &page.actor,
            &query.rd,
            query.state.as_deref(),
            bound.as_deref(),
        )
        .await?;
    let mut response = found(&next);
    if let Some(hash) = bound.as_deref()
        && let Some(clear) = begin_cookie(&state, hash, "", 0)
    {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    Ok(response)
}

/// `302 Found` to `url`, as proxies and browsers expect from a door.
fn found(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => ApiError::new(StatusCode::BAD_REQUEST, UNREADABLE).into_response(),
    }
}
