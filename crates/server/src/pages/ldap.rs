//! `/settings/ldap`: the company directory's settings (n8n's fields), a
//! test of the connection, synchronisation by hand and its history. Owner
//! and admins.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{get, post},
};
use serde::Deserialize;
use usher_domain::{
    Error,
    clock::rfc3339,
    ldap::{LdapConfig, PASSWORD_PLACEHOLDER, Security},
    service::ldap::SyncMode,
    store::SyncRun,
};

use super::{Form, Layout, Result, Shown, SignedInPage, done};
use crate::{AppState, extract::ClientOrigin};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/ldap", get(view_ldap_get).post(view_ldap_post))
        .route("/settings/ldap/test", post(view_ldap_test))
        .route("/settings/ldap/sync", post(view_ldap_sync))
}

/// The choices that are not text fields, as the form shows them.
struct Choices {
    login_enabled: bool,
    allow_unauthorized_certs: bool,
    synchronization_enabled: bool,
    security: &'static str,
    /// A binding password is saved (the field may stay empty to keep it).
    password_saved: bool,
}

struct RunRow {
    started: String,
    mode: &'static str,
    status: String,
    counts: String,
    error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/ldap.html")]
struct LdapPage {
    layout: Layout,
    form: Form,
    choices: Choices,
    runs: Vec<RunRow>,
    /// What is unsafe in the settings shown (plain LDAP).
    warnings: Vec<&'static str>,
    notice: Option<String>,
    error: Option<String>,
}

/// The text fields of the form, as the settings hold them.
fn form_of(config: &LdapConfig) -> Form {
    Form::default()
        .with("loginLabel", config.login_label.clone())
        .with("connectionUrl", config.connection_url.clone())
        .with("connectionPort", config.connection_port.to_string())
        .with("baseDn", config.base_dn.clone())
        .with("bindingAdminDn", config.binding_admin_dn.clone())
        .with("firstNameAttribute", config.first_name_attribute.clone())
        .with("lastNameAttribute", config.last_name_attribute.clone())
        .with("emailAttribute", config.email_attribute.clone())
        .with("loginIdAttribute", config.login_id_attribute.clone())
        .with("ldapIdAttribute", config.ldap_id_attribute.clone())
        .with("userFilter", config.user_filter.clone())
        .with(
            "synchronizationInterval",
            config.synchronization_interval.to_string(),
        )
        .with("searchPageSize", config.search_page_size.to_string())
        .with("searchTimeout", config.search_timeout.to_string())
}

fn choices_of(config: &LdapConfig, password_saved: bool) -> Choices {
    Choices {
        login_enabled: config.login_enabled,
        allow_unauthorized_certs: config.allow_unauthorized_certs,
        synchronization_enabled: config.synchronization_enabled,
        security: config.connection_security.as_str(),
        password_saved,
    }
}

fn run_row(run: &SyncRun) -> RunRow {
    RunRow {
        started: rfc3339(run.started_at).replace('T', " ").replace('Z', ""),
        mode: if run.run_mode == "dry" {
            "Dry run"
        } else {
            "Live"
        },
        status: if run.status == "success" {
            "Done".to_owned()
        } else {
            "Failed".to_owned()
        },
        counts: format!(
            "{} scanned, {} new, {} changed, {} disabled",
            run.scanned, run.created, run.updated, run.disabled
        ),
        error: run.error.clone(),
    }
}

/// The page: the saved settings, or the form as typed with its error.
async fn render(
    state: &AppState,
    page: SignedInPage,
    shown: Shown<Option<(Form, LdapConfig)>>,
) -> Result {
    let saved = state.usher().ldap_config(&page.actor).await?;
    let password_saved = saved.binding_admin_password == PASSWORD_PLACEHOLDER;
    let (form, choices, warnings) = match shown.with {
        Some((form, typed)) => (form, choices_of(&typed, password_saved), typed.warnings()),
        None => (
            form_of(&saved),
            choices_of(&saved, password_saved),
            saved.warnings(),
        ),
    };
    let runs = state
        .usher()
        .ldap_sync_runs(&page.actor, 10)
        .await?
        .iter()
        .map(run_row)
        .collect();
    Ok(LdapPage {
        layout: page.layout.at("/settings/ldap"),
        form,
        choices,
        runs,
        warnings,
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

async fn view_ldap_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    render(&state, page, Shown::default()).await
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LdapForm {
    login_enabled: Option<String>,
    login_label: String,
    connection_url: String,
    allow_unauthorized_certs: Option<String>,
    connection_security: String,
    connection_port: String,
    base_dn: String,
    binding_admin_dn: String,
    binding_admin_password: String,
    first_name_attribute: String,
    last_name_attribute: String,
    email_attribute: String,
    login_id_attribute: String,
    ldap_id_attribute: String,
    user_filter: String,
    synchronization_enabled: Option<String>,
    synchronization_interval: String,
    search_page_size: String,
    search_timeout: String,
}

/// A whole number typed in a field, or the field's message.
fn number(field: &'static str, text: &str, label: &str) -> std::result::Result<u32, Error> {
    text.trim()
        .parse::<u32>()
        .map_err(|_| Error::field(field, format!("{label} must be a whole number.")))
}

impl LdapForm {
    /// The settings the form asks for; the numbers' errors, if any.
    fn config(&self) -> (LdapConfig, Option<Error>) {
        let mut error = None;
        let mut read = |field, text: &str, label, fallback| match number(field, text, label) {
            Ok(n) => n,
            Err(e) => {
                error.get_or_insert(e);
                fallback
            }
        };
        let defaults = LdapConfig::default();
        let config = LdapConfig {
            login_enabled: self.login_enabled.is_some(),
            login_label: self.login_label.clone(),
            connection_url: self.connection_url.clone(),
            allow_unauthorized_certs: self.allow_unauthorized_certs.is_some(),
            connection_security: Security::parse(&self.connection_security).unwrap_or_default(),
            connection_port: read(
                "connectionPort",
                &self.connection_port,
                "The port",
                defaults.connection_port,
            ),
            base_dn: self.base_dn.clone(),
            binding_admin_dn: self.binding_admin_dn.clone(),
            // Left empty: keep the saved password (the page never shows it).
            binding_admin_password: if self.binding_admin_password.is_empty() {
                PASSWORD_PLACEHOLDER.to_owned()
            } else {
                self.binding_admin_password.clone()
            },
            first_name_attribute: self.first_name_attribute.clone(),
            last_name_attribute: self.last_name_attribute.clone(),
            email_attribute: self.email_attribute.clone(),
            login_id_attribute: self.login_id_attribute.clone(),
            ldap_id_attribute: self.ldap_id_attribute.clone(),
            user_filter: self.user_filter.clone(),
            synchronization_enabled: self.synchronization_enabled.is_some(),
            synchronization_interval: read(
                "synchronizationInterval",
                &self.synchronization_interval,
                "The interval",
                defaults.synchronization_interval,
            ),
            search_page_size: read(
                "searchPageSize",
                &self.search_page_size,
                "The page size",
                defaults.search_page_size,
            ),
            search_timeout: read(
                "searchTimeout",
                &self.search_timeout,
                "The timeout",
                defaults.search_timeout,
            ),
        };
        if Security::parse(&self.connection_security).is_none() {
            error.get_or_insert(Error::field(
                "connectionSecurity",
                "Choose how the connection is protected: none, TLS or StartTLS.",
            ));
        }
        (config, error)
    }

    /// The text fields as typed (numbers too), to show again.
    fn typed(&self) -> Form {
        Form::default()
            .with("loginLabel", self.login_label.clone())
            .with("connectionUrl", self.connection_url.clone())
            .with("connectionPort", self.connection_port.clone())
            .with("baseDn", self.base_dn.clone())
            .with("bindingAdminDn", self.binding_admin_dn.clone())
            .with("firstNameAttribute", self.first_name_attribute.clone())
            .with("lastNameAttribute", self.last_name_attribute.clone())
            .with("emailAttribute", self.email_attribute.clone())
            .with("loginIdAttribute", self.login_id_attribute.clone())
            .with("ldapIdAttribute", self.ldap_id_attribute.clone())
            .with("userFilter", self.user_filter.clone())
            .with(
                "synchronizationInterval",
                self.synchronization_interval.clone(),
            )
            .with("searchPageSize", self.search_page_size.clone())
            .with("searchTimeout", self.search_timeout.clone())
    }
}

async fn view_ldap_post(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<LdapForm>,
) -> Result {
    let (config, number_error) = input.config();
    let saved = match number_error {
        Some(error) => Err(error),
        None => {
            state
                .usher()
                .save_ldap_config(&page.actor, config.clone(), &origin)
                .await
        }
    };
    match saved {
        Ok(_) => Ok(done(
            &state,
            "/settings/ldap",
            "The directory settings are saved. Test the connection to check them.",
            (),
        )),
        Err(error @ (Error::Invalid(_) | Error::InvalidField { .. })) => {
            let form = input.typed().error(error, &[]);
            let shown = Shown::default().with(Some((form, config)));
            render(&state, page, shown).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn view_ldap_test(State(state): State<AppState>, page: SignedInPage) -> Result {
    match state.usher().test_ldap_connection(&page.actor).await {
        Ok(()) => Ok(done(
            &state,
            "/settings/ldap",
            "The connection works: Usher reached the directory, signed in as the binding admin \
             and found people under the base DN.",
            (),
        )),
        Err(error @ Error::Invalid(_)) => render(&state, page, Shown::refused(error)).await,
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SyncForm {
    #[serde(rename = "type")]
    kind: String,
}

async fn view_ldap_sync(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(input): axum::Form<SyncForm>,
) -> Result {
    match state
        .usher()
        .sync_ldap(&page.actor, &input.kind, &origin)
        .await
    {
        Ok(run) => {
            let mode = SyncMode::parse(&run.run_mode).unwrap_or(SyncMode::Live);
            let what = match mode {
                SyncMode::Dry => format!(
                    "Dry run, nothing changed: {} would be added, {} updated and {} disabled ({} entries in the directory).",
                    run.created, run.updated, run.disabled, run.scanned
                ),
                SyncMode::Live => format!(
                    "Synchronised: {} added, {} updated and {} disabled ({} entries in the directory).",
                    run.created, run.updated, run.disabled, run.scanned
                ),
            };
            let notice = if run.error.is_empty() {
                what
            } else {
                format!("{what} {}", run.error)
            };
            Ok(done(&state, "/settings/ldap", notice, ()))
        }
        Err(error @ (Error::Invalid(_) | Error::InvalidField { .. } | Error::Conflict(_))) => {
            render(&state, page, Shown::refused(error)).await
        }
        Err(other) => Err(other.into()),
    }
}
