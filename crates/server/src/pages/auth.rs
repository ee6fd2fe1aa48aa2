//! `/setup`, `/signin`, `/signout`.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::{IntoResponse, Redirect},
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    secret::Secret,
    service::{
        auth::OwnerSetup,
        mfa::{LoginStep, SecondFactor},
    },
};

use super::{Form, Layout, Page, Result, done, password_rules, safe_redirect};
use crate::{AppState, extract::ClientOrigin, rest::with_cookie};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/setup", get(view_setup_get).post(view_setup_post))
        .route("/setup/skip", post(view_setup_skip))
        .route("/signin", get(view_signin_get).post(view_signin_post))
        .route(
            "/signin/code",
            get(view_signin_code_get).post(view_signin_code_post),
        )
        .route("/signout", get(view_signout_get).post(view_signout_post))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/setup.html")]
struct SetupPage {
    layout: Layout,
    form: Form,
    password_rules: super::PasswordRules,
}

async fn view_setup_get(State(state): State<AppState>, page: Page) -> Result {
    page.require_setup_pending()?;
    Ok(SetupPage {
        layout: page.layout,
        form: Form::default(),
        password_rules: password_rules(&state),
    }
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SetupForm {
    email: String,
    first_name: String,
    last_name: String,
    password: Secret,
}

async fn view_setup_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<SetupForm>,
) -> Result {
    page.require_setup_pending()?;
    let form = Form::default()
        .with("email", input.email.clone())
        .with("firstName", input.first_name.clone())
        .with("lastName", input.last_name.clone());
    let setup = OwnerSetup {
        email: input.email,
        first_name: input.first_name,
        last_name: input.last_name,
        password: input.password,
    };
    Ok(match state.usher().setup_owner(setup, &origin).await {
        Ok(session) => with_cookie(
            done(
                &state,
                "/",
                "Your owner account is set up. Invite people from Users.",
                (),
            ),
            state.session_cookie(&session),
        ),
        Err(error) => SetupPage {
            layout: page.layout,
            form: form.error(error, &[]),
            password_rules: password_rules(&state),
        }
        .into_response(),
    })
}

async fn view_setup_skip(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
) -> Result {
    state.usher().skip_setup(&origin).await?;
    Ok(Redirect::to(&state.path("/")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/signin.html")]
struct SigninPage {
    layout: Layout,
    form: Form,
    redirect: String,
    notice: Option<String>,
    /// With LDAP sign-in on: the first field's label (it takes a login ID
    /// or an email), and where directory users change their password.
    ldap_label: Option<String>,
    /// The single sign-on button, when it is on: (text, address).
    sso: Option<(String, String)>,
}

impl SigninPage {
    async fn new(state: &AppState, layout: Layout, form: Form, redirect: String) -> Self {
        let sso = crate::rest::sso::button(state, &redirect).await;
        Self {
            layout,
            form,
            redirect,
            notice: None,
            ldap_label: None,
            sso,
        }
    }

    async fn with_ldap(mut self, state: &AppState) -> Result<Self> {
        self.ldap_label = state.usher().ldap_login_label().await?;
        Ok(self)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SigninQuery {
    redirect: String,
    /// The address to start with (an app's `login_hint`).
    email: String,
    #[serde(rename = "signedOut")]
    signed_out: Option<String>,
}

async fn view_signin_get(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<SigninQuery>,
) -> Result {
    // Someone already signed in who follows a sign-in link with a way back
    // (an app behind a proxy sends people here) goes on there at once.
    if page.identity.actor.is_some() && !query.redirect.is_empty() {
        return Ok(Redirect::to(&safe_redirect(&state, &query.redirect)).into_response());
    }
    page.require_signed_out()?;
    let form = Form::default().with("email", query.email);
    let mut signin = SigninPage::new(&state, page.layout, form, query.redirect)
        .await
        .with_ldap(&state)
        .await?;
    signin.notice = query.signed_out.map(|_| "You are signed out.".to_owned());
    Ok(signin.into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SigninForm {
    email: String,
    password: Secret,
    redirect: String,
}

async fn view_signin_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<SigninForm>,
) -> Result {
    page.require_signed_out()?;
    let step = state
        .usher()
        .begin_login(&input.email, &input.password, &origin)
        .await;
    Ok(match step {
        Ok(LoginStep::Done(session)) => {
            let target = safe_redirect(&state, &input.redirect);
            with_cookie(
                super::onward(&state, &target),
                state.session_cookie(&session),
            )
        }
        Ok(LoginStep::NeedsCode(challenge)) => SigninCodePage {
            layout: page.layout,
            form: Form::default(),
            challenge: challenge.expose().to_owned(),
            redirect: input.redirect,
        }
        .into_response(),
        Err(error) => {
            let form = Form::default().with("email", input.email).error(error, &[]);
            SigninPage::new(&state, page.layout, form, input.redirect)
                .await
                .with_ldap(&state)
                .await?
                .into_response()
        }
    })
}

/// The second step of signing in: a code from the app, or a recovery code.
#[derive(Template, WebTemplate)]
#[template(path = "pages/signin_code.html")]
struct SigninCodePage {
    layout: Layout,
    form: Form,
    challenge: String,
    redirect: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CodeForm {
    challenge: String,
    mfa_code: String,
    mfa_recovery_code: String,
    redirect: String,
}

/// The code page after a sign-in with the provider, for someone who
/// turned on two-factor authentication: the callback left the challenge in
/// a short-lived cookie (never in the address).
async fn view_signin_code_get(
    State(state): State<AppState>,
    page: Page,
    headers: axum::http::HeaderMap,
    Query(query): Query<SigninQuery>,
) -> Result {
    page.require_signed_out()?;
    let cookie = crate::rest::sso::code_cookie_name(&state);
    let Some(challenge) =
        crate::extract::session_token(&headers, &cookie).filter(|c| !c.is_empty())
    else {
        return Ok(Redirect::to(&state.path("/signin")).into_response());
    };
    Ok(SigninCodePage {
        layout: page.layout,
        form: Form::default(),
        challenge,
        redirect: query.redirect,
    }
    .into_response())
}

async fn view_signin_code_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<CodeForm>,
) -> Result {
    let factor = SecondFactor {
        code: Some(input.mfa_code),
        recovery_code: Some(input.mfa_recovery_code),
    };
    let finished = state
        .usher()
        .finish_login(&input.challenge, &factor, &origin)
        .await;
    Ok(match finished {
        Ok(session) => {
            let target = safe_redirect(&state, &input.redirect);
            with_cookie(
                super::onward(&state, &target),
                state.session_cookie(&session),
            )
        }
        // The challenge has lapsed: back to the start.
        Err(usher_domain::Error::Unauthorized(message)) if message.contains("took too long") => {
            let form = Form::default().general_error(message);
            SigninPage::new(&state, page.layout, form, input.redirect)
                .await
                .into_response()
        }
        Err(error) => SigninCodePage {
            layout: page.layout,
            form: Form::default().error(error, &[]),
            challenge: input.challenge,
            redirect: input.redirect,
        }
        .into_response(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/signout.html")]
struct SignoutPage {
    layout: Layout,
    signed_in: bool,
}

/// A button, not an action: nothing changes on a GET (a link or an image on
/// another site could sign people out otherwise).
async fn view_signout_get(page: Page) -> Result {
    Ok(SignoutPage {
        signed_in: page.identity.actor.is_some_and(|a| a.session.is_some()),
        layout: page.layout,
    }
    .into_response())
}

/// Ends the session for good (the cookie is cleared and the session row
/// deleted, so the old cookie fails on every instance).
async fn view_signout_post(
    State(state): State<AppState>,
    page: Page,
    ClientOrigin(origin): ClientOrigin,
) -> Result {
    if let Some(actor) = &page.identity.actor {
        state.usher().logout(actor, &origin).await?;
    }
    let target = format!("{}?signedOut=1", state.path("/signin"));
    Ok(with_cookie(Redirect::to(&target), state.clear_cookie()))
}
