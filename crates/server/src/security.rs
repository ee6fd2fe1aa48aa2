//! Rules every response and every state-changing request passes through,
//! whatever route it reaches (docs/security.md says what each protects).
//!
//! - [`headers`]: what every answer tells the browser: a content security
//!   policy that allows only Usher's own script and style and no framing,
//!   no MIME sniffing, no `Referer` (tokens sit in `/signup?token=` and
//!   `/change-password?token=`), and no caching of anything but the static
//!   assets (pages show secrets: new API keys, temporary passwords, recovery
//!   codes, two-factor secrets);
//! - [`same_origin`]: a state-changing request (anything but GET, HEAD and
//!   OPTIONS) to the pages or `/rest` that a browser says comes from another
//!   origin is refused with 403, before any handler runs;
//! - [`known_host`]: a request addressed to a host name Usher does not go by
//!   is refused (421) before anything else, so a page on another site whose
//!   name was pointed at Usher's address (DNS rebinding) cannot use it, even
//!   while set-up is skipped or user management is off;
//! - [`form_tokens`]: every state-changing request to a page must carry the
//!   form token of its session (or, before sign-in, of a cookie of its own),
//!   which every page form holds in a hidden `_csrf` field; the layout gets
//!   the token for the request from [`form_token`].

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use usher_domain::token;

use crate::{AppState, error::ApiError, extract, pages};

/// Only Usher's own files; inline SVG (the QR code) is markup, not script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub const CROSS_ORIGIN: &str = "This request came from another website, so Usher refused it to \
     protect your account. Open Usher's own page and try again.";

pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ] {
        // Static assets set their own caching.
        headers.entry(name).or_insert(value);
    }
    response
}

/// Refuses a state-changing request that a browser marks as coming from
/// another origin than Usher's (the base URL's, or the one the request was
/// addressed to). Requests without `Origin` or `Sec-Fetch-Site` (scripts,
/// old browsers) pass: the form token and `SameSite` cover those.
pub async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let inner = path
        .strip_prefix(state.settings().base_path.as_str())
        .unwrap_or(path);
    let is_api = state.is_api_path(path);
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) && !changes_state_on_get(inner);
    if safe {
        return next.run(request).await;
    }
    if cross_origin(request.headers(), &state.settings().base_url) {
        return if is_api {
            ApiError::new(StatusCode::FORBIDDEN, CROSS_ORIGIN).into_response()
        } else {
            refuse(&state, StatusCode::FORBIDDEN, CROSS_ORIGIN)
        };
    }
    // `/rest` takes JSON or nothing: a form another site posts (which an old
    // browser may send without Origin) is neither.
    if is_api && !json_or_nothing(request.headers()) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the request body as JSON, with the header Content-Type: application/json.",
        )
        .into_response();
    }
    next.run(request).await
}

/// n8n's contract has two GETs under `/rest` that change something (the
/// first asks for a two-factor secret, the second makes a reset link):
/// they get the cross-origin check of a POST.
fn changes_state_on_get(inner: &str) -> bool {
    inner == "/rest/mfa/qr"
        || (inner.starts_with("/rest/users/") && inner.ends_with("/password-reset-link"))
}

/// Whether a request's body is JSON, or there is no body type at all.
fn json_or_nothing(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Paths any host name may reach: health checks for orchestrators, and the
/// forward-authentication endpoints, which proxies call with the protected
/// tool's host name.
const ANY_HOST: &[&str] = &["/healthz", "/api/authz/", "/.usher/"];

/// Refuses a request addressed to a host name that is not Usher's: the base
/// URL's, one in N8N_ALLOWED_HOSTS, an IP address, `localhost`, or a name
/// without a dot (a container or machine name on a private network, which
/// no page on the internet can be given). A DNS rebinding attack needs a
/// public name of the attacker's, which is none of these.
pub async fn known_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let inner = path
        .strip_prefix(state.settings().base_path.as_str())
        .unwrap_or(path);
    if ANY_HOST.iter().any(|p| inner.starts_with(p)) {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_name)
        .unwrap_or_default();
    let settings = state.settings();
    if host.is_empty() || host_allowed(&host, &settings.base_url, &settings.allowed_hosts) {
        return next.run(request).await;
    }
    let error = ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        format!(
            "This Usher answers for {}, not for {host}. If {host} is Usher's own name, \
             set N8N_EDITOR_BASE_URL (or N8N_HOST) to it, or add it to N8N_ALLOWED_HOSTS.",
            origin_of(&settings.base_url).unwrap_or_default()
        ),
    );
    if state.is_api_path(inner) {
        error.into_response()
    } else {
        pages::error_page_without_visitor(&state, error)
    }
}

/// The host name of a `Host` header, lower-cased, without port, brackets or
/// a trailing dot.
fn host_name(header: &str) -> String {
    let header = header.trim();
    let name = if let Some(rest) = header.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        header.rsplit_once(':').map_or(header, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                header
            }
        })
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn host_allowed(host: &str, base_url: &str, allowed: &[String]) -> bool {
    let base = url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    host == base.trim_start_matches('[').trim_end_matches(']')
        || host.parse::<std::net::IpAddr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost")
        || !host.contains('.')
        || allowed.iter().any(|a| a == "*" || a == host)
}

pub const FORM_EXPIRED: &str = "This form has expired, or it came from another website. \
     Go back, reload the page and send it again.";

/// The name of the form field that carries the token.
pub const FORM_FIELD: &str = "_csrf";

tokio::task_local! {
    static FORM_TOKEN: String;
}

/// The form token of the request being served, for the layout to put in
/// every form (empty outside [`form_tokens`]).
pub fn form_token() -> String {
    FORM_TOKEN.try_with(Clone::clone).unwrap_or_default()
}

/// The name of the cookie that binds form tokens before sign-in.
fn form_cookie_name(state: &AppState) -> String {
    format!("{}-form", state.settings().cookie.name)
}

/// Checks the form token of every state-changing request to a page, and
/// makes the token the pages of this request show. `/rest` and `/api` take
/// JSON (which another site cannot send without the browser asking first)
/// and are not checked here.
pub async fn form_tokens(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.is_api_path(request.uri().path()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let session =
        extract::session_token(headers, &state.settings().cookie.name).filter(|t| !t.is_empty());
    let pre_sign_in =
        extract::session_token(headers, &form_cookie_name(&state)).filter(|t| !t.is_empty());
    // What the token is bound to: the session when there is one (a token
    // from before sign-in no longer passes), else the form cookie, made now
    // if the browser has none.
    let (binding, new_cookie) = match (session, pre_sign_in) {
        (Some(session), _) => (format!("session:{}", token::hash(&session)), None),
        (None, Some(cookie)) => (format!("form:{cookie}"), None),
        (None, None) => {
            let cookie = token::generate().secret.expose().to_owned();
            (format!("form:{cookie}"), Some(cookie))
        }
    };
    let usher = state.usher();
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let request = if safe {
        request
    } else {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, 1024 * 1024).await else {
            return refuse(
                &state,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is larger than 1 MiB.",
            );
        };
        let presented = form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == FORM_FIELD)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        if new_cookie.is_some() || !usher.form_token_matches(&binding, &presented) {
            return refuse(&state, StatusCode::FORBIDDEN, FORM_EXPIRED);
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    let token = match usher.form_token(&binding) {
        Ok(token) => token,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let mut response = FORM_TOKEN.scope(token, next.run(request)).await;
    if let Some(cookie) = new_cookie {
        let settings = state.settings();
        // Until the browser closes: it only has to outlive the page.
        if let Some(value) = extract::cookie(
            &settings.cookie,
            &form_cookie_name(&state),
            &settings.base_path,
            &cookie,
            None,
        ) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn refuse(state: &AppState, status: StatusCode, message: &str) -> Response {
    pages::error_page_without_visitor(state, ApiError::new(status, message))
}

/// Whether the browser says this request comes from another origin.
///
/// `Sec-Fetch-Site` first: the browser sets it and no page can change it,
/// and it stays right under `Referrer-Policy: no-referrer`, which makes
/// browsers send `Origin: null` even for a form on Usher's own page. Then
/// `Origin`, against the base URL's origin and the host the request was sent
/// to. An opaque (`null`) or missing origin decides nothing here: the form
/// token does.
fn cross_origin(headers: &HeaderMap, base_url: &str) -> bool {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{0}").trim().to_ascii_lowercase())
    };
    if let Some(site) = text("sec-fetch-site") {
        // "none": typed, bookmarked or dragged by the user.
        return !matches!(site.as_str(), "same-origin" | "none");
    }
    let Some(origin) = text("origin").filter(|o| o != "null") else {
        return false;
    };
    let host = text("host").unwrap_or_default();
    let from_base = origin_of(base_url).is_some_and(|base| base == origin);
    let to_this_host = origin.split_once("://").is_some_and(|(scheme, authority)| {
        matches!(scheme, "http" | "https") && !host.is_empty() && authority == host
    });
    !(from_base || to_this_host)
}

/// `scheme://host[:port]` of a URL, lower-cased, without the default port.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    /// Every form that posts carries the token, or the check refuses it.
    #[test]
    fn every_post_form_of_every_template_carries_the_form_token() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut folders = vec![root];
        let mut forms = 0;
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{e}")) {
                let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for (at, _) in text.match_indices("<form") {
                    let tag_end = text[at..].find('>').map_or(text.len(), |end| at + end + 1);
                    if !text[at..tag_end].contains(r#"method="post""#) {
                        continue;
                    }
                    forms += 1;
                    assert!(
                        text[tag_end..].trim_start().starts_with(&format!(
                            r#"<input type="hidden" name="{FORM_FIELD}" value="{{{{ layout.form_token }}}}">"#
                        )),
                        "{}: a form without the token: {}",
                        path.display(),
                        &text[at..tag_end]
                    );
                }
            }
        }
        assert!(forms > 20, "only {forms} forms found");
    }

    #[test]
    fn only_usher_s_names_and_private_ones_are_answered() {
        let base = "https://usher.example.com";
        let allowed = vec!["sso.example.org".to_owned()];
        for (header, ok) in [
            ("usher.example.com", true),
            ("USHER.example.com.:443", true),
            ("127.0.0.1:5678", true),
            ("[::1]:5678", true),
            ("localhost:5678", true),
            ("app.localhost", true),
            ("usher:5678", true),
            ("sso.example.org", true),
            ("rebind.attacker.example:5678", false),
            ("usher.example.com.evil.example", false),
        ] {
            assert_eq!(
                host_allowed(&host_name(header), base, &allowed),
                ok,
                "{header}"
            );
        }
        assert!(host_allowed("anything.example", base, &["*".to_owned()]));
    }

    #[test]
    fn only_usher_s_own_origin_may_change_state() {
        let base = "https://usher.example.com/team";
        let same = [
            vec![],
            vec![("origin", "https://usher.example.com")],
            vec![
                ("origin", "http://10.0.0.5:5678"),
                ("host", "10.0.0.5:5678"),
            ],
            vec![("sec-fetch-site", "same-origin")],
            vec![("sec-fetch-site", "none")],
            vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
            vec![("origin", "null")],
        ];
        for headers in same {
            assert!(!cross_origin(&with(&headers), base), "{headers:?}");
        }
        let cross = [
            vec![("origin", "https://evil.example")],
            vec![("origin", "https://usher.example.com.evil.example")],
            vec![("origin", "http://usher.example.com")],
            vec![
                ("origin", "https://evil.example"),
                ("host", "usher.example.com"),
            ],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![
                ("origin", "https://usher.example.com"),
                ("sec-fetch-site", "cross-site"),
            ],
        ];
        for headers in cross {
            assert!(cross_origin(&with(&headers), base), "{headers:?}");
        }
    }
}
