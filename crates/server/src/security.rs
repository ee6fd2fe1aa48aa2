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
//!   origin is refused with 403, before any handler runs.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{AppState, error::ApiError, pages};

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
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || !cross_origin(request.headers(), &state.settings().base_url) {
        return next.run(request).await;
    }
    let error = ApiError::new(StatusCode::FORBIDDEN, CROSS_ORIGIN);
    if state.is_api_path(request.uri().path()) {
        error.into_response()
    } else {
        pages::error_page_without_visitor(&state, error)
    }
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
