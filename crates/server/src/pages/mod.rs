//! Server-rendered pages, at n8n's paths so that links in emails keep n8n's
//! form. One askama struct per page; forms post back to the page and errors
//! are shown beside their field. Pages call the same domain services as
//! `/rest`.
//!
//! Reading order: [`page`] (who is on a page, and where the instance's state
//! sends them instead), [`error`] (what a page answers when it is not shown),
//! [`Layout`] and [`form`] (what every page draws), then the pages. A handler
//! is `view_<page>_<verb>`: it extracts the visitor, calls one service and
//! draws the page, returning `Result<Response, PageError>` so that `?` works.
//!
//! - [`auth`]: `/setup`, `/signin`, `/signout`;
//! - [`home`]: the home page, `/`;
//! - [`signup`]: `/signup` (accept an invitation), `/set-password`;
//! - [`recovery`]: `/forgot-password`, `/change-password`;
//! - [`personal`]: personal settings, `/settings/personal`;
//! - [`mfa`]: `/settings/mfa`, two-factor authentication;
//! - [`api_keys`]: `/settings/api`, keys for the public API;
//! - [`users`]: `/settings/users` (invite, add directly, resend, revoke);
//! - [`user`]: `/settings/users/<id>` (role, project roles, resets, deletion);
//! - [`audit`]: `/settings/audit`, the audit log;
//! - [`email`]: `/settings/email`, the invitation email's wording;
//! - [`ldap`]: `/settings/ldap`, signing in with the company directory;
//! - [`sso`]: `/settings/sso`, single sign-on through an OpenID Connect
//!   provider;
//! - [`resources`]: workflows, credentials, tags and projects.

mod api_keys;
mod apps;
mod audit;
mod auth;
pub(crate) mod confirm;
mod email;
mod error;
mod flash;
mod form;
mod home;
mod ldap;
mod mfa;
mod page;
mod personal;
mod recovery;
mod resources;
mod signup;
mod sso;
mod user;
mod users;

use axum::{
    Router,
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use usher_domain::{clock::rfc3339, service::auth::Identity};

use crate::AppState;

pub use error::{
    PageError, error_page_elsewhere, error_page_without_visitor, failure_page, not_found, refused,
};
pub use flash::done;
pub use form::{Form, PasswordRules, Shown};
pub use page::{Page, SignedInPage};

/// A page handler's answer.
pub type Result<T = Response, E = PageError> = std::result::Result<T, E>;

pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new().route("/", get(home::view_home_get)).route(
        "/open-period/dismiss",
        axum::routing::post(home::view_home_dismiss),
    );
    if !state.settings().user_management_disabled {
        router = router
            .merge(auth::router())
            .merge(signup::router())
            .merge(recovery::router())
            .merge(personal::router())
            .merge(mfa::router())
            .merge(api_keys::router(state))
            .merge(users::router())
            .merge(user::router())
            .merge(audit::router())
            .merge(email::router())
            .merge(resources::router())
            .merge(apps::router())
            .merge(ldap::router())
            .merge(sso::router())
            .merge(crate::oidc::browser_router())
            .merge(crate::forward_auth::browser_router());
    }
    router
        .method_not_allowed_fallback(view_action_get)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::show_errors,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            flash::context,
        ))
}

/// A GET of a form's address (Enter in the address bar after a post, a
/// bookmark, a link pasted from the history) shows the page the form is on
/// instead of "405 Method Not Allowed": nothing is done, since the action is
/// only ever a POST. Other methods still get 405.
async fn view_action_get(State(state): State<AppState>, request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let base = &state.settings().base_path;
    let path = request.uri().path();
    let inside = path.strip_prefix(base.as_str()).unwrap_or(path);
    Redirect::to(&state.path(&page_of_action(inside))).into_response()
}

/// The page whose form posts to `action` (a path inside Usher): the path
/// without its last segment, or the list or item page above it where that
/// is not a page of its own.
fn page_of_action(action: &str) -> String {
    let mut segments: Vec<&str> = action.trim_end_matches('/').split('/').collect();
    segments.pop();
    let parent = segments.join("/");
    for list in ["/home/tags", "/home/credentials", "/settings/api"] {
        if parent == list || parent.starts_with(&format!("{list}/")) {
            return list.to_owned();
        }
    }
    // An item's page: `/projects/<id>`, `/workflows/<id>`, `/settings/users/<id>`.
    for (item, depth) in [
        ("/projects/", 3),
        ("/workflows/", 3),
        ("/settings/users/", 4),
    ] {
        if parent.starts_with(item) {
            return segments
                .iter()
                .take(depth)
                .copied()
                .collect::<Vec<_>>()
                .join("/");
        }
    }
    match parent.as_str() {
        "" | "/open-period" => "/".to_owned(),
        _ => parent,
    }
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
        .route(
            "/favicon.svg",
            get(|| async { asset("image/svg+xml", include_str!("../../assets/favicon.svg")) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { asset("image/svg+xml", include_str!("../../assets/favicon.svg")) }),
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
#[derive(Clone)]
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
    /// The token every form of the page carries (`security::form_tokens`).
    pub form_token: String,
    /// The path of this page inside Usher, for the navigation to mark.
    pub here: String,
    /// What the form that led here says it did (`flash`).
    pub notice: Option<String>,
    /// The signed-in person's initials, for the avatar in the navigation.
    pub initials: String,
    /// The owner and admins manage users (invitations, the email's wording).
    pub manages_users: bool,
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
            form_token: crate::security::form_token(),
            here: flash::here(),
            notice: flash::notice(),
            initials: actor.map(|a| initials(&a.user)).unwrap_or_default(),
            manages_users: actor.is_some_and(|a| a.user.role.manages_users()),
        }
    }

    /// Whether this page is `section` or a page under it, for the
    /// navigation's `aria-current`.
    pub fn is(&self, section: &str) -> bool {
        if section == "/" {
            return self.here == "/" || self.here.is_empty();
        }
        self.here == section
            || self
                .here
                .strip_prefix(section)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The layout of the page at `path` (inside Usher), which the address
    /// bar shows after a post answered with that page.
    pub fn at(&self, path: &str) -> Self {
        Self {
            settle_at: Some(format!("{}{path}", self.base)),
            ..self.clone()
        }
    }
}

/// Up to two letters for an avatar: of the names, else of the email.
pub fn initials(user: &usher_domain::model::User) -> String {
    let from_names: String = [&user.first_name, &user.last_name]
        .iter()
        .filter_map(|n| n.chars().next())
        .flat_map(char::to_uppercase)
        .collect();
    if !from_names.is_empty() {
        return from_names;
    }
    user.email
        .as_ref()
        .and_then(|e| e.as_str().chars().next())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".to_owned())
}

/// The password policy, shown as a list under every new-password field.
pub fn password_rules(state: &AppState) -> PasswordRules {
    PasswordRules {
        min_length: state.settings().password_min_length,
    }
}

/// Where to go after sign-in (or anywhere else a `redirect` value is
/// followed): `target` is a path inside Usher without N8N_PATH, as the page
/// extractor writes it. It is parsed as a URL against the base URL, as a browser would
/// parse it, and followed only when it stays on Usher's origin; anything with
/// a control character or whitespace (browsers drop tabs and line breaks from
/// URLs, which turns `/\t/evil.example` into `//evil.example`) or that fails
/// to parse leads home. Never an open redirect, never a 500.
pub fn safe_redirect(state: &AppState, target: &str) -> String {
    let settings = state.settings();
    local_redirect(&settings.base_url, &settings.base_path, target)
}

fn local_redirect(base_url: &str, base_path: &str, target: &str) -> String {
    let home = format!("{base_path}/");
    let refused = !target.starts_with('/')
        // Longer than any page of Usher's: a header a proxy would refuse.
        || target.len() > 2048
        // A scheme-relative URL, however the base path would wrap it.
        || target.starts_with("//")
        || target.starts_with("/\\")
        || target.chars().any(|c| c.is_control() || c.is_whitespace());
    if refused {
        return home;
    }
    let Ok(base) = url::Url::parse(base_url) else {
        return home;
    };
    match base.join(&format!("{base_path}{target}")) {
        // What the browser will make of it, after `..` and `.`: a path that
        // then starts with `//` would leave Usher's origin.
        Ok(url)
            if url.origin() == base.origin()
                && url.path().starts_with(&home)
                && !url.path().starts_with("//") =>
        {
            let mut local = url.path().to_owned();
            if let Some(query) = url.query() {
                local.push('?');
                local.push_str(query);
            }
            local
        }
        _ => home,
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "pages/onward.html")]
struct OnwardPage<'a> {
    base: &'a str,
    target: &'a str,
}

/// Where a form's post leads on. Browsers hold every redirect after a
/// form's post to the page's `form-action 'self'`, so when the way on
/// leaves Usher (an app's sign-out address) or goes through the
/// authorization endpoint or forward authentication's way back (which
/// redirect to an app), it is a page that
/// goes there by itself (a `Refresh` header, and a link) instead of a
/// redirect. Anything else is an ordinary redirect.
pub fn onward(state: &AppState, target: &str) -> Response {
    let leaves = !target.starts_with('/')
        || target.starts_with(&state.path(crate::oidc::AUTHORIZE))
        || target.starts_with(&state.path(crate::forward_auth::CONTINUE));
    let refresh = axum::http::HeaderValue::from_str(&format!("0; url={target}"));
    match refresh {
        Ok(refresh) if leaves => {
            let mut response = OnwardPage {
                base: &state.settings().base_path,
                target,
            }
            .into_response();
            response.headers_mut().insert("refresh", refresh);
            response
        }
        _ => Redirect::to(target).into_response(),
    }
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

/// A date as the pages show it: `2026-11-30`.
pub fn day(millis: i64) -> String {
    rfc3339(millis).chars().take(10).collect()
}

/// A moment to the minute, in UTC (`2026-11-30 23:32 UTC`).
pub fn moment(millis: i64) -> String {
    let minute: String = rfc3339(millis).chars().take(16).collect();
    format!("{} UTC", minute.replace('T', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_s_address_leads_to_the_page_the_form_is_on() {
        for (action, page) in [
            ("/settings/personal/password", "/settings/personal"),
            ("/settings/mfa/disable", "/settings/mfa"),
            ("/settings/email/reset", "/settings/email"),
            ("/settings/api/0193/delete", "/settings/api"),
            ("/home/tags/0193/rename", "/home/tags"),
            ("/home/credentials/0193/delete", "/home/credentials"),
            ("/workflows/0193/delete", "/workflows/0193"),
            ("/projects/0193/members", "/projects/0193"),
            ("/projects/0193/members/0194/remove", "/projects/0193"),
            ("/settings/users/0193/delete", "/settings/users/0193"),
            ("/signin/code", "/signin"),
            ("/setup/skip", "/setup"),
            ("/open-period/dismiss", "/"),
        ] {
            assert_eq!(page_of_action(action), page, "{action}");
        }
    }

    #[test]
    fn redirects_stay_on_usher_s_origin_and_never_fail() {
        let base = "https://usher.example.com/team";
        for (target, expected) in [
            ("/settings/users", "/team/settings/users"),
            ("/projects/1?done=1", "/team/projects/1?done=1"),
            ("/", "/team/"),
            ("//evil.example", "/team/"),
            ("/\\evil.example", "/team/"),
            ("/\t/evil.example", "/team/"),
            ("/\n/x", "/team/"),
            ("/ /x", "/team/"),
            ("/../../x", "/team/"),
            ("/..//evil.com", "/team/"),
            ("https://evil.example/", "/team/"),
            ("javascript:alert(1)", "/team/"),
            ("", "/team/"),
        ] {
            assert_eq!(
                local_redirect(base, "/team", target),
                expected,
                "{target:?}"
            );
        }
        assert_eq!(local_redirect("http://localhost:5678", "", "/x"), "/x");
        assert_eq!(local_redirect("http://localhost:5678", "", "//x"), "/");
        for sneaky in [
            "/..//evil.com",
            "/a/..//evil.com",
            "/%2e%2e//evil.com",
            "/.//evil.com",
            "/x/../\\evil.com",
            "/.//evil.com:8080/x",
        ] {
            assert_eq!(
                local_redirect("http://localhost:5678", "", sneaky),
                "/",
                "{sneaky}"
            );
        }
        assert_eq!(
            local_redirect(
                "http://localhost:5678",
                "",
                &format!("/{}", "a".repeat(3000))
            ),
            "/"
        );
    }
}

/// `?q=` of a "pick a person" field's suggestions.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(crate) struct PeopleQuery {
    q: String,
}

/// A person as a "pick a person" list shows them: `Ann Lee (ann@example.com)`,
/// or the email alone when it is all they are called.
pub(crate) fn person_label(user: &usher_domain::model::User) -> String {
    match &user.email {
        Some(email) if user.display_name() != email.to_string() => {
            format!("{} ({email})", user.display_name())
        }
        _ => user.display_name(),
    }
}

/// Whom a "pick a person" field (`field`, as typed in `typed`) names: the
/// one person whose email it is, else the one person it matches. Else the
/// people it could mean (none when it matches no one), for the page to ask.
pub(crate) async fn person_named(
    state: &AppState,
    page: &SignedInPage,
    field: &'static str,
    typed: &str,
) -> usher_domain::Result<
    std::result::Result<usher_domain::model::UserId, Vec<usher_domain::model::User>>,
> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err(usher_domain::Error::field(
            field,
            "Type the name or email of the person to add.",
        ));
    }
    let people: Vec<usher_domain::model::User> = state
        .usher()
        .find_people(&page.actor, typed, 10)
        .await?
        .into_iter()
        .filter(|u| !u.is_owner_shell())
        .collect();
    let exact = people.iter().find(|u| {
        u.email
            .as_ref()
            .is_some_and(|e| e.as_str().eq_ignore_ascii_case(typed))
    });
    Ok(match (exact, people.as_slice()) {
        (Some(person), _) => Ok(person.id),
        (None, [only]) => Ok(only.id),
        (None, _) => Err(people),
    })
}

/// A "pick a person" field's suggestions: a few people matching `q` (never
/// everyone), those `keep` allows, as `[{value: email, label: name}]` for
/// the page's script to put in the field's datalist.
pub(crate) async fn people_suggestions(
    state: &AppState,
    page: &SignedInPage,
    query: &PeopleQuery,
    keep: impl Fn(&usher_domain::model::User) -> bool,
) -> Result {
    #[derive(serde::Serialize)]
    struct Person {
        value: String,
        label: String,
    }
    let people = if query.q.trim().is_empty() {
        Vec::new()
    } else {
        state.usher().find_people(&page.actor, &query.q, 10).await?
    };
    let people: Vec<Person> = people
        .into_iter()
        .filter(|u| keep(u))
        .filter_map(|u| {
            u.email.as_ref().map(|e| Person {
                value: e.to_string(),
                label: u.display_name(),
            })
        })
        .collect();
    Ok(axum::Json(people).into_response())
}
