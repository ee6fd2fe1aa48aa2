//! Usher's server: settings, HTTP (`/rest`, `/api/v1`, pages), templates, CLI.
//!
//! Reading order: [`settings`] (what an operator sets), [`AppState`] and
//! [`build`] (how the parts are wired), `app` (the routes), [`serve`]
//! (listening and graceful shutdown), then `extract` (the session layer and
//! the extractors), `rest` and `pages`, which both call the domain services.
//! [`cli`] holds the commands of the `usher` binary.
//!
//! What is public here is what `main.rs` and the integration tests use.

mod api_v1;
pub mod cli;
mod error;
mod extract;
mod forward_auth;
mod health;
mod input;
mod ldap;
mod mail;
mod oidc;
mod pages;
mod request_id;
mod rest;
mod security;
pub mod settings;
mod sso;
mod state;

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc};

use axum::{Router, extract::DefaultBodyLimit, middleware};
use base64::Engine as _;
use tokio::net::TcpListener;
use usher_domain::{
    clock::{Clock, SystemClock},
    password::{PasswordHasher, PasswordPolicy},
    secret::Secret,
    service::{Config, Usher},
};

pub use settings::Settings;
pub use state::AppState;
pub use usher_store::SqlStore;

/// Knobs for tests and embedding that no environment variable reaches.
#[derive(Clone)]
pub struct Internals {
    pub clock: Arc<dyn Clock>,
    /// PEM certificates to trust besides the public roots (a test SMTP
    /// server's self-signed certificate).
    pub trusted_certificates: Vec<String>,
}

impl Default for Internals {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            trusted_certificates: Vec::new(),
        }
    }
}

/// rustls's process-wide provider: ring (no aws-lc build). Idempotent; an
/// embedding program that installed another one keeps it.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A failure to start, in one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error("{0}")]
    Other(String),
}

/// Connects the database, applies migrations, loads or makes the encryption
/// key, and wires the services.
pub async fn build(settings: Settings, internals: Internals) -> Result<AppState, StartError> {
    let store = open_store(&settings).await?;
    build_on(store, settings, internals).await
}

/// Connects the database `settings` name and applies its migrations.
pub async fn open_store(settings: &Settings) -> Result<SqlStore, StartError> {
    let db_setting = match settings.db {
        usher_store::DbConfig::Sqlite { .. } => "N8N_USER_FOLDER",
        usher_store::DbConfig::Postgres { .. } => "DB_POSTGRESDB_HOST",
    };
    usher_store::connect(&settings.db)
        .await
        .map_err(setting(db_setting))
}

/// [`build`] on a store the caller opened. The tests keep their own handle
/// to it, to look into the database and to close it under a running server;
/// handlers never get one (they go through the services).
pub async fn build_on(
    sql_store: SqlStore,
    settings: Settings,
    internals: Internals,
) -> Result<AppState, StartError> {
    install_tls_provider();
    let encryption_key = match &settings.encryption_key {
        Some(key) => key.clone(),
        None => load_or_create_key(&settings.data_folder).map_err(setting("N8N_ENCRYPTION_KEY"))?,
    };
    let concurrency = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let hasher = PasswordHasher::new(concurrency).map_err(|e| StartError::Other(e.to_string()))?;
    let store: Arc<dyn usher_domain::store::Store> = Arc::new(sql_store.clone());
    let sso_http = sso::SsoHttp::new(&internals.trusted_certificates).map_err(StartError::Other)?;
    let smtp = mail::build(
        &settings.mail,
        &settings.base_url,
        internals.trusted_certificates,
        store.clone(),
    )
    .map_err(StartError::Other)?;
    let mailer: Arc<dyn usher_domain::mail::Mailer> = match &smtp {
        Some(smtp) => smtp.clone(),
        None => Arc::new(usher_domain::mail::NoMail),
    };
    let config = Config {
        base_url: settings.base_url.clone(),
        invite_lifetime: settings.mail.invite_lifetime_hours * usher_domain::clock::HOUR,
        invite_links_email_only: settings.mail.invite_links_email_only,
        public_api_disabled: settings.public_api_disabled,
        mfa_disabled: !settings.mfa_enabled,
        password_policy: PasswordPolicy {
            min_length: settings.password_min_length,
        },
        sessions: settings.sessions,
        user_management_disabled: settings.user_management_disabled,
        cookie_domain: settings.cookie.domain.clone(),
    };
    let usher = Usher::new(store, mailer, hasher, internals.clock, config);
    usher
        .prepare()
        .await
        .map_err(|e| StartError::Other(format!("database: {e}")))?;
    let usher = usher
        .with_cipher(&encryption_key)
        .with_directory(ldap::directory());
    usher
        .check_encryption_key(&encryption_key)
        .await
        .map_err(|e| StartError::Other(format!("N8N_ENCRYPTION_KEY: {e}")))?;
    Ok(AppState::new(usher, settings, sql_store, smtp, sso_http))
}

/// An error about the setting `name`, for the operator.
fn setting(name: &'static str) -> impl Fn(String) -> StartError {
    move |e| StartError::Other(format!("{name}: {e}"))
}

/// The key that encrypts stored secrets: made once, kept in the data folder
/// (readable by its owner only), the same on every later start.
fn load_or_create_key(folder: &Path) -> Result<Secret, String> {
    let path = folder.join("encryption-key");
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => {
            // A key file from before, or copied in by hand, is narrowed to
            // its owner too.
            if let Err(e) = private_file(&path).and_then(|()| private_folder(folder)) {
                tracing::warn!(path = %path.display(), error = %e, "cannot make the key file private");
            }
            return Ok(Secret::new(key.trim()));
        }
        Ok(_) => return Err(format!("{} is empty", path.display())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot read {}: {e}", path.display()));
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    private_folder(folder).map_err(|e| format!("cannot make {} private: {e}", folder.display()))?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let key = base64::engine::general_purpose::STANDARD.encode(bytes);
    write_private(&path, &key).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Secret::new(key))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

/// The data folder is its owner's only (0700), whatever the umask.
#[cfg(unix)]
fn private_folder(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn private_folder(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn private_file(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Every route. Tests reach it through [`serve`].
fn app(state: AppState) -> Router {
    let session = middleware::from_fn_with_state(state.clone(), extract::session_layer);
    let rest = rest::router(&state).fallback(rest_not_found);
    // Everything but health checks and static files knows who is asking,
    // the fallback (404 page) included.
    let with_session = Router::new()
        .nest("/rest", rest)
        .merge(pages::router(&state))
        .fallback(pages::not_found)
        .layer(session)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::form_tokens,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::same_origin,
        ));
    let routes = Router::new()
        .nest("/api/v1", api_v1::router(&state))
        .merge(oidc_routes(&state))
        .merge(forward_auth::router())
        .merge(health::router())
        .merge(pages::assets_router())
        .merge(with_session);
    let base = state.settings().base_path.clone();
    let input_state = state.clone();
    let host_state = state.clone();
    let routes = routes.with_state(state);
    // Under N8N_PATH the routes see paths with the prefix taken off, so both
    // `/team` and `/team/` reach the home page.
    let routes = if base.is_empty() {
        routes
    } else {
        Router::new()
            .nest_service(&base, routes)
            .fallback(rest_not_found)
    };
    routes
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .layer(middleware::from_fn_with_state(input_state, input::layer))
        .layer(middleware::from_fn_with_state(
            host_state,
            security::known_host,
        ))
        .layer(middleware::from_fn(security::headers))
        .layer(middleware::from_fn(request_id::layer))
}

/// What apps call server to server: outside the session and form-token
/// layers (see `oidc`).
fn oidc_routes(state: &AppState) -> Router<AppState> {
    if state.settings().user_management_disabled {
        Router::new()
    } else {
        oidc::protocol_router()
    }
}

async fn rest_not_found() -> error::ApiError {
    error::ApiError::not_found()
}

/// Serves until `shutdown` completes, then stops accepting and lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await?;
    state.close().await;
    Ok(())
}
