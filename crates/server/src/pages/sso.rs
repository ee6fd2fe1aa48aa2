//! `/settings/sso`: single sign-on through the company's OpenID Connect
//! provider (owner and admins). The same checks as `POST
//! /rest/sso/oidc/config` (`rest::sso::save`), and what was typed stays in
//! the form when they refuse it.

use askama::Template;
use askama_web::WebTemplate;
use axum::{Router, extract::State, response::IntoResponse, routing::get};
use serde::Deserialize;
use usher_domain::service::sso::{Door, PROMPTS, SECRET_PLACEHOLDER, SsoSettings};

use super::{Form, Layout, Result, Shown, SignedInPage, done};
use crate::{AppState, extract::ClientOrigin, rest::sso as rest_sso};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/sso", get(view_sso_get).post(view_sso_post))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/sso.html")]
struct SsoPage {
    layout: Layout,
    form: Form,
    values: SsoSettings,
    has_secret: bool,
    callback_url: String,
    prompts: [&'static str; 5],
    notice: Option<String>,
}

async fn render(
    state: &AppState,
    page: SignedInPage,
    form: Form,
    values: Option<SsoSettings>,
    shown: Shown,
) -> Result {
    let stored = state.usher().sso_settings(&page.actor).await?;
    let has_secret = stored.client_secret == SECRET_PLACEHOLDER;
    let values = values.unwrap_or(stored);
    let form = form
        .with("discoveryEndpoint", values.discovery_endpoint.clone())
        .with("clientId", values.client_id.clone())
        .with("loginLabel", values.login_label.clone())
        .with("allowedDomains", values.allowed_domains.join(", "));
    Ok(SsoPage {
        layout: page.layout.at("/settings/sso"),
        form,
        values,
        has_secret,
        callback_url: rest_sso::callback_url(state),
        prompts: PROMPTS,
        notice: shown.notice,
    }
    .into_response())
}

async fn view_sso_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    render(&state, page, Form::default(), None, Shown::default()).await
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SsoForm {
    discovery_endpoint: String,
    client_id: String,
    client_secret: String,
    login_label: String,
    prompt: String,
    login_enabled: Option<String>,
    trust_email: Option<String>,
    create_accounts: Option<String>,
    allowed_domains: String,
    authentication_method: String,
}

async fn view_sso_post(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<SsoForm>,
) -> Result {
    // An empty secret field keeps the stored secret (the page never shows it).
    let secret = if input.client_secret.is_empty() {
        SECRET_PLACEHOLDER.to_owned()
    } else {
        input.client_secret
    };
    let settings = SsoSettings {
        discovery_endpoint: input.discovery_endpoint,
        client_id: input.client_id,
        client_secret: secret,
        login_enabled: input.login_enabled.is_some(),
        prompt: Some(input.prompt).filter(|p| !p.is_empty()),
        login_label: input.login_label,
        authentication_method: if input.authentication_method == "oidc" {
            Door::Oidc
        } else {
            Door::Email
        },
        trust_email: input.trust_email.is_some(),
        // One text field, commas between domains: the service splits it.
        allowed_domains: vec![input.allowed_domains],
        create_accounts: input.create_accounts.is_some(),
    };
    match rest_sso::save(&state, &page.actor, settings.clone(), &origin).await {
        Ok(saved) => {
            let notice = if saved.login_enabled {
                "Single sign-on is saved and on: the sign-in page shows its button."
            } else {
                "Single sign-on is saved; it is off."
            };
            Ok(done(&state, "/settings/sso", notice, ()))
        }
        Err(error) => {
            let form = Form::default().error(error, &[]);
            let form = match form.error_of("authenticationMethod") {
                // The door's refusal goes above the form (its choice has no
                // field of its own to stand beside).
                Some(message) => form.general_error(message),
                None => form,
            };
            render(&state, page, form, Some(settings), Shown::default()).await
        }
    }
}

impl SsoPage {
    fn prompt_is(&self, prompt: &str) -> bool {
        self.values.prompt.as_deref() == Some(prompt)
    }

    fn sso_only(&self) -> bool {
        self.values.authentication_method == Door::Oidc
    }

    fn secret_hint(&self) -> &'static str {
        if self.has_secret {
            "A secret is stored (never shown). Leave this empty to keep it, while the discovery \
             endpoint and client ID stay the same."
        } else {
            "From the provider's client settings. Empty for a public client (PKCE only)."
        }
    }
}
