//! Server-rendered pages, at n8n's paths so that links in emails keep n8n's
//! form. One askama struct per page; forms post back to the page and errors
//! are shown beside their field. Pages call the same domain services as
//! `/rest`.
//!
//! - [`auth`]: `/setup`, `/signin`, `/signout`;
//! - [`home`]: `/`;
//! - [`personal`]: `/settings/personal`;
//! - [`users`]: `/settings/users` (invite, add directly, resend, revoke);
//! - [`user`]: `/settings/users/<id>` (role, project roles, resets, deletion);
//! - [`mfa`]: `/settings/mfa`, two-factor authentication;
//! - [`signup`]: `/signup` (accept an invitation), `/set-password`;
//! - [`recovery`]: `/forgot-password`, `/change-password`;
//! - [`api_keys`]: `/settings/api`, keys for the public API;
//! - [`audit`]: the audit log page, `/settings/audit`;
//! - [`email`]: `/settings/email` (the invitation email's wording).
//! - [`resources`]: `/home/workflows`, `/workflows/<id>`, `/home/credentials`, `/home/tags`, `/projects`, `/projects/<id>`.

mod api_keys;
mod audit;
mod auth;
mod email;
mod form;
mod home;
mod mfa;
mod personal;
mod recovery;
mod resources;
mod signup;
mod user;
mod users;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use usher_domain::service::auth::{Actor, Identity};

use crate::{AppState, error::ApiError};

pub use form::Form;

pub fn router(state: &AppState) -> Router<AppState> {
    let router = Router::new().route("/", get(home::view_home_get));
    if state.settings().user_management_disabled {
        return router;
    }
    router
        .merge(auth::router())
        .merge(personal::router())
        .merge(users::router())
        .merge(user::router())
        .merge(signup::router())
        .merge(mfa::router())
        .merge(recovery::router())
        .merge(audit::router())
        .merge(email::router())
        .merge(resources::router())
        .merge(api_keys::router(state))
}

/// Static files, compiled into the binary.
pub fn assets_router() -> Router<AppState> {
    Router::new()
        .route(
            "/assets/usher.css",
            get(|| async { asset("text/css", include_str!("../../assets/usher.css")) }),
        )
        .route(
            "/assets/usher.js",
            get(|| async { asset("text/javascript", include_str!("../../assets/usher.js")) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// What the layout shows around every page.
pub struct Layout {
    pub base: String,
    pub who: Option<String>,
    pub open_instance: bool,
    pub user_management: bool,
    pub can_sign_out: bool,
    /// No navigation while a temporary password must be replaced: every link
    /// would lead back to that form.
    pub navigation: bool,
    /// The address to show after a form post answered with a page, so that
    /// reloading does not post again (set with `history.replaceState`).
    pub settle_at: Option<String>,
    /// The owner and admins read the audit log.
    pub can_audit: bool,
}

impl Layout {
    pub fn new(state: &AppState, identity: Option<&Identity>) -> Self {
        let instance = identity.map(|i| i.instance);
        let actor = identity.and_then(|i| i.actor.as_ref());
        let open = instance.is_some_and(|i| i.is_open());
        Self {
            base: state.settings().base_path.clone(),
            who: actor.map(|a| {
                let name = a.user.display_name();
                if name.is_empty() {
                    "Owner".to_owned()
                } else {
                    name
                }
            }),
            open_instance: open && !state.settings().user_management_disabled,
            user_management: !state.settings().user_management_disabled,
            can_sign_out: actor.is_some_and(|a| a.session.is_some()),
            navigation: !actor.is_some_and(|a| a.must_change_password()),
            settle_at: None,
            can_audit: actor.is_some_and(|a| a.user.role.manages_users())
                && instance.is_some_and(|i| i.owner_set_up),
        }
    }
}

/// What a page needs before it shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `/setup`: only while the owner is not set up.
    SetupPending,
    /// `/signin`: only when nobody is signed in.
    SignedOut,
    /// Everything else.
    SignedIn,
}

/// Sends the visitor where the instance's state says they should be:
/// to `/setup` until the owner exists (unless set-up was skipped), to
/// `/signin` when a session is needed, home when a page does not apply.
pub fn guard(
    state: &AppState,
    identity: &Identity,
    need: Need,
    here: &str,
) -> Result<Option<Actor>, Response> {
    let instance = identity.instance;
    let home = || Redirect::to(&state.path("/")).into_response();
    if !instance.owner_set_up
        && !instance.setup_skipped
        && !instance.user_management_disabled
        && need != Need::SetupPending
    {
        return Err(Redirect::to(&state.path("/setup")).into_response());
    }
    match need {
        Need::SetupPending if instance.owner_set_up => Err(home()),
        Need::SetupPending => Ok(identity.actor.clone()),
        Need::SignedOut if identity.actor.is_some() => Err(home()),
        Need::SignedOut => Ok(None),
        Need::SignedIn => match &identity.actor {
            Some(actor) => Ok(Some(actor.clone())),
            None => {
                let target = format!(
                    "{}?redirect={}",
                    state.path("/signin"),
                    percent_encode(here, b"/")
                );
                Err(Redirect::to(&target).into_response())
            }
        },
    }
}

/// The password policy in words, shown under every new-password field.
pub fn password_rules(state: &AppState) -> String {
    format!(
        "{} to 64 characters, at least one number and one capital letter.",
        state.settings().password_min_length
    )
}

/// The signed-in actor for a page at `here`, or the answer that sends the
/// visitor elsewhere (set-up, sign-in with a way back to `here`).
pub fn signed_in(state: &AppState, identity: &Identity, here: &str) -> Result<Actor, Response> {
    match guard(state, identity, Need::SignedIn, here)? {
        Some(actor) => Ok(actor),
        None => {
            Err(PageError::new(state, Some(identity), ApiError::unauthorized()).into_response())
        }
    }
}

/// Only paths inside Usher are followed after sign-in (no open redirect).
/// `target` is a path inside Usher without N8N_PATH (as `guard` writes it).
pub fn safe_redirect(state: &AppState, target: &str) -> String {
    let inside = target.starts_with('/') && !target.starts_with("//") && !target.contains('\\');
    state.path(if inside { target } else { "/" })
}

/// Percent-encodes all but RFC 3986's unreserved characters and `keep`
/// (for query values, `data:` URLs and redirect targets).
pub fn percent_encode(text: &str, keep: &[u8]) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub heading: String,
    pub message: String,
    pub request_id: Option<String>,
    /// A way forward, when there is one: (address, label).
    pub next: Option<(String, String)>,
}

/// A page that could not be shown: the same message as the API would give,
/// inside the layout, with the status that fits. Never a stack trace.
pub struct PageError {
    pub status: StatusCode,
    pub page: ErrorPage,
}

impl PageError {
    pub fn new(state: &AppState, identity: Option<&Identity>, error: ApiError) -> Self {
        let heading = match error.status {
            StatusCode::NOT_FOUND => "Page not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Slow down",
            s if s.is_server_error() => "Something went wrong",
            _ => "This did not work",
        };
        let request_id = error
            .status
            .is_server_error()
            .then(crate::request_id::current)
            .flatten();
        Self {
            status: error.status,
            page: ErrorPage {
                layout: Layout::new(state, identity),
                heading: heading.to_owned(),
                message: error.message,
                request_id,
                next: None,
            },
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.status, self.page).into_response()
    }
}

/// Unknown paths: JSON under `/rest` and `/api`, a page elsewhere.
pub async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let inner = path
        .strip_prefix(state.settings().base_path.as_str())
        .unwrap_or(path);
    if inner.starts_with("/rest/") || inner.starts_with("/api/") {
        return ApiError::not_found().into_response();
    }
    let identity = request.extensions().get::<Identity>();
    PageError::new(
        &state,
        identity,
        ApiError::new(StatusCode::NOT_FOUND, "There is no page at this address."),
    )
    .into_response()
}
