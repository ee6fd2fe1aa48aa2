//! Single sign-on through an OpenID Connect provider, at n8n's paths:
//! `GET|POST /rest/sso/oidc/config` (the settings), `GET
//! /rest/sso/oidc/login` (off to the provider) and `GET
//! /rest/sso/oidc/callback` (back from it).
//!
//! The two browser steps answer with pages, never JSON: a failure is a page
//! that says what went wrong (and is in the audit log), never a 500.
//!
//! Each sign-in's `state` is kept twice: as the key of a row in the
//! database (with the nonce and PKCE verifier, sealed; taken once by the
//! callback, on any instance) and in a short-lived cookie of this browser.
//! The callback needs both, so a callback URL made in another browser
//! (login CSRF: an attacker's own code and state) or replayed is refused.

use axum::{
    Router,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{Redirect, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use usher_domain::{
    model::Origin,
    service::{
        auth::Identity,
        sso::{Door, PendingSso, SsoSettings, SsoStep},
    },
};

use super::{data, with_cookie};
use crate::{
    AppState,
    error::{ApiError, Result},
    extract::{self, ClientOrigin, Json, SignedIn, Who},
    pages, sso,
};

pub const LOGIN: &str = "/rest/sso/oidc/login";
pub const CALLBACK: &str = "/rest/sso/oidc/callback";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sso/oidc/config", get(get_config).post(post_config))
        .route("/sso/oidc/login", get(login))
        .route("/sso/oidc/callback", get(callback))
}

/// The settings as `/rest` shows them (n8n's names, plus Usher's).
///
/// Every field may be left out: n8n's fields as their empty value, Usher's
/// own (`loginLabel`, `authenticationMethod`, `trustEmail`,
/// `allowedDomains`, `createAccounts`) as what is saved, so a client that
/// knows only n8n's fields never turns "SSO only" off or opens sign-up by
/// saving. The services check the caller's rights before the values, so a
/// member learns nothing from a refused body.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ConfigJson {
    pub discovery_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    pub login_enabled: bool,
    pub prompt: Option<String>,
    /// Usher's: the button reads "Sign in with <loginLabel>".
    pub login_label: Option<String>,
    /// n8n's `userManagement.authenticationMethod`: `email` (passwords
    /// for everyone) or `oidc` (SSO only; the owner keeps the password).
    pub authentication_method: Option<Door>,
    /// Usher's (Keycloak's "Trust email"): an email the provider sends
    /// without `email_verified` counts as verified. For providers whose
    /// users cannot choose their own address (Microsoft Entra ID).
    pub trust_email: Option<bool>,
    /// Usher's: the email domains for which a first sign-in makes an
    /// account (`["example.com"]`); empty: any.
    pub allowed_domains: Option<Vec<String>>,
    /// Usher's: whether a first sign-in with a new email makes an account
    /// (n8n makes accounts just in time: on until turned off).
    pub create_accounts: Option<bool>,
    /// Usher's, read only: the redirect URL to register at the provider.
    #[serde(skip_deserializing)]
    pub callback_url: String,
}

impl ConfigJson {
    fn from_settings(state: &AppState, settings: SsoSettings) -> Self {
        Self {
            discovery_endpoint: settings.discovery_endpoint,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            login_enabled: settings.login_enabled,
            prompt: settings.prompt,
            login_label: Some(settings.login_label),
            authentication_method: Some(settings.authentication_method),
            trust_email: Some(settings.trust_email),
            allowed_domains: Some(settings.allowed_domains),
            create_accounts: Some(settings.create_accounts),
            callback_url: callback_url(state),
        }
    }

    /// The settings this body asks for: Usher's own fields it leaves out
    /// stay as `saved` has them.
    fn over(self, saved: SsoSettings) -> SsoSettings {
        SsoSettings {
            discovery_endpoint: self.discovery_endpoint,
            client_id: self.client_id,
            client_secret: self.client_secret,
            login_enabled: self.login_enabled,
            prompt: self.prompt.filter(|p| !p.is_empty()),
            login_label: self.login_label.unwrap_or(saved.login_label),
            authentication_method: self
                .authentication_method
                .unwrap_or(saved.authentication_method),
            trust_email: self.trust_email.unwrap_or(saved.trust_email),
            allowed_domains: self.allowed_domains.unwrap_or(saved.allowed_domains),
            create_accounts: self.create_accounts.unwrap_or(saved.create_accounts),
        }
    }
}

/// Where the provider sends people back: register it there.
pub fn callback_url(state: &AppState) -> String {
    state.usher().link(CALLBACK)
}

async fn get_config(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<super::Data<ConfigJson>>> {
    let settings = state.usher().sso_settings(&actor).await?;
    Ok(data(ConfigJson::from_settings(&state, settings)))
}

async fn post_config(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<ConfigJson>,
) -> Result<Json<super::Data<ConfigJson>>> {
    let current = state.usher().sso_settings(&actor).await?;
    let saved = save(&state, &actor, body.over(current), &origin).await?;
    Ok(data(ConfigJson::from_settings(&state, saved)))
}

/// Checks the settings, asks the provider for its configuration (with
/// sign-in on), and keeps them: the one way to save them, for `/rest` and
/// the page.
pub async fn save(
    state: &AppState,
    actor: &usher_domain::service::auth::Actor,
    input: SsoSettings,
    origin: &Origin,
) -> std::result::Result<SsoSettings, usher_domain::Error> {
    let usher = state.usher();
    let config = usher.check_sso_settings(actor, input).await?;
    // Turned off, the settings may point at a provider that is not there
    // yet; turned on, it must answer.
    if config.login_enabled {
        sso::discover(state.sso_http(), &config, &callback_url(state))
            .await
            .map_err(|message| usher_domain::Error::field("discoveryEndpoint", message))?;
    }
    usher.save_sso_config(actor, &config, origin).await
}

/// The sign-in page's button, when sign-in with the provider is on: its
/// text and address, carrying the way back.
pub async fn button(state: &AppState, redirect: &str) -> Option<(String, String)> {
    let label = state.usher().sso_button().await.ok().flatten()?;
    let mut href = state.path(LOGIN);
    if !redirect.is_empty() {
        href = format!("{href}?redirect={}", pages::percent_encode(redirect, b"/"));
    }
    Some((label, href))
}

/// The cookie that ties a sign-in at the provider to this browser.
fn state_cookie_name(state: &AppState) -> String {
    format!("{}-sso", state.settings().cookie.name)
}

/// The cookie that carries a two-factor challenge from the callback to the
/// code page.
pub fn code_cookie_name(state: &AppState) -> String {
    format!("{}-sso-code", state.settings().cookie.name)
}

/// A cookie of the sign-in with the provider: HttpOnly, Secure as set,
/// and SameSite=Lax at most, because the provider's redirect back is a
/// navigation from another site (a Strict cookie would not come with it).
pub fn flow_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    let settings = &state.settings().cookie;
    let same_site = match settings.same_site {
        crate::settings::SameSite::None => cookie::SameSite::None,
        _ => cookie::SameSite::Lax,
    };
    let base = &state.settings().base_path;
    let path = if base.is_empty() { "/" } else { base.as_str() };
    let mut built = cookie::Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .secure(settings.secure)
        .same_site(same_site)
        .build();
    built.set_max_age(cookie::time::Duration::seconds(max_age.max(0)));
    HeaderValue::from_str(&built.to_string()).ok()
}

/// One query parameter, decoded; never fails.
fn param(query: Option<&str>, name: &str) -> String {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// A sign-in with the provider that did not work: the page says what, the
/// audit log records why.
struct Failure {
    status: StatusCode,
    message: String,
    log: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            log: message.clone(),
            message,
        }
    }

    fn page(self, state: &AppState, identity: &Identity) -> Response {
        pages::failure_page(
            state,
            Some(identity),
            ApiError::new(self.status, self.message),
            "Single sign-on did not work",
            ("/signin", "Back to sign-in"),
        )
    }
}

/// Off to the provider: an authorization request with PKCE, state and
/// nonce, remembered until the callback.
async fn login(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    RawQuery(query): RawQuery,
) -> Response {
    let redirect = param(query.as_deref(), "redirect");
    match start(&state, redirect, &origin).await {
        Ok(response) => response,
        Err(failure) => failure.page(&state, &identity),
    }
}

async fn start(
    state: &AppState,
    redirect: String,
    origin: &Origin,
) -> std::result::Result<Response, Failure> {
    let usher = state.usher();
    usher
        .count_sso_start(origin)
        .await
        .map_err(|e| failure_from(e.into()))?;
    let config = usher
        .sso_login_config()
        .await
        .map_err(|e| failure_from(e.into()))?
        .ok_or_else(|| {
            Failure::new(
                StatusCode::NOT_FOUND,
                "Single sign-on is not turned on here: sign in with your email and password.",
            )
        })?;
    let provider = sso::discover(state.sso_http(), &config, &callback_url(state))
        .await
        .map_err(|message| Failure::new(StatusCode::BAD_GATEWAY, message))?;
    let started = provider.start(config.prompt.as_deref());
    let pending = PendingSso {
        nonce: started.nonce,
        pkce_verifier: started.pkce_verifier,
        discovery_endpoint: config.discovery_endpoint,
        client_id: config.client_id,
        redirect,
    };
    usher
        .remember_sso_login(&started.state, &pending)
        .await
        .map_err(|e| failure_from(e.into()))?;
    let cookie = flow_cookie(
        state,
        &state_cookie_name(state),
        &started.state,
        usher_domain::service::sso::LOGIN_LIFETIME / 1000,
    );
    Ok(with_cookie(Redirect::to(&started.url), cookie))
}

fn failure_from(error: ApiError) -> Failure {
    Failure::new(error.status, error.message)
}

/// Back from the provider: the state checked against this browser and
/// taken once, then the code traded and the ID token verified, then the
/// person signed in.
async fn callback(
    State(state): State<AppState>,
    Who(identity): Who,
    ClientOrigin(origin): ClientOrigin,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // The state cookie has done its work whatever happens next.
    let clear = flow_cookie(&state, &state_cookie_name(&state), "", 0);
    let answer = match finish(&state, &origin, &headers, query.as_deref()).await {
        Ok(response) => response,
        Err(failure) => {
            if !failure.log.is_empty() {
                state.usher().sso_failed(&failure.log, &origin).await;
            }
            failure.page(&state, &identity)
        }
    };
    with_cookie(answer, clear)
}

async fn finish(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    query: Option<&str>,
) -> std::result::Result<Response, Failure> {
    let usher = state.usher();
    let state_param = param(query, "state");
    let again = "Start again from the sign-in page.";
    if state_param.is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            format!("The provider's answer came without the state Usher sent. {again}"),
        ));
    }
    let cookie = extract::session_token(headers, &state_cookie_name(state)).unwrap_or_default();
    if cookie.is_empty() || cookie != state_param {
        let mut failure = Failure::new(
            StatusCode::BAD_REQUEST,
            format!(
                "This answer from the provider is not for a sign-in started in this browser \
                 (or another sign-in was started since). {again}"
            ),
        );
        failure.log = "the state does not match this browser's".into();
        return Err(failure);
    }
    let pending = usher
        .take_sso_login(&state_param)
        .await
        .map_err(|e| failure_from(e.into()))?;
    let error = param(query, "error");
    if !error.is_empty() {
        return Err(provider_error(&error, &param(query, "error_description")));
    }
    let config = usher
        .sso_login_config()
        .await
        .map_err(|e| failure_from(e.into()))?
        .ok_or_else(|| {
            Failure::new(
                StatusCode::NOT_FOUND,
                "Single sign-on was turned off during this sign-in.",
            )
        })?;
    if config.discovery_endpoint != pending.discovery_endpoint
        || config.client_id != pending.client_id
    {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            format!("The single sign-on settings changed during this sign-in. {again}"),
        ));
    }
    let code = param(query, "code");
    if code.is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            format!("The provider's answer came without a sign-in code. {again}"),
        ));
    }
    let http = state.sso_http();
    let provider = sso::discover(http, &config, &callback_url(state))
        .await
        .map_err(|message| Failure::new(StatusCode::BAD_GATEWAY, message))?;
    let person = provider
        .finish(
            http,
            &code,
            &pending.pkce_verifier,
            &pending.nonce,
            usher.now(),
        )
        .await
        .map_err(|message| Failure::new(StatusCode::UNAUTHORIZED, message))?;
    let target = pages::safe_redirect(state, &pending.redirect);
    match usher.sso_sign_in(&person, origin).await {
        Ok(SsoStep::Done(session)) => Ok(with_cookie(
            pages::onward(state, &target),
            state.session_cookie(&session),
        )),
        Ok(SsoStep::NeedsCode(challenge)) => {
            let cookie = flow_cookie(state, &code_cookie_name(state), challenge.expose(), 300);
            let to = format!(
                "{}?redirect={}",
                state.path("/signin/code"),
                pages::percent_encode(&pending.redirect, b"/")
            );
            Ok(with_cookie(Redirect::to(&to), cookie))
        }
        // The services recorded why in the audit log already.
        Err(error) => {
            let error = ApiError::from(error);
            let mut failure = failure_from(error);
            failure.log = String::new();
            Err(failure)
        }
    }
}

/// The provider's own refusal (RFC 6749 §4.1.2.1), in words.
fn provider_error(code: &str, description: &str) -> Failure {
    let what = match code {
        "access_denied" => "The provider did not let you in (access denied): you cancelled, or \
             your account there may not use Usher."
            .to_owned(),
        "login_required" | "interaction_required" | "consent_required" => format!(
            "The provider needs you to sign in there first ({code}). Start again from the \
             sign-in page."
        ),
        "temporarily_unavailable" | "server_error" => {
            format!("The provider could not answer just now ({code}). Try again in a moment.")
        }
        other => format!(
            "The provider refused the sign-in ({other}): its administrator may need to check \
             Usher's client settings there."
        ),
    };
    let message = if description.trim().is_empty() {
        what
    } else {
        let shown: String = description.chars().take(300).collect();
        format!("{what} The provider said: “{shown}”")
    };
    let mut failure = Failure::new(StatusCode::FORBIDDEN, message);
    failure.log = format!("the provider answered {code}");
    failure
}
