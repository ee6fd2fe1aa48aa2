//! Post/Redirect/Get: a form that did what it was asked answers with a
//! redirect to the page to see next, and what that page should say (the
//! notice, and anything shown once, such as a new API key) travels in a
//! short-lived cookie, sealed with the instance key so that nobody else can
//! write it and nobody can read it off the disk. Reloading the page then
//! shows the page, not the action again; the notice shows once.
//!
//! The [`context`] layer runs around every page: it opens the cookie, clears
//! it in the answer, and keeps what it said, with the path asked for, for
//! the layout ([`Layout::new`](super::Layout::new)) and for the handler
//! ([`once`]).

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{AppState, extract};

/// How long a flash lives: long enough for the redirect to be followed.
const LIFETIME_SECONDS: i64 = 60;
/// Past this the browser may drop the cookie: the page is shown directly.
const MAX_COOKIE: usize = 3800;

/// What a page shows once, after the form that led to it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Flash {
    /// One sentence that names what was done ("Ann Lee is deleted").
    pub notice: Option<String>,
    /// Something the page shows this once (a new key, temporary
    /// passwords), as that page's own type.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub once: serde_json::Value,
}

/// What the layer found for this request.
#[derive(Clone, Debug, Default)]
struct Context {
    /// The path asked for, inside Usher (without N8N_PATH).
    here: String,
    flash: Flash,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// The path of the page being served, inside Usher (for the navigation).
pub fn here() -> String {
    CONTEXT.try_with(|c| c.here.clone()).unwrap_or_default()
}

/// The notice left by the form that led here.
pub fn notice() -> Option<String> {
    CONTEXT.try_with(|c| c.flash.notice.clone()).ok().flatten()
}

/// What the form that led here left to show once, as the type the page
/// expects (None when there is nothing, or it was left for another page).
pub fn once<T: DeserializeOwned>() -> Option<T> {
    CONTEXT
        .try_with(|c| c.flash.once.clone())
        .ok()
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value(v).ok())
}

fn cookie_name(state: &AppState) -> String {
    format!("{}-flash", state.settings().cookie.name)
}

/// Runs around every page: opens the flash cookie, clears it in the answer,
/// and keeps what it said and the path for the layout and the handler.
pub async fn context(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let base = &state.settings().base_path;
    let path = request.uri().path();
    let here = path.strip_prefix(base.as_str()).unwrap_or(path).to_owned();
    let name = cookie_name(&state);
    let sealed = extract::session_token(request.headers(), &name).filter(|v| !v.is_empty());
    let flash = sealed
        .as_deref()
        .and_then(|sealed| state.usher().open_for_browser(sealed).ok())
        .and_then(|text| serde_json::from_str::<Flash>(&text).ok())
        .unwrap_or_default();
    let mut response = CONTEXT
        .scope(Context { here, flash }, next.run(request))
        .await;
    // Shown once: cleared, unless this answer leaves a new one.
    let leaves_one = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&format!("{name}="))));
    if sealed.is_some()
        && !leaves_one
        && let Some(clear) = extract::cookie(&state.settings().cookie, &name, base, "", 0)
    {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// The answer to a form that did what it was asked: see `to` (a path inside
/// Usher) next, which says `notice` and shows `once` this once.
pub fn done(
    state: &AppState,
    to: &str,
    notice: impl Into<String>,
    once: impl Serialize,
) -> Response {
    let flash = Flash {
        notice: Some(notice.into()),
        once: serde_json::to_value(once).unwrap_or_default(),
    };
    let mut response = Redirect::to(&state.path(to)).into_response();
    let sealed = serde_json::to_string(&flash)
        .ok()
        .and_then(|text| state.usher().seal_for_browser(&text).ok());
    let settings = state.settings();
    let cookie = sealed.filter(|s| s.len() < MAX_COOKIE).and_then(|sealed| {
        extract::cookie(
            &settings.cookie,
            &cookie_name(state),
            &settings.base_path,
            &sealed,
            LIFETIME_SECONDS,
        )
    });
    // Too much to carry (a very long list of temporary passwords): the
    // page is still the right one; what it would have shown once is lost,
    // which the caller avoids by keeping `once` small.
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
